"""Batch jobs in the store: invitation lists and advisor assignments, run in the background.

:class:`JobStore` keeps jobs (``jobs`` table) and the history of invitations
actually sent (``invitations`` table) behind the :class:`~matcher.store.Store`'s
engine. :class:`JobRunner` runs jobs in daemon threads of the serving process
on the live matcher, writing state, progress and result to the store, so any
process or replica on the same database can answer for them. No Flask here.

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
import datetime as dt
import json
import logging
import math
import os
import queue
import secrets
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy import delete as sa_delete

from matcher.batch.requests import AdvisorRequest
from matcher.batch.assignment import DEFAULT_ALTERNATES, assign_advisors, check_assignment_request
from matcher.errors import ConflictError, InfeasibleError, MatcherError, UnknownEntityError, ValidationError
from matcher.batch.invitations import (
    DEFAULT_MMR_LAMBDA,
    INVITABLE_KINDS,
    ExposurePolicy,
    InvitationRecord,
    check_invitation_request,
    invitation_list,
)
from matcher.domain.messages import KIND_LABELS, alternatives, quoted
from matcher.store import Store, entities, invitations, jobs

__all__ = [
    "ACTIVE_STATES",
    "JOB_KINDS",
    "Job",
    "JobFailedError",
    "JobNotDoneError",
    "JobRunner",
    "JobStore",
    "TooManyJobsError",
]

log = logging.getLogger(__name__)

JOB_KINDS = ("invitations", "assignments")
ACTIVE_STATES = ("queued", "running")
_CHUNK = 500
IDLE_SECONDS = 30.0     # a worker thread with nothing to do for this long ends (a new job starts one)


# a job's state as a message names it (the API's ``state`` field keeps the codes)
_STATE_LABELS = {"queued": "wartet", "running": "läuft", "done": "fertig", "failed": "fehlgeschlagen"}


class JobNotDoneError(ConflictError):
    """The job has no result yet (queued or running)."""

    code = "job_not_done"


class JobFailedError(ConflictError):
    """The job failed; it has no result."""

    code = "job_failed"


class TooManyJobsError(ConflictError):
    """This process already holds as many unfinished jobs as it accepts."""

    code = "too_many_jobs"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)  # SQLite keeps no zone; only UTC is written


def _json_ready(value: Any) -> Any:
    """``value`` as plain JSON types (numpy numbers, dates become numbers and strings)."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


@dataclass(frozen=True)
class Job:
    """One job as stored. ``progress`` is in percent (100 only when done)."""

    id: str
    kind: str
    state: str
    progress: float
    stage: str | None
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    key_id: str | None
    owner: str | None
    created: dt.datetime
    updated: dt.datetime
    heartbeat: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def require_result(self) -> dict[str, Any]:
        """The result; raises :class:`JobNotDoneError` (queued/running) or :class:`JobFailedError`
        (or, for an infeasible instance, :class:`~matcher.errors.InfeasibleError` with the job's diagnosis)."""
        if self.state == "done" and self.result is not None:
            return self.result
        if self.active:
            raise JobNotDoneError(f"Der Auftrag {self.id} ist noch nicht fertig "
                                  f"({_STATE_LABELS.get(self.state, self.state)}, "
                                  f"{math.floor(self.progress)} %); bitte später erneut abfragen",
                                  [{"job": self.id, "state": self.state}])
        error = self.error or {}
        if error.get("code") == "infeasible":
            raise InfeasibleError(error.get("message", "Keine Lösung"), error.get("details"))
        raise JobFailedError(f"Der Auftrag {self.id} ist fehlgeschlagen und hat kein Ergebnis: "
                             f"{error.get('message', 'ohne Angabe')}",
                             [{"job": self.id, "state": self.state, "code": error.get("code")}])


def _job(row: Any) -> Job:
    return Job(id=row["id"], kind=row["kind"], state=row["state"], progress=float(row["progress"]),
               stage=row["stage"], params=row["params"] or {}, result=row["result"], error=row["error"],
               key_id=row["key_id"], owner=row["owner"], created=_utc(row["created_at"]),
               updated=_utc(row["updated_at"]), heartbeat=_utc(row["heartbeat_at"]))


class JobStore:
    """Jobs and the invitation history, on a :class:`~matcher.store.Store`'s engine (one transaction a call).

    Example:
        >>> js = JobStore(store)
        >>> job = js.create("invitations", {"event": "evt-113", "size": 10}, owner="host:1:ab")
        >>> js.get(job.id).state
        'queued'
    """

    def __init__(self, store: Store):
        self.store = store

    # -- jobs
    def create(self, kind: str, params: dict[str, Any], owner: str, key_id: str | None = None) -> Job:
        """A new queued job owned by ``owner``."""
        if kind not in JOB_KINDS:
            raise ValidationError(f"Unbekannte Auftragsart {quoted(kind)}; erlaubt: {alternatives(JOB_KINDS)}",
                                  [{"field": "kind", "value": kind}])
        now = _now()
        job_id = f"job_{uuid.uuid4().hex}"
        with self.store._write() as conn:
            conn.execute(insert(jobs).values(id=job_id, kind=kind, state="queued", progress=0.0, stage=None,
                                             params=_json_ready(params), key_id=key_id, owner=owner,
                                             created_at=now, updated_at=now, heartbeat_at=now))
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        """One job. Raises :class:`~matcher.errors.UnknownEntityError`."""
        with self.store._read() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
        if row is None:
            raise UnknownEntityError(f"Unbekannter Auftrag {quoted(job_id)} "
                                     "(Aufträge werden nach einiger Zeit gelöscht)",
                                     [{"field": "job", "value": job_id}])
        return _job(row)

    def _change(self, job_id: str, owner: str, states: Sequence[str], **values: Any) -> bool:
        """Update the job if ``owner`` still holds it in one of ``states``; False if it does not."""
        now = _now()
        with self.store._write() as conn:
            n = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.owner == owner,
                                                jobs.c.state.in_(states))
                             .values(updated_at=now, heartbeat_at=now, **values)).rowcount
        return n == 1

    def start(self, job_id: str, owner: str) -> bool:
        """queued → running (False: the job is no longer this owner's to run)."""
        return self._change(job_id, owner, ("queued",), state="running")

    def report_progress(self, job_id: str, owner: str, percent: float, stage: str | None) -> bool:
        return self._change(job_id, owner, ("running",), progress=float(percent), stage=(stage or None) and stage[:100])

    def finish(self, job_id: str, owner: str, result: dict[str, Any]) -> bool:
        """running → done with ``result``."""
        return self._change(job_id, owner, ("running",), state="done", progress=100.0, stage="Fertig",
                            result=_json_ready(result))

    def fail(self, job_id: str, owner: str, error: dict[str, Any]) -> bool:
        """queued/running → failed with ``error`` (``code``, ``message``, ``details``)."""
        return self._change(job_id, owner, ACTIVE_STATES, state="failed", error=_json_ready(error))

    def heartbeat(self, owner: str, job_ids: Iterable[str]) -> int:
        """Refresh the heartbeat of ``owner``'s unfinished jobs among ``job_ids``."""
        ids = list(job_ids)
        if not ids:
            return 0
        now = _now()
        n = 0
        with self.store._write() as conn:
            for i in range(0, len(ids), _CHUNK):
                n += conn.execute(update(jobs).where(jobs.c.id.in_(ids[i : i + _CHUNK]), jobs.c.owner == owner,
                                                     jobs.c.state.in_(ACTIVE_STATES))
                                  .values(heartbeat_at=now)).rowcount
        return n

    def fail_stale(self, stale_after: dt.timedelta, job_id: str | None = None,
                   now: dt.datetime | None = None) -> list[str]:
        """Mark failed every queued or running job whose heartbeat is older than ``stale_after``
        (only ``job_id``, if given); return their ids. The process that owned them is gone."""
        cutoff = (now or _now()) - stale_after
        stale = and_(jobs.c.state.in_(ACTIVE_STATES),
                     or_(jobs.c.heartbeat_at.is_(None), jobs.c.heartbeat_at < cutoff))
        if job_id is not None:
            stale = and_(stale, jobs.c.id == job_id)
        with self.store._read() as conn:   # the common case, nothing stale, takes no write lock
            found = conn.execute(select(jobs.c.id, jobs.c.heartbeat_at).where(stale)).all()
        failed = []
        for found_id, beat in found:
            beat = _utc(beat)
            seen = beat.strftime("%d.%m.%Y %H:%M:%S UTC") if beat else "unbekannt"
            error = {"code": "job_interrupted",
                     "message": "Der Auftrag wurde nicht beendet: der Serverprozess, der ihn ausführte, läuft nicht "
                                f"mehr (letztes Lebenszeichen {seen}). Bitte den Auftrag neu starten.",
                     "details": [{"job": found_id, "last_heartbeat": beat.isoformat() if beat else None}]}
            with self.store._write() as conn:
                n = conn.execute(update(jobs).where(stale, jobs.c.id == found_id)
                                 .values(state="failed", error=error, updated_at=_now())).rowcount
            if n:
                failed.append(found_id)
        if failed:
            log.warning("marked %d job(s) failed whose process stopped: %s", len(failed), ", ".join(failed))
        return failed

    def fail_owned(self, owner: str, job_ids: Iterable[str], message: str) -> int:
        """Mark ``owner``'s unfinished jobs among ``job_ids`` failed (the process is stopping)."""
        n = 0
        for job_id in job_ids:
            n += self.fail(job_id, owner, {"code": "job_interrupted", "message": message,
                                           "details": [{"job": job_id}]})
        return n

    def delete_finished(self, older_than: dt.timedelta) -> int:
        """Delete done and failed jobs last changed more than ``older_than`` ago (retention)."""
        cutoff = _now() - older_than
        with self.store._write() as conn:
            return conn.execute(sa_delete(jobs).where(jobs.c.state.in_(("done", "failed")),
                                                      jobs.c.updated_at < cutoff)).rowcount

    # -- contact data (results are stored without it)
    def contacts(self, entity_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The current contact data of the given entities (those that have any)."""
        ids = sorted(set(entity_ids))
        out: dict[str, dict[str, Any]] = {}
        with self.store._read() as conn:
            for i in range(0, len(ids), _CHUNK):
                for eid, record in conn.execute(select(entities.c.id, entities.c.record)
                                                .where(entities.c.id.in_(ids[i : i + _CHUNK]))):
                    if record.get("contact"):
                        out[eid] = record["contact"]
        return out

    # -- invitation history
    def record_invitations(self, event_id: str, entity_ids: Sequence[str], date: dt.date | None = None,
                           key_id: str | None = None, job_id: str | None = None) -> dict[str, Any]:
        """Record that the entities were invited to the event (each pair once); all or nothing.

        ``date`` is the date the invitation counts for in exposure control (default: the
        event's date, else today).

        Returns:
            ``{"event", "date", "recorded": [new ids], "already_recorded": [ids]}``.

        Raises:
            UnknownEntityError: no such event. ValidationError: not an event, duplicate, unknown
                or uninvitable entity ids (one detail each).
        """
        ids = list(entity_ids)
        if not ids:
            raise ValidationError("Bitte mindestens eine eingeladene Organisation angeben (entity_ids)",
                                  [{"field": "entity_ids"}])
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValidationError("Doppelte ids in entity_ids; nichts wurde gespeichert",
                                  [{"field": "entity_ids", "value": d} for d in dupes])
        event = self.store.get_entity(event_id)
        if event.kind != "event":
            raise ValidationError(f"{quoted(event_id)} ist keine Veranstaltung "
                                  f"(Art: {KIND_LABELS.get(event.kind, event.kind)})",
                                  [{"field": "event", "value": event_id}])
        when = date or getattr(event, "date", None) or dt.date.today()
        with self.store._write() as conn:
            kinds: dict[str, str] = {}
            for i in range(0, len(ids), _CHUNK):
                kinds.update(conn.execute(select(entities.c.id, entities.c.kind)
                                          .where(entities.c.id.in_(ids[i : i + _CHUNK]))).all())
            problems = [{"field": "entity_ids", "value": i, "message": "nicht im Katalog"} for i in ids
                        if i not in kinds]
            problems += [{"field": "entity_ids", "value": i,
                          "message": f"kann nicht eingeladen werden (Art: {KIND_LABELS.get(kinds[i], kinds[i])})"}
                         for i in ids if i in kinds and kinds[i] not in INVITABLE_KINDS]
            if problems:
                raise ValidationError(f"{len(problems)} id(s) können nicht als eingeladen gespeichert werden; "
                                      "nichts wurde gespeichert", problems)
            already: set[str] = set()
            for i in range(0, len(ids), _CHUNK):
                already.update(conn.execute(select(invitations.c.entity_id).where(
                    invitations.c.event_id == event_id, invitations.c.entity_id.in_(ids[i : i + _CHUNK])))
                    .scalars())
            new = [i for i in ids if i not in already]
            now = _now()
            rows = [{"event_id": event_id, "entity_id": i, "date": when, "job_id": job_id, "key_id": key_id,
                     "created_at": now} for i in new]
            for i in range(0, len(rows), _CHUNK):
                conn.execute(self.store._insert_ignore(invitations), rows[i : i + _CHUNK])
        return {"event": event_id, "date": when, "recorded": new, "already_recorded": [i for i in ids if i in already]}

    def invitation_history(self, since: dt.date | None = None) -> list[InvitationRecord]:
        """Invitations counting for ``since`` or later (all without ``since``), for exposure control."""
        q = select(invitations.c.entity_id, invitations.c.event_id, invitations.c.date)
        if since is not None:
            q = q.where(invitations.c.date >= since)
        with self.store._read() as conn:
            return [InvitationRecord(e, v, d) for e, v, d in conn.execute(q)]

    def list_invitations(self, event_id: str | None = None, entity_id: str | None = None,
                         since: dt.date | None = None, limit: int = 100,
                         offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """A page of recorded invitations (newest first) and how many match in total."""
        cond = []
        if event_id:
            cond.append(invitations.c.event_id == event_id)
        if entity_id:
            cond.append(invitations.c.entity_id == entity_id)
        if since:
            cond.append(invitations.c.date >= since)
        page = select(invitations).order_by(invitations.c.date.desc(), invitations.c.id.desc())
        total = select(func.count()).select_from(invitations)
        if cond:
            page, total = page.where(and_(*cond)), total.where(and_(*cond))
        with self.store._read() as conn:
            rows = conn.execute(page.limit(limit).offset(offset)).mappings().all()
            n = int(conn.scalar(total))
        return [{"event_id": r["event_id"], "entity_id": r["entity_id"], "date": r["date"], "job_id": r["job_id"],
                 "created": _utc(r["created_at"])} for r in rows], n


# ----------------------------------------------------------------------------- running jobs
class _ProgressWriter:
    """The library's progress callback → the job row, at most every ``interval`` seconds (and at
    every new stage); never backwards, and below 100 until the job is done."""

    def __init__(self, jobs: JobStore, job_id: str, owner: str, interval: float = 0.2):
        self.jobs, self.job_id, self.owner, self.interval = jobs, job_id, owner, interval
        self.percent, self.stage, self.written_at = 0.0, None, 0.0

    def __call__(self, fraction: float, stage: str) -> None:
        percent = max(self.percent, min(99.0, round(100.0 * float(fraction), 1)))
        now = time.monotonic()
        if stage == self.stage and (percent <= self.percent or now - self.written_at < self.interval):
            return
        self.percent, self.stage, self.written_at = percent, stage, now
        try:
            self.jobs.report_progress(self.job_id, self.owner, percent, stage)
        except MatcherError as exc:  # a lost progress write is no reason to give the job up
            log.warning("progress of %s not written: %s", self.job_id, exc)


def _invitation_args(params: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`~matcher.batch.invitations.invitation_list` from a job's parameters."""
    as_of = params.get("as_of")
    defaults = ExposurePolicy()
    return {"event_id": params["event"], "size": int(params["size"]), "quotas": list(params.get("quotas") or ()),
            "max_per_city": params.get("max_per_city"),
            "mmr_lambda": float(params.get("mmr_lambda", DEFAULT_MMR_LAMBDA)),
            "waitlist": int(params.get("waitlist") or 0),
            "include_kinds": ("organisation", "advisor") if params.get("include_advisors") else ("organisation",),
            "as_of": dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of,
            "exposure": ExposurePolicy(float(params.get("exposure_penalty", defaults.penalty)),
                                       int(params.get("exposure_days", defaults.window_days)))}


class JobRunner:
    """Accepts jobs, runs them in ``workers`` daemon threads of this process, keeps them alive in the store.

    Follows the estimator contract loosely: ``__init__`` stores, :meth:`start` checks the settings,
    fails the stale jobs of stopped processes and deletes expired ones.

    Args:
        jobs: the job store.
        live: the :class:`~matcher.live.LiveMatcher` jobs run on (its current catalog at the time a job starts).
        workers: jobs run at the same time in this process (they are CPU-bound: 1 on a small machine).
        heartbeat_seconds: how often this process signs its unfinished jobs as alive.
        stale_seconds: a job without a sign of life for this long is marked failed (≥ 3 heartbeats).
        max_pending: unfinished jobs this process accepts (queued and running).
        retention_days: finished jobs are deleted after this many days.

    Example:
        >>> runner = JobRunner(JobStore(store), live).start()
        >>> job = runner.submit("invitations", {"event": "evt-113", "size": 10})
        >>> runner.get(job.id).state in ("queued", "running", "done")
        True
    """

    def __init__(self, jobs: JobStore, live: Any, *, workers: int = 1, heartbeat_seconds: float = 5.0,
                 stale_seconds: float = 60.0, max_pending: int = 20, retention_days: float = 30.0):
        self.jobs = jobs
        self.live = live
        self.workers = workers
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_seconds = stale_seconds
        self.max_pending = max_pending
        self.retention_days = retention_days

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
        self.jobs.fail_stale(self.stale_after)
        self.jobs.delete_finished(dt.timedelta(days=self.retention_days))
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
            args = _invitation_args(params)
            check_invitation_request(matcher, args["event_id"], args["size"], quotas=args["quotas"],
                                     max_per_city=args["max_per_city"], mmr_lambda=args["mmr_lambda"],
                                     waitlist=args["waitlist"], include_kinds=args["include_kinds"])
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
            ValidationError, UnknownEntityError: from the checks.
        """
        owner = self.owner
        if self.pending >= self.max_pending:
            raise TooManyJobsError(f"Es sind schon {self.pending} Aufträge in Arbeit; bitte warten, bis einer fertig "
                                   "ist, und dann erneut senden", [{"pending": self.pending,
                                                                   "limit": self.max_pending}])
        self.check(kind, params)
        job = self.jobs.create(kind, self._stored_params(kind, params), owner=owner, key_id=key_id)
        with self._lock:
            self._enqueue(job.id, kind, params)
        return job

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
        job = self.jobs.get(job_id)
        if job.active and job.heartbeat is not None and _now() - job.heartbeat > self.stale_after:
            if self.jobs.fail_stale(self.stale_after, job_id=job_id):
                job = self.jobs.get(job_id)
        return job

    # -- the threads
    def _work(self) -> None:
        me = threading.current_thread()
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
                self._run(job_id, kind, params)
            finally:
                with self._lock:
                    self._active.pop(job_id, None)

    def _run(self, job_id: str, kind: str, params: dict[str, Any]) -> None:
        owner = self._owner
        try:
            if not self.jobs.start(job_id, owner):
                log.warning("job %s was no longer ours to run (marked failed meanwhile)", job_id)
                return
            progress = _ProgressWriter(self.jobs, job_id, owner)
            _, matcher = self.live.current()
            if kind == "invitations":
                args = _invitation_args(params)
                since = (args["as_of"] or dt.date.today()) - dt.timedelta(days=args["exposure"].window_days)
                history = self.jobs.invitation_history(since=since)
                result = invitation_list(matcher, **args, history=history, progress=progress).as_dict()
            else:
                requests = [r if isinstance(r, AdvisorRequest) else AdvisorRequest.model_validate(r)
                            for r in params["requests"]]
                as_of = params.get("as_of")
                result = assign_advisors(
                    matcher, requests, k_alternates=int(params.get("alternates", DEFAULT_ALTERNATES)),
                    allow_partial=bool(params.get("allow_partial", False)), capacities=params.get("capacities"),
                    as_of=dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of,
                    progress=progress).as_dict()
            if not self.jobs.finish(job_id, owner, result):
                log.warning("job %s finished after it had been marked failed; result dropped", job_id)
        except MatcherError as exc:
            self._fail(job_id, owner, {"code": exc.code, "message": exc.message, "details": exc.details})
        except Exception:  # noqa: BLE001 - a job's bug must not kill the worker thread; the job says so
            incident = uuid.uuid4().hex[:12]
            log.exception("job %s failed unexpectedly (incident %s)", job_id, incident)
            self._fail(job_id, owner, {"code": "internal_error",
                                       "message": f"Interner Fehler. Bitte mit der Fehlerkennung {incident} melden.",
                                       "details": [{"incident": incident}]})

    def _fail(self, job_id: str, owner: str, error: dict[str, Any]) -> None:
        try:
            self.jobs.fail(job_id, owner, error)
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
                self.jobs.heartbeat(self._owner, ids)
                self.jobs.fail_stale(self.stale_after)
                if time.monotonic() - self._cleaned_at > 3600:
                    self._cleaned_at = time.monotonic()
                    self.jobs.delete_finished(dt.timedelta(days=self.retention_days))
            except MatcherError as exc:
                log.warning("job heartbeat failed: %s", exc)

    def stop(self, message: str = "Der Auftrag wurde abgebrochen, weil der Server beendet wurde. "
                                  "Bitte den Auftrag neu starten.") -> int:
        """Mark this process's unfinished jobs failed (the process is stopping); return how many."""
        if self._pid != os.getpid() or not self._active:
            return 0
        self._stopping.set()
        with self._lock:
            ids = list(self._active)
        n = self.jobs.fail_owned(self._owner, ids, message)
        with self._lock:
            for job_id in ids:
                self._active.pop(job_id, None)
        return n

    def _at_exit(self) -> None:
        try:
            n = self.stop()
            if n:
                log.warning("marked %d unfinished job(s) failed at shutdown", n)
        except Exception as exc:  # noqa: BLE001 - at exit the stale rule is the fallback
            log.error("could not mark unfinished jobs failed at shutdown: %s", exc)

