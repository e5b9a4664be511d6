"""Our own judged set eval/trust (issue 17, item 6): consistent files, and `matcher evaluate` runs on it.

Integrity is checked from the files alone; the one run of the command uses the session's fast
embedder, so it loads no further model.
"""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from conftest import ROOT
from matcher.cli import cli
from matcher.domain.schema import load_catalog, load_qrels, load_queries
from matcher.evaluation.judged import load_dataset

TRUST = ROOT / "eval" / "trust"
CANDIDATE_KINDS = {"advisors": {"advisor"}, "partners": {"organisation", "municipality"}, "events": {"event"},
                   "invitations": {"organisation", "municipality"}}


def _rows(name: str) -> list[list[str]]:
    with open(TRUST / name, encoding="utf-8", newline="") as fh:
        return [r for r in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if r]


@pytest.fixture(scope="module")
def trust():
    return load_catalog(TRUST / "catalog.jsonl"), load_queries(TRUST / "queries.jsonl"), _rows("qrels.tsv")


def test_every_judgement_names_a_known_query_and_candidate_with_a_grade_and_a_note(trust):
    catalog, queries, qrels = trust
    kinds = {e.id: e.kind for e in catalog}
    tasks = {q.id: q.task for q in queries}
    assert len(tasks) == len(queries) >= 70
    seen = set()
    for line, row in enumerate(qrels, start=1):
        assert len(row) == 4, f"qrels.tsv:{line}: 4 Spalten erwartet"
        qid, eid, grade, note = row
        assert qid in tasks and eid in kinds, f"qrels.tsv:{line}"
        assert kinds[eid] in CANDIDATE_KINDS[tasks[qid]], f"qrels.tsv:{line}: {eid} ist kein Kandidat für {qid}"
        assert grade in {"0", "1", "2", "3"} and note.strip(), f"qrels.tsv:{line}"
        assert (qid, eid) not in seen, f"qrels.tsv:{line}: doppelt"
        seen.add((qid, eid))
    assert {r[0] for r in qrels} == set(tasks), "jede Anfrage ist beurteilt"


def test_every_query_has_a_case_and_the_fit_tags_agree_with_the_grades(trust):
    _, queries, qrels = trust
    header, *cases = _rows("cases.tsv")
    assert header == ["query_id", "case"]
    tags = {qid: set(case.split(",")) for qid, case in cases}
    assert len(tags) == len(cases) and set(tags) == {q.id for q in queries}
    best: dict[str, int] = {}
    for qid, _, grade, _ in qrels:
        best[qid] = max(best.get(qid, 0), int(grade))
    no_fit = {q for q, g in best.items() if g < 2}
    perfect = {q for q, g in best.items() if g == 3}
    assert no_fit == {q for q, t in tags.items() if "no_fit" in t}
    assert perfect == {q for q, t in tags.items() if "perfect_fit" in t}
    assert len(no_fit) >= 15 and len(perfect) >= 15


def test_the_set_follows_the_format_and_loads_as_a_dataset(trust):
    catalog, queries, _ = trust
    ids = {e.id for e in catalog}
    assert all(q.from_ is None or q.from_ in ids for q in queries)
    ds = load_dataset(TRUST)
    assert sum(len(v) for v in ds.qrels.values()) == len(_rows("qrels.tsv"))
    assert load_qrels(TRUST / "qrels.tsv") == ds.qrels
    for line in (TRUST / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        assert set(json.loads(line)) <= {"id", "task", "text", "from", "city", "lat", "lon", "languages"}


def test_matcher_evaluate_runs_on_the_set_and_counts_no_fit_queries_apart(trust, fast_embedder, tmp_path,
                                                                          monkeypatch):
    import matcher.engine.embedding as embedding

    monkeypatch.setattr(embedding, "make_embedder", lambda *args, **kwargs: fast_embedder)
    db = f"sqlite:///{tmp_path / 'matcher.db'}"
    res = CliRunner().invoke(cli, ["evaluate", "--data", str(TRUST), "--json", "--database", db])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    _, queries, _ = trust
    no_fit = {qid for qid, case in _rows("cases.tsv")[1:] if "no_fit" in case.split(",")}
    assert set(report["no_fit_queries"]) == no_fit
    assert report["overall"]["queries"] + report["overall"]["no_fit"] == len(queries)
    assert set(report["per_query"]) == {q.id for q in queries}
    assert set(report["per_task"]) == {"advisors", "partners", "events", "invitations"}
    for row in [report["overall"], *report["per_task"].values()]:
        assert 0.0 <= row["ndcg@10"] <= 1.0
    table = CliRunner().invoke(cli, ["evaluate", "--data", str(TRUST), "--database", db])
    assert table.exit_code == 0, table.output
    assert "ohne Treffer" in table.output and f"{len(no_fit)} Anfragen ohne passenden Eintrag" in table.output


def test_no_fit_queries_are_run_but_left_out_of_the_means(tmp_path):
    """Hand-made set: one query with a fit, one with only grade 1, one with no judgement at all."""
    from matcher.domain.schema import Query
    from matcher.evaluation.judged import Dataset, evaluate

    queries = [Query(id="fit", task="advisors", text="x"), Query(id="weak", task="advisors", text="y"),
               Query(id="none", task="events", text="z")]
    qrels = {"fit": {"a": 3, "b": 1}, "weak": {"b": 1}}
    ds = Dataset(catalog=[], queries=queries, qrels=qrels, path=tmp_path)
    report = evaluate(lambda q: [("b", 0.9), ("a", 0.8)], ds)
    assert set(report.per_query) == {"fit", "weak", "none"} and set(report.runs) == {"fit", "weak", "none"}
    assert report.no_fit == {"advisors": ["weak"], "events": ["none"]}
    assert report.overall["queries"] == 1 and report.overall["no_fit"] == 2
    assert report.overall["mrr@10"] == pytest.approx(0.5) and report.overall["recall@10"] == pytest.approx(1.0)
    assert report.overall["ndcg@10"] == pytest.approx(report.per_query["fit"]["ndcg@10"])
    assert report.per_task["advisors"]["no_fit"] == 1 and "events" not in report.per_task
    assert report.as_dict()["no_fit_queries"] == ["weak", "none"]


def test_a_set_declares_the_kinds_its_judges_saw_and_evaluate_ranks_only_those(tmp_path):
    """FORMAT.md's partner searches rank organisations; a set whose judges also judged municipalities says so
    in kinds.json (eval/trust does), and only then does `evaluate` let the engine rank municipalities."""
    from matcher.domain.schema import Query
    from matcher.errors import CatalogError
    from matcher.evaluation.judged import Dataset, candidate_kinds, evaluate

    trust = load_dataset(TRUST)
    for task in ("partners", "invitations"):
        assert set(candidate_kinds(trust, task)) == CANDIDATE_KINDS[task]
    seen: dict[str, list[str]] = {}

    def rank(q: Query) -> list[tuple[str, float]]:
        seen[q.id] = list(q.kinds)
        return []

    queries = [Query(id="p", task="partners", text="x"), Query(id="i", task="invitations", text="y"),
               Query(id="a", task="advisors", text="z"), Query(id="own", task="partners", text="w",
                                                           kinds=["municipality"])]
    evaluate(rank, Dataset(catalog=[], queries=queries, qrels={}, path=tmp_path))
    assert seen == {"p": ["organisation"], "i": ["organisation"], "a": [], "own": ["municipality"]}
    evaluate(rank, Dataset(catalog=[], queries=queries, qrels={}, path=tmp_path,
                           kinds={"partners": ("organisation", "municipality")}))
    assert seen == {"p": [], "i": ["organisation"], "a": [], "own": ["municipality"]}

    for name in ("catalog.jsonl", "queries.jsonl", "qrels.tsv"):
        (tmp_path / name).write_text("", encoding="utf-8")
    assert load_dataset(tmp_path).kinds == {}
    (tmp_path / "kinds.json").write_text('{"partners": ["organisation", "event"]}', encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_dataset(tmp_path)
    assert err.value.details[0]["field"] == "partners" and "„partners“" in str(err.value)
