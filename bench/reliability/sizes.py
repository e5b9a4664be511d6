"""How big each part runs: small in ``make test``, full in ``make check-reliability``.

``MATCHER_RELIABILITY=full`` selects the full size (set by ``python -m bench.reliability``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Sizes", "FAST", "FULL", "current", "is_full"]


@dataclass(frozen=True)
class Sizes:
    fuzz_examples: int        # generated cases per operation, role and generation mode (positive, negative)
    load_seconds: float       # duration of the load run
    load_clients: int         # concurrent clients (each waits for its answer: bounded concurrency)
    load_workers: int         # gunicorn workers of the server under load
    worker_kills: int         # SIGKILLs of a single worker during writes
    server_kills: int         # SIGKILLs of the whole server during writes
    postgres_outages: int     # stop/start cycles of the private PostgreSQL cluster


FAST = Sizes(fuzz_examples=1, load_seconds=5.0, load_clients=16, load_workers=2, worker_kills=1, server_kills=1,
             postgres_outages=1)
FULL = Sizes(fuzz_examples=30, load_seconds=60.0, load_clients=16, load_workers=3, worker_kills=3, server_kills=3,
             postgres_outages=3)


def is_full() -> bool:
    return os.environ.get("MATCHER_RELIABILITY", "").strip().lower() == "full"


def current() -> Sizes:
    """The sizes of this run."""
    return FULL if is_full() else FAST
