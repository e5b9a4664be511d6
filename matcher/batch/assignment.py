"""Advisor assignment: every municipality request gets the best advisor the pool can give,
all requests at once, within capacities and hard constraints.

``assign_advisors`` scores all (request, advisor) pairs with the engine
(:mod:`matcher.batch.score_matrix`), forbids pairs that break a hard constraint —

* **language**: the advisor speaks every language the request requires;
* **region**: one of the advisor's ``regions`` covers the request's place (an
  advisor without ``regions`` counts as working anywhere);
* **conflicts**: the advisor is not on the request's conflict list;

— and maximises the total fused score with :func:`~matcher.batch.solver.solve_assignment`
(exact, with an LP-duality certificate). Each request also gets ``k_alternates``
further eligible advisors, best first.

When no complete assignment exists the default is to return none: an
:class:`~matcher.errors.InfeasibleError` names, per group of blocked requests,
the constraint that blocks them and the smallest change that would unblock
them (raise one advisor's capacity, drop a language, widen a region, lift a
conflict). With ``allow_partial=True`` the result serves as many requests as
possible, with the greatest total score among such assignments, and carries
the same diagnosis in ``blocked``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from matcher.batch.requests import AdvisorRequest
from matcher.batch.solver import alternating_reach, max_assignment, solve_assignment, spare_reachable
from matcher.errors import InfeasibleError, ValidationError
from matcher.engine.explain import Explanation
from matcher.text.gazetteer import Place
from matcher.text.intent import LANGUAGE_NAMES_DE
from matcher.domain.messages import did_you_mean, quoted
from matcher.batch.score_matrix import score_requests
from matcher.domain.schema import Advisor

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Matcher

__all__ = ["Alternate", "Assignment", "AssignmentResult", "Blockage", "Eligibility", "assign_advisors",
           "check_assignment_request", "eligibility", "DEFAULT_ALTERNATES"]

DEFAULT_ALTERNATES = 3
CONSTRAINTS = ("language", "region", "conflicts")
Progress = Callable[[float, str], None]


def _langs(codes: Sequence[str]) -> str:
    names = [LANGUAGE_NAMES_DE.get(c, f"„{c}“") for c in codes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " und " + names[-1]


def _ids(items: Sequence[str], limit: int = 8) -> str:
    more = f" und {len(items) - limit} weitere" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


@dataclass
class Alternate:
    """A further eligible advisor for a request; ``free``: places left after the assignment (None: unlimited)."""

    advisor: Advisor
    score: float
    free: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.advisor.id, "name": self.advisor.name, "score": round(self.score, 4), "free": self.free}


@dataclass
class Assignment:
    """The advisor given to one request (``advisor`` None: blocked; ``blocked`` says why)."""

    request: AdvisorRequest
    advisor: Advisor | None
    score: float | None
    choice_rank: int | None     # 1 = the request's own best eligible advisor
    eligible: int               # advisors meeting every hard constraint
    explanation: Explanation | None
    alternates: list[Alternate] = field(default_factory=list)
    blocked: str | None = None

    def as_dict(self, include_contact: bool = False) -> dict[str, Any]:
        adv = None
        if self.advisor is not None:
            adv = self.advisor.model_dump(mode="json", exclude=None if include_contact else {"contact"},
                                          exclude_none=True)
        return {"request": self.request.model_dump(mode="json", exclude_none=True), "advisor": adv,
                "score": None if self.score is None else round(self.score, 4), "choice_rank": self.choice_rank,
                "eligible": self.eligible, "explanation": self.explanation.as_dict() if self.explanation else None,
                "alternates": [a.as_dict() for a in self.alternates], "blocked": self.blocked}


@dataclass
class Blockage:
    """Requests that cannot be served, the constraint that blocks them, and how to unblock them."""

    constraint: str            # language | region | conflicts | capacity
    requests: list[str]
    advisors: list[str]        # the advisors they compete for (all full), or the nearest misses
    missing: int               # places missing
    relaxations: list[str]     # German, smallest first
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"constraint": self.constraint, "requests": self.requests, "advisors": self.advisors,
                "missing": self.missing, "relaxations": self.relaxations, "message": self.message}


@dataclass
class AssignmentResult:
    """All assignments, the total score and the solver's certificate."""

    assignments: list[Assignment]
    total_score: float
    optimal: bool
    blocked: list[Blockage]
    load: dict[str, tuple[int, int | None]]   # advisor id → (assigned, capacity)
    model_id: str = ""
    solver: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return all(a.advisor is not None for a in self.assignments)

    def as_dict(self, include_contact: bool = False) -> dict[str, Any]:
        return {"complete": self.complete, "optimal": self.optimal, "total_score": round(self.total_score, 4),
                "model": self.model_id, "solver": self.solver, "blocked": [b.as_dict() for b in self.blocked],
                "load": {k: {"assigned": a, "capacity": c} for k, (a, c) in self.load.items()},
                "assignments": [a.as_dict(include_contact) for a in self.assignments]}


# ------------------------------------------------------------------ hard constraints
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


def _locate(matcher: Matcher, requests: Sequence[AdvisorRequest], advisors: list[Advisor]) -> list[Place]:
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
    places = _locate(matcher, requests, advisors)
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
def _check_input(matcher: Matcher, requests: list[AdvisorRequest], k_alternates: int,
                 capacities: dict[str, int | None] | None) -> list[Advisor]:
    """Duplicate ids, alternates, capacity overrides; returns the advisor pool."""
    seen = [r.id for r in requests]
    if len(set(seen)) != len(seen):
        dup = sorted({i for i in seen if seen.count(i) > 1})
        raise ValidationError(f"Doppelte Anfrage-ids: {_ids(dup)}", [{"field": "id", "value": d} for d in dup])
    if k_alternates < 0:
        raise ValidationError("k_alternates darf nicht negativ sein", [{"field": "k_alternates"}])
    matcher._check()
    advisors: list[Advisor] = [matcher.entities_[i] for i in np.flatnonzero(matcher.index_.kind == "advisor")]
    unknown = sorted(set(capacities or {}) - {a.id for a in advisors})
    if unknown:
        raise ValidationError(f"Kapazität für unbekannte Berater/innen: {_ids(unknown)}",
                              [{"field": "capacities", "value": u} for u in unknown])
    negative = sorted(k for k, v in (capacities or {}).items() if v is not None and v < 0)
    if negative:
        raise ValidationError(f"Negative Kapazität für {_ids(negative)}",
                              [{"field": "capacities", "value": k} for k in negative])
    return advisors


def check_assignment_request(matcher: Matcher, requests: Sequence[AdvisorRequest], *,
                             k_alternates: int = DEFAULT_ALTERNATES,
                             capacities: dict[str, int | None] | None = None) -> None:
    """The cheap checks of :func:`assign_advisors`, without scoring: duplicate ids, capacity
    overrides, every request's place, municipality and conflict ids.

    A batch job runs them when it is submitted, so bad input is answered at once.

    Raises:
        ValidationError: one detail per problem.
    """
    requests = list(requests)
    _locate(matcher, requests, _check_input(matcher, requests, k_alternates, capacities))


def assign_advisors(matcher: Matcher, requests: Sequence[AdvisorRequest], *, k_alternates: int = DEFAULT_ALTERNATES,
                    allow_partial: bool = False, capacities: dict[str, int | None] | None = None,
                    as_of: dt.date | None = None, lang: str = "de", with_explanations: bool = True,
                    workers: int = 1, progress: Progress | None = None) -> AssignmentResult:
    """Assign an advisor to every request, maximising the total fused score.

    Args:
        matcher: a fitted matcher whose catalog holds the advisor pool.
        requests: the municipality requests (ids unique).
        k_alternates: further eligible advisors listed per request.
        allow_partial: if no complete assignment exists, return the best partial one
            (as many requests as possible) instead of raising.
        capacities: advisor id → places left, overriding the catalog's ``capacity``
            (``None``: unlimited). Advisors without a capacity anywhere are unlimited.
        as_of: reference date for the engine.
        lang: language of the engine's reasons.
        with_explanations: explain each assignment.
        workers: processes for scoring (see :func:`~matcher.batch.score_matrix.score_requests`).
        progress: called with (fraction done, German stage label).

    Raises:
        InfeasibleError: no complete assignment and ``allow_partial`` is False; ``details``
            hold one entry per blockage (constraint, requests, advisors, missing, relaxations).
        ValidationError: duplicate request ids, unknown ids, a request without a place.
    """
    report = progress or (lambda fraction, stage: None)
    requests = list(requests)
    # input checks first (cheap), scoring after (the expensive part)
    report(0.0, "Bedingungen prüfen")
    advisors = _check_input(matcher, requests, k_alternates, capacities)
    overrides = capacities or {}
    cap_of = [overrides[a.id] if a.id in overrides else a.capacity for a in advisors]
    unlimited = np.array([c is None for c in cap_of])
    capacity = np.array([len(requests) if c is None else c for c in cap_of], dtype=np.int64)
    hard = eligibility(matcher, requests, advisors)
    scores = score_requests(matcher, [r.query() for r in requests], as_of=as_of, workers=workers,
                            progress=lambda f, stage: report(0.05 + 0.8 * f, stage))
    candidate = np.isfinite(scores.total)
    allowed = hard.allowed() & candidate
    S = np.where(allowed, scores.total, -np.inf)

    report(0.85, "Optimieren")
    solution = solve_assignment(S, capacity, complete=not allow_partial)
    blocked: list[Blockage] = []
    if not solution.complete:
        blocked = _diagnose(requests, advisors, hard, candidate, capacity, unlimited, S, solution.advisor)
        if not allow_partial:
            n_blocked = sum(len(b.requests) for b in blocked)
            raise InfeasibleError(
                f"Keine vollständige Zuordnung möglich: {n_blocked} von {len(requests)} Anfragen bleiben ohne "
                "Beratung. " + " ".join(b.message for b in blocked), [b.as_dict() for b in blocked])

    report(0.9, "Begründen")
    assigned = solution.advisor
    load = np.bincount(assigned[assigned >= 0], minlength=len(advisors))
    why_blocked = {rid: b.message for b in blocked for rid in b.requests}
    out = []
    eligible = allowed.sum(axis=1)
    keep = min(k_alternates + 1, len(advisors))
    best = np.argpartition(-S, keep - 1, axis=1)[:, :keep] if 0 < keep < len(advisors) else \
        np.tile(np.arange(len(advisors)), (len(requests), 1))
    for r, req in enumerate(requests):
        j = int(assigned[r])
        ranked = sorted((b for b in best[r] if allowed[r, b]), key=lambda b: (-S[r, b], b))
        alternates = [Alternate(advisors[b], float(S[r, b]),
                                None if unlimited[b] else int(capacity[b] - load[b]))
                      for b in ranked if b != j][:k_alternates]
        if j < 0:
            out.append(Assignment(req, None, None, None, int(eligible[r]), None, alternates,
                                  why_blocked.get(req.id, "Keine freie passende Beratung")))
            continue
        explanation = scores.explain(r, j, lang=lang) if with_explanations else None
        choice = int((S[r] > S[r, j]).sum() + (S[r, :j] == S[r, j]).sum()) + 1
        out.append(Assignment(req, advisors[j], float(S[r, j]), choice, int(eligible[r]), explanation, alternates))
        if with_explanations and r % 50 == 0:
            report(0.9 + 0.1 * r / len(requests), "Begründen")
    report(1.0, "Fertig")
    usage = {a.id: (int(load[j]), None if unlimited[j] else int(capacity[j])) for j, a in enumerate(advisors)}
    solver = {"rounds": solution.rounds, "columns": solution.columns, "max_assignable": solution.max_assignable}
    return AssignmentResult(out, solution.total, solution.optimal, blocked, usage, matcher.model_id, solver)


# ------------------------------------------------------------------ diagnosis
def _diagnose(requests: list[AdvisorRequest], advisors: list[Advisor], hard: Eligibility, candidate: np.ndarray,
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
                            f"Anfrage(n) {_ids(ids)}: {message}. Abhilfe: {' oder '.join(relax)}."))
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
                f"alle, die in Frage kommen, stehen auf der Konfliktliste ({_ids([advisors[j].id for j in near])})",
                [f"Konflikt mit {n} prüfen" for n in names(near)[:1]], [advisors[j].id for j in near[:3]])
    near = np.flatnonzero(lang & region & conf & ~has_cap)
    return ("capacity", f"alle, die in Frage kommen, haben keine Kapazität ({_ids([advisors[j].id for j in near])})",
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
        relax.append(f"Sprache {_langs(langs)} streichen (bei {_ids(req_example)})")
    elif constraint == "region":
        places = sorted({hard.places[r].name for r in rs})
        phrase = f"Niemand, der in {_ids(places, 3)} berät, hat noch Kapazität"
        relax.append(f"Regionsbindung aufheben (bei {_ids(req_example)})")
    elif constraint == "conflicts":
        phrase = "Die Berater/innen mit freier Kapazität stehen auf der Konfliktliste"
        relax.append(f"Konfliktliste prüfen (bei {_ids(req_example)})")
    else:
        phrase = "Die Kapazität der passenden Berater/innen reicht nicht"
        if first.languages:
            relax.append(f"Sprache {_langs(first.languages)} streichen")
    used = ", ".join(f"{advisors[j].name} ({advisors[j].id}) {int((assigned == j).sum())}/"
                     f"{'∞' if unlimited[j] else int(capacity[j])}" for j in wanted[:4])
    gap = "fehlt 1 Platz" if missing == 1 else f"fehlen {missing} Plätze"
    message = (f"{phrase} (belegt: {used}{' …' if len(wanted) > 4 else ''}); es {gap} "
               f"für {_ids(ids)}. Abhilfe: {' oder '.join(relax) if relax else 'Kapazität im Pool erhöhen'}.")
    return Blockage(constraint, ids, [advisors[j].id for j in wanted], missing, relax, message)
