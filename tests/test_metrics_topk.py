"""Pure maths against hand-computed values and brute force on seeded random data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from matcher.engine.similarity import segment_max, top_k, zscore
from matcher.evaluation.metrics import mrr_at_k, ndcg_at_k, recall_at_k

pytestmark = pytest.mark.numerics  # pure maths on floats, cheap: run under every kernel of make test-numerics


def test_ndcg_matches_hand_computed_value():
    grades = {"a": 3, "b": 2, "c": 0, "d": 1}
    ranked = ["c", "a", "d", "x"]
    dcg = 0 / math.log2(2) + 3 / math.log2(3) + 1 / math.log2(4) + 0 / math.log2(5)
    idcg = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, grades) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["a", "b", "d"], grades) == pytest.approx(1.0)
    assert ndcg_at_k(["c"], {"c": 0}) == 0.0


def test_ndcg_cuts_at_k():
    grades = {"z": 3}
    ranked = [f"n{i}" for i in range(10)] + ["z"]
    assert ndcg_at_k(ranked, grades, k=10) == 0.0
    assert ndcg_at_k(ranked, grades, k=11) == pytest.approx(1 / math.log2(12))


def test_mrr_counts_first_result_of_grade_two_or_more():
    grades = {"a": 1, "b": 2, "c": 3}
    assert mrr_at_k(["a", "x", "b", "c"], grades) == pytest.approx(1 / 3)
    assert mrr_at_k(["a", "x"], grades) == 0.0
    assert mrr_at_k(["c"], grades) == 1.0


def test_recall_is_share_of_grade_two_or_more_found():
    grades = {"a": 1, "b": 2, "c": 3, "d": 2}
    assert recall_at_k(["a", "b", "x"], grades) == pytest.approx(1 / 3)
    assert recall_at_k(["b", "c", "d"], grades) == 1.0
    assert recall_at_k(["a"], {"a": 1}) == 0.0


@pytest.mark.parametrize("seed", range(25))
def test_top_k_equals_brute_force_sorting(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    # coarse values force many ties, which a careless argpartition breaks
    scores = rng.integers(0, 20, size=n).astype(np.float64) if seed % 2 else rng.normal(size=n)
    mask = rng.random(n) < 0.7
    k = int(rng.integers(0, n + 5))
    expected = [i for i in sorted(range(n), key=lambda i: (-scores[i], i)) if mask[i]][:k]
    assert top_k(scores, k, mask).tolist() == expected
    assert top_k(scores, k).tolist() == sorted(range(n), key=lambda i: (-scores[i], i))[:k]


def test_top_k_with_empty_mask_or_zero_k():
    assert top_k(np.arange(5.0), 3, np.zeros(5, bool)).size == 0
    assert top_k(np.arange(5.0), 0).size == 0


def test_zscore_uses_masked_entries_and_handles_constant_input():
    x = np.array([1.0, 2.0, 3.0, 100.0])
    mask = np.array([True, True, True, False])
    z = zscore(x, mask)
    assert z[:3] == pytest.approx([-1.2247, 0.0, 1.2247], abs=1e-4)
    assert np.all(zscore(np.ones(4)) == 0)


def test_segment_max_against_loop():
    rng = np.random.default_rng(7)
    lengths = rng.integers(1, 6, size=50)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    values = rng.normal(size=int(lengths.sum()))
    expected = [values[s : s + n].max() for s, n in zip(starts, lengths)]
    assert segment_max(values, starts) == pytest.approx(expected)
