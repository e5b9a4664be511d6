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
from typing import TYPE_CHECKING

import numpy as np

from matcher.batch.assignment_types import Alternate, Assignment, AssignmentResult, Blockage
from matcher.batch.eligibility import Eligibility, diagnose, eligibility, locate_requests
from matcher.batch.requests import AdvisorRequest
from matcher.batch.score_matrix import RequestScores, score_requests
from matcher.batch.solver import solve_assignment
from matcher.domain.messages import listed
from matcher.domain.schema import Advisor
from matcher.engine.confidence import ResultConfidence, assess, evidence, score_ranks
from matcher.errors import InfeasibleError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Matcher

__all__ = ["Alternate", "Assignment", "AssignmentResult", "Blockage", "Eligibility", "assign_advisors",
           "check_assignment_request", "eligibility", "DEFAULT_ALTERNATES"]

DEFAULT_ALTERNATES = 3
Progress = Callable[[float, str], None]


def _check_input(matcher: Matcher, requests: list[AdvisorRequest], k_alternates: int,
                 capacities: dict[str, int | None] | None) -> list[Advisor]:
    """Duplicate ids, alternates, capacity overrides; returns the advisor pool."""
    seen = [r.id for r in requests]
    if len(set(seen)) != len(seen):
        dup = sorted({i for i in seen if seen.count(i) > 1})
        raise ValidationError(f"Doppelte Anfrage-ids: {listed(dup)}", [{"field": "id", "value": d} for d in dup])
    if k_alternates < 0:
        raise ValidationError("k_alternates darf nicht negativ sein", [{"field": "k_alternates"}])
    matcher._check()
    advisors: list[Advisor] = [matcher.entities_[i] for i in np.flatnonzero(matcher.index_.kind == "advisor")]
    unknown = sorted(set(capacities or {}) - {a.id for a in advisors})
    if unknown:
        raise ValidationError(f"Kapazität für unbekannte Berater/innen: {listed(unknown)}",
                              [{"field": "capacities", "value": u} for u in unknown])
    negative = sorted(k for k, v in (capacities or {}).items() if v is not None and v < 0)
    if negative:
        raise ValidationError(f"Negative Kapazität für {listed(negative)}",
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
    locate_requests(matcher, requests, _check_input(matcher, requests, k_alternates, capacities))


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
        blocked = diagnose(requests, advisors, hard, candidate, capacity, unlimited, S, solution.advisor)
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
        c = _confidence(matcher, scores, r, j, lang)
        explanation = scores.explain(r, j, lang=lang, content_fit=c.content_fit) if with_explanations else None
        choice = int((S[r] > S[r, j]).sum() + (S[r, :j] == S[r, j]).sum()) + 1
        out.append(Assignment(req, advisors[j], float(S[r, j]), choice, int(eligible[r]), explanation, alternates,
                              confidence=c.confidence, strength=c.strength, strength_label=c.label))
        if with_explanations and r % 50 == 0:
            report(0.9 + 0.1 * r / len(requests), "Begründen")
    report(1.0, "Fertig")
    usage = {a.id: (int(load[j]), None if unlimited[j] else int(capacity[j])) for j, a in enumerate(advisors)}
    solver = {"rounds": solution.rounds, "columns": solution.columns, "max_assignable": solution.max_assignable}
    return AssignmentResult(out, solution.total, solution.optimal, blocked, usage, matcher.model_id, solver)


def _confidence(matcher: Matcher, scores: RequestScores, r: int, j: int, lang: str) -> ResultConfidence:
    """The calibrated confidence of advisor ``j`` for request ``r``: its fused score, its rank by score among
    all candidates (hard constraints aside, as a ranking has it) and the gap to the request's best."""
    total = float(scores.total[r, j])
    ranks, best = score_ranks(scores.total[r], [total])
    contributions = {s: float(v[r, j]) for s, v in scores.contributions.items()}
    seen = evidence(matcher.index_, scores.contexts[r], scores.block.rows.start + j, contributions)
    return assess(matcher.confidence_, [total], ranks, best, [seen], lang=lang)[0][0]


# ------------------------------------------------------------------ diagnosis
