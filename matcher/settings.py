"""Library-level defaults read from the environment in one place."""

from __future__ import annotations

import os
from pathlib import Path

from .embedding import DEFAULT_MODEL

__all__ = ["model_spec", "cache_file", "threads"]


def model_spec() -> str:
    """The embedding model: ``MATCHER_MODEL`` (a backend spec, name or path) or the default."""
    return os.environ.get("MATCHER_MODEL") or DEFAULT_MODEL


def cache_file() -> Path:
    """The CLI's on-disk vector cache: ``MATCHER_CACHE`` or ``var/vectors.sqlite``."""
    return Path(os.environ.get("MATCHER_CACHE") or "var/vectors.sqlite")


def threads() -> int | None:
    """Inference threads per process: ``MATCHER_THREADS`` (default: the backend's own choice)."""
    value = os.environ.get("MATCHER_THREADS")
    return int(value) if value else None
