"""Batch jobs at scale: an invitation list over many organisations, an advisor assignment
of many requests — each beside a stated baseline.

    python -m bench.batch                      # 50,000 organisations; 500 advisors × 5,000 requests
    python -m bench.batch --orgs 5000 --requests 500 --advisors 100   # a quick run
    python -m bench.batch --skip-invitations --lsa                    # also time the dense LSA reference

Instances are synthetic and seeded (``bench/batch_data.py``). Vectors live in
``var/batch-bench-vectors.sqlite``: the first run encodes (slow), later runs
measure with every vector cached, which is what the figures are about. Fitting
the engine (TF-IDF, places, countries) is printed but not part of the figures.

Invitations: the time of ``invitation_list`` with quotas (≥ 40 % migrant
organisations, ≤ 3 per city), MMR λ = 0.7, an exposure penalty over a
history and a waitlist — beside the engine's plain top-N (``Matcher.rank``),
which is the baseline: the difference is what the constraints cost.

Assignment: the time of the score matrix (encoding with cached vectors,
reading the requests, similarity matrices), of the exact solver, and of the
explanations — beside the greedy loop (requests in file order, each takes its
best eligible advisor with room left: what staff do by hand) for time and
total score, and optionally the dense ``linear_sum_assignment`` reference on
the capacity-expanded matrix (the same optimum, much slower).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import pickle
import statistics
import time
from pathlib import Path

import numpy as np

from bench.batch_data import advisor_instance, invitation_history, organisation_catalog
from matcher.batch.eligibility import eligibility
from matcher.batch.invitations import ExposurePolicy, invitation_list
from matcher.batch.score_matrix import score_requests
from matcher.batch.solver import solve_assignment
from matcher.domain.schema import Query
from matcher.engine.embedding import CachedEmbedder, SQLiteVectorCache, make_embedder
from matcher.engine.matcher import Matcher

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "var" / "batch-bench-vectors.sqlite"
AS_OF = dt.date(2026, 11, 22)
EVENT = "evt-113"  # Diaspora-Dialog: Migrantenorganisationen als Partner kommunaler Entwicklungspolitik


def _fitted(embedder, catalog: list, key: str) -> tuple[Matcher, float, bool]:
    """A matcher fitted on ``catalog``, kept in ``var/`` between runs (fitting 50,000 profiles —
    TF-IDF, places, countries — takes many minutes even with every vector cached). The file is
    keyed by the instance, the model and the source of the engine's fitting, so a changed engine refits."""
    fitted_by = ["engine/index.py", "engine/matcher.py", "text/lexical.py", "text/profile.py", "text/gazetteer.py",
                 "text/countries.py", "domain/schema.py", "engine/embedding.py"]
    source = hashlib.sha1(b"".join((ROOT / "matcher" / f).read_bytes() for f in fitted_by)).hexdigest()[:12]
    path = ROOT / "var" / f"batch-bench-{key}-{embedder.model_id[:40]}-{source}.pickle"
    if path.exists():
        t = time.perf_counter()
        with open(path, "rb") as fh:
            matcher = pickle.load(fh)
        matcher.embedder = embedder
        return matcher, time.perf_counter() - t, True
    t = time.perf_counter()
    matcher = Matcher(embedder, progress=True).fit(catalog)
    elapsed = time.perf_counter() - t
    matcher.embedder = None  # the model and its cache are not stored with the index
    with open(path, "wb") as fh:
        pickle.dump(matcher, fh, protocol=pickle.HIGHEST_PROTOCOL)
    matcher.embedder = embedder
    return matcher, elapsed, False


def _load() -> str:
    """The machine's load average: figures taken on a shared machine are slower by about load / cores."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def _cpu_timed(fn, repeat: int = 1):
    """(result, median wall seconds, median CPU seconds of this process — all its threads —, wall runs)."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return out, statistics.median(walls), statistics.median(cpus), walls


def _timed(fn, repeat: int = 1):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times), times


class _Stages:
    """Progress callback that records how long each stage took."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.stage: str | None = None
        self.times: dict[str, float] = {}

    def __call__(self, fraction: float, stage: str) -> None:
        now = time.perf_counter()
        if stage != self.stage:
            if self.stage is not None:
                self.times[self.stage] = self.times.get(self.stage, 0.0) + now - self.started
            self.stage, self.started = stage, now

    def close(self) -> dict[str, float]:
        self("", "")
        return {k: v for k, v in self.times.items() if k}


def bench_invitations(embedder, n_orgs: int, size: int, repeat: int) -> None:
    print(f"\n## Invitation list over {n_orgs:,} generated organisations (+ the fixture catalog)")
    catalog, t_gen, _ = _timed(lambda: organisation_catalog(n_orgs))
    matcher, t_fit, loaded = _fitted(embedder, catalog, f"orgs{n_orgs}")
    orgs = int((matcher.index_.kind == "organisation").sum())
    print(f"catalog {len(catalog):,} entities ({orgs:,} organisations); generated in {t_gen:.1f} s; "
          f"{'fitted index loaded' if loaded else 'fit (TF-IDF, places, countries; vectors cached)'} in {t_fit:.1f} s; "
          f"texts encoded now: {embedder.encoded}")
    history = invitation_history(catalog, AS_OF)
    query = Query.model_validate({"task": "invitations", "from": EVENT})
    matcher.rank(query, k=size, as_of=AS_OF)  # warm caches (event text, gazetteer)
    _, t_rank, _ = _timed(lambda: matcher.rank(query, k=size, as_of=AS_OF), repeat)
    _, t_score, _ = _timed(lambda: matcher.score(query, as_of=AS_OF), repeat)
    _, t_plain, _ = _timed(lambda: invitation_list(matcher, EVENT, size, mmr_lambda=1.0, as_of=AS_OF), repeat)
    settings = dict(quotas=["migrant_organisation:0.4"], max_per_city=3, mmr_lambda=0.7, waitlist=10,
                    history=history, exposure=ExposurePolicy(0.5, 365), as_of=AS_OF)
    invitation_list(matcher, EVENT, size, **settings)  # one untimed run, as for the baseline: first-touch costs
    result, t_full, c_full, runs = _cpu_timed(lambda: invitation_list(matcher, EVENT, size, **settings), repeat)
    print(f"history: {len(history):,} past invitations; list size {size}, waitlist 10; median of {repeat} runs "
          "after one untimed run")
    print("| what | seconds |")
    print("|---|---|")
    print(f"| engine scores only (`Matcher.score`) | {t_score:.3f} |")
    print(f"| baseline: engine top-{size} with explanations (`Matcher.rank`) | {t_rank:.3f} |")
    print(f"| `invitation_list`, no constraints, λ = 1 (equals the baseline's list) | {t_plain:.3f} |")
    print(f"| `invitation_list`, ≥ 40 % MO, ≤ 3 per city, λ = 0.7, exposure, waitlist 10 | **{t_full:.3f}** |")
    held = ", ".join(f"{c.label}: {'held' if c.held else 'NOT held'} ({c.achieved})" for c in result.constraints)
    print(f"constraints: {held}; runs: {', '.join(f'{t:.3f}' for t in runs)}; CPU {c_full:.3f} s (median); "
          f"{_load()}; target < 0.5 s")


def _per_request_costs(matcher: Matcher, queries: list[Query]) -> dict[str, float]:
    """Milliseconds per request of the engine's per-text steps that the score matrix calls."""
    from matcher.text.countries import country_mentions
    from matcher.text.intent import parse_intent

    texts = [q.text for q in queries]
    steps = {
        "parse_intent": lambda: [parse_intent(t, AS_OF) for t in texts],
        "country_mentions": lambda: [country_mentions(t) for t in texts],
        "gazetteer.mentions": lambda: [matcher.gazetteer_.mentions(t) for t in texts],
        "TF-IDF char": lambda: matcher.index_.lexical.char_.transform(texts),
        "TF-IDF words (stemming)": lambda: matcher.index_.lexical.word_.transform(texts),
    }
    return {name: _timed(fn)[1] * 1000 / len(texts) for name, fn in steps.items()}


def greedy(S: np.ndarray, capacity: np.ndarray) -> tuple[np.ndarray, float]:
    """The baseline: requests in order, each takes its best eligible advisor with room left."""
    left = capacity.copy()
    advisor = np.full(S.shape[0], -1)
    for r in range(S.shape[0]):
        row = np.where(left > 0, S[r], -np.inf)
        j = int(np.argmax(row))
        if np.isfinite(row[j]):
            advisor[r], left[j] = j, left[j] - 1
    served = advisor >= 0
    return advisor, float(S[served, advisor[served]].sum())


def lsa_reference(S: np.ndarray, capacity: np.ndarray) -> tuple[int, float]:
    """(requests served, total) by dense ``linear_sum_assignment``: one column per capacity unit, plus
    one score-0 "unassigned" column per request that no maximum matching serves (its size from
    ``maximum_bipartite_matching`` on the same expanded graph) — the same objective as the solver's
    partial mode, computed independently of it."""
    from scipy import sparse
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse.csgraph import maximum_bipartite_matching

    units = np.minimum(capacity, S.shape[0])
    expanded = np.repeat(S, units, axis=1)
    matching = maximum_bipartite_matching(sparse.csr_matrix(np.isfinite(expanded)), perm_type="column")
    served = int((matching >= 0).sum())
    cost = np.hstack([np.where(np.isfinite(expanded), -expanded, 1e9), np.zeros((S.shape[0], S.shape[0] - served))])
    rows, cols = linear_sum_assignment(cost)
    real = cols < expanded.shape[1]
    assert (cost[rows, cols] < 1e9).all()
    return served, float(-cost[rows[real], cols[real]].sum())


def bench_assignment(embedder, n_advisors: int, n_requests: int, with_lsa: bool) -> None:
    print(f"\n## Assignment: {n_advisors} advisors × {n_requests:,} requests")
    (catalog, requests), t_gen, _ = _timed(lambda: advisor_instance(n_advisors, n_requests))
    matcher, t_fit, _ = _fitted(embedder, catalog, f"advisors{n_advisors}")
    capacity_total = sum(e.capacity or 0 for e in catalog if e.kind == "advisor")
    print(f"catalog {len(catalog)} entities; capacity {capacity_total:,} places for {n_requests:,} requests; "
          f"generated in {t_gen:.1f} s, fit {t_fit:.1f} s; encoded now: {embedder.encoded}")
    queries = [r.query() for r in requests]
    embedder.encode([q.text for q in queries], "query")  # vectors cached: the figures assume it
    stages = _Stages()
    scores, t_scores, _ = _timed(lambda: score_requests(matcher, queries, as_of=AS_OF, progress=stages))
    stage_times = stages.close()
    _, t_scores2, _ = _timed(lambda: score_requests(matcher, queries, as_of=AS_OF, workers=2))
    parts = _per_request_costs(matcher, queries[:300])
    advisors = [matcher.entities_[i] for i in scores.advisors]
    hard, t_hard, _ = _timed(lambda: eligibility(matcher, requests, advisors))
    S = np.where(hard.allowed() & np.isfinite(scores.total), scores.total, -np.inf)
    capacity = np.array([n_requests if a.capacity is None else a.capacity for a in advisors])
    solution, t_solve, _ = _timed(lambda: solve_assignment(S, capacity, complete=False))
    (g_adv, g_total), t_greedy, _ = _timed(lambda: greedy(S, capacity))
    explain_n = min(500, n_requests)
    _, t_explain, _ = _timed(lambda: [scores.explain(r, int(solution.advisor[r])) for r in range(explain_n)
                                      if solution.advisor[r] >= 0])
    print("| step | seconds |")
    print("|---|---|")
    for stage, t in stage_times.items():
        print(f"| score matrix: {stage} | {t:.2f} |")
    print(f"| score matrix, total (1 process) | {t_scores:.2f} |")
    print(f"| score matrix, total (`workers=2`) | {t_scores2:.2f} |")
    print(f"| hard constraints (language, region, conflicts) | {t_hard:.2f} |")
    print(f"| exact solver ({solution.rounds} rounds, {solution.columns:,} pairs, certificate "
          f"{'holds' if solution.optimal else 'FAILED'}) | {t_solve:.2f} |")
    print(f"| **matrix + constraints + solver, 1 process** | **{t_scores + t_hard + t_solve:.2f}** |")
    print(f"| **matrix + constraints + solver, `workers=2`** | **{t_scores2 + t_hard + t_solve:.2f}** |")
    print(f"| explanations, {explain_n} requests (→ {t_explain / explain_n * n_requests:.1f} s for all) | "
          f"{t_explain:.2f} |")
    print(f"| baseline greedy loop (file order) | {t_greedy:.2f} |")
    served = int((solution.advisor >= 0).sum())
    print(f"served: optimal {served:,} / greedy {int((g_adv >= 0).sum()):,} of {n_requests:,}; total score: optimal "
          f"{solution.total:,.2f} / greedy {g_total:,.2f} ({100 * (solution.total - g_total) / abs(g_total):+.2f} % "
          f"for the optimum)")
    choice = [int((S[r] > S[r, j]).sum()) + 1 for r, j in enumerate(solution.advisor) if j >= 0]
    g_choice = [int((S[r] > S[r, j]).sum()) + 1 for r, j in enumerate(g_adv) if j >= 0]
    print(f"requests with their own first choice: optimal {sum(c == 1 for c in choice):,} / greedy "
          f"{sum(c == 1 for c in g_choice):,}; worst choice: optimal {max(choice)} / greedy {max(g_choice)}")
    print("where a request's scoring time goes (engine functions, ms per request, 300 requests): "
          + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()))
    if with_lsa:
        (ref_served, total), t_lsa, _ = _timed(lambda: lsa_reference(S, capacity))
        print(f"reference: dense linear_sum_assignment on the capacity-expanded matrix: {t_lsa:.1f} s, served "
              f"{ref_served:,}, total {total:,.4f} (solver {solution.total:,.4f}; equal: "
              f"{ref_served == served and abs(total - solution.total) < 1e-6})")
    print(f"{_load()}; target < 5 s on 2 cores")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orgs", type=int, default=50_000)
    ap.add_argument("--size", type=int, default=40, help="invitation list size")
    ap.add_argument("--advisors", type=int, default=500)
    ap.add_argument("--requests", type=int, default=5_000)
    ap.add_argument("--model", default="use", help="embedding model (default: use — the default e5+use encodes "
                    "the 50,000 profiles at ~14 texts/s; the batch steps do not depend on the model beyond "
                    "its dimension)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--lsa", action="store_true", help="also time the dense linear_sum_assignment reference")
    ap.add_argument("--skip-invitations", action="store_true")
    ap.add_argument("--skip-assignment", action="store_true")
    args = ap.parse_args(argv)
    embedder = CachedEmbedder(make_embedder(args.model), SQLiteVectorCache(CACHE))
    print(f"# Batch benchmark — model {embedder.model_id} ({embedder.dim} dims), {os.cpu_count()} cores, "
          f"vectors in {CACHE.relative_to(ROOT)}")
    if not args.skip_invitations:
        bench_invitations(embedder, args.orgs, args.size, args.repeat)
    if not args.skip_assignment:
        bench_assignment(embedder, args.advisors, args.requests, args.lsa)


if __name__ == "__main__":  # pragma: no cover
    main()
