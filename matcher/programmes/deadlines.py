"""When a programme's next application round closes: fixed dates, yearly dates that roll on, or rolling."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from matcher.domain.schema import Deadlines

__all__ = ["NextRound", "next_round", "in_weeks"]


@dataclass(frozen=True)
class NextRound:
    """The next deadline on or after ``today`` (``None``: rolling, or no round left); ``last`` the latest past one."""

    date: dt.date | None
    rolled: bool            # a yearly date moved on to a coming year's round
    closed: bool            # fixed dates only, all past
    last: dt.date | None


def _same_day_in(day: dt.date, year: int) -> dt.date:
    """``day`` in ``year`` (29 February becomes 28 February in a common year)."""
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


def next_round(deadlines: Deadlines, today: dt.date) -> NextRound:
    """The next deadline of ``deadlines`` seen from ``today`` (a deadline today still counts)."""
    past = [d for d in deadlines.dates if d < today]
    last = max(past) if past else None
    coming = [d for d in deadlines.dates if d >= today]
    if coming:
        return NextRound(min(coming), False, False, last)
    if deadlines.annual and deadlines.dates:
        rolled = []
        for d in deadlines.dates:
            year = today.year
            while (r := _same_day_in(d, year)) < today:
                year += 1
            rolled.append(r)
        return NextRound(min(rolled), True, False, last)
    return NextRound(None, False, not deadlines.rolling, last)


def in_weeks(day: dt.date, today: dt.date) -> str:
    """How far ``day`` is from ``today`` in words: „heute“, „morgen“, „in 5 Tagen“, „in 17 Wochen“."""
    days = (day - today).days
    if days <= 0:
        return "heute"
    if days == 1:
        return "morgen"
    if days < 14:
        return f"in {days} Tagen"
    return f"in {days // 7} Wochen"
