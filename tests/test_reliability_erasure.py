"""Erasure that erases (issue 16): after ``DELETE /v1/entities/ID?erase=true`` nothing of the person is
left — not in the raw bytes of the SQLite store (main file, ``-wal``, ``-shm``, anything beside them),
not in any answer the API gives (jobs, their CSV and XLSX exports, the catalog, recommendations, the
invitation history, the landscape, the web page) and not in the audit log, whose entries get a
pseudonym each. Old jobs still load and show "gelöschter Eintrag".

The person is an advisor with a unique name, e-mail, phone and contact person, created over the API
and made to appear everywhere first: in an invitation job, an assignment job (its result, its
parameters and its blockage messages) and a failed assignment job (its error), in two recommendations
(audit log), in feedback, in the invitation history and in the exports. Each of those places is first
shown to hold the person (the search can find it), then searched again after the erasure.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from bench.reliability.report import record
from matcher.store import jobs

ADVISOR_ID = "adv-qvx-4711"
NAME = "Quirinus Vexelbäumer"
EMAIL = "quirinus.vexel-4711@beispiel-erasure.org"
PHONE = "+49 201 98765 4321"
PERSON = "Ottilie Brandvogt-Zimmek"
NEEDLES = (NAME, EMAIL, PHONE, PERSON)
TOPIC = "Solarkocher für Partnerschaften in Burkina Faso"
ERASED_NAME = "gelöschter Eintrag"

ADVISOR = {
    "id": ADVISOR_ID, "kind": "advisor", "name": NAME, "city": "Essen", "lat": 51.4556, "lon": 7.0116,
    # the event's own words: the advisor is among the best candidates of the invitation list
    "description": "Wie gelingt eine Zusammenarbeit auf Augenhöhe zwischen Kommunen und Migrantenorganisationen? "
                   f"Ich berate Diaspora-Vereine und Verwaltungen zu {TOPIC} und zu Projektpartnerschaften.",
    "topics": ["Diaspora", "Migrantenorganisationen", "Projektpartnerschaften", "Solarkocher"],
    "languages": ["de", "gn"],   # the only Guaraní speaker: requests needing it compete for this advisor
    "contact": {"person": PERSON, "email": EMAIL, "phone": PHONE},
}
INVITATIONS = {"event": "evt-113", "size": 12, "waitlist": 6, "include_advisors": True, "as_of": "2026-11-22"}
REQUESTS = [
    {"id": "req-qu-1", "text": TOPIC, "city": "Essen", "languages": ["gn"]},
    {"id": "req-qu-2", "text": TOPIC, "city": "Essen", "languages": ["gn"]},
    {"id": "req-conflict", "text": TOPIC, "city": "Essen", "conflicts": [ADVISOR_ID]},
]


def variants(needle: str) -> list[bytes]:
    """How a string can sit in a file: UTF-8, and JSON's ASCII escapes (SQLite's JSON columns)."""
    return list(dict.fromkeys([needle.encode(), json.dumps(needle)[1:-1].encode(),
                               needle.casefold().encode(), json.dumps(needle.casefold())[1:-1].encode()]))


def hits(blob: bytes, needles: Iterable[str] = NEEDLES) -> list[str]:
    """The needles found in ``blob`` (an XLSX is unzipped and each of its XML parts searched)."""
    parts = [blob]
    if blob[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            parts = [z.read(name) for name in z.namelist()]
    folded = [p.lower() for p in parts]
    return [n for n in needles if any(v.lower() in p for v in variants(n) for p in folded)]


def store_files(folder: Path) -> dict[str, bytes]:
    """Every file of the store's folder (main database, -wal, -shm, journals, anything else)."""
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class Answers:
    """Every answer the test fetched, with the needles each held."""

    def __init__(self, client, headers: dict[str, dict[str, str]]):
        self.client, self.headers = client, headers
        self.checked: list[tuple[str, list[str]]] = []

    def fetch(self, method: str, url: str, role: str = "admin", **kwargs: Any) -> Any:
        r = self.client.open(url, method=method, headers=self.headers[role], **kwargs)
        assert r.status_code < 500, (url, r.status_code, r.get_data(as_text=True)[:300])
        self.checked.append((f"{role} {method} {url} → {r.status_code}", hits(r.get_data())))
        return r

    def add(self, label: str, blob: bytes) -> None:
        self.checked.append((label, hits(blob)))

    @property
    def leaks(self) -> list[tuple[str, list[str]]]:
        return [(label, found) for label, found in self.checked if found]


def poll(client, headers: dict[str, str], job_id: str, timeout: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not finished after {timeout} s")


def fetch_everything(answers: Answers, job_ids: dict[str, str], roles: Iterable[str]) -> None:
    """Every answer that could name the advisor, for each role."""
    for role in roles:
        for kind, job_id in job_ids.items():
            answers.fetch("GET", f"/v1/jobs/{job_id}", role)
            if kind != "failed":
                answers.fetch("GET", f"/v1/jobs/{job_id}/export.csv", role)
                answers.fetch("GET", f"/v1/jobs/{job_id}/export.csv?delimiter=;", role)
                answers.fetch("GET", f"/v1/jobs/{job_id}/export.xlsx", role)
        answers.fetch("GET", f"/v1/entities/{ADVISOR_ID}", role)
        offset, total = 0, 1
        while offset < total:
            page = answers.fetch("GET", f"/v1/entities?limit=100&offset={offset}", role).json
            offset, total = offset + 100, page["total"]
        answers.fetch("GET", "/v1/entities?kind=advisor&city=Essen", role)
        answers.fetch("POST", "/v1/recommendations/advisors", role, json={"text": TOPIC, "city": "Essen", "k": 10})
        answers.fetch("POST", "/v1/recommendations/advisors", role,
                      json={"text": TOPIC, "city": "Essen", "languages": ["gn"], "k": 10})
        answers.fetch("POST", "/v1/recommendations/invitees", role, json={"event": "evt-113", "k": 40})
        answers.fetch("GET", "/v1/invitations?limit=500", role)
        answers.fetch("GET", f"/v1/invitations?entity={ADVISOR_ID}", role)
        answers.fetch("GET", "/v1/landscape?city=Essen&limit=200", role)
        answers.fetch("GET", "/v1/landscape/report.html?city=Essen", role)
        answers.fetch("GET", "/v1/landscape/report.xlsx?city=Essen", role)
        answers.fetch("GET", "/", role)


def make_the_advisor_appear_everywhere(client, auth: dict[str, dict[str, str]]) -> dict[str, str]:
    """Create the advisor over the API and put it into jobs, the audit log, feedback and the
    invitation history; return the job ids by kind."""
    assert client.post("/v1/entities", headers=auth["editor"], json=ADVISOR).status_code == 201
    recs = [client.post("/v1/recommendations/advisors", headers=auth["editor"],
                        json={"text": TOPIC, "city": "Essen", "languages": languages, "k": 5}).json
            for languages in ([], ["gn"])]
    for rec in recs:
        assert ADVISOR_ID in [r["entity"]["id"] for r in rec["results"]], rec
    r = client.post("/v1/feedback", headers=auth["editor"],
                    json={"recommendation_id": recs[0]["id"], "entity_id": ADVISOR_ID, "outcome": "contacted"})
    assert r.status_code == 201, r.json

    submitted = {
        "invitations": client.post("/v1/jobs/invitations", headers=auth["editor"], json=INVITATIONS),
        # capacity 1 for two requests only this advisor can serve: one is blocked, and the message names him
        "assignments": client.post("/v1/jobs/assignments", headers=auth["editor"], json={
            "requests": REQUESTS, "capacities": {ADVISOR_ID: 1}, "allow_partial": True, "alternates": 3}),
        "failed": client.post("/v1/jobs/assignments", headers=auth["editor"], json={
            "requests": REQUESTS, "capacities": {ADVISOR_ID: 1}, "allow_partial": False}),
    }
    job_ids = {}
    for kind, r in submitted.items():
        assert r.status_code == 202, (kind, r.json)
        job = poll(client, auth["editor"], r.json["id"])
        assert job["state"] == ("failed" if kind == "failed" else "done"), (kind, job["error"])
        job_ids[kind] = job["id"]
    r = client.post("/v1/invitations", headers=auth["editor"], json={"job": job_ids["invitations"]})
    assert r.status_code == 201, r.json
    if ADVISOR_ID not in r.json["recorded"]:   # on the waitlist: record the invitation by hand
        r = client.post("/v1/invitations", headers=auth["editor"],
                        json={"event": "evt-113", "entity_ids": [ADVISOR_ID]})
        assert r.status_code == 201, r.json
    return job_ids


def test_erasure_leaves_nothing_in_the_store_files_or_any_answer(make_app, tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    app = make_app(f"sqlite:///{folder / 'matcher.db'}")
    store = app.extensions["matcher"].store
    client = app.test_client()
    auth = {role: {"Authorization": f"Bearer {store.create_key(role, f'erasure {role}')[1]}"}
            for role in ("reader", "editor", "admin")}
    job_ids = make_the_advisor_appear_everywhere(client, auth)

    # before: every place holds the advisor, so the searches below can find it
    stored = {kind: store.jobs.get(job_id) for kind, job_id in job_ids.items()}
    assert NAME in json.dumps(stored["invitations"].result, ensure_ascii=False)
    assert ADVISOR_ID in json.dumps(stored["assignments"].params)                 # capacities, by id
    assert hits(json.dumps(stored["assignments"].result, ensure_ascii=False).encode()) == [NAME]
    assert hits(json.dumps(stored["failed"].error, ensure_ascii=False).encode()) == [NAME]
    shown_in = [e for e in store.audit_entries(1000) if ADVISOR_ID in e["shown"]]
    assert len(shown_in) == 2 and store.feedback_for(ADVISOR_ID)
    before = Answers(client, auth)
    fetch_everything(before, job_ids, ["editor"])
    assert set(NEEDLES) <= {n for _, found in before.checked for n in found}
    audited = [e["id"] for e in store.audit_entries(1000) if ADVISOR_ID in e["shown"]]   # the fetches added some
    assert hits(b"".join(store_files(folder).values())) == list(NEEDLES)

    r = client.delete(f"/v1/entities/{ADVISOR_ID}?erase=true", headers=auth["admin"])

    assert r.status_code == 200, r.json
    report = r.json
    assert report["jobs_redacted"] == 3 and report["feedback"] == 1 and report["audit_entries"] == len(audited)
    assert report["invitations"] == 1 and report["checkpoint"] == "complete"
    after = Answers(client, auth)
    after.add("erasure report", r.get_data())
    fetch_everything(after, job_ids, ["reader", "editor", "admin"])
    after.add("audit log (store)", json.dumps(store.audit_entries(10_000), default=str, ensure_ascii=False).encode())
    files = store_files(folder)
    file_hits = {name: hits(blob) for name, blob in files.items()}
    record("erasure", needles=len(NEEDLES), files_checked=sorted(files),
           file_hits=sum(len(found) for found in file_hits.values()), answers_checked=len(after.checked),
           answer_hits=sum(len(found) for _, found in after.leaks), jobs_redacted=report["jobs_redacted"],
           checkpoint=report["checkpoint"])

    assert {"matcher.db", "matcher.db-wal"} <= set(files)
    assert not any(file_hits.values()), f"erased data in the store's files: {file_hits}"
    # nor its id: every reference (jobs, audit, feedback, invitations, vectors' owner rows) went with it
    assert not [name for name, blob in files.items() if ADVISOR_ID.encode() in blob]
    assert not after.leaks, f"erased data in answers: {after.leaks}"
    assert len(after.checked) > 50

    # the old jobs still load, and show the advisor as a deleted entry under a token of their own
    owner = auth["editor"]    # jobs belong to the key that made them
    invitation = client.get(f"/v1/jobs/{job_ids['invitations']}", headers=owner).json["result"]
    erased = [p for p in invitation["invitees"] + invitation["waitlist"] if p["name"] == ERASED_NAME]
    assert len(erased) == 1 and erased[0]["id"].startswith("gelöscht-")
    assert erased[0]["entity"] == {"id": erased[0]["id"], "kind": "advisor", "name": ERASED_NAME}
    assignment = client.get(f"/v1/jobs/{job_ids['assignments']}", headers=owner).json["result"]
    tokens = {a["advisor"]["id"] for a in assignment["assignments"] if a["advisor"] and
              a["advisor"]["name"] == ERASED_NAME}
    assert len(tokens) == 1 and tokens <= set(assignment["load"])       # one job, one consistent token
    assert tokens.isdisjoint({erased[0]["id"]})                          # another job, another token
    assert all(a["explanation"] is None for a in assignment["assignments"]
               if a["advisor"] and a["advisor"]["name"] == ERASED_NAME)
    assert ERASED_NAME in client.get(f"/v1/jobs/{job_ids['failed']}", headers=owner).json["error"]["message"]
    csv_text = client.get(f"/v1/jobs/{job_ids['assignments']}/export.csv", headers=auth["editor"]).get_data(
        as_text=True)
    assert ERASED_NAME in csv_text and ADVISOR_ID not in csv_text
    with store.db.read() as conn:
        assert not [j for j in conn.execute(select(jobs.c.params, jobs.c.result, jobs.c.error)).all()
                    if ADVISOR_ID in json.dumps(list(j))]

    # each audit entry that showed the advisor has a pseudonym of its own
    entries = {e["id"]: e for e in store.audit_entries(1000)}
    pseudonyms = [next(s for s in entries[i]["shown"] if s.startswith("gelöscht-")) for i in audited]
    assert len(pseudonyms) >= 2 and len(set(pseudonyms)) == len(pseudonyms)

    # the catalog version moved, so the engine refitted without the advisor (no in-process copy serves it)
    version, matcher = app.extensions["matcher"].live.current()
    assert version == report["catalog_version"] and ADVISOR_ID not in matcher.index_.row
    # recording the old invitation job's list skips the deleted entry
    r = client.post("/v1/invitations", headers=auth["editor"], json={"job": job_ids["invitations"], "event": "evt-113"})
    assert r.status_code == 201 and all(not i.startswith("gelöscht-") for i in r.json["recorded"] +
                                        r.json["already_recorded"])


class HttpClient:
    """The few calls of Flask's test client the scenario uses, over real HTTP (``requests``)."""

    class Answer:
        def __init__(self, r: requests.Response):
            self.status_code, self._r = r.status_code, r
            self.json = r.json() if r.headers.get("Content-Type", "").startswith("application/json") else None

        def get_data(self, as_text: bool = False) -> Any:
            return self._r.text if as_text else self._r.content

    def __init__(self, base: str):
        self.base, self.session = base, requests.Session()

    def open(self, url: str, method: str = "GET", headers: dict | None = None, json: Any = None) -> Answer:
        return self.Answer(self.session.request(method, self.base + url, headers=headers, json=json, timeout=120))

    def get(self, url: str, **kwargs: Any) -> Answer:
        return self.open(url, "GET", **kwargs)

    def post(self, url: str, **kwargs: Any) -> Answer:
        return self.open(url, "POST", **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Answer:
        return self.open(url, "DELETE", **kwargs)


@pytest.mark.slow
def test_erasure_through_gunicorn_with_two_workers_leaves_nothing_in_the_files(seed_store, server_process, tmp_path):
    """The same, erased through a real server whose two worker processes both hold connections to the
    SQLite file: the checkpoint still completes, and the other worker answers without the person."""
    from matcher.store import Store

    folder = tmp_path / "served"
    folder.mkdir()
    url = f"sqlite:///{folder / 'matcher.db'}"
    seed_store(url)
    keys = Store(url)
    auth = {role: {"Authorization": f"Bearer {keys.create_key(role, f'erasure {role}')[1]}"}
            for role in ("reader", "editor", "admin")}
    keys.close()
    server = server_process(url, workers=2)
    client = HttpClient(server.url)
    job_ids = make_the_advisor_appear_everywhere(client, auth)
    for _ in range(8):    # both workers have served (and opened connections) by now, most likely
        client.get(f"/v1/jobs/{job_ids['invitations']}", headers=auth["editor"])

    r = client.delete(f"/v1/entities/{ADVISOR_ID}?erase=true", headers=auth["admin"])

    assert r.status_code == 200 and r.json["checkpoint"] == "complete" and r.json["jobs_redacted"] == 3, r.json
    after = Answers(client, auth)
    fetch_everything(after, job_ids, ["editor"])
    files = store_files(folder)
    file_hits = {name: hits(blob) for name, blob in files.items() if hits(blob)}
    assert "matcher.db-wal" in files and not file_hits, file_hits
    assert not after.leaks, after.leaks


@pytest.mark.postgres
def test_erasure_redacts_job_results_on_postgresql(make_app, postgres_url):
    app = make_app(postgres_url)
    store = app.extensions["matcher"].store
    client = app.test_client()
    auth = {role: {"Authorization": f"Bearer {store.create_key(role, f'erasure {role}')[1]}"}
            for role in ("reader", "editor", "admin")}
    job_ids = make_the_advisor_appear_everywhere(client, auth)
    with store.db.read() as conn:
        assert hits(json.dumps([list(r) for r in conn.execute(select(jobs.c.params, jobs.c.result, jobs.c.error))],
                               ensure_ascii=False).encode())

    r = client.delete(f"/v1/entities/{ADVISOR_ID}?erase=true", headers=auth["admin"])

    assert r.status_code == 200 and r.json["jobs_redacted"] == 3 and r.json["checkpoint"] == "not_applicable"
    with store.db.read() as conn:
        rows = [list(r) for r in conn.execute(select(jobs.c.params, jobs.c.result, jobs.c.error))]
    dump = json.dumps(rows, ensure_ascii=False)
    assert not hits(dump.encode()) and ADVISOR_ID not in dump and ERASED_NAME in dump
    after = Answers(client, auth)
    fetch_everything(after, job_ids, ["editor"])
    assert not after.leaks, after.leaks


# ---------------------------------------------------------------- the parts, on both backends
def _advisor(entity_id: str, name: str):
    from matcher.domain.schema import parse_entity

    return parse_entity({"id": entity_id, "kind": "advisor", "name": name, "city": "Köln",
                         "description": "Berät Kommunen zu fairer Beschaffung.", "topics": ["Faire Beschaffung"],
                         "contact": {"person": "Paula Platzhalter", "email": f"{entity_id}@example.org"}})


def test_the_redactor_replaces_records_ids_names_and_keys_and_keeps_the_rest():
    from matcher.store.job_redaction import JobRedactor

    record = {"id": "adv-1", "kind": "advisor", "name": "Erika Alt", "description": "Beschreibung", "city": "Köln",
              "contact": {"email": "erika@example.org"}}
    stored = {"params": {"capacities": {"adv-1": 1, "adv-10": 2}, "request_ids": ["r-1"]},
              "result": {"assignments": [
                  {"request": {"id": "r-1", "conflicts": ["adv-1", "adv-10"], "text": "wie Erika Alt (adv-1)."},
                   "advisor": record, "score": 1.5, "explanation": {"best_passage": "Beschreibung"},
                   "alternates": [{"id": "adv-10", "name": "Max Andere", "score": 1.0, "free": 1}]},
                  {"request": {"id": "r-2"}, "advisor": {"id": "adv-10", "kind": "advisor", "name": "Max Andere"},
                   "explanation": {"reasons": ["passt"]},
                   "alternates": [{"id": "adv-1", "name": "Erika Alt", "score": 0.9, "free": 0}]}],
                  "load": {"adv-1": {"assigned": 1}, "adv-10": {"assigned": 1}}},
              "error": None}
    redactor = JobRedactor("adv-1", {"Erika Neu"})   # the catalog's name now; the job holds an older one

    out = redactor.job(stored)

    dump = json.dumps(out, ensure_ascii=False)
    assert "adv-1\"" not in dump and "Erika" not in dump and "erika@" not in dump and "Beschreibung" not in dump
    first, second = out["result"]["assignments"]
    token = first["advisor"]["id"]
    assert token.startswith("gelöscht-") and first["advisor"] == {"id": token, "kind": "advisor",
                                                                   "name": ERASED_NAME}
    assert first["explanation"] is None and first["score"] == 1.5
    assert first["request"]["conflicts"] == [token, "adv-10"]
    assert first["request"]["text"] == f"wie {ERASED_NAME} ({token})."
    assert second["advisor"]["name"] == "Max Andere" and second["explanation"] == {"reasons": ["passt"]}
    assert second["alternates"] == [{"id": token, "name": ERASED_NAME, "score": 0.9, "free": 0}]
    assert set(out["result"]["load"]) == {token, "adv-10"}
    assert out["params"] == {"capacities": {token: 1, "adv-10": 2}, "request_ids": ["r-1"]}
    assert redactor.job(stored)["result"]["load"].keys() != out["result"]["load"].keys()   # a new token a job
    assert redactor.job({"params": {"event": "adv-10"}}) == {"params": {"event": "adv-10"}}
    message = JobRedactor("adv-1", {"Eva"}).job({"error": {"message": "Evaluation: Eva (adv-1) ist voll."}})
    assert re.fullmatch(rf"Evaluation: {ERASED_NAME} \(gelöscht-[0-9a-f]{{16}}\) ist voll\.",
                        message["error"]["message"])


def test_a_job_running_during_an_erasure_is_stopped_and_cannot_store_its_result(store):
    store.upsert_entities([_advisor("adv-a", "Anna Aaa"), _advisor("adv-b", "Bert Bbb")])
    running = store.jobs.create("invitations", {"event": "evt-1", "size": 2}, owner="me")
    queued = store.jobs.create("invitations", {"event": "evt-1", "size": 2}, owner="me")
    done = store.jobs.create("invitations", {"event": "evt-1", "size": 2}, owner="me")
    for job in (running, done):
        assert store.jobs.start(job.id, "me")
    assert store.jobs.finish(done.id, "me", {"invitees": [{"id": "adv-b", "name": "Bert Bbb", "rank": 1}]})

    report = store.delete_entity("adv-a", erase=True)

    assert report["jobs_stopped"] == 2 and report["jobs_redacted"] == 0
    assert not store.jobs.finish(running.id, "me", {"invitees": [{"id": "adv-a", "name": "Anna Aaa"}]})
    for job in (running, queued):
        stopped = store.jobs.get(job.id)
        assert stopped.state == "failed" and stopped.result is None and "gelöscht" in stopped.error["message"]
    assert store.jobs.get(done.id).result["invitees"][0]["name"] == "Bert Bbb"   # another entity's: untouched
    assert report["checkpoint"] == ("complete" if store.dialect == "sqlite" else "not_applicable")


def test_a_result_computed_before_a_refit_is_redacted_before_it_is_stored(store):
    from matcher.store.job_redaction import redact_vanished

    store.upsert_entities([_advisor("adv-a", "Anna Aaa"), _advisor("adv-b", "Bert Bbb")])
    version = store.catalog_version()
    result = {"invitees": [{"id": "adv-a", "name": "Anna Aaa", "rank": 1, "entity": {"id": "adv-a", "kind": "advisor",
                                                                                      "name": "Anna Aaa"}},
                           {"id": "adv-b", "name": "Bert Bbb", "rank": 2}]}
    assert redact_vanished(store, version, result) is result          # the catalog has not moved
    store.delete_entity("adv-a", erase=True)

    out = redact_vanished(store, version, result)

    assert [p["name"] for p in out["invitees"]] == [ERASED_NAME, "Bert Bbb"]
    assert "Anna" not in json.dumps(out) and "adv-a" not in json.dumps(out)


def test_the_checkpoint_says_when_a_reader_blocks_it(tmp_path):
    import sqlite3

    from matcher.store import Store

    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    store.upgrade()
    store.upsert_entities([_advisor("adv-a", "Anna Aaa")])
    reader = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM entities").fetchone()        # holds a snapshot of the log
    store.upsert_entities([_advisor("adv-b", "Bert Bbb")])
    try:
        assert store.db.checkpoint(attempts=3, pause=0.01) == "blocked"
    finally:
        reader.execute("COMMIT")
        reader.close()
    assert store.db.checkpoint() == "complete" and (tmp_path / "m.db-wal").stat().st_size == 0
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    store.close()
