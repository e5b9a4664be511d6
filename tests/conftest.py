"""Shared fixtures: real embedders (loaded once per session), the fixture catalog."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
DEV_SET = ROOT.parent / "shared" / "eval" / "dev"
# vectors survive between local runs; CI starts with an empty cache and encodes for real
CACHE_FILE = ROOT / "var" / "test-vectors.sqlite"


@pytest.fixture(scope="session")
def default_embedder():
    """The default (German-capable) embedder, real, behind an on-disk cache."""
    from matcher.embedding import DEFAULT_MODEL, CachedEmbedder, SQLiteVectorCache, make_embedder

    return CachedEmbedder(make_embedder(DEFAULT_MODEL), SQLiteVectorCache(CACHE_FILE))


@pytest.fixture(scope="session")
def fast_embedder():
    """A real but fast model (USE multilingual, ~200 texts/s) for tests about
    storage and HTTP, where the choice of model is beside the point."""
    from matcher.embedding import CachedEmbedder, SQLiteVectorCache, make_embedder

    return CachedEmbedder(make_embedder("use"), SQLiteVectorCache(CACHE_FILE))


@pytest.fixture(scope="session")
def catalog():
    from matcher.schema import load_catalog

    return load_catalog(FIXTURES / "catalog.jsonl")


@pytest.fixture(scope="session")
def matcher(default_embedder, catalog):
    """The engine with its default configuration, fitted on the fixture catalog."""
    from matcher.ranking import Matcher

    return Matcher(default_embedder).fit(catalog)

# --- service fixtures (app, client, runner, servers) below this line ---
