"""Benchmark stores: SQLite stores of N generated profiles with every vector, built once.

A store is cached as ``var/bench/store-<n>-<key>.db``, the key hashing everything that decides its
content (N, seed, model id, the fixture catalog and the code that generates profiles, texts and
vectors); a re-run with the same key copies it (seconds) instead of building it (minutes at
100,000). Servers run on a working copy, so audit entries and imports never change the cache.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.catalog_vectors import RecombinedVectors
from bench.generate_catalog import generate_catalog
from matcher.domain.schema import parse_entity
from matcher.engine.embedding import CachedEmbedder, Embedder
from matcher.store import Store
from matcher.text.profile import passages, profile_text

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "bench"
FIXTURES = ROOT / "fixtures" / "catalog.jsonl"
# what decides a store's content (the building code below only writes it)
_KEYED_SOURCES = ["bench/generate_catalog.py", "bench/catalog_vectors.py", "matcher/text/profile.py",
                  "matcher/domain/schema.py", "fixtures/catalog.jsonl"]

__all__ = ["BenchStore", "bench_store", "working_copy", "discard", "profile_matrix"]


@dataclass
class BenchStore:
    path: Path                 # the cached, pristine store
    n: int
    build_seconds: float | None  # None: taken from the cache
    vector_counts: dict


def _key(n: int, seed: int, model_id: str) -> str:
    h = hashlib.sha1(f"{n}|{seed}|{model_id}".encode())
    for rel in _KEYED_SOURCES:
        h.update((ROOT / rel).read_bytes())
    return h.hexdigest()[:12]


def bench_store(n: int, vectors: RecombinedVectors, seed: int = 7, log=print) -> BenchStore:
    """The cached store of ``n`` generated profiles with all their vectors (built if missing)."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"store-{n}-{_key(n, seed, vectors.model_id)}.db"
    if path.exists():
        return BenchStore(path, n, None, {})
    t0 = time.perf_counter()
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    store = Store(f"sqlite:///{tmp}")
    store.upgrade()
    entities = [parse_entity(r) for r in generate_catalog(FIXTURES, n, seed)]
    store.upsert_entities(entities)
    items, counts = vectors.vectors_for(entities)
    store.vectors.put_many(vectors.model_id, items)
    store.close()
    with sqlite3.connect(tmp) as con:  # one file, no WAL beside it: copies are plain file copies
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA journal_mode=DELETE")
    tmp.rename(path)
    for stale in WORK.glob(f"store-{n}-*.db"):   # stores of older code or parameters
        if stale != path:
            stale.unlink()
    elapsed = time.perf_counter() - t0
    log(f"built store of {n:,} profiles in {elapsed:.0f} s ({counts})")
    return BenchStore(path, n, elapsed, counts)


def working_copy(src: BenchStore, name: str) -> str:
    """A fresh copy of the cached store for one server run; returns its database URL."""
    dst = WORK / "run" / f"{name}.db"
    dst.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(src.path, dst)
    url = f"sqlite:///{dst}"
    Store(url).upgrade()   # a newer schema revision than the cached store's: migrate the copy
    return url


def discard(url: str) -> None:
    """Delete a working copy (a copy of the 100,000 store is over 1 GB)."""
    path = Path(url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def profile_matrix(url: str, embedder: Embedder,
                   kind: str = "advisor") -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """(entities, their whole-profile vectors, every stored catalog vector: the whole-profile
    vectors and the unique passage vectors — what the floor multiplies with —, and the stored
    vectors of ``kind``'s entities only: what the engine reads for a search of that kind)."""
    store = Store(url)
    _, entities = store.snapshot()
    lists = [passages(e) for e in entities]
    unique = list(dict.fromkeys(p for ps in lists for p in ps))
    texts = [profile_text(e) for e in entities] + unique
    keys = [CachedEmbedder.key(t, "passage") for t in texts]
    found = store.vectors.get_many(embedder.model_id, keys)
    store.close()
    stored = np.vstack([found[k] for k in keys]).astype(np.float32)
    row = {t: len(entities) + i for i, t in enumerate(unique)}
    mine = [i for i, e in enumerate(entities) if e.kind == kind]
    own = list(dict.fromkeys(row[p] for i in mine for p in lists[i]))
    return entities, np.ascontiguousarray(stored[: len(entities)]), stored, np.ascontiguousarray(stored[mine + own])
