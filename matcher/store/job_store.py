"""Batch jobs in the store (``jobs`` table): state, progress, result, owner and heartbeat.

Every state change is conditional on the job's owner and its state, so a job
that was marked failed is never resurrected by a late "done". Running jobs is
:class:`matcher.batch.runner.JobRunner`'s work; the rule that marks a lost job
failed is described there.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Text, and_, cast, delete, func, insert, or_, select, update

from matcher.domain.messages import alternatives, quoted
from matcher.errors import ConflictError, InfeasibleError, UnknownEntityError, ValidationError
from matcher.store.db import Database, chunks, utc
from matcher.store.db import now as utc_now  # fail_stale's parameter ``now`` is the time to judge by
from matcher.store.tables import jobs

__all__ = ["ACTIVE_STATES", "JOB_KINDS", "Job", "JobFailedError", "JobNotDoneError", "JobStore", "unknown_job"]

log = logging.getLogger(__name__)

JOB_KINDS = ("invitations", "assignments", "ranker")
ACTIVE_STATES = ("queued", "running")

# a job's state as a message names it (the API's ``state`` field keeps the codes)
_STATE_LABELS = {"queued": "wartet", "running": "läuft", "done": "fertig", "failed": "fehlgeschlagen"}


class JobNotDoneError(ConflictError):
    """The job has no result yet (queued or running)."""

    code = "job_not_done"


class JobFailedError(ConflictError):
    """The job failed; it has no result."""

    code = "job_failed"


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
               key_id=row["key_id"], owner=row["owner"], created=utc(row["created_at"]),
               updated=utc(row["updated_at"]), heartbeat=utc(row["heartbeat_at"]))


def unknown_job(job_id: str) -> UnknownEntityError:
    """The error for a job that does not exist — and for another key's job, which must look the same."""
    return UnknownEntityError(f"Unbekannter Auftrag {quoted(job_id)} (Aufträge werden nach einiger Zeit gelöscht)",
                              [{"field": "job", "value": job_id}])


class JobStore:
    """The jobs table (one transaction a call).

    Example:
        >>> job = store.jobs.create("invitations", {"event": "evt-113", "size": 10}, owner="host:1:ab")
        >>> store.jobs.get(job.id).state
        'queued'
    """

    def __init__(self, db: Database):
        self.db = db

    def create(self, kind: str, params: dict[str, Any], owner: str, key_id: str | None = None,
               texts: int = 0) -> Job:
        """A new queued job owned by ``owner`` (the process), made by ``key_id``, encoding ``texts`` texts."""
        if kind not in JOB_KINDS:
            raise ValidationError(f"Unbekannte Auftragsart {quoted(kind)}; erlaubt: {alternatives(JOB_KINDS)}",
                                  [{"field": "kind", "value": kind}])
        at = utc_now()
        job_id = f"job_{uuid.uuid4().hex}"
        with self.db.write() as conn:
            conn.execute(insert(jobs).values(id=job_id, kind=kind, state="queued", progress=0.0, stage=None,
                                             params=_json_ready(params), key_id=key_id, owner=owner,
                                             texts=texts, created_at=at, updated_at=at, heartbeat_at=at))
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        """One job. Raises :class:`~matcher.errors.UnknownEntityError`."""
        with self.db.read() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
        if row is None:
            raise unknown_job(job_id)
        return _job(row)

    def _change(self, job_id: str, owner: str, states: Sequence[str], **values: Any) -> bool:
        """Update the job if ``owner`` still holds it in one of ``states``; False if it does not."""
        at = utc_now()
        with self.db.write() as conn:
            n = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.owner == owner,
                                                jobs.c.state.in_(states))
                             .values(updated_at=at, heartbeat_at=at, **values)).rowcount
        return n == 1

    def start(self, job_id: str, owner: str) -> bool:
        """queued → running (False: the job is no longer this owner's to run)."""
        return self._change(job_id, owner, ("queued",), state="running")

    def report_progress(self, job_id: str, owner: str, percent: float, stage: str | None) -> bool:
        """Write a running job's progress (percent) and its current step's German label."""
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
        at = utc_now()
        n = 0
        with self.db.write() as conn:
            for chunk in chunks(ids):
                n += conn.execute(update(jobs).where(jobs.c.id.in_(chunk), jobs.c.owner == owner,
                                                     jobs.c.state.in_(ACTIVE_STATES))
                                  .values(heartbeat_at=at)).rowcount
        return n

    def fail_stale(self, stale_after: dt.timedelta, job_id: str | None = None,
                   now: dt.datetime | None = None) -> list[str]:
        """Mark failed every queued or running job whose heartbeat is older than ``stale_after``
        (only ``job_id``, if given); return their ids. The process that owned them is gone."""
        cutoff = (now or utc_now()) - stale_after
        stale = and_(jobs.c.state.in_(ACTIVE_STATES),
                     or_(jobs.c.heartbeat_at.is_(None), jobs.c.heartbeat_at < cutoff))
        if job_id is not None:
            stale = and_(stale, jobs.c.id == job_id)
        with self.db.read() as conn:   # the common case, nothing stale, takes no write lock
            found = conn.execute(select(jobs.c.id, jobs.c.heartbeat_at).where(stale)).all()
        failed = []
        for found_id, beat in found:
            beat = utc(beat)
            seen = beat.strftime("%d.%m.%Y %H:%M:%S UTC") if beat else "unbekannt"
            error = {"code": "job_interrupted",
                     "message": "Der Auftrag wurde nicht beendet: der Serverprozess, der ihn ausführte, läuft nicht "
                                f"mehr (letztes Lebenszeichen {seen}). Bitte den Auftrag neu starten.",
                     "details": [{"job": found_id, "last_heartbeat": beat.isoformat() if beat else None}]}
            with self.db.write() as conn:
                n = conn.execute(update(jobs).where(stale, jobs.c.id == found_id)
                                 .values(state="failed", error=error, updated_at=utc_now())).rowcount
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
        cutoff = utc_now() - older_than
        with self.db.write() as conn:
            return conn.execute(delete(jobs).where(jobs.c.state.in_(("done", "failed")),
                                                   jobs.c.updated_at < cutoff)).rowcount


    # -- per-key quotas (the caller's key made the job: ``key_id``)
    def pending_of_key(self, key_id: str) -> int:
        """Unfinished (queued or running) jobs made by ``key_id``, in every process on this database."""
        with self.db.read() as conn:
            return int(conn.scalar(select(func.count()).select_from(jobs).where(
                jobs.c.key_id == key_id, jobs.c.state.in_(ACTIVE_STATES))) or 0)

    def texts_of_key(self, key_id: str, since: dt.datetime) -> list[tuple[dt.datetime, int]]:
        """(created, texts) of the jobs ``key_id`` made since ``since``, oldest first (the hourly text budget)."""
        with self.db.read() as conn:
            rows = conn.execute(select(jobs.c.created_at, jobs.c.texts).where(
                jobs.c.key_id == key_id, jobs.c.created_at >= since, jobs.c.texts > 0)
                .order_by(jobs.c.created_at)).all()
        return [(utc(at), int(n)) for at, n in rows]

    # -- erasure, in a transaction the caller holds (matcher/store/erasure.py)
    @staticmethod
    def stop_active(conn: Connection, error: dict[str, Any]) -> int:
        """Mark every queued or running job failed with ``error``; return how many. A job that was
        computing on the old catalog can then no longer store its result (see :meth:`finish`)."""
        return conn.execute(update(jobs).where(jobs.c.state.in_(ACTIVE_STATES))
                            .values(state="failed", error=_json_ready(error), updated_at=utc_now())).rowcount

    @staticmethod
    def rewrite_mentioning(conn: Connection, needle: str, rewrite: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
        """Pass ``{"params", "result", "error"}`` of every job whose stored JSON contains ``needle``
        to ``rewrite`` and store what it returns; return how many jobs changed."""
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        found = conn.execute(select(jobs.c.id, jobs.c.params, jobs.c.result, jobs.c.error).where(
            or_(*(cast(c, Text).like(pattern, escape="\\") for c in (jobs.c.params, jobs.c.result, jobs.c.error)))))
        changed = 0
        for job_id, params, result, error in found.all():
            stored = {"params": params, "result": result, "error": error}
            new = rewrite(stored)
            values = {k: v for k, v in new.items() if v != stored[k]}
            if values:
                conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))
                changed += 1
        return changed
