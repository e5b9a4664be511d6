"""``/v1/jobs`` and ``/v1/invitations`` over HTTP: the Flask test client for the API's behaviour, and
real gunicorn servers on loopback ports (SQLite and PostgreSQL) for polling and for a server killed
while its job runs."""

from __future__ import annotations

import csv
import io
import json
import signal
import time
from typing import Any

import pytest
import requests
from openapi_schema_validator import OAS31Validator
from openpyxl import load_workbook
from test_api import CONTACT_VALUES, assert_no_contact_data

from matcher.batch.export import CONTACT_COLUMNS, INVITATION_HEADER, invitation_table
from matcher.store import JobStore
from service.auth import ACCESS

AS_OF = "2026-11-22"
INVITATION_JOB = {"event": "evt-113", "size": 8, "quotas": ["migrant_organisation:0.4"], "max_per_city": 2,
                  "waitlist": 3, "as_of": AS_OF}
TIGRINYA = [{"id": f"ti-{k}", "text": "Tigrinya-sprachige Familien", "city": city, "languages": ["ti"]}
            for k, city in enumerate(["Köln", "Bonn", "Essen"])]


def auth(api_keys, role: str) -> dict[str, str]:
    return {"Authorization": api_keys[role]}


def poll(get, job_id: str, timeout: float = 120.0) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """GET the job until it is done or failed; return it and every (state, progress) seen."""
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get(job_id)
        seen.append((job["state"], job["progress"]))
        if job["state"] in ("done", "failed"):
            return job, seen
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} not finished after {timeout} s; seen {seen[-5:]}")


@pytest.fixture(scope="module")
def get_job(app, api_keys):
    client = app.test_client()

    def get(job_id: str, role: str = "reader") -> dict[str, Any]:
        r = client.get(f"/v1/jobs/{job_id}", headers=auth(api_keys, role))
        assert r.status_code == 200, r.json
        return r.json

    return get


@pytest.fixture(scope="module")
def invitation_job(app, api_keys, get_job):
    r = app.test_client().post("/v1/jobs/invitations", headers=auth(api_keys, "reader"), json=INVITATION_JOB)
    assert r.status_code == 202, r.json
    job, _ = poll(get_job, r.json["id"])
    assert job["state"] == "done", job["error"]
    return job


# ---------------------------------------------------------------- the test client
def test_a_job_is_accepted_with_202_and_a_location_then_done_with_its_result(client, api_keys, get_job):
    r = client.post("/v1/jobs/invitations", headers=auth(api_keys, "reader"), json=INVITATION_JOB)
    assert r.status_code == 202
    body = r.json
    assert r.headers["Location"] == f"/v1/jobs/{body['id']}"
    assert (body["kind"], body["state"], body["progress"], body["result"], body["error"]) == \
        ("invitations", "queued", 0, None, None)
    job, seen = poll(get_job, body["id"])
    assert job["state"] == "done" and job["progress"] == 100 and job["error"] is None
    assert [p for _, p in seen] == sorted(p for _, p in seen)
    result = job["result"]
    assert result["event"]["id"] == "evt-113" and len(result["invitees"]) == 8 and len(result["waitlist"]) == 3
    assert all(c["held"] for c in result["constraints"]) and result["feasible"]


def test_the_xlsx_export_opens_with_the_expected_header(client, api_keys, invitation_job):
    r = client.get(f"/v1/jobs/{invitation_job['id']}/export.xlsx", headers=auth(api_keys, "reader"))
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert r.headers["Content-Disposition"].startswith("attachment;") and ".xlsx" in r.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(r.data))
    ws = wb["Einladungen"]
    assert [c.value for c in ws[1]] == INVITATION_HEADER          # a reader's file has no contact columns
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    result = invitation_job["result"]
    assert [row[8] for row in rows] == [p["id"] for p in [*result["invitees"], *result["waitlist"]]]
    assert rows[0][:3] == ("Einladung", 1, result["invitees"][0]["name"]) and rows[-1][0] == "Warteliste"
    assert [c.value for c in wb["Vorgaben"][1]][:3] == ["Vorgabe", "eingehalten", "aufgehoben"]


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_the_csv_export_round_trips(client, api_keys, invitation_job, delimiter):
    r = client.get(f"/v1/jobs/{invitation_job['id']}/export.csv", query_string={"delimiter": delimiter},
                   headers=auth(api_keys, "reader"))
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.data.startswith(b"\xef\xbb\xbf")                     # UTF-8 with BOM, for Excel
    read = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"), newline=""), delimiter=delimiter))
    header, rows = invitation_table(invitation_job["result"])
    assert read[0] == header and len(read) == len(rows) + 1
    for written, original in zip(read[1:], rows):
        score = float(written[5].replace(",", ".")) if delimiter == ";" else float(written[5])
        assert score == pytest.approx(original[5], abs=1e-4)
        assert [w for k, w in enumerate(written) if k != 5] == [str(o) for k, o in enumerate(original) if k != 5]


def test_contact_data_only_for_editor_keys(app, client, api_keys, invitation_job, get_job):
    job_id = invitation_job["id"]
    reader = auth(api_keys, "reader")
    assert_no_contact_data(client.get(f"/v1/jobs/{job_id}", headers=reader))
    assert_no_contact_data(client.get(f"/v1/jobs/{job_id}/export.csv", headers=reader))
    xlsx = load_workbook(io.BytesIO(client.get(f"/v1/jobs/{job_id}/export.xlsx", headers=reader).data))
    cells = " ".join(str(c) for row in xlsx["Einladungen"].iter_rows(values_only=True) for c in row)
    assert not [v for v in CONTACT_VALUES if v in cells]
    staff = get_job(job_id, "admin")["result"]        # staff; an admin sees every key's job
    emails = [p["entity"]["contact"]["email"] for p in staff["invitees"] if p["entity"].get("contact", {}).get("email")]
    assert emails
    staff_file = client.get(f"/v1/jobs/{job_id}/export.xlsx", headers=auth(api_keys, "admin"))
    xlsx = load_workbook(io.BytesIO(staff_file.data))
    ws = xlsx["Einladungen"]
    assert [c.value for c in ws[1]] == INVITATION_HEADER + CONTACT_COLUMNS
    assert emails[0] in [c for row in ws.iter_rows(min_row=2, values_only=True) for c in row]
    stored = app.extensions["matcher_jobs"].store.jobs.get(job_id).result
    assert "contact" not in json.dumps(stored)                     # the store keeps no contact data


def test_an_infeasible_assignment_is_a_failed_job_and_its_export_a_422_naming_the_constraint(client, api_keys,
                                                                                             get_job):
    r = client.post("/v1/jobs/assignments", headers=auth(api_keys, "reader"), json={"requests": TIGRINYA})
    assert r.status_code == 202
    job, _ = poll(get_job, r.json["id"])
    assert job["state"] == "failed" and job["result"] is None
    error = job["error"]
    assert error["code"] == "infeasible" and "Tigrinya" in error["message"]
    blocked = [rid for d in error["details"] for rid in d["requests"]]
    assert blocked and all(rid in error["message"] for rid in blocked)
    export = client.get(f"/v1/jobs/{job['id']}/export.xlsx", headers=auth(api_keys, "reader"))
    assert export.status_code == 422 and export.json["error"]["code"] == "infeasible"
    assert "Tigrinya" in export.json["error"]["message"]


def test_a_partial_assignment_is_done_and_exports_the_blocked_request(client, api_keys, get_job):
    r = client.post("/v1/jobs/assignments", headers=auth(api_keys, "reader"),
                    json={"requests": TIGRINYA, "allow_partial": True, "alternates": 1})
    job, _ = poll(get_job, r.json["id"])
    assert job["state"] == "done" and not job["result"]["complete"] and job["result"]["optimal"]
    rows = list(csv.reader(io.StringIO(client.get(f"/v1/jobs/{job['id']}/export.csv",
                                                  headers=auth(api_keys, "reader")).data.decode("utf-8-sig"))))
    assert {row[0] for row in rows[1:]} == {"ti-0", "ti-1", "ti-2"}
    assert [row for row in rows[1:] if not row[3] and "Tigrinya" in row[7]]


def test_the_export_of_an_unfinished_job_is_a_409(app, client, api_keys):
    js: JobStore = app.extensions["matcher_jobs"].store.jobs
    job = js.create("invitations", {"event": "evt-113", "size": 3}, owner="other-replica:1:aa")  # alive: fresh
    r = client.get(f"/v1/jobs/{job.id}/export.csv", headers=auth(api_keys, "admin"))   # made by no key: admins'
    assert r.status_code == 409 and r.json["error"]["code"] == "job_not_done" and "später" in r.json["error"]["message"]
    assert client.get(f"/v1/jobs/{job.id}", headers=auth(api_keys, "admin")).json["state"] == "queued"


SUBMIT_ERRORS = {
    "unknown event": ("/v1/jobs/invitations", {"event": "evt-999", "size": 5}, 404, "not_found", "evt-999"),
    "not an event": ("/v1/jobs/invitations", {"event": "org-101", "size": 5}, 422, "validation_error",
                     "keine Veranstaltung"),
    "unreadable quota": ("/v1/jobs/invitations", {"event": "evt-113", "size": 5, "quotas": ["mo=40"]}, 422,
                         "validation_error", "Quote"),
    "unknown actor type in a quota": ("/v1/jobs/invitations", {"event": "evt-113", "size": 5,
                                                               "quotas": ["verein:0.4"]}, 422, "validation_error",
                                      "unbekannter Typ"),
    "size zero": ("/v1/jobs/invitations", {"event": "evt-113", "size": 0}, 422, "validation_error", "size"),
    "unknown field": ("/v1/jobs/invitations", {"event": "evt-113", "size": 5, "quote": ["x"]}, 422,
                      "validation_error", "quote"),
    "no requests": ("/v1/jobs/assignments", {"requests": []}, 422, "validation_error", "requests"),
    "request without a place": ("/v1/jobs/assignments", {"requests": [{"id": "r1", "text": "Beratung"}]}, 422,
                                "validation_error", "Ort fehlt"),
    "unknown conflict id": ("/v1/jobs/assignments", {"requests": [{"id": "r1", "text": "x", "city": "Köln",
                                                                   "conflicts": ["adv-999"]}]}, 422,
                            "validation_error", "adv-999"),
}


@pytest.mark.parametrize("case", SUBMIT_ERRORS.values(), ids=SUBMIT_ERRORS.keys())
def test_bad_input_is_refused_at_submission(client, api_keys, case):
    path, body, status, code, mentioned = case
    r = client.post(path, headers=auth(api_keys, "reader"), json=body)
    assert r.status_code == status, r.json
    error = r.json["error"]
    assert error["code"] == code and mentioned in error["message"] + json.dumps(error["details"], ensure_ascii=False)


def test_jobs_need_a_key_and_unknown_jobs_are_404(client, api_keys):
    assert client.post("/v1/jobs/invitations", json=INVITATION_JOB).status_code == 401
    assert client.get("/v1/jobs/job_" + "0" * 32).status_code == 401
    r = client.get("/v1/jobs/job_" + "0" * 32, headers=auth(api_keys, "reader"))
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    bad = client.get("/v1/jobs/job_" + "0" * 32 + "/export.csv?delimiter=|", headers=auth(api_keys, "reader"))
    assert bad.status_code == 422 and bad.json["error"]["details"][0]["field"] == "delimiter"
    jobs_rules = {k: v for k, v in ACCESS.items() if k.startswith(("jobs.", "invitations."))}
    assert len(jobs_rules) == 7 and all(r.role and r.open_if is None for r in jobs_rules.values())


def test_job_responses_match_the_documented_schema(client, api_keys, invitation_job):
    spec = client.get("/openapi.json").json
    schema = {"$ref": "#/components/schemas/JobOut", "components": spec["components"]}
    body = client.get(f"/v1/jobs/{invitation_job['id']}", headers=auth(api_keys, "admin")).json
    assert not list(OAS31Validator(schema).iter_errors(body))
    assert "202" in spec["paths"]["/v1/jobs/invitations"]["post"]["responses"]


def test_recorded_invitations_feed_the_next_invitation_job(client, api_keys, invitation_job, get_job):
    body = {"job": invitation_job["id"]}
    assert client.post("/v1/invitations", headers=auth(api_keys, "reader"), json=body).status_code == 403
    # the job is the reader key's: another editor key gets 404, an admin may record from it
    assert client.post("/v1/invitations", headers=auth(api_keys, "editor"), json=body).status_code == 404
    r = client.post("/v1/invitations", headers=auth(api_keys, "admin"), json=body)
    assert r.status_code == 201, r.json
    invited = [p["id"] for p in invitation_job["result"]["invitees"]]
    assert r.json["recorded"] == invited and r.json["event"] == "evt-113" and r.json["date"] == "2027-06-12"
    again = client.post("/v1/invitations", headers=auth(api_keys, "admin"), json=body).json
    assert again["recorded"] == [] and again["already_recorded"] == invited
    listed = client.get("/v1/invitations?event=evt-113", headers=auth(api_keys, "reader")).json
    assert {i["entity_id"] for i in listed["items"]} >= set(invited) and listed["total"] >= len(invited)
    bad = client.post("/v1/invitations", headers=auth(api_keys, "editor"),
                      json={"event": "evt-113", "entity_ids": ["org-101"], "job": invitation_job["id"]})
    assert bad.status_code == 422

    # another event's list, a little later: the organisations just invited carry one recent invitation each
    nxt = client.post("/v1/jobs/invitations", headers=auth(api_keys, "reader"),
                      # evt-106 is for municipal offices, which municipalities are too (issue 17): a list long
                      # enough for its 30 municipal actors and more holds some of those invited to evt-113
                      # (40 did under the hand weights; the shipped invitation ranker orders them otherwise)
                      json={"event": "evt-106", "size": 30, "waitlist": 30, "as_of": "2026-12-01",
                            "exposure_penalty": 0.5})
    job, _ = poll(get_job, nxt.json["id"])
    people = [*job["result"]["invitees"], *job["result"]["waitlist"]]
    assert job["result"]["settings"]["history_entries"] >= len(invited)
    assert any(p["id"] in invited for p in people)
    assert all(p["recent_invitations"] >= 1 and p["exposure_penalty"] >= 0.5 for p in people if p["id"] in invited)
    assert all(p["recent_invitations"] == 0 for p in people if p["id"] not in invited)


# ---------------------------------------------------------------- real servers
def _long_requests(n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` distinct requests (fresh texts: each is encoded by the server's model, which takes a while)."""
    needs = ["Die Stadt möchte ihre Partnerschaft mit einer Gemeinde in Ghana ausbauen",
             "Wir suchen Beratung zur fairen Beschaffung von Dienstkleidung",
             "Migrantenorganisationen sollen in die kommunale Entwicklungspolitik eingebunden werden",
             "Für eine Klimapartnerschaft brauchen wir Erfahrung mit Projekten in Westafrika"]
    cities = ["Köln", "Dortmund", "Bielefeld", "Münster", "Bonn", "Essen"]
    return [{"id": f"{tag}-{i}", "text": f"{needs[i % 4]} (Anfrage {tag} Nr. {i}).", "city": cities[i % 6]}
            for i in range(n)]


def _server_client(url: str, key: str):
    """get(job_id) and submit(n, tag) against a server at ``url``."""
    headers = {"Authorization": f"Bearer {key}"}

    def get(job_id: str) -> dict[str, Any]:
        r = requests.get(f"{url}/v1/jobs/{job_id}", headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def submit(n: int, tag: str) -> str:
        r = requests.post(f"{url}/v1/jobs/assignments", headers=headers, timeout=30,
                          json={"requests": _long_requests(n, tag), "allow_partial": True, "alternates": 1})
        assert r.status_code == 202, r.text
        assert (r.json()["state"], r.json()["progress"]) == ("queued", 0)
        return r.json()["id"]

    def wait_running(job_id: str) -> None:
        deadline = time.monotonic() + 60
        while get(job_id)["state"] != "running":
            assert time.monotonic() < deadline, get(job_id)
            time.sleep(0.02)

    return get, submit, wait_running


FAST_HEARTBEAT = {"JOB_HEARTBEAT_SECONDS": 0.2, "JOB_STALE_SECONDS": 3.0}   # 3 s: a loaded machine can delay beats


@pytest.mark.slow
def test_a_job_is_polled_to_completion_and_a_stopped_or_killed_servers_job_is_failed(any_database_url, seed_store,
                                                                                    server_process, make_app):
    """Two real gunicorn servers on one database: a job submitted to one is polled through the other to
    completion; a job of a server killed with SIGKILL is marked failed by the next process to start; a
    server stopped with SIGTERM fails its running job at once."""
    from matcher.store import Store

    seed_store(any_database_url)
    store = Store(any_database_url)
    key = store.create_key("reader")[1]
    env = {f"MATCHER_{k}": str(v) for k, v in FAST_HEARTBEAT.items()}
    killed = server_process(any_database_url, wait=False, **env)    # both start at the same time
    stopped = server_process(any_database_url, wait=False, **env)
    killed.wait_ready()
    stopped.wait_ready()
    _, submit, wait_running = _server_client(killed.url, key)
    get_elsewhere, submit_elsewhere, wait_running_elsewhere = _server_client(stopped.url, key)
    js = store.jobs

    # polled through its progress to completion (through another process: jobs live in the store)
    job, seen = poll(get_elsewhere, submit(200, "a"))
    assert job["state"] == "done" and job["progress"] == 100, job["error"]
    assert len(job["result"]["assignments"]) == 200 and job["result"]["optimal"]
    order = {"queued": 0, "running": 1, "done": 2}
    assert [order[s] for s, _ in seen] == sorted(order[s] for s, _ in seen)
    assert [p for _, p in seen] == sorted(p for _, p in seen)
    assert any(s == "running" and 0 < p < 100 for s, p in seen), seen
    xlsx = requests.get(f"{killed.url}/v1/jobs/{job['id']}/export.xlsx", timeout=30,
                        headers={"Authorization": f"Bearer {key}"})
    assert xlsx.status_code == 200 and load_workbook(io.BytesIO(xlsx.content))["Zuordnung"]["A1"].value == "Anfrage"

    # killed while its job runs: the process that starts next marks the job failed
    lost = submit(400, "b")
    wait_running(lost)
    killed.kill()                                                 # SIGKILL: no chance to clean up
    while time.time() - js.get(lost).heartbeat.timestamp() <= FAST_HEARTBEAT["JOB_STALE_SECONDS"]:
        time.sleep(0.1)                                           # until its heartbeat is stale
    assert js.get(lost).state == "running"                        # nobody has looked yet
    make_app(any_database_url, seed=False, **FAST_HEARTBEAT)      # a process starts on the database
    job = js.get(lost)
    assert job.state == "failed" and job.error["code"] == "job_interrupted", job
    assert "neu starten" in job.error["message"] and job.result is None

    # stopped normally (SIGTERM: deploys, gunicorn restarts) while its job runs: failed at once
    interrupted = submit_elsewhere(400, "c")
    wait_running_elsewhere(interrupted)
    stopped.kill(signal.SIGTERM)
    job = js.get(interrupted)
    assert job.state == "failed" and "Server beendet" in job.error["message"], job
    store.close()
