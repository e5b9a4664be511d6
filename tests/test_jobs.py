"""Batch jobs in the store, on SQLite and PostgreSQL: states owned by one process, the rule that
marks a lost job failed (and never a live one), the stored invitation history, and the runner
that executes jobs on the live matcher."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import update

from conftest import BACKENDS, _database
from matcher import InfeasibleError, UnknownEntityError, ValidationError
from matcher.batch.assignment import assign_advisors
from matcher.batch.invitations import ExposurePolicy, invitation_list
from matcher.batch.requests import AdvisorRequest
from matcher.batch.runner import JobNotDoneError, JobRunner, TooManyJobsError
from matcher.domain.invitations import InvitationRecord
from matcher.live import LiveMatcher, StoreBackedEmbedder
from matcher.store import Store, jobs

AS_OF = dt.date(2026, 11, 22)
STALE = dt.timedelta(seconds=60)


@pytest.fixture(params=BACKENDS, scope="module")
def seeded(request, tmp_path_factory, seed_store):
    """A store holding the fixture catalog and its vectors, and the live matcher on it (per backend)."""
    gen = _database(request.param, tmp_path_factory.mktemp("jobs"))
    url = next(gen)
    seed_store(url)
    store = Store(url)
    yield store
    store.close()
    gen.close()


@pytest.fixture(scope="module")
def live(seeded, fast_embedder):
    return LiveMatcher(seeded, StoreBackedEmbedder(fast_embedder, seeded)).fit()


@pytest.fixture
def runner(seeded, live):
    return JobRunner(seeded, live, heartbeat_seconds=0.2, stale_seconds=60.0).start()


def wait_finished(runner: JobRunner, job_id: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = runner.get(job_id)
        if job.state in ("done", "failed"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} not finished after {timeout} s: {runner.get(job_id)}")


def _age(store: Store, job_id: str, seconds: float) -> None:
    """Move a job's last heartbeat into the past (as if its process had stopped that long ago)."""
    with store.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(
            heartbeat_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)))


# ---------------------------------------------------------------- states and ownership
def test_a_job_changes_state_only_through_its_owner(seeded):
    js = seeded.jobs
    job = js.create("invitations", {"event": "evt-113", "size": 3}, owner="host:1:aa", key_id="k1")
    assert (job.state, job.progress, job.owner, job.key_id) == ("queued", 0.0, "host:1:aa", "k1")
    assert job.id.startswith("job_") and job.heartbeat is not None
    assert not js.start(job.id, "host:2:bb")                      # another process may not take it
    assert js.start(job.id, "host:1:aa")
    assert js.report_progress(job.id, "host:1:aa", 42.5, "Auswahl")
    assert (js.get(job.id).state, js.get(job.id).progress, js.get(job.id).stage) == ("running", 42.5, "Auswahl")
    with pytest.raises(JobNotDoneError, match="noch nicht fertig"):
        js.get(job.id).require_result()
    assert js.finish(job.id, "host:1:aa", {"invitees": []})
    done = js.get(job.id)
    assert (done.state, done.progress, done.result) == ("done", 100.0, {"invitees": []})
    assert not js.fail(job.id, "host:1:aa", {"code": "x", "message": "y", "details": []})   # done stays done
    with pytest.raises(UnknownEntityError, match="Unbekannter Auftrag"):
        js.get("job_" + "0" * 32)


def test_a_job_failed_meanwhile_is_not_resurrected_by_its_owner(seeded):
    js = seeded.jobs
    job = js.create("assignments", {"requests": 1}, owner="host:1:aa")
    js.start(job.id, "host:1:aa")
    _age(seeded, job.id, 120)
    assert js.fail_stale(STALE) == [job.id]
    assert not js.finish(job.id, "host:1:aa", {"assignments": []})
    assert not js.report_progress(job.id, "host:1:aa", 50.0, "Optimieren")
    failed = js.get(job.id)
    assert failed.state == "failed" and failed.result is None and failed.error["code"] == "job_interrupted"


def test_starting_a_process_fails_only_the_jobs_of_stopped_processes(seeded, live):
    js = seeded.jobs
    alive = js.create("invitations", {"event": "evt-113", "size": 3}, owner="replica-a:7:aa")
    js.start(alive.id, "replica-a:7:aa")
    lost_running = js.create("invitations", {"event": "evt-113", "size": 3}, owner="replica-b:7:bb")
    js.start(lost_running.id, "replica-b:7:bb")
    lost_queued = js.create("assignments", {"requests": 2}, owner="replica-b:7:bb")
    _age(seeded, lost_running.id, 61)
    _age(seeded, lost_queued.id, 300)

    JobRunner(seeded, live, stale_seconds=60.0).start()           # a process starting on the same database

    assert js.get(alive.id).state == "running"                    # replica a is alive: its heartbeat is fresh
    for job_id in (lost_running.id, lost_queued.id):
        job = js.get(job_id)
        assert job.state == "failed" and job.error["code"] == "job_interrupted"
        assert "neu starten" in job.error["message"] and job.error["details"][0]["last_heartbeat"]


def test_a_read_fails_a_job_whose_process_stopped_since(seeded, live):
    js = seeded.jobs
    runner = JobRunner(seeded, live, heartbeat_seconds=1.0, stale_seconds=5.0).start()
    job = js.create("invitations", {"event": "evt-113", "size": 3}, owner="gone:9:cc")
    assert runner.get(job.id).state == "queued"
    _age(seeded, job.id, 6)
    assert runner.get(job.id).state == "failed"


def test_settings_that_could_fail_live_jobs_are_refused(seeded, live):
    with pytest.raises(ValidationError, match="Einstellungen") as exc:
        JobRunner(seeded, live, heartbeat_seconds=5.0, stale_seconds=10.0).start()
    assert exc.value.details[0]["field"] == "JOB_STALE_SECONDS"


def test_a_stopping_process_fails_its_own_unfinished_jobs_at_once(seeded, live):
    js = seeded.jobs
    runner = JobRunner(seeded, live, heartbeat_seconds=0.2, stale_seconds=60.0).start()
    other = js.create("invitations", {"event": "evt-113", "size": 3}, owner="replica-a:7:aa")
    mine = js.create("invitations", {"event": "evt-113", "size": 3}, owner=runner.owner)
    runner._active[mine.id] = "invitations"  # what submit() records, without a thread taking the job
    assert runner.stop() == 1
    assert js.get(mine.id).state == "failed" and "Server beendet" in js.get(mine.id).error["message"]
    assert js.get(other.id).state == "queued"


def test_a_process_accepts_only_so_many_unfinished_jobs(seeded, live):
    runner = JobRunner(seeded, live, max_pending=1).start()
    assert runner.owner                                 # this process's threads are up
    runner._active["job_" + "1" * 32] = "invitations"  # what submit() records for a job still running
    with pytest.raises(TooManyJobsError, match="warten"):
        runner.submit("invitations", {"event": "evt-113", "size": 3})
    runner._active.clear()


# ---------------------------------------------------------------- invitation history
def test_invitations_are_recorded_once_and_read_back_as_history(seeded):
    history = seeded.invitations
    report = history.record("evt-101", ["org-101", "org-102"], key_id="k1")
    event_date = seeded.get_entity("evt-101").date
    assert report == {"event": "evt-101", "date": event_date, "recorded": ["org-101", "org-102"],
                      "already_recorded": []}
    again = history.record("evt-101", ["org-102", "org-103"], date=dt.date(2026, 1, 5))
    assert again["recorded"] == ["org-103"] and again["already_recorded"] == ["org-102"]
    recorded = history.history()
    assert InvitationRecord("org-101", "evt-101", event_date) in recorded
    assert InvitationRecord("org-103", "evt-101", dt.date(2026, 1, 5)) in recorded
    assert all(r.date >= dt.date(2026, 2, 1) for r in history.history(since=dt.date(2026, 2, 1)))
    items, total = history.page(event_id="evt-101")
    assert total == 3 and {i["entity_id"] for i in items} == {"org-101", "org-102", "org-103"}


def test_recording_an_unknown_or_uninvitable_id_records_nothing(seeded):
    history = seeded.invitations
    before = history.page(event_id="evt-102")[1]
    with pytest.raises(ValidationError, match="nichts wurde gespeichert") as exc:
        history.record("evt-102", ["org-104", "org-999", "evt-103"])
    # municipalities may be invited (issue 17); an event may not
    assert {(d["value"], d["message"]) for d in exc.value.details} == {
        ("org-999", "nicht im Katalog"), ("evt-103", "kann nicht eingeladen werden (Art: Veranstaltung)")}
    assert history.page(event_id="evt-102")[1] == before
    with pytest.raises(UnknownEntityError):
        history.record("evt-999", ["org-104"])
    with pytest.raises(ValidationError, match="keine Veranstaltung"):
        history.record("org-101", ["org-104"])


def test_erasing_an_entity_removes_it_from_the_invitation_history(seeded):
    history = seeded.invitations
    history.record("evt-103", ["org-140"])
    report = seeded.delete_entity("org-140", erase=True)
    assert report["invitations"] == 1
    assert not history.page(entity_id="org-140")[1]


# ---------------------------------------------------------------- the runner
def test_an_invitation_job_reads_the_stored_history_for_exposure_control(seeded, live, runner):
    version, matcher = live.current()
    plain = invitation_list(matcher, "evt-113", 6, as_of=AS_OF)
    favourite = plain.invitees[0].entity_id
    runner.store.invitations.record("evt-105", [favourite], date=AS_OF - dt.timedelta(days=30))
    runner.store.invitations.record("evt-106", [favourite], date=AS_OF - dt.timedelta(days=10))

    job = runner.submit("invitations", {"event": "evt-113", "size": 6, "as_of": AS_OF.isoformat(),
                                        "exposure_penalty": 5.0, "exposure_days": 365})
    done = wait_finished(runner, job.id)

    assert done.state == "done" and done.progress == 100.0, done.error
    expected = invitation_list(matcher, "evt-113", 6, as_of=AS_OF, exposure=ExposurePolicy(5.0, 365),
                               history=runner.store.invitations.history()).as_dict()
    assert done.result == expected
    assert favourite not in [p["id"] for p in done.result["invitees"]]   # invited twice lately: it gives way
    assert done.result["settings"]["history_entries"] >= 2
    assert "contact" not in str(done.result)                        # stored without personal data


def test_an_infeasible_assignment_fails_naming_the_constraint_and_the_requests(runner):
    requests = [{"id": f"ti-{k}", "text": "Tigrinya-sprachige Familien", "city": city, "languages": ["ti"]}
                for k, city in enumerate(["Köln", "Bonn", "Essen"])]
    done = wait_finished(runner, runner.submit("assignments", {"requests": requests, "alternates": 2}).id)
    assert done.state == "failed"
    error = done.error
    assert error["code"] == "infeasible" and "Tigrinya" in error["message"]
    assert error["details"][0]["constraint"] == "language"
    blocked = {r for d in error["details"] for r in d["requests"]}
    assert blocked and blocked <= {"ti-0", "ti-1", "ti-2"} and all(r in error["message"] for r in blocked)
    with pytest.raises(InfeasibleError, match="Tigrinya"):
        done.require_result()
    assert done.params == {"alternates": 2, "requests": 3, "request_ids": ["ti-0", "ti-1", "ti-2"]}


def test_an_assignment_job_gives_the_library_result(live, runner):
    requests = [AdvisorRequest(id="r1", text="Faire Beschaffung von Dienstkleidung", city="Münster"),
                AdvisorRequest(id="r2", text="Frankophone Vereine bei Projekten begleiten", city="Dortmund",
                               languages=["fr"])]
    job = runner.submit("assignments", {"requests": [r.model_dump(mode="json") for r in requests],
                                        "as_of": AS_OF.isoformat()})
    done = wait_finished(runner, job.id)
    _, matcher = live.current()
    assert done.state == "done"
    assert done.result == assign_advisors(matcher, requests, as_of=AS_OF).as_dict()


def test_bad_input_is_refused_before_a_job_exists(seeded, runner):
    def count() -> int:
        with seeded.engine.connect() as conn:
            return len(conn.execute(jobs.select()).all())

    before = count()
    with pytest.raises(UnknownEntityError, match="evt-999"):
        runner.submit("invitations", {"event": "evt-999", "size": 5})
    with pytest.raises(ValidationError, match="Quote"):
        runner.submit("invitations", {"event": "evt-113", "size": 5, "quotas": ["migrant_organisation=40"]})
    with pytest.raises(ValidationError, match="keine Veranstaltung"):
        runner.submit("invitations", {"event": "org-101", "size": 5})
    with pytest.raises(ValidationError, match="Anfrage"):
        runner.submit("assignments", {"requests": [{"id": "r1", "text": "Beratung", "city": "Qwrtzhausen"}]})
    with pytest.raises(ValidationError, match="Kapazität"):
        runner.submit("assignments", {"requests": [{"id": "r1", "text": "Beratung", "city": "Köln"}],
                                      "capacities": {"adv-999": 2}})
    assert count() == before
