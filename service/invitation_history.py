"""``/v1/invitations``: the invitations actually sent, which invitation jobs read for exposure control.

Staff record them after sending (editor key): a list of ids for an event, or
the list of a finished invitation job (``{"job": "job_…"}``; the waitlist is
not part of it). Each (event, entity) pair is stored once.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from matcher.domain.messages import quoted
from matcher.errors import ValidationError
from matcher.store import ERASED_PREFIX

from .auth import current_caller
from .job_models import InvitationListQuery, InvitationPage, RecordedInvitationsOut, RecordInvitationsRequest
from .jobs import get_runner, owned_job
from .openapi import documented
from .parsing import parse_args, parse_body

bp = Blueprint("invitations", __name__, url_prefix="/v1/invitations")


@bp.post("")
@documented("Verschickte Einladungen speichern (für den Ausgleich der Einladungshäufigkeit)",
            body=RecordInvitationsRequest, responses={201: RecordedInvitationsOut})
def record_invitations() -> ResponseReturnValue:
    req = parse_body(RecordInvitationsRequest)
    runner = get_runner()
    event, ids = req.event, req.entity_ids
    if req.job:
        job = owned_job(req.job)     # another key's job: 404, as if there were none
        if job.kind != "invitations":
            raise ValidationError(f"Der Auftrag {job.id} ist keine Einladungsliste",
                                  [{"field": "job", "value": job.id}])
        result = job.require_result()
        if event and event != result["event"]["id"]:
            raise ValidationError(f"Der Auftrag {job.id} gilt der Veranstaltung {quoted(result['event']['id'])}, "
                                  f"nicht {quoted(event)}", [{"field": "event", "value": event}])
        # an invitee erased since (GDPR art. 17) shows as "gelöschter Eintrag" and cannot be invited
        event, ids = result["event"]["id"], [p["id"] for p in result["invitees"]
                                             if not str(p["id"]).startswith(ERASED_PREFIX)]
    report = runner.store.invitations.record(event, ids, date=req.date, key_id=current_caller().key_id, job_id=req.job)
    return jsonify(RecordedInvitationsOut(**report).model_dump(mode="json")), 201


@bp.get("")
@documented("Gespeicherte Einladungen (Filter: event, entity, since)", query=InvitationListQuery,
            responses={200: InvitationPage})
def list_invitations() -> ResponseReturnValue:
    q = parse_args(InvitationListQuery)
    items, total = get_runner().store.invitations.page(q.event, q.entity, q.since, limit=q.limit, offset=q.offset)
    return jsonify(InvitationPage(items=items, total=total, limit=q.limit, offset=q.offset).model_dump(mode="json"))
