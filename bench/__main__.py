"""``make bench``: speed, memory and scaling against the bare-model floor, and the reviewer–paper
gold standard — one table, and ``bench/results/latest.json``.

    python -m bench                 # everything (6-7 min on 2 cores with warm caches in var/bench/, ~18 min fresh)
    python -m bench --quick         # small sizes, for trying the code (figures mean nothing)
    python -m bench --only latency reviewer_match

Rows (bench/README.md explains each):

1. ``latency``        advisors endpoint over HTTP at 1,000 / 10,000 / 100,000 profiles vs the floor
2. ``concurrency``    1, 4, 8 concurrent clients at 10,000
3. ``indexing``       bulk import until searchable vs bare encode of the same texts
4. ``naive_peer``     semantic_search over the same vectors: latency, and dev-set nDCG@10
5. ``batch``          invitation list over 50,000 organisations; assignment 500 × 5,000
6. ``startup``        spawn → /readyz with 10,000 stored profiles; peak RSS while serving
7. ``reviewer_match`` loss, easy/hard accuracy, CI and Δ vs TPMS; the published table beside

Everything measured in one run on one machine; every speed figure has its baseline measured in
the same run. Slow one-time work (encoding fixture parts and papers, building stores, fitting the
batch catalogs) is cached under ``var/`` and reported, not timed as part of any figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench.table import print_table

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "latest.json"
ROWS = ("latency", "concurrency", "indexing", "naive_peer", "batch", "startup", "reviewer_match")


def machine() -> dict:
    mem_kb = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")).split()[1])
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "memory_gib": round(mem_kb / 1024 ** 2, 1), "cpu": cpu,
            "python": platform.python_version(), "load_average_at_start": list(os.getloadavg()),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def bare_model_baseline(model: str) -> dict:
    """Load the bare model in a fresh process and encode one text: the start-up and memory floor."""
    code = ("import time,re,pathlib;t=time.perf_counter();from matcher.engine.embedding import make_embedder;"
            f"e=make_embedder({model!r});e.encode(['Migration und Entwicklung'],'query');"
            "s=time.perf_counter()-t;st=pathlib.Path('/proc/self/status').read_text();"
            "print(s, int(re.search(r'VmHWM:\\s+(\\d+)',st)[1])/1024)")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t
    load_s, rss = (float(x) for x in out.stdout.split())
    return {"spawn_to_encoded_seconds": round(wall, 2), "load_and_encode_seconds": round(load_s, 2),
            "peak_rss_mb": round(rss, 1)}


def serving_rows(cfg: argparse.Namespace, only: set[str], embedder, vectors, log) -> dict:
    """Rows 1, 2, 3, 4 (latency), 6: one server per catalog size."""
    from bench.http_server import BenchServer
    from bench.indexing import bulk_import, editor_key, new_profiles, texts_to_encode
    from bench.latency import concurrency, interleaved_latency
    from bench.stores import FIXTURES, WORK, bench_store, discard, profile_matrix, working_copy

    out: dict = {"latency": {}, "stores": {}}
    for n in cfg.sizes:
        is_main = n == cfg.main_size
        if not (only & {"latency", "naive_peer"} or (is_main and only & {"concurrency", "indexing", "startup"})):
            continue
        store = bench_store(n, vectors, log=log)
        build_seconds = None if store.build_seconds is None else round(store.build_seconds, 1)
        out["stores"][str(n)] = {"file": store.path.name, "built_now": store.build_seconds is not None,
                                 "build_seconds": build_seconds, **store.vector_counts}
        url = working_copy(store, f"serve-{n}")
        entities, profiles, stored, advisors = profile_matrix(url, embedder)
        log(f"serving {n:,} profiles ({stored.shape[0]:,} × {stored.shape[1]} stored vectors)")
        try:
            with BenchServer(url, cfg.model, WORK / "run" / f"server-{n}.log") as srv:
                started = {"startup_seconds": round(srv.startup_seconds, 2),
                           "texts_encoded_at_startup": int(srv.metric("matcher_texts_encoded")), **srv.memory_mb()}
                lat = interleaved_latency(srv.base, embedder, profiles, stored, advisors, cfg.requests, tag=f"n{n}")
                out["latency"][str(n)] = {
                    "profiles": n, "stored_vectors": int(stored.shape[0]), "dim": int(stored.shape[1]),
                    "advisor_vectors": int(advisors.shape[0]),
                    "http": lat.http, "floor": lat.floor, "floor_profiles_only": lat.floor_profiles,
                    "floor_advisors_only": lat.floor_kind, "naive_peer": lat.naive,
                    "p50_ratio_to_floor": round(lat.http["p50_ms"] / lat.floor["p50_ms"], 3),
                    "p50_ratio_to_floor_profiles_only": round(lat.http["p50_ms"] / lat.floor_profiles["p50_ms"], 3),
                    "p50_ratio_to_floor_advisors_only": round(lat.http["p50_ms"] / lat.floor_kind["p50_ms"], 3),
                    "p99_ratio_to_floor": round(lat.http["p99_ms"] / lat.floor["p99_ms"], 3),
                    "naive_p50_ratio_to_floor": round(lat.naive["p50_ms"] / lat.floor["p50_ms"], 3),
                    "server": started,
                }
                log(f"latency at {n:,}: http p50 {lat.http['p50_ms']} ms, floor {lat.floor['p50_ms']} ms")
                if not is_main:
                    continue
                if only & {"concurrency"}:
                    levels = [concurrency(srv.base, c, max(cfg.concurrent_requests // c, 2), tag=f"c{c}")
                              for c in (1, 4, 8)]
                    floor_rps = 1000 / lat.floor["mean_ms"]
                    out["concurrency"] = {"profiles": n, "levels": levels, "server_threads": srv.threads,
                                          "floor_sequential_rps": round(floor_rps, 2)}
                    log("concurrency: " + ", ".join(f"{lv['clients']}→{lv['throughput_rps']} rps" for lv in levels))
                out["startup"] = {"profiles": n, **started, "peak_rss_mb_serving": srv.memory_mb()["peak_rss_mb"],
                                  "bare_model": bare_model_baseline(cfg.model)}
                if only & {"indexing"}:
                    records = new_profiles(FIXTURES, cfg.import_profiles, seed=11)
                    texts = texts_to_encode(records, url, embedder.model_id)
                    out["indexing"] = bulk_import(srv.base, records, texts, embedder,
                                                  srv.metric("matcher_texts_encoded"), srv.metric, editor_key(url))
                    out["indexing"]["peak_rss_mb_after_refit"] = srv.memory_mb()["peak_rss_mb"]
                    log(f"indexing: {out['indexing']}")
        finally:
            discard(url)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes to try the code; figures mean nothing")
    ap.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS))
    ap.add_argument("--model", default=None, help="embedding model (default: the engine's default, e5+use)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    from matcher.engine.embedding import DEFAULT_MODEL, make_embedder

    cfg = argparse.Namespace(
        model=args.model or DEFAULT_MODEL,
        sizes=(500, 2_000) if args.quick else (1_000, 10_000, 100_000),
        main_size=2_000 if args.quick else 10_000,
        requests=8 if args.quick else 100,
        concurrent_requests=16 if args.quick else 96,
        import_profiles=20 if args.quick else 300,
        batch=dict(n_orgs=2_000, n_advisors=50, n_requests=300, repeat=1) if args.quick else
        dict(n_orgs=50_000, n_advisors=500, n_requests=5_000, repeat=3),
    )
    only = set(args.only)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", file=sys.stderr, flush=True)

    results: dict = {"machine": machine(), "model": cfg.model, "quick": args.quick,
                     "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    from bench.catalog_vectors import RecombinedVectors
    from bench.stores import FIXTURES, WORK

    embedder = make_embedder(cfg.model)
    embedder.encode(["Migration und Entwicklung auf kommunaler Ebene"], "query")
    results["model_id"] = embedder.model_id
    results["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    vectors = RecombinedVectors(embedder, WORK / "pieces-vectors.sqlite", FIXTURES)
    phases: dict[str, float] = {}

    t = time.perf_counter()
    results.update(serving_rows(cfg, only, embedder, vectors, log))
    phases["serving"] = time.perf_counter() - t
    results["pool_texts_encoded_now"] = vectors.real_encoded
    if "naive_peer" in only:
        from bench.naive_peer import dev_quality

        t = time.perf_counter()
        results["naive_peer"] = dev_quality(cfg.model)
        phases["naive_peer_dev"] = time.perf_counter() - t
        log(f"dev set: ours {results['naive_peer']['ours']['ndcg@10']}, "
            f"naive {results['naive_peer']['naive']['ndcg@10']}")
    if "batch" in only:
        from bench.batch_rows import run_batch

        t = time.perf_counter()
        results["batch"] = run_batch(embedder, vectors, **cfg.batch)
        phases["batch"] = time.perf_counter() - t
        log(f"batch: invitations {results['batch']['invitations']['seconds']} s, "
            f"assignment {results['batch']['assignment']['seconds']} s")
    if "reviewer_match" in only:
        from bench.reviewer_match import run as reviewer_run

        t = time.perf_counter()
        rm = reviewer_run(cfg.model)
        phases["reviewer_match"] = time.perf_counter() - t
        results["reviewer_match"] = rm
        log(f"reviewer match: loss {rm['loss']} {rm['ci95']}")
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    results["phases_seconds"] = {k: round(v, 1) for k, v in phases.items()}
    results["total_seconds"] = round(time.perf_counter() - t0, 1)
    print_table(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=float) + "\n", encoding="utf-8")
    log(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
