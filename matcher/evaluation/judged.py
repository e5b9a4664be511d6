"""Evaluate a matcher on a judged data set in the FORMAT.md layout
(``catalog.jsonl``, ``queries.jsonl``, ``qrels.tsv``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from matcher.domain.messages import alternatives
from matcher.domain.schema import TASKS, Query, load_catalog, load_qrels, load_queries
from matcher.errors import CatalogError
from matcher.evaluation.metrics import mrr_at_k, ndcg_at_k, recall_at_k

__all__ = ["Dataset", "load_dataset", "evaluate", "EvaluationReport", "judged_municipalities"]


@dataclass
class Dataset:
    catalog: list
    queries: list[Query]
    qrels: dict[str, dict[str, int]]
    path: Path


def load_dataset(path: str | Path) -> Dataset:
    """Read the three files of a judged set; every problem names file and line."""
    path = Path(path)
    missing = [f for f in ("catalog.jsonl", "queries.jsonl", "qrels.tsv") if not (path / f).is_file()]
    if missing:
        raise CatalogError(f"{path} ist kein bewerteter Datensatz: es fehlt {alternatives(missing, 'und')}",
                           [{"file": str(path / m)} for m in missing])
    return Dataset(load_catalog(path / "catalog.jsonl"), load_queries(path / "queries.jsonl"),
                   load_qrels(path / "qrels.tsv"), path)


@dataclass
class EvaluationReport:
    per_query: dict[str, dict[str, float]]
    per_task: dict[str, dict[str, float]]
    overall: dict[str, float]
    runs: dict[str, list[tuple[str, float]]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"overall": self.overall, "per_task": self.per_task, "per_query": self.per_query}


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = ("ndcg@10", "mrr@10", "recall@10")
    return {k: float(np.mean([r[k] for r in rows])) if rows else 0.0 for k in keys} | {"queries": len(rows)}


def judged_municipalities(dataset: Dataset) -> set[str]:
    """The tasks (partners, invitations) for which the set judges a municipality relevant to some query.

    FORMAT.md's partner searches and invitation lists rank organisations; the engine also suggests
    municipalities where municipal actors are asked for. A set whose judges never saw a municipality
    as a candidate would count every one shown as not relevant, so :func:`evaluate` ranks
    municipalities only for the tasks where the set judges one."""
    kinds = {e.id: e.kind for e in dataset.catalog}
    tasks = {q.id: q.task for q in dataset.queries}
    return {tasks[qid] for qid, grades in dataset.qrels.items() if qid in tasks
            for entity_id, grade in grades.items() if grade > 0 and kinds.get(entity_id) == "municipality"}


def evaluate(rank: Callable[[Query], list[tuple[str, float]]], dataset: Dataset, k: int = 10) -> EvaluationReport:
    """Score ``rank`` (query → ranked (entity id, score) list) against the judgments.

    Queries without any judgment are still run and count with 0 (as FORMAT.md
    defines unlisted entities as grade 0). Partner and invitation queries rank organisations
    only unless the set judges municipalities for that task (:func:`judged_municipalities`).
    """
    per_query: dict[str, dict[str, float]] = {}
    runs: dict[str, list[tuple[str, float]]] = {}
    by_task: dict[str, list[dict[str, float]]] = {t: [] for t in TASKS}
    with_municipalities = judged_municipalities(dataset)
    for i, q in enumerate(dataset.queries):
        qid = q.id or f"q{i + 1}"
        if q.task in ("partners", "invitations") and not q.kinds and q.task not in with_municipalities:
            q = q.model_copy(update={"kinds": ["organisation"]})
        ranked = rank(q)[:k]
        runs[qid] = ranked
        ids = [e for e, _ in ranked]
        grades = dataset.qrels.get(qid, {})
        row = {"ndcg@10": ndcg_at_k(ids, grades, k), "mrr@10": mrr_at_k(ids, grades, k),
               "recall@10": recall_at_k(ids, grades, k)}
        per_query[qid] = row
        by_task[q.task].append(row)
    per_task = {t: _mean(rows) for t, rows in by_task.items() if rows}
    overall = _mean(list(per_query.values()))
    return EvaluationReport(per_query, per_task, overall, runs)


def matcher_ranker(matcher, as_of: dt.date | None = None, k: int = 10) -> Callable[[Query], list[tuple[str, float]]]:
    """Adapt a fitted :class:`~matcher.engine.matcher.Matcher` to :func:`evaluate`."""

    def rank(q: Query) -> list[tuple[str, float]]:
        return [(r.entity_id, r.score) for r in matcher.rank(q, k=k, as_of=as_of).results]

    return rank
