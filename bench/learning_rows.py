"""Row 8 of ``make bench``: the learned ranker's cost (issue 18).

    python -m bench.learning_rows [--profiles 10000] [--rows 100000] [--distinct 1000] [--requests 40]

**Latency**: ``Matcher.rank`` of advisor requests on the cached store of 10,000 profiles, in-process, each
request's vector cached (encoded once before timing), so that what is timed is the engine — signals,
fusion, top k, explanations, confidence — where the ranker is the only difference: each request is ranked
with the hand weights and with a learned ranker that uses every feature (z-scores and interactions included),
the two interleaved (alternating which goes first), three times over. Acceptance: p50 learned ≤ 1.1 × p50 hand.

**Training**: :func:`matcher.learning.train.train_ranker` on 100,000 feedback rows — recommendations of
10 shown advisors each (ranks reshuffled between recommendations, so that propensities can be harvested)
with take-ups and declines drawn by rank — over ``distinct`` different requests. First each request is
*served* once the way the service serves it (``service/recommendations.py``): ranked by the live matcher,
which encodes its text, and recorded with :meth:`~matcher.store.Store.record_recommendation`, which keeps the
request and the vector the engine computed for it in one transaction (:mod:`matcher.store.request_vectors`);
this serving is not timed. Then, **cold**: a new :class:`~matcher.live.StoreBackedEmbedder` (its in-process
request cache empty, as in a fresh ``matcher train`` process) trains; it reads each request's stored vector
and encodes nothing (``encoded_texts`` says so). **Warm**: the same training again, the vectors now in its
in-process cache. Beside them, the bare encode of exactly those request texts in the same run (what a cold
training cost before the vectors were kept, on top of the warm time). Acceptance: cold < 60 s.

**A whole ``matcher train``** (``training.train_version``): recommendations of the same requests with
feedback written to the store until it holds ``rows`` training events, then
:func:`~matcher.live.rankers.train_version` from a fresh embedder, as ``matcher train`` runs it, without judged
sets (their cross-validation and judged gate cost the same whatever the feedback) and without the catalog's fit
(the serving index is used): read the events from the store, train, gate (the IPS estimate against the serving
version), store the version; each stage's seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
from sqlalchemy import insert

from bench.latency import need, percentiles
from bench.stores import bench_store, discard, working_copy
from matcher.domain.schema import Query
from matcher.engine.matcher import Matcher
from matcher.engine.ranker import FEATURES, HAND, LinearRanker, hand_coefficients
from matcher.learning.feedback import FeedbackEvent
from matcher.learning.train import train_ranker
from matcher.live import LiveMatcher, StoreBackedEmbedder
from matcher.live.rankers import train_version
from matcher.store import Store, audit_log, feedback

TASKS = ("advisors", "partners", "events", "invitations")


def every_feature(weights) -> LinearRanker:
    """A learned ranker of the hand weights' direction with every feature in use (the most work per request)."""
    return LinearRanker({t: hand_coefficients(weights) + 0.1 for t in TASKS}, version="bench-every-feature")


def synthetic_feedback(matcher: Matcher, rows: int, requests: list[dict], seed: int = 0) -> list[FeedbackEvent]:
    """``rows`` feedback rows (shown, accepted, declined) of advisor recommendations of ``requests`` (as the
    audit log stores them); each shows 10 advisors at reshuffled ranks, taken up with probability 0.3 / rank."""
    rng = np.random.default_rng(seed)
    advisors = [e.id for e in matcher.entities_ if e.kind == "advisor"]
    distinct = len(requests)
    pools = [rng.choice(len(advisors), size=15, replace=False) for _ in range(distinct)]
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    events: list[FeedbackEvent] = []
    n = 0
    while len(events) < rows:
        r = int(rng.integers(distinct))
        shown = rng.permutation(pools[r])[:10]
        query = requests[r]
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


def serve_requests(live: LiveMatcher, store: Store, bodies: list[dict]) -> list[tuple[dict, np.ndarray]]:
    """Serve each advisors request body once as ``service/recommendations.py`` does: rank it with the live
    matcher (which encodes its text) and record the audit entry with the request and the vector the engine
    computed for it (one transaction). Returns each request as the audit log keeps it, with that vector."""
    version, m = live.current()
    stored = []
    for body in bodies:
        query = Query(task="advisors", text=body["text"], city=body["city"])
        ranking = m.rank(query, k=body["k"])
        request = {"task": query.task, **query.model_dump(mode="json", by_alias=True, exclude_defaults=True)}
        store.record_recommendation(
            task=query.task, query={"city": query.city, "text_chars": len(query.text or ""), "k": body["k"]},
            shown=[r.entity_id for r in ranking.results], model_id=f"{ranking.model_id}/{ranking.ranker}",
            catalog_version=version, role="editor", request=request,
            request_vector=None if ranking.text_vector is None else (ranking.model_id, ranking.text_vector))
        stored.append((request, ranking.text_vector))
    return stored


def record_synthetic(store: Store, events: list[FeedbackEvent], model_id: str, catalog_version: int,
                     rows: int) -> tuple[int, int]:
    """Write synthetic recommendations to the audit log (request, ids shown in the order of their ranks) with
    their take-ups and declines as feedback rows, in one transaction, until the store holds ``rows`` training
    events (:meth:`~matcher.store.AuditLog.feedback_events` returns only recommendations with feedback: one
    event per feedback row and one per other entity shown). The vectors of their texts are those
    :func:`serve_requests` stored when it served them: a request served again shares that row. Returns the
    recommendations and the events written."""
    by_rec: dict[str, list[FeedbackEvent]] = {}
    for e in events:
        by_rec.setdefault(e.recommendation_id, []).append(e)
    at = dt.datetime.now(dt.UTC)
    entries, answers, written = [], [], 0
    for rec, evs in by_rec.items():
        fed = [e for e in evs if e.outcome != "shown"]
        if not fed:
            continue
        shown = [e.entity_id for e in sorted((e for e in evs if e.outcome == "shown"), key=lambda e: e.rank)]
        entries.append({"recommendation_id": rec, "created_at": at, "key_id": None, "role": "editor",
                        "task": evs[0].task, "asker_id": None, "query": {"k": 10}, "shown": shown,
                        "model_id": f"{model_id}/hand", "catalog_version": catalog_version, "tab": None,
                        "request": dict(evs[0].query)})
        answers += [{"recommendation_id": rec, "entity_id": e.entity_id, "outcome": e.outcome, "key_id": None,
                     "created_at": at} for e in fed]
        written += len(fed) + len(set(shown) - {e.entity_id for e in fed})
        if written >= rows:
            break
    with store.db.write() as conn:
        for start in range(0, len(entries), 2000):
            conn.execute(insert(audit_log), entries[start:start + 2000])
        for start in range(0, len(answers), 2000):
            conn.execute(insert(feedback), answers[start:start + 2000])
    return len(entries), written


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

        t = time.perf_counter()
        served = serve_requests(live, store, [need(i, "feedback") for i in range(distinct)])
        serve_s = time.perf_counter() - t
        log(f"learning: served the {len(served)} requests once, as the service does, in {serve_s:.1f} s")
        events = synthetic_feedback(m, rows, [request for request, _ in served])
        # the store gets recommendations of its own (more of them: only those with feedback are training data)
        stored_recs, stored_events = record_synthetic(
            store, synthetic_feedback(m, 2 * rows, [request for request, _ in served], seed=1), m.model_id,
            live.version_, rows)

        # a whole `matcher train` from a fresh process, without judged sets and the catalog's fit: read the
        # feedback from the store, train, gate (IPS estimate against the serving version), store the version
        whole = StoreBackedEmbedder(embedder, store)
        stages: dict[str, float] = {}
        t = time.perf_counter()
        report = train_version(store, Matcher(whole).use_index(m.index_), [], activate=False,
                               progress=lambda _, stage: stages.setdefault(stage, time.perf_counter() - t))
        whole_s = time.perf_counter() - t
        marks = list(stages.values())
        train_version_s = {"seconds": round(whole_s, 2), "read_feedback": round(marks[1] - marks[0], 2),
                           "train": round(marks[2] - marks[1], 2), "gate_and_store": round(marks[3] - marks[2], 2),
                           "feedback_events": report.metrics["feedback_events"], "encoded_texts": whole.encoded,
                           "stored_vectors_read": whole.request_cache.stored_hits}
        train_version_s["recommendations"] = stored_recs
        log(f"learning: train_version (a fresh `matcher train` without judged sets) on the store's "
            f"{report.metrics['feedback_events']:,} events: {whole_s:.1f} s ({train_version_s})")

        cold = StoreBackedEmbedder(embedder, store)   # a fresh process: its request cache is empty
        fresh = Matcher(cold).use_index(m.index_)
        t = time.perf_counter()
        ranker, metrics = train_ranker(fresh, feedback=events, tasks=["advisors"])
        train_s = time.perf_counter() - t
        encoded, read = cold.encoded, cold.request_cache.stored_hits
        t = time.perf_counter()   # again: the requests' vectors are now in its in-process cache, as for a retrain
        train_ranker(fresh, feedback=events, tasks=["advisors"])
        warm_s = time.perf_counter() - t
        texts = list(dict.fromkeys(need(i, "feedback")["text"] for i in range(distinct)))
        t = time.perf_counter()
        for start in range(0, len(texts), 256):
            embedder.encode(texts[start : start + 256], "query")
        encode_s = time.perf_counter() - t
        training = {"rows": len(events), "recommendations": metrics["recommendations"], "requests": distinct,
                    "pairs": metrics["pairs"], "seconds": round(train_s, 2), "seconds_vectors_cached": round(warm_s, 2),
                    "bare_encode_seconds": round(encode_s, 2), "encoded_texts": encoded,
                    "stored_vectors_read": read, "serve_seconds": round(serve_s, 2),
                    "propensities": metrics["propensities"],
                    "features": len(FEATURES), "ranker": ranker.version, "train_version": train_version_s}
        log(f"learning: trained on {len(events):,} rows in {train_s:.1f} s cold ({read} stored request vectors "
            f"read, {encoded} texts encoded); {warm_s:.1f} s warm; bare encode of its {distinct} requests "
            f"{encode_s:.1f} s")
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
