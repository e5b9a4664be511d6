"""The service's configuration defaults, in one place.

Order (later wins): these defaults → the instance file ``instance/config.py``
→ ``MATCHER_*`` environment variables (``MATCHER_DATABASE_URL``, …; values
are parsed as JSON where they can be, so ``true`` and ``5`` work) → the
mapping given to :func:`service.create_app`.
"""

from __future__ import annotations

from typing import Any

from matcher.embedding import DEFAULT_MODEL
from matcher.store import DEFAULT_DATABASE_URL

__all__ = ["default_config"]


def default_config() -> dict[str, Any]:
    return {
        "DATABASE_URL": DEFAULT_DATABASE_URL,   # or postgresql+psycopg://user@host/db for replicas
        "MODEL": DEFAULT_MODEL,                 # embedding model spec (see matcher.embedding)
        "THREADS": None,                        # inference threads (None: the backend's choice)
        "OPEN_RECOMMENDATIONS": False,          # True: recommendations and catalog reads without a key
        "OPEN_FEEDBACK": False,                 # True: feedback on a recommendation without a key (demo)
        "MAX_BODY_BYTES": 256 * 1024,           # JSON request bodies (413 above)
        "MAX_IMPORT_BYTES": 16 * 1024 * 1024,   # bulk import bodies
        "REFIT_WAIT_SECONDS": 5.0,              # how long a request waits for a refit after a catalog change
        "REQUEST_CACHE_SIZE": 2048,             # request-text vectors kept in memory (never stored)
        "FIELDS_FILE": None,                    # fields of action (None: fixtures/fields_of_action.json)
    }
