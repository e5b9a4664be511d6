"""The results of an advisor assignment: who serves which request, the alternatives, what is blocked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from matcher.batch.requests import AdvisorRequest
from matcher.domain.schema import Advisor
from matcher.engine.explain import Explanation

__all__ = ["Alternate", "Assignment", "AssignmentResult", "Blockage"]


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
    confidence: float | None = None      # calibrated probability of a good fit (matcher.engine.confidence)
    strength: str | None = None          # good, partial, weak
    strength_label: str | None = None    # „passt gut“, „passt teilweise“, „schwache Übereinstimmung“

    def as_dict(self, include_contact: bool = False) -> dict[str, Any]:
        adv = None
        if self.advisor is not None:
            adv = self.advisor.model_dump(mode="json", exclude=None if include_contact else {"contact"},
                                          exclude_none=True)
        return {"request": self.request.model_dump(mode="json", exclude_none=True), "advisor": adv,
                "score": None if self.score is None else round(self.score, 4), "choice_rank": self.choice_rank,
                "eligible": self.eligible, "explanation": self.explanation.as_dict() if self.explanation else None,
                "alternates": [a.as_dict() for a in self.alternates], "blocked": self.blocked,
                "confidence": self.confidence, "strength": self.strength, "strength_label": self.strength_label}


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
