"""Ablation of the fusion: nDCG@10 on a judged set with each signal removed in turn.

    python -m bench.ablation [--data ../shared/eval/dev] [--model e5+use]

One fitted engine, the same vectors for every row, so rows differ only by the
signal switched off.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from matcher.engine.embedding import CachedEmbedder, SQLiteVectorCache, make_embedder
from matcher.engine.matcher import SIGNALS, Matcher, Weights
from matcher.evaluation.judged import evaluate, load_dataset, matcher_ranker, reference_date
from matcher.settings import model_spec

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "var" / "bench" / "dev-vectors.sqlite"
# the shapes issue 17 added or changed, each set back to what it was before
SHAPES = {"event_proximity as implicit_proximity (0.3)": {"event_proximity": 0.3},
          "no partner mix (mix_radius_km 0)": {"mix_radius_km": 0.0},
          "from_share as before (0.35)": {"from_share": 0.35},
          "event_from_share as from_share before (0.35)": {"event_from_share": 0.35},
          "partner_proximity as implicit_proximity (0.3)": {"partner_proximity": 0.3},
          "the three shapes of 2026-12-04 set back": {"from_share": 0.35, "event_from_share": 0.35,
                                                      "partner_proximity": 0.3}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "eval" / "dev"))
    ap.add_argument("--model", default=None)
    args = ap.parse_args(argv)
    ds = load_dataset(args.data)
    embedder = CachedEmbedder(make_embedder(args.model or model_spec()), SQLiteVectorCache(CACHE))
    matcher = Matcher(embedder).fit(ds.catalog)
    as_of = reference_date(ds)
    full = Weights()
    tasks = ("advisors", "partners", "events", "invitations")
    print(f"model: {embedder.model_id}; data: {args.data}")
    print("| configuration | overall | " + " | ".join(tasks) + " |")
    print("|---|---|" + "---|" * len(tasks))
    for name in ("all signals", *SIGNALS, *SHAPES):
        matcher.weights_ = full if name == "all signals" else \
            Weights.from_mapping({**full.as_dict(), **SHAPES[name]}) if name in SHAPES else full.without(name)
        rep = evaluate(matcher_ranker(matcher, as_of=as_of), ds)
        label = name if name == "all signals" or name in SHAPES else f"without {name}"
        cells = " | ".join(f"{rep.per_task[t]['ndcg@10']:.3f}" if t in rep.per_task else "–" for t in tasks)
        print(f"| {label} | {rep.overall['ndcg@10']:.3f} | {cells} |")
    matcher.weights_ = full


if __name__ == "__main__":
    main()
