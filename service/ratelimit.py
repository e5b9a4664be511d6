"""Rate limits per API key (per client address without a key): recommendations, landscape reports, exports.

Flask-Limiter does the counting. Each group of routes shares one budget per
caller (limits notation, e.g. ``"120 per minute"`` or ``"10 per second; 300 per
hour"``; ``None`` or ``""`` switches that group off):

* all ``/v1/recommendations/…`` routes: ``RATE_LIMIT_RECOMMENDATIONS``;
* the three ``/v1/landscape`` routes (JSON, HTML, XLSX; each report costs about
  a second of CPU): ``RATE_LIMIT_LANDSCAPE``;
* the job exports ``/v1/jobs/<id>/export.csv`` and ``.xlsx``: ``RATE_LIMIT_EXPORTS``.

A caller over a limit gets 429 in the one error shape (code ``rate_limited``)
with ``Retry-After`` in seconds.

Scope: the counters live in ``RATELIMIT_STORAGE_URI`` — by default
``matcher-memory://``, i.e. in each process: limits' ``memory://`` storage
with one long-lived sweeper thread for expired entries instead of the
``threading.Timer`` that ``memory://`` starts anew on almost every hit (a
thread start cost ~1.5 ms of each recommendation here). With several gunicorn workers each worker
counts for itself, so a caller can get up to workers × limit (the kernel
spreads connections over the workers); with several replicas, replicas ×
workers × limit. For one budget across all of them point
``MATCHER_RATELIMIT_STORAGE_URI`` at a shared store that Flask-Limiter
supports (``redis://…``, ``memcached://…``). Callers are told apart by their
key's id; anonymous callers (open demo) by ``request.remote_addr`` — behind a
reverse proxy that is the proxy, so all anonymous callers share one budget
unless the proxy's ``X-Forwarded-For`` is trusted (``MATCHER_TRUSTED_PROXIES``,
:mod:`service.proxies`: werkzeug's ``ProxyFix``).
``RATELIMIT_ENABLED = False`` (``MATCHER_RATELIMIT_ENABLED=false``) switches
the limiter off as a whole; the tests do that except the one that checks it.
"""

from __future__ import annotations

import math
import threading
import time
import weakref

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from limits import parse_many
from limits.storage import MemoryStorage

from matcher.domain.messages import quoted

from .auth import current_caller
from .errors import error_response

__all__ = ["init_app", "limit_key", "EXTENSION", "SweptMemoryStorage"]

EXTENSION = "matcher_limiter"
# the groups of routes with a budget of their own: config key, and what the German message calls them
SCOPES = {"recommendations": ("RATE_LIMIT_RECOMMENDATIONS", "Empfehlungsanfragen"),
          "landscape": ("RATE_LIMIT_LANDSCAPE", "Landschaftsberichte"),
          "exports": ("RATE_LIMIT_EXPORTS", "Exporte von Auftragsergebnissen")}
EXPORT_ENDPOINTS = frozenset({"jobs.export_csv", "jobs.export_xlsx"})


class _Sweeper(threading.Thread):
    """A daemon thread sweeping ``storage`` every ``interval`` seconds while the storage lives
    (it holds only a weak reference, so an app's storage — one per ``create_app`` — can go)."""

    def __init__(self, storage: MemoryStorage, interval: float):
        super().__init__(name="ratelimit-sweeper", daemon=True)
        self.storage, self.interval = weakref.ref(storage), interval

    def run(self) -> None:
        while True:
            time.sleep(self.interval)
            storage = self.storage()
            if storage is None:
                return
            # MemoryStorage's own clean-up, private to limits (no public method expires entries):
            # pyproject.toml bounds limits' version and tests/test_private_apis.py pins what it does
            storage._MemoryStorage__expire_events()
            del storage


class SweptMemoryStorage(MemoryStorage):
    """``memory://`` whose expired entries one long-lived thread sweeps every second.

    ``MemoryStorage`` schedules its clean-up with a new ``threading.Timer`` whenever
    the last one has finished, i.e. on nearly every request. Here ``timer`` is a
    sweeper that stays alive, so ``MemoryStorage`` never starts another; counting
    and the moving window are ``MemoryStorage``'s own. Where the sweeper is not
    alive (a forked child, a limits version without the clean-up method) the
    storage behaves exactly as ``memory://``.
    """

    STORAGE_SCHEME = ["matcher-memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        if hasattr(self, "_MemoryStorage__expire_events"):
            self.timer = _Sweeper(self, interval=1.0)
            self.timer.start()


def limit_key() -> str:
    """Whose budget a request spends: the API key's id, else the client's address."""
    caller = current_caller()
    if caller.key_id:
        return f"key:{caller.key_id}"
    return f"addr:{request.remote_addr or '-'}"


def _rate_limited(exc: RateLimitExceeded) -> Response:
    limiter: Limiter = current_app.extensions[EXTENSION]
    current = limiter.current_limit
    reset_at = current.reset_at if current is not None else time.time() + 60
    retry_after = max(1, math.ceil(reset_at - time.time()))
    limit = str(exc.limit.limit)
    what = SCOPES.get(str(exc.limit.scope), ("", "Anfragen"))[1]
    return error_response(
        429, "rate_limited",
        f"Zu viele {what} (erlaubt: {limit} je Schlüssel bzw. ohne Schlüssel je Adresse). "
        f"Bitte in {retry_after} Sekunden erneut versuchen.",
        [{"limit": limit, "retry_after_seconds": retry_after}], headers={"Retry-After": str(retry_after)})


def _spec(app: Flask, key: str) -> str | None:
    """The limit configured under ``key`` (None: none); raises ValueError when it is not limits notation."""
    spec = app.config.get(key)
    if not spec:
        return None
    try:
        parse_many(spec)
    except ValueError:
        raise ValueError(f"{key}={quoted(spec)} ist keine Ratengrenze wie „120 per minute“ "
                         "oder „10 per second; 300 per hour“") from None
    return spec


def init_app(app: Flask) -> None:
    """Limit the recommendation and landscape routes and the job exports (call after ``auth.init_app``:
    the key identifies the caller).

    Raises:
        ValueError: a ``RATE_LIMIT_*`` setting is not in limits notation.
    """
    from . import jobs, landscape, recommendations

    specs = {scope: _spec(app, key) for scope, (key, _) in SCOPES.items()}
    if not any(specs.values()):
        return
    app.config.setdefault("RATELIMIT_STORAGE_URI", "matcher-memory://")
    limiter = Limiter(key_func=limit_key, strategy="moving-window", headers_enabled=False)
    limiter.init_app(app)
    # blueprint limits are checked before the view; of the jobs blueprint only the exports count
    targets = {"recommendations": recommendations.bp, "landscape": landscape.bp, "exports": jobs.bp}
    exempt = {"exports": lambda: request.endpoint not in EXPORT_ENDPOINTS}
    for scope, spec in specs.items():
        if spec:
            limiter.shared_limit(spec, scope=scope, exempt_when=exempt.get(scope))(targets[scope])
    app.extensions[EXTENSION] = limiter
    app.register_error_handler(RateLimitExceeded, _rate_limited)
