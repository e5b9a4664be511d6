"""matcher: matchmaking for "Migration und Entwicklung auf kommunaler Ebene".

Ranks advisors for a municipality's need, partner organisations and events for
an organisation, and invitees for an event — with German explanations.
"""

from __future__ import annotations

from matcher.domain.schema import Advisor, Event, Municipality, Organisation, Query, load_catalog, parse_entity
from matcher.engine.embedding import DEFAULT_MODEL, CachedEmbedder, Embedder, make_embedder
from matcher.engine.explain import Explanation
from matcher.engine.matcher import Matcher, Ranking, Result, Weights
from matcher.errors import (
    CatalogError,
    InfeasibleError,
    MatcherError,
    NotFittedError,
    UnknownEntityError,
    UnknownModelError,
    ValidationError,
)
from matcher.evaluation.judged import evaluate, load_dataset
from matcher.text.gazetteer import Gazetteer, default_gazetteer

__all__ = [
    "DEFAULT_MODEL",
    "Advisor",
    "CachedEmbedder",
    "CatalogError",
    "Embedder",
    "Event",
    "Explanation",
    "Gazetteer",
    "InfeasibleError",
    "Matcher",
    "MatcherError",
    "Municipality",
    "NotFittedError",
    "Organisation",
    "Query",
    "Ranking",
    "Result",
    "UnknownEntityError",
    "UnknownModelError",
    "ValidationError",
    "Weights",
    "default_gazetteer",
    "evaluate",
    "load_catalog",
    "load_dataset",
    "make_embedder",
    "parse_entity",
]
