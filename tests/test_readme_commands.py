"""Every command in README.md runs as written.

``make run`` is started for real (its install step is a no-op after ``make test``'s) on a free
port, in the session's data folder; then every ``sh`` block of the README runs as one bash
script (``set -euo pipefail``) from a folder that looks like the checkout (``.venv``,
``fixtures``, ``models`` and ``../shared`` linked), with ``127.0.0.1:8000`` pointed at that
server and ``curl`` failing on an HTTP error. Only the commands in ``EXEMPT`` are left out, each
for the reason it gives, so a new command cannot slip past unrun.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest
import requests

from conftest import ROOT, free_port

pytestmark = pytest.mark.slow

README = ROOT / "README.md"
EXEMPT = {
    "make test": "this test suite itself",
    "make bench": "the 16-minute benchmark; bench/README.md and `python -m bench --quick` cover it",
    "make check-reliability": "the 12-minute reliability run; `make test` runs the same tests at small size",
}


def _blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def _commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [re.sub(r"\s+#\s.*$", "", line).strip() for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_readme_has_its_two_commands_and_exempts_only_what_it_says():
    commands = [c for b in _blocks() for c in _commands(b)]
    assert "make run" in commands and "make test" in commands
    assert {c for c in commands if c.startswith("make ")} <= {"make run", *EXEMPT}


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """``make run`` on a free port, as the README starts it; its base URL once /readyz says ready."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("make-run") / "make-run.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(["make", "--no-print-directory", "run", f"PORT={port}"], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    try:
        while True:
            assert proc.poll() is None, f"make run ended with {proc.returncode}:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not ready after 300 s:\n{log_path.read_text()[-3000:]}"
            try:
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture()
def checkout_like(tmp_path):
    """A folder that looks like the checkout to the README's relative paths (outputs land here)."""
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    work = tmp_path / "work"
    work.mkdir()
    for name in (".venv", "fixtures", "models"):
        (work / name).symlink_to(ROOT / name)
    return work


def _runnable() -> list[int]:
    """Blocks with a command beside ``make run`` (started by the fixture) and the exempt ones."""
    return [i for i, b in enumerate(_blocks()) if any(c not in EXEMPT and c != "make run" for c in _commands(b))]


@pytest.mark.parametrize("number", _runnable())
def test_readme_block_runs_as_written(number, demo_server, checkout_like):
    block = _blocks()[number]
    script = "\n".join([
        "set -euo pipefail",
        'curl() { command curl --fail-with-body --max-time 120 "$@"; }',
        re.sub(r"\\\n\s*", " ", block).replace("http://127.0.0.1:8000", demo_server),
    ])
    script = "\n".join(line for line in script.splitlines() if line.split("#")[0].strip() not in EXEMPT
                       and line.split("#")[0].strip() != "make run")
    proc = subprocess.run(["bash", "-c", script], cwd=checkout_like, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"README block {number} failed ({proc.returncode}):\n{script}\n{proc.stdout[-3000:]}" \
                                 f"\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), f"README block {number} printed nothing:\n{script}"
