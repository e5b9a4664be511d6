"""Row 5: the batch jobs, run by ``bench/batch.py``'s own functions (owned by the batch work; called
here, not copied) on the default embedder with recombined vectors.

``bench_invitations`` (an invitation list over 50,000 generated organisations with quotas, MMR,
exposure control and a waitlist, beside the engine's plain top-N) and ``bench_assignment`` (500
advisors × 5,000 requests: score matrix, hard constraints, exact solver, beside the greedy loop)
print their own tables; this module captures them, keeps the text in the results and reads the
figures of the summary table from their rows.

Vectors: the generated catalogs and request texts recombine fixture parts, so their vectors are
derived as in :mod:`bench.catalog_vectors` (pool parts real, combinations derived) and put into
a cache of their own (``var/bench/batch-vectors.sqlite``) before the jobs run, under a model id
of their own (``recombined:…``), so nothing here mixes with vectors a real encoding produced.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from bench.catalog_vectors import RecombinedVectors
from matcher.engine.embedding import CachedEmbedder, Embedder, SQLiteVectorCache
from matcher.text.profile import split_sentences

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "var" / "bench" / "batch-vectors.sqlite"

__all__ = ["RecombinedModel", "run_batch"]


class RecombinedModel:
    """The real model under another id: texts it is asked for that are not prepared are encoded
    for real; the id keeps derived vectors apart from really encoded ones in every cache."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.model_id = "recombined:" + embedder.model_id
        self.dim = embedder.dim
        self.part_slices = getattr(embedder, "part_slices", None)
        self.parts = getattr(embedder, "parts", None)

    def encode(self, texts, role):
        return self.embedder.encode(texts, role)


def _table(text: str) -> dict[str, str]:
    """``| label | value |`` rows of a printed markdown table (bold marks removed)."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip().replace("**", "") for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[1] and not set(cells[1]) <= {"-"}:
            out[cells[0]] = cells[1]
    return out


def _pick(table: dict[str, str], prefix: str) -> float | None:
    for label, value in table.items():
        if label.startswith(prefix):
            try:
                return float(value.replace(",", ""))
            except ValueError:
                return None
    return None


def _prepare(vectors: RecombinedVectors, cache: SQLiteVectorCache, model_id: str, entities: list,
             request_texts: list[str]) -> dict:
    items, counts = vectors.vectors_for(entities)
    for text in dict.fromkeys(request_texts):   # a request recombines fixture sentences
        parts = [s for s in split_sentences(text) if s in vectors.pool]
        if parts:
            real = vectors._real(parts)
            items[CachedEmbedder.key(text, "query")] = vectors._mean([real[s] for s in parts])
    cache.put_many(model_id, items)
    return counts


def run_batch(real_embedder: Embedder, vectors: RecombinedVectors, n_orgs: int = 50_000, n_advisors: int = 500,
              n_requests: int = 5_000, repeat: int = 5) -> dict:
    """Run both batch benchmarks; return their figures and printed reports."""
    from bench import batch
    from bench.batch_data import advisor_instance, organisation_catalog

    model = RecombinedModel(real_embedder)
    cache = SQLiteVectorCache(CACHE)
    marker = CACHE.with_name(f"batch-vectors-{n_orgs}-{n_advisors}-{n_requests}.prepared")
    if not marker.exists():
        catalog = organisation_catalog(n_orgs)
        _prepare(vectors, cache, model.model_id, catalog, [])
        adv_catalog, requests = advisor_instance(n_advisors, n_requests)
        _prepare(vectors, cache, model.model_id, adv_catalog, [r.query().text for r in requests])
        marker.write_text("prepared\n")
    embedder = CachedEmbedder(model, cache)
    out: dict = {"model_id": model.model_id}
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        batch.bench_invitations(embedder, n_orgs, 40, repeat)
    inv = buf.getvalue()
    t = _table(inv)
    out["invitations"] = {"organisations": n_orgs, "list_size": 40,
                          "seconds": _pick(t, "`invitation_list`, ≥"),
                          "baseline_rank_seconds": _pick(t, "baseline: engine top-"),
                          "scores_only_seconds": _pick(t, "engine scores only"),
                          "constraints": (re.search(r"^constraints: (.*?);", inv, re.M) or [None, None])[1],
                          "report": inv}
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        batch.bench_assignment(embedder, n_advisors, n_requests, False)
    asg = buf.getvalue()
    t = _table(asg)
    served = re.search(r"total score: optimal ([\d,.\-]+) / greedy ([\d,.\-]+) \(([+\-\d.]+) %", asg)
    out["assignment"] = {"advisors": n_advisors, "requests": n_requests,
                         "seconds": _pick(t, "matrix + constraints + solver, 1 process"),
                         "seconds_workers2": _pick(t, "matrix + constraints + solver, `workers=2`"),
                         "solver_seconds": _pick(t, "exact solver"),
                         "greedy_seconds": _pick(t, "baseline greedy loop"),
                         "total_score_gain_vs_greedy_pct": float(served[3]) if served else None,
                         "report": asg}
    out["texts_encoded_now"] = embedder.encoded
    return out
