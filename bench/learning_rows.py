"""Row 8 of ``make bench``: the learned ranker's cost (issue 18).

    python -m bench.learning_rows [--profiles 10000] [--rows 100000] [--distinct 1000] [--requests 40]

**Latency**: ``Matcher.rank`` of advisor requests on the cached store of 10,000 profiles, in-process, each
request's vector cached (encoded once before timing), so that what is timed is the engine — signals,
fusion, top k, explanations, confidence — where the ranker is the only difference: each request is ranked
with the hand weights and with a learned ranker that uses every feature (z-scores and interactions included),
the two interleaved (alternating which goes first), three times over. Acceptance: p50 learned ≤ 1.1 × p50 hand.

**Training**: :func:`matcher.learning.train.train_ranker` on 100,000 feedback rows — recommendations of
10 shown advisors each (ranks reshuffled between recommendations, so that propensities can be harvested)
with take-ups and declines drawn by rank — over ``distinct`` different requests. The training matcher's
request cache starts empty, as in a fresh ``matcher train`` process: every request text is encoded once
(in batches); beside it, the bare encode of exactly those texts in the same run, and the same training
again with the request vectors cached (a retrain, or a ``matcher train`` that keeps them). Acceptance: < 60 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np

from bench.latency import need, percentiles
from bench.stores import bench_store, discard, working_copy
from matcher.domain.schema import Query
from matcher.engine.matcher import Matcher
from matcher.engine.ranker import FEATURES, HAND, LinearRanker, hand_coefficients
from matcher.learning.feedback import FeedbackEvent
from matcher.learning.train import train_ranker
from matcher.live import LiveMatcher, StoreBackedEmbedder
from matcher.store import Store

TASKS = ("advisors", "partners", "events", "invitations")


def every_feature(weights) -> LinearRanker:
    """A learned ranker of the hand weights' direction with every feature in use (the most work per request)."""
    return LinearRanker({t: hand_coefficients(weights) + 0.1 for t in TASKS}, version="bench-every-feature")


def synthetic_feedback(matcher: Matcher, rows: int, distinct: int, seed: int = 0) -> list[FeedbackEvent]:
    """``rows`` feedback rows (shown, accepted, declined) of advisor recommendations over ``distinct``
    requests; each shows 10 advisors at reshuffled ranks, taken up with probability 0.3 / rank."""
    rng = np.random.default_rng(seed)
    advisors = [e.id for e in matcher.entities_ if e.kind == "advisor"]
    bodies = [need(i, "feedback") for i in range(distinct)]
    pools = [rng.choice(len(advisors), size=15, replace=False) for _ in range(distinct)]
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    events: list[FeedbackEvent] = []
    n = 0
    while len(events) < rows:
        r = int(rng.integers(distinct))
        shown = rng.permutation(pools[r])[:10]
        query = {**bodies[r], "task": "advisors"}
        rec, at = f"bench-{n}", t0 + dt.timedelta(minutes=n)
        n += 1
        for rank, i in enumerate(shown, 1):
            events.append(FeedbackEvent(rec, "advisors", query, None, advisors[i], "shown", rank, at))
            u = rng.random()
            if u < 0.3 / rank:
                events.append(FeedbackEvent(rec, "advisors", query, None, advisors[i], "accepted", rank, at))
            elif u > 1 - 0.02:
                events.append(FeedbackEvent(rec, "advisors", query, None, advisors[i], "declined", rank, at))
    return events[:rows]


def run_learning(embedder, vectors, profiles: int = 10_000, requests: int = 40, rows: int = 100_000,
                 distinct: int = 1_000, log=print) -> dict:
    url = working_copy(bench_store(profiles, vectors, log=log), "learning")
    try:
        store = Store(url)
        live = LiveMatcher(store, StoreBackedEmbedder(embedder, store)).fit()
        m = live.matcher_
        learned = every_feature(m.weights_)
        queries = [Query(task="advisors", text=b["text"], city=b["city"]) for b in map(need, range(requests),
                                                                                        ["ranker"] * requests)]
        for q in queries:   # encodes each text once: the timed ranks find its vector cached
            m.rank(q, k=10)
        times: dict[str, list[float]] = {"hand": [], "learned": []}
        for repeat in range(3):
            for n, q in enumerate(queries):
                order = (("hand", HAND), ("learned", learned))
                for name, ranker in order if (n + repeat) % 2 == 0 else order[::-1]:
                    m.use_ranker(ranker)
                    t = time.perf_counter()
                    m.rank(q, k=10)
                    times[name].append(time.perf_counter() - t)
        m.use_ranker(HAND)
        latency = {name: percentiles(ts) for name, ts in times.items()}
        latency["p50_ratio"] = round(latency["learned"]["p50_ms"] / latency["hand"]["p50_ms"], 3)
        log(f"learning: rank p50 hand {latency['hand']['p50_ms']} ms, learned {latency['learned']['p50_ms']} ms")

        events = synthetic_feedback(m, rows, distinct)
        fresh = Matcher(StoreBackedEmbedder(embedder, store)).use_index(m.index_)   # empty request cache
        t = time.perf_counter()
        ranker, metrics = train_ranker(fresh, feedback=events, tasks=["advisors"])
        train_s = time.perf_counter() - t
        t = time.perf_counter()   # again: the requests' vectors are now cached, as for a retrain
        train_ranker(fresh, feedback=events, tasks=["advisors"])
        warm_s = time.perf_counter() - t
        texts = list(dict.fromkeys(need(i, "feedback")["text"] for i in range(distinct)))
        t = time.perf_counter()
        for start in range(0, len(texts), 256):
            embedder.encode(texts[start : start + 256], "query")
        encode_s = time.perf_counter() - t
        training = {"rows": len(events), "recommendations": metrics["recommendations"], "requests": distinct,
                    "pairs": metrics["pairs"], "seconds": round(train_s, 2), "bare_encode_seconds": round(encode_s, 2),
                    "seconds_beside_encode": round(train_s - encode_s, 2), "seconds_vectors_cached": round(warm_s, 2),
                    "propensities": metrics["propensities"],
                    "features": len(FEATURES), "ranker": ranker.version}
        log(f"learning: trained on {len(events):,} rows in {train_s:.1f} s (bare encode of its {distinct} "
            f"requests {encode_s:.1f} s); with the request vectors cached {warm_s:.1f} s")
        store.close()
    finally:
        discard(url)
    return {"profiles": profiles, "latency": latency, "training": training}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", type=int, default=10_000)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--distinct", type=int, default=1_000)
    ap.add_argument("--requests", type=int, default=40)
    args = ap.parse_args(argv)
    import json
    import os

    from bench.catalog_vectors import RecombinedVectors
    from bench.stores import FIXTURES, WORK
    from matcher.engine.embedding import DEFAULT_MODEL, make_embedder

    embedder = make_embedder(DEFAULT_MODEL)
    vectors = RecombinedVectors(embedder, WORK / "pieces-vectors.sqlite", FIXTURES)
    print(f"load average at start: {os.getloadavg()}")
    out = run_learning(embedder, vectors, args.profiles, args.requests, args.rows, args.distinct)
    print(json.dumps(out, indent=2))
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":  # pragma: no cover
    main()
