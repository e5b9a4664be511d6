"""Pre-computed catalog vectors as a file: exported once, verified and imported on a new machine.

Encoding the demo catalog with the default model takes ~90 s on two cores; a
first ``make run`` instead imports ``models/fixture-vectors.npz``. The file is
keyed like the store's vector cache (model id, hash of role and text), so
importing it is the same as having encoded those texts here. Because the
4-bit engine and BLAS round differently on other CPUs, the vectors are not
expected to match a local encoding to the last digit: on import a sample of
texts is encoded again and each must agree with the shipped vector to a
cosine of at least :data:`MIN_COSINE` (between CPUs the difference is ~1e-6; a
different model version or engine build falls far below). Otherwise nothing is
imported and the server encodes the catalog itself.

Rebuild the file after changing the fixture catalog, the text building or the default model::

    matcher vectors export --catalog fixtures/catalog.jsonl models/fixture-vectors.npz
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from matcher.engine.embedding import CachedEmbedder, Embedder
from matcher.errors import ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Matcher
    from matcher.store import Store

__all__ = ["MIN_COSINE", "SAMPLE_SIZE", "ExportReport", "ImportReport", "export_vectors", "import_vectors",
           "read_artifact"]

MIN_COSINE = 0.999
SAMPLE_SIZE = 8
_FORMAT = 1


@dataclass(frozen=True)
class ExportReport:
    model_id: str
    exported: int


@dataclass(frozen=True)
class ImportReport:
    model_id: str
    imported: int
    present: int
    checked: int
    min_cosine: float


@dataclass(frozen=True)
class Artifact:
    """The contents of a vector file: keys and vectors, and the sample texts that verify them."""

    model_id: str
    keys: list[str]
    vectors: np.ndarray
    sample_texts: list[str]
    sample_roles: list[str]
    sample_rows: np.ndarray


def export_vectors(matcher: Matcher, path: str | Path) -> ExportReport:
    """Write every vector a fit of ``matcher``'s catalog encodes (profiles, passages, the domain text).

    The sample that verifies the file on import is spread evenly over the
    texts in key order, so it does not change when unrelated texts are added.
    """
    texts: dict[str, tuple[str, str, np.ndarray]] = {}
    for text, vec in zip(matcher.index_.profile_texts, matcher.index_.profile_vecs):
        texts[CachedEmbedder.key(text, "passage")] = (text, "passage", vec)
    for text, vec in zip(matcher.index_.passage_unique_texts, matcher.index_.passage_unique_vecs):
        texts[CachedEmbedder.key(text, "passage")] = (text, "passage", vec)
    domain = matcher.domain_text
    texts[CachedEmbedder.key(domain, "query")] = (domain, "query", matcher.embedder.encode([domain], "query")[0])
    keys = sorted(texts)
    vectors = np.vstack([texts[k][2] for k in keys]).astype("<f4")
    step = max(1, len(keys) // SAMPLE_SIZE)
    rows = np.arange(0, len(keys), step)[:SAMPLE_SIZE]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:  # a file object: np.savez would append .npz to another suffix
        np.savez_compressed(fh, format=np.array(_FORMAT), model_id=np.array(matcher.model_id),
                            keys=np.array(keys), vectors=vectors, sample_rows=rows,
                            sample_texts=np.array([texts[keys[r]][0] for r in rows]),
                            sample_roles=np.array([texts[keys[r]][1] for r in rows]))
    return ExportReport(matcher.model_id, len(keys))


def read_artifact(path: str | Path) -> Artifact:
    """Read a vector file written by :func:`export_vectors`.

    Raises:
        ValidationError: the file is not such a file.
    """
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            if int(data["format"]) != _FORMAT:
                raise ValidationError(f"„{path}“ hat das Format {int(data['format'])}, erwartet {_FORMAT}")
            return Artifact(str(data["model_id"]), [str(k) for k in data["keys"]], np.asarray(data["vectors"]),
                            [str(t) for t in data["sample_texts"]], [str(r) for r in data["sample_roles"]],
                            np.asarray(data["sample_rows"]))
    except (OSError, KeyError, ValueError) as exc:
        raise ValidationError(f"„{path}“ ist keine Vektordatei von `matcher vectors export`: {exc}",
                              [{"file": str(path)}]) from None


def import_vectors(path: str | Path, store: Store, embedder: Embedder) -> ImportReport:
    """Verify a vector file against ``embedder`` and add its vectors to ``store``'s cache.

    Raises:
        ValidationError: the file belongs to another model, or a sample text
            encoded here differs from its shipped vector (cosine below
            :data:`MIN_COSINE`); nothing was imported.
    """
    art = read_artifact(path)
    if art.model_id != embedder.model_id:
        raise ValidationError(f"Die Vektoren in „{path}“ gehören zum Modell „{art.model_id}“, eingestellt ist "
                              f"„{embedder.model_id}“; nichts übernommen",
                              [{"file": str(path), "model": art.model_id, "expected": embedder.model_id}])
    if art.vectors.shape != (len(art.keys), embedder.dim):
        raise ValidationError(f"„{path}“: {art.vectors.shape[1]} Dimensionen, das Modell hat {embedder.dim}; "
                              "nichts übernommen", [{"file": str(path)}])
    present = set(store.vectors.get_many(art.model_id, art.keys))
    if len(present) == len(art.keys):  # imported before (or encoded here): nothing to add, nothing to check
        return ImportReport(art.model_id, 0, len(present), 0, 1.0)
    fresh = np.vstack([embedder.encode([t], r) for t, r in zip(art.sample_texts, art.sample_roles)])
    shipped = art.vectors[art.sample_rows]
    cosines = np.sum(fresh * shipped, axis=1) / (np.linalg.norm(fresh, axis=1) * np.linalg.norm(shipped, axis=1))
    worst = float(cosines.min())
    if worst < MIN_COSINE:
        raise ValidationError(f"Die Vektoren in „{path}“ passen nicht zu diesem Modell (Kosinus {worst:.4f} < "
                              f"{MIN_COSINE}); nichts übernommen. Neu erzeugen: matcher vectors export --catalog "
                              "fixtures/catalog.jsonl models/fixture-vectors.npz",
                              [{"file": str(path), "min_cosine": worst}])
    new = {k: v for k, v in zip(art.keys, art.vectors) if k not in present}
    store.vectors.put_many(art.model_id, new)
    return ImportReport(art.model_id, len(new), len(present), len(art.sample_texts), worst)
