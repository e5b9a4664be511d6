"""One data source: the command line reads and writes the store the server reads, with one vector cache.

The server and the ``matcher`` command are separate processes here too (a gunicorn server and a
subprocess of the installed command), as in production.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from conftest import FIXTURES
from matcher.store import Store

pytestmark = pytest.mark.slow

EVENT = {"id": "evt-901", "kind": "event", "name": "Netzwerktreffen Diaspora und Kommune Dortmund",
         "description": "Austausch von Migrantenorganisationen und kommunalen Stellen über gemeinsame Projekte "
                        "in der Entwicklungszusammenarbeit, mit Fokus auf Westafrika.",
         "city": "Dortmund", "date": "2027-03-10", "topics": ["Diaspora", "Kommunale Partnerschaften"],
         "languages": ["de", "fr"], "target_groups": ["migrant_organisation", "municipal_office"],
         "reach_km": 40}  # the invitees' reach: kept in the entity's record (issue 17)


def _matcher(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MATCHER_")}
    return subprocess.run([sys.executable, "-m", "matcher.cli", *args], capture_output=True, text=True,
                          env={**clean, "MATCHER_MODEL": "use", "MATCHER_THREADS": "1", **env}, timeout=300)


def test_an_event_created_over_the_api_is_invited_to_by_the_command_line(tmp_path, seed_store, server_process):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    seed_store(url)
    store = Store(url)
    editor = {"Authorization": f"Bearer {store.create_key('editor', 'Test')[1]}"}
    server = server_process(url)
    assert requests.post(f"{server.url}/v1/entities", json=EVENT, headers=editor, timeout=10).status_code == 201
    # a request makes the server refit on the new catalog version, encoding (and storing) the event's texts
    invitees = requests.post(f"{server.url}/v1/recommendations/invitees", json={"event": "evt-901", "k": 10},
                             headers=editor, timeout=60)
    assert invitees.status_code == 200, invitees.text
    assert all(r["explanation"]["distance_km"] <= 40 for r in invitees.json()["results"]), invitees.text
    assert next(e for e in store.snapshot()[1] if e.id == "evt-901").reach_km == 40
    vectors_before = store.vectors.count()

    proc = _matcher("invite", "--event", "evt-901", "--size", "5", MATCHER_DATABASE_URL=url)
    assert proc.returncode == 0, proc.stderr
    assert "Netzwerktreffen Diaspora und Kommune Dortmund" in proc.stdout and "(evt-901)" in proc.stdout
    assert "migrant_organisation" not in proc.stdout and "Migrantenorganisation" in proc.stdout  # labels, not codes
    assert store.vectors.count() == vectors_before, "the command line encoded what the server had stored"


def test_the_default_store_is_in_the_data_folder_never_the_current_one(tmp_path):
    data, work = tmp_path / "daten", tmp_path / "arbeit"
    work.mkdir()
    env = {"MATCHER_DATA_DIR": str(data)}
    info = subprocess.run([sys.executable, "-m", "matcher.cli", "info"], cwd=work, capture_output=True, text=True,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("MATCHER_")}, **env})
    assert str(data / "matcher.db") in info.stdout and "nicht eingerichtet" in info.stdout
    assert _matcher("db", "upgrade", **env).returncode == 0
    loaded = _matcher("load", str(FIXTURES / "catalog.jsonl"), **env)
    assert loaded.returncode == 0 and "170 neu" in loaded.stdout
    assert (data / "matcher.db").is_file() and list(work.iterdir()) == []


def test_an_empty_store_says_how_to_fill_it(tmp_path):
    env = {"MATCHER_DATA_DIR": str(tmp_path)}
    assert _matcher("db", "upgrade", **env).returncode == 0
    proc = _matcher("rank", "--task", "advisors", "--text", "Faire Beschaffung", **env)
    assert proc.returncode == 2 and "ist leer" in proc.stderr and "matcher load" in proc.stderr
    assert "Traceback" not in proc.stderr
