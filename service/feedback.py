"""``/v1/feedback``: what became of a recommended entity (accepted, declined, contacted).

Feedback is bound to whoever got the recommendation: the same API key, or in
the open demo (``OPEN_FEEDBACK``, no key) the same browser tab (header
``X-Matcher-Tab``, see :func:`service.auth.browser_tab`). Feedback on a
recommendation issued to someone else is answered like an unknown one (404).
Each (recommendation, entity, outcome) is stored once: 201 for a new row, 200
with the stored row for a repeat.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from matcher.live import remember_outcome

from .auth import browser_tab, current_caller
from .models import FeedbackOut, FeedbackRequest
from .openapi import documented
from .parsing import parse_body
from .state import get_state, get_store

bp = Blueprint("feedback", __name__, url_prefix="/v1/feedback")


@bp.post("")
@documented("Rückmeldung zu einer Empfehlung", body=FeedbackRequest, responses={201: FeedbackOut, 200: FeedbackOut},
            description="Nur vom selben Schlüssel (bzw. ohne Schlüssel vom selben Browserfenster, Header "
                        "X-Matcher-Tab), der die Empfehlung erhalten hat; sonst 404. Dieselbe Rückmeldung "
                        "(Empfehlung, Eintrag, Ergebnis) wird nur einmal gespeichert: 201 beim ersten Mal, "
                        "danach 200 mit dem gespeicherten Eintrag. „declined“ („passt nicht“) rückt den Eintrag "
                        "bei ähnlichen Anfragen derselben anfragenden Stelle nach unten; „accepted“ oder "
                        "„contacted“ hebt das wieder auf.")
def create_feedback() -> ResponseReturnValue:
    req = parse_body(FeedbackRequest)
    caller = current_caller()
    store = get_store()
    fid, created = store.record_feedback(req.recommendation_id, req.entity_id, req.outcome, key_id=caller.key_id,
                                         tab=browser_tab() if caller.key_id is None else None)
    live = get_state().live if get_state().not_ready() is None else None
    if created and live is not None:   # (while the service starts, the feedback is stored all the same)
        remember_outcome(store, live.current()[1], req.recommendation_id, req.entity_id, req.outcome)
    return jsonify(FeedbackOut(id=fid, **req.model_dump()).model_dump()), 201 if created else 200
