"""The landscape report's „Förderfristen der nächsten 6 Monate“: the deadlines of the catalog's funding
programmes that fall in the coming months, for the actors of an area (issue 20)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from matcher.domain.labels import APPLICANT_TYPE_PLURALS_DE
from matcher.domain.schema import APPLICANT_TYPES, Programme
from matcher.programmes.deadlines import next_round

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Matcher

__all__ = ["HORIZON_DAYS", "FundingDeadline", "funding_deadlines"]

HORIZON_DAYS = 183   # "the next 6 months"


@dataclass(frozen=True)
class FundingDeadline:
    """One programme's deadline within the horizon."""

    date: dt.date
    programme_id: str
    name: str
    funder: str
    applicants: str       # who may apply, in words
    example: bool         # example data: conditions to be checked with the funder

    def as_dict(self) -> dict[str, Any]:
        return {"date": self.date.isoformat(), "programme": self.programme_id, "name": self.name,
                "funder": self.funder, "applicants": self.applicants, "example": self.example}


def _deadlines_within(p: Programme, today: dt.date, end: dt.date) -> list[dt.date]:
    """Every deadline of ``p`` from ``today`` to ``end``: the fixed dates and yearly ones rolled on."""
    out = []
    day = today
    while (nxt := next_round(p.deadlines, day).date) is not None and nxt <= end:
        out.append(nxt)
        day = nxt + dt.timedelta(days=1)
    return out


def funding_deadlines(matcher: Matcher, today: dt.date, days: int = HORIZON_DAYS) -> list[FundingDeadline]:
    """The deadlines of the catalog's programmes in the next ``days`` days, soonest first (rolling
    programmes have none and are left out). Every actor of an NRW landscape may meet a programme's
    seat rule, so none is filtered by place."""
    end = today + dt.timedelta(days=days)
    block = matcher.index_.block("programme")
    out = []
    for p in matcher.index_.entities[block.rows]:
        assert isinstance(p, Programme)
        who = [APPLICANT_TYPE_PLURALS_DE[t] for t in APPLICANT_TYPES if t in p.eligibility.applicant_types]
        out += [FundingDeadline(d, p.id, p.name, p.funder, ", ".join(who), p.example)
                for d in _deadlines_within(p, today, end)]
    return sorted(out, key=lambda f: (f.date, f.name))
