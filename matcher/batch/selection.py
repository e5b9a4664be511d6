"""Choosing a list under quotas: exact feasibility and greedy MMR (pure numpy).

The candidates of an invitation list fall into groups (actor types) and cities.
A list of ``size`` must hold, per group, between ``lower`` and ``upper``
members and, per city, at most ``city_cap``. Whether a partial list can still
be completed is a flow problem — source → group (between the bounds still
open) → city (the candidates left in each group × city cell) → sink (room left
in the city) — and is decided exactly by :func:`completion_feasible`.

:func:`select` then builds the list greedily: at each step it takes the best
candidate by maximal marginal relevance (MMR),
``λ · relevance − (1 − λ) · redundancy``, *among those whose addition still
leaves a feasible completion*. So the finished list meets every bound whenever
any list of that size does (the check is exact, not a heuristic), and for
λ = 1 with type quotas only it is also the list of greatest total relevance
(the feasible lists are the bases of a matroid, where greedy is optimal); with
per-city limits or λ < 1 the objective is greedy, as MMR always is.

Relevance is scaled to [0, 1] over the candidates; redundancy is the largest
cosine similarity to a chosen member, floored at 0 (an unrelated profile is
not "more diverse" than an orthogonal one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["completion_feasible", "max_flow", "select", "Pick", "UNLIMITED"]

UNLIMITED = np.iinfo(np.int64).max // 4  # an upper bound that never binds
MAX_GROUPS = 12                          # the min-cut enumeration is 2^groups


@lru_cache(maxsize=MAX_GROUPS + 1)
def _subsets(n_groups: int) -> np.ndarray:
    """All subsets of ``n_groups`` groups as a (2^G, G) 0/1 matrix."""
    codes = np.arange(2**n_groups, dtype=np.int64)[:, None]
    return ((codes >> np.arange(n_groups, dtype=np.int64)) & 1).astype(np.int64)


def max_flow(avail: np.ndarray, group_cap: np.ndarray, room: np.ndarray) -> int:
    """Largest number of candidates choosable with at most ``group_cap[g]`` per group
    and ``room[c]`` per city, from ``avail[g, c]`` candidates per group × city.

    Exact: the min cut of the flow network, enumerated over the subsets of groups
    on the source side (for a fixed subset, each city is cut where it is cheaper).
    """
    avail = np.asarray(avail, dtype=np.int64)
    n_groups = avail.shape[0]
    if n_groups == 0:
        return 0
    if n_groups > MAX_GROUPS:
        raise ValueError(f"at most {MAX_GROUPS} groups are supported, got {n_groups}")
    total = int(avail.sum())  # no flow exceeds it: caps above it are clipped (no overflow)
    sub = _subsets(n_groups)
    through = sub @ avail  # candidates of the source-side groups, per city
    cut = (1 - sub) @ np.minimum(np.asarray(group_cap, dtype=np.int64), total) \
        + np.minimum(through, np.minimum(np.asarray(room, dtype=np.int64), total)).sum(axis=1)
    return int(cut.min())


def completion_feasible(avail: np.ndarray, lower: np.ndarray, upper: np.ndarray, room: np.ndarray, need: int) -> bool:
    """Can exactly ``need`` more candidates be chosen from ``avail`` (groups × cities) so that
    group g gets between ``lower[g]`` and ``upper[g]`` and city c at most ``room[c]``?

    Exact, by two max flows: one that saturates the lower bounds, one up to the
    upper bounds. Augmenting paths never take flow back from the source, so the
    second flow keeps the first's lower bounds; then any surplus above ``need``
    can be removed from groups above their lower bound.
    """
    lower = np.maximum(np.asarray(lower, dtype=np.int64), 0)
    upper = np.asarray(upper, dtype=np.int64)
    room = np.asarray(room, dtype=np.int64)
    if need < 0 or (upper < 0).any() or (room < 0).any() or (lower > upper).any() or lower.sum() > need:
        return False
    if need == 0:
        return True
    if lower.any() and max_flow(avail, lower, room) < lower.sum():
        return False
    return max_flow(avail, np.minimum(upper, need), room) >= need


@dataclass
class Pick:
    """One chosen candidate and why the greedy step chose it.

    ``passed_over`` is the candidate the objective preferred but a constraint
    excluded (``blocked_by``: ``"group_max"``, ``"city_max"`` or ``"reserve"``
    — taking it would leave a lower bound unreachable); ``best_relevance`` is
    the most relevant candidate still allowed at that step.
    """

    index: int
    objective: float
    redundancy: float
    passed_over: int | None = None
    blocked_by: str | None = None
    best_relevance: int | None = None
    open_lower: tuple[int, ...] = ()


class _Selector:
    """State of one greedy run: counts per group and city, redundancy bounds."""

    def __init__(self, relevance: np.ndarray, groups: np.ndarray, cities: np.ndarray, n_groups: int,
                 n_cities: int, vectors: np.ndarray | None, vector_rows: np.ndarray | None, mmr_lambda: float):
        self.rel = np.asarray(relevance, dtype=np.float64)
        n = self.rel.shape[0]
        self.groups = np.asarray(groups, dtype=np.int64)
        # cities: -1 = no city (never capped) → its own last column
        self.cities = np.where(np.asarray(cities, dtype=np.int64) < 0, n_cities, np.asarray(cities, dtype=np.int64))
        self.n_cities = n_cities
        self.key = self.groups * (n_cities + 1) + self.cities
        self.avail = np.zeros((n_groups, n_cities + 1), dtype=np.int64)
        np.add.at(self.avail, (self.groups, self.cities), 1)
        self.count_g = np.zeros(n_groups, dtype=np.int64)
        self.count_c = np.zeros(n_cities + 1, dtype=np.int64)
        self.remaining = np.ones(n, dtype=bool)
        self.lam = float(mmr_lambda)
        self.diverse = self.lam < 1.0 and vectors is not None and n > 0
        if self.diverse:
            lo, hi = (float(self.rel.min()), float(self.rel.max())) if n else (0.0, 0.0)
            self.rel_n = (self.rel - lo) / (hi - lo) if hi > lo else np.zeros(n)
            self.vectors = vectors  # not copied: a catalog's vectors can be large
            self.rows = np.arange(n) if vector_rows is None else np.asarray(vector_rows, dtype=np.int64)
            self.chosen_vecs = np.zeros((0, vectors.shape[1]), dtype=np.float32)
            self.redundancy = np.zeros(n)           # a lower bound until refreshed
            self.fresh = np.zeros(n, dtype=np.int64)  # chosen members the bound includes
            self.obj = self.lam * self.rel_n        # the objective with the current redundancy (an upper bound)

    # -------------------------------------------------------------- objective
    def _refresh(self, idx: np.ndarray) -> None:
        n_chosen = self.chosen_vecs.shape[0]
        stale = idx[self.fresh[idx] < n_chosen]
        if stale.size:
            # only members added since the oldest of these bounds; the earlier ones are in it already
            since = int(self.fresh[stale].min())
            sims = self.vectors[self.rows[stale]] @ self.chosen_vecs[since:].T
            self.redundancy[stale] = np.maximum(self.redundancy[stale], sims.max(axis=1))
            self.fresh[stale] = n_chosen
            self.obj[stale] = self.lam * self.rel_n[stale] - (1.0 - self.lam) * self.redundancy[stale]

    def _objective(self, idx: np.ndarray) -> np.ndarray:
        return self.obj[idx] if self.diverse else self.rel[idx]

    def best(self, eligible: np.ndarray) -> int | None:
        """The eligible candidate of highest objective (ties: the lower index).

        Lazy evaluation: a stale redundancy is a lower bound (redundancy only
        grows as members are added), so a stale objective is an upper bound. The
        leading block by bound is refreshed first; if its best exact value does
        not beat every other bound, every candidate whose bound reaches that
        value is refreshed too — the others cannot win.
        """
        idx = np.flatnonzero(eligible)
        if idx.size == 0:
            return None
        if not self.diverse or self.chosen_vecs.shape[0] == 0:
            obj = self._objective(idx)
            return int(idx[int(np.argmax(obj))])
        block = 32
        bound = self._objective(idx)
        while True:
            if block >= idx.size:
                self._refresh(idx)
                return int(idx[int(np.argmax(self._objective(idx)))])
            part = np.argpartition(-bound, block)
            lead = part[:block][np.argsort(idx[part[:block]])]   # positions of the leading block, by index
            top = idx[lead]
            self._refresh(top)
            exact = self._objective(top)
            best = exact.max()
            # after argpartition, part[block] holds the largest bound outside the block
            if best > bound[part[block]]:
                return int(top[int(np.argmax(exact))])
            bound[lead] = exact                   # refreshed: exact now; the others stay upper bounds
            block *= 4
            contenders = np.flatnonzero(bound >= best)
            if contenders.size <= block:          # only these can still win: refresh them, and done
                self._refresh(idx[contenders])
                return int(idx[contenders[int(np.argmax(self._objective(idx[contenders])))]])

    # -------------------------------------------------------------- feasibility
    def _check(self, i: int, lower: np.ndarray, upper: np.ndarray, city_cap: int | None, size: int) -> str | None:
        """None if taking ``i`` keeps the list completable, else the constraint it breaks."""
        g, c = self.groups[i], self.cities[i]
        if self.count_g[g] >= upper[g]:
            return "group_max"
        capped = city_cap is not None and c < self.n_cities
        if capped and self.count_c[c] >= city_cap:
            return "city_max"
        avail = self.avail.copy()
        avail[g, c] -= 1
        count_g = self.count_g.copy()
        count_g[g] += 1
        count_c = self.count_c.copy()
        count_c[c] += 1
        need = size - int(count_g.sum())
        if not completion_feasible(avail, lower - count_g, upper - count_g, self.room(count_c, city_cap, need), need):
            return "reserve"
        return None

    def room(self, count_c: np.ndarray, city_cap: int | None, need: int) -> np.ndarray:
        room = np.full(self.n_cities + 1, max(need, 0), dtype=np.int64)
        if city_cap is not None:
            room[:-1] = np.minimum(room[:-1], city_cap - count_c[:-1])
        return room

    def feasible(self, lower: np.ndarray, upper: np.ndarray, city_cap: int | None, size: int) -> bool:
        need = size - int(self.count_g.sum())
        return completion_feasible(self.avail, lower - self.count_g, upper - self.count_g,
                                   self.room(self.count_c, city_cap, need), need)

    # -------------------------------------------------------------- one step
    def withdraw(self, idx: np.ndarray) -> None:
        """Take candidates out of the running without counting them (excluded)."""
        idx = idx[self.remaining[idx]]
        self.remaining[idx] = False
        np.add.at(self.avail, (self.groups[idx], self.cities[idx]), -1)

    def remember(self, idx: np.ndarray) -> None:
        """Count candidates as chosen for redundancy only (not for the bounds)."""
        if self.diverse and idx.size:
            self.chosen_vecs = np.vstack([self.chosen_vecs, np.asarray(self.vectors[self.rows[idx]], dtype=np.float32)])

    def step(self, lower: np.ndarray, upper: np.ndarray, city_cap: int | None, size: int) -> Pick | None:
        eligible = self.remaining.copy()
        verdict: dict[int, str | None] = {}
        passed, blocked_by = None, None
        while True:
            i = self.best(eligible)
            if i is None:
                return None
            k = int(self.key[i])
            if k not in verdict:
                verdict[k] = self._check(i, lower, upper, city_cap, size)
            if verdict[k] is None:
                break
            if passed is None:
                passed, blocked_by = i, verdict[k]
            eligible &= self.key != k
        most_relevant = int(np.flatnonzero(eligible)[int(np.argmax(self.rel[eligible]))])
        open_lower = tuple(int(g) for g in np.flatnonzero(lower - self.count_g > 0))
        pick = Pick(i, float(self._objective(np.array([i]))[0]),
                    float(self.redundancy[i]) if self.diverse else 0.0,
                    passed, blocked_by, most_relevant, open_lower)
        self._take(i)
        return pick

    def _take(self, i: int) -> None:
        g, c = self.groups[i], self.cities[i]
        self.remaining[i] = False
        self.avail[g, c] -= 1
        self.count_g[g] += 1
        self.count_c[c] += 1
        if self.diverse:
            self.chosen_vecs = np.vstack([self.chosen_vecs, self.vectors[self.rows[i : i + 1]]])


def select(relevance: np.ndarray, size: int, *, groups: np.ndarray, cities: np.ndarray, lower: np.ndarray,
           upper: np.ndarray, city_cap: int | None = None, vectors: np.ndarray | None = None,
           vector_rows: np.ndarray | None = None, mmr_lambda: float = 1.0, exclude: np.ndarray | None = None,
           chosen_before: np.ndarray | None = None, progress: Callable[[float], None] | None = None) -> list[Pick]:
    """Choose ``size`` candidates within the bounds, greedily by MMR (see the module docstring).

    Args:
        relevance: one score per candidate (higher is better).
        groups: group index per candidate, ``0 … G−1``.
        cities: city index per candidate, ``-1`` for none (no city limit applies).
        lower, upper: per group, the least and most members (``UNLIMITED`` for none).
        city_cap: most members per city, or ``None``.
        vectors: unit vectors for the redundancy term (needed when λ < 1): one row per
            candidate, or any rows picked out by ``vector_rows`` (candidate → row).
        vector_rows: row of ``vectors`` for each candidate (default: the same position).
        mmr_lambda: λ in [0, 1]; 1 is pure relevance.
        exclude: candidates not to choose (e.g. those already on the list, for a waitlist).
        chosen_before: candidates whose redundancy counts as if chosen (a waitlist continues
            the list's diversity); they are not chosen again.
        progress: called with the fraction done.

    Returns:
        The picks in order; fewer than ``size`` only if there are fewer candidates.

    Raises:
        ValueError: the bounds admit no list of ``size`` (check first with
            :func:`completion_feasible`), or λ is outside [0, 1].
    """
    if not 0.0 <= mmr_lambda <= 1.0:
        raise ValueError("mmr_lambda must lie in [0, 1]")
    groups = np.asarray(groups, dtype=np.int64)
    n_groups = int(max(groups.max(initial=-1) + 1, len(lower)))
    cities = np.asarray(cities, dtype=np.int64)
    n_cities = int(cities.max(initial=-1) + 1)
    sel = _Selector(relevance, groups, cities, n_groups, n_cities, vectors, vector_rows, mmr_lambda)
    gone = np.zeros(sel.remaining.shape[0], dtype=bool)
    if exclude is not None:
        gone |= np.asarray(exclude, dtype=bool)
    before = np.asarray(chosen_before if chosen_before is not None else [], dtype=np.int64)
    gone[before] = True
    sel.withdraw(np.flatnonzero(gone))
    sel.remember(before)
    lower = np.asarray(lower, dtype=np.int64)
    upper = np.asarray(upper, dtype=np.int64)
    size = min(size, int(sel.remaining.sum()))
    if not sel.feasible(lower, upper, city_cap, size):
        raise ValueError("no list of this size meets the bounds")
    chosen: list[Pick] = []
    # the products here are many and small: BLAS threads only wait for each other (badly so on a
    # busy machine), and one thread gives the same numbers
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(size):
            pick = sel.step(lower, upper, city_cap, size)
            if pick is None:  # pragma: no cover - excluded by the feasibility check
                raise AssertionError("a feasible instance ran out of candidates")
            chosen.append(pick)
            if progress:
                progress(len(chosen) / max(size, 1))
    return chosen
