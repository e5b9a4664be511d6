"""A real gunicorn server on a loopback port for the benchmarks, with its start-up time and memory.

Started as ``make run`` starts it (``service.wsgi:app``, 1 worker, 8 threads; more workers for the
memory rows) on a free port of 127.0.0.1, in its own process group so that stopping it stops its
workers too.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["BenchServer"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _status_kb(pid: int, field: str) -> int:
    m = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(m[1]) if m else 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its finished children's too), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / os.sysconf("SC_CLK_TCK")


def _rollup_kb(pid: int, field: str) -> int:
    m = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/smaps_rollup").read_text(), re.M)
    return int(m[1]) if m else 0


class BenchServer:
    """``with BenchServer(url, model) as s:`` — spawned, ready (``/readyz`` 200), stopped on exit."""

    def __init__(self, database_url: str, model: str, log: Path, threads: int = 8, extra_env: dict | None = None,
                 timeout: float = 1800, workers: int = 1, index_dir: Path | None = None):
        self.workers = workers
        self.index_dir = index_dir
        self.database_url = database_url
        self.model = model
        self.log = log
        self.threads = threads
        self.extra_env = extra_env or {}
        self.timeout = timeout

    def __enter__(self) -> BenchServer:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MATCHER_DATABASE_URL": self.database_url,
               "MATCHER_MODEL": self.model, "MATCHER_OPEN_RECOMMENDATIONS": "true", "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1",
               # the limiter stays on (its cost is part of every request) but never refuses a load test
               "MATCHER_RATE_LIMIT_RECOMMENDATIONS": "1000000 per minute",
               # where the fitted index is kept between starts (false: fit at every start)
               "MATCHER_INDEX_DIR": str(self.index_dir) if self.index_dir else "false", **self.extra_env}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
             "--threads", str(self.threads), "--timeout", "1800", "service.wsgi:app"],
            cwd=ROOT, env=env, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        ready: set[int] = set()
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}: see {self.log}")
                if time.monotonic() - started > self.timeout:
                    raise RuntimeError(f"server not ready after {self.timeout:.0f} s: see {self.log}")
                try:
                    # ready when every worker has answered 200 (each answer names its process: a loading
                    # worker seldom wins a connection, so 200s in a row from one ready worker said little)
                    answer = requests.get(f"{self.base}/readyz", timeout=5)
                    if answer.status_code == 200:
                        ready.add(answer.json()["worker"])
                        if len(ready) >= self.workers:
                            break
                except requests.RequestException:
                    pass
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        # CPU the start used (master and workers, user + system): steadier than the wall time on a shared machine
        self.startup_cpu_seconds = sum(_cpu_seconds(pid) for pid in [self.proc.pid, *_children(self.proc.pid)])
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def worker_pids(self) -> list[int]:
        workers = _children(self.proc.pid)
        if len(workers) != self.workers:
            raise RuntimeError(f"expected {self.workers} gunicorn worker(s), found {workers}")
        return workers

    def worker_pid(self) -> int:
        return self.worker_pids()[0]

    def pss_mb(self) -> dict[str, float]:
        """Proportional set size (shared pages divided among the processes that map them, so a sum counts
        them once) of every worker and of the master, from ``/proc/PID/smaps_rollup``, in MB."""
        workers = [_rollup_kb(pid, "Pss") / 1024 for pid in self.worker_pids()]
        return {"workers_pss_mb": [round(w, 1) for w in workers], "workers_pss_total_mb": round(sum(workers), 1),
                "master_pss_mb": round(_rollup_kb(self.proc.pid, "Pss") / 1024, 1),
                "workers_rss_mb": [round(_status_kb(pid, "VmRSS") / 1024, 1) for pid in self.worker_pids()],
                "workers_peak_rss_mb": [round(_status_kb(pid, "VmHWM") / 1024, 1) for pid in self.worker_pids()]}

    def memory_mb(self) -> dict[str, float]:
        """The worker's resident memory now and its peak (VmHWM) so far, in MB."""
        pid = self.worker_pid()
        return {"rss_mb": round(_status_kb(pid, "VmRSS") / 1024, 1),
                "peak_rss_mb": round(_status_kb(pid, "VmHWM") / 1024, 1)}

    def metric(self, name: str) -> float:
        text = requests.get(f"{self.base}/metrics", timeout=30).text
        m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        if m is None:
            raise KeyError(name)
        return float(m[1])
