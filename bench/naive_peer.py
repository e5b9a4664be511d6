"""Row 4 (quality): the naive peer against the engine on the shared dev set.

The peer is what most users would write: the same default embedder, every profile encoded as
one text (``profile_text``), the need (or the asking entity's profile) encoded as the query, and
``sentence_transformers.util.semantic_search`` for the top 10 — no filters, no fusion. A second
line gives it the one filter anyone would add (the task's kind, never the asker itself).
Ours is ``matcher evaluate`` (same data, same reference date for events, same metric code).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from matcher.engine.embedding import CachedEmbedder, SQLiteVectorCache, make_embedder
from matcher.engine.matcher import TASK_KIND, Matcher
from matcher.evaluation.judged import evaluate, load_dataset, matcher_ranker, reference_date
from matcher.text.profile import profile_text

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "eval" / "dev"
CACHE = ROOT / "var" / "bench" / "dev-vectors.sqlite"

__all__ = ["dev_quality"]


def dev_quality(model: str, data: Path = DEV) -> dict:
    """nDCG@10 (overall and per task) of ours, the naive peer, and the peer with the kind filter."""
    import torch
    from sentence_transformers.util import semantic_search

    ds = load_dataset(data)
    embedder = CachedEmbedder(make_embedder(model), SQLiteVectorCache(CACHE))
    as_of = reference_date(ds)
    ours = evaluate(matcher_ranker(Matcher(embedder).fit(ds.catalog), as_of=as_of), ds)

    ids = [e.id for e in ds.catalog]
    by_id = {e.id: e for e in ds.catalog}
    corpus = torch.from_numpy(embedder.encode([profile_text(e) for e in ds.catalog], "passage"))
    kinds = np.array([e.kind for e in ds.catalog])

    def query_vec(q) -> torch.Tensor:
        text = q.text or profile_text(by_id[q.from_])
        return torch.from_numpy(embedder.encode([text], "query"))

    def naive(q) -> list[tuple[str, float]]:
        hits = semantic_search(query_vec(q), corpus, top_k=10)[0]
        return [(ids[h["corpus_id"]], float(h["score"])) for h in hits]

    def naive_kind(q) -> list[tuple[str, float]]:
        keep = np.flatnonzero((kinds == TASK_KIND[q.task]) & (np.array(ids) != (q.from_ or "")))
        hits = semantic_search(query_vec(q), corpus[keep], top_k=10)[0]
        return [(ids[keep[h["corpus_id"]]], float(h["score"])) for h in hits]

    def summary(report) -> dict:
        return {"ndcg@10": round(report.overall["ndcg@10"], 3),
                "per_task": {t: round(v["ndcg@10"], 3) for t, v in report.per_task.items()}}

    return {"queries": len(ds.queries), "catalog": len(ds.catalog), "model_id": embedder.model_id,
            "ours": summary(ours), "naive": summary(evaluate(naive, ds)),
            "naive_kind_filter": summary(evaluate(naive_kind, ds)), "texts_encoded_now": embedder.encoded}
