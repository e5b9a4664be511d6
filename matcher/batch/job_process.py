"""Batch jobs in a process of their own, at the lowest CPU priority (``nice 19``).

Why a process: a job that runs in a thread of the serving process competes
with the request threads for the interpreter lock, whatever its CPU priority —
a thread holds the lock while it works, and a low-priority thread that holds
it while the kernel lets it wait makes the request threads wait too. Measured
on 2 cores (docs/batch-jobs.md): threads that give way and pace their
encoding still pushed recommendation p99 to 2–4× idle; a job process at nice
19 does not share the lock at all, and the kernel gives the requests the CPU first.

:class:`JobProcess` is the serving process's side: it starts
``python -m matcher.batch.job_child`` on the first job (the child loads the
model and fits the catalog from the store, whose vectors it reuses), sends it
one job at a time as a JSON line, and waits for its answer line. The child
writes the job's state, progress and result to the store itself, under the
owner id of the serving process, whose heartbeat keeps the job alive
(see :mod:`matcher.batch.runner`). If the child dies, the job fails and the
next job starts a new child.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from matcher.errors import MatcherError

__all__ = ["JobProcess", "JobProcessError"]

log = logging.getLogger(__name__)


class JobProcessError(MatcherError, RuntimeError):
    """The job process ended (or could not start) before it answered."""

    code = "job_process_failed"


class JobProcess:
    """The serving process's job process: started on first use, one job at a time.

    Args:
        database_url: the store the child opens (the serving process's own).
        model: the embedding model spec the child loads (``MATCHER_MODEL``'s form, e.g. ``"e5+use"``).
        threads: inference threads of the child's model (None: the backend's choice).
        niceness: added to the child's nice value (19: lowest priority).
        index_dir: where the serving process keeps its fitted index: the child maps it instead of
            fitting the catalog again (None: the child fits).
    """

    def __init__(self, database_url: str, model: str, threads: int | None = 1, niceness: int = 19,
                 index_dir: Path | None = None):
        self.index_dir = index_dir
        self.database_url = database_url
        self.model = model
        self.threads = threads
        self.niceness = niceness
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None

    def _ensure(self) -> subprocess.Popen[str]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
               "MATCHER_JOB_CHILD_DATABASE_URL": self.database_url, "MATCHER_JOB_CHILD_MODEL": self.model,
               "MATCHER_JOB_CHILD_THREADS": str(self.threads or 0), "MATCHER_JOB_CHILD_NICENESS": str(self.niceness),
               "MATCHER_JOB_CHILD_INDEX_DIR": str(self.index_dir or "")}
        self._proc = subprocess.Popen([sys.executable, "-m", "matcher.batch.job_child"], env=env, text=True,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=1)
        log.info("job process %d started", self._proc.pid)
        return self._proc

    def run(self, job_id: str, owner: str, kind: str, params: dict[str, Any]) -> None:
        """Run one job in the child and wait for it (the child writes its outcome to the store).

        Raises:
            JobProcessError: the child ended before it answered (the job's outcome is not stored).
        """
        line = json.dumps({"job": job_id, "owner": owner, "kind": kind, "params": params},
                          default=lambda o: o.model_dump(mode="json") if hasattr(o, "model_dump") else str(o))
        with self._lock:
            proc = self._ensure()
            try:
                proc.stdin.write(line + "\n")          # type: ignore[union-attr]
                proc.stdin.flush()                     # type: ignore[union-attr]
                answer = proc.stdout.readline()        # type: ignore[union-attr]
            except OSError:
                answer = ""
            if not answer:
                try:   # its output closed: wait for the exit itself (poll() can still say None right then)
                    code = proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
                self._proc = None
                raise JobProcessError(f"Der Hilfsprozess für Aufträge hat sich beendet (Status {code}); der "
                                      "Auftrag wurde nicht ausgeführt. Bitte erneut senden; bleibt es dabei, das "
                                      "Protokoll des Dienstes prüfen.", [{"job": job_id, "exit_status": code}])

    def close(self) -> None:
        """Stop the child (the serving process ends)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
