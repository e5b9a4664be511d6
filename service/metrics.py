"""Prometheus metrics (one registry per app, so several apps in one process do not collide).

With several gunicorn workers each worker counts for itself; scrape through
one worker or set up prometheus-client's multiprocess mode.
"""

from __future__ import annotations

import time

from flask import Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["init_app", "metrics_response", "EXTENSION"]

EXTENSION = "matcher_metrics"


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("matcher_http_requests_total", "HTTP requests answered",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("matcher_http_request_seconds", "Time to answer a request", ["endpoint"],
                                 registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.catalog_version = Gauge("matcher_catalog_version", "Catalog version the matcher is fitted on",
                                     registry=self.registry)
        self.entities = Gauge("matcher_catalog_entities", "Entities in the fitted catalog", registry=self.registry)
        self.refits = Gauge("matcher_refits", "Refits after catalog changes since start", registry=self.registry)
        self.fit_seconds = Gauge("matcher_fit_seconds", "Duration of the last fit", registry=self.registry)
        self.encoded = Gauge("matcher_texts_encoded", "Texts encoded by the model since start", registry=self.registry)
        self.index_loaded = Gauge("matcher_index_from_file", "1 if the serving index was read from its file, "
                                  "0 if it was fitted", registry=self.registry)
        self.passes = Gauge("matcher_encode_passes", "Forward passes of request texts (micro-batched) since start",
                            registry=self.registry)
        self.batched = Gauge("matcher_encode_batched_calls", "Request encodes that shared a forward pass with "
                             "another since start", registry=self.registry)


def _start() -> None:
    g.started = time.perf_counter()


def _finish(response: Response) -> Response:
    m: ServiceMetrics = current_app.extensions[EXTENSION]
    endpoint = request.endpoint or "(none)"
    m.requests.labels(endpoint, request.method, str(response.status_code)).inc()
    if "started" in g:
        m.latency.labels(endpoint).observe(time.perf_counter() - g.started)
    return response


def metrics_response() -> Response:
    """The metrics; while the service starts (or after a failed start) without the catalog gauges."""
    from .state import ServiceNotReady, get_live

    m: ServiceMetrics = current_app.extensions[EXTENSION]
    try:
        live = get_live()
    except ServiceNotReady:
        live = None
    if live is not None:
        version, matcher = live.state_
        m.catalog_version.set(version)
        m.entities.set(len(matcher.entities_))
        m.refits.set(live.refits_)
        m.fit_seconds.set(live.fit_seconds_)
        m.encoded.set(live.embedder.encoded)
        m.index_loaded.set(int(getattr(live, "loaded_from_file_", False)))
        batcher = getattr(live.embedder, "batcher", None)
        if batcher is not None:
            m.passes.set(batcher.passes)
            m.batched.set(batcher.batched_calls)
    return Response(generate_latest(m.registry), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = ServiceMetrics()
    app.before_request(_start)
    app.after_request(_finish)
