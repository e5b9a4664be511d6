"""The WSGI app for gunicorn: ``gunicorn 'service.wsgi:app'`` (config from ``MATCHER_*``).

Each worker builds its app after the fork (no ``--preload``) and serves at once:
the model is loaded and the catalog fitted in a thread (``START_IN_BACKGROUND``),
``/healthz`` answers meanwhile and ``/readyz`` says 503 with the progress until ready.
"""

from __future__ import annotations

from service import create_app

app = create_app()
