"""The reviewer–paper loss of bench/ (Stelmakh et al.'s protocol) against hand-computed values and
against the upstream reference predictions; the batch report parser of bench/."""

from __future__ import annotations

import numpy as np
import pytest

from bench.reviewer_loss import bootstrap_samples, pair_counts, summarise

# r1 orders every pair against the ratings; r2 has an equal-rating pair (weight 0) and a tied
# score; r3 has one hard pair (both ratings ≥ 4), ordered wrongly.
RATINGS = {"r1": {"a": 5.0, "b": 3.0, "c": 1.0}, "r2": {"x": 4.0, "y": 4.0, "z": 2.0}, "r3": {"p": 5.0, "q": 4.0}}
SCORES = {"r1": {"a": 0.05, "b": 0.1, "c": 0.5}, "r2": {"x": 0.2, "y": 0.3, "z": 0.2}, "r3": {"p": 1.0, "q": 2.0}}


def test_loss_sums_weighted_errors_over_reviewers_before_dividing():
    counts = pair_counts(RATINGS, SCORES)
    # r1: (a,b) w2 wrong, (a,c) w4 wrong, (b,c) w2 wrong -> 8 of 8
    # r2: (x,y) weight 0, (x,z) w2 tie -> 1, (y,z) w2 right -> 1 of 4
    # r3: (p,q) w1 wrong -> 1 of 1
    assert counts.numerator.tolist() == [8.0, 1.0, 1.0]
    assert counts.denominator.tolist() == [8.0, 4.0, 1.0]
    assert counts.loss == pytest.approx(10 / 13)            # not the mean of per-reviewer ratios (0.75)


def test_easy_and_hard_accuracy_count_a_tied_prediction_as_wrong():
    counts = pair_counts(RATINGS, SCORES)
    # easy pairs (high ≥ 4, low ≤ 2): r1 (a,c) wrong, r2 (x,z) tie, r2 (y,z) right
    assert counts.easy_total.sum() == 3 and counts.easy_accuracy == pytest.approx(1 / 3)
    # hard pairs (both ≥ 4, different): r3 (p,q) only; (x,y) has equal ratings and does not count
    assert counts.hard_total.sum() == 1 and counts.hard_accuracy == 0.0


def test_perfect_and_reversed_orders_score_zero_and_one():
    perfect = {r: dict(v) for r, v in RATINGS.items()}
    reversed_ = {r: {p: -e for p, e in v.items()} for r, v in RATINGS.items()}
    assert pair_counts(RATINGS, perfect).loss == 0.0
    assert pair_counts(RATINGS, reversed_).loss == 1.0


def test_bootstrap_resample_of_every_reviewer_once_gives_the_point_value():
    versions = [pair_counts(RATINGS, SCORES), pair_counts(RATINGS, {r: {p: -s for p, s in v.items()}
                                                                     for r, v in SCORES.items()})]
    s = summarise(versions, np.ones((1, 3)))
    assert s.loss_samples[0] == pytest.approx(s.loss)
    assert s.loss == pytest.approx(np.mean([v.loss for v in versions]))


def test_bootstrap_samples_are_seeded_draws_with_replacement():
    a, b = bootstrap_samples(58, 50, seed=3), bootstrap_samples(58, 50, seed=3)
    assert (a == b).all() and (a.sum(axis=1) == 58).all() and (a > 1).any()


def test_missing_score_for_a_rated_pair_is_an_error():
    with pytest.raises(KeyError):
        pair_counts(RATINGS, {**SCORES, "r3": {"p": 1.0}})


@pytest.mark.slow
def test_evaluator_reproduces_the_readme_recomputed_column_from_reference_predictions():
    from bench.reviewer_match import RECOMPUTED, check_evaluator, load_gold_standard

    gold = load_gold_standard()
    assert len(gold.reviewers) == 58 and sum(len(r) for r in gold.ratings.values()) == 477
    refs = check_evaluator(gold, bootstrap_samples(58, 200, seed=1))   # raises if a loss is off
    assert {name: round(r["summary"].loss, 3) for name, r in refs.items()} == RECOMPUTED
    tpms = refs["tpms"]["summary"]
    assert (round(tpms.easy, 2), round(tpms.hard, 2)) == (0.80, 0.62)   # README, Table 5


def test_batch_report_rows_are_read_by_label():
    from bench.batch_rows import _pick, _table

    text = ("| what | seconds |\n|---|---|\n| engine scores only (`Matcher.score`) | 0.120 |\n"
            "| `invitation_list`, ≥ 40 % MO | **0.412** |\n")
    table = _table(text)
    assert _pick(table, "engine scores only") == 0.12
    assert _pick(table, "`invitation_list`, ≥") == 0.412
    assert _pick(table, "no such row") is None
