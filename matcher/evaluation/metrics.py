"""Ranking metrics of FORMAT.md: nDCG@k (gain = grade, log2 discount),
MRR@k (first result of grade ≥ 2) and Recall@k (share of grade ≥ 2 found).

Pure functions over a ranked list of ids and a {id: grade} mapping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["dcg", "ndcg_at_k", "mrr_at_k", "recall_at_k", "RELEVANT_GRADE"]

RELEVANT_GRADE = 2


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain: sum of gain_i / log2(i + 1), i starting at 1."""
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at_k(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k; ids not in ``grades`` have gain 0. A query with no positive grade scores 0."""
    gains = [max(grades.get(e, 0), 0) for e in ranked[:k]]
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    best = dcg(ideal)
    return dcg(gains) / best if best > 0 else 0.0


def mrr_at_k(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first result with grade ≥ 2 within the top k, else 0."""
    for i, e in enumerate(ranked[:k], start=1):
        if grades.get(e, 0) >= RELEVANT_GRADE:
            return 1.0 / i
    return 0.0


def recall_at_k(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    """Share of the grade ≥ 2 entities that appear in the top k (0 if there are none)."""
    relevant = {e for e, g in grades.items() if g >= RELEVANT_GRADE}
    if not relevant:
        return 0.0
    return len(relevant & set(ranked[:k])) / len(relevant)
