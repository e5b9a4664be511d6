"""Optimal assignment of requests to advisors with capacities (numpy, scipy, OR-Tools min-cost flow).

The problem: a score matrix ``S`` (requests × advisors, ``-inf`` where a hard
constraint forbids the pair) and a capacity per advisor; choose one advisor per
request, no advisor over capacity, maximising the total score. It is a
transportation problem: its linear programme has a totally unimodular
constraint matrix, so the LP optimum is integral and LP duality certifies it.

How it is solved, exactly:

1. **Feasibility** by maximum flow (``scipy.sparse.csgraph.maximum_flow``):
   source → request (1) → allowed advisor (1) → sink (capacity). The flow
   value is the most requests that can be served at all.
2. **Restricted problem**: every allowed pair when there are at most
   ``FULL_PAIRS`` of them, else each request's best few allowed advisors plus
   the pairs of that flow (so the restricted problem is feasible), solved as a
   min-cost flow with OR-Tools (``SimpleMinCostFlow``, network simplex on
   integer costs: scores scaled by ~10⁹). Should the certificate of step 3
   find the rounding of the costs to matter, the restricted problem is solved
   again in floating point with ``scipy.sparse.csgraph.min_weight_full_bipartite_matching``
   (LAPJVsp) on the matrix expanded with one column per capacity unit.
3. **Certificate and pricing**: from the restricted optimum, advisor prices
   ``v ≥ 0`` (zero for advisors with spare capacity) and request values
   ``u_r = S[r, a(r)] − v[a(r)]`` are computed as longest paths on the
   advisors' exchange graph (an edge a → b weighs the best gain of moving a
   request of a to b). If ``S[r, b] ≤ u_r + v_b`` for *every* allowed pair,
   (u, v) is a feasible dual with the same objective: the assignment is optimal
   for the whole problem. Otherwise the violating pairs join the restricted
   problem and step 2 repeats (column generation; it ends because pairs are
   only added).

A partial assignment (when no complete one exists and the caller asks for it)
serves as many requests as possible and, among those, maximises the score: an
"unassigned" column of score 0 with capacity (requests − maximum flow) makes
every complete solution of the extended problem use it equally often.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import maximum_flow, min_weight_full_bipartite_matching

__all__ = ["Solution", "max_assignment", "solve_assignment", "spare_reachable", "alternating_reach"]

FULL_PAIRS = 5_000_000  # up to this many allowed pairs the first restricted problem is the whole problem
START_COLUMNS = 4   # best allowed advisors per request in the first restricted problem (above FULL_PAIRS)
ADD_COLUMNS = 4     # violating pairs added per request and round
MARGIN = 0.1        # also add pairs this close to tight (in standard deviations of the scores)


@dataclass
class Solution:
    """An assignment: ``advisor[r]`` is the column of request r's advisor, -1 if unassigned."""

    advisor: np.ndarray
    total: float
    assigned: int
    max_assignable: int
    optimal: bool
    rounds: int = 0
    columns: int = 0

    @property
    def complete(self) -> bool:
        return self.assigned == self.advisor.shape[0]


def _capacity(capacity: np.ndarray, n_requests: int) -> np.ndarray:
    cap = np.asarray(capacity, dtype=np.int64)
    if (cap < 0).any():
        raise ValueError("capacities must not be negative")
    return np.minimum(cap, n_requests)


def max_assignment(allowed: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """A maximum assignment (advisor column per request, -1 if unserved) by maximum flow.

    ``allowed`` is a boolean requests × advisors matrix.
    """
    allowed = np.asarray(allowed, dtype=bool)
    n_req, n_adv = allowed.shape
    cap = _capacity(capacity, n_req)
    rows, cols = np.nonzero(allowed)
    source, sink = 0, n_req + n_adv + 1
    tail = np.concatenate([np.zeros(n_req, np.int64), 1 + rows, 1 + n_req + np.arange(n_adv)])
    head = np.concatenate([1 + np.arange(n_req), 1 + n_req + cols, np.full(n_adv, sink)])
    weight = np.concatenate([np.ones(n_req + rows.size, np.int64), cap]).astype(np.int32)
    keep = weight > 0
    graph = sparse.csr_matrix((weight[keep], (tail[keep], head[keep])), shape=(sink + 1, sink + 1))
    flow = maximum_flow(graph, source, sink, method="dinic").flow
    pairs = flow[1 : n_req + 1, n_req + 1 : n_req + 1 + n_adv].tocoo()
    used = pairs.data > 0
    advisor = np.full(n_req, -1, dtype=np.int64)
    advisor[pairs.row[used]] = pairs.col[used]
    return advisor


def _min_cost_flow(scores: np.ndarray, cap: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray | None:
    """Optimal complete assignment using only the pairs (rows, cols), as a min-cost flow
    (source → request → advisor → sink) on integer costs; ``None`` if OR-Tools finds none."""
    from ortools.graph.python import min_cost_flow

    n_req, n_adv = scores.shape
    value = scores[rows, cols]
    # integer costs: as fine as int64 allows for this many requests (the flow's total cost must fit)
    scale = min(1e9, 1e17 / (max(1.0, float(np.abs(value).max(initial=0.0))) * max(1, n_req)))
    source, sink = n_req + n_adv, n_req + n_adv + 1
    tails = np.concatenate([np.full(n_req, source), rows, n_req + np.arange(n_adv)]).astype(np.int64)
    heads = np.concatenate([np.arange(n_req), n_req + cols, np.full(n_adv, sink)]).astype(np.int64)
    capacities = np.concatenate([np.ones(n_req + rows.size), np.minimum(cap, n_req)]).astype(np.int64)
    costs = np.concatenate([np.zeros(n_req), -np.round(value * scale), np.zeros(n_adv)]).astype(np.int64)
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, capacities, costs)
    supplies = np.zeros(n_req + n_adv + 2, dtype=np.int64)
    supplies[source], supplies[sink] = n_req, -n_req
    flow.set_nodes_supplies(np.arange(supplies.size), supplies)
    if flow.solve() != flow.OPTIMAL:
        return None
    used = flow.flows(np.arange(n_req, n_req + rows.size)) > 0
    advisor = np.full(n_req, -1, dtype=np.int64)
    advisor[rows[used]] = cols[used]
    return advisor if (advisor >= 0).all() else None


def _solve_restricted(scores: np.ndarray, cap: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Optimal complete assignment using only the pairs (rows, cols): LAPJVsp on the
    matrix with one column per capacity unit (as many units as the pairs can use)."""
    n_req, n_adv = scores.shape
    degree = np.bincount(cols, minlength=n_adv)
    units = np.minimum(cap, degree)
    first_unit = np.concatenate([[0], np.cumsum(units)[:-1]])
    value = scores[rows, cols]
    # a constant shift keeps every weight positive (LAPJVsp treats absent entries as missing
    # edges); every row is matched exactly once, so the shift does not change the optimum
    cost = (value.max() - value) + 1.0
    reps = units[cols]
    r = np.repeat(rows, reps)
    unit = np.arange(r.size) - np.repeat(np.cumsum(reps) - reps, reps)
    c = np.repeat(first_unit[cols], reps) + unit
    graph = sparse.csr_matrix((np.repeat(cost, reps), (r, c)), shape=(n_req, int(units.sum())))
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    owner = np.repeat(np.arange(n_adv), units)
    advisor = np.full(n_req, -1, dtype=np.int64)
    advisor[row_ind] = owner[col_ind]
    return advisor


def _prices(scores: np.ndarray, cap: np.ndarray, advisor: np.ndarray, rows: np.ndarray, cols: np.ndarray,
            tol: float) -> np.ndarray | None:
    """Advisor prices v ≥ 0 from an assignment optimal on the pairs (rows, cols): longest paths
    in the exchange graph, from a virtual source joined to every advisor by 0.

    Returns None if the prices do not settle (a gainful exchange cycle: not optimal).
    """
    n_adv = scores.shape[1]
    own = scores[np.arange(scores.shape[0]), advisor]
    gain = np.full((n_adv, n_adv), -np.inf)
    np.maximum.at(gain, (advisor[rows], cols), scores[rows, cols] - own[rows])
    np.fill_diagonal(gain, -np.inf)
    src = np.flatnonzero(np.isfinite(gain).any(axis=1))
    v = np.zeros(n_adv)
    for _ in range(n_adv + 1):
        if src.size == 0:
            break
        new = np.maximum(v, (v[src, None] + gain[src]).max(axis=0))
        if (new - v).max() <= tol:
            break
        v = new
    else:
        return None
    load = np.bincount(advisor, minlength=n_adv)
    if (v[load < cap] > tol).any():  # a gainful chain ends at an advisor with spare capacity
        return None
    return v


def solve_assignment(scores: np.ndarray, capacity: np.ndarray, *, complete: bool = True,
                     tol: float = 1e-9) -> Solution:
    """The assignment of greatest total score (exact; see the module docstring).

    Args:
        scores: requests × advisors, ``-inf`` (or NaN) for forbidden pairs.
        capacity: requests each advisor can take (≥ 0).
        complete: if True and not every request can be served, return the maximum
            flow's assignment unoptimised (``complete`` is then False) — the caller
            reports what blocks the rest. If False, serve as many as possible with
            the greatest total score among those assignments.
        tol: tolerance of the optimality certificate, relative to the largest |score|.

    Returns:
        :class:`Solution`; ``optimal`` is True when the dual certificate holds.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_req, n_adv = scores.shape
    cap = _capacity(capacity, n_req)
    allowed = np.isfinite(scores)
    flow = max_assignment(allowed, cap)
    reachable = int((flow >= 0).sum())
    if n_req == 0:
        return Solution(flow, 0.0, 0, 0, True)
    if reachable < n_req and complete:
        return Solution(flow, float(scores[flow >= 0, flow[flow >= 0]].sum()), reachable, reachable, False)

    # serve only requests that have any allowed advisor; the others stay unassigned in every solution
    active = np.flatnonzero(allowed.any(axis=1))
    if active.size == 0:
        return Solution(np.full(n_req, -1, dtype=np.int64), 0.0, 0, 0, True)
    S = np.where(allowed[active], scores[active], -np.inf)
    start = flow[active]
    cap_ext = cap
    if reachable < active.size:  # the "unassigned" column, used by exactly (active − reachable) requests
        S = np.hstack([S, np.zeros((active.size, 1))])
        cap_ext = np.concatenate([cap, [active.size - reachable]])
        start = np.where(start >= 0, start, n_adv)
    ok = np.isfinite(S)
    scale = max(1.0, float(np.abs(S[ok]).max(initial=0.0)))
    tol_abs = tol * scale
    spread = float(np.std(S[ok])) if ok.any() else 1.0

    if int(ok.sum()) <= FULL_PAIRS:
        r_ok, c_ok = np.nonzero(ok)
        pairs = r_ok * S.shape[1] + c_ok
    else:
        k = min(START_COLUMNS, S.shape[1])
        ranked = np.where(ok, S, -np.inf)
        top = np.argpartition(-ranked, k - 1, axis=1)[:, :k] if k < S.shape[1] else \
            np.tile(np.arange(S.shape[1]), (S.shape[0], 1))
        rows = np.concatenate([np.repeat(np.arange(S.shape[0]), top.shape[1]), np.arange(S.shape[0])])
        cols = np.concatenate([top.ravel(), start])
        keep = ok[rows, cols]
        pairs = np.unique(rows[keep] * S.shape[1] + cols[keep])
    optimal = False
    rounds = 0
    while True:
        rounds += 1
        rows, cols = pairs // S.shape[1], pairs % S.shape[1]
        advisor = _min_cost_flow(S, cap_ext, rows, cols)
        v = _prices(S, cap_ext, advisor, rows, cols, tol_abs) if advisor is not None else None
        if v is None:  # rounded costs hid an improvement (or no flow): solve in floating point
            advisor = _solve_restricted(S, cap_ext, rows, cols)
            v = _prices(S, cap_ext, advisor, rows, cols, tol_abs)
        if v is None:  # pragma: no cover - the restricted optimum always has prices; numerical safety net
            raise ArithmeticError("assignment certificate failed: no consistent prices")
        u = S[np.arange(S.shape[0]), advisor] - v[advisor]
        excess = S - u[:, None] - v[None, :]
        excess[rows, cols] = -np.inf
        excess[~ok] = -np.inf
        bad = np.flatnonzero((excess > tol_abs).any(axis=1))
        if bad.size == 0:
            optimal = True
            break
        # prices move when columns join: pairs close to tight now (within MARGIN) join as well,
        # from every request, which saves rounds
        near = np.flatnonzero((excess > -MARGIN * spread).any(axis=1))
        add = min(ADD_COLUMNS, S.shape[1])
        best = np.argpartition(-excess[near], add - 1, axis=1)[:, :add] if add < S.shape[1] else \
            np.tile(np.arange(S.shape[1]), (near.size, 1))
        r_new = np.repeat(near, best.shape[1])
        c_new = best.ravel()
        good = excess[r_new, c_new] > -MARGIN * spread
        pairs = np.union1d(pairs, r_new[good] * S.shape[1] + c_new[good])

    result = np.full(n_req, -1, dtype=np.int64)
    result[active] = np.where(advisor < n_adv, advisor, -1)
    served = result >= 0
    total = float(scores[served, result[served]].sum())
    return Solution(result, total, int(served.sum()), reachable, optimal, rounds, int(pairs.size))


def alternating_reach(allowed: np.ndarray, advisor: np.ndarray, request: int) -> tuple[np.ndarray, np.ndarray]:
    """Requests and advisors reachable from ``request`` by alternating paths
    (request → allowed advisor → a request assigned to it → …).

    For an unserved request of a maximum assignment, all these advisors are
    full: they are the pool whose capacity the request competes for.
    """
    n_req, n_adv = allowed.shape
    seen_req = np.zeros(n_req, dtype=bool)
    seen_adv = np.zeros(n_adv, dtype=bool)
    seen_req[request] = True
    frontier = np.array([request])
    while frontier.size:
        adv = allowed[frontier].any(axis=0) & ~seen_adv
        seen_adv |= adv
        nxt = np.flatnonzero(np.isin(advisor, np.flatnonzero(adv)) & ~seen_req)
        seen_req[nxt] = True
        frontier = nxt
    return np.flatnonzero(seen_req), np.flatnonzero(seen_adv)


def spare_reachable(allowed: np.ndarray, capacity: np.ndarray, advisor: np.ndarray) -> np.ndarray:
    """Advisors who could take one more request, directly (spare capacity) or by passing one
    of theirs on along allowed pairs to an advisor with spare capacity."""
    n_req, n_adv = allowed.shape
    cap = _capacity(capacity, n_req)
    load = np.bincount(advisor[advisor >= 0], minlength=n_adv)
    reach = load < cap
    frontier = np.flatnonzero(reach)
    while frontier.size:
        movers = np.flatnonzero(allowed[:, frontier].any(axis=1) & (advisor >= 0))
        new = np.zeros(n_adv, dtype=bool)
        new[advisor[movers]] = True
        new &= ~reach
        reach |= new
        frontier = np.flatnonzero(new)
    return reach
