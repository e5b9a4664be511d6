"""The engine's signals as pure functions: each against a brute-force reading of its definition,
each the same for a query alone and inside a batch, none changing the index or the context.

Uses the real fast model (USE) on the fixture catalog: the signals' arithmetic is the point,
not the model's quality (that is tests/test_engine_behaviour.py's).
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pytest

from matcher.domain.schema import Query
from matcher.engine import signals
from matcher.engine.explain import explain, topic_similarities
from matcher.engine.scoring import fuse, score_contexts
from matcher.engine.similarity import zscore
from matcher.engine.weights import SIGNALS, TASK_KIND, Weights
from numerics import assert_scores_close

AS_OF = dt.date(2026, 11, 22)
QUERIES = [
    {"task": "advisors", "text": "Frankophone Vereine aus Westafrika einbinden, gern auf Französisch",
     "city": "Dortmund", "languages": ["fr"]},
    {"task": "advisors", "text": "Faire Beschaffung von Dienstkleidung im Ruhrgebiet", "from": "mun-111"},
    {"task": "advisors", "from": "mun-119"},
    {"task": "partners", "from": "org-101"},
    {"task": "partners", "text": "Migrantenorganisationen und Weltläden für Klimagerechtigkeit mit Ghana",
     "city": "Köln", "org_types": ["migrant_organisation", "civil_society"]},
    {"task": "events", "text": "Workshop zu Förderanträgen im Frühjahr", "from": "org-120"},
    {"task": "events", "from": "mun-104"},
    {"task": "invitations", "from": "evt-113"},
]


@pytest.fixture(scope="module")
def fitted(fast_embedder, catalog):
    from matcher.engine.matcher import Matcher

    return Matcher(fast_embedder).fit(catalog)


def _one(fitted, query: dict):
    q = Query.model_validate(query)
    ctx = fitted.contexts([q], AS_OF)[0]
    block = fitted.index_.block(TASK_KIND[q.task])
    masks = signals.candidate_masks(fitted.index_, [ctx], block)
    return q, ctx, block, masks


def _fingerprint(index) -> str:
    h = hashlib.sha256()
    for a in (index.profile_vecs, index.passage_unique_vecs, index.domain, index.lat, index.lon, index.has_capacity,
              index.lexical.char_matrix_.data):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@pytest.mark.numerics
def test_a_batch_of_queries_scores_each_as_it_scores_alone(fitted):
    """One scoring path: every signal of a query inside a batch equals the signal of the query alone."""
    index, w = fitted.index_, fitted.weights_
    for task in ("advisors", "partners", "events"):
        queries = [Query.model_validate(q) for q in QUERIES if q["task"] == task]
        contexts = fitted.contexts(queries, AS_OF)
        block = index.block(TASK_KIND[task])
        together = score_contexts(index, contexts, block, w)
        for r, ctx in enumerate(contexts):
            alone = score_contexts(index, [ctx], block, w)
            assert (alone.mask[0] == together.mask[r]).all()
            for s in SIGNALS:
                assert_scores_close(together.raw[s][r], alone.raw[s][0], err_msg=f"{task} {r} {s}")
            assert_scores_close(together.total[r], alone.total[0])


def test_signals_change_neither_the_index_nor_the_context(fitted):
    before = _fingerprint(fitted.index_)
    for query in QUERIES:
        q, ctx, block, masks = _one(fitted, query)
        fields = dict(vars(ctx)) if hasattr(ctx, "__dict__") else None
        scores = score_contexts(fitted.index_, [ctx], block, fitted.weights_)
        best = int(np.argmax(scores.total[0])) + block.rows.start
        first = explain(fitted.index_, best, scores.row(0, best), ctx)
        again = explain(fitted.index_, best, scores.row(0, best), ctx)
        assert first == again
        if fields is not None:
            assert dict(vars(ctx)) == fields
    assert _fingerprint(fitted.index_) == before
    with pytest.raises(AttributeError):
        ctx.need = "anders"  # frozen


def test_candidates_exclude_the_asker_past_events_and_other_types(fitted):
    index = fitted.index_
    _, ctx, block, masks = _one(fitted, {"task": "events", "from": "org-120"})
    rows = range(block.rows.start, block.rows.stop)
    for i, keep in zip(rows, masks[0]):
        e = index.entities[i]
        assert keep == (e.date is None or e.date >= AS_OF), e.id
    _, ctx, block, masks = _one(fitted, QUERIES[4])
    for i, keep in zip(range(block.rows.start, block.rows.stop), masks[0]):
        assert keep == (index.org_type[i] in ("migrant_organisation", "civil_society")), index.entities[i].id
    _, ctx, block, masks = _one(fitted, {"task": "partners", "from": "org-101"})
    assert not masks[0][index.row["org-101"] - block.rows.start]
    q = {"task": "advisors", "text": "Beratung", "languages": ["ti"], "require_languages": True}
    _, ctx, block, masks = _one(fitted, q)
    for i, keep in zip(range(block.rows.start, block.rows.stop), masks[0]):
        assert keep == ("ti" in index.languages[i])


@pytest.mark.numerics
def test_dense_is_the_zscored_mix_of_whole_profile_and_best_passage(fitted):
    index, w = fitted.index_, fitted.weights_
    _, ctx, block, masks = _one(fitted, QUERIES[0])   # text only: one vector
    got = signals.dense(index, [ctx], block, masks, w)[0]
    v = ctx.text_vector
    want = np.zeros(block.size, dtype=np.float32)
    for sl, part_weight in index.part_slices:
        cols = []
        for i in range(block.rows.start, block.rows.stop):
            span = index.passage_range(i)
            best = max(float(index.passage_unique_vecs[index.passage_map[p]][sl] @ v[sl]) for p in span)
            cols.append((1 - w.passage_share) * float(index.profile_vecs[i][sl] @ v[sl]) + w.passage_share * best)
        want += part_weight * zscore(np.array(cols), masks[0])
    assert_scores_close(got, want)


@pytest.mark.numerics
def test_lexical_and_domain_are_zscored_over_the_candidates(fitted):
    index = fitted.index_
    _, ctx, block, masks = _one(fitted, QUERIES[1])
    sim = index.lexical.similarity(ctx.need, rows=block.rows)
    assert_scores_close(signals.lexical(index, [ctx], block, masks)[0], zscore(sim, masks[0]))
    assert_scores_close(signals.domain(index, [ctx], block, masks)[0], zscore(index.domain[block.rows], masks[0]))
    got = signals.lexical(index, [ctx], block, masks)[0][masks[0]]
    assert abs(float(got.mean())) < 1e-4 and abs(float(got.std()) - 1) < 1e-3


@pytest.mark.numerics
def test_lexical_reads_an_invitation_lists_own_text_but_not_the_events_announcement(fitted):
    index = fitted.index_
    _, bare, block, masks = _one(fitted, {"task": "invitations", "from": "evt-101"})
    assert bare.need_vectors is not None   # the announcement is the need: dense and the confidence read it
    assert not signals.lexical(index, [bare], block, masks).any()
    _, worded, block, masks = _one(fitted, {"task": "invitations", "from": "evt-101",
                                            "text": "Vereine, die zu fairem Handel arbeiten"})
    got = signals.lexical(index, [worded], block, masks)[0]
    sim = index.lexical.similarity(worded.need, rows=block.rows)
    assert got.any() and np.allclose(got, zscore(sim, masks[0]), atol=1e-4)


def test_language_is_the_share_of_requested_languages_spoken(fitted):
    index = fitted.index_
    q = {"task": "advisors", "text": "Gespräche auf Arabisch oder Türkisch", "languages": ["fr", "ar"]}
    _, ctx, block, _ = _one(fitted, q)
    asked = set(ctx.languages)
    assert {"fr", "ar"} <= asked
    got = signals.language(index, [ctx], block)[0]
    for j, i in enumerate(range(block.rows.start, block.rows.stop)):
        assert got[j] == pytest.approx(len(asked & index.languages[i]) / len(asked))


def test_country_links_by_country_then_region_then_continent(fitted):
    index, w = fitted.index_, fitted.weights_
    _, ctx, block, _ = _one(fitted, {"task": "partners", "text": "Projekte mit Ghana und in Ostafrika"})
    direct, regional, broad = ctx.countries
    assert "GH" in direct and regional
    got = signals.country(index, [ctx], block, w)[0]
    for j, i in enumerate(range(block.rows.start, block.rows.stop)):
        named, in_regions, in_continents = index.countries[i]
        want = 0.0
        if (direct | regional | broad) & (named | in_regions | in_continents):
            want = w.country_continent
        if (direct | regional) & (named | in_regions):
            want = w.country_region
        if direct & named:
            want = w.country_same
        assert got[j] == pytest.approx(want), index.entities[i].id


def test_proximity_and_distance_follow_their_definition(fitted):
    index, w = fitted.index_, fitted.weights_
    for query in (QUERIES[0], QUERIES[2], {"task": "advisors", "text": "Vereine aus Bochum und Umgebung",
                                           "city": "Münster"}):
        _, ctx, block, _ = _one(fitted, query)
        got = signals.proximity(index, [ctx], block, w)[0]
        dist = signals.distance_km(index, [ctx], block)[0]
        d_origin = index.distance_km(ctx.origin, block.rows) if ctx.origin is not None else np.full(block.size, np.nan)
        named = [index.distance_km(p, block.rows) for p in ctx.mentioned if p.lat is not None]

        def decay(d):
            return np.where(np.isnan(d), 0.0, np.exp(-np.nan_to_num(d) / w.distance_scale_km))

        if named:
            d_named = np.min(named, axis=0)
            want = w.named_share * decay(d_named) + (1 - w.named_share) * decay(d_origin)
            np.testing.assert_allclose(dist, d_named)
        else:
            want = (1.0 if ctx.intent.near else w.implicit_proximity) * decay(d_origin)
            np.testing.assert_allclose(dist, d_origin)
        assert_scores_close(got, want.astype(np.float32))
        assert ((got >= 0) & (got <= 1)).all()


def test_false_friends_are_compound_collision_of_each_profile(fitted):
    # the word index answers for all rows at once what compound_collision answers for one profile's words
    from matcher.text.lexical import compound_collision, modifier_phrases, word_tokens

    index = fitted.index_
    words = [frozenset(word_tokens(" ".join([t, *e.evidence]))) for t, e in zip(index.profile_texts, index.entities)]
    needs = ["Wir möchten mehr Menschen für die Freiwillige Feuerwehr gewinnen",
             *(e.description for e in index.entities)]
    phrase_sets = {p for p in (modifier_phrases(n) for n in needs) if p}
    assert len(phrase_sets) > 20
    everything = slice(0, len(index))
    collided = 0
    for phrases in phrase_sets:
        expected = np.array([compound_collision(phrases, w) for w in words])
        assert (index.words.collisions(phrases, everything) == expected).all(), phrases
        block = index.block("advisor")
        assert (index.words.collisions(phrases, block.rows) == expected[block.rows]).all(), phrases
        collided += int(expected.sum())
    assert collided > 0   # the comparison saw collisions, not only their absence


def test_type_time_and_capacity_signals(fitted):
    index, w = fitted.index_, fitted.weights_
    _, ctx, block, _ = _one(fitted, QUERIES[4])   # partners of two named types
    got = signals.type_fit(index, [ctx], block, w)[0]
    for j, i in enumerate(range(block.rows.start, block.rows.stop)):
        assert got[j] == (1.0 if index.org_type[i] in ("migrant_organisation", "civil_society") else 0.0)
    _, ctx, block, _ = _one(fitted, {"task": "events", "from": "mun-104"})   # a municipality asks for events
    got = signals.type_fit(index, [ctx], block, w)[0]
    for j, i in enumerate(range(block.rows.start, block.rows.stop)):
        groups = set(index.entities[i].target_groups)
        assert got[j] == (w.event_open_to_all if not groups else float("municipal_office" in groups))
    _, ctx, block, _ = _one(fitted, QUERIES[5])   # "im Frühjahr"
    window = ctx.intent.window
    assert window is not None
    got = signals.time_fit(index, [ctx], block)[0]
    for j, i in enumerate(range(block.rows.start, block.rows.stop)):
        d = index.entities[i].date
        assert got[j] == float(d is not None and window[0] <= d <= window[1])
    _, ctx, block, _ = _one(fitted, QUERIES[0])
    assert (signals.capacity(index, [ctx], block)[0] == index.has_capacity[block.rows]).all()
    _, ctx, block, _ = _one(fitted, QUERIES[3])
    assert not signals.capacity(index, [ctx], block).any() and not signals.region(index, [ctx], block, w).any()


def test_fusion_is_the_weighted_sum_and_minus_infinity_outside_the_candidates():
    rng = np.random.default_rng(3)
    raw = {s: rng.normal(size=(4, 7)).astype(np.float32) for s in SIGNALS}
    mask = rng.random((4, 7)) > 0.3
    w = Weights()
    contributions, total = fuse(raw, w, mask)
    want = sum(getattr(w, s) * raw[s].astype(np.float64) for s in SIGNALS)
    assert np.isneginf(total[~mask]).all()
    np.testing.assert_allclose(total[mask], want[mask], rtol=1e-5)
    for s in SIGNALS:
        np.testing.assert_allclose(contributions[s], getattr(w, s) * raw[s], rtol=1e-6)


def test_explanations_of_one_query_share_its_topic_similarities(fitted):
    _, ctx, block, _ = _one(fitted, QUERIES[1])
    scores = score_contexts(fitted.index_, [ctx], block, fitted.weights_)
    sims = topic_similarities(fitted.index_, ctx)
    for i in range(block.rows.start, block.rows.start + 5):
        assert explain(fitted.index_, i, scores.row(0, i), ctx, topic_sims=sims) == \
            explain(fitted.index_, i, scores.row(0, i), ctx)
