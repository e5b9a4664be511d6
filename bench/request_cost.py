"""What an advisors request costs beside the encode, in-process, stage by stage.

    python -m bench.request_cost                # 10,000 profiles (the store ``make bench`` caches)
    python -m bench.request_cost --profiles 100000 --requests 60

Row 1 of ``make bench`` gives the service's latency over HTTP against the floor; this tells where
the difference goes. Every request text is sent once, so that its vector is in the server's
request cache, and then timed three more times: what is left is everything but the model (Flask,
validation, the engine's signals, explanations, the audit write, serialisation). Timers wrap the
engine's and the store's stages while the requests run (their own overhead is ~1 µs a call).
"""

from __future__ import annotations

import argparse
import functools
import time
from collections import defaultdict

import numpy as np

from bench.latency import need

# (module, owner, name) wrapped with a timer: the stages of one request, each where its caller looks it up
# (a function imported by name is wrapped in the importing module)
STAGES = [
    ("service.recommendations", None, "recommend"),
    ("matcher.engine.matcher", "Matcher", "rank"),
    ("matcher.engine.matcher", "Matcher", "score"),
    ("matcher.engine.matcher", None, "prepare_queries"),
    ("matcher.engine.matcher", None, "score_contexts"),
    ("matcher.engine.scoring", None, "raw_signals"),
    ("matcher.engine.signals", None, "dense"),
    ("matcher.engine.signals", None, "lexical"),
    ("matcher.engine.signals", None, "false_friends"),
    ("matcher.engine.signals", None, "proximity"),
    ("matcher.engine.signals", None, "region"),
    ("matcher.engine.signals", None, "type_fit"),
    ("matcher.engine.matcher", None, "explain"),
    ("matcher.store", "Store", "record_recommendation"),
    ("matcher.store", "Store", "catalog_version"),
]


def _wrap(times: dict[str, list[float]]) -> None:
    import importlib

    for module, owner, name in STAGES:
        target = importlib.import_module(module)
        target = getattr(target, owner) if owner else target
        original = getattr(target, name)

        @functools.wraps(original)
        def timed(*args, _f=original, _name=name, **kwargs):
            t = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                times[_name].append(time.perf_counter() - t)

        setattr(target, name, timed)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=60, help="distinct request texts (each timed 3 times)")
    args = ap.parse_args(argv)

    from bench.catalog_vectors import RecombinedVectors
    from bench.stores import FIXTURES, WORK, bench_store, discard, working_copy
    from matcher.engine.embedding import DEFAULT_MODEL, make_embedder
    from service import create_app

    vectors = RecombinedVectors(make_embedder(DEFAULT_MODEL), WORK / "pieces-vectors.sqlite", FIXTURES)
    url = working_copy(bench_store(args.profiles, vectors), f"request-cost-{args.profiles}")
    try:
        app = create_app({"DATABASE_URL": url, "OPEN_RECOMMENDATIONS": True, "START_IN_BACKGROUND": False,
                          "RATE_LIMIT_RECOMMENDATIONS": "1000000 per minute"})
        client = app.test_client()
        bodies = [need(i, "cost") for i in range(args.requests)]
        for body in bodies:  # encodes each text once: later requests find its vector cached
            assert client.post("/v1/recommendations/advisors", json=body).status_code == 200
        times: dict[str, list[float]] = defaultdict(list)
        _wrap(times)
        whole = []
        for _ in range(3):
            for body in bodies:
                t = time.perf_counter()
                assert client.post("/v1/recommendations/advisors", json=body).status_code == 200
                whole.append(time.perf_counter() - t)
    finally:
        discard(url)
    n = len(whole)
    print(f"advisors request with its vector cached, {args.profiles:,} profiles, {n} requests: "
          f"p50 {np.median(whole) * 1000:.2f} ms, mean {np.mean(whole) * 1000:.2f} ms")
    print("| stage | ms per request (mean) | calls per request |")
    print("|---|---|---|")
    for name, ts in sorted(times.items(), key=lambda kv: -sum(kv[1])):
        print(f"| {name} | {sum(ts) / n * 1000:.3f} | {len(ts) / n:.0f} |")


if __name__ == "__main__":  # pragma: no cover
    main()
