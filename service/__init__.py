"""HTTP service over the matching engine (Flask).

``create_app(config=None)`` builds the app (Flask's flaskr pattern); the model
is loaded and the catalog fitted once per app, never at import: in a thread
started by the factory (``START_IN_BACKGROUND``, the default), or in the factory.
``service/wsgi.py`` holds the one global app, for gunicorn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

__all__ = ["create_app"]


def create_app(config: Mapping[str, Any] | None = None, *, instance_path: str | None = None) -> Flask:
    """Create the app: config defaults → ``instance/config.py`` → ``MATCHER_*`` env → ``config``.

    ``instance_path`` overrides Flask's default instance folder (``<project>/instance``).

    Raises:
        StoreError: the database is unreachable or not migrated (run ``matcher db upgrade``).
        UnknownModelError: the configured model is unknown (or, starting synchronously, not available offline).
    """
    from . import (
        auth,
        contract,
        entities,
        errors,
        feedback,
        health,
        invitation_history,
        jobs,
        landscape,
        metrics,
        programmes,  # noqa: F401  # its route joins the recommendations blueprint before it is registered
        proxies,
        rankers,
        ratelimit,
        recommendations,
        state,
        web,
    )
    from .config import default_config

    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    app.config.from_mapping(default_config())
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("MATCHER")
    if config:
        app.config.update(config)
    app.config["MAX_CONTENT_LENGTH"] = int(app.config["MAX_BODY_BYTES"])
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # German text as UTF-8, not \u escapes
    app.json.sort_keys = False     # type: ignore[attr-defined]

    proxies.init_app(app)          # first: every later part sees the client's address behind a proxy
    errors.init_app(app)
    contract.init_app(app)         # URL converters (before the blueprints), nosniff and no-store headers
    metrics.init_app(app)          # before auth: refused requests are counted too
    auth.init_app(app)
    ratelimit.init_app(app)        # after auth: the caller's key names the budget
    state.init_app(app)            # the model loads and the catalog is fitted in the background (START_IN_BACKGROUND)
    health.init_app(app)           # meanwhile: 503 "starting" with the progress where the matcher is needed
    app.config["SCHEMA_HEAD"] = state.get_state_of(app).store.head_revision()
    landscape.init_app(app)
    web.init_app(app)
    jobs.init_app(app)
    for bp in (jobs.bp, invitation_history.bp, rankers.bp):
        app.register_blueprint(bp)
    for bp in (recommendations.bp, entities.bp, feedback.bp, health.bp, landscape.bp, web.bp):
        app.register_blueprint(bp)
    return app
