"""Exception hierarchy of the matching library.

Every error the library raises on purpose derives from :class:`MatcherError`;
subclasses also inherit the fitting builtin so callers can catch either.
Messages are written for a person who has to change something (German where
they may reach an end user via the service).
"""

from __future__ import annotations

from typing import Any


class MatcherError(Exception):
    """Base class of all errors raised by :mod:`matcher`.

    ``code`` is a stable machine-readable identifier, ``details`` a list of
    dicts that locate the problem (file, line, field, ...).
    """

    code = "matcher_error"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        self.details = list(details or [])

    def __str__(self) -> str:
        if not self.details:
            return self.message
        lines = [self.message]
        for d in self.details[:20]:
            lines.append("  - " + ", ".join(f"{k}={v}" for k, v in d.items()))
        if len(self.details) > 20:
            lines.append(f"  … und {len(self.details) - 20} weitere")
        return "\n".join(lines)


class ValidationError(MatcherError, ValueError):
    """Input data does not follow the schema."""

    code = "validation_error"


class CatalogError(ValidationError):
    """A catalog or data set file could not be loaded; nothing was loaded."""

    code = "catalog_error"


class UnknownEntityError(MatcherError, KeyError):
    """An entity id is not in the catalog."""

    code = "not_found"

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        return MatcherError.__str__(self)


class UnknownModelError(MatcherError, ValueError):
    """An embedding backend or model name is not known or not available offline."""

    code = "unknown_model"


class NotFittedError(MatcherError, RuntimeError):
    """An estimator-like object was used before ``fit``."""

    code = "not_fitted"


class InfeasibleError(MatcherError, ValueError):
    """A batch problem has no solution under the given constraints."""

    code = "infeasible"


class ConflictError(MatcherError, ValueError):
    """A write clashes with what is stored (e.g. an id that already exists); nothing was written."""

    code = "conflict"


class StoreError(MatcherError, RuntimeError):
    """The store cannot be reached or is not set up (e.g. not migrated); nothing was written."""

    code = "store_unavailable"
