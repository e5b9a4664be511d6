"""The package works as installed software: a wheel in a fresh virtual environment, run from outside the repo.

The wheel is built from this checkout and installed with ``--no-deps`` into a new venv whose
dependencies are the ones already installed in the project's venv (a ``.pth`` line: a real
install of torch and the models would take minutes and gigabytes). ``pip check`` proves
that those satisfy the wheel's own requirements. Everything then runs from a folder outside
the repository, with no ``PYTHONPATH``: if the package reads a file of the checkout, or the
server needs the source tree, these tests fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import requests

from conftest import FIXTURES, ROOT, free_port

pytestmark = pytest.mark.slow

NEED = "Die Feuerwehr soll fair produzierte Einsatzkleidung bekommen."


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder of a fresh venv holding the built wheel, a working folder outside the repo, its env)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"   # built from a copy: setuptools leaves build/ and *.egg-info beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("matcher", "service"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(base / "dist"), str(source)], check=True, capture_output=True, cwd=base)
    wheel = next((base / "dist").glob("matcher-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # the project's installed dependencies, appended after the venv's own site-packages
    Path(site, "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], check=True,
                   capture_output=True)
    work = base / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATCHER_") and k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MATCHER_THREADS="1")
    return venv / "bin", work, env


def _run(installed, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    bin_dir, work, env = installed
    proc = subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=work, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_the_wheel_is_what_runs_and_its_requirements_are_met(installed):
    where = _run(installed, "python", "-c", "import matcher, service; print(matcher.__file__, service.__file__)")
    assert str(ROOT) not in where.stdout and "site-packages" in where.stdout
    _run(installed, "python", "-m", "pip", "check")


def test_rank_and_landscape_from_outside_the_repo(installed):
    bin_dir, work, _ = installed
    info = _run(installed, "matcher", "info").stdout
    assert str(bin_dir.parent / "var" / "matcher") in info        # the venv's own data folder, not the cwd
    _run(installed, "matcher", "db", "upgrade")
    _run(installed, "matcher", "load", "--if-empty", str(FIXTURES / "catalog.jsonl"))
    imported = _run(installed, "matcher", "vectors", "import", str(ROOT / "models" / "fixture-vectors.npz")).stdout
    assert "übernommen" in imported
    ranked = json.loads(_run(installed, "matcher", "rank", "--task", "advisors", "--city", "Bottrop", "--text",
                             NEED, "-k", "3", "--json").stdout)
    assert ranked["results"][0]["id"] == "adv-111"
    out = _run(installed, "matcher", "landscape", "--city", "Köln", "--out", "koeln.html").stdout
    assert "Köln" in out and (work / "koeln.html").stat().st_size > 1000
    assert not list(work.glob("var")) and sorted(p.name for p in work.iterdir()) == ["koeln.html"]


def test_server_from_outside_the_repo_becomes_ready_and_answers(installed):
    bin_dir, work, env = installed
    _run(installed, "matcher", "db", "upgrade")
    _run(installed, "matcher", "load", "--if-empty", str(FIXTURES / "catalog.jsonl"))
    port = free_port()
    log = open(work.parent / "gunicorn.log", "wb")
    proc = subprocess.Popen([str(bin_dir / "python"), "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                             "--threads", "2", "service.wsgi:app"], cwd=work, stdout=log, stderr=subprocess.STDOUT,
                            env={**env, "MATCHER_OPEN_RECOMMENDATIONS": "true"}, start_new_session=True)
    log.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, status = time.monotonic() + 240, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = requests.get(f"{base}/readyz", timeout=2).status_code
            except requests.RequestException:
                status = None
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, (work.parent / "gunicorn.log").read_text(errors="replace")[-3000:]
        answer = requests.post(f"{base}/v1/recommendations/advisors", timeout=30,
                               json={"text": NEED, "city": "Bottrop", "k": 3})
        assert answer.status_code == 200 and answer.json()["results"][0]["entity"]["id"] == "adv-111"
        assert requests.get(f"{base}/", timeout=5).status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
