"""The engine's advisor scores for many requests at once: a requests × advisors matrix.

A batch of thousands of municipality requests needs the fused score of every (request,
advisor) pair. It goes through the engine's own scoring path, a block of requests at a time:
:meth:`Matcher.contexts <matcher.engine.matcher.Matcher.contexts>` reads the requests
(:func:`~matcher.engine.context.prepare_queries`), the signals of :mod:`matcher.engine.signals`
score the advisors' block (dense and lexical as one matrix product per block, structured signals
computed once per distinct place or language set), :func:`~matcher.engine.scoring.fuse` adds
them. One request alone gives what ``Matcher.score`` gives (tested), and any pair is explained by
the engine's :func:`~matcher.engine.explain.explain`.

Blocks can be scored in forked processes (``workers``), which write their rows into shared memory.
"""

from __future__ import annotations

import datetime as dt
import mmap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from matcher.domain.schema import Query
from matcher.engine.context import QueryContext, check_asker, prepare_queries
from matcher.engine.explain import Explanation, explain
from matcher.engine.index import KindBlock
from matcher.engine.matcher import Matcher
from matcher.engine.scoring import ScoreRow
from matcher.engine.signals import candidate_masks, distance_km, raw_signals
from matcher.engine.weights import SIGNALS

__all__ = ["RequestScores", "score_requests"]

CHUNK = 256  # requests per block of the matrix products (bounds memory, paces progress)
Progress = Callable[[float, str], None]


@dataclass
class RequestScores:
    """Fused scores of requests (rows) × advisors (columns: catalog rows ``advisors``, the advisors' block).

    ``total`` is ``-inf`` outside a request's candidates (as in ``Matcher.score``); ``contributions``
    holds each signal's weighted share, ``raw`` the signals, ``contexts`` the read requests.
    """

    matcher: Matcher
    queries: list[Query]
    block: KindBlock
    total: np.ndarray
    contributions: dict[str, np.ndarray]
    raw: dict[str, np.ndarray]
    distance_km: np.ndarray
    contexts: list[QueryContext]

    @property
    def advisors(self) -> np.ndarray:
        """The catalog rows of the columns."""
        return np.arange(self.block.rows.start, self.block.rows.stop)

    def explain(self, r: int, column: int, lang: str = "de", content_fit: bool | None = None) -> Explanation:
        """The engine's explanation of advisor ``column`` for request ``r`` (``content_fit``: see
        :func:`~matcher.engine.explain.explain`)."""
        i = self.block.rows.start + column
        row = ScoreRow({s: float(v[r, column]) for s, v in self.contributions.items()},
                       {s: float(v[r, column]) for s, v in self.raw.items()}, float(self.distance_km[r, column]))
        return explain(self.matcher.index_, i, row, self.contexts[r], lang=lang, content_fit=content_fit)


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
    index = m.index_
    queries = list(queries)
    for q in queries:  # fail before any work on a bad asker
        check_asker(q, index.entity(q.from_) if q.from_ else None)
    block = index.block("advisor")

    report(0.0, "Texte kodieren")
    texts = [(r, q.text) for r, q in enumerate(queries) if q.text]
    vectors = np.zeros((len(queries), m.embedder.dim), dtype=np.float32)
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        vectors[[r for r, _ in chunk]] = m.embedder.encode([t for _, t in chunk], "query")
        report(0.3 * min(start + CHUNK, len(texts)) / max(len(texts), 1), "Texte kodieren")

    report(0.3, "Anfragen bewerten")
    # the blocks share the signals' memos (distances per town, phrases, languages: a batch's requests repeat
    # them); a forked worker fills its own copy
    shared: dict = {}
    blocks = [(i, queries[i : i + CHUNK], vectors[i : i + CHUNK], as_of, shared)
              for i in range(0, len(queries), CHUNK)]
    parallel = workers > 1 and len(blocks) >= 2
    signals, mask, distance = _outputs(len(queries), block.size, shared=parallel)
    contexts: list[QueryContext] = []
    finished_blocks = _run_blocks(m, blocks, workers if parallel else 1, (signals, mask, distance))
    for done, block_contexts in enumerate(finished_blocks, 1):
        contexts.extend(block_contexts)
        report(0.3 + 0.7 * done / len(blocks), "Anfragen bewerten")
    raw = {s: signals[k] for k, s in enumerate(SIGNALS)}
    contributions, total = m.ranker_.fuse(raw, m.weights_, mask, tasks=[q.task for q in queries])
    report(1.0, "Anfragen bewerten")
    return RequestScores(m, queries, block, total, contributions, raw, distance, contexts)


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
                as_of: dt.date | None, shared: dict) -> list[QueryContext]:
    """Score one block and write its rows into ``outputs``; return its contexts."""
    signals, mask, distance = outputs
    raw, block_mask, block_distance, contexts = _score_block(m, queries, vectors, as_of, shared)
    rows = slice(start, start + len(queries))
    for k, s in enumerate(SIGNALS):
        signals[k, rows] = raw[s]
    mask[rows], distance[rows] = block_mask, block_distance
    return contexts


def _score_forked(block: tuple) -> list[QueryContext]:
    # the workers already use every core: BLAS threads of their own would only compete
    with threadpool_limits(limits=1, user_api="blas"):
        return _score_into(_FORKED[0], _FORKED[1], *block)


def _run_blocks(m: Matcher, blocks: list[tuple], workers: int, outputs: tuple):
    """Score blocks of requests into ``outputs``, in this process or in ``workers`` forked ones;
    yields each block's contexts in order."""
    if workers <= 1:
        # one BLAS thread here too: a block's products (256 requests × one kind) are small, and a second
        # thread woken for each mostly waits for a core (500 × 5,000 measured: the dense signal 1.7 → 0.4 s
        # of CPU, the whole matrix ~30 % faster, under load)
        with threadpool_limits(limits=1, user_api="blas"):
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


def _score_block(m: Matcher, queries: list[Query], vectors: np.ndarray, as_of: dt.date | None,
                 shared: dict) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[QueryContext]]:
    """(raw signals, candidate masks, distances, contexts) of one block of requests against the advisors,
    by the engine's own functions; ``vectors`` are the need texts' embeddings (rows without text ignored).
    The caller fuses the signals (a forked worker returns only what cannot be recomputed cheaply)."""
    index = m.index_
    block = index.block("advisor")
    contexts = prepare_queries(index, queries, m.embedder, m.weights_, as_of, text_vectors=vectors,
                               readings=shared.setdefault("readings", {}))
    masks = candidate_masks(index, contexts, block)
    raw = raw_signals(index, contexts, block, masks, m.weights_, shared)
    return raw, masks, distance_km(index, contexts, block, shared), contexts
