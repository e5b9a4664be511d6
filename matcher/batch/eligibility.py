"""The hard constraints of an advisor assignment and the diagnosis of what blocks a request.

* **language**: the advisor speaks every language the request requires;
* **region**: one of the advisor's ``regions`` covers the request's place (an
  advisor without ``regions`` counts as working anywhere);
* **conflicts**: the advisor is not on the request's conflict list.

When requests cannot all be served, :func:`diagnose` names per group of blocked
requests the constraint that blocks them and the smallest change that would
unblock them (raise one advisor's capacity, drop a language, widen a region,
lift a conflict).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from matcher.batch.assignment_types import Blockage
from matcher.batch.requests import AdvisorRequest
from matcher.batch.solver import alternating_reach, max_assignment, spare_reachable
from matcher.domain.labels import LANGUAGE_NAMES_DE
from matcher.domain.messages import did_you_mean, listed, quoted
from matcher.domain.schema import Advisor
from matcher.errors import ValidationError
from matcher.text.gazetteer import Place

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Matcher

__all__ = ["CONSTRAINTS", "Eligibility", "diagnose", "eligibility", "locate_requests"]

CONSTRAINTS = ("language", "region", "conflicts")


def _langs(codes: Sequence[str]) -> str:
    names = [LANGUAGE_NAMES_DE.get(c, f"„{c}“") for c in codes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " und " + names[-1]


@dataclass
class Eligibility:
    """Per hard constraint, the requests × advisors matrix of the pairs it allows, and each request's place."""

    language: np.ndarray
    region: np.ndarray
    conflicts: np.ndarray
    places: list[Place]

    def allowed(self, without: str | None = None) -> np.ndarray:
        out = np.ones_like(self.language)
        for name in CONSTRAINTS:
            if name != without:
                out &= getattr(self, name)
        return out


def locate_requests(matcher: Matcher, requests: Sequence[AdvisorRequest], advisors: list[Advisor]) -> list[Place]:
    """Each request's place; raises ValidationError naming every request whose place, municipality
    or conflict ids cannot be resolved."""
    gz = matcher.gazetteer_
    index = {a.id: j for j, a in enumerate(advisors)}
    problems: list[dict[str, Any]] = []
    places: list[Place] = []
    for req in requests:
        place = gz.locate(req.city, req.lat, req.lon)
        if req.municipality:
            try:
                asker = matcher.entity(req.municipality)
            except KeyError:
                problems.append({"request": req.id, "field": "municipality",
                                 "message": f"unbekannte Kommune {quoted(req.municipality)}"})
                asker = None
            if asker is not None and place is None:
                place = matcher.index_.places[matcher.index_.row[asker.id]]
        if place is None and req.city:
            suggestions = gz.suggest(req.city, n=3)
            problems.append({"request": req.id, "field": "city", "value": req.city, "suggestions": suggestions,
                             "message": " ".join(filter(None, [f"Ort {quoted(req.city)} unbekannt.",
                                                               did_you_mean(suggestions)]))})
        elif place is None:
            problems.append({"request": req.id, "field": "city",
                             "message": "Ort fehlt: city, lat/lon oder municipality angeben (für die Regionsprüfung)"})
        for c in req.conflicts:
            if c not in index:
                problems.append({"request": req.id, "field": "conflicts",
                                 "message": f"{quoted(c)} ist keine Beraterin/kein Berater im Katalog"})
        places.append(place)
    if problems:
        raise ValidationError(f"{len({p['request'] for p in problems})} Anfrage(n) fehlerhaft; nichts wurde zugeordnet",
                              problems)
    return places


def eligibility(matcher: Matcher, requests: Sequence[AdvisorRequest], advisors: list[Advisor]) -> Eligibility:
    """Which (request, advisor) pairs each hard constraint allows.

    Raises:
        ValidationError: a request's place cannot be resolved, its municipality or a
            conflict id is unknown (one detail per problem).
    """
    places = locate_requests(matcher, requests, advisors)
    gz = matcher.gazetteer_
    index = {a.id: j for j, a in enumerate(advisors)}
    n_req, n_adv = len(requests), len(advisors)
    language = np.ones((n_req, n_adv), dtype=bool)
    speakers: dict[tuple[str, ...], np.ndarray] = {}
    for r, req in enumerate(requests):
        key = tuple(sorted(req.languages))
        if key not in speakers:
            speakers[key] = np.array([set(key) <= set(a.languages) for a in advisors], dtype=bool)
        language[r] = speakers[key]
    # each distinct (area, place) pair is decided once: advisor × area incidence times the areas covering a place
    areas = list(dict.fromkeys(area for a in advisors for area in a.regions))
    area_pos = {area: k for k, area in enumerate(areas)}
    incidence = np.zeros((n_adv, len(areas)), dtype=np.int64)
    for j, a in enumerate(advisors):
        incidence[j, [area_pos[area] for area in a.regions]] = 1
    anywhere = incidence.sum(axis=1) == 0  # no regions given: works anywhere
    region = np.ones((n_req, n_adv), dtype=bool)
    served: dict[Place, np.ndarray] = {}
    for r, place in enumerate(places):
        if place not in served:
            covering = np.array([gz.covers(area, place) for area in areas], dtype=np.int64)
            served[place] = anywhere | (incidence @ covering > 0) if areas else np.ones(n_adv, dtype=bool)
        region[r] = served[place]
    conflicts = np.ones((n_req, n_adv), dtype=bool)
    for r, req in enumerate(requests):
        conflicts[r, [index[c] for c in req.conflicts]] = False
    return Eligibility(language, region, conflicts, places)


# ------------------------------------------------------------------ assignment
def diagnose(requests: list[AdvisorRequest], advisors: list[Advisor], hard: Eligibility, candidate: np.ndarray,
              capacity: np.ndarray, unlimited: np.ndarray, S: np.ndarray, assigned: np.ndarray) -> list[Blockage]:
    """Explain every unserved request of a maximum assignment ``assigned`` (``candidate``: the
    pairs the engine scores at all, before the hard constraints)."""
    allowed = hard.allowed() & candidate
    unserved = np.flatnonzero(assigned < 0)
    out: list[Blockage] = []
    # 1. requests no advisor may take at all (hard constraints alone)
    no_one = [r for r in unserved if not allowed[r].any()]
    groups: dict[tuple, list[int]] = {}
    for r in no_one:
        constraint, message, relax, near = _why_nobody(requests[r], advisors, hard, capacity, r)
        groups.setdefault((constraint, message, tuple(relax), tuple(near)), []).append(r)
    for (constraint, message, relax, near), rs in groups.items():
        ids = [requests[r].id for r in rs]
        out.append(Blockage(constraint, ids, list(near), len(rs), list(relax),
                            f"Anfrage(n) {listed(ids)}: {message}. Abhilfe: {' oder '.join(relax)}."))
    # 2. requests whose eligible advisors are all full
    competing = [r for r in unserved if allowed[r].any()]
    if not competing:
        return out
    spare = spare_reachable(allowed, capacity, assigned)
    pools: dict[tuple[int, ...], list[int]] = {}
    for r in competing:
        pools.setdefault(tuple(alternating_reach(allowed, assigned, r)[1]), []).append(r)
    for pool, rs in pools.items():
        out.append(_capacity_blockage(requests, advisors, hard, candidate, capacity, unlimited, S, assigned,
                                      list(pool), rs, spare))
    return out


def _why_nobody(req: AdvisorRequest, advisors: list[Advisor], hard: Eligibility, capacity: np.ndarray,
                r: int) -> tuple[str, str, list[str], list[str]]:
    """(blocking constraint, German reason, relaxations, nearest-miss advisor ids) for a request
    that no advisor may take."""
    lang, region, conf = hard.language[r], hard.region[r], hard.conflicts[r]
    has_cap = capacity > 0
    place = hard.places[r].name
    names = lambda js: [f"{advisors[j].name} ({advisors[j].id})" for j in js[:3]]  # noqa: E731
    if req.languages and not lang.any():
        unspoken = [c for c in req.languages if not any(c in a.languages for a in advisors)]
        if unspoken:
            return ("language", f"niemand im Pool spricht {_langs(unspoken)}",
                    [f"Sprache {_langs(unspoken)} streichen"], [])
        return ("language", f"niemand im Pool spricht {_langs(req.languages)} zugleich",
                [f"eine der Sprachen {_langs(req.languages)} streichen"], [])
    if req.languages and not (lang & region).any():
        near = np.flatnonzero(lang & conf)
        return ("language", f"niemand, der {_langs(req.languages)} spricht, berät in {place}",
                [f"Sprache {_langs(req.languages)} streichen",
                 *[f"Einsatzgebiet von {n} um {place} erweitern" for n in names(near)[:1]]],
                [advisors[j].id for j in near[:3]])
    if not region.any():
        return ("region", f"niemand im Pool berät in {place}",
                [f"Einsatzgebiet einer Beraterin oder eines Beraters um {place} erweitern"], [])
    if not (lang & region & conf).any():
        near = np.flatnonzero(lang & region)
        return ("conflicts",
                f"alle, die in Frage kommen, stehen auf der Konfliktliste ({listed([advisors[j].id for j in near])})",
                [f"Konflikt mit {n} prüfen" for n in names(near)[:1]], [advisors[j].id for j in near[:3]])
    near = np.flatnonzero(lang & region & conf & ~has_cap)
    return ("capacity", f"alle, die in Frage kommen, haben keine Kapazität ({listed([advisors[j].id for j in near])})",
            [f"Kapazität von {n} um 1 erhöhen" for n in names(near)[:1]], [advisors[j].id for j in near[:3]])


def _capacity_blockage(requests: list[AdvisorRequest], advisors: list[Advisor], hard: Eligibility,
                       candidate: np.ndarray, capacity: np.ndarray, unlimited: np.ndarray, S: np.ndarray,
                       assigned: np.ndarray, pool: list[int], rs: list[int], spare: np.ndarray) -> Blockage:
    """Requests competing for a pool of full advisors: which constraint keeps them from advisors
    with room, and the smallest change that serves them."""
    allowed = hard.allowed() & candidate
    ids = [requests[r].id for r in rs]
    missing = len(rs)
    # which constraint, dropped for one request, opens an advisor with room?
    helps: dict[str, list[int]] = {}
    for name in CONSTRAINTS:
        open_ = hard.allowed(without=name)
        helps[name] = [r for r in rs if (open_[r] & candidate[r] & spare).any()]
    constraint = max(CONSTRAINTS, key=lambda c: len(helps[c])) if any(helps.values()) else "capacity"
    # raise one advisor's capacity: try the pool's advisors most wanted by these requests
    wanted = sorted(pool, key=lambda j: (-int(allowed[rs, j].sum()), -float(np.max(S[rs, j]))))
    base = int((assigned >= 0).sum())
    raise_options = []
    for j in wanted[:5]:
        trial = capacity.copy()
        trial[j] += missing
        gain = int((max_assignment(allowed, trial) >= 0).sum()) - base
        if gain > 0:
            raise_options.append((j, gain))
            if gain >= missing:
                break
    relax = []
    for j, gain in raise_options[-1:]:
        adv = advisors[j]
        relax.append(f"Kapazität von {adv.name} ({adv.id}) um {missing} erhöhen"
                     + (f" (bedient dann {gain} von {missing})" if gain < missing else ""))
    req_example = [requests[r].id for r in helps.get(constraint, [])][:3]
    first = requests[rs[0]]
    if constraint == "language":
        langs = sorted({lang for r in rs for lang in requests[r].languages})
        phrase = f"Keine Beraterin und kein Berater mit {_langs(langs)} hat noch Kapazität"
        relax.append(f"Sprache {_langs(langs)} streichen (bei {listed(req_example)})")
    elif constraint == "region":
        places = sorted({hard.places[r].name for r in rs})
        phrase = f"Niemand, der in {listed(places, 3)} berät, hat noch Kapazität"
        relax.append(f"Regionsbindung aufheben (bei {listed(req_example)})")
    elif constraint == "conflicts":
        phrase = "Die Berater/innen mit freier Kapazität stehen auf der Konfliktliste"
        relax.append(f"Konfliktliste prüfen (bei {listed(req_example)})")
    else:
        phrase = "Die Kapazität der passenden Berater/innen reicht nicht"
        if first.languages:
            relax.append(f"Sprache {_langs(first.languages)} streichen")
    used = ", ".join(f"{advisors[j].name} ({advisors[j].id}) {int((assigned == j).sum())}/"
                     f"{'∞' if unlimited[j] else int(capacity[j])}" for j in wanted[:4])
    gap = "fehlt 1 Platz" if missing == 1 else f"fehlen {missing} Plätze"
    message = (f"{phrase} (belegt: {used}{' …' if len(wanted) > 4 else ''}); es {gap} "
               f"für {listed(ids)}. Abhilfe: {' oder '.join(relax) if relax else 'Kapazität im Pool erhöhen'}.")
    return Blockage(constraint, ids, [advisors[j].id for j in wanted], missing, relax, message)
