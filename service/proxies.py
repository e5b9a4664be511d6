"""Behind a reverse proxy: which forwarded headers to believe (``TRUSTED_PROXIES``).

``TRUSTED_PROXIES`` is the number of proxies in front of the service that each
append the address they got the request from to ``X-Forwarded-For`` (one for
``deploy/nginx.conf``). With ``n > 0`` werkzeug's ``ProxyFix`` takes the
``n``-th address from the right as ``request.remote_addr`` and the scheme from
``X-Forwarded-Proto`` — so the rate limit (:mod:`service.ratelimit`) and
whatever reads ``request.remote_addr`` see the client, not the proxy — and
ignores whatever a client wrote further left.
With 0, the default, forwarded headers are ignored altogether: a client talking
to gunicorn directly cannot choose its address by sending them.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from matcher.domain.messages import quoted

__all__ = ["init_app"]


def init_app(app: Flask) -> None:
    """Wrap the WSGI app in ``ProxyFix`` when ``TRUSTED_PROXIES`` > 0.

    Raises:
        ValueError: ``TRUSTED_PROXIES`` is not a whole number ≥ 0.
    """
    value = app.config["TRUSTED_PROXIES"]
    try:
        trusted = int(value) if not isinstance(value, (bool, float)) else -1
    except (TypeError, ValueError):
        trusted = -1
    if trusted < 0:
        raise ValueError(f"TRUSTED_PROXIES={quoted(str(value))} ist keine Anzahl von Proxys: bitte eine ganze Zahl "
                         "≥ 0 angeben (0: keiner, 1: ein Proxy wie deploy/nginx.conf davor)")
    if trusted:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted, x_proto=trusted)  # type: ignore[method-assign]
