"""Rows 1, 2 and 4 (latency): the advisors endpoint over real HTTP against the floor and the naive
peer, measured interleaved, query by query, in the same run.

* **floor**: what no service can beat — the bare default embedder encoding the query
  (``encode([text], "query")``, no cache) plus one numpy matrix product over the stored vectors:
  every catalog vector the engine scores, i.e. the whole-profile vectors and the unique passage
  vectors (about 2 N × dim; the product over the N whole-profile vectors alone is timed beside it);
* **floor of the kind**: the same over the advisors' stored vectors only (their whole profiles and
  unique passages) — what the engine reads for an advisor search, which groups the catalog by
  kind; below the floor, not above it, is possible for the engine;
* **naive peer**: what most users would write — the same encode plus
  ``sentence_transformers.util.semantic_search`` (top 10) over the same vectors, no filters, no
  fusion, no explanations;
* **HTTP**: ``POST /v1/recommendations/advisors`` (k = 10) on gunicorn, client-side time.

Every query text is new to the server (its request-vector cache never hits), and the three
measurements of one query follow each other, so machine noise hits all three alike.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import requests

__all__ = ["NEEDS", "need", "percentiles", "interleaved_latency", "concurrency"]

NEEDS = [
    ("Faire Beschaffung von Dienstkleidung für das Ordnungsamt", "Essen"),
    ("Wir möchten Migrantenorganisationen in unsere Städtepartnerschaft mit Ghana einbinden", "Köln"),
    ("Klimapartnerschaft mit einer Gemeinde in Tansania aufbauen", "Münster"),
    ("Beratung zu Diaspora-Engagement und entwicklungspolitischer Bildungsarbeit", "Dortmund"),
    ("Unterstützung für eine Veranstaltung zum Fairen Handel mit türkischsprachigen Vereinen", "Duisburg"),
    ("Globales Lernen an Schulen mit Referentinnen aus der Diaspora", "Bielefeld"),
    ("Kommunale Entwicklungspolitik in einer kleinen Gemeinde im Sauerland starten", "Arnsberg"),
    ("Projektpartnerschaft mit Kamerun, frankophone Beratung gesucht", "Bonn"),
    ("Nachhaltige Beschaffung und Sozialstandards in Lieferketten", "Düsseldorf"),
    ("Geflüchtete Frauen als Akteurinnen der Entwicklungszusammenarbeit stärken", "Gelsenkirchen"),
]


def need(i: int, tag: str) -> dict:
    """Request body number ``i``: one of the needs, made unique by ``tag`` and ``i``."""
    text, city = NEEDS[i % len(NEEDS)]
    return {"text": f"{text} (Anfrage {tag}-{i})", "city": city, "k": 10}


def percentiles(seconds: list[float] | np.ndarray) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "mean_ms": round(float(ms.mean()), 1), "n": int(ms.size)}


@dataclass
class Interleaved:
    http: dict
    floor: dict            # encode + one product over every stored catalog vector
    floor_profiles: dict   # encode + one product over the whole-profile vectors only
    floor_kind: dict       # encode + one product over the advisors' stored vectors only
    naive: dict


def interleaved_latency(base_url: str, embedder, profiles: np.ndarray, stored: np.ndarray, kind_stored: np.ndarray,
                        requests_n: int, tag: str, warmup: int = 5) -> Interleaved:
    """Per query: floor, naive peer, then HTTP; p50/p95/p99 of each over ``requests_n`` queries.

    ``stored`` holds every stored catalog vector (whole profiles and unique passages),
    ``kind_stored`` the advisors' part of it, ``profiles`` the whole-profile vectors, which the
    naive peer searches.
    """
    import torch
    from sentence_transformers.util import semantic_search

    corpus = torch.from_numpy(profiles)
    session = requests.Session()
    floor, floor_profiles, floor_kind, naive, http = [], [], [], [], []
    for i in range(warmup + requests_n):
        body = need(i, tag)
        t0 = time.perf_counter()
        q = embedder.encode([body["text"]], "query")
        t1 = time.perf_counter()
        scores = stored @ q[0]
        t2 = time.perf_counter()
        profile_scores = profiles @ q[0]
        t3 = time.perf_counter()
        kind_scores = kind_stored @ q[0]
        t3k = time.perf_counter()
        q = embedder.encode([body["text"]], "query")
        hits = semantic_search(torch.from_numpy(q), corpus, top_k=10)
        t4 = time.perf_counter()
        r = session.post(f"{base_url}/v1/recommendations/advisors", json=body, timeout=300)
        t5 = time.perf_counter()
        r.raise_for_status()
        assert scores.shape == (stored.shape[0],) and profile_scores.shape == (profiles.shape[0],)
        assert kind_scores.shape == (kind_stored.shape[0],)
        assert len(hits[0]) == min(10, profiles.shape[0])
        if i >= warmup:
            floor.append(t2 - t0)
            floor_profiles.append((t1 - t0) + (t3 - t2))
            floor_kind.append((t1 - t0) + (t3k - t3))
            naive.append(t4 - t3k)
            http.append(t5 - t4)
    return Interleaved(percentiles(http), percentiles(floor), percentiles(floor_profiles), percentiles(floor_kind),
                       percentiles(naive))


def concurrency(base_url: str, clients: int, per_client: int, tag: str) -> dict:
    """``clients`` threads, each a bounded loop of ``per_client`` requests on its own connection."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(c: int) -> None:
        session = requests.Session()
        mine = []
        barrier.wait()
        for i in range(per_client):
            t = time.perf_counter()
            try:
                r = session.post(f"{base_url}/v1/recommendations/advisors", json=need(c * per_client + i, f"{tag}c{c}"),
                                 timeout=300)
                r.raise_for_status()
            except requests.RequestException as exc:
                with lock:
                    errors.append(str(exc))
                continue
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests at {clients} clients: {errors[0]}")
    return {"clients": clients, "requests": len(latencies), "seconds": round(wall, 2),
            "throughput_rps": round(len(latencies) / wall, 2), **percentiles(latencies)}
