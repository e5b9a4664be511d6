"""The WSGI app for gunicorn: ``gunicorn 'service.wsgi:app'`` (config from ``MATCHER_*``).

Each worker builds its app after the fork (no ``--preload``) and serves at once:
the model is loaded and the catalog fitted in a thread (``START_IN_BACKGROUND``),
``/healthz`` answers meanwhile and ``/readyz`` says 503 with the progress until ready. The engine's
numpy products run on ``BLAS_THREADS`` threads (default 1).
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

from service import create_app

app = create_app()
if int(app.config["BLAS_THREADS"] or 0) > 0:
    # process-wide, so set here where the server process is made (not in create_app, which tests call in
    # their own process): a request's products (one query × one kind's vectors) take well under a
    # millisecond on one core; more BLAS threads are woken for each, and under load or concurrent requests
    # they wait for a core (an advisors request at 10,000 profiles: ~10 instead of 15-33 ms of CPU)
    threadpool_limits(limits=int(app.config["BLAS_THREADS"]), user_api="blas")
