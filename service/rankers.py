"""``/v1/rankers``: the learned ranker's versions — list, train (a job), activate, roll back (admin only).

Training runs as a batch job (kind ``ranker``, polled at ``/v1/jobs/<id>``) on the judged sets the server is
set up with (``RANKER_JUDGED_DATA``) and the feedback of the last ``days`` days; the new version serves only
if it beats the serving one (:mod:`matcher.live.rankers`). Every replica serves an activation from its next
request on.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from matcher.live.rankers import activate, rollback
from matcher.store import Activation

from .job_models import JobOut
from .jobs import _submit
from .openapi import documented
from .parsing import parse_body
from .ranker_models import ActivationOut, RankerActivateRequest, RankersOut, RankerTrainRequest, RankerVersionOut
from .state import get_store

bp = Blueprint("rankers", __name__, url_prefix="/v1/rankers")


def _activation(a: Activation) -> ActivationOut:
    return ActivationOut(id=a.id, version=a.version, reason=a.reason, activated=a.created_at)


@bp.get("")
@documented("Ranker-Versionen: die aktive, alle gespeicherten und der Verlauf der Aktivierungen",
            responses={200: RankersOut})
def list_rankers() -> ResponseReturnValue:
    store = get_store()
    active = store.rankers.active()
    versions = [RankerVersionOut(version=v.version, created=v.created_at, commit=v.commit,
                                 window_start=v.window_start, window_end=v.window_end, features=v.features,
                                 metrics=v.metrics, active=v.version == active.version)
                for v in store.rankers.all()]
    return jsonify(RankersOut(active=_activation(active), versions=versions,
                              history=[_activation(a) for a in store.rankers.history()]).model_dump(mode="json"))


@bp.post("/train")
@documented("Neue Ranker-Version trainieren (als Auftrag)", body=RankerTrainRequest, responses={202: JobOut},
            description="Antwortet mit 202 und dem Auftrag (GET /v1/jobs/<id>). Die neue Version wird nur aktiv, "
                        "wenn sie die aktive auf den bewerteten Daten und in der kontrafaktischen Schätzung über "
                        "die Rückmeldungen schlägt; das Ergebnis nennt beide Vergleiche. 409, wenn der Server "
                        "keine bewerteten Datensätze eingerichtet hat.")
def train() -> ResponseReturnValue:
    req = parse_body(RankerTrainRequest)
    return _submit("ranker", {"data": [str(p) for p in current_app.config["RANKER_JUDGED_DATA"]],
                              "days": req.days, "activate": req.activate,
                              "hand": sorted(set(req.hand))})


@bp.post("/activate")
@documented("Gespeicherte Ranker-Version aktivieren", body=RankerActivateRequest, responses={200: ActivationOut},
            description="Nur eine Version, die ihre Prüfung bestanden hat, „default“ (das mitgelieferte Modell) "
                        "oder „hand“ (409 sonst; 404: unbekannt).")
def activate_version() -> ResponseReturnValue:
    req = parse_body(RankerActivateRequest)
    return jsonify(_activation(activate(get_store(), req.version)).model_dump(mode="json"))


@bp.post("/rollback")
@documented("Zur vorher aktiven Ranker-Version zurückkehren", responses={200: ActivationOut},
            description="409, wenn es keine frühere Version gibt.")
def rollback_version() -> ResponseReturnValue:
    return jsonify(_activation(rollback(get_store())).model_dump(mode="json"))
