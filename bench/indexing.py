"""Row 3: indexing throughput of a bulk import, against bare ``encode`` of the same texts.

``POST /v1/entities/import`` (JSON Lines) of new generated profiles into a running server, until
they are searchable: the matcher the server answers with is fitted on the new catalog version
(``/readyz`` reports it), which means every new text is encoded and stored and the engine refitted.
One advisors request after the import starts the refit, as any request would.

The baseline encodes exactly the texts the server had to encode (the new profiles' texts that
the store holds no vector for; the server's ``matcher_texts_encoded`` counter confirms the
number) with the bare default embedder in this process.
"""

from __future__ import annotations

import json
import time

import requests

from bench.generate_catalog import generate_catalog
from bench.latency import need
from matcher.domain.schema import parse_entity
from matcher.engine.embedding import CachedEmbedder
from matcher.store import Store
from matcher.text.profile import passages, profile_text

__all__ = ["new_profiles", "texts_to_encode", "editor_key", "bulk_import"]


def new_profiles(source, n: int, seed: int) -> list[dict]:
    """``n`` generated profiles with ids that no generated catalog uses (``…-imp…``)."""
    records = generate_catalog(source, n, seed)
    for r in records:
        r["id"] = r["id"].replace("-g", "-imp", 1)
    return records


def texts_to_encode(records: list[dict], database_url: str, model_id: str) -> list[str]:
    """The texts of ``records`` that the store has no vector for (what the server must encode)."""
    texts = list(dict.fromkeys(t for r in records for e in [parse_entity(r)] for t in [profile_text(e), *passages(e)]))
    store = Store(database_url)
    found = store.vectors.get_many(model_id, [CachedEmbedder.key(t, "passage") for t in texts])
    store.close()
    return [t for t in texts if CachedEmbedder.key(t, "passage") not in found]


def editor_key(database_url: str) -> str:
    """A new editor key in the store (imports need one)."""
    store = Store(database_url)
    _, secret = store.create_key("editor", "bench")
    store.close()
    return secret


def bulk_import(base_url: str, records: list[dict], texts: list[str], embedder, encoded_before: float,
                metric, key: str) -> dict:
    """Import ``records`` and wait until searchable, with bare ``encode`` of ``texts`` around it
    (half before, half after). Returns both rates and the server's last fit time."""
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode("utf-8")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    # the bare baseline encodes half of the texts just before the import and half just after, so
    # that a change in the machine's load during the run weighs on both sides alike
    t = time.perf_counter()
    embedder.encode(texts[::2], "passage")
    t_bare = time.perf_counter() - t
    t0 = time.perf_counter()
    r = session.post(f"{base_url}/v1/entities/import", data=body, headers={"Content-Type": "application/x-ndjson"},
                     timeout=600)
    r.raise_for_status()
    version = r.json()["catalog_version"]
    t_import = time.perf_counter() - t0
    session.post(f"{base_url}/v1/recommendations/advisors", json=need(0, "import-trigger"),
                 timeout=600).raise_for_status()
    while True:
        ready = session.get(f"{base_url}/readyz", timeout=60).json()
        if ready["catalog_version"] >= version:
            break
        time.sleep(0.2)   # a poll costs the server CPU it would otherwise spend encoding; 0.2 s is < 1 % of the time
    t_searchable = time.perf_counter() - t0
    encoded = metric("matcher_texts_encoded") - encoded_before - 1  # minus the trigger request's query text
    t = time.perf_counter()
    embedder.encode(texts[1::2], "passage")
    t_bare += time.perf_counter() - t
    service_rate = len(records) / t_searchable
    bare_rate = len(records) / t_bare
    return {"profiles": len(records), "texts_encoded_by_server": int(encoded), "texts_encoded_bare": len(texts),
            "import_request_seconds": round(t_import, 2), "searchable_after_seconds": round(t_searchable, 2),
            "bare_encode_seconds": round(t_bare, 2), "service_profiles_per_s": round(service_rate, 2),
            "bare_profiles_per_s": round(bare_rate, 2), "ratio_to_bare": round(service_rate / bare_rate, 3),
            "server_fit_seconds": round(metric("matcher_fit_seconds"), 2), "entities_after": ready["entities"]}
