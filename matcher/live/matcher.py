"""A :class:`~matcher.engine.matcher.Matcher` kept in step with the catalog in a :class:`~matcher.store.Store`.

Used by the HTTP service (and by batch jobs): it fits once at start-up from the
store, then compares the store's catalog version (one cheap row) before each
use and refits when another request, process or replica has changed the
catalog. Refits encode nothing that is already in the store's vector cache, and take
over from the serving matcher what it computed for texts that did not change (vectors,
n-gram counts, country mentions), so a refit costs little more than the change itself.

With an ``index_dir``, each fitted index is also written there (:mod:`matcher.engine.index_file`),
named by the store's catalog stamp (version and when it was set), the model and the code; a
start or refit that finds the index of the catalog it is about to fit maps that file instead:
no text is read, counted or encoded, and every process serving that catalog on the machine
shares the file's pages. An index of another catalog version is never used.

The serving ranker (:mod:`matcher.live.rankers`) is followed the same way: the id of the store's newest
ranker activation is read with the catalog version (one statement); when it moves, the matcher swaps
its ranker (no refit, no restart), so every replica serves a newly activated or rolled-back version
from its next request on.

Catalog vectors and the vectors encoded while fitting go to the store's vector cache; the
vectors of request texts (a municipality's need) go to a bounded in-process
cache, and the service keeps each one it served with the recommendation's audit entry
(:mod:`matcher.store.request_vectors`, purged with the request texts after their retention period).
A request text not in the in-process cache is looked up there before it is encoded
(:class:`StoredRequestVectors`): a ``matcher train`` process reads the vectors the servers computed
instead of encoding every request again, and a replica those another one served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np

from matcher.engine.batching import MicroBatcher
from matcher.engine.embedding import CachedEmbedder, Embedder, Role
from matcher.engine.index import DOMAIN_TEXT, CatalogIndex
from matcher.engine.index_file import code_key, load_index, save_index
from matcher.engine.matcher import Matcher, Weights
from matcher.engine.ranker import HAND, Ranker
from matcher.errors import NotFittedError
from matcher.live.rankers import ranker_of
from matcher.settings import places_file
from matcher.store import Store
from matcher.text.gazetteer import Gazetteer, default_gazetteer

__all__ = ["LRUVectorCache", "StoreBackedEmbedder", "StoredRequestVectors", "LiveMatcher"]

log = logging.getLogger(__name__)


class LRUVectorCache:
    """A bounded in-process vector cache (least recently used entries go first)."""

    def __init__(self, size: int = 2048):
        self.size = size
        self._data: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        out = {}
        with self._lock:
            for h in hashes:
                v = self._data.get((model_id, h))
                if v is not None:
                    self._data.move_to_end((model_id, h))
                    out[h] = v
        return out

    def put_many(self, model_id: str, items: dict[str, np.ndarray]) -> None:
        with self._lock:
            for h, v in items.items():
                self._data[(model_id, h)] = v
                self._data.move_to_end((model_id, h))
            while len(self._data) > self.size:
                self._data.popitem(last=False)


class StoredRequestVectors:
    """The request texts' cache: an :class:`LRUVectorCache` in front of the request vectors the store keeps
    with the recommendations served (:class:`~matcher.store.RequestVectors`), read when the LRU misses.
    Vectors encoded here go to the LRU only: the store keeps a request's vector with its audit entry, in
    that transaction (:meth:`~matcher.store.Store.record_recommendation`), not every text ever encoded.
    ``stored_hits`` counts the vectors read from the store."""

    def __init__(self, store: Store, size: int = 2048):
        self.store = store
        self.lru = LRUVectorCache(size)
        self.stored_hits = 0

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        out = self.lru.get_many(model_id, hashes)
        missing = [h for h in hashes if h not in out]
        if missing:
            stored = self.store.request_vectors.get_many(model_id, missing)
            if stored:
                self.stored_hits += len(stored)
                self.lru.put_many(model_id, stored)
                out.update(stored)
        return out

    def put_many(self, model_id: str, items: dict[str, np.ndarray]) -> None:
        self.lru.put_many(model_id, items)


class StoreBackedEmbedder:
    """An embedder whose catalog vectors persist in the store's vector cache, and whose request vectors are
    read from those the store keeps with the recommendations served.

    Passages, and everything encoded inside :meth:`persisting` (a fit: profile
    texts, passages, the engine's fixed reference texts), are cached in the
    store; other ``query`` texts in an :class:`LRUVectorCache`, in front of the request vectors stored with
    the recommendations (:class:`StoredRequestVectors`: a stored one is read, not encoded). Request texts of
    concurrent requests are encoded together (:class:`~matcher.engine.batching.MicroBatcher`,
    ``batch_window`` seconds of collection while requests come together; None: one at a time).
    ``calls``/``encoded`` count what reached the model.
    """

    def __init__(self, embedder: Embedder, store: Store, request_cache_size: int = 2048,
                 batch_window: float | None = 0.002):
        self.embedder = embedder
        self.store = store
        self.model_id = embedder.model_id
        self.dim = embedder.dim
        self._catalog = CachedEmbedder(embedder, store.vectors)
        self.batcher = MicroBatcher(embedder, window=batch_window) if batch_window is not None else None
        self.request_cache = StoredRequestVectors(store, request_cache_size)
        self._requests = CachedEmbedder(self.batcher or embedder, self.request_cache)
        self._local = threading.local()

    @contextmanager
    def persisting(self) -> Iterator[None]:
        """Within this block (in this thread) every vector encoded is stored."""
        previous = getattr(self._local, "persist", False)
        self._local.persist = True
        try:
            yield
        finally:
            self._local.persist = previous

    @contextmanager
    def in_background(self, batch: int = 8, pause: float = 0.0, yield_to: Callable[[], bool] | None = None,
                      max_wait: float = 0.25) -> Iterator[None]:
        """Within this block (in this thread) request texts not yet cached are encoded ``batch`` at a
        time. Before each batch the thread waits while ``yield_to()`` is true (interactive requests are
        being served), at most ``max_wait`` seconds a batch so that the job still advances under constant
        load; after each batch it sleeps ``pause`` × the time the batch took. Waiting and sleeping release
        the interpreter lock: a batch job's encoding leaves the CPU to interactive requests."""
        previous = getattr(self._local, "background", None)
        self._local.background = (max(1, int(batch)), max(0.0, float(pause)), yield_to, max(0.0, float(max_wait)))
        try:
            yield
        finally:
            self._local.background = previous

    def encode(self, texts: Sequence[str], role: Role) -> np.ndarray:
        if role == "passage" or getattr(self._local, "persist", False):
            return self._catalog.encode(texts, role)
        background = getattr(self._local, "background", None)
        if background is not None:
            self._encode_paced(texts, role, *background)
        return self._requests.encode(texts, role)

    def _encode_paced(self, texts: Sequence[str], role: Role, batch: int, pause: float,
                      yield_to: Callable[[], bool] | None, max_wait: float) -> None:
        """Put the vectors of ``texts`` into the request cache, ``batch`` texts at a time, giving way."""
        cached = self.cached(texts, role)
        missing = list(dict.fromkeys(t for t in texts if t not in cached))
        for start in range(0, len(missing), batch):
            if yield_to is not None:
                deadline = time.monotonic() + max_wait
                while yield_to() and time.monotonic() < deadline:
                    time.sleep(0.002)
            began = time.perf_counter()
            self._requests.encode(missing[start : start + batch], role)
            if pause > 0:
                time.sleep(pause * (time.perf_counter() - began))

    def cached(self, texts: Sequence[str], role: Role) -> dict[str, np.ndarray]:
        """The vectors of ``texts`` that :meth:`encode` would find cached, by text (nothing is encoded)."""
        target = self._catalog if role == "passage" or getattr(self._local, "persist", False) else self._requests
        keys = {target.key(t, role): t for t in texts}
        return {keys[h]: v for h, v in target.cache.get_many(self.model_id, list(keys)).items()}

    @property
    def calls(self) -> int:
        return self._catalog.calls + self._requests.calls

    @property
    def encoded(self) -> int:
        """Texts encoded by the model so far (catalog and requests)."""
        return self._catalog.encoded + self._requests.encoded

    @property
    def catalog_encoded(self) -> int:
        """Catalog texts encoded so far (0 after a restart on a store that holds all vectors)."""
        return self._catalog.encoded


class LiveMatcher:
    """The fitted matcher of the store's current catalog.

    Follows the estimator contract: ``__init__`` stores collaborators, ``fit``
    loads the catalog and fits, learned state ends in ``_``.

    ``refit_wait`` bounds how long :meth:`current` waits for a refit it
    started; a longer refit finishes in the background while the previous
    matcher keeps serving. ``index_dir``: where fitted indexes are kept and
    looked for (see the module docstring; None: every start fits); writing
    one deletes the other index files there (an index holds the catalog's
    texts: an erased entity must not outlive its catalog version).

    Example:
        >>> live = LiveMatcher(store, StoreBackedEmbedder(make_embedder("use"), store)).fit()
        >>> version, matcher = live.current()
    """

    def __init__(self, store: Store, embedder: StoreBackedEmbedder, weights: Weights | None = None,
                 gazetteer: Gazetteer | None = None, refit_wait: float = 5.0, index_dir: Path | None = None):
        self.store = store
        self.embedder = embedder
        self.weights = weights
        self.gazetteer = gazetteer
        self.refit_wait = refit_wait
        self.index_dir = index_dir

    def fit(self, progress: Callable[[str, int, int], None] | None = None) -> LiveMatcher:
        """Load the catalog from the store and fit (encoding only texts without stored vectors).

        ``progress(stage, done, total)`` is told where the fit is: ``"catalog"`` (reading the
        catalog and its stored vectors), ``"encoding"`` (``done`` of ``total`` texts that had no
        stored vector; 0 of 0 on a full store), ``"indexing"`` (all encoded). It is called in the
        fitting thread; the service reads it from request threads while the first fit runs.
        """
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._refit_thread: threading.Thread | None = None
        self._snapshot_at = float("-inf")   # a current() in another thread may look before the fit ends
        self.refits_ = 0
        self.last_error_: Exception | None = None
        self._ranker_lock = threading.Lock()
        self.ranker_: Ranker = HAND
        self.activation_ = -1
        self._follow_ranker(self.store.serving_state()[1])
        self._fit_now(progress)
        return self

    def _fit_now(self, progress: Callable[[str, int, int], None] | None = None) -> None:
        read_at = time.monotonic()
        if progress is not None:
            progress("catalog", 0, 0)
        matcher = Matcher(self.embedder, gazetteer=self.gazetteer, weights=self.weights, ranker=self.ranker_)
        stamp = self.store.catalog_stamp() if self._persists() else None
        preloaded, self._preloaded = getattr(self, "_preloaded", None), None
        if stamp is None:
            index = None
        elif preloaded is not None and preloaded[0] == stamp:   # read by preload() for this very catalog
            index = preloaded[1]
        else:
            index = self._read_index(stamp)
        if index is not None:
            version = stamp[0]
            matcher.use_index(index)
            self.loaded_from_file_ = True
        else:
            version, entities = self.store.snapshot()
            previous = self.state_[1] if hasattr(self, "state_") else None
            on_progress = None if progress is None else \
                (lambda done, total: progress("encoding" if done < total else "indexing", done, total))
            with self.embedder.persisting():
                # a refit takes over what the serving matcher computed for unchanged texts
                matcher.fit(entities, reuse=previous, on_progress=on_progress)
            self.loaded_from_file_ = False
        self.state_ = (version, matcher)   # one assignment: readers never see a version with another matcher
        with self._ranker_lock:   # the ranker may have moved on while this fit ran
            if matcher.ranker_ is not self.ranker_:
                matcher.use_ranker(self.ranker_)
        self._snapshot_at = read_at
        self.fit_seconds_ = time.monotonic() - read_at
        log.info("catalog version %s %s: %d entities in %.2f s", version,
                 "read from its index file" if index is not None else "fitted", len(matcher.index_), self.fit_seconds_)
        if index is None and stamp is not None and stamp[0] == version:   # (else a write came between the two
            # reads: the next fit saves) written in the background: the fitted catalog serves meanwhile
            self._writer = threading.Thread(target=self._write_index, args=(matcher.index_, stamp),
                                            name="matcher-index-write", daemon=True)
            self._writer.start()

    def preload(self) -> None:
        """Map the index file of the store's current catalog now, for the next :meth:`fit` to take (if the
        catalog has not moved on meanwhile). A start calls it in a thread while the model loads: reading
        the file and loading the model then overlap. Nothing happens without an index directory; an error
        is left for the fit to meet."""
        if not self._persists():
            return
        try:
            stamp = self.store.catalog_stamp()
            self._preloaded = (stamp, self._read_index(stamp))
        except Exception:  # the store is unreachable, say: the fit reads again and reports it
            log.debug("preloading the index failed; the fit reads it again", exc_info=True)

    def wait_for_index_file(self, timeout: float | None = None) -> None:
        """Wait until the index file of the last fit is written (tests, and a clean shutdown)."""
        writer = getattr(self, "_writer", None)
        if writer is not None:
            writer.join(timeout)

    # ------------------------------------------------------------------ the index file
    def _persists(self) -> bool:
        # a gazetteer or domain text of the caller's own has no key: such matchers fit at every start
        return self.index_dir is not None and self.gazetteer is None

    def _index_meta(self, stamp: tuple[int, str]) -> dict:
        return {"catalog_version": stamp[0], "catalog_stamp": stamp[1], "model_id": self.embedder.model_id,
                "code": code_key(), "places": _file_hash(str(places_file())),
                "domain_text": hashlib.sha1(DOMAIN_TEXT.encode()).hexdigest()[:16]}

    def _index_path(self, meta: dict) -> Path:
        name = hashlib.sha1(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:20]
        return Path(self.index_dir) / f"catalog-{name}.idx"

    def _read_index(self, stamp: tuple[int, str]) -> CatalogIndex | None:
        meta = self._index_meta(stamp)
        try:
            return load_index(self._index_path(meta), meta, default_gazetteer())
        except Exception:  # a damaged or foreign file: fit instead (and overwrite it)
            log.exception("index file for catalog version %s unreadable; fitting instead", stamp[0])
            return None

    def _write_index(self, index: CatalogIndex, stamp: tuple[int, str]) -> None:
        meta = self._index_meta(stamp)
        try:
            with self._write_lock:
                if self.state_[0] != stamp[0]:
                    return   # a newer catalog is fitted: its file is the one to keep
                path = save_index(index, self._index_path(meta), meta)
                for stale in path.parent.glob("catalog-*.idx"):
                    if stale != path:   # a process that maps it keeps its pages until it lets go
                        stale.unlink(missing_ok=True)
        except Exception:  # no room or no right to write: the next start fits again
            log.exception("could not write the index of catalog version %s", stamp[0])

    def _check(self) -> None:
        if not hasattr(self, "state_"):
            raise NotFittedError("LiveMatcher is not fitted: call fit() first")

    @property
    def version_(self) -> int:
        self._check()
        return self.state_[0]

    @property
    def matcher_(self) -> Matcher:
        self._check()
        return self.state_[1]

    def current(self) -> tuple[int, Matcher]:
        """The catalog version and the matcher fitted on it, refitting first if the store has moved on.

        Raises:
            StoreError: the store cannot be reached to check the version.
        """
        self._check()
        checked_at = time.monotonic()
        catalog, activation = self.store.serving_state()
        if activation != self.activation_:
            self._follow_ranker(activation)
        if catalog != self.state_[0]:
            self._refresh(checked_at)
        return self.state_

    def _follow_ranker(self, activation: int) -> None:
        """Serve the ranker of the store's activation ``activation`` (a stored version that cannot be read,
        e.g. one trained for other features, is logged and the previous ranker keeps serving)."""
        with self._ranker_lock:
            if activation == self.activation_:
                return
            active = self.store.rankers.active()
            try:
                ranker = ranker_of(self.store, active.version)
            except Exception as exc:  # keep serving; the next activation is tried again
                self.last_error_ = exc
                log.exception("ranker %s cannot be read; still serving %s", active.version, self.ranker_.version)
                ranker = self.ranker_
            self.ranker_ = ranker
            self.activation_ = active.id
            if hasattr(self, "state_") and self.state_[1].ranker_ is not ranker:
                self.state_[1].use_ranker(ranker)
            log.info("ranker %s serves (activation %s)", ranker.version, active.id)

    def _refresh(self, checked_at: float) -> None:
        """Wait (at most ``refit_wait``) for a fit whose snapshot was read after ``checked_at``."""
        deadline = checked_at + self.refit_wait
        while self._snapshot_at < checked_at:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with self._lock:
                if self._snapshot_at >= checked_at:
                    return
                if self._refit_thread is None or not self._refit_thread.is_alive():
                    self._refit_thread = threading.Thread(target=self._refit_in_background, name="matcher-refit",
                                                          daemon=True)
                    self._refit_thread.start()
                thread = self._refit_thread
            thread.join(remaining)
            if not thread.is_alive() and self.last_error_ is not None:
                return  # serve the previous catalog; the next request tries again

    def _refit_in_background(self) -> None:
        try:
            self._fit_now()
            self.refits_ += 1
            self.last_error_ = None
        except Exception as exc:  # keep serving the previous catalog; the next request retries
            self.last_error_ = exc
            log.exception("refit failed; still serving catalog version %s", self.state_[0])


@cache
def _file_hash(path: str) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()[:16]
