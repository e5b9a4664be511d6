"""The engine kept in step with the store: catalog vectors persist, refits follow catalog versions."""

from matcher.live.declines import declines_for, remember_outcome
from matcher.live.matcher import LiveMatcher, LRUVectorCache, StoreBackedEmbedder, StoredRequestVectors
from matcher.live.retention import RequestRetention

__all__ = ["LRUVectorCache", "LiveMatcher", "RequestRetention", "StoreBackedEmbedder", "StoredRequestVectors",
           "declines_for", "remember_outcome"]
