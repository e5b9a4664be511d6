"""Evaluate a matcher on a judged data set in the FORMAT.md layout
(``catalog.jsonl``, ``queries.jsonl``, ``qrels.tsv``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from matcher.domain.messages import alternatives, quoted
from matcher.domain.schema import TASKS, Query, load_catalog, load_qrels, load_queries
from matcher.engine.weights import TASK_KIND, TASK_KINDS
from matcher.errors import CatalogError
from matcher.evaluation.metrics import RELEVANT_GRADE, mrr_at_k, ndcg_at_k, recall_at_k
from matcher.programmes.matching import match_programmes, ranked_ids

# an optional fourth file of a judged set: which kinds its judges considered per task
KINDS_FILE = "kinds.json"

__all__ = ["Dataset", "load_dataset", "evaluate", "EvaluationReport", "candidate_kinds", "has_fit", "judged_queries",
           "reference_date"]


@dataclass
class Dataset:
    catalog: list
    queries: list[Query]
    qrels: dict[str, dict[str, int]]
    path: Path
    kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)  # kinds.json: the judged candidates' kinds


def load_dataset(path: str | Path) -> Dataset:
    """Read the three files of a judged set; every problem names file and line."""
    path = Path(path)
    missing = [f for f in ("catalog.jsonl", "queries.jsonl", "qrels.tsv") if not (path / f).is_file()]
    if missing:
        raise CatalogError(f"{path} ist kein bewerteter Datensatz: es fehlt {alternatives(missing, 'und')}",
                           [{"file": str(path / m)} for m in missing])
    return Dataset(load_catalog(path / "catalog.jsonl"), load_queries(path / "queries.jsonl"),
                   load_qrels(path / "qrels.tsv"), path, _load_kinds(path / KINDS_FILE))


def _load_kinds(path: Path) -> dict[str, tuple[str, ...]]:
    """A set's optional declaration of the kinds its judges considered per task (see :func:`candidate_kinds`)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogError(f"{path} ist kein lesbares JSON: {exc}", [{"file": str(path)}]) from exc
    if not isinstance(data, dict):
        raise CatalogError(f"{path} muss ein JSON-Objekt sein (Aufgabe → Liste von Arten)", [{"file": str(path)}])
    problems = []
    for task, kinds in data.items():
        if task not in TASK_KINDS:
            problems.append({"file": str(path), "field": task,
                             "message": f"Unbekannte Aufgabe {quoted(task)}; erlaubt: {alternatives(TASK_KINDS)}"})
        elif not isinstance(kinds, list) or not kinds or not set(kinds) <= set(TASK_KINDS[task]):
            problems.append({"file": str(path), "field": task,
                             "message": f"Arten für {quoted(task)} müssen aus {alternatives(TASK_KINDS[task])} sein"})
    if problems:
        raise CatalogError(f"{path}: {problems[0]['message']}", problems)
    return {task: tuple(kinds) for task, kinds in data.items()}


@dataclass
class EvaluationReport:
    """Figures of one run. ``per_task`` and ``overall`` average over the queries with a fit (some
    judgement of grade ≥ 2); ``no_fit`` lists, per task, the queries judged to have none: they are
    run, kept in ``per_query`` and ``runs``, but left out of the means (nDCG/MRR/recall cannot
    reward an honest "nothing fits") and counted apart (``no_fit`` in each row)."""

    per_query: dict[str, dict[str, float]]
    per_task: dict[str, dict[str, float]]
    overall: dict[str, float]
    runs: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    no_fit: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"overall": self.overall, "per_task": self.per_task, "per_query": self.per_query,
                "no_fit_queries": [q for ids in self.no_fit.values() for q in ids]}


def _mean(rows: list[dict[str, float]], no_fit: int) -> dict[str, float]:
    keys = ("ndcg@10", "mrr@10", "recall@10")
    return ({k: float(np.mean([r[k] for r in rows])) if rows else 0.0 for k in keys}
            | {"queries": len(rows), "no_fit": no_fit})


def has_fit(grades: dict[str, int]) -> bool:
    """Whether a query's judgements name at least one fitting entity (grade ≥ 2, as MRR and recall count)."""
    return any(g >= RELEVANT_GRADE for g in grades.values())


def reference_date(dataset: Dataset) -> dt.date | None:
    """The day a judged set is ranked as of: its earliest event (events before it are past)."""
    return min((e.date for e in dataset.catalog if getattr(e, "date", None)), default=None)


def candidate_kinds(dataset: Dataset, task: str) -> tuple[str, ...]:
    """The kinds of entity the set's judges considered as candidates of ``task``.

    FORMAT.md's partner searches and invitation lists rank organisations; the engine also suggests
    municipalities where municipal actors are asked for. A set whose judges never saw a municipality as a
    candidate would count every one shown as not relevant, so a set says which kinds it judged in an
    optional ``kinds.json`` beside its three files (``{"partners": ["organisation", "municipality"]}``);
    a task it does not name has FORMAT.md's kind."""
    return dataset.kinds.get(task) or (TASK_KIND[task],)


def judged_queries(dataset: Dataset) -> list[Query]:
    """The set's queries as :func:`evaluate` runs them: each with its id (``q1``, … where the set gives
    none) and, for partner and invitation queries, ranking only the kinds the set judged
    (:func:`candidate_kinds`)."""
    out = []
    for i, q in enumerate(dataset.queries):
        update: dict[str, object] = {} if q.id else {"id": f"q{i + 1}"}
        judged = candidate_kinds(dataset, q.task) if q.task in TASK_KINDS else ()
        if judged and not q.kinds and not set(TASK_KINDS[q.task]) <= set(judged):
            update["kinds"] = list(judged)
        out.append(q.model_copy(update=update) if update else q)
    return out


def evaluate(rank: Callable[[Query], list[tuple[str, float]]], dataset: Dataset, k: int = 10) -> EvaluationReport:
    """Score ``rank`` (query → ranked (entity id, score) list) against the judgments.

    Every query is run. A query without a judgement of grade ≥ 2 (including one with no judgement
    at all: unlisted entities are grade 0 in FORMAT.md) is a *no-fit* query: its row stays in
    ``per_query``, but the per-task and overall means cover only the queries with a fit, and the
    no-fit ones are counted apart. A task whose queries are all no-fit has no row in ``per_task``.
    Partner and invitation queries rank only the kinds the set judged (:func:`candidate_kinds`).
    """
    per_query: dict[str, dict[str, float]] = {}
    runs: dict[str, list[tuple[str, float]]] = {}
    by_task: dict[str, list[dict[str, float]]] = {t: [] for t in TASKS}
    no_fit: dict[str, list[str]] = {t: [] for t in TASKS}
    for q in judged_queries(dataset):
        qid = q.id
        ranked = rank(q)[:k]
        runs[qid] = ranked
        ids = [e for e, _ in ranked]
        grades = dataset.qrels.get(qid, {})
        row = {"ndcg@10": ndcg_at_k(ids, grades, k), "mrr@10": mrr_at_k(ids, grades, k),
               "recall@10": recall_at_k(ids, grades, k)}
        per_query[qid] = row
        if has_fit(grades):
            by_task[q.task].append(row)
        else:
            no_fit[q.task].append(qid)
    per_task = {t: _mean(rows, len(no_fit[t])) for t, rows in by_task.items() if rows}
    overall = _mean([r for rows in by_task.values() for r in rows], sum(len(v) for v in no_fit.values()))
    return EvaluationReport(per_query, per_task, overall, runs, {t: v for t, v in no_fit.items() if v})


def matcher_ranker(matcher, as_of: dt.date | None = None, k: int = 10) -> Callable[[Query], list[tuple[str, float]]]:
    """Adapt a fitted :class:`~matcher.engine.matcher.Matcher` to :func:`evaluate`."""

    def rank(q: Query) -> list[tuple[str, float]]:
        if q.task == "programmes":  # eligible programmes first, then the excluded ones (as the product answers)
            return ranked_ids(match_programmes(matcher, q, k=k, today=as_of, suggest=0))
        return [(r.entity_id, r.score) for r in matcher.rank(q, k=k, as_of=as_of).results]

    return rank
