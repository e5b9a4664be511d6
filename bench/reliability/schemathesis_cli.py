"""The real schemathesis command line against a real server: ``st run --checks all``, once per caller.

Beside the in-process fuzzing (:mod:`bench.reliability.fuzz`), which runs the checks on
hypothesis-generated cases, the command line adds what only a whole run does: the coverage
phase (boundary values, missing required headers, methods the document does not list) and the
stateful phase (links between operations: create → read → delete, which ``use_after_free``
and ``ensure_resource_availability`` need). Each caller — no key, a made-up key, ``reader``,
``editor``, ``admin`` — is one run with its ``Authorization`` header; the figures come from
schemathesis' own JSON report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .fuzz import FORGED_KEY

__all__ = ["run_cli", "CliRun"]

ROOT = Path(__file__).resolve().parents[2]
HOOKS = "bench.reliability.st_hooks"
# errors of schemathesis itself, not of the server: CPython 3.11's ast module fails to parse schemathesis'
# own coverage module when hypothesis describes a lambda from it (gh-106905); that operation's coverage
# cases for that caller stop there. Counted and shown apart; any other error counts as a failure.
TOOL_ERRORS = ("AST constructor recursion depth mismatch",)


def _st() -> str:
    return str(Path(sys.executable).with_name("st"))


def run_cli(base_url: str, keys: Mapping[str, str], workdir: Path, *, max_examples: int, seed: int = 16,
            workers: int = 2, timeout: float = 900.0, only: Sequence[str] | None = None) -> dict[str, Any]:
    """Run ``st run --checks all`` against ``base_url`` as every caller; return the summed figures.

    Args:
        keys: role → ``Authorization`` value of a real key; ``anonymous`` and ``forged`` are always run too.
        max_examples: schemathesis' ``--max-examples`` (per operation and phase).
        only: run just these callers (the small run of ``make test``); default all.

    Returns:
        ``cases`` (generated), ``failures`` (of any check), ``errors`` (schemathesis could not test;
        ``tool_errors`` apart: :data:`TOOL_ERRORS`),
        ``semantic_refusals`` (see :mod:`bench.reliability.st_hooks`), per role the same and the
        distinct failures with their operations.
    """
    roles: dict[str, str | None] = {"anonymous": None, "forged": FORGED_KEY, **keys}
    roles = {role: key for role, key in roles.items() if only is None or role in only}
    workdir.mkdir(parents=True, exist_ok=True)
    document = workdir / "openapi.json"      # a file: a made-up key is refused on /openapi.json too (docs/access.md)
    with urllib.request.urlopen(f"{base_url}/openapi.json", timeout=30) as answer:
        document.write_bytes(answer.read())
    totals: dict[str, Any] = {"cases": 0, "failures": 0, "errors": 0, "semantic_refusals": 0, "by_role": {},
                              "distinct_failures": [], "tool_errors": [], "seconds": 0.0}
    for role, key in roles.items():
        run = CliRun(role, key, workdir / role).execute(base_url, document, max_examples=max_examples, seed=seed,
                                                        workers=workers, timeout=timeout)
        totals["by_role"][role] = {k: run[k] for k in ("cases", "failures", "errors", "semantic_refusals",
                                                       "seconds", "exit_code")}
        for k in ("cases", "failures", "errors", "semantic_refusals"):
            totals[k] += run[k]
        totals["seconds"] = round(totals["seconds"] + run["seconds"], 1)
        totals["distinct_failures"] += [{"role": role, **f} for f in run["failures_list"] + run["errors_list"]]
        totals["tool_errors"] += [{"role": role, "error": e} for e in run["tool_errors"]]
    return totals


class CliRun:
    """One ``st run`` as one caller, with its JSON report and log in ``workdir``."""

    def __init__(self, role: str, key: str | None, workdir: Path):
        self.role, self.key, self.workdir = role, key, workdir

    def command(self, base_url: str, document: Path, *, max_examples: int, seed: int, workers: int) -> list[str]:
        cmd = [_st(), "--no-color", "run", str(document), "--url", base_url, "--checks", "all",
               "--max-examples", str(max_examples), "--seed", str(seed), "--workers", str(workers),
               "--request-timeout", "120",
               "--report", "json", "--report-json-path", str(self.workdir / "report.json")]
        if self.key:
            cmd += ["-H", f"Authorization: {self.key}"]
        return cmd

    def execute(self, base_url: str, document: Path, *, max_examples: int, seed: int, workers: int,
                timeout: float) -> dict[str, Any]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        semantic_log = self.workdir / "semantic.jsonl"
        env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(ROOT), "MATCHER_ST_SEMANTIC_LOG":
               str(semantic_log), "NO_COLOR": "1"}
        cmd = self.command(base_url, document, max_examples=max_examples, seed=seed, workers=workers)
        with open(self.workdir / "st.log", "wb") as log:
            done = subprocess.run(cmd, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=timeout)
        report_file = self.workdir / "report.json"
        if not report_file.exists():
            raise RuntimeError(f"st run ({self.role}) wrote no report; exit {done.returncode}:\n"
                               + (self.workdir / "st.log").read_text(errors="replace")[-3000:])
        report = json.loads(report_file.read_text(encoding="utf-8"))
        failures = [{"check": f.get("type"), "code": f.get("code"), "title": f.get("title"), "count": f.get("count"),
                     "operations": f.get("operations")} for f in report.get("failures", [])]
        log_text = (self.workdir / "st.log").read_text(errors="replace")
        messages = [m.strip() for m in re.findall(r"^Runtime Error\s*\n\s*\n(.+)$", log_text, re.M)]
        errors = [{"check": "error", "title": m[:300]} for m in messages if not m.startswith(TOOL_ERRORS)]
        tool_errors = [m[:300] for m in messages if m.startswith(TOOL_ERRORS)]
        if len(messages) < sum(int(e.get("count", 1)) for e in report.get("errors", [])):
            errors.append({"check": "error", "title": "schemathesis reported errors the log does not name"})
        refusals = len(semantic_log.read_text(encoding="utf-8").splitlines()) if semantic_log.exists() else 0
        return {"cases": int(report["test_cases"]["generated"]),
                "failures": sum(int(f["count"] or 1) for f in failures), "errors": len(errors),
                "tool_errors": tool_errors, "semantic_refusals": refusals,
                "seconds": round(report["running_time"] or 0, 1), "exit_code": done.returncode,
                "failures_list": failures, "errors_list": errors, "operations": report.get("operations", {})}
