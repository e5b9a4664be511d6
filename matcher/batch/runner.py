"""Running batch jobs (invitation lists, advisor assignments) in the background of a serving process.

:class:`JobRunner` accepts jobs in the serving process and runs them — in its
low-priority job process (:mod:`matcher.batch.job_process`), or in daemon
threads of the serving process on the live matcher — writing state, progress
and result to the store
(``store.jobs``, :class:`~matcher.store.job_store.JobStore`), so any process or
replica on the same database can answer for them; invitation jobs read the
invitation history (``store.invitations``). No Flask here.

**A job is never silently lost.** Several processes (gunicorn workers,
replicas) share one database, so "the process that ran it has died" cannot be
decided by a starting process alone. The rule:

* every job carries its ``owner`` (host, pid and a random token of the
  process that accepted it) and a ``heartbeat_at`` that the owner refreshes
  every ``heartbeat_seconds`` while the job is queued or running;
* a queued or running job whose heartbeat is older than ``stale_seconds`` is
  marked failed (code ``job_interrupted``) by whichever process looks first:
  a process starting up, a process with jobs of its own (at each heartbeat),
  and any read of that job. A live owner's jobs are never stale, so starting a
  process never fails the jobs another live process is running;
* a process that stops normally (SIGTERM, gunicorn restarts) marks its own
  unfinished jobs failed at once;
* every state change of a job is conditional on its owner and its state, so a
  job that was marked failed is never resurrected by a late "done".

``stale_seconds`` must be several heartbeats long (at least three), and
replicas' clocks must agree to within a few seconds (NTP).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import logging
import os
import queue
import secrets
import signal
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from matcher.batch.assignment import DEFAULT_ALTERNATES, check_assignment_request
from matcher.batch.invitations import (
    check_invitation_request,
)
from matcher.batch.job_process import JobProcess, JobProcessError
from matcher.batch.job_work import ProgressWriter, compute, invitation_args, judged_sets
from matcher.batch.priority import lower_thread_priority
from matcher.batch.quotas import KeyQuota, check_key_quota, distinct_texts
from matcher.batch.requests import AdvisorRequest
from matcher.domain.messages import alternatives, quoted
from matcher.errors import ConflictError, MatcherError, ValidationError
from matcher.store import Store
from matcher.store.db import now as utc_now
from matcher.store.job_redaction import redact_vanished
from matcher.store.job_store import ACTIVE_STATES, JOB_KINDS, Job, JobFailedError, JobNotDoneError

__all__ = [
    "ACTIVE_STATES",
    "JOB_KINDS",
    "Job",
    "JobFailedError",
    "JobNotDoneError",
    "JobRunner",
    "TooManyJobsError",
]

log = logging.getLogger(__name__)

IDLE_SECONDS = 30.0     # a worker thread with nothing to do for this long ends (a new job starts one)


class TooManyJobsError(ConflictError):
    """This process already holds as many unfinished jobs as it accepts."""

    code = "too_many_jobs"


class JobRunner:
    """Accepts jobs, runs them in ``workers`` daemon threads of this process, keeps them alive in the store.

    Follows the estimator contract loosely: ``__init__`` stores, :meth:`start` checks the settings,
    fails the stale jobs of stopped processes and deletes expired ones.

    Args:
        store: the store: jobs live in ``store.jobs``, invitation jobs read ``store.invitations``.
        live: the :class:`~matcher.live.LiveMatcher` jobs run on (its current catalog at the time a job starts).
        workers: jobs run at the same time in this process (they are CPU-bound: 1 on a small machine).
        heartbeat_seconds: how often this process signs its unfinished jobs as alive.
        stale_seconds: a job without a sign of life for this long is marked failed (≥ 3 heartbeats).
        max_pending: unfinished jobs this process accepts (queued and running).
        retention_days: finished jobs are deleted after this many days.
        quota: per-key limits (pending jobs, texts per hour), see :mod:`matcher.batch.quotas`.
        process: run the jobs in this low-priority process (:mod:`matcher.batch.job_process`); None: in
            threads of this process, where the next three settings apply.
        niceness: how much lower the job threads' CPU priority is (0: as requests').
        encode_batch, encode_pause, busy: texts encoded at a time, the pause after each batch as a multiple
            of its time (0: none), and a callable that is true while interactive requests are served (the
            job waits before each batch meanwhile); see :meth:`matcher.live.StoreBackedEmbedder.in_background`.

    Example:
        >>> runner = JobRunner(store, live).start()
        >>> job = runner.submit("invitations", {"event": "evt-113", "size": 10})
        >>> runner.get(job.id).state in ("queued", "running", "done")
        True
    """

    def __init__(self, store: Store, live: Any, *, workers: int = 1, heartbeat_seconds: float = 5.0,
                 stale_seconds: float = 60.0, max_pending: int = 20, retention_days: float = 30.0,
                 quota: KeyQuota | None = None, niceness: int = 0, encode_batch: int = 8,
                 encode_pause: float = 0.0, busy: Callable[[], bool] | None = None,
                 process: JobProcess | None = None):
        self.store = store
        self.live = live
        self.workers = workers
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_seconds = stale_seconds
        self.max_pending = max_pending
        self.retention_days = retention_days
        self.quota = quota
        self.niceness = niceness
        self.encode_batch = encode_batch
        self.encode_pause = encode_pause
        self.busy = busy
        self.process = process
        self.progress_interval = 0.2     # seconds between progress writes (the job process writes less often)

    def start(self) -> JobRunner:
        """Check the settings, fail the stale jobs of stopped processes, delete expired jobs.

        Raises:
            ValidationError: settings out of range (``stale_seconds`` < 3 heartbeats, …).
        """
        problems = []
        if self.workers < 1:
            problems.append({"field": "JOB_WORKERS", "message": "mindestens 1"})
        if self.heartbeat_seconds <= 0:
            problems.append({"field": "JOB_HEARTBEAT_SECONDS", "message": "größer als 0"})
        if self.stale_seconds < 3 * self.heartbeat_seconds:
            problems.append({"field": "JOB_STALE_SECONDS", "message": "mindestens 3 × JOB_HEARTBEAT_SECONDS"})
        if self.max_pending < 1:
            problems.append({"field": "JOB_MAX_PENDING", "message": "mindestens 1"})
        if problems:
            raise ValidationError("Ungültige Einstellungen für Aufträge", problems)
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._active: dict[str, str] = {}           # job id → kind, this process's unfinished jobs
        self._stopping = threading.Event()
        self.stale_after = dt.timedelta(seconds=self.stale_seconds)
        self.store.jobs.fail_stale(self.stale_after)
        self.store.jobs.delete_finished(dt.timedelta(days=self.retention_days))
        self._cleaned_at = time.monotonic()
        me = weakref.ref(self)   # the hook must not keep a discarded runner (and its matcher) alive
        atexit.register(lambda: (runner := me()) is not None and runner._at_exit())
        return self

    # -- this process
    @property
    def owner(self) -> str:
        """This process's owner id (new after a fork: a forked child is another process)."""
        self._ensure_threads()
        return self._owner

    def _ensure_threads(self) -> None:
        """Set up this process's owner id and queue (again after a fork). The worker and heartbeat
        threads start with the first job and end when there has been nothing to do for a while."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"
            self._queue: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue()
            self._active = {}
            self._workers: list[threading.Thread] = []
            self._heartbeat: threading.Thread | None = None
            self._pid = os.getpid()

    def _enqueue(self, job_id: str, kind: str, params: dict[str, Any]) -> None:
        """Queue a job and make sure threads are there to run it and to keep it alive (lock held)."""
        self._active[job_id] = kind
        self._queue.put((job_id, kind, params))
        self._workers = [t for t in self._workers if t.is_alive()]
        if len(self._workers) < min(self.workers, len(self._active)):
            worker = threading.Thread(target=self._work, name=f"matcher-job-{len(self._workers)}", daemon=True)
            self._workers.append(worker)
            worker.start()
        if self._heartbeat is None or not self._heartbeat.is_alive():
            self._heartbeat = threading.Thread(target=self._beat, name="matcher-job-heartbeat", daemon=True)
            self._heartbeat.start()

    @property
    def pending(self) -> int:
        """Unfinished jobs of this process."""
        return len(self._active) if self._pid == os.getpid() else 0

    # -- submitting
    def check(self, kind: str, params: dict[str, Any]) -> None:
        """The synchronous checks of a job (unknown ids, bad quotas, unplaceable requests): they raise
        here, before a job exists, so the caller gets a 4xx at once."""
        _, matcher = self.live.current()
        if kind == "invitations":
            args = invitation_args(params)
            check_invitation_request(matcher, args["event_id"], args["size"], quotas=args["quotas"],
                                     max_per_city=args["max_per_city"], mmr_lambda=args["mmr_lambda"],
                                     waitlist=args["waitlist"], include_kinds=args["include_kinds"])
        elif kind == "ranker":
            judged_sets(params)
        elif kind == "assignments":
            requests = [r if isinstance(r, AdvisorRequest) else AdvisorRequest.model_validate(r)
                        for r in params["requests"]]
            if not requests:
                raise ValidationError("Bitte mindestens eine Anfrage senden", [{"field": "requests"}])
            check_assignment_request(matcher, requests, k_alternates=int(params.get("alternates", DEFAULT_ALTERNATES)),
                                     capacities=params.get("capacities"))
        else:
            raise ValidationError(f"Unbekannte Auftragsart {quoted(kind)}; erlaubt: {alternatives(JOB_KINDS)}",
                                  [{"field": "kind", "value": kind}])

    def submit(self, kind: str, params: dict[str, Any], key_id: str | None = None) -> Job:
        """Check ``params`` (see :meth:`check`), store a queued job and queue it here.

        Raises:
            TooManyJobsError: this process already holds ``max_pending`` unfinished jobs.
            QuotaExceededError, JobTooLargeError: the key's limits (:mod:`matcher.batch.quotas`).
            ValidationError, UnknownEntityError: from the checks.
        """
        owner = self.owner
        if self.pending >= self.max_pending:
            raise TooManyJobsError(f"Es sind schon {self.pending} Aufträge in Arbeit; bitte warten, bis einer fertig "
                                   "ist, und dann erneut senden", [{"pending": self.pending,
                                                                   "limit": self.max_pending}])
        self.check(kind, params)
        texts = self.texts_to_encode(kind, params)
        if key_id is not None and self.quota is not None:
            check_key_quota(self.store.jobs, self.quota, key_id, texts)
        job = self.store.jobs.create(kind, self._stored_params(kind, params), owner=owner, key_id=key_id,
                                     texts=texts)
        with self._lock:
            self._enqueue(job.id, kind, params)
        return job

    def texts_to_encode(self, kind: str, params: dict[str, Any]) -> int:
        """How many texts the job would encode: its distinct texts whose vectors are not cached."""
        texts = distinct_texts(kind, params)
        cached = getattr(self.live.embedder, "cached", None)
        return len(texts) - (len(cached(texts, "query")) if texts and cached else 0)

    @staticmethod
    def _stored_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """What the job row keeps of its parameters: for assignments the settings and request ids,
        not the requests' texts (the result holds what staff need)."""
        if kind != "assignments":
            return params
        reqs = params.get("requests") or []
        ids = [r.id if isinstance(r, AdvisorRequest) else r.get("id") for r in reqs]
        return {**{k: v for k, v in params.items() if k != "requests"}, "requests": len(ids), "request_ids": ids[:50]}

    # -- reading
    def get(self, job_id: str) -> Job:
        """The job, marked failed first if its process has stopped (see the module's rule)."""
        job = self.store.jobs.get(job_id)
        if job.active and job.heartbeat is not None and utc_now() - job.heartbeat > self.stale_after:
            if self.store.jobs.fail_stale(self.stale_after, job_id=job_id):
                job = self.store.jobs.get(job_id)
        return job

    # -- the threads
    def _work(self) -> None:
        me = threading.current_thread()
        lower_thread_priority(self.niceness)
        while True:
            try:
                job_id, kind, params = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:   # _enqueue starts a new worker if this one has gone
                    if self._queue.empty():
                        self._workers = [t for t in self._workers if t is not me]
                        return
                continue
            try:
                self._execute(job_id, kind, params)
            finally:
                with self._lock:
                    self._active.pop(job_id, None)

    def _execute(self, job_id: str, kind: str, params: dict[str, Any]) -> None:
        """Run the job in the job process if there is one, else in this thread."""
        if self.process is None:
            self.run_job(job_id, kind, params)
            return
        try:
            self.process.run(job_id, self._owner, kind, params)
        except JobProcessError as exc:
            status = (exc.details or [{}])[0].get("exit_status")
            if self._stopping.is_set() or status in (-signal.SIGTERM, -signal.SIGINT):
                # the whole process group (gunicorn stopping, systemd's cgroup, Ctrl-C) was told to stop:
                # the child's end is the server's stop, and the user reads that, whichever noticed first
                self._fail(job_id, self._owner, {"code": exc.code, "message": self.STOPPED_MESSAGE,
                                                 "details": exc.details})
            else:
                self._fail(job_id, self._owner, {"code": exc.code, "message": exc.message, "details": exc.details})

    def run_job(self, job_id: str, kind: str, params: dict[str, Any], owner: str | None = None) -> None:
        """Run one stored job here and store its outcome (as ``owner``: default this process)."""
        owner = owner or self._owner
        try:
            if not self.store.jobs.start(job_id, owner):
                log.warning("job %s was no longer ours to run (marked failed meanwhile)", job_id)
                return
            progress = ProgressWriter(self.store.jobs, job_id, owner, interval=self.progress_interval)
            version, matcher = self.live.current()
            paced = getattr(self.live.embedder, "in_background", None)
            with paced(self.encode_batch, self.encode_pause, self.busy) if paced else contextlib.nullcontext():
                result = compute(self.store, kind, params, matcher, progress)
            # an entity erased while this matcher was not yet refitted must not come back with the result
            result = redact_vanished(self.store, version, result)
            if not self.store.jobs.finish(job_id, owner, result):
                log.warning("job %s finished after it had been marked failed; result dropped", job_id)
        except MatcherError as exc:
            self._fail(job_id, owner, {"code": exc.code, "message": exc.message, "details": exc.details})
        except Exception:  # a job's bug must not kill the worker thread; the job says so
            incident = uuid.uuid4().hex[:12]
            log.exception("job %s failed unexpectedly (incident %s)", job_id, incident)
            self._fail(job_id, owner, {"code": "internal_error",
                                       "message": f"Interner Fehler. Bitte mit der Fehlerkennung {incident} melden.",
                                       "details": [{"incident": incident}]})

    def _fail(self, job_id: str, owner: str, error: dict[str, Any]) -> None:
        try:
            self.store.jobs.fail(job_id, owner, error)
        except MatcherError as exc:  # the store is away: the stale rule fails the job later
            log.error("job %s could not be marked failed: %s", job_id, exc)

    def _beat(self) -> None:
        me = threading.current_thread()
        while not self._stopping.wait(self.heartbeat_seconds):
            with self._lock:
                ids = list(self._active)
                if not ids:          # nothing to keep alive: _enqueue starts a new heartbeat
                    if self._heartbeat is me:
                        self._heartbeat = None
                    return
            try:
                self.store.jobs.heartbeat(self._owner, ids)
                self.store.jobs.fail_stale(self.stale_after)
                if time.monotonic() - self._cleaned_at > 3600:
                    self._cleaned_at = time.monotonic()
                    self.store.jobs.delete_finished(dt.timedelta(days=self.retention_days))
            except MatcherError as exc:
                log.warning("job heartbeat failed: %s", exc)

    STOPPED_MESSAGE = "Der Auftrag wurde abgebrochen, weil der Server beendet wurde. Bitte den Auftrag neu starten."

    def stop(self, message: str = STOPPED_MESSAGE) -> int:
        """Mark this process's unfinished jobs failed (the process is stopping); return how many."""
        if self._pid != os.getpid() or not self._active:
            return 0
        self._stopping.set()
        with self._lock:
            ids = list(self._active)
        n = self.store.jobs.fail_owned(self._owner, ids, message)
        with self._lock:
            for job_id in ids:
                self._active.pop(job_id, None)
        return n

    def _at_exit(self) -> None:
        # mark the jobs first, then stop the child: stopping it first ends its job with the child's own
        # error, which races with (and could win over) the message that the server was stopped
        try:
            n = self.stop()
            if n:
                log.warning("marked %d unfinished job(s) failed at shutdown", n)
        except Exception as exc:  # at exit the stale rule is the fallback
            log.error("could not mark unfinished jobs failed at shutdown: %s", exc)
        if self.process is not None:
            self.process.close()

