"""Invitation lists: exact quota feasibility, greedy MMR, exposure control, waitlist — and the fixtures."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from matcher import Query, ValidationError
from matcher.batch.invitations import ExposurePolicy, Quota, invitation_list, read_history, replacement_for
from matcher.batch.selection import UNLIMITED, completion_feasible, select
from matcher.cli import EXIT_INFEASIBLE
from matcher.cli.batch import invite
from numerics import assert_explanations_agree, assert_same_ranking, assert_scores_close

CATALOG = ["--catalog", str(FIXTURES / "catalog.jsonl")]  # the command line in file mode

AS_OF = dt.date(2026, 11, 22)


# ---------------------------------------------------------------- pure: feasibility and selection
def _brute_feasible(cells: list[tuple[int, int]], lower, upper, city_cap, need: int) -> bool:
    for combo in itertools.combinations(range(len(cells)), need):
        groups = Counter(cells[i][0] for i in combo)
        cities = Counter(cells[i][1] for i in combo if cells[i][1] >= 0)
        if all(lower[g] <= groups.get(g, 0) <= upper[g] for g in range(len(lower))) and \
                (city_cap is None or all(v <= city_cap for v in cities.values())):
            return True
    return False


def _random_instance(rng: np.random.Generator, n: int):
    n_groups, n_cities = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    groups = rng.integers(0, n_groups, n)
    cities = rng.integers(-1, n_cities, n)  # -1: no city
    lower = rng.integers(0, 3, n_groups)
    upper = np.where(rng.random(n_groups) < 0.5, UNLIMITED, rng.integers(1, 5, n_groups))
    city_cap = None if rng.random() < 0.3 else int(rng.integers(1, 4))
    return groups, cities, lower, upper, city_cap


def test_completion_feasibility_agrees_with_brute_force():
    rng = np.random.default_rng(11)
    for _ in range(300):
        n = int(rng.integers(1, 10))
        groups, cities, lower, upper, city_cap = _random_instance(rng, n)
        need = int(rng.integers(0, n + 1))
        n_cities = int(cities.max(initial=-1)) + 1
        avail = np.zeros((len(lower), n_cities + 1), dtype=np.int64)
        np.add.at(avail, (groups, np.where(cities < 0, n_cities, cities)), 1)
        room = np.full(n_cities + 1, need)
        if city_cap is not None:
            room[:-1] = min(city_cap, need)
        expected = _brute_feasible(list(zip(groups.tolist(), cities.tolist())), lower, upper, city_cap, need)
        assert completion_feasible(avail, lower, upper, room, need) == expected


def test_selection_meets_every_bound_or_refuses():
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(2, 40))
        groups, cities, lower, upper, city_cap = _random_instance(rng, n)
        size = int(rng.integers(1, n + 1))
        lam = float(rng.choice([1.0, 0.5]))
        vecs = rng.normal(size=(n, 6)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        kwargs = dict(groups=groups, cities=cities, lower=lower, upper=upper, city_cap=city_cap, vectors=vecs,
                      mmr_lambda=lam)
        cells = list(zip(groups.tolist(), cities.tolist()))
        feasible = _brute_feasible(cells, lower, upper, city_cap, size) if n <= 12 else None
        try:
            chosen = select(rng.normal(size=n), size, **kwargs)
        except ValueError:
            assert feasible in (False, None)
            continue
        assert feasible in (True, None)
        picked = [p.index for p in chosen]
        assert len(picked) == size == len(set(picked))
        by_group = Counter(groups[picked].tolist())
        assert all(lower[g] <= by_group.get(g, 0) <= upper[g] for g in range(len(lower)))
        if city_cap is not None:
            assert max(Counter(c for c in cities[picked].tolist() if c >= 0).values(), default=0) <= city_cap


def test_type_quotas_alone_give_the_greatest_total_relevance():
    """With type quotas only the feasible lists form a matroid: greedy is optimal (checked exhaustively)."""
    rng = np.random.default_rng(3)
    for _ in range(150):
        n = int(rng.integers(2, 11))
        groups, _, lower, upper, _ = _random_instance(rng, n)
        cities = np.full(n, -1)
        size = int(rng.integers(1, n + 1))
        rel = rng.normal(size=n)
        best = max((sum(rel[list(c)]) for c in itertools.combinations(range(n), size)
                    if all(lower[g] <= Counter(groups[list(c)].tolist()).get(g, 0) <= upper[g]
                           for g in range(len(lower)))), default=None)
        if best is None:
            continue
        chosen = select(rel, size, groups=groups, cities=cities, lower=lower, upper=upper)
        assert sum(rel[p.index] for p in chosen) == pytest.approx(best)


@pytest.mark.numerics
def test_lazy_mmr_equals_plain_mmr():
    """Each pick of the lazy selection maximises the plain MMR objective given the picks before it.
    The selection's redundancies come from products of other shapes than this loop's (so other
    OpenBLAS kernels), so a pick may differ from the plain loop's only between objectives tied
    within the score tolerance; objectives lie in [-1, 1], hence the scale 1."""
    rng = np.random.default_rng(8)
    for _ in range(30):
        n, size, lam = int(rng.integers(5, 300)), int(rng.integers(1, 25)), float(rng.uniform(0.1, 0.95))
        vecs = rng.normal(size=(n, 16)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        rel = rng.normal(size=n)
        chosen = select(rel, size, groups=np.zeros(n, int), cities=np.full(n, -1), lower=[0], upper=[UNLIMITED],
                           vectors=vecs, mmr_lambda=lam)
        reln = (rel - rel.min()) / (rel.max() - rel.min())
        taken = [p.index for p in chosen]
        assert len(taken) == min(size, n)
        for step, pick in enumerate(taken):
            before = taken[:step]
            red = np.maximum((vecs @ vecs[before].T).max(axis=1), 0) if before else np.zeros(n)
            obj = lam * reln - (1 - lam) * red
            obj[before] = -np.inf
            assert_scores_close(obj[pick], obj.max(), scale=1.0, err_msg=f"pick {step + 1} of {taken}")


def test_pure_relevance_selection_is_a_stable_sort():
    rel = np.array([1.0, 3.0, 3.0, 2.0, 0.5])
    kwargs = dict(groups=np.zeros(5, int), cities=np.full(5, -1), lower=[0], upper=[UNLIMITED])
    chosen = select(rel, 3, **kwargs)
    assert [p.index for p in chosen] == [1, 2, 3]
    excluded = np.isin(np.arange(5), [1, 2, 3])
    assert [p.index for p in select(rel, 5, exclude=excluded, **kwargs)] == [0, 4]


@pytest.mark.parametrize("spec, expected", [
    ("migrant_organisation:0.4", Quota("migrant_organisation", "min", 0.4, "share")),
    ("migrant_organisation:40%", Quota("migrant_organisation", "min", 0.4, "share")),
    ("institution:<=2", Quota("institution", "max", 2, "count")),
    ("civil_society:>=0,25", Quota("civil_society", "min", 0.25, "share")),
])
def test_quota_specs_are_read(spec, expected):
    assert Quota.parse(spec) == expected


@pytest.mark.parametrize("spec", ["migrant_organisation", "mo:abc", "migrant_organisation:1.5", ":0.4"])
def test_unreadable_quota_is_an_error(spec):
    with pytest.raises(ValidationError):
        Quota.parse(spec)


def test_share_bounds_round_towards_the_bound():
    assert Quota.parse("migrant_organisation:0.4").places(12) == 5  # at least 4.8 → 5
    assert Quota.parse("institution:<=0.25").places(10) == 2        # at most 2.5 → 2
    assert Quota.parse("migrant_organisation:0.4").places(10) == 4  # exact, no rounding drift


# ---------------------------------------------------------------- on the fixtures (real default model)
@pytest.mark.numerics
@pytest.mark.parametrize("event_id", ["evt-113", "evt-106", "evt-110", "evt-121"])
def test_without_constraints_the_list_is_the_engines_top_n(matcher, event_id):
    result = invitation_list(matcher, event_id, 15, mmr_lambda=1.0, as_of=AS_OF)
    ranking = matcher.rank(Query.model_validate({"task": "invitations", "from": event_id}), k=15, as_of=AS_OF)
    assert_same_ranking([(p.entity_id, p.score) for p in result.invitees],
                        [(r.entity_id, r.score) for r in ranking.results])
    why = {r.entity_id: r.explanation for r in ranking.results}
    for p in result.invitees:
        if p.entity_id in why:  # a tie at the cut may bring in another organisation
            assert_explanations_agree(p.explanation, why[p.entity_id], err_msg=p.entity_id)
    assert [p.relevance_rank for p in result.invitees] == list(range(1, 16))


def test_migrant_organisation_quota_and_city_limit_hold(matcher):
    size = 12
    plain = invitation_list(matcher, "evt-106", size, mmr_lambda=1.0, as_of=AS_OF)
    assert sum(p.group == "migrant_organisation" for p in plain.invitees) < 5  # the quota binds here
    result = invitation_list(matcher, "evt-106", size, quotas=["migrant_organisation:0.4"], max_per_city=2,
                             mmr_lambda=0.7, waitlist=4, as_of=AS_OF)
    groups = Counter(p.group for p in result.invitees)
    cities = Counter(p.entity.city for p in result.invitees)
    assert len(result.invitees) == size
    assert groups["migrant_organisation"] >= math.ceil(0.4 * size)
    assert max(cities.values()) <= 2
    assert result.feasible and all(c.held and not c.relaxed for c in result.constraints)
    assert {p.entity_id for p in result.invitees}.isdisjoint(p.entity_id for p in result.waitlist)
    assert len(result.waitlist) == 4
    assert any("Quote" in why for p in result.invitees for why in p.why)
    assert all(p.explanation.reasons for p in result.invitees)


def test_an_unmeetable_quota_is_reported_and_the_list_is_built_without_it(matcher):
    # the catalog holds 10 institutions; 12 cannot be invited
    result = invitation_list(matcher, "evt-113", 14, quotas=["institution:12", "migrant_organisation:0.4"],
                             mmr_lambda=1.0, as_of=AS_OF)
    failed = [c for c in result.constraints if c.relaxed]
    assert [c.group for c in failed] == ["institution"] and failed[0].shortfall == 2
    assert "es fehlen 2" in failed[0].message and "Einrichtungen" in failed[0].message
    without = invitation_list(matcher, "evt-113", 14, quotas=["migrant_organisation:0.4"], mmr_lambda=1.0, as_of=AS_OF)
    assert [p.entity_id for p in result.invitees] == [p.entity_id for p in without.invitees]
    assert not result.feasible


def test_city_limit_that_leaves_too_few_places_is_dropped_with_the_gap(matcher):
    result = invitation_list(matcher, "evt-113", 60, max_per_city=1, mmr_lambda=1.0, as_of=AS_OF)
    city = next(c for c in result.constraints if c.constraint == "max_per_city")
    assert city.relaxed and city.shortfall > 0 and "Plätzen zu" in city.message
    assert len(result.invitees) == 60


def test_exposure_penalty_gives_rarely_invited_organisations_a_chance(matcher):
    plain = invitation_list(matcher, "evt-113", 5, mmr_lambda=1.0, as_of=AS_OF)
    top = plain.invitees[0].entity_id
    history = [(top, f"evt-10{k}", AS_OF - dt.timedelta(days=30 * k)) for k in range(1, 5)]
    history.append((top, "evt-113", AS_OF))  # the event itself does not count
    fair = invitation_list(matcher, "evt-113", 5, mmr_lambda=1.0, history=history,
                           exposure=ExposurePolicy(penalty=2.0, window_days=365), as_of=AS_OF)
    moved = next(p for p in [*fair.invitees, *fair.waitlist] if p.entity_id == top) if top in \
        {p.entity_id for p in fair.invitees} else None
    assert fair.invitees[0].entity_id != top
    if moved is not None:
        assert moved.recent_invitations == 4 and moved.exposure_penalty == pytest.approx(8.0)
    assert any("häufiger eingeladen" in w for p in fair.invitees for w in p.why)
    old = [(top, "evt-101", AS_OF - dt.timedelta(days=400))]
    assert invitation_list(matcher, "evt-113", 5, mmr_lambda=1.0, history=old, as_of=AS_OF).invitees[0].entity_id == top


def test_diversity_changes_the_list_but_keeps_the_best_first(matcher):
    plain = invitation_list(matcher, "evt-113", 10, mmr_lambda=1.0, as_of=AS_OF)
    diverse = invitation_list(matcher, "evt-113", 10, mmr_lambda=0.3, as_of=AS_OF)
    assert diverse.invitees[0].entity_id == plain.invitees[0].entity_id
    assert [p.entity_id for p in diverse.invitees] != [p.entity_id for p in plain.invitees]
    mean = lambda r: np.mean([p.redundancy for p in r.invitees[1:]])  # noqa: E731
    assert mean(diverse) < mean(plain) or all(p.redundancy == 0 for p in plain.invitees)


def test_replacement_for_a_declined_invitee_keeps_the_quota(matcher):
    result = invitation_list(matcher, "evt-106", 10, quotas=["migrant_organisation:0.4"], max_per_city=2,
                             mmr_lambda=1.0, waitlist=10, as_of=AS_OF)
    declined = next(p for p in result.invitees if p.group == "migrant_organisation")
    stand_in = replacement_for(result, declined.entity_id)
    assert stand_in is not None
    kept = Counter(p.group for p in result.invitees if p.entity_id != declined.entity_id) + Counter([stand_in.group])
    assert kept["migrant_organisation"] >= 4
    with pytest.raises(ValidationError):
        replacement_for(result, "org-does-not-exist")


def test_advisors_can_be_invited_with_their_own_quota(matcher):
    result = invitation_list(matcher, "evt-113", 10, quotas=["advisor:2"], include_kinds=("organisation", "advisor"),
                             mmr_lambda=1.0, as_of=AS_OF)
    assert sum(p.entity.kind == "advisor" for p in result.invitees) >= 2
    assert all(p.explanation.reasons for p in result.invitees)


def test_bad_arguments_are_named(matcher):
    with pytest.raises(ValidationError) as err:
        invitation_list(matcher, "evt-113", 0, quotas=["advisor:1"], mmr_lambda=1.5, as_of=AS_OF)
    fields = {d["field"] for d in err.value.details}
    assert {"size", "mmr_lambda", "quota"} <= fields
    with pytest.raises(ValidationError, match="keine Veranstaltung"):
        invitation_list(matcher, "org-101", 5, as_of=AS_OF)


def test_history_file_is_read_from_csv(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("entity_id;event_id;date\norg-101;evt-101;2026-03-14\norg-102;evt-112;2026-10-10\n",
                    encoding="utf-8")
    records = read_history(path)
    assert [(r.entity_id, r.date) for r in records] == [("org-101", dt.date(2026, 3, 14)),
                                                        ("org-102", dt.date(2026, 10, 10))]


# ---------------------------------------------------------------- command line (fast model)
@pytest.fixture()
def cli_env(monkeypatch):
    monkeypatch.setenv("MATCHER_MODEL", "use")
    return CliRunner()


def test_invite_command_writes_the_list_and_reports_constraints(cli_env, tmp_path):
    out = tmp_path / "einladung.xlsx"
    res = cli_env.invoke(invite, [*CATALOG, "--event", "evt-113", "--size", "10",
                                  "--quota", "migrant_organisation:0.4",
                                  "--max-per-city", "2", "--waitlist", "3", "--lambda", "0.7", "--out", str(out),
                                  "--as-of", "2026-11-22"])
    assert res.exit_code == 0, res.output
    assert out.exists() and "✓ mindestens 40 % Migrantenorganisationen" in res.stdout


def test_invite_strict_exits_non_zero_when_a_quota_is_dropped(cli_env):
    res = cli_env.invoke(invite, [*CATALOG, "--event", "evt-113", "--size", "14", "--quota", "institution:12",
                                  "--strict",
                                  "--as-of", "2026-11-22"])
    assert res.exit_code == EXIT_INFEASIBLE
    assert "Einrichtungen" in res.stdout and "aufgehoben" in res.stderr
