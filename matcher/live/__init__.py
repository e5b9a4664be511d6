"""The engine kept in step with the store: catalog vectors persist, refits follow catalog versions."""

from matcher.live.declines import declines_for, remember_outcome
from matcher.live.matcher import LiveMatcher, LRUVectorCache, StoreBackedEmbedder

__all__ = ["LRUVectorCache", "LiveMatcher", "StoreBackedEmbedder", "declines_for", "remember_outcome"]
