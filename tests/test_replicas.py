"""Two real app instances (gunicorn subprocesses) on one PostgreSQL database see each other's writes."""

from __future__ import annotations

import re
import time

import pytest
import requests

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _poll(check, timeout: float = 30.0) -> float:
    """Seconds until ``check()`` is true (fails after ``timeout``)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "never became true"
        time.sleep(0.02)
    return time.monotonic() - started


def _fit_seconds(server) -> float:
    metrics = requests.get(f"{server.url}/metrics", timeout=10).text
    return float(re.search(r"^matcher_fit_seconds (\S+)$", metrics, re.M).group(1))


def test_two_instances_on_one_postgresql_see_each_others_writes(postgres_url, seed_store, server_process):
    from matcher.store import Store

    seed_store(postgres_url)
    store = Store(postgres_url)
    editor = {"Authorization": f"Bearer {store.create_key('editor', 'replica test')[1]}"}
    store.close()
    a = server_process(postgres_url, wait=False)
    b = server_process(postgres_url, wait=False)
    a.wait_ready(), b.wait_ready()

    person = {"id": "adv-replica", "kind": "advisor", "name": "Replika Testperson", "city": "Minden",
              "description": "Berät Kommunen zu Partnerschaften mit Genossenschaften für Sisal in Tansania.",
              "topics": ["Sisal"], "languages": ["de", "sw"]}
    assert requests.post(f"{a.url}/v1/entities", json=person, headers=editor, timeout=10).status_code == 201
    written = time.monotonic()
    seen_by_b = _poll(lambda: requests.get(f"{b.url}/v1/entities/adv-replica", headers=editor, timeout=5).ok)
    assert seen_by_b < 1.0, f"B saw A's write after {seen_by_b:.2f} s"

    def b_recommends_it() -> bool:
        r = requests.post(f"{b.url}/v1/recommendations/advisors", headers=editor, timeout=60,
                          json={"text": "Sisal-Genossenschaften in Tansania", "k": 3})
        return r.json()["results"][0]["entity"]["id"] == "adv-replica"

    _poll(b_recommends_it)
    in_recommendations = time.monotonic() - written
    refit = _fit_seconds(b)
    # the catalog version is checked on every request; the rest is the engine refitting the catalog
    assert in_recommendations < 1.0 + refit, f"{in_recommendations:.2f} s, refit {refit:.2f} s"

    # and the other way round: B replaces, A sees the new name
    person["name"] = "Replika Umbenannt"
    assert requests.put(f"{b.url}/v1/entities/adv-replica", json=person, headers=editor, timeout=10).ok
    seen_by_a = _poll(lambda: requests.get(f"{a.url}/v1/entities/adv-replica", headers=editor,
                                           timeout=5).json()["name"] == "Replika Umbenannt")
    assert seen_by_a < 1.0
    r = requests.post(f"{a.url}/v1/recommendations/advisors", headers=editor, timeout=60,
                      json={"text": "Sisal-Genossenschaften in Tansania", "k": 1}).json()
    assert r["results"][0]["entity"]["name"] == "Replika Umbenannt"
    print(f"\nreplicas: read-after-write {seen_by_b:.3f} s / {seen_by_a:.3f} s; "
          f"in B's recommendations after {in_recommendations:.2f} s (refit {refit:.2f} s)")
