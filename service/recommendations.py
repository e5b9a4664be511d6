"""``/v1/recommendations/…``: advisors, partners, events, invitees — ranked, explained, audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue

from matcher.domain.messages import did_you_mean, quoted
from matcher.domain.schema import Query
from matcher.engine.matcher import Matcher
from matcher.errors import ValidationError
from matcher.live import declines_for

from .auth import browser_tab, can_see_contact, current_caller
from .models import (
    AdvisorsRequest,
    AssessmentOut,
    EventsRequest,
    InviteesRequest,
    PartnersRequest,
    RecommendationOut,
    ResultOut,
)
from .openapi import documented
from .parsing import parse_body
from .state import get_live, get_state, get_store

bp = Blueprint("recommendations", __name__, url_prefix="/v1/recommendations")


def _summary(query: Query, k: int) -> dict[str, Any]:
    """What the audit log keeps of a query: no free text, only its length."""
    summary = {"from": query.from_, "city": query.city, "coordinates": query.lat is not None,
               "languages": query.languages, "require_languages": query.require_languages,
               "org_types": query.org_types, "as_of": query.as_of.isoformat() if query.as_of else None,
               "text_chars": len(query.text or ""), "k": k}
    return {key: v for key, v in summary.items() if v not in (None, [], False)}


def _request(query: Query, as_of: dt.date | None) -> dict[str, Any]:
    """The request as the engine read it (text included), kept with the audit entry so that a ranker
    can learn from its feedback and a „passt nicht“ knows the need it was said for."""
    request = query.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    if as_of is not None:
        request["as_of"] = as_of.isoformat()
    return {"task": query.task, **request}


def _check_place(matcher: Matcher, query: Query) -> None:
    """A place given by name must be one the gazetteer knows, in Germany: a typo would otherwise
    silently rank by the distance to a namesake abroad (or by none at all)."""
    if not query.city or query.lat is not None:
        return
    place = matcher.gazetteer_.resolve(query.city)
    if place is None:
        suggestions = matcher.gazetteer_.suggest(query.city, n=3)
        raise ValidationError(" ".join(filter(None, [
            f"Unbekannter Ort {quoted(query.city)}: bitte eine Stadt, einen Kreis oder eine Region in NRW angeben "
            "(z. B. „Duisburg“, „Kreis Kleve“, „Münsterland“) oder lat/lon.", did_you_mean(suggestions)])),
            [{"field": "city", "value": query.city, "suggestions": suggestions}])
    if place.country != "DE":
        raise ValidationError(f"{quoted(query.city)} ist als Ort im Ausland bekannt ({place.name}, {place.country}); "
                              "bitte einen Ort in Deutschland angeben oder lat/lon",
                              [{"field": "city", "value": query.city}])


def recommend(query: Query, k: int, lang: str, as_of: dt.date | None = None) -> ResponseReturnValue:
    """Rank with the live matcher, write the audit entry, answer with results and explanations."""
    version, matcher = get_live().current()
    _check_place(matcher, query)
    caller = current_caller()
    tab = browser_tab() if caller.key_id is None else None
    store = get_store()
    ranking = matcher.rank(query, k=k, as_of=as_of, lang=lang,
                           declines=declines_for(store, matcher, query, caller.key_id, tab))
    model = f"{ranking.model_id}/{ranking.ranker}"   # the embedding model and the ranker version
    rec_id = store.record_recommendation(
        task=query.task, query=_summary(query, k), shown=[r.entity_id for r in ranking.results],
        model_id=model, catalog_version=version, role=caller.role, key_id=caller.key_id,
        asker_id=query.from_, tab=tab, request=_request(query, as_of),
        # the text's vector as served: training reads it instead of encoding the text again
        request_vector=None if ranking.text_vector is None else (ranking.model_id, ranking.text_vector))
    get_state().retention.tick()
    staff = can_see_contact()
    results = [ResultOut(rank=r.rank, score=round(r.score, 4), confidence=r.confidence, strength=r.strength,
                         strength_label=r.strength_label, explanation=r.explanation.as_dict(),
                         entity=r.entity if staff else r.entity.model_copy(update={"contact": None}))
               for r in ranking.results]
    out = RecommendationOut(id=rec_id, task=query.task, model=model, catalog_version=version,
                            candidates=ranking.candidates, created=dt.datetime.now(dt.UTC),
                            assessment=AssessmentOut(**ranking.assessment.as_dict()), results=results)
    # pydantic's own serializer: the same document as jsonify(model_dump), built in one step
    return Response(out.model_dump_json(exclude_none=True), mimetype="application/json")


@bp.post("/advisors")
@documented("Beraterinnen und Berater für eine Kommune", body=AdvisorsRequest, responses={200: RecommendationOut})
def advisors() -> ResponseReturnValue:
    req = parse_body(AdvisorsRequest)
    return recommend(req.to_query(), req.k, req.lang)


@bp.post("/partners")
@documented("Partnerorganisationen für eine Organisation", body=PartnersRequest, responses={200: RecommendationOut})
def partners() -> ResponseReturnValue:
    req = parse_body(PartnersRequest)
    return recommend(req.to_query(), req.k, req.lang)


@bp.post("/events")
@documented("Passende Veranstaltungen für eine Organisation", body=EventsRequest, responses={200: RecommendationOut})
def events() -> ResponseReturnValue:
    req = parse_body(EventsRequest)
    return recommend(req.to_query(), req.k, req.lang, as_of=req.as_of)


@bp.post("/invitees")
@documented("Einzuladende Organisationen für eine Veranstaltung", body=InviteesRequest,
            responses={200: RecommendationOut})
def invitees() -> ResponseReturnValue:
    req = parse_body(InviteesRequest)
    return recommend(req.to_query(), req.k, req.lang)
