"""What two engine changes would do to the assignment's score matrix (a proposal, measured).

    python -m bench.batch_engine_speedups            # with the stemmer installed in the venv
    PYTHONPATH=/path/to/pystemmer python -m bench.batch_engine_speedups

Reading a request is the engine's per-text work; two steps dominate it:

1. ``countries.country_mentions`` runs ~600 regular expressions over every text.
   A regex ``stem\\w*`` can only match where its literal ``stem`` occurs, so a
   substring test first skips almost all of them — with identical results
   (checked below on every request and catalog text).
2. Snowball stemming in pure Python (``snowballstemmer``); with ``PyStemmer``
   installed, ``snowballstemmer.stemmer()`` returns the C implementation of the
   same algorithm (identical stems on the fixture corpus).

The script times ``score_requests`` on the 500 × 5,000 instance of ``bench/batch.py``
as the engine is, then with (1) patched in for this process only; it reports
which stemmer is active. Nothing in the library is changed by it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time

import snowballstemmer

import matcher.countries as countries
import matcher.ranking as ranking
from bench.batch import CACHE, _fitted
from bench.batch_data import advisor_instance
from matcher.embedding import CachedEmbedder, SQLiteVectorCache, make_embedder
from matcher.request_scoring import score_requests

AS_OF = dt.date(2026, 11, 22)


def prefiltered_country_mentions():
    """``country_mentions`` with a substring test before each literal pattern (same results)."""
    patterns = countries._patterns()
    head = "(?<![\\w-])(?:"
    literals = []
    for rx, _, is_region in patterns:
        inner = rx.pattern[len(head):-1]
        literals.append(None if is_region or not inner.endswith(r"\w*") else re.sub(r"\\(.)", r"\1", inner[:-3]))

    def mentions(text):
        if not text:
            return frozenset(), frozenset(), frozenset()
        folded = countries._fold(text)
        direct, regional, broad, taken = set(), set(), set(), []
        for (rx, codes, is_region), literal in zip(patterns, literals):
            if literal is not None and literal not in folded:
                continue
            for m in rx.finditer(folded):
                span = m.span()
                if any(a < span[1] and span[0] < b for a, b in taken):
                    continue
                taken.append(span)
                if not is_region:
                    direct.update(codes)
                else:
                    (broad if len(codes) > countries.BROAD_REGION else regional).update(codes)
        return frozenset(direct), frozenset(regional), frozenset(broad)

    return mentions


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--advisors", type=int, default=500)
    ap.add_argument("--requests", type=int, default=5_000)
    ap.add_argument("--model", default="use")
    args = ap.parse_args(argv)
    embedder = CachedEmbedder(make_embedder(args.model), SQLiteVectorCache(CACHE))
    catalog, requests = advisor_instance(args.advisors, args.requests)
    matcher, _, _ = _fitted(embedder, catalog, f"advisors{args.advisors}")
    queries = [r.query() for r in requests]
    embedder.encode([q.text for q in queries], "query")
    stemmer = type(snowballstemmer.stemmer("german"))
    print(f"stemmer: {stemmer.__module__}.{stemmer.__name__}")
    fast = prefiltered_country_mentions()
    texts = [q.text for q in queries] + [e.description for e in catalog]
    assert all(fast(t) == countries.country_mentions(t) for t in texts), "prefilter changes results"
    t0 = time.perf_counter()
    for t in texts[:1000]:
        countries.country_mentions(t)
    t1 = time.perf_counter()
    for t in texts[:1000]:
        fast(t)
    t2 = time.perf_counter()
    print(f"country_mentions: {t1 - t0:.2f} s → {t2 - t1:.2f} s per 1,000 texts (identical on {len(texts):,} texts)")
    print("| engine | score matrix, 1 process | `workers=2` |")
    print("|---|---|---|")
    for label, patch in (("as it is", None), ("+ country prefilter", fast)):
        if patch is not None:
            countries.country_mentions = ranking.country_mentions = patch
        times = []
        for workers in (1, 2):
            t = time.perf_counter()
            score_requests(matcher, queries, as_of=AS_OF, workers=workers)
            times.append(time.perf_counter() - t)
        print(f"| {label} ({stemmer.__module__}) | {times[0]:.1f} s | {times[1]:.1f} s |")


if __name__ == "__main__":  # pragma: no cover
    main()
