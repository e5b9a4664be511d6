"""``/v1/jobs``: invitation lists and advisor assignments as background jobs, their state and exports.

``POST`` checks the input at once (unknown ids, bad quotas: 4xx), stores a
queued job and answers 202 with its id; this process's low-priority job process
runs it (:class:`matcher.batch.runner.JobRunner`). ``GET /v1/jobs/<id>``
answers from the store, so any worker or replica can. A job belongs to the key
that made it: other keys get 404 on every job route, admins see all; per-key
limits answer 429 with Retry-After (:mod:`matcher.batch.quotas`). Results are stored
without contact data; editor and admin callers get the catalog's current
contact data added at read time.
"""

from __future__ import annotations

import io
import math
import threading
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request, send_file, url_for
from flask.typing import ResponseReturnValue

from matcher.batch.export import entity_ids, render, with_contacts
from matcher.batch.job_process import JobProcess
from matcher.batch.quotas import KeyQuota, QuotaExceededError
from matcher.batch.runner import JobRunner, TooManyJobsError
from matcher.domain.messages import quoted
from matcher.errors import ConflictError
from matcher.store import Job
from matcher.store.job_store import unknown_job

from .auth import can_see_contact, current_caller
from .errors import ApiError
from .job_models import AssignmentJobRequest, ExportQuery, InvitationJobRequest, JobOut
from .openapi import documented
from .parsing import parse_args, parse_body
from .state import get_state_of

__all__ = ["bp", "init_app", "get_runner", "job_result", "owned_job", "TooManyJobs", "QuotaExceeded"]

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")
EXTENSION = "matcher_jobs"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILE_NAMES = {"invitations": "einladungsliste", "assignments": "zuordnung"}


class TooManyJobs(ApiError):
    code = "too_many_jobs"
    status = 429


class QuotaExceeded(ApiError):
    """A key's job limit (pending jobs, texts per hour): 429 with ``Retry-After``."""

    code = "quota_exceeded"
    status = 429

    def __init__(self, exc: QuotaExceededError):
        super().__init__(exc.message, exc.details)
        self.retry_after = exc.retry_after


class _InFlight:
    """How many requests this process is serving right now (a job's encoding waits while there are any)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def enter(self) -> None:
        with self._lock:
            self.count += 1
        g.matcher_in_flight = True

    def leave(self, _exc: BaseException | None = None) -> None:
        if g.pop("matcher_in_flight", False):
            with self._lock:
                self.count -= 1

    def __call__(self) -> bool:
        return self.count > 0


def _job_process(app: Flask) -> JobProcess | None:
    """The low-priority process the jobs run in (``JOB_PROCESS``); None where the model is an object, not a
    spec another process could load (tests), or the switch is off: then jobs run in threads here."""
    cfg = app.config
    if not cfg["JOB_PROCESS"] or not isinstance(cfg["MODEL"], str):
        return None
    live = get_state_of(app).live
    return JobProcess(get_state_of(app).store.url, cfg["MODEL"], threads=int(cfg["JOB_PROCESS_THREADS"]) or None,
                      niceness=int(cfg["JOB_PROCESS_NICENESS"]), index_dir=live.index_dir)


def init_app(app: Flask) -> None:
    """Start the job runner of this app: fails stale jobs of stopped processes (see :mod:`matcher.batch.runner`)."""
    state, cfg = get_state_of(app), app.config
    in_flight = None
    if cfg["JOB_YIELD_TO_REQUESTS"]:
        in_flight = _InFlight()
        app.before_request(in_flight.enter)
        app.teardown_request(in_flight.leave)
    app.extensions[EXTENSION] = JobRunner(
        state.store, state.live, workers=int(cfg["JOB_WORKERS"]),
        heartbeat_seconds=float(cfg["JOB_HEARTBEAT_SECONDS"]), stale_seconds=float(cfg["JOB_STALE_SECONDS"]),
        max_pending=int(cfg["JOB_MAX_PENDING"]), retention_days=float(cfg["JOB_RETENTION_DAYS"]),
        quota=KeyQuota(int(cfg["JOB_MAX_PENDING_PER_KEY"] or 0), int(cfg["JOB_TEXTS_PER_HOUR_PER_KEY"] or 0)),
        niceness=int(cfg["JOB_NICENESS"]), encode_batch=int(cfg["JOB_ENCODE_BATCH"]),
        encode_pause=float(cfg["JOB_ENCODE_PAUSE"]), busy=in_flight, process=_job_process(app)).start()


def get_runner() -> JobRunner:
    return current_app.extensions[EXTENSION]


def owned_job(job_id: str) -> Job:
    """The job, if the caller's key made it (admins: any job); another key's job is answered like an
    unknown one (404), so its existence is not revealed."""
    job = get_runner().get(job_id)
    caller = current_caller()
    if caller.allows("admin") or (caller.key_id is not None and job.key_id == caller.key_id):
        return job
    raise unknown_job(job_id)


def job_result(job: Job) -> dict[str, Any]:
    """The job's result for the current caller (raises if there is none): contact data for staff only."""
    result = job.require_result()
    if can_see_contact():
        return with_contacts(result, get_runner().store.catalog.contacts(entity_ids(result)))
    return result


def _job_json(job: Job) -> dict[str, Any]:
    result = job_result(job) if job.state == "done" else None
    return JobOut(id=job.id, kind=job.kind, state=job.state, progress=min(100, math.floor(job.progress)),
                  stage=job.stage, created=job.created, updated=job.updated, result=result,
                  error=job.error).model_dump(mode="json")


def _submit(kind: str, params: dict[str, Any]) -> ResponseReturnValue:
    try:
        job = get_runner().submit(kind, params, key_id=current_caller().key_id)
    except TooManyJobsError as exc:
        raise TooManyJobs(exc.message, exc.details) from None
    except QuotaExceededError as exc:
        raise QuotaExceeded(exc) from None
    return jsonify(_job_json(job)), 202, {"Location": url_for("jobs.get_job", job_id=job.id)}


@bp.post("/invitations")
@documented("Einladungsliste als Auftrag: Quoten, Vielfalt, Ausgleich, Warteliste", body=InvitationJobRequest,
            description="Prüft die Angaben sofort (unbekannte Veranstaltung: 404, unlesbare Quote: 422) und "
                        "antwortet mit 202 und der Kennung des Auftrags (Header Location). Die Einladungshistorie "
                        "(POST /v1/invitations) geht in den Ausgleich der Einladungshäufigkeit ein.",
            responses={202: JobOut})
def create_invitations() -> ResponseReturnValue:
    return _submit("invitations", parse_body(InvitationJobRequest).model_dump(mode="json"))


@bp.post("/assignments")
@documented("Zuordnung von Beratungsanfragen als Auftrag (optimal, mit Kapazitäten)", body=AssignmentJobRequest,
            description="Prüft Orte, Kommunen und Konfliktlisten sofort (422) und antwortet mit 202. Ist keine "
                        "vollständige Zuordnung möglich (und allow_partial nicht gesetzt), endet der Auftrag mit "
                        "state failed und error.code infeasible; die Meldung nennt die blockierende Bedingung "
                        "und die betroffenen Anfragen.",
            responses={202: JobOut})
def create_assignments() -> ResponseReturnValue:
    request.max_content_length = int(current_app.config["MAX_JOB_BYTES"])
    return _submit("assignments", parse_body(AssignmentJobRequest).model_dump(mode="json"))


@bp.get("/<job_id:job_id>")
@documented("Stand eines Auftrags: queued, running (mit Fortschritt), done (mit Ergebnis) oder failed",
            responses={200: JobOut})
def get_job(job_id: str) -> ResponseReturnValue:
    return jsonify(_job_json(owned_job(job_id)))


def _export(job_id: str, fmt: str, delimiter: str = ",") -> ResponseReturnValue:
    job = owned_job(job_id)
    if job.kind not in FILE_NAMES:
        raise ConflictError(f"Ein Auftrag der Art {quoted(job.kind)} hat keine Datei zum Herunterladen; "
                            f"sein Ergebnis steht in GET /v1/jobs/{job.id}", [{"field": "job_id", "value": job.id}])
    data = render(job_result(job), fmt, include_contact=can_see_contact(), delimiter=delimiter)
    return send_file(io.BytesIO(data), mimetype=XLSX if fmt == "xlsx" else "text/csv", as_attachment=True,
                     download_name=f"{FILE_NAMES[job.kind]}-{job.id}.{fmt}", max_age=0)


@bp.get("/<job_id:job_id>/export.xlsx")
@documented("Ergebnis als Excel-Datei (XLSX); Kontaktdaten nur für editor- und admin-Schlüssel",
            description="409 job_not_done, solange der Auftrag läuft; 422 infeasible bzw. 409 job_failed, wenn er "
                        "fehlgeschlagen ist.",
            responses={200: (XLSX, {"type": "string", "contentEncoding": "base64"})})
def export_xlsx(job_id: str) -> ResponseReturnValue:
    return _export(job_id, "xlsx")


@bp.get("/<job_id:job_id>/export.csv")
@documented("Ergebnis als CSV (UTF-8 mit BOM; delimiter=; für deutsches Excel)", query=ExportQuery,
            responses={200: ("text/csv", {"type": "string"})})
def export_csv(job_id: str) -> ResponseReturnValue:
    return _export(job_id, "csv", parse_args(ExportQuery).delimiter)
