"""The cosine from which two needs count as "similar" for „passt nicht“ (matcher.engine.demotion).

For each embedding model: the cosines between the dev set's different needs (their 95th and 99th
percentiles and maximum) beside a few rephrasings of one need. The threshold in
``matcher.engine.demotion.SIMILAR_NEED`` is the 99th percentile of the different needs, rounded up to 0.05.

    .venv/bin/python -m bench.need_similarity            # e5+use and use
    .venv/bin/python -m bench.need_similarity --model use
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from matcher.engine.demotion import similar_need_threshold
from matcher.engine.embedding import CachedEmbedder, SQLiteVectorCache, make_embedder

ROOT = Path(__file__).resolve().parents[1]
REPHRASED = [
    ("Wir suchen Beratung zur fairen Beschaffung von Dienstkleidung für das Ordnungsamt.",
     "Das Ordnungsamt soll fair hergestellte Dienstkleidung bekommen; wer berät uns bei der Beschaffung?"),
    ("Beim nächsten Treffen sollen Vereine aus verschiedenen Herkunftsländern ins Gespräch kommen; wer moderiert?",
     "Wir suchen eine Moderation für ein Treffen von Migrantenvereinen unterschiedlicher Herkunft im Rathaus."),
    ("Klimapartnerschaft mit einer Gemeinde in Tansania aufbauen",
     "Wir wollen eine kommunale Klimapartnerschaft mit Tansania beginnen und suchen Beratung."),
    ("Moscheegemeinden für den Klimaschutz gewinnen, Gespräche auf Türkisch",
     "Beratung auf Türkisch, um Moscheevereine beim Klimaschutz einzubinden"),
]


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="embedding model spec (default: e5+use and use)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "eval" / "dev"))
    args = parser.parse_args()
    lines = (Path(args.data) / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    queries = [json.loads(line) for line in lines]
    texts = [q["text"] for q in queries if q.get("text")]
    for spec in args.model or ["e5+use", "use"]:
        emb = CachedEmbedder(make_embedder(spec), SQLiteVectorCache(ROOT / "var" / "test-vectors.sqlite"))
        v = unit(emb.encode(texts, "query"))
        cos = (v @ v.T)[np.triu_indices(len(texts), 1)]
        pairs = [float(np.prod(unit(emb.encode([a, b], "query")), axis=0).sum()) for a, b in REPHRASED]
        print(f"{spec:8s} different needs ({len(texts)}): p95 {np.quantile(cos, 0.95):.3f}  "
              f"p99 {np.quantile(cos, 0.99):.3f}  max {cos.max():.3f} | rephrased: "
              + " ".join(f"{p:.3f}" for p in pairs)
              + f" | threshold {similar_need_threshold(emb.model_id):.2f}")


if __name__ == "__main__":
    main()
