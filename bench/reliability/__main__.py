"""``python -m bench.reliability`` (``make check-reliability``): the full reliability run, one table.

Runs ``tests/test_reliability*.py`` with ``MATCHER_RELIABILITY=full`` (≥ 5,000 fuzzed requests, 60 s of
load, repeated kills and outages), gathers the figures the tests record, prints the table and writes it
with all figures to ``bench/results/reliability.json``. Exits non-zero when a test failed or a row
misses its goal.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from .report import REPORT_ENV, read_records

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "results" / "reliability.json"
TESTS = ["tests/test_reliability_fuzz.py", "tests/test_reliability_hostile.py", "tests/test_reliability_access.py",
         "tests/test_reliability_server.py", "tests/test_reliability_faults.py",
         "tests/test_reliability_erasure.py", "tests/test_reliability_proxy.py", "tests/test_reliability_jobs.py"]
MIN_FUZZED = 5000


def _sum(records: list[dict[str, Any]], key: str) -> int:
    return sum(int(r.get(key, 0) or 0) for r in records)


def build_table(parts: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows of the table: measure, value, goal and whether the goal is met."""
    rows: list[dict[str, Any]] = []

    def row(measure: str, value: Any, goal: str, met: bool) -> None:
        rows.append({"measure": measure, "value": value, "goal": goal, "met": bool(met)})

    fuzz = parts.get("fuzz", [{}])[-1]
    hostile = parts.get("hostile", [])
    load = parts.get("load", [{}])[-1]
    wire = parts.get("malformed_http", [{}])[-1]
    cli = parts.get("schemathesis_cli", [{}])[-1]
    fuzzed, cli_cases = int(fuzz.get("requests", 0)), int(cli.get("cases", 0))
    row("requests fuzzed", f"{fuzzed + cli_cases}: {fuzzed} in-process ({fuzz.get('operations', 0)} operations × "
        f"5 callers × valid/invalid) + {cli_cases} by `st run` (5 callers)", f"≥ {MIN_FUZZED}",
        fuzzed >= MIN_FUZZED)
    checks = fuzz.get("checks") or []
    any_failures = int(fuzz.get("failures", 0) or 0) + int(cli.get("failures", 0) or 0) + int(cli.get("errors", 0) or 0)
    refusals = int(fuzz.get("semantic_refusals", 0) or 0) + int(cli.get("semantic_refusals", 0) or 0)
    row("schemathesis failures, any check (--checks all)",
        f"{any_failures} (in-process {fuzz.get('failures', '–')}, st run {cli.get('failures', '–')} + "
        f"{cli.get('errors', '–')} errors; {refusals} schema-valid requests refused for their meaning, 422, "
        f"not counted; {len(cli.get('tool_errors') or [])} errors of schemathesis itself); checks: "
        f"{', '.join(checks)}", "0",
        bool(fuzz) and bool(cli) and any_failures == 0 and cli.get("checks") == "all")
    fives = (int(fuzz.get("server_errors", 0)) + sum(1 for h in hostile if h.get("status", 0) >= 500)
             + sum(int(v) for k, v in load.get("statuses", {}).items() if int(k) >= 500)
             + int(wire.get("server_errors", 0)))
    row("5xx seen (fuzzing, hostile inputs, load, malformed HTTP)", fives, "0", fives == 0 and bool(fuzz))
    row("schema violations (status, content type, body, invalid data accepted)", fuzz.get("schema_violations", "–"),
        "0", fuzz.get("schema_violations") == 0)
    row("errors not in the one error shape", int(fuzz.get("error_shape_violations", 0))
        + sum(1 for h in hostile if not h.get("clean", False)), "0",
        bool(fuzz) and fuzz.get("error_shape_violations") == 0 and all(h.get("clean") for h in hostile))
    row("hostile inputs answered cleanly", f"{sum(1 for h in hostile if h.get('clean'))}/{len(hostile)}", "all",
        bool(hostile) and all(h.get("clean") for h in hostile))
    row(f"load errors ({load.get('clients', '?')} clients, {load.get('seconds', '?')} s, "
        f"{load.get('workers', '?')} gunicorn workers)", f"{load.get('errors', '–')} of {load.get('requests', 0)}",
        "0", load.get("errors") == 0 and load.get("requests", 0) > 0)
    rec = load.get("recommendations", {})
    row("load latency p50 / p99, all requests", f"{load.get('p50_ms', '–')} / {load.get('p99_ms', '–')} ms",
        "measured", bool(load))
    row("load latency p50 / p99, recommendations", f"{rec.get('p50_ms', '–')} / {rec.get('p99_ms', '–')} ms",
        "measured", bool(rec))

    stored = [*parts.get("load", []), *parts.get("worker_kill", []), *parts.get("server_kill", []),
              *parts.get("postgres_outage", []), *parts.get("disk_full", [])]
    acked, found = _sum(stored, "writes_acknowledged"), _sum(stored, "writes_found")
    half = _sum(stored, "half_written") + _sum(stored, "refused_but_present")
    fb = f"; feedback {load.get('feedback_found', 0)}/{load.get('feedback_acknowledged', 0)}" if load else ""
    row("writes acknowledged vs found (load, kills, outages, disk full)", f"{acked} / {found}{fb}", "equal",
        acked > 0 and acked == found and load.get("feedback_found") == load.get("feedback_acknowledged"))
    row("writes half-written or refused yet stored", half, "0", half == 0 and bool(stored))

    faults = []
    injected = survived = 0
    for part, label, ok_key in (("worker_kill", "worker SIGKILL", "survived"),
                                ("server_kill", "server SIGKILL", "survived"),
                                ("job_kill", "SIGKILL during a job (marked failed)", "marked_failed"),
                                ("postgres_outage", "PostgreSQL stop/start", "recovered_without_restart"),
                                ("disk_full", "SQLite disk full", None), ("read_only", "SQLite read-only", None)):
        for r in parts.get(part, []):
            n = int(r.get("injected", r.get("outages", 1)))
            ok = int(r.get(ok_key, 0)) if ok_key else (n if r.get("recovered_without_restart", True) else 0)
            injected, survived = injected + n, survived + ok
            method = f" [{r['method']}]" if "method" in r else ""
            faults.append(f"{label}{method} {ok}/{n}")
    row("faults injected vs survived", f"{injected} / {survived}: " + ", ".join(faults), "all survived",
        injected > 0 and injected == survived)

    access = parts.get("access", [{}])[-1]
    row("routes × callers checked for access", f"{access.get('routes_checked', 0)} routes, "
        f"{access.get('requests', 0)} requests", "every route has a rule",
        bool(access) and access.get("routes_without_rule") == 0)
    limit = parts.get("rate_limit", [{}])[-1]
    row("rate limit on recommendations", f"{limit.get('status', '–')} {limit.get('code', '')}, Retry-After "
        f"{limit.get('retry_after', '–')} s", "429 in the error shape", limit.get("status") == 429)
    logs = parts.get("logs", [{}])[-1]
    row("contact data in logs", f"{logs.get('leaked', '–')} (of {logs.get('records', 0)} log records)", "0",
        logs.get("leaked") == 0 and logs.get("records", 0) > 0)
    _deployment_rows(parts, row)
    return rows


def _p95_ok(r: dict[str, Any], probes: str, ok: str, p95: str) -> bool:
    return bool(r) and r.get(probes, 0) > 0 and r.get(ok) == r.get(probes) and float(r.get(p95, 1e9)) < 1000


def _deployment_rows(parts: dict[str, list[dict[str, Any]]], row: Any) -> None:
    """The rows of issue 16: erasure, slow clients through the proxy, job isolation, big-job interference."""
    erasure = parts.get("erasure", [{}])[-1]
    row("erasure: name, e-mail, phone found after erasure (database files + WAL / API answers)",
        f"{erasure.get('file_hits', '–')} in {len(erasure.get('files_checked', []))} files / "
        f"{erasure.get('answer_hits', '–')} in {erasure.get('answers_checked', 0)} answers; "
        f"{erasure.get('jobs_redacted', 0)} jobs redacted", "0 / 0",
        bool(erasure) and erasure.get("file_hits") == 0 and erasure.get("answer_hits") == 0
        and erasure.get("answers_checked", 0) > 0)
    slow = parts.get("slow_clients", [{}])[-1]
    row(f"slow clients through nginx ({slow.get('connections', '?')} connections at 1 byte/s, "
        f"{slow.get('seconds', '?')} s): /healthz and recommendation p95",
        f"{slow.get('healthz_ok', '–')}/{slow.get('healthz_probes', 0)} answered, "
        f"p95 {slow.get('healthz_p95_ms', '–')} ms; {slow.get('recommend_ok', '–')}/"
        f"{slow.get('recommend_probes', 0)}, p95 {slow.get('recommend_p95_ms', '–')} ms (without proxy: /healthz "
        f"{slow.get('direct_healthz_ok', '–')}/{slow.get('direct_healthz_probes', 0)})",
        "all answered, p95 < 1 s", _p95_ok(slow, "healthz_probes", "healthz_ok", "healthz_p95_ms")
        and _p95_ok(slow, "recommend_probes", "recommend_ok", "recommend_p95_ms"))
    answered, _, sent = str(slow.get("proxy_errors_json", "–/0")).partition("/")
    row("the proxy's own errors (400, 405, 413, 414, 431, 502, …) in the one error shape",
        slow.get("proxy_errors_json", "–"), "all", answered == sent and sent not in ("", "0"))
    iso = parts.get("job_isolation", [{}])[-1]
    row("job isolation: other keys' requests on a job answered 404",
        f"{iso.get('other_key_404', '–')} of {iso.get('requests', 0)} ({iso.get('jobs', 0)} jobs; admin saw "
        f"{iso.get('admin_seen', '–')})", "all 404",
        bool(iso) and iso.get("requests", 0) > 0 and iso.get("other_key_404") == iso.get("requests"))
    busy = parts.get("job_interference", [{}])[-1]
    ratio = busy.get("ratio")
    row(f"big job ({busy.get('texts', '?')} texts) vs recommendation p99",
        f"idle {busy.get('idle_p99_ms', '–')} ms, during the job {busy.get('busy_p99_ms', '–')} ms "
        f"({ratio if ratio is None else round(float(ratio), 2)}×)", "≤ 3× idle",
        ratio is not None and float(ratio) <= 3.0 and busy.get("busy_requests", 0) > 0)


def format_table(rows: list[dict[str, Any]]) -> str:
    width = max(len(r["measure"]) for r in rows)
    lines = [f"{'measure':<{width}}  {'goal':<22}  ok  value", "-" * (width + 60)]
    for r in rows:
        lines.append(f"{r['measure']:<{width}}  {r['goal']:<22}  {'✓' if r['met'] else '✗'}   {r['value']}")
    return "\n".join(lines)


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return head + ("+uncommitted" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    extra = list(argv if argv is not None else sys.argv[1:])
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        records_file = Path(tmp) / "records.jsonl"
        env = {**os.environ, "MATCHER_RELIABILITY": "full", REPORT_ENV: str(records_file),
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout=1500", *TESTS, *extra]
        print("$ MATCHER_RELIABILITY=full python " + " ".join(cmd[1:]), flush=True)
        exit_code = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        records = read_records(records_file)
    parts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        parts[r.pop("part")].append(r)
    rows = build_table(parts)
    seconds = round(time.monotonic() - started, 1)
    print("\nReliability (make check-reliability)\n")
    print(format_table(rows))
    print(f"\npytest exit code {exit_code}; {seconds} s")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "command": "make check-reliability", "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _commit(), "seconds": seconds, "cpus": os.cpu_count(), "pytest_exit_code": exit_code,
        "table": rows, "parts": parts}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written to {OUT.relative_to(ROOT)}")
    return 0 if exit_code == 0 and all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
