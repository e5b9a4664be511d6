"""Programmes for a project idea: ranked by fit on the engine's scoring path, checked rule by rule, split into
the eligible ones and those a rule excludes, with partners and advisors for the application.

The ranking is the engine's (``Matcher.score`` for task ``programmes``: the need against the programmes'
descriptions, themes and countries); eligibility never reorders within a list, it only decides the list.
The date "today" is a parameter, so that deadlines can be tested.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matcher.domain.labels import PARTNER_KIND_LABELS_DE
from matcher.domain.schema import ApplicantType, Municipality, Organisation, Programme, ProjectFacts, Query
from matcher.engine.explain import Explanation, explain, topic_similarities
from matcher.engine.matcher import Matcher
from matcher.errors import ValidationError
from matcher.programmes.deadlines import next_round
from matcher.programmes.eligibility import Rule, check_programme, excluding
from matcher.text.countries import country_name_de

__all__ = ["ProgrammeMatch", "ProgrammeMatches", "Suggestion", "applicant_type_of", "match_programmes",
           "ranked_ids"]

# an organisation's type as an applicant type (an institution is none of the applicant types)
_APPLICANT_OF_ORG_TYPE: dict[str, ApplicantType] = {
    "migrant_organisation": "migrant_organisation", "civil_society": "eine_welt_group",
    "municipal_office": "municipal_office"}
# the organisation types the partner search is asked for, per kind of required partner ([]: any type)
_PARTNER_ORG_TYPES = {"municipality_abroad": [], "partner_abroad": [], "german_municipality": ["municipal_office"],
                      "civil_society": ["civil_society"], "migrant_organisation": ["migrant_organisation"]}
_SHORT_NAME = re.compile(r"\(([^()]{2,20})\)\s*$")


@dataclass(frozen=True)
class Suggestion:
    """A partner or advisor suggested for an application."""

    id: str
    name: str
    kind: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "reason": self.reason}


@dataclass
class ProgrammeMatch:
    """One programme for the project idea: its fit, the rules checked, and who could help."""

    programme: Programme
    score: float
    rank: int
    explanation: Explanation
    rules: list[Rule]
    next_deadline: dt.date | None
    partners: list[Suggestion] = field(default_factory=list)
    advisors: list[Suggestion] = field(default_factory=list)

    @property
    def eligible(self) -> bool:
        return not excluding(self.rules)

    @property
    def excluded_by(self) -> list[Rule]:
        return excluding(self.rules)


@dataclass
class ProgrammeMatches:
    """The answer: eligible programmes by fit, then the excluded ones by fit (each with the excluding rules)."""

    query: Query
    facts: ProjectFacts
    eligible: list[ProgrammeMatch]
    ineligible: list[ProgrammeMatch]
    candidates: int
    model_id: str
    today: dt.date


def applicant_type_of(entity: Any) -> ApplicantType | None:
    """The applicant type of an asking entity from the catalog (a municipality, or an organisation's type)."""
    if isinstance(entity, Municipality):
        return "municipality"
    if isinstance(entity, Organisation) and entity.org_type:
        return _APPLICANT_OF_ORG_TYPE.get(entity.org_type)
    return None


def _facts(query: Query, asker: Any) -> ProjectFacts:
    """The query's facts, the applicant type taken from the asker when the query does not give it."""
    facts = query.project or ProjectFacts()
    if facts.applicant_type is None and asker is not None:
        facts = facts.model_copy(update={"applicant_type": applicant_type_of(asker)})
    if facts.partner_country is None and isinstance(asker, Organisation) and len(asker.partner_countries) == 1:
        facts = facts.model_copy(update={"partner_country": asker.partner_countries[0]})
    return facts


def _seat(matcher: Matcher, query: Query, asker: Any) -> tuple[bool | None, str | None]:
    """Whether the applicant sits in NRW (the query's place, else the asker's), and the place's name."""
    place = matcher.gazetteer_.locate(query.city, query.lat, query.lon)
    if place is None and asker is not None:
        place = matcher.index_.places[matcher.index_.row[asker.id]]
    if place is None:
        return None, None
    return place.kind != "city" and place.country == "DE", place.name


def short_name(programme: Programme) -> str | None:
    """The programme's short name from the end of its name: „(Nakopa)“ → ``Nakopa``."""
    found = _SHORT_NAME.search(programme.name)
    return found.group(1) if found else None


def _partners(matcher: Matcher, query: Query, facts: ProjectFacts, p: Programme, n: int) -> list[Suggestion]:
    """Up to ``n`` organisations for each partner the programme requires (the partner search, with the idea)."""
    out: list[Suggestion] = []
    if matcher.index_.block("organisation").size == 0:
        return out
    seen = {query.from_}
    where = f" in {country_name_de(facts.partner_country)}" if facts.partner_country else ""
    for required in p.required_partners:
        wanted = required.description or PARTNER_KIND_LABELS_DE[required.kind]
        text = " ".join(t for t in [query.text, wanted + where] if t)
        q = Query(task="partners", text=text, city=query.city, lat=query.lat, lon=query.lon,
                  org_types=_PARTNER_ORG_TYPES[required.kind])
        fresh = [r for r in matcher.rank(q, k=n + len(seen)).results if r.entity_id not in seen][:n]
        for r in fresh:
            seen.add(r.entity_id)
            reason = r.explanation.reasons[0] if r.explanation.reasons else ""
            out.append(Suggestion(r.entity_id, r.entity.name, r.entity.kind,
                                  f"Für: {wanted}" + (f" — {reason}" if reason else "")))
    return out


def _advisors(matcher: Matcher, query: Query, p: Programme, n: int) -> list[Suggestion]:
    """Advisors whose profile or evidence shows experience with this programme or its kind of application:
    those naming the programme first, then the advisor search for the application."""
    short = short_name(p)
    index = matcher.index_
    block = index.block("advisor")
    if block.size == 0:
        return []
    named = []
    if short:
        pattern = re.compile(rf"\b{re.escape(short)}\b")
        named = [index.entities[i] for i in range(block.rows.start, block.rows.stop)
                 if any(pattern.search(t) for t in index.entities[i].texts())]
    kind = p.application_kind or "Förderantrag"
    text = (f"Beratung bei Förderanträgen: {kind} bei {p.funder}, {p.name}. Themen: {', '.join(p.topics)}. "
            + (query.text or ""))[:5000]
    q = Query(task="advisors", text=text, city=query.city, lat=query.lat, lon=query.lon)
    out = [Suggestion(a.id, a.name, a.kind, f"Erfahrung mit {short} (laut Profil)") for a in named[:n]]
    for r in matcher.rank(q, k=n + len(out)).results:
        if len(out) >= n:
            break
        if any(s.id == r.entity_id for s in out):
            continue
        out.append(Suggestion(r.entity_id, r.entity.name, r.entity.kind,
                              r.explanation.reasons[0] if r.explanation.reasons else f"Berät zu: {kind}"))
    return out


def match_programmes(matcher: Matcher, query: Query, k: int = 10, today: dt.date | None = None,
                     suggest: int = 3, suggest_for: int = 5, lang: str = "de") -> ProgrammeMatches:
    """Rank the programmes for ``query`` (task ``programmes``) and check each one's rules on ``today``.

    Returns the ``k`` best eligible programmes and the ``k`` best excluded ones; the first
    ``suggest_for`` eligible ones get ``suggest`` partners (for each partner they require) and advisors.

    Raises:
        UnknownEntityError: ``query.from_`` is not in the catalog.
        ValidationError: the asker is of the wrong kind, or the query is not for programmes.
    """
    if query.task != "programmes":
        raise ValidationError("match_programmes beantwortet nur die Aufgabe „programmes“",
                              [{"field": "task", "value": query.task}])
    today = today or query.as_of or dt.date.today()
    scores = matcher.score(query, as_of=today)
    ctx = scores.context
    facts = _facts(query, ctx.asker)
    in_nrw, place_name = _seat(matcher, query, ctx.asker)
    rows = scores.candidates
    order = rows[np.argsort(-scores.total[rows - scores.block.rows.start], kind="stable")]
    index = matcher.index_
    eligible: list[ProgrammeMatch] = []
    ineligible: list[ProgrammeMatch] = []
    sims = None
    for i in order:
        p = index.entities[int(i)]
        assert isinstance(p, Programme)
        rules = check_programme(p, facts, today, in_nrw, place_name)
        target = ineligible if excluding(rules) else eligible
        if len(target) >= k:
            if len(eligible) >= k and len(ineligible) >= k:
                break
            continue
        if sims is None:
            sims = topic_similarities(index, ctx)
        target.append(ProgrammeMatch(p, float(scores.total[int(i) - scores.block.rows.start]), len(target) + 1,
                                     explain(index, int(i), scores.at(int(i)), ctx, lang=lang, topic_sims=sims),
                                     rules, next_round(p.deadlines, today).date))
    for m in eligible[:suggest_for]:
        if suggest:
            m.partners = _partners(matcher, query, facts, m.programme, suggest) if m.programme.required_partners \
                else []
            m.advisors = _advisors(matcher, query, m.programme, suggest)
    return ProgrammeMatches(query, facts, eligible, ineligible, int(scores.mask.sum()), matcher.model_id, today)


def ranked_ids(matches: ProgrammeMatches) -> list[tuple[str, float]]:
    """The answer as one list (eligible first, then the excluded ones): what an evaluation scores."""
    return [(m.programme.id, m.score) for m in [*matches.eligible, *matches.ineligible]]
