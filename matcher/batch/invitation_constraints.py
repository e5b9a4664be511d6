"""The bounds of an invitation list: quotas and the city limit as per-group place bounds,
which of them to drop when they admit no list, and how each fared on the finished list.

:func:`fit_constraints` is the relaxation: a constraint that admits no list is
dropped and reported (which one, by how much), and the list is built without it.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from matcher.batch.invitation_types import ConstraintReport, Invitee, Quota
from matcher.batch.selection import UNLIMITED, completion_feasible, max_flow
from matcher.domain.formatting import decimal

__all__ = ["place_bounds", "fit_constraints", "final_counts"]


def place_bounds(quotas: list[Quota], group_list: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group, the least and most places the quotas allow on a list of ``size``."""
    lower = np.zeros(len(group_list), dtype=np.int64)
    upper = np.full(len(group_list), UNLIMITED, dtype=np.int64)
    for q in quotas:
        g = group_list.index(q.group)
        if q.bound == "min":
            lower[g] = max(lower[g], q.places(size))
        else:
            upper[g] = min(upper[g], q.places(size))
    return lower, upper


def fit_constraints(quotas: list[Quota], max_per_city: int | None, size: int, size_eff: int, groups: np.ndarray,
                     cities: np.ndarray, group_list: list[str], n_cities: int) -> tuple[dict, list[ConstraintReport]]:
    """Drop the constraints that admit no list, report each one.

    Order: a minimum quota that cannot be met even alone (too few candidates of
    its type, given the city limit) is dropped; then, if the maxima and the city
    limit leave too few places, the city limit and then maximum quotas; then, if
    minima still clash (their sum exceeds the list, or with the city limit),
    the largest minimum first.
    """
    n_groups = len(group_list)
    avail = np.zeros((n_groups, n_cities + 1), dtype=np.int64)
    np.add.at(avail, (groups, np.where(cities < 0, n_cities, cities)), 1)
    available = avail.sum(axis=1)
    reports: list[ConstraintReport] = []
    if size_eff < size:
        reports.append(ConstraintReport(
            "size", f"{size} Plätze", held=False, relaxed=True, required=size, achieved=size_eff,
            shortfall=size - size_eff,
            message=f"Nur {size_eff} Kandidaten im Katalog: die Liste hat {size_eff} statt {size} Plätze."))

    def room(cap: int | None) -> np.ndarray:
        r = np.full(n_cities + 1, size_eff, dtype=np.int64)
        if cap is not None:
            r[:-1] = min(cap, size_eff)
        return r

    def ok(qs: list[Quota], cap: int | None) -> bool:
        lower, upper = place_bounds(qs, group_list, size_eff)
        return completion_feasible(avail, lower, upper, room(cap), size_eff)

    keep = list(quotas)
    cap = max_per_city
    dropped: dict[int, tuple[int, str]] = {}  # quota position -> (shortfall, message)
    city_note = f", höchstens {cap} pro Stadt" if cap is not None else ""
    for pos, q in enumerate(quotas):  # minima that cannot be met even alone
        if q.bound != "min":
            continue
        g = group_list.index(q.group)
        only = np.zeros(n_groups, dtype=np.int64)
        only[g] = size_eff
        reachable = max_flow(avail, only, room(cap))
        need = q.places(size_eff)
        if need > reachable:
            dropped[pos] = (need - reachable, f"Quote „{q.label()}“ nicht erfüllbar: gefordert {need} von {size_eff} "
                            f"Plätzen, möglich sind nur {reachable} ({int(available[g])} Kandidaten{city_note}); "
                            f"es fehlen {need - reachable}. Die Liste wurde ohne diese Quote gebildet.")
    keep = [q for pos, q in enumerate(quotas) if pos not in dropped]
    city_report = None
    maxima = [q for q in keep if q.bound == "max"]
    if not ok(maxima, cap):
        if cap is not None and not ok([], cap):
            places = max_flow(avail, np.full(n_groups, size_eff), room(cap))
            city_report = (size_eff - places, f"Höchstens {cap} pro Stadt lässt nur {places} von {size_eff} Plätzen zu "
                           f"({int((avail[:, :-1].sum(axis=0) > 0).sum())} Städte); es fehlen {size_eff - places}. "
                           "Die Liste wurde ohne diese Grenze gebildet.")
            cap = None
        for q in maxima:
            if ok([m for m in keep if m.bound == "max"], cap):
                break
            pos = quotas.index(q)
            dropped[pos] = (0, f"Quote „{q.label()}“ lässt zusammen mit den übrigen Vorgaben keine Liste mit "
                               f"{size_eff} Plätzen zu. Die Liste wurde ohne diese Quote gebildet.")
            keep.remove(q)
    for q in sorted([q for q in keep if q.bound == "min"], key=lambda q: -q.places(size_eff)):
        if ok(keep, cap):
            break
        dropped[quotas.index(q)] = (0, f"Quote „{q.label()}“ ist zusammen mit den übrigen Vorgaben nicht erfüllbar "
                                       "(die Mindestanteile übersteigen zusammen die Liste oder kollidieren mit der "
                                       "Höchstzahl pro Stadt). Die Liste wurde ohne diese Quote gebildet.")
        keep.remove(q)
    if not ok(keep, cap) and cap is not None:  # only the city limit is left to blame
        places = max_flow(avail, np.full(n_groups, size_eff), room(cap))
        city_report = (max(size_eff - places, 0), f"Höchstens {cap} pro Stadt ist mit den Quoten nicht vereinbar. "
                                                  "Die Liste wurde ohne diese Grenze gebildet.")
        cap = None

    for pos, q in enumerate(quotas):
        g = group_list.index(q.group)
        shortfall, message = dropped.get(pos, (0, ""))
        reports.append(ConstraintReport("quota", q.label(), held=False, relaxed=pos in dropped,
                                        required=q.places(size_eff), achieved=0, shortfall=shortfall,
                                        group=q.group, bound=q.bound, available=int(available[g]), message=message))
    if max_per_city is not None:
        shortfall, message = city_report or (0, "")
        reports.append(ConstraintReport("max_per_city", f"höchstens {max_per_city} pro Stadt", held=False,
                                        relaxed=city_report is not None, required=max_per_city, achieved=0,
                                        shortfall=shortfall, message=message))
    return {"quotas": keep, "max_per_city": cap}, reports


def final_counts(reports: list[ConstraintReport], invitees: list[Invitee], max_per_city: int | None) -> None:
    """Fill in what the finished list achieved, and whether each constraint holds on it."""
    by_group = Counter(i.group for i in invitees)
    by_city = Counter(i.entity.city for i in invitees if i.entity.city)
    n = len(invitees)
    for r in reports:
        if r.constraint == "quota":
            r.achieved = by_group.get(r.group, 0)
            r.held = r.achieved >= r.required if r.bound == "min" else r.achieved <= r.required
            if not r.message:
                share = f" ({decimal(100 * r.achieved / n, 0)} %)" if n else ""
                r.message = (f"erfüllt: {r.achieved} von {n}{share}" if r.held
                             else f"nicht erfüllt: {r.achieved} von {n}")
        elif r.constraint == "max_per_city":
            r.achieved = max(by_city.values(), default=0)
            r.held = r.achieved <= (max_per_city or 0)
            if not r.message:
                top = ", ".join(f"{c} {k}" for c, k in by_city.most_common(3))
                r.message = f"erfüllt: höchstens {r.achieved} aus einer Stadt ({top})"
