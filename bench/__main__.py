"""``make bench``: speed, memory and scaling against the bare-model floor, and the reviewer–paper
gold standard — one table, and ``bench/results/latest.json``.

    python -m bench                 # everything (6-7 min on 2 cores with warm caches in var/bench/, ~18 min fresh)
    python -m bench --quick         # small sizes, for trying the code (figures mean nothing)
    python -m bench --only latency reviewer_match

Rows (bench/README.md explains each):

1. ``latency``        advisors endpoint over HTTP at 1,000 / 10,000 / 100,000 profiles vs the floor
2. ``concurrency``    1, 4, 8, 16 concurrent clients at 10,000 (micro-batched query encodes)
3. ``indexing``       bulk import until searchable vs bare encode of the same texts
4. ``naive_peer``     semantic_search over the same vectors: latency, and dev-set nDCG@10
5. ``batch``          invitation list over 50,000 organisations; assignment 500 × 5,000
6. ``startup``        spawn → /readyz from the persisted index (and fitting, at 10,000) at each size; peak
                      RSS while serving; PSS of three workers at 100,000
7. ``reviewer_match`` loss, easy/hard accuracy, CI and Δ vs TPMS; the published table beside
8. ``learning``       the learned ranker: rank latency vs the hand weights; training on 100,000 feedback rows

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
ROWS = ("latency", "concurrency", "indexing", "naive_peer", "batch", "startup", "reviewer_match", "learning")


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
    import resource

    t = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_s, rss = (float(x) for x in out.stdout.split())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"spawn_to_encoded_seconds": round(wall, 2), "load_and_encode_seconds": round(load_s, 2),
            "cpu_seconds": round(cpu, 2), "peak_rss_mb": round(rss, 1)}


def _index_dir(store, n: int) -> Path:
    """Where the server keeps the fitted index of the cached store of ``n`` (built by the first start)."""
    from bench.stores import WORK
    from matcher.engine.index_file import code_key

    # keyed by the library code that builds an index as well: a server finding an index of other code
    # refits at its start (~18 s at 10,000) and the start-up row would time a fit
    return WORK / f"index-{n}-{store.path.stem.rsplit('-', 1)[-1]}-{code_key()}"


def _linked_copy(index_dir: Path, name: str) -> Path:
    """A run's own copy of a cached index folder, by hard links (no data copied): a server that refits
    (the bulk import) writes its new index there and deletes the old file there, not in the cache."""
    import shutil

    from bench.stores import WORK

    run = WORK / "run" / name
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    for f in index_dir.glob("*.idx"):
        (run / f.name).hardlink_to(f)
    return run


def _start_figures(srv) -> dict:
    return {"startup_seconds": round(srv.startup_seconds, 2), "startup_cpu_seconds": round(srv.startup_cpu_seconds, 2),
            "texts_encoded_at_startup": int(srv.metric("matcher_texts_encoded")), **srv.memory_mb()}


def serving_rows(cfg: argparse.Namespace, only: set[str], embedder, vectors, log) -> dict:
    """Rows 1, 2, 3, 4 (latency), 6: one server per catalog size, started from its persisted index."""
    import shutil

    from bench.http_server import BenchServer
    from bench.indexing import bulk_import, editor_key, new_profiles, texts_to_encode
    from bench.latency import concurrency, interleaved_latency
    from bench.stores import FIXTURES, WORK, bench_store, discard, profile_matrix, working_copy

    out: dict = {"latency": {}, "stores": {}, "startup_by_size": {}}
    for n in cfg.sizes:
        is_main = n == cfg.main_size
        if not (only & {"latency", "naive_peer", "startup"}
                or (is_main and only & {"concurrency", "indexing"})):
            continue
        store = bench_store(n, vectors, log=log)
        build_seconds = None if store.build_seconds is None else round(store.build_seconds, 1)
        out["stores"][str(n)] = {"file": store.path.name, "built_now": store.build_seconds is not None,
                                 "build_seconds": build_seconds, **store.vector_counts}
        url = working_copy(store, f"serve-{n}")
        index_dir = _index_dir(store, n)
        started: dict = {"profiles": n}
        try:
            if is_main or not index_dir.exists():
                # a start that fits the catalog from the store (what every start did before the persisted
                # index): the baseline of the start from the index, and the build of the index if missing
                fit_dir = WORK / "run" / f"index-fit-{n}"
                shutil.rmtree(fit_dir, ignore_errors=True)
                with BenchServer(url, cfg.model, WORK / "run" / f"server-{n}-fit.log", index_dir=fit_dir) as srv:
                    started["fit_start"] = _start_figures(srv)
                log(f"start at {n:,} fitting the catalog: {started['fit_start']['startup_seconds']} s")
                if not index_dir.exists():
                    for stale in WORK.glob(f"index-{n}-*"):
                        shutil.rmtree(stale, ignore_errors=True)
                    fit_dir.rename(index_dir)
                    out["stores"][str(n)]["index_built_now"] = True
            entities, profiles, stored, advisors = profile_matrix(url, embedder)
            log(f"serving {n:,} profiles ({stored.shape[0]:,} × {stored.shape[1]} stored vectors)")
            # the bare model's start beside each start measured: the shared machine's load moves between them
            started["bare_model"] = bare_model_baseline(cfg.model)
            with BenchServer(url, cfg.model, WORK / "run" / f"server-{n}.log",
                             index_dir=_linked_copy(index_dir, f"index-{n}")) as srv:
                started.update(_start_figures(srv))
                started["index_file_mb"] = round(sum(f.stat().st_size for f in index_dir.glob("*.idx")) / 2 ** 20, 1)
                log(f"start at {n:,} from the index: {started['startup_seconds']} s")
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
                    "server": {k: v for k, v in started.items() if k != "fit_start"},
                }
                log(f"latency at {n:,}: http p50 {lat.http['p50_ms']} ms, floor {lat.floor['p50_ms']} ms")
                if is_main and only & {"concurrency"}:
                    levels = [concurrency(srv.base, c, max(cfg.concurrent_requests // c, 2), tag=f"c{c}")
                              for c in (1, 4, 8, 16)]
                    floor_rps = 1000 / lat.floor["mean_ms"]
                    batcher = {"passes": srv.metric("matcher_encode_passes"),
                               "batched_calls": srv.metric("matcher_encode_batched_calls")}
                    out["concurrency"] = {"profiles": n, "levels": levels, "server_threads": srv.threads,
                                          "floor_sequential_rps": round(floor_rps, 2), "micro_batching": batcher,
                                          "single_client_p50_ms": levels[0]["p50_ms"]}
                    log("concurrency: " + ", ".join(f"{lv['clients']}→{lv['throughput_rps']} rps" for lv in levels))
                started["peak_rss_mb_serving"] = srv.memory_mb()["peak_rss_mb"]
                started.update(srv.pss_mb())
                if is_main and only & {"indexing"}:
                    records = new_profiles(FIXTURES, cfg.import_profiles, seed=11)
                    texts = texts_to_encode(records, url, embedder.model_id)
                    out["indexing"] = bulk_import(srv.base, records, texts, embedder,
                                                  srv.metric("matcher_texts_encoded"), srv.metric, editor_key(url))
                    out["indexing"]["peak_rss_mb_after_refit"] = srv.memory_mb()["peak_rss_mb"]
                    log(f"indexing: {out['indexing']}")
            if n == max(cfg.sizes) and only & {"startup"}:
                # several workers on one machine: the index file's pages are shared (PSS counts them once)
                discard(url)
                url = working_copy(store, f"serve-{n}")
                with BenchServer(url, cfg.model, WORK / "run" / f"server-{n}-3w.log",
                                 index_dir=_linked_copy(index_dir, f"index-{n}"), workers=3) as srv:
                    concurrency(srv.base, 6, 4, tag=f"w3n{n}")   # every worker serves
                    started["three_workers"] = {"startup_seconds": round(srv.startup_seconds, 2), **srv.pss_mb()}
                log(f"three workers at {n:,}: {started['three_workers']['workers_pss_total_mb']} MB PSS together")
        finally:
            discard(url)
        out["startup_by_size"][str(n)] = started
        if is_main:
            out["startup"] = started
    return out


def prepare(cfg: argparse.Namespace, only: set[str], embedder, vectors, log) -> dict:
    """Fill every cache the measurements read (the build step of ``make bench``; seconds when warm):
    the stores of each size with their vectors, each store's persisted index (fitted in this process
    exactly as a server's first start fits and writes it), and the reviewer papers' vectors."""
    from bench.stores import bench_store, discard, working_copy
    from matcher.live import LiveMatcher, StoreBackedEmbedder
    from matcher.store import Store

    done: dict = {}
    if only & {"latency", "naive_peer", "startup", "concurrency", "indexing"}:
        for n in cfg.sizes:
            t = time.perf_counter()
            store = bench_store(n, vectors, log=log)
            index_dir = _index_dir(store, n)
            if not index_dir.exists():
                url = working_copy(store, f"prepare-{n}")
                building = index_dir.with_name(index_dir.name + ".building")
                try:
                    s = Store(url)
                    live = LiveMatcher(s, StoreBackedEmbedder(embedder, s, batch_window=None), index_dir=building)
                    live.fit()
                    live.wait_for_index_file()
                    s.close()
                    del live
                    building.rename(index_dir)
                finally:
                    discard(url)
            done[f"store_and_index_{n}"] = round(time.perf_counter() - t, 1)
            log(f"prepared {n:,}: store and index in {done[f'store_and_index_{n}']} s")
    if "reviewer_match" in only:
        from bench.reviewer_match import Vectors, load_gold_standard

        t = time.perf_counter()
        papers = Vectors(load_gold_standard(), cfg.model)
        done["reviewer_papers"] = round(time.perf_counter() - t, 1)
        done["reviewer_papers_encoded_now"] = int(papers.encoded)
        log(f"prepared reviewer papers: {papers.encoded} encoded now, {done['reviewer_papers']} s")
    return done


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes to try the code; figures mean nothing")
    ap.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS))
    ap.add_argument("--model", default=None, help="embedding model (default: the engine's default, e5+use)")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--prepare", action="store_true", help="only fill the caches in var/bench/ (the build step)")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="catalog sizes (default 1000 10000 100000)")
    ap.add_argument("--requests", type=int, default=None, help="latency requests per size (default 100)")
    ap.add_argument("--concurrent-requests", type=int, default=None,
                    help="requests per concurrency level, split among the clients (default 96)")
    args = ap.parse_args(argv)
    from matcher.engine.embedding import DEFAULT_MODEL, make_embedder

    cfg = argparse.Namespace(
        model=args.model or DEFAULT_MODEL,
        sizes=tuple(args.sizes) if args.sizes else (500, 2_000) if args.quick else (1_000, 10_000, 100_000),
        main_size=2_000 if args.quick else 10_000,
        requests=args.requests or (8 if args.quick else 100),
        concurrent_requests=args.concurrent_requests or (16 if args.quick else 96),
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
    results["prepared"] = prepare(cfg, only, embedder, vectors, log)
    phases["prepare"] = time.perf_counter() - t
    if args.prepare:
        log(f"caches filled in {phases['prepare']:.0f} s")
        return
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
    if "learning" in only:
        from bench.learning_rows import run_learning

        t = time.perf_counter()
        results["learning"] = run_learning(embedder, vectors, profiles=cfg.main_size,
                                           rows=10_000 if args.quick else 100_000,
                                           distinct=100 if args.quick else 1_000, log=log)
        phases["learning"] = time.perf_counter() - t
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    results["phases_seconds"] = {k: round(v, 1) for k, v in phases.items()}
    results["total_seconds"] = round(time.perf_counter() - t0, 1)
    # the build step (fresh: encoding pool texts and papers, building stores and indexes) and the measuring
    results["prepare_seconds"] = round(phases["prepare"], 1)
    results["measure_seconds"] = round(results["total_seconds"] - phases["prepare"], 1)
    # the figures first: a table that fails to print must not lose a run of many minutes
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=float) + "\n", encoding="utf-8")
    print_table(results)
    log(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
