"""A real gunicorn server (several workers) on loopback: mixed load from bounded concurrent clients, malformed
HTTP, and SIGKILL of a worker, of the whole server and of a running batch job — the store compared with every
write the clients were told about."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest
import requests

from bench.reliability.faults import WriteLedger, store_matches, wait_for_workers, worker_pids
from bench.reliability.load import WRITES, Load, feedback_found, run_load
from bench.reliability.report import record
from bench.reliability.sizes import current, is_full
from conftest import ServerProcess, free_port

pytestmark = pytest.mark.slow
STALE = 5.0          # seconds without a heartbeat after which a job counts as lost (a loaded 2-core
                     # machine with 8 writers on SQLite can delay a 0.3 s heartbeat by 2 s: the job was failed early)


class Served:
    """The module's server: one SQLite store, one gunicorn server (restarted after it is killed)."""

    def __init__(self, root: Path, url: str, workers: int):
        from matcher.store import Store

        self.root, self.url, self.workers = root, url, workers
        self.store = Store(url)
        self.keys = {role: f"Bearer {self.store.create_key(role)[1]}" for role in ("reader", "editor")}
        self.ids = {kind: [e.id for e in self.store.list_entities(kind, limit=500)[0]]
                    for kind in ("advisor", "organisation", "event")}
        self.ready = root / "ready"
        self.ready.mkdir()
        self.server: ServerProcess | None = None
        self.logs: list[Path] = []

    @property
    def base(self) -> str:
        return self.server.url

    def start(self, workers: int | None = None) -> Served:
        self.workers = workers or self.workers
        port = free_port()
        log = self.root / f"server-{port}.log"
        self.logs.append(log)
        self.server = ServerProcess(f"http://127.0.0.1:{port}", self.url, log, workers=self.workers,
                                    gunicorn_args=("-c", "python:bench.reliability.gunicorn_ready"),
                                    MATCHER_READY_DIR=str(self.ready), MATCHER_JOB_HEARTBEAT_SECONDS="0.3",
                                    MATCHER_JOB_STALE_SECONDS=str(STALE)).start()
        self.wait_workers()
        return self

    def wait_workers(self, exclude: tuple[int, ...] = ()) -> list[int]:
        """Until every worker has loaded the app (each leaves a file named by its pid)."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            pids = wait_for_workers(self.server.proc.pid, self.workers, exclude=exclude)
            if all((self.ready / str(p)).exists() for p in pids):
                return pids
            time.sleep(0.1)
        raise AssertionError(f"workers not ready:\n{self.server.log()}")

    def healthy(self) -> bool:
        ready = requests.get(f"{self.base}/readyz", timeout=30)
        rec = requests.post(f"{self.base}/v1/recommendations/advisors", timeout=60,
                            headers={"Authorization": self.keys["reader"]},
                            json={"text": "Faire Beschaffung für das Rathaus", "k": 3})
        return ready.status_code == 200 and rec.status_code == 200

    def integrity(self) -> str:
        with self.store.engine.connect() as conn:
            return conn.exec_driver_sql("PRAGMA integrity_check").scalar()


@pytest.fixture(scope="module")
def served(tmp_path_factory, seed_store):
    root = tmp_path_factory.mktemp("served")
    url = f"sqlite:///{root / 'store.db'}"
    seed_store(url)
    s = Served(root, url, current().load_workers).start()
    yield s
    s.server.kill(signal.SIGTERM)
    s.store.close()


def _check(served: Served, ledger: WriteLedger, version_before: int) -> dict:
    """The store against the ledger; the catalog version moved once per write that committed."""
    check = store_matches(served.store, ledger.acknowledged, refused=ledger.refused, uncertain=ledger.uncertain)
    moved = served.store.catalog_version() - version_before
    assert check.ok, check
    assert ledger.writes_acknowledged <= moved <= ledger.writes_acknowledged + ledger.writes_uncertain, \
        (moved, ledger.writes_acknowledged, ledger.writes_uncertain)
    assert served.integrity() == "ok"
    return check.figures()


def test_mixed_load_answers_every_request_and_keeps_every_acknowledged_write(served):
    sizes = current()
    version = served.store.catalog_version()
    report = run_load(served.base, served.keys, served.ids, seconds=sizes.load_seconds, clients=sizes.load_clients)
    store = _check(served, report.ledger, version)
    found_feedback = feedback_found(served.store, report.feedback)
    figures = report.figures()
    record("load", workers=served.workers, **figures, **store, feedback_found=found_feedback)
    assert report.requests > sizes.load_clients, "the load never got going"
    assert report.errors == 0, report.error_samples
    assert found_feedback == len(report.feedback)
    assert report.ledger.writes_acknowledged > 0 and len(report.feedback) > 0, "the mix wrote nothing"
    log = "\n".join(p.read_text(errors="replace") for p in served.logs)
    assert "Lastperson" not in log and "@example.org" not in log, "contact data in the server log"


def _raw(served: Served, payload: bytes) -> int:
    """Send raw bytes as a request; the status the server answers with (0: it closed without one)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=30) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass                      # the server refused and closed before reading everything
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


MALFORMED = {
    "request line of 100 KB": b"GET /v1/entities?city=" + b"x" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "header of 100 KB": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Gross: " + b"y" * 100_000 + b"\r\n\r\n",
    "10,000 headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(10_000))
                      + b"\r\n",
    "bytes that are not HTTP": b"\xff\xfe\x00\x01 GARBAGE \x80\x81\r\n\r\n",
    "negative Content-Length": b"POST /v1/feedback HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    "broken chunked body": b"POST /v1/entities HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                           b"Content-Type: application/json\r\n\r\nZZZ\r\n{}\r\n0\r\n\r\n",
    "body shorter than Content-Length": b"POST /v1/recommendations/advisors HTTP/1.1\r\nHost: x\r\n"
                                        b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"text\": ",
}


def test_malformed_http_is_refused_and_the_server_stays_healthy(served):
    """Requests that never reach the app: gunicorn refuses them (its own 4xx, plain text) or drops the
    connection, and the server goes on serving."""
    statuses = {name: _raw(served, payload) for name, payload in MALFORMED.items()}
    assert all(s == 0 or 400 <= s < 500 for s in statuses.values()), statuses
    assert served.healthy()
    record("malformed_http", requests=len(statuses), statuses=statuses, server_errors=0, healthy_after=True)


def test_a_worker_killed_during_writes_loses_nothing_acknowledged(served):
    """SIGKILL one worker at a time while 8 clients write: the master starts a new worker, requests on the
    killed one have no answer (never a wrong one), and the store holds every acknowledged write, whole."""
    kills = current().worker_kills
    version = served.store.catalog_version()
    killed: list[int] = []
    with Load(served.base, served.keys, served.ids, clients=8, mix=WRITES, first_client=100) as load:
        for _ in range(kills):
            time.sleep(1.0)
            victim = worker_pids(served.server.proc.pid)[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
            # the master forks a successor at once; the full run also waits until it serves
            if is_full():
                served.wait_workers(exclude=tuple(killed))
            else:
                wait_for_workers(served.server.proc.pid, served.workers, exclude=killed)
        time.sleep(0.5)
    report = load.report
    store = _check(served, report.ledger, version)
    answered_5xx = sum(n for status, n in report.statuses.items() if status >= 500)
    survived = served.healthy()
    record("worker_kill", injected=kills, survived=kills if survived and answered_5xx == 0 else 0,
           requests=report.requests, no_answer=report.no_answer, answered_5xx=answered_5xx, **store)
    assert answered_5xx == 0, report.error_samples
    assert report.ledger.writes_acknowledged > 0
    assert survived


def test_the_server_killed_during_writes_and_a_job_restarts_with_every_acknowledged_write(served):
    """SIGKILL the whole server (master and workers) while clients write and a batch job runs; after a
    restart the store holds every acknowledged write whole, and the job is marked failed, not lost."""
    kills = current().server_kills
    survived = jobs_failed = 0
    totals: dict[str, int] = {}
    for round_ in range(kills):
        version = served.store.catalog_version()
        with Load(served.base, served.keys, served.ids, clients=8, mix=WRITES, first_client=200 + 20 * round_) as load:
            time.sleep(1.5)                            # writes in flight
            job = _start_long_job(served, tag=f"k{round_}")
            assert _job(served, job)["state"] == "running"
            served.server.kill()                       # SIGKILL to the process group: no cleanup at all
        report = load.report
        _wait_job_stale(served, job)
        served.start(workers=None if is_full() else 1)    # make test: one worker is quicker to start
        store = _check(served, report.ledger, version)
        for key, value in store.items():
            totals[key] = totals.get(key, 0) + value
        state = _job(served, job)
        assert state["state"] == "failed" and state["error"]["code"] == "job_interrupted", state
        jobs_failed += 1
        assert served.healthy()
        survived += 1
    record("server_kill", injected=kills, survived=survived, **totals)
    record("job_kill", injected=kills, marked_failed=jobs_failed, vanished=kills - jobs_failed)


def _start_long_job(served: Served, tag: str) -> str:
    needs = ["Die Stadt möchte ihre Partnerschaft mit einer Gemeinde in Ghana ausbauen",
             "Wir suchen Beratung zur fairen Beschaffung von Dienstkleidung",
             "Migrantenorganisationen sollen in die kommunale Entwicklungspolitik eingebunden werden"]
    body = {"requests": [{"id": f"{tag}-{i}", "text": f"{needs[i % 3]} (Anfrage {tag}-{i})", "city": "Köln"}
                         for i in range(400)], "allow_partial": True, "alternates": 1}
    r = requests.post(f"{served.base}/v1/jobs/assignments", json=body, timeout=60,
                      headers={"Authorization": served.keys["reader"]})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 60
    while _job(served, job_id)["state"] != "running":
        assert time.monotonic() < deadline, _job(served, job_id)
        time.sleep(0.05)
    return job_id


def _job(served: Served, job_id: str) -> dict:
    job = served.store.jobs.get(job_id)
    return {"state": job.state, "error": job.error, "heartbeat": job.heartbeat}


def _wait_job_stale(served: Served, job_id: str) -> None:
    """The job's process is gone: wait until its last heartbeat is older than the stale limit."""
    while time.time() - _job(served, job_id)["heartbeat"].timestamp() <= STALE:
        time.sleep(0.1)
