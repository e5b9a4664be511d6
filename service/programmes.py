"""``POST /v1/recommendations/programmes``: funding programmes for a project idea, rules checked, audited.

The route sits on the recommendations blueprint (same prefix, access rules and rate limit as the other
recommendation routes); this module is imported before the blueprint is registered."""

from __future__ import annotations

import datetime as dt

from flask import Response
from flask.typing import ResponseReturnValue

from matcher.programmes.matching import ProgrammeMatch, match_programmes

from .auth import browser_tab, can_see_contact, current_caller
from .openapi import documented
from .parsing import parse_body
from .programme_models import ProgrammeResultOut, ProgrammesOut, ProgrammesRequest
from .recommendations import _check_place, _summary, bp
from .state import get_live, get_store


def _out(m: ProgrammeMatch, staff: bool) -> ProgrammeResultOut:
    programme = m.programme if staff else m.programme.model_copy(update={"contact": None})
    return ProgrammeResultOut(
        rank=m.rank, score=round(m.score, 4), eligible=m.eligible, programme=programme,
        explanation=m.explanation.as_dict(), rules=[r.as_dict() for r in m.rules],
        excluded_by=[r.as_dict() for r in m.excluded_by], next_deadline=m.next_deadline,
        partners=[s.as_dict() for s in m.partners], advisors=[s.as_dict() for s in m.advisors])


def recommend_programmes(req: ProgrammesRequest) -> ResponseReturnValue:
    """Match with the live matcher, write the audit entry (every id shown, suggestions included)."""
    query = req.to_query()
    version, matcher = get_live().current()
    _check_place(matcher, query)
    found = match_programmes(matcher, query, k=req.k, today=req.as_of, lang=req.lang)
    shown = list(dict.fromkeys(
        [m.programme.id for m in [*found.eligible, *found.ineligible]]
        + [s.id for m in found.eligible for s in [*m.partners, *m.advisors]]))
    summary = _summary(query, req.k) | {
        "project": query.project.model_dump(mode="json", exclude_none=True) if query.project else {}}
    caller = current_caller()
    rec_id = get_store().record_recommendation(
        task="programmes", query=summary, shown=shown, model_id=found.model_id, catalog_version=version,
        role=caller.role, key_id=caller.key_id, asker_id=query.from_,
        tab=browser_tab() if caller.key_id is None else None)
    staff = can_see_contact()
    out = ProgrammesOut(id=rec_id, task="programmes", model=found.model_id, catalog_version=version,
                        candidates=found.candidates, created=dt.datetime.now(dt.UTC), as_of=found.today,
                        eligible=[_out(m, staff) for m in found.eligible],
                        ineligible=[_out(m, staff) for m in found.ineligible])
    return Response(out.model_dump_json(exclude_none=True), mimetype="application/json")


@bp.post("/programmes")
@documented("Förderprogramme für eine Projektidee, mit Prüfung der Förderbedingungen", body=ProgrammesRequest,
            responses={200: ProgrammesOut},
            description="Passende Programme nach Eignung sortiert; jede Förderbedingung wird einzeln geprüft "
                        "(ok, fail, check, info). Programme mit Ausschlussgrund stehen in `ineligible` mit der "
                        "Regel, die sie ausschließt. Für die besten Programme: Partner und Beratende aus dem Katalog.")
def programmes() -> ResponseReturnValue:
    return recommend_programmes(parse_body(ProgrammesRequest))
