"""A refit that reuses the serving matcher's work gives what a fit from scratch gives.

Scores are compared to the tolerance the engine promises (tests/numerics.py), not bit for bit:
the two fits hold their arrays in other places and OpenBLAS may run another kernel on another CPU.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from matcher.domain.schema import Query
from matcher.engine.index import INDEX_ORDER
from matcher.engine.matcher import Matcher
from matcher.engine.similarity import zscore
from matcher.text.lexical import LexicalIndex, _stem_analyzer
from matcher.text.profile import profile_text
from numerics import (
    FIXTURE_AS_OF_ISO,
    FIXTURE_QUERIES,
    assert_same_answers,
    assert_scores_close,
)

AS_OF = dt.date.fromisoformat(FIXTURE_AS_OF_ISO)
QUERIES = FIXTURE_QUERIES  # one per task


def _texts(catalog):
    return [" ".join([profile_text(e), *e.evidence]) for e in catalog]


@pytest.mark.numerics
def test_lexical_index_equals_scikit_learns_tfidf_vectorizer(catalog):
    # bit for bit on purpose: the index runs scikit-learn's own routines (counting, idf,
    # inplace_csr_row_normalize_l2) on the same data in the same order, without BLAS, so they
    # agree on any machine; a tolerance here would hide a changed or reordered step
    texts = _texts(catalog)
    index = LexicalIndex().fit(texts)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, max_df=0.5, dtype=np.float32)
    word = TfidfVectorizer(analyzer=_stem_analyzer, sublinear_tf=True, dtype=np.float32)
    for ours, ref in ((index.char_, char), (index.word_, word)):
        expected = ref.fit_transform(texts)
        assert list(ours.get_feature_names_out()) == list(ref.get_feature_names_out())
        assert abs(ours.matrix_ - expected).max() == 0
        need = ["Faire Beschaffung von Dienstkleidung in Bottrop", "Klimapartnerschaft mit Tansania"]
        assert abs(ours.transform(need) - ref.transform(need)).max() == 0


def test_memoised_char_analyzer_gives_scikit_learns_tokens(catalog):
    from sklearn.feature_extraction.text import CountVectorizer

    from matcher.text.lexical import char_wb_analyzer

    reference = CountVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True).build_analyzer()
    varied = ["  Zwei  Leerzeichen\tund\nUmbrüche – ÄÖÜ ß", "a", "",
              "Fair-Trade-Town Köln e.V. (seit 2019): 12 Partner!",
              "Climate partnerships & SDG 13 – the city's twinning with Kumasi", "İSTANBUL Straße ΣΊΣΥΦΟΣ ﬁnance"]
    for text in [*_texts(catalog), *varied]:
        assert char_wb_analyzer(text) == reference(text)


def _changed(catalog):
    """The catalog after a few edits: one entity removed, one described anew, one added."""
    first, second, *rest = catalog
    edited = second.model_copy(update={"description": "Neu beschrieben: wir beraten zu fairer Beschaffung in Bonn."})
    added = first.model_copy(update={"id": "org-neu-1", "name": "Neuer Verein", "description":
                                     "Ein neuer Verein für Klimagerechtigkeit und Städtepartnerschaften mit Ghana."})
    return [edited, *rest, added]


@pytest.mark.numerics
@pytest.mark.parametrize("query", QUERIES)
def test_refit_reusing_the_previous_matcher_equals_a_fit_from_scratch(fast_embedder, catalog, query):
    changed = _changed(catalog)
    serving = Matcher(fast_embedder).fit(catalog)
    reused = Matcher(fast_embedder).fit(changed, reuse=serving)
    scratch = Matcher(fast_embedder).fit(changed)
    assert_same_answers(reused, scratch, query, AS_OF)
    # the serving matcher still answers for its own catalog
    assert serving.rank(Query.model_validate(query), k=3, as_of=AS_OF).results


def _with_shared_passage(entities):
    """The catalog with one evidence text that an advisor and an organisation both have."""
    shared = "Wir beraten Kommunen zu fairer Beschaffung und zu Klimapartnerschaften mit Ghana."
    out, seen = [], set()
    for e in entities:
        if e.kind in ("advisor", "organisation") and e.kind not in seen:
            seen.add(e.kind)
            e = e.model_copy(update={"evidence": [*e.evidence, shared]})
        out.append(e)
    return out


@pytest.mark.numerics
@pytest.mark.parametrize("query", QUERIES)
def test_scores_do_not_depend_on_the_order_of_the_catalog(fast_embedder, catalog, query):
    """The matcher groups entities by kind and scores only the kind asked for; an interleaved
    catalog (and a passage shared across kinds) gives the same scores, equal to the product over
    the whole catalog that the kind blocks replace."""
    import random

    ordered = _with_shared_passage(catalog)
    shuffled = list(ordered)
    random.Random(7).shuffle(shuffled)
    q = Query.model_validate(query)
    fitted = [Matcher(fast_embedder).fit(c) for c in (ordered, shuffled)]
    by_id = []
    for m in fitted:
        assert [e.kind for e in m.entities_] == sorted((e.kind for e in m.entities_),
                                                       key=INDEX_ORDER.index)
        scores = m.score(q, as_of=AS_OF)
        by_id.append({m.entities_[i].id: float(s) for i, s in zip(scores.rows, scores.total)})
        # the dense signal against the whole-catalog computation
        index = m.index_
        v = scores.context.main_vector(index) if not (q.text and q.from_) else None
        if v is not None:
            prof = index.profile_vecs @ v
            ends = np.append(index.passage_starts[1:], len(index.passage_texts))
            best = np.array([(index.passage_unique_vecs[index.passage_map[a:b]] @ v).max()
                             for a, b in zip(index.passage_starts, ends)])
            w = m.weights_.passage_share
            mask = np.zeros(len(index), dtype=bool)
            mask[scores.candidates] = True
            want = zscore((1 - w) * prof + w * best, mask)
            assert_scores_close(scores.raw["dense"][scores.mask], want[mask])
    assert by_id[0].keys() == by_id[1].keys()
    ids = sorted(by_id[0])
    assert_scores_close([by_id[1][i] for i in ids], [by_id[0][i] for i in ids])


@pytest.mark.numerics
def test_lexical_similarity_of_one_block_equals_the_whole_index_sliced(catalog):
    texts = _texts(catalog)
    blocks = [slice(0, 40), slice(40, 120), slice(120, len(texts))]
    split, whole = LexicalIndex().fit(texts, blocks=blocks), LexicalIndex().fit(texts)
    need = "Faire Beschaffung von Dienstkleidung und Klimapartnerschaft mit Tansania"
    full = whole.similarity(need)
    assert_scores_close(split.similarity(need), full)
    for rows in (*blocks, slice(30, 50)):  # a slice is held to the whole row's magnitude
        assert_scores_close(split.similarity(need, rows=rows), full[rows], scale=np.abs(full).max())
