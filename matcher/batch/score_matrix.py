"""The engine's advisor scores for many requests at once: a requests × advisors matrix.

``Matcher.score`` answers one query over the whole catalog. A batch of
thousands of municipality requests needs the same fused score for every
(request, advisor) pair, so this module computes it with matrix products:

* all request texts are encoded in one call (the embedder's cache answers
  repeats), then dense similarity to profiles and best passages is one product
  per embedder part, z-scored per request over the advisors exactly as the
  engine does;
* the TF-IDF views of all texts are built in one transform and multiplied with
  the advisors' rows;
* the structured signals (proximity, region served, languages, countries) come
  from the engine's own per-query functions, computed once per distinct place,
  language set or text and shared by the requests that have it.

The result equals ``Matcher.score(query)`` restricted to the advisors, up to
float rounding (tested on the fixtures), and explains any pair with the
engine's :func:`~matcher.engine.explain.explain`.
"""

from __future__ import annotations

import datetime as dt
import mmap
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from matcher.engine.explain import Explanation, explain
from matcher.text.intent import parse_intent
from matcher.engine.matcher import SIGNALS
from matcher.domain.schema import Query

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Matcher

__all__ = ["RequestScores", "score_requests"]

CHUNK = 256  # requests per block of the matrix products (bounds memory, paces progress)
Progress = Callable[[float, str], None]


def _zscore_rows(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row-wise :func:`~matcher.engine.similarity.zscore` over the masked entries (float32, std 0 → zeros)."""
    x = x.astype(np.float32, copy=False)
    out = np.zeros_like(x)
    full = mask.all(axis=1)
    if full.any():  # the usual case: every advisor is a candidate
        mu = x[full].mean(axis=1, keepdims=True)
        sd = x[full].std(axis=1, keepdims=True)
        ok = sd[:, 0] >= 1e-9
        rows = np.flatnonzero(full)[ok]
        out[rows] = (x[rows] - mu[ok]) / sd[ok]
    for r in np.flatnonzero(~full):
        ref = x[r, mask[r]]
        if ref.size == 0:
            continue
        mu, sd = float(ref.mean()), float(ref.std())
        if sd >= 1e-9:
            out[r] = (x[r] - mu) / sd
    return out


class _RowView:
    """Row ``r`` of a requests × advisors matrix, indexed by catalog index (what
    :func:`~matcher.engine.explain.explain` reads from the engine's full-length arrays)."""

    def __init__(self, matrix: np.ndarray, r: int, column: dict[int, int]):
        self.matrix, self.r, self.column = matrix, r, column

    def __getitem__(self, i: int) -> Any:
        return self.matrix[self.r, self.column[int(i)]]


@dataclass
class RequestScores:
    """Fused scores of requests (rows) × advisors (columns, catalog indices in ``advisors``).

    ``total`` is ``-inf`` outside a request's candidates (as in ``Matcher.score``);
    ``contrib`` holds each signal's weighted contribution.
    """

    matcher: Matcher
    queries: list[Query]
    advisors: np.ndarray
    total: np.ndarray
    contrib: dict[str, np.ndarray]
    raw: dict[str, np.ndarray]
    distance_km: np.ndarray
    contexts: list[dict[str, Any]]

    @property
    def column(self) -> dict[int, int]:
        """Catalog index → column."""
        if not hasattr(self, "_column"):
            self._column = {int(i): c for c, i in enumerate(self.advisors)}
        return self._column

    def explain(self, r: int, column: int, lang: str = "de") -> Explanation:
        """The engine's explanation of advisor ``column`` for request ``r``."""
        col = self.column
        views = {s: _RowView(v, r, col) for s, v in self.contrib.items()}
        ctx = dict(self.contexts[r])
        ctx["raw"] = {s: _RowView(v, r, col) for s, v in self.raw.items()}
        ctx["distance_km"] = _RowView(self.distance_km, r, col)
        return explain(self.matcher, int(self.advisors[column]), views, ctx, lang=lang)


def score_requests(matcher: Matcher, queries: Sequence[Query], as_of: dt.date | None = None,
                   progress: Progress | None = None, workers: int = 1) -> RequestScores:
    """Score every advisor of the catalog for every query (task ``advisors``).

    Args:
        matcher: a fitted matcher.
        queries: advisor queries (``task="advisors"``).
        as_of: reference date (as in ``Matcher.score``; default: each query's ``as_of`` or today).
        progress: called with (fraction, German stage label): encoding 0–0.3, scoring 0.3–1
            (reading the requests — intent, places, countries, TF-IDF — and the similarity matrices).
        workers: processes for the scoring step. Reading a request is the engine's per-text
            work (regular expressions, stemming), so blocks of requests are scored in forked
            processes when ``workers > 1``. Use it from a command line or a job process, not
            inside a multi-threaded server worker (fork copies only the calling thread).

    Raises:
        UnknownEntityError / ValidationError: as ``Matcher.score`` for a bad ``from``.
    """
    report = progress or (lambda fraction, stage: None)
    m = matcher
    m._check()
    queries = list(queries)
    adv = np.flatnonzero(m.kind_ == "advisor")
    for q in queries:  # fail before any work on a bad asker
        m._check_asker(q, m.entity(q.from_) if q.from_ else None)

    report(0.0, "Texte kodieren")
    texts = [(r, q.text) for r, q in enumerate(queries) if q.text]
    vectors = np.zeros((len(queries), m.embedder.dim), dtype=np.float32)
    for start in range(0, len(texts), CHUNK):
        block = texts[start : start + CHUNK]
        vectors[[r for r, _ in block]] = m.embedder.encode([t for _, t in block], "query")
        report(0.3 * min(start + CHUNK, len(texts)) / max(len(texts), 1), "Texte kodieren")

    report(0.3, "Anfragen bewerten")
    _advisor_columns(m, adv)  # once, before any block (forked workers inherit it)
    blocks = [(i, queries[i : i + CHUNK], vectors[i : i + CHUNK], as_of) for i in range(0, len(queries), CHUNK)]
    parallel = workers > 1 and len(blocks) >= 2
    signals, mask, distance = _outputs(len(queries), adv.size, shared=parallel)
    contexts: list[dict[str, Any]] = []
    for done, block_contexts in enumerate(_run_blocks(m, blocks, workers if parallel else 1, (signals, mask, distance)), 1):
        contexts.extend(block_contexts)
        report(0.3 + 0.7 * done / len(blocks), "Anfragen bewerten")
    raw = {s: signals[k] for k, s in enumerate(SIGNALS)}
    contrib = {s: np.float32(getattr(m.weights_, s)) * raw[s] for s in SIGNALS}
    total = np.sum([contrib[s] for s in SIGNALS], axis=0).astype(np.float64)
    total[~mask] = -np.inf
    report(1.0, "Anfragen bewerten")
    return RequestScores(m, queries, adv, total, contrib, raw, distance, contexts)


_FORKED: tuple | None = None  # (matcher, outputs) a forked worker inherits


def _outputs(n_req: int, n_adv: int, shared: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The raw signals (signals × requests × advisors), candidate mask and distances to fill. Shared
    with forked workers (an anonymous shared mapping made before the fork), so that they write their
    rows in place instead of sending a hundred megabytes of arrays back through a pipe."""
    shapes = [((len(SIGNALS), n_req, n_adv), np.float32), ((n_req, n_adv), np.bool_), ((n_req, n_adv), np.float64)]
    if not shared:
        return tuple(np.zeros(shape, dtype=dtype) for shape, dtype in shapes)  # type: ignore[return-value]
    sizes = [int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in shapes]
    buffer = mmap.mmap(-1, max(1, sum(sizes)))
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return tuple(np.frombuffer(buffer, dtype=dtype, count=int(np.prod(shape)), offset=int(off)).reshape(shape)
                 for (shape, dtype), off in zip(shapes, offsets))  # type: ignore[return-value]


def _score_into(m: Matcher, outputs: tuple, start: int, queries: list[Query], vectors: np.ndarray,
                as_of: dt.date | None) -> list[dict[str, Any]]:
    """Score one block and write its rows into ``outputs``; return its contexts."""
    signals, mask, distance = outputs
    raw, block_mask, block_distance, contexts = _score_block(m, queries, vectors, as_of)
    rows = slice(start, start + len(queries))
    for k, s in enumerate(SIGNALS):
        signals[k, rows] = raw[s]
    mask[rows], distance[rows] = block_mask, block_distance
    return contexts


def _score_forked(block: tuple) -> list[dict[str, Any]]:
    # the workers already use every core: BLAS threads of their own would only compete
    with threadpool_limits(limits=1, user_api="blas"):
        return _score_into(_FORKED[0], _FORKED[1], *block)


def _run_blocks(m: Matcher, blocks: list[tuple], workers: int, outputs: tuple):
    """Score blocks of requests into ``outputs``, in this process or in ``workers`` forked ones;
    yields each block's contexts in order."""
    if workers <= 1:
        for block in blocks:
            yield _score_into(m, outputs, *block)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _FORKED
    _FORKED = (m, outputs)
    try:
        with ProcessPoolExecutor(min(workers, len(blocks)), mp_context=multiprocessing.get_context("fork")) as pool:
            yield from pool.map(_score_forked, blocks)
    finally:
        _FORKED = None


def _score_block(m: Matcher, queries: list[Query], vectors: np.ndarray, as_of: dt.date | None) -> tuple:
    """(raw signals, candidate mask, distances, contexts) for one block of requests; ``vectors`` are
    the need texts' vectors (rows of queries without text are ignored). The caller fuses the signals
    (a forked worker returns only what cannot be recomputed cheaply)."""
    w = m.weights_
    n_req = len(queries)
    adv = np.flatnonzero(m.kind_ == "advisor")
    n_adv = adv.size
    contexts: list[dict[str, Any]] = []
    mask = np.ones((n_req, n_adv), dtype=bool)
    raw = {s: np.zeros((n_req, n_adv), dtype=np.float32) for s in SIGNALS}
    distance = np.full((n_req, n_adv), np.nan)
    place_cache: dict[Any, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    distances: dict[Any, np.ndarray] = {}

    served: dict[Any, np.ndarray] = {}

    def distance_km(place: Any) -> np.ndarray:  # many requests share a town
        if place not in distances:
            distances[place] = m._distance_km(place)
        return distances[place]

    def served_at(place: Any) -> np.ndarray:
        if place not in served:
            served[place] = m._served_at(place)
        return served[place]

    language_cache: dict[tuple[str, ...], np.ndarray] = {}
    capacity = m.has_capacity_[adv]
    text_vectors = {r: vectors[r] for r, q in enumerate(queries) if q.text}
    for r, q in enumerate(queries):
        q_as_of = as_of or q.as_of or dt.date.today()
        asker = m.entity(q.from_) if q.from_ else None
        intent = parse_intent(q.text, q_as_of)
        if asker is not None and m.kind_[m.index_[asker.id]] == "advisor":
            mask[r, np.flatnonzero(adv == m.index_[asker.id])] = False
        if q.require_languages and q.languages:
            mask[r] &= np.array([set(q.languages) <= m.languages_[i] for i in adv])
        languages = tuple(dict.fromkeys([*q.languages, *intent.languages]))
        origin = m.gazetteer_.locate(q.city, q.lat, q.lon)
        if origin is None and asker is not None:
            origin = m.places_[m.index_[asker.id]]
        mentioned = m.gazetteer_.mentions(q.text)
        key = (origin, tuple(mentioned), intent.near)
        if key not in place_cache:
            prox, dist = m._proximity(origin, mentioned, intent, distance_km)
            place_cache[key] = (prox[adv], dist[adv], m._region_served("advisors", origin, mentioned, served_at)[adv])
        raw["proximity"][r], distance[r], raw["region"][r] = place_cache[key]
        if languages not in language_cache:
            language_cache[languages] = m._language(languages)[adv]
        raw["language"][r] = language_cache[languages]
        country, countries = m._country(q, asker)
        raw["country"][r] = country[adv]
        raw["type_fit"][r] = m._type_fit(q, asker, intent)[adv]
        raw["time_fit"][r] = m._time_fit(q.task, intent)[adv]
        raw["capacity"][r] = capacity if q.task == "advisors" else 0.0
        shares = []
        if q.text:
            shares.append(1.0 - (w.from_share if asker is not None else 0.0))
        if asker is not None:
            shares.append(w.from_share if q.text else 1.0)
        vecs = [*([text_vectors[r]] if q.text else []), *([m.profile_vecs_[m.index_[asker.id]]] if asker else [])]
        contexts.append({"query": q, "asker": asker, "intent": intent, "languages": languages, "origin": origin,
                         "mentioned": mentioned, "as_of": q_as_of, "countries": countries, "mask": None,
                         "shares": shares, "main_vec": vecs[int(np.argmax(shares))],
                         "need": q.text or (asker.description if asker is not None else "")})
    raw["dense"] = _dense(m, adv, queries, contexts, text_vectors, mask)
    raw["lexical"] = _lexical(m, adv, queries, contexts, mask)
    raw["domain"] = _zscore_rows(np.broadcast_to(m.domain_[adv], (n_req, n_adv)), mask)
    return raw, mask, distance, contexts


def _dense(m: Matcher, adv: np.ndarray, queries: list[Query], contexts: list[dict], text_vectors: dict[int, np.ndarray],
           mask: np.ndarray) -> np.ndarray:
    """The engine's dense signal for every (request, advisor): whole profile and best passage,
    per embedder part, z-scored per request, need text and asker's profile mixed by their shares."""
    w = m.weights_
    n_req, n_adv = len(queries), adv.size
    starts = m.passage_starts_[adv]
    ends = np.append(m.passage_starts_[1:], len(m.passage_texts_))[adv]
    passage_rows = m.passage_map_[np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])]
    local_starts = np.concatenate([[0], np.cumsum(ends - starts)[:-1]])
    profiles = m.profile_vecs_[adv]
    unique_rows, inverse = np.unique(passage_rows, return_inverse=True)
    passages = m.passage_unique_vecs_[unique_rows]

    def similarity(vecs: np.ndarray, rows: np.ndarray) -> np.ndarray:
        out = np.zeros((rows.size, n_adv), dtype=np.float32)
        for sl, part_weight in m.part_slices_:
            prof = vecs[:, sl] @ profiles[:, sl].T
            psim = (vecs[:, sl] @ passages[:, sl].T)[:, inverse]
            pmax = np.maximum.reduceat(psim, local_starts, axis=1)
            out += part_weight * _zscore_rows((1 - w.passage_share) * prof + w.passage_share * pmax, mask[rows])
        return out

    dense = np.zeros((n_req, n_adv), dtype=np.float32)
    with_text = np.array(sorted(text_vectors), dtype=np.int64)
    with_asker = np.array([r for r, c in enumerate(contexts) if c["asker"] is not None], dtype=np.int64)
    for start in range(0, with_text.size, CHUNK):
        rows = with_text[start : start + CHUNK]
        share = np.array([contexts[r]["shares"][0] for r in rows], dtype=np.float32)[:, None]
        dense[rows] += share * similarity(np.vstack([text_vectors[r] for r in rows]), rows)
    for start in range(0, with_asker.size, CHUNK):
        rows = with_asker[start : start + CHUNK]
        share = np.array([contexts[r]["shares"][-1] for r in rows], dtype=np.float32)[:, None]
        vecs = m.profile_vecs_[[m.index_[contexts[r]["asker"].id] for r in rows]]
        dense[rows] += share * similarity(vecs, rows)
    return dense


_ADVISOR_COLUMNS: "weakref.WeakKeyDictionary[Matcher, tuple]" = weakref.WeakKeyDictionary()


def _advisor_columns(m: Matcher, adv: np.ndarray) -> tuple:
    """The advisors' TF-IDF rows as (terms × advisors) CSR matrices, built once per matcher and pool
    (every block multiplies with them; slicing and transposing per block cost as much as the product)."""
    key = adv.tobytes()
    cached = _ADVISOR_COLUMNS.get(m)
    if cached is None or cached[0] != key:
        lex = m.lexical_
        word = lex.word_matrix_[adv].T.tocsr() if lex.word_matrix_ is not None else None
        cached = (key, lex.char_matrix_[adv].T.tocsr(), word)
        _ADVISOR_COLUMNS[m] = cached
    return cached[1], cached[2]


class _NeedVectors:
    """One request's (character, word) TF-IDF rows of the batch matrices, sliced only when an
    explanation asks (slicing 5,000 sparse rows up front cost more than the products)."""

    __slots__ = ("char", "word", "row")

    def __init__(self, char, word, row: int):
        self.char, self.word, self.row = char, word, row

    def __getitem__(self, view: int):
        matrix = self.char if view == 0 else self.word
        return None if matrix is None else matrix[self.row]


def _lexical(m: Matcher, adv: np.ndarray, queries: list[Query], contexts: list[dict], mask: np.ndarray) -> np.ndarray:
    """The engine's lexical signal (TF-IDF char and word views) for every pair, z-scored per request;
    each context gets its need's vectors (``need_vectors``), which the explanation reuses."""
    lex = m.lexical_
    rows = np.array([r for r, c in enumerate(contexts) if c["need"]], dtype=np.int64)
    out = np.zeros((len(queries), adv.size), dtype=np.float32)
    for c in contexts:
        c["need_vectors"] = None
    if rows.size == 0:
        return out
    batch = [contexts[r]["need"] for r in rows]
    char_t, word_t = _advisor_columns(m, adv)
    char_vecs = lex.char_.transform(batch)
    sim = lex.char_weight * (char_vecs @ char_t).toarray().astype(np.float32)
    word_vecs = lex.word_.transform(batch) if lex.word_ is not None else None
    if word_vecs is not None:
        sim += (1 - lex.char_weight) * (word_vecs @ word_t).toarray().astype(np.float32)
    for k, r in enumerate(rows):
        contexts[r]["need_vectors"] = _NeedVectors(char_vecs, word_vecs, k)
    out[rows] = _zscore_rows(sim, mask[rows])
    return out
