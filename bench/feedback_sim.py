"""Learning from feedback, simulated: does bias-corrected learning from clicks beat the hand weights and naive
click learning on queries it never saw? (issue 18)

    python -m bench.feedback_sim --plot models/feedback_sim.png --json bench/results/feedback_sim.json
    (options: --events 2000 --rounds 10 --seeds 10 --first-seed 10 --eta 1.0 --l2 1.0 --split trust|both)

Simulated staff: their true preferences are the judged relevance of the queries of ``../shared/eval/dev`` and
``eval/trust`` (advisors, partners, events, invitations; each set ranked by an engine fitted on its catalog).
*Seen* queries are asked again and again; *unseen* ones are only ever evaluated. With ``--split trust`` (the
default) the unseen queries are, per seed and task, a random half of ``eval/trust``, and the seen ones the
other half plus all of the dev set: the hand weights were tuned on the dev set, so a dev query is not unseen
by them. ``--split both`` draws the unseen half from each set (dev queries included) for comparison.

Clicks follow a position-based model with known examination
probabilities θ_k = 1 / k^eta for the 10 ranks shown: a result at rank k is looked at with probability θ_k,
and a looked-at result is taken up („passt“) with probability 0.05 / 0.25 / 0.7 / 0.95 for judged grade
0 / 1 / 2 / 3, or declined („passt nicht“) with probability 0.1 if it is grade 0.

Three rankers are deployed side by side, each on its own stream of requests (each learns from the clicks on
its own lists): the **hand weights** (never retrained), **naive** learning (every click a pair of equal weight)
and **bias-corrected** learning (each click weighted by 1 / θ̂ of its rank, θ̂ harvested from that stream's own
logs: :func:`matcher.learning.feedback.estimate_propensities`). A round serves seen queries (drawn at random)
until ``events / rounds`` feedback events (take-ups and declines) have come in on each stream, then retrains the
two learners on all their feedback so far (:func:`matcher.learning.train.feedback_pairs`, the same code
``train_ranker`` runs); after every round each ranker's nDCG@10 on the unseen queries is measured. A fourth line,
corrected with the *true* θ, shows what the harvested estimate costs.

Serving and evaluation rank each query's candidates by the ranker's scores (exact top 10); the partner search's
mix of actor types (``Matcher.rank``) is left out here, for all rankers alike.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from matcher.engine.embedding import CachedEmbedder, SQLiteVectorCache, make_embedder
from matcher.engine.matcher import Matcher
from matcher.engine.ranker import FEATURES, HAND, Ranker, hand_coefficients
from matcher.engine.similarity import top_k
from matcher.evaluation.judged import load_dataset
from matcher.evaluation.metrics import ndcg_at_k
from matcher.learning.feedback import FeedbackEvent, Propensities, estimate_propensities, impressions, request_key
from matcher.learning.train import L2, PairSet, feedback_pairs, fit_ranker, judged_features, reference_date
from matcher.settings import model_spec

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "var" / "bench" / "dev-vectors.sqlite"
SETS = (ROOT.parent / "shared" / "eval" / "dev", ROOT / "eval" / "trust")
TASKS = ("advisors", "partners", "events", "invitations")
TAKE_UP = np.array([0.05, 0.25, 0.7, 0.95])   # P(taken up | looked at), by judged grade 0..3
DECLINE = 0.1                                  # P(declined | looked at, grade 0)
SHOWN = 10
ARMS = ("hand", "naive", "corrected", "corrected, true θ")


@dataclass
class SimQuery:
    """One judged query, scored once: its candidates' features, grades and the request staff send."""

    task: str
    set_name: str
    ids: list[str]
    x: np.ndarray
    grades: np.ndarray
    request: dict
    key: str


def load_queries(model: str | None) -> tuple[dict[str, Matcher], list[SimQuery], dict[str, dict]]:
    """Every judged query with a fit of the two sets, with a memo of their features for the trainer."""
    embedder = CachedEmbedder(make_embedder(model or model_spec()), SQLiteVectorCache(CACHE))
    matchers, queries, memos = {}, [], {}
    for path in SETS:
        ds = load_dataset(path)
        m = Matcher(embedder).fit(ds.catalog)
        matchers[ds.path.name] = m
        memo = memos.setdefault(ds.path.name, {})
        by_group = {f"{ds.path.name}/{q.id}": q for q in ds.queries}
        for qf in judged_features(m, ds, reference_date(ds)):
            if qf.task not in TASKS:
                continue
            q = by_group[qf.group]
            request = q.model_dump(mode="json", exclude_none=True, by_alias=True, exclude={"id"})
            key = request_key(qf.task, request)
            memo[key] = (qf.ids, qf.x)
            queries.append(SimQuery(qf.task, ds.path.name, qf.ids, qf.x, qf.grades.astype(int), request, key))
    return matchers, queries, memos


def scores(ranker: Ranker, q: SimQuery, hand: np.ndarray) -> np.ndarray:
    """The ranker's score of each candidate of ``q`` (both rankers are linear in the features; ``hand``: the
    hand weights as coefficients)."""
    if ranker is HAND or q.task not in getattr(ranker, "coefficients", {}):
        return q.x @ hand
    return q.x @ ranker.coefficients[q.task]


def ndcg(ranker: Ranker, queries: list[SimQuery], hand: np.ndarray) -> float:
    out = []
    for q in queries:
        best = top_k(scores(ranker, q, hand), SHOWN)
        out.append(ndcg_at_k([q.ids[i] for i in best], dict(zip(q.ids, q.grades.tolist())), SHOWN))
    return float(np.mean(out))


def serve(ranker: Ranker, q: SimQuery, theta: np.ndarray, rng: np.random.Generator, n: int, hand: np.ndarray,
          t: dt.datetime) -> tuple[list[FeedbackEvent], int]:
    """Show ``q``'s top 10 by ``ranker``; staff look and act under the click model. Returns the events
    (shown and feedback) and how many feedback events there were."""
    best = top_k(scores(ranker, q, hand), SHOWN)
    events, feedback = [], 0
    rec = f"sim-{n}"
    for rank, i in enumerate(best, 1):
        e = q.ids[i]
        events.append(FeedbackEvent(rec, q.task, q.request, None, e, "shown", rank, t))
        if rng.random() >= theta[rank - 1]:
            continue
        g = q.grades[i]
        if rng.random() < TAKE_UP[g]:
            events.append(FeedbackEvent(rec, q.task, q.request, None, e, "accepted", rank, t))
            feedback += 1
        elif g == 0 and rng.random() < DECLINE:
            events.append(FeedbackEvent(rec, q.task, q.request, None, e, "declined", rank, t))
            feedback += 1
    return events, feedback


def retrain(events: list[FeedbackEvent], matchers: dict[str, Matcher], memos: dict[str, dict],
            queries_by_key: dict[str, SimQuery], corrected: bool, propensities: Propensities | None,
            l2: float, seed: int) -> tuple[Ranker, Propensities | None]:
    """A learned ranker from a stream's feedback so far (both sets' pairs together)."""
    imps = impressions(events)
    if corrected and propensities is None:
        propensities = estimate_propensities(imps)
    parts = []
    for name, m in matchers.items():
        mine = [imp for imp in imps if queries_by_key[imp.key].set_name == name]
        pairs, _ = feedback_pairs(m, [], propensities, corrected=corrected, imps=mine, memo=memos[name], seed=seed)
        parts.append(pairs)
    pairs = PairSet.concat(parts)
    if not len(pairs):
        return HAND, propensities
    return fit_ranker(pairs, next(iter(matchers.values())).weights_, l2=l2), propensities


def run(seed: int, queries: list[SimQuery], matchers: dict[str, Matcher], memos: dict[str, dict], events: int,
        rounds: int, eta: float, l2: float, split: str = "trust") -> dict:
    rng = np.random.default_rng(seed)
    seen, unseen = [], []
    for task in TASKS:
        for name in matchers:
            group = [q for q in queries if q.task == task and q.set_name == name]
            if split == "trust" and name != "trust":
                seen += group   # the hand weights were tuned on these: never "unseen"
                continue
            order = rng.permutation(len(group))
            half = len(group) // 2
            seen += [group[i] for i in order[:half]]
            unseen += [group[i] for i in order[half:]]
    theta = 1.0 / np.arange(1, SHOWN + 1) ** eta
    true = Propensities(theta, "true")
    hand = hand_coefficients(next(iter(matchers.values())).weights_)
    by_key = {q.key: q for q in queries}
    rankers: dict[str, Ranker] = {a: HAND for a in ARMS}
    logs: dict[str, list[FeedbackEvent]] = {a: [] for a in ARMS}
    counts = {a: 0 for a in ARMS}
    curve = {a: [ndcg(HAND, unseen, hand)] for a in ARMS}
    estimates, per_round = [], events / rounds
    t0 = dt.datetime(2026, 1, 1)
    n = 0
    for r in range(1, rounds + 1):
        for arm in ARMS:
            while counts[arm] < per_round * r:
                n += 1
                q = seen[rng.integers(len(seen))]
                new, fb = serve(rankers[arm], q, theta, rng, n, hand, t0 + dt.timedelta(minutes=n))
                logs[arm] += new
                counts[arm] += fb
        for arm in ARMS[1:]:
            rankers[arm], used = retrain(logs[arm], matchers, memos, by_key, arm != "naive",
                                         true if arm == "corrected, true θ" else None, l2, seed)
            if arm == "corrected":
                estimates.append(used.as_dict())
        for arm in ARMS:
            curve[arm].append(ndcg(rankers[arm], unseen, hand))
    return {"seed": seed, "seen": len(seen), "unseen": len(unseen), "curve": curve, "events": counts,
            "impressions": {a: len({e.recommendation_id for e in logs[a]}) for a in ARMS},
            "propensities": estimates, "true_theta": theta.round(4).tolist()}


def plot(results: list[dict], path: str, events: int, rounds: int, eta: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(rounds + 1) * events / rounds
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    styles = {"hand": ("tab:gray", "-"), "naive": ("tab:red", "-"), "corrected": ("tab:blue", "-"),
              "corrected, true θ": ("tab:blue", ":")}
    for arm in ARMS:
        ys = np.array([r["curve"][arm] for r in results])
        mean = ys.mean(axis=0)
        color, line = styles[arm]
        ax.plot(x, mean, line, color=color, marker="o" if line == "-" else None, ms=3, label=arm)
        if len(results) > 1 and line == "-":
            se = ys.std(axis=0, ddof=1) / np.sqrt(len(results))
            ax.fill_between(x, mean - se, mean + se, color=color, alpha=0.15)
    ax.set_xlabel("simulated feedback events (take-ups and declines)")
    ax.set_ylabel("nDCG@10 on unseen queries")
    ax.set_title(f"Learning from position-biased clicks (θ_k = 1/k^{eta:g}; {len(results)} seeds, mean ± s.e.)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def summary(results: list[dict]) -> dict:
    final = {a: np.array([r["curve"][a][-1] for r in results]) for a in ARMS}
    paired = {f"{a} - hand": final[a] - final["hand"] for a in ARMS[1:]}
    paired["corrected - naive"] = final["corrected"] - final["naive"]
    return {"final_ndcg": {a: round(float(v.mean()), 4) for a, v in final.items()},
            "paired_delta": {k: {"mean": round(float(v.mean()), 4),
                                 "se": round(float(v.std(ddof=1) / np.sqrt(len(v))), 4) if len(v) > 1 else None,
                                 "min": round(float(v.min()), 4)} for k, v in paired.items()}}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=10,
                    help="seeds first-seed … first-seed + seeds − 1 (0–3 were used to choose --l2 among 0.3, 1, 3)")
    ap.add_argument("--eta", type=float, default=1.0, help="position bias: θ_k = 1 / k^eta")
    ap.add_argument("--l2", type=float, default=L2)
    ap.add_argument("--split", choices=("trust", "both"), default="trust",
                    help="unseen queries: half of eval/trust (default; the dev set tuned the hand weights, so its "
                         "queries are seen by them), or half of each set")
    ap.add_argument("--model", default=None)
    ap.add_argument("--plot", default=None, help="write the nDCG-per-round plot (PNG) here")
    ap.add_argument("--json", dest="json_out", default=None, help="write the figures (JSON) here")
    args = ap.parse_args(argv)
    started = time.monotonic()
    matchers, queries, memos = load_queries(args.model)
    print(f"{len(queries)} judged queries; features {len(FEATURES)}; prepared in {time.monotonic() - started:.0f} s")
    results = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        res = run(seed, queries, matchers, memos, args.events, args.rounds, args.eta, args.l2, args.split)
        results.append(res)
        print(f"seed {seed}: " + ", ".join(f"{a} {res['curve'][a][-1]:.3f}" for a in ARMS)
              + f"; θ̂ {res['propensities'][-1]['theta'][:5]} ({res['propensities'][-1]['source']})", flush=True)
    out = {"events": args.events, "rounds": args.rounds, "eta": args.eta, "l2": args.l2, "split": args.split,
           "model": next(iter(matchers.values())).model_id, "summary": summary(results), "runs": results,
           "seconds": round(time.monotonic() - started, 1)}
    print(json.dumps(out["summary"], indent=2))
    if args.plot:
        plot(results, args.plot, args.events, args.rounds, args.eta)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1), encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
