"""Fitting and measuring the calibrated confidence (:mod:`matcher.engine.confidence`) on judged data sets.

Each judged query is ranked; its top ``k`` results become rows: the features of
:func:`matcher.engine.confidence.features` and the label *relevant* = judged grade ≥ 2 (unjudged = 0, as
FORMAT.md says). :func:`calibrate` fits the logistic model on all rows and measures it honestly with
cross-validation over queries (``GroupKFold``: a query's results are never split between fitting and
measuring): the expected calibration error (ECE, 10 equal-width bins), the Brier score, and how often the
top result is marked weak on needs that nothing fits (no grade ≥ 2) and on needs with a perfect fit (a grade 3).
Beside it, two one-input baselines (Platt and isotonic scaling of the fused score alone) are measured the
same way, so the choice of features is defended by the same figures. ``matcher calibrate`` runs it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from matcher.domain.formatting import decimal
from matcher.domain.schema import Query
from matcher.engine.confidence import (
    BARS,
    FALSE_FRIEND,
    FEATURES,
    ConfidenceModel,
    StrengthBars,
    evidence,
    features,
    fusion_fingerprint,
    score_ranks,
)
from matcher.engine.similarity import top_k
from matcher.errors import ValidationError
from matcher.evaluation.judged import Dataset, evaluate, reference_date
from matcher.evaluation.metrics import RELEVANT_GRADE

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Matcher

__all__ = ["JudgedResults", "CalibrationReport", "collect", "fit_model", "expected_calibration_error",
           "reliability_bins", "cross_validate", "calibrate", "reliability_plot", "BINS", "METHODS"]

BINS = 10
METHODS = {
    "logistic": "Logistisch über Punktzahl, Abstände und Signale (verwendet)",
    "platt_score": "Platt: Punktzahl allein",
    "isotonic_score": "Isotonisch: Punktzahl allein",
}


@dataclass
class JudgedResults:
    """The top results of judged queries as rows: features, grade, the query (a group) and its rank."""

    x: np.ndarray                 # rows × FEATURES
    grades: np.ndarray            # judged grade (unjudged: 0)
    groups: np.ndarray            # "<data set>/<query id>"
    ranks: np.ndarray             # rank by fused score among the query's candidates (1 = best)
    best_grade: dict[str, int]    # group → best grade judged for the query (over the whole catalog)
    sets: dict[str, int] = field(default_factory=dict)   # data set → queries

    @property
    def relevant(self) -> np.ndarray:
        return self.grades >= RELEVANT_GRADE

    @classmethod
    def concat(cls, parts: Sequence[JudgedResults]) -> JudgedResults:
        return cls(np.vstack([p.x for p in parts]), np.concatenate([p.grades for p in parts]),
                   np.concatenate([p.groups for p in parts]), np.concatenate([p.ranks for p in parts]),
                   {g: b for p in parts for g, b in p.best_grade.items()},
                   {s: n for p in parts for s, n in p.sets.items()})


def collect(matcher: Matcher, dataset: Dataset, k: int = 10, as_of: dt.date | None = None,
            name: str | None = None) -> JudgedResults:
    """Rank every query of ``dataset`` as :func:`~matcher.evaluation.judged.evaluate` runs it and keep its
    top ``k`` as rows (so the calibration sees exactly the lists the quality figures are measured on).

    ``as_of``: the reference date for events (default: the data set's earliest event date, as
    ``matcher evaluate`` does). ``name``: the data set's name in the groups (default: its folder's name).
    """
    name = name or dataset.path.name
    if as_of is None:
        as_of = reference_date(dataset)
    xs, grades, groups, ranks_of, best_grade = [], [], [], [], {}
    asked = iter(range(1, len(dataset.queries) + 1))

    def rank(q: Query) -> list[tuple[str, float]]:
        position = next(asked)   # evaluate asks in the data set's order and names a query without id by it
        qid = q.id or f"q{position}"
        group, judged = f"{name}/{qid}", dataset.qrels.get(qid, {})
        best_grade[group] = max(judged.values(), default=0)
        scores = matcher.score(q, as_of=as_of)
        rows = top_k(scores.total, k, scores.mask) + scores.block.rows.start
        totals = [float(scores.total[i - scores.block.rows.start]) for i in rows]
        ranks, best = score_ranks(scores.total[scores.mask], totals)
        ids = [matcher.index_.entities[int(i)].id for i in rows]
        if ids:
            xs.append(features(totals, ranks, best, [evidence(matcher.index_, scores.context, int(i),
                                                              scores.at(int(i)).contributions) for i in rows]))
        grades.extend(judged.get(e, 0) for e in ids)
        groups.extend([group] * len(ids))
        ranks_of.extend(ranks)
        return list(zip(ids, totals))

    evaluate(rank, dataset, k)
    x = np.vstack(xs) if xs else np.zeros((0, len(FEATURES)))
    return JudgedResults(x, np.asarray(grades, dtype=np.int64), np.asarray(groups, dtype=object),
                         np.asarray(ranks_of, dtype=np.int64), best_grade, {name: len(dataset.queries)})


def fit_model(x: np.ndarray, y: np.ndarray, model_id: str, weights: str, c: float = 1.0,
              bars: StrengthBars = BARS) -> ConfidenceModel:
    """Fit the logistic confidence model (standardised features, L2 penalty ``1/c``; deterministic)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(set(y.tolist())) < 2:
        raise ValidationError("Die beurteilten Ergebnisse enthalten nur eine Klasse (nur relevante oder nur "
                              "nicht relevante): so lässt sich keine Konfidenz kalibrieren",
                              [{"field": "data"}])
    # the false-friend gate is no input of the logistic part: its rows get their own smoothed rate
    gate = FEATURES.index(FALSE_FRIEND)
    gated = x[:, gate] > 0
    inputs = [j for j in range(x.shape[1]) if j != gate]
    scaler = StandardScaler().fit(x[:, inputs])
    mean, scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
    mean[inputs], scale[inputs] = scaler.mean_, np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    lr = LogisticRegression(C=c, max_iter=5000).fit(((x - mean) / scale)[:, inputs], y)
    coef = np.zeros(x.shape[1])
    coef[inputs] = lr.coef_[0]
    rate = (float(y[gated].sum()) + 2.0 * float(y.mean())) / (int(gated.sum()) + 2.0)
    return ConfidenceModel(list(FEATURES), mean.tolist(), scale.tolist(), coef.tolist(), float(lr.intercept_[0]),
                           model_id, weights, bars, false_friend_rate=rate)


def reliability_bins(p: np.ndarray, y: np.ndarray, bins: int = BINS) -> list[dict[str, float]]:
    """Equal-width bins of predicted probability: count, mean prediction and observed rate (empty bins left out)."""
    which = np.minimum((np.asarray(p) * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            out.append({"lower": b / bins, "upper": (b + 1) / bins, "count": int(in_bin.sum()),
                        "predicted": float(p[in_bin].mean()), "observed": float(np.asarray(y)[in_bin].mean())})
    return out


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = BINS) -> float:
    """ECE: the count-weighted mean of |observed rate − mean prediction| over equal-width bins."""
    n = len(p)
    return float(sum(b["count"] * abs(b["observed"] - b["predicted"]) for b in reliability_bins(p, y, bins)) / n) \
        if n else 0.0


def _one_input(method: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """The baselines: Platt or isotonic scaling of the fused score alone."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    s_train, s_test = x_train[:, [0]], x_test[:, [0]]
    if method == "platt_score":
        return LogisticRegression(max_iter=5000).fit(s_train, y_train).predict_proba(s_test)[:, 1]
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s_train[:, 0], y_train)
    return iso.predict(s_test[:, 0])


def cross_validate(data: JudgedResults, folds: int = 5, c: float = 1.0) -> dict[str, np.ndarray]:
    """Out-of-fold probabilities of every method (``METHODS``), folds over queries (``GroupKFold``)."""
    from sklearn.model_selection import GroupKFold

    queries = len(set(data.groups.tolist()))
    if not 2 <= folds <= queries:
        raise ValidationError(f"folds muss zwischen 2 und {queries} (der Zahl der Anfragen) liegen, nicht {folds}",
                              [{"field": "folds", "value": folds}])
    y = data.relevant.astype(int)
    out = {m: np.zeros(len(y)) for m in METHODS}
    for train, test in GroupKFold(n_splits=folds).split(data.x, y, data.groups):
        model = fit_model(data.x[train], y[train], "cv", "cv", c)
        out["logistic"][test] = model.predict(data.x[test])
        for m in ("platt_score", "isotonic_score"):
            out[m][test] = _one_input(m, data.x[train], y[train], data.x[test])
    return out


def _weak_top_share(data: JudgedResults, p: np.ndarray, bars: StrengthBars, want: str) -> dict[str, Any]:
    """Among queries with nothing that fits (``want="nothing"``: no grade ≥ 2) or with a perfect fit
    (``"perfect"``: a grade 3), how many have their top result marked weak."""
    tops = np.unique(data.groups, return_index=True)[1]   # each query's first row: its top result
    chosen = [(g, v) for g, v in zip(data.groups[tops], p[tops])
              if (data.best_grade[g] < RELEVANT_GRADE if want == "nothing" else data.best_grade[g] >= 3)]
    weak = [g for g, v in chosen if bars.strength(float(v)) == "weak"]
    return {"queries": len(chosen), "weak": len(weak), "share": len(weak) / len(chosen) if chosen else None}


@dataclass
class CalibrationReport:
    """What :func:`calibrate` measured and the model it fitted on all rows."""

    model: ConfidenceModel
    folds: int
    results: int
    queries: int
    sets: dict[str, int]
    methods: dict[str, dict[str, Any]]                      # method → cv ECE, Brier, shares of weak tops
    bins: list[dict[str, float]]                            # reliability of the used method, out of fold
    weak_top: dict[str, dict[str, Any]]                     # nothing / perfect → share of weak tops, out of fold
    weak_top_in_sample: dict[str, dict[str, Any]]           # the same with the fitted model itself
    oof: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    relevant: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    @property
    def ece(self) -> float:
        return self.methods["logistic"]["ece"]

    def as_dict(self) -> dict[str, Any]:
        return {"model_id": self.model.model_id, "relevant": f"judged grade >= {RELEVANT_GRADE}",
                "folds": self.folds, "results": self.results, "queries": self.queries, "sets": self.sets,
                "ece": self.ece, "methods": self.methods, "bins": self.bins, "weak_top": self.weak_top,
                "weak_top_in_sample": self.weak_top_in_sample, "bars": vars(self.model.bars)}


def calibrate(matcher: Matcher, data: JudgedResults, folds: int = 5, c: float = 1.0,
              bars: StrengthBars = BARS) -> CalibrationReport:
    """Fit the confidence model on ``data`` (collected with ``matcher``) and measure it by cross-validation.

    Raises:
        ValidationError: fewer queries than folds, or only one class among the results.
    """
    y = data.relevant.astype(int)
    oof = cross_validate(data, folds, c)
    methods = {m: {"ece": expected_calibration_error(p, y), "brier": float(np.mean((p - y) ** 2)),
                   **{f"weak_top_{w}": _weak_top_share(data, p, bars, w)["share"] for w in ("nothing", "perfect")}}
               for m, p in oof.items()}
    ranker = getattr(matcher, "ranker_", None)   # None: the hand weights (a caller that only names model and weights)
    model = fit_model(data.x, y, matcher.model_id, fusion_fingerprint(matcher.weights_, ranker), c, bars)
    queries = len(set(data.groups.tolist()))
    model.fitted_on = {"sets": data.sets, "queries": queries, "results": int(len(y)), "relevant": int(y.sum()),
                       "folds": folds, "cv_ece": round(methods["logistic"]["ece"], 4)}
    fitted = model.predict(data.x)
    return CalibrationReport(
        model, folds, int(len(y)), queries, data.sets, methods, reliability_bins(oof["logistic"], y),
        {w: _weak_top_share(data, oof["logistic"], bars, w) for w in ("nothing", "perfect")},
        {w: _weak_top_share(data, fitted, bars, w) for w in ("nothing", "perfect")},
        oof["logistic"], y)


def folds_text(report: CalibrationReport) -> str:
    return f"{report.folds}-fach kreuzvalidiert nach Anfragen"


def reliability_plot(report: CalibrationReport, path: str | Path, model_name: str | None = None) -> Path:
    """A reliability diagram of the out-of-fold confidences (PNG): observed rate against mean prediction
    per bin, the diagonal, and how many results each bin holds. ``model_name``: the model in the title
    (default its id). Needs matplotlib (the ``test`` extra)."""
    try:
        import matplotlib
    except ImportError:
        raise ValidationError("Für das Diagramm wird matplotlib gebraucht: `pip install -e '.[test]'`",
                              [{"field": "plot"}]) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = report.bins
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.5, 6.5), height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfekt kalibriert")
    ax.plot([b["predicted"] for b in bins], [b["observed"] for b in bins], marker="o",
            label=f"kreuzvalidiert (ECE {decimal(report.ece, 3)})")
    for bar, name in ((report.model.bars.partial, "teilweise"), (report.model.bars.good, "gut")):
        ax.axvline(bar, color="tab:orange", linewidth=0.8)
        ax.text(bar + 0.01, 0.02, f"ab hier „{name}“", fontsize=7, color="tab:orange", rotation=90)
    ax.set_ylabel("Anteil relevant (Stufe ≥ 2)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    sets = ", ".join(report.sets)
    ax.set_title(f"Konfidenz ({model_name or report.model.model_id}), {folds_text(report)}\n"
                 f"{sets}: {report.queries} Anfragen, {report.results} Ergebnisse", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    hist.bar([(b["lower"] + b["upper"]) / 2 for b in bins], [b["count"] for b in bins], width=0.09, color="tab:blue")
    hist.set_xlabel("vorhergesagte Wahrscheinlichkeit")
    hist.set_ylabel("Ergebnisse")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path
