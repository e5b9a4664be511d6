"""``/v1/feedback``: what became of a recommended entity (accepted, declined, contacted)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from .auth import current_caller
from .models import FeedbackOut, FeedbackRequest
from .openapi import documented
from .parsing import parse_body
from .state import get_store

bp = Blueprint("feedback", __name__, url_prefix="/v1/feedback")


@bp.post("")
@documented("Rückmeldung zu einer Empfehlung", body=FeedbackRequest, responses={200: FeedbackOut, 201: FeedbackOut},
            description="201 für eine neue Rückmeldung; 200 mit der gespeicherten, wenn dieselbe (Empfehlung, "
                        "Eintrag, Ergebnis) schon vorliegt; 404, wenn die Empfehlung nicht an diesen Schlüssel "
                        "(bzw. diesen Browser-Tab) ging.")
def create_feedback() -> ResponseReturnValue:
    req = parse_body(FeedbackRequest)
    fid = get_store().add_feedback(req.recommendation_id, req.entity_id, req.outcome, key_id=current_caller().key_id)
    return jsonify(FeedbackOut(id=fid, **req.model_dump()).model_dump()), 201
