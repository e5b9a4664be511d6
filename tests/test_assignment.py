"""Advisor assignment: the exact solver against independent references, hard constraints,
capacities, infeasibility diagnosis, the batched score matrix, and the command line."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linear_sum_assignment, milp

from conftest import FIXTURES
from matcher import InfeasibleError, ValidationError
from matcher.batch.assignment import assign_advisors
from matcher.batch.requests import AdvisorRequest, load_requests
from matcher.batch.score_matrix import score_requests
from matcher.batch.solver import solve_assignment
from matcher.cli import EXIT_INFEASIBLE
from matcher.cli.batch import assign
from numerics import assert_scores_close

CATALOG = ["--catalog", str(FIXTURES / "catalog.jsonl")]  # the command line in file mode

AS_OF = dt.date(2026, 11, 22)


# ---------------------------------------------------------------- references
def lsa_reference(S: np.ndarray, cap: np.ndarray) -> float | None:
    """Best complete assignment by linear_sum_assignment on one column per capacity unit."""
    n_req = S.shape[0]
    units = np.minimum(cap, n_req)
    if units.sum() < n_req:
        return None
    cost = np.repeat(np.where(np.isfinite(S), -S, 1e9), units, axis=1)
    rows, cols = linear_sum_assignment(cost)
    return None if (cost[rows, cols] >= 1e9).any() else float(-cost[rows, cols].sum())


def milp_reference(S: np.ndarray, cap: np.ndarray) -> tuple[int, float]:
    """Most requests served, then the greatest total score: two integer programmes (HiGHS)."""
    n_req, n_adv = S.shape
    rows, cols = np.nonzero(np.isfinite(S))
    n = rows.size
    if n == 0:
        return 0, 0.0
    per_request = sparse.csr_matrix((np.ones(n), (rows, np.arange(n))), shape=(n_req, n))
    per_advisor = sparse.csr_matrix((np.ones(n), (cols, np.arange(n))), shape=(n_adv, n))
    limits = [LinearConstraint(per_request, 0, 1), LinearConstraint(per_advisor, 0, cap)]
    most = milp(-np.ones(n), constraints=limits, integrality=np.ones(n), bounds=Bounds(0, 1))
    k = round(-most.fun)
    best = milp(-S[rows, cols], constraints=[*limits, LinearConstraint(np.ones((1, n)), k, k)],
                integrality=np.ones(n), bounds=Bounds(0, 1))
    return k, float(-best.fun)


def brute_force(S: np.ndarray, cap: np.ndarray) -> float | None:
    best = None
    for choice in itertools.product(range(S.shape[1]), repeat=S.shape[0]):
        if (np.bincount(choice, minlength=S.shape[1]) <= cap).all():
            total = S[np.arange(S.shape[0]), choice].sum()
            if np.isfinite(total) and (best is None or total > best):
                best = float(total)
    return best


def random_instance(rng: np.random.Generator, max_req: int = 30, max_adv: int = 10):
    n_req, n_adv = int(rng.integers(1, max_req + 1)), int(rng.integers(1, max_adv + 1))
    S = rng.normal(size=(n_req, n_adv)) * rng.choice([0.1, 1.0, 10.0])
    if rng.random() < 0.3:
        S = np.round(S)  # many ties
    S[rng.random((n_req, n_adv)) < rng.random() * 0.6] = -np.inf  # hard constraints
    cap = rng.integers(0, 6, size=n_adv)
    return S, cap


def check_feasible(S: np.ndarray, cap: np.ndarray, advisor: np.ndarray) -> None:
    served = advisor >= 0
    assert (np.bincount(advisor[served], minlength=S.shape[1]) <= cap).all()  # capacities never exceeded
    assert np.isfinite(S[served, advisor[served]]).all()                      # forbidden pairs never used


# ---------------------------------------------------------------- the solver
def test_optimal_total_equals_lsa_and_ilp_references_on_seeded_instances():
    rng = np.random.default_rng(2024)
    complete = 0
    for _ in range(250):
        S, cap = random_instance(rng)
        solution = solve_assignment(S, cap)
        reference = lsa_reference(S, cap)
        if reference is None:
            assert not solution.complete
            continue
        complete += 1
        assert solution.complete and solution.optimal
        assert solution.total == pytest.approx(reference, abs=1e-7)
        assert solution.total == pytest.approx(milp_reference(S, cap)[1], abs=1e-6)
        check_feasible(S, cap, solution.advisor)
    assert complete > 80  # the seeds give enough feasible instances to mean something


@pytest.mark.parametrize("path", ["column generation", "floating-point fallback"])
def test_other_solver_paths_reach_the_same_optimum(monkeypatch, path):
    """Above FULL_PAIRS the solver starts from a few columns per request; if the integer min-cost
    flow is refused (rounding), LAPJVsp solves in floating point. Both give the references' total."""
    import matcher.batch.solver as solver

    if path == "column generation":
        monkeypatch.setattr(solver, "FULL_PAIRS", 0)
    else:
        monkeypatch.setattr(solver, "_min_cost_flow", lambda *args: None)
    rng = np.random.default_rng(31)
    for _ in range(60):
        S, cap = random_instance(rng)
        solution = solve_assignment(S, cap)
        reference = lsa_reference(S, cap)
        if reference is not None:
            assert solution.complete and solution.optimal
            assert solution.total == pytest.approx(reference, abs=1e-7)


def test_optimal_total_equals_brute_force_on_small_instances():
    rng = np.random.default_rng(7)
    for _ in range(150):
        S, cap = random_instance(rng, max_req=6, max_adv=3)
        solution = solve_assignment(S, cap)
        best = brute_force(S, cap)
        assert solution.complete == (best is not None)
        if best is not None:
            assert solution.total == pytest.approx(best, abs=1e-9)


def test_partial_assignment_serves_the_most_requests_then_the_best_total():
    rng = np.random.default_rng(99)
    for _ in range(150):
        S, cap = random_instance(rng)
        solution = solve_assignment(S, cap, complete=False)
        served, total = milp_reference(S, cap)
        assert solution.assigned == served and solution.optimal
        assert solution.total == pytest.approx(total, abs=1e-6)
        check_feasible(S, cap, solution.advisor)


def test_greedy_order_is_not_what_the_solver_does():
    # request 0 asks first and would take advisor 0; the optimum gives advisor 0 to request 1
    S = np.array([[5.0, 4.0], [5.0, -np.inf]])
    solution = solve_assignment(S, np.array([1, 1]))
    assert solution.advisor.tolist() == [1, 0] and solution.total == 9.0


# ---------------------------------------------------------------- the score matrix
@pytest.mark.numerics
def test_batched_scores_equal_the_engines_scores_and_explanations(matcher, catalog):
    municipalities = [e for e in catalog if e.kind == "municipality"]
    requests = [AdvisorRequest(id=f"r-{m.id}", text=m.description, municipality=m.id) for m in municipalities]
    requests += [AdvisorRequest(id="r-fr", text="Frankophone Vereine einbinden", city="Dortmund", languages=["fr"]),
                 AdvisorRequest(id="r-own", municipality="mun-103")]
    scores = score_requests(matcher, [r.query() for r in requests], as_of=AS_OF)
    for r, req in enumerate(requests):
        alone = matcher.score(req.query(), as_of=AS_OF)
        assert alone.block == scores.block
        assert_scores_close(scores.total[r], alone.total, err_msg=req.id)
        best = int(alone.rows[np.argmax(alone.total)])
        mine = scores.explain(r, int(np.flatnonzero(scores.advisors == best)[0]))
        from matcher.engine.explain import explain

        theirs = explain(matcher.index_, best, alone.at(best), alone.context)
        assert (mine.reasons, mine.best_passage, mine.matched_terms) == (theirs.reasons, theirs.best_passage,
                                                                         theirs.matched_terms)


@pytest.mark.numerics
def test_forked_workers_give_the_same_matrix(fast_embedder, catalog):
    """Worker processes score blocks of another size than one process does, so OpenBLAS sums in
    another order: the matrices agree to the score tolerance, not bit for bit (3e-6 on ~5 here)."""
    from matcher.engine.matcher import Matcher

    m = Matcher(fast_embedder).fit(catalog)
    needs = [e.description for e in catalog if e.kind == "municipality"]
    cities = ["Köln", "Bochum", "Münster", "Bielefeld", "Siegen", "Aachen", "Kleve"]
    queries = [AdvisorRequest(id=f"r{k}", text=needs[k % len(needs)], city=cities[k % len(cities)]).query()
               for k in range(600)]  # three blocks
    one = score_requests(m, queries, as_of=AS_OF)
    two = score_requests(m, queries, as_of=AS_OF, workers=2)
    assert_scores_close(two.total, one.total)
    assert [c.need for c in one.contexts] == [c.need for c in two.contexts]
    assert two.explain(599, 0).reasons == one.explain(599, 0).reasons


# ---------------------------------------------------------------- on the fixtures
def fixture_requests(catalog) -> list[AdvisorRequest]:
    out = [AdvisorRequest(id=f"r-{m.id}", text=m.description, municipality=m.id)
           for m in catalog if m.kind == "municipality"]
    out += [
        AdvisorRequest(id="r-ti", text="Eritreische Elternvereine für die Partnerschaftsarbeit gewinnen", city="Köln",
                       languages=["ti"]),
        AdvisorRequest(id="r-tr", text="Moscheegemeinden für Klimaschutz gewinnen", city="Gelsenkirchen",
                       languages=["tr"], conflicts=["adv-123"]),
        AdvisorRequest(id="r-fr", text="Frankophone Vereine bei gemeinsamen Projekten begleiten", city="Dortmund",
                       languages=["fr"]),
    ]
    return out


@pytest.mark.numerics
def test_assignment_on_the_fixtures_is_optimal_and_keeps_every_constraint(matcher, catalog):
    requests = fixture_requests(catalog)
    result = assign_advisors(matcher, requests, k_alternates=3, as_of=AS_OF)
    assert result.complete and result.optimal
    gz = matcher.gazetteer_
    by_id = {e.id: e for e in catalog}
    for a in result.assignments:
        adv, req = a.advisor, a.request
        assert set(req.languages) <= set(adv.languages)
        place = gz.locate(req.city, req.lat, req.lon) or matcher.index_.places[matcher.index_.row[req.municipality]]
        assert not adv.regions or any(gz.covers(area, place) for area in adv.regions)
        assert adv.id not in req.conflicts
        assert a.explanation is not None and a.explanation.reasons
        assert len(a.alternates) <= 3 and adv.id not in {alt.advisor.id for alt in a.alternates}
        assert [alt.score for alt in a.alternates] == sorted([alt.score for alt in a.alternates], reverse=True)
    for adv_id, (used, cap) in result.load.items():
        assert cap is None or used <= cap
        assert by_id[adv_id].capacity is None or cap == by_id[adv_id].capacity
    assert next(a for a in result.assignments if a.request.id == "r-tr").advisor.id == "adv-115"
    # the same total as an independent ILP on the same eligible pairs
    scores = score_requests(matcher, [r.query() for r in requests], as_of=AS_OF)
    eligible = np.array([[set(r.languages) <= set(matcher.entities_[i].languages) for i in scores.advisors]
                         for r in requests])
    S = np.where(eligible, scores.total, -np.inf)
    capacity = np.array([len(requests) if matcher.entities_[i].capacity is None else matcher.entities_[i].capacity
                         for i in scores.advisors])
    for r, req in enumerate(requests):  # region and conflicts as in the library
        place = gz.locate(req.city, req.lat, req.lon) or matcher.index_.places[matcher.index_.row[req.municipality]]
        for j, i in enumerate(scores.advisors):
            adv = matcher.entities_[i]
            if (adv.regions and not any(gz.covers(area, place) for area in adv.regions)) or adv.id in req.conflicts:
                S[r, j] = -np.inf
    served, total = milp_reference(S, capacity)
    assert served == len(requests) and result.total_score == pytest.approx(total, abs=1e-6)


def test_capacity_shortage_names_the_language_the_requests_and_the_relaxation(matcher, catalog):
    # adv-117 is the only Tigrinya speaker (capacity 2): four requests need Tigrinya
    requests = fixture_requests(catalog)[:5] + [
        AdvisorRequest(id=f"ti-{k}", text="Tigrinya-sprachige Familien erreichen", city=city, languages=["ti"])
        for k, city in enumerate(["Köln", "Bonn", "Essen", "Aachen"])]
    with pytest.raises(InfeasibleError) as err:
        assign_advisors(matcher, requests, as_of=AS_OF)
    exc = err.value
    detail = next(d for d in exc.details if d["constraint"] == "language")
    assert len(detail["requests"]) == 2 and set(detail["requests"]) <= {f"ti-{k}" for k in range(4)}
    assert detail["advisors"] == ["adv-117"] and detail["missing"] == 2
    assert "Tigrinya" in exc.message and "Kapazität von" in exc.message and "adv-117" in exc.message
    assert any("um 2 erhöhen" in r for r in detail["relaxations"])
    assert any("Sprache Tigrinya streichen" in r for r in detail["relaxations"])


def test_a_language_nobody_speaks_blocks_its_request(matcher, catalog):
    requests = fixture_requests(catalog)[:3] + [AdvisorRequest(id="r-ku-ti", text="Beratung", city="Köln",
                                                               languages=["ti", "sw"])]
    with pytest.raises(InfeasibleError) as err:
        assign_advisors(matcher, requests, as_of=AS_OF)
    detail = err.value.details[0]
    assert detail["requests"] == ["r-ku-ti"] and detail["constraint"] == "language"
    assert "zugleich" in detail["message"]


def test_a_conflict_that_leaves_nobody_is_named(matcher, catalog):
    # in Köln only adv-103 speaks Turkish and serves the city
    requests = fixture_requests(catalog)[:3] + [AdvisorRequest(id="r-tr", text="Moscheegemeinden", city="Köln",
                                                               languages=["tr"], conflicts=["adv-103"])]
    with pytest.raises(InfeasibleError) as err:
        assign_advisors(matcher, requests, as_of=AS_OF)
    detail = err.value.details[0]
    assert (detail["constraint"], detail["requests"], detail["advisors"]) == ("conflicts", ["r-tr"], ["adv-103"])
    assert "Konflikt" in detail["message"]


def test_partial_assignment_serves_everyone_it_can_and_says_why_not_the_rest(matcher, catalog):
    requests = fixture_requests(catalog) + [
        AdvisorRequest(id=f"ti-{k}", text="Tigrinya-sprachige Familien erreichen", city="Köln", languages=["ti"])
        for k in range(3)]
    result = assign_advisors(matcher, requests, allow_partial=True, as_of=AS_OF)
    blocked = [a for a in result.assignments if a.advisor is None]
    assert len(blocked) == 2 and all("Tigrinya" in a.blocked for a in blocked)
    assert not result.complete and result.optimal
    assert result.load["adv-117"] == (2, 2)


def test_unknown_conflict_ids_and_missing_places_are_input_errors(matcher):
    requests = [AdvisorRequest(id="a", text="x", city="Nirgendwo-an-der-Ruhr"),
                AdvisorRequest(id="b", text="x", city="Köln", conflicts=["adv-999"])]
    with pytest.raises(ValidationError) as err:
        assign_advisors(matcher, requests, as_of=AS_OF)
    assert {(d["request"], d["field"]) for d in err.value.details} == {("a", "city"), ("b", "conflicts")}


# ---------------------------------------------------------------- request files
def test_requests_are_read_from_csv_with_lists_and_decimal_commas(tmp_path):
    path = tmp_path / "anfragen.csv"
    path.write_text("id;text;city;lat;lon;languages;conflicts\n"
                    "r1;Faire Beschaffung;Münster;;;de|fr;adv-101|adv-102\n"
                    "r2;Klimapartnerschaft;;51,43;7,01;;\n", encoding="utf-8-sig")
    r1, r2 = load_requests(path)
    assert r1.languages == ["de", "fr"] and r1.conflicts == ["adv-101", "adv-102"]
    assert (r2.lat, r2.lon) == (51.43, 7.01) and r2.city is None


def test_a_bad_request_file_is_rejected_as_a_whole(tmp_path):
    path = tmp_path / "anfragen.jsonl"
    path.write_text('{"id": "r1", "text": "ok", "city": "Köln"}\n{"id": "r1", "text": "dup"}\n{"text": "no id"}\n',
                    encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        load_requests(path)
    assert {d["line"] for d in err.value.details} == {2, 3}


def test_an_unreadable_request_csv_names_the_line(tmp_path):
    """A quote never closed (or a cell over csv's field limit) is a line-numbered error, not a crash."""
    path = tmp_path / "anfragen.csv"
    path.write_text("id;text;city\nr1;Faire Beschaffung;Köln\nr2;\"" + "x" * 200_000 + "\n", encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        load_requests(path)
    assert [d["line"] for d in err.value.details] == [3], err.value.details
    assert "nicht lesbar" in str(err.value.details)


# ---------------------------------------------------------------- command line (fast model)
@pytest.fixture()
def cli_env(monkeypatch):
    monkeypatch.setenv("MATCHER_MODEL", "use")
    return CliRunner()


def _write_jsonl(path, records):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), encoding="utf-8")


def test_assign_command_exits_non_zero_naming_the_blocking_constraint(cli_env, tmp_path):
    path = tmp_path / "anfragen.jsonl"
    _write_jsonl(path, [{"id": f"ti-{k}", "text": "Tigrinya-sprachige Familien erreichen", "city": "Köln",
                         "languages": ["ti"]} for k in range(3)])
    out = tmp_path / "zuordnung.xlsx"
    res = cli_env.invoke(assign, [*CATALOG, "--requests", str(path), "--out", str(out)])
    assert res.exit_code == EXIT_INFEASIBLE
    assert "Tigrinya" in res.stderr and "ti-" in res.stderr and "Kapazität von" in res.stderr
    assert not out.exists()


def test_assign_command_writes_a_complete_assignment(cli_env, tmp_path):
    path = tmp_path / "anfragen.csv"
    path.write_text("id,text,city,languages\nr1,Faire Beschaffung von Dienstkleidung,Münster,\n"
                    "r2,Frankophone Vereine begleiten,Dortmund,fr\n", encoding="utf-8")
    out = tmp_path / "zuordnung.csv"
    res = cli_env.invoke(assign, [*CATALOG, "--requests", str(path), "--out", str(out), "--delimiter", ";"])
    assert res.exit_code == 0, res.output
    assert "2 von 2 Anfragen zugeordnet" in res.stdout and out.read_bytes().startswith(b"\xef\xbb\xbf")
