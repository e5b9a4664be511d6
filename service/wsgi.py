"""The WSGI app for gunicorn: ``gunicorn 'service.wsgi:app'`` (config from ``MATCHER_*``)."""

from __future__ import annotations

from service import create_app

app = create_app()
