"""Embedding models side by side: German STS, dev-set nDCG (naive and our hybrid),
single-query latency, throughput and memory — each model in its own process
so that peak RSS is its own.

    python -m bench.embedders                 # all models, prints a table
    python -m bench.embedders --models e5 use --json

Reads ../shared/benchmarks/sts-de and ../shared/eval/dev (never copied into the repo).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
STS_DIR = SHARED / "benchmarks" / "sts-de"
DEV_SET = SHARED / "eval" / "dev"
MODELS = ["e5+use", "e5", "use", "minilm", "tfidf"]


def _read_sts(name: str) -> tuple[list[str], list[str], np.ndarray]:
    with open(STS_DIR / name, encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if len(r) == 3]
    if rows and not _is_number(rows[0][2]):
        rows = rows[1:]
    return [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows])


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) * 100


class _TfidfEmbedder:
    """Character 3–5-gram TF-IDF as a sparse 'embedder' (the lexical baseline)."""

    model_id = "tfidf-char-3-5"

    def __init__(self, corpus: list[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True).fit(corpus)
        self.dim = len(self.vec.vocabulary_)

    def encode(self, texts, role):
        from sklearn.preprocessing import normalize

        return normalize(self.vec.transform(list(texts)))


def _cos_rows(a, b) -> np.ndarray:
    if hasattr(a, "multiply"):
        return np.asarray(a.multiply(b).sum(axis=1)).ravel()
    return np.sum(a * b, axis=1)


def measure_one(spec: str) -> dict:
    """All figures for one model, in this process."""
    from matcher.engine.embedding import CachedEmbedder, SQLiteVectorCache, make_embedder
    from matcher.engine.matcher import TASK_KIND, Matcher
    from matcher.evaluation.judged import evaluate, load_dataset, matcher_ranker
    from matcher.evaluation.metrics import ndcg_at_k
    from matcher.text.profile import profile_text

    de1, de2, gold = _read_sts("stsb-de-test.csv")
    en1, _, _ = _read_sts("stsb-en-test.csv")
    ds = load_dataset(DEV_SET)
    paragraphs = [e.description for e in ds.catalog if len(e.description) > 200][:64]

    t0 = time.perf_counter()
    if spec == "tfidf":
        model = _TfidfEmbedder(de1 + de2 + en1 + [profile_text(e) for e in ds.catalog])
    else:
        model = make_embedder(spec)
    load_s = time.perf_counter() - t0

    # speed first, on the bare model (no cache): one paragraph at a time, then batches of 32
    model.encode(paragraphs[:2], "query")
    lat = []
    for p in paragraphs[:20]:
        t = time.perf_counter()
        model.encode([p], "query")
        lat.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    model.encode(paragraphs[:64], "passage")
    per_s = len(paragraphs[:64]) / (time.perf_counter() - t)

    cached = model if spec == "tfidf" else CachedEmbedder(model,
                                                          SQLiteVectorCache(ROOT / "var" / "bench-vectors.sqlite"))
    sts_de = _spearman(_cos_rows(cached.encode(de1, "query"), cached.encode(de2, "query")), gold)
    sts_x = _spearman(_cos_rows(cached.encode(en1, "query"), cached.encode(de2, "query")), gold)

    # naive dense ranking on the dev set: need text (or the asker's profile) against whole profiles
    profiles = cached.encode([profile_text(e) for e in ds.catalog], "passage")
    by_id = {e.id: i for i, e in enumerate(ds.catalog)}
    naive = []
    for q in ds.queries:
        text = q.text or profile_text(ds.catalog[by_id[q.from_]])
        qv = cached.encode([text], "query")
        sims = np.asarray((profiles @ qv.T).todense()).ravel() if hasattr(profiles, "todense") else profiles @ qv[0]
        cands = [i for i, e in enumerate(ds.catalog) if e.kind == TASK_KIND[q.task] and e.id != q.from_]
        ranked = [ds.catalog[i].id for i in sorted(cands, key=lambda i: -sims[i])]
        naive.append(ndcg_at_k(ranked, ds.qrels.get(q.id, {})))

    hybrid = None
    if spec != "tfidf":
        as_of = min(e.date for e in ds.catalog if getattr(e, "date", None))
        report = evaluate(matcher_ranker(Matcher(cached).fit(ds.catalog), as_of=as_of), ds)
        hybrid = report.overall["ndcg@10"]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "model": spec, "model_id": model.model_id, "sts_de": round(sts_de, 1), "sts_en_de": round(sts_x, 1),
        "dev_ndcg_naive": round(float(np.mean(naive)), 3),
        "dev_ndcg_hybrid": None if hybrid is None else round(hybrid, 3),
        "query_ms_p50": round(statistics.median(lat), 1), "paragraphs_per_s": round(per_s, 1),
        "load_s": round(load_s, 2), "peak_rss_mb": round(rss_mb),
        "threads": os.environ.get("MATCHER_THREADS", "default"),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(args.one)))
        return
    rows = []
    for spec in args.models:
        out = subprocess.run([sys.executable, "-m", "bench.embedders", "--one", spec], cwd=ROOT, capture_output=True,
                             text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if out.returncode != 0:
            sys.exit(f"{spec} failed:\n{out.stderr[-2000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"measured {spec}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    head = ("| model | STS de | STS en→de | dev nDCG@10 naive | dev nDCG@10 hybrid | query ms (p50) | paragraphs/s "
            "| peak RSS MB |")
    print(head)
    print("|" + "---|" * 8)
    for r in rows:
        hyb = "–" if r["dev_ndcg_hybrid"] is None else f"{r['dev_ndcg_hybrid']:.3f}"
        print(f"| {r['model']} | {r['sts_de']:.1f} | {r['sts_en_de']:.1f} | {r['dev_ndcg_naive']:.3f} | {hyb} | "
              f"{r['query_ms_p50']:.1f} | {r['paragraphs_per_s']:.1f} | {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
