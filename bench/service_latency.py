"""Start-up time with N stored profiles and advisors-endpoint latency over real HTTP.

    python -m bench.service_latency --n 10000 --requests 300 --model use

1. builds (once, cached under ``var/bench/``) a SQLite store with N profiles
   recombined from ``fixtures/catalog.jsonl`` (seeded) and all their vectors,
   encoded for real by the model;
2. starts gunicorn (``service.wsgi:app``, 1 worker, 4 threads) on a loopback
   port and measures the time from spawn to ``/readyz`` = 200, and the texts
   the server encoded during start-up (``matcher_texts_encoded``, must be 0);
3. sends ``--requests`` advisor recommendations one after another (after 5
   warm-up requests) and reports p50/p99 of the client-side latency.

Writes the figures to ``bench/results/service_latency.json``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_store(url: str, n: int, seed: int, model: str) -> None:
    """Migrate, load N recombined profiles, and encode and store every vector (the slow, one-time part)."""
    from bench.generate_catalog import generate_catalog
    from matcher.embedding import make_embedder
    from matcher.live import LiveMatcher, StoreBackedEmbedder
    from matcher.schema import parse_entity
    from matcher.store import Store

    store = Store(url)
    store.upgrade()
    store.upsert_entities([parse_entity(r) for r in generate_catalog(ROOT / "fixtures" / "catalog.jsonl", n, seed)])
    started = time.perf_counter()
    live = LiveMatcher(store, StoreBackedEmbedder(make_embedder(model), store)).fit()
    click.echo(f"encoded {live.embedder.encoded} texts and fitted in {time.perf_counter() - started:.0f} s", err=True)
    store.close()


def start_server(url: str, model: str, port: int, log: Path) -> tuple[subprocess.Popen, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MATCHER_DATABASE_URL": url, "MATCHER_MODEL": model,
           "MATCHER_OPEN_RECOMMENDATIONS": "true", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                             "--threads", "4", "--timeout", "1800", "service.wsgi:app"],
                            cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    while True:
        if proc.poll() is not None:
            raise click.ClickException(f"server exited: see {log}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc, time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.1)


@click.command()
@click.option("--n", "n", default=10_000, show_default=True, help="Stored profiles.")
@click.option("--seed", default=7, show_default=True)
@click.option("--requests", "n_requests", default=300, show_default=True, help="Measured advisor requests.")
@click.option("--model", default="use", show_default=True, help="Embedding model spec (MATCHER_MODEL).")
@click.option("--out", default="bench/results/service_latency.json", show_default=True)
def main(n: int, seed: int, n_requests: int, model: str, out: str) -> None:
    """Measure start-up with N stored profiles and advisors latency p50/p99 over HTTP."""
    work = ROOT / "var" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"matcher-{n}-{seed}-{re.sub(r'[^a-z0-9]+', '_', model)}.db"
    url = f"sqlite:///{db}"
    if not db.exists():
        build_store(url, n, seed, model)
    port = _free_port()
    proc, startup = start_server(url, model, port, work / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        encoded = float(re.search(r"^matcher_texts_encoded (\S+)$", requests.get(f"{base}/metrics").text, re.M)[1])
        session = requests.Session()
        latencies = []
        for i in range(5 + n_requests):
            text, city = NEEDS[i % len(NEEDS)]
            body = {"text": text if i < len(NEEDS) else f"{text} (Anfrage {i})", "city": city, "k": 10}
            t0 = time.perf_counter()
            r = session.post(f"{base}/v1/recommendations/advisors", json=body, timeout=120)
            elapsed = time.perf_counter() - t0
            r.raise_for_status()
            if i >= 5:
                latencies.append(elapsed)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    ms = np.array(latencies) * 1000
    result = {"profiles": n, "model": model, "startup_seconds": round(startup, 2),
              "texts_encoded_at_startup": int(encoded), "requests": len(ms),
              "advisors_p50_ms": round(float(np.percentile(ms, 50)), 1),
              "advisors_p99_ms": round(float(np.percentile(ms, 99)), 1),
              "advisors_mean_ms": round(float(ms.mean()), 1), "cpus": os.cpu_count()}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    click.echo(json.dumps(result, indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
