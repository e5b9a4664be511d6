"""What a query means, read once: :class:`QueryContext`, frozen.

:func:`prepare_queries` reads a list of queries against a fitted
:class:`~matcher.engine.index.CatalogIndex`: the asker, the cues in the need
(languages, actor types, period, nearness), the places and countries it names,
its embedding and its TF-IDF vectors. The signals (:mod:`matcher.engine.signals`)
and the explanations (:mod:`matcher.engine.explain`) only read a context; one
request online and thousands in a batch go through the same function.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse

from matcher.domain.labels import KIND_LABELS
from matcher.domain.messages import quoted
from matcher.domain.schema import Event, Query
from matcher.engine.embedding import Embedder
from matcher.engine.index import CatalogIndex, Entity
from matcher.engine.weights import Weights
from matcher.errors import ValidationError
from matcher.text.countries import country_mentions
from matcher.text.gazetteer import Place
from matcher.text.intent import Intent, asked_types, parse_intent

__all__ = ["ASKER_KINDS", "NeedVectors", "QueryContext", "check_asker", "prepare_queries"]

# the kinds of entity that may ask (``from``) for each task
ASKER_KINDS = {"advisors": ("municipality", "organisation"), "partners": ("organisation", "municipality"),
               "events": ("organisation", "municipality", "advisor"), "invitations": ("event",),
               "programmes": ("organisation", "municipality")}
_EMPTY: frozenset[str] = frozenset()


class NeedVectors:
    """A need's (character, word) TF-IDF rows, kept as one row of the matrices of a whole batch
    (slicing thousands of sparse rows up front would cost more than using them)."""

    __slots__ = ("char", "row", "word")

    def __init__(self, char: sparse.csr_matrix, word: sparse.csr_matrix | None, row: int):
        self.char, self.word, self.row = char, word, row

    def char_row(self) -> sparse.csr_matrix:
        return _row(self.char, self.row)

    def word_row(self) -> sparse.csr_matrix | None:
        return None if self.word is None else _row(self.word, self.row)


def _row(matrix: sparse.csr_matrix, row: int) -> sparse.csr_matrix:
    """Row ``row`` as a one-row matrix (the matrix itself when it is that row: one query online)."""
    return matrix if matrix.shape[0] == 1 else matrix[row]


@dataclass(frozen=True, eq=False)
class QueryContext:
    """One query, read: everything the signals and the explanations need of it."""

    query: Query
    as_of: dt.date
    asker: Entity | None
    asker_row: int | None
    intent: Intent
    languages: tuple[str, ...]             # asked for and named in the need, in order
    origin: Place | None                   # where the asker is (given place, else the asker's own)
    mentioned: tuple[Place, ...]           # places the need (or an asking event's announcement) names
    countries: tuple[frozenset[str], frozenset[str], frozenset[str]]  # named, in regions, in continents
    need: str                              # the need text, or the asker's description without one
    need_vectors: NeedVectors | None       # the need's TF-IDF rows
    text_vector: np.ndarray | None         # the need text's embedding (role ``query``)
    text_share: float                      # dense: weight of the need text …
    asker_share: float                     # … and of the asker's own profile

    @property
    def task(self) -> str:
        return self.query.task

    def main_vector(self, index: CatalogIndex) -> np.ndarray:
        """The vector that weighs most in the dense signal: what an explanation quotes the best passage for."""
        if self.text_vector is not None and (self.asker_row is None or self.text_share >= self.asker_share):
            return self.text_vector
        return index.profile_vecs[self.asker_row]


def check_asker(query: Query, asker: Entity | None) -> None:
    """Raise :class:`ValidationError` when the asker is of a kind that cannot ask for ``query.task``."""
    if asker is None:
        return
    expected = ASKER_KINDS[query.task]
    if asker.kind not in expected:
        raise ValidationError(
            f"Für die Aufgabe {quoted(query.task)} muss „from“ auf einen Eintrag der Art "
            f"{' oder '.join(KIND_LABELS[k] for k in expected)} zeigen, nicht auf {quoted(asker.id)} "
            f"(Art: {KIND_LABELS.get(asker.kind, asker.kind)})",
            [{"field": "from", "value": asker.id}],
        )


def prepare_queries(index: CatalogIndex, queries: Sequence[Query], embedder: Embedder, weights: Weights,
                    as_of: dt.date | None = None, text_vectors: np.ndarray | None = None,
                    readings: dict | None = None) -> list[QueryContext]:
    """Read ``queries`` against ``index``: one :class:`QueryContext` each.

    Args:
        as_of: the reference date (default: each query's own ``as_of``, else today).
        text_vectors: the need texts' embeddings when the caller has encoded them already
            (rows of queries without text are ignored); else they are encoded here, in one call.
        readings: what was read from each distinct text (intent, places, countries), kept by the
            caller across calls (a batch's blocks of requests); a dict, empty at first.

    Raises:
        UnknownEntityError: a ``from`` is not in the catalog.
        ValidationError: an asker of the wrong kind for the task.
    """
    askers = [index.entity(q.from_) if q.from_ else None for q in queries]
    for q, asker in zip(queries, askers):  # fail before any work on a bad asker
        check_asker(q, asker)
    if text_vectors is None:
        with_text = [r for r, q in enumerate(queries) if q.text]
        text_vectors = np.zeros((len(queries), index.profile_vecs.shape[1]), dtype=np.float32)
        if with_text:
            text_vectors[with_text] = embedder.encode([queries[r].text for r in with_text], "query")
    needs = [q.text or (a.description if a is not None else "") for q, a in zip(queries, askers)]
    need_rows = [r for r, need in enumerate(needs) if need]
    lex = index.lexical
    char = word = None
    if need_rows and lex.char_ is not None:
        texts = [needs[r] for r in need_rows]
        char = lex.char_.transform(texts)
        word = lex.word_.transform(texts) if lex.word_ is not None else None
    position = {r: k for k, r in enumerate(need_rows)}
    readings = {} if readings is None else readings
    return [_context(index, q, asker, needs[r], text_vectors[r] if q.text else None,
                     NeedVectors(char, word, position[r]) if char is not None and r in position else None,
                     weights, as_of, readings)
            for r, (q, asker) in enumerate(zip(queries, askers))]


def _context(index: CatalogIndex, query: Query, asker: Entity | None, need: str, text_vector: np.ndarray | None,
             need_vectors: NeedVectors | None, w: Weights, as_of: dt.date | None, readings: dict) -> QueryContext:
    as_of = as_of or query.as_of or dt.date.today()
    read = readings.get((query.text, as_of, query.task))
    if read is None:   # requests of a batch repeat texts: each distinct one is read once
        read = readings[(query.text, as_of, query.task)] = (parse_intent(query.text, as_of, query.task),
                                                            index.gazetteer.mentions(query.text),
                                                            country_mentions(query.text) if query.text else None)
    intent = read[0]
    if query.task == "partners" and not query.text and asker is not None:
        # the asker's profile is the need: whom it says it wants to work with is asked for
        asked = asked_types(asker.description)
        intent = replace(intent, org_types=tuple(asked), org_type_strength=(1.0,) * len(asked),
                         cues=tuple(asked.values()))
    asker_row = index.row[asker.id] if asker is not None else None
    gazetteer = index.gazetteer
    origin = gazetteer.locate(query.city, query.lat, query.lon)
    if origin is None and asker_row is not None:
        origin = index.places[asker_row]
    mentioned = list(read[1])
    if isinstance(asker, Event):
        # an event's announcement names its catchment area ("vom Niederrhein und aus dem Ruhrgebiet")
        mentioned += [p for p in gazetteer.mentions(asker.description) if p not in mentioned]
    if query.text:
        countries = read[2]
    elif asker_row is not None:
        countries = index.countries[asker_row]
    else:
        countries = (_EMPTY, _EMPTY, _EMPTY)
    from_share = w.event_from_share if query.task == "invitations" else w.from_share
    text_share = (1.0 - (from_share if asker is not None else 0.0)) if query.text else 0.0
    asker_share = (from_share if query.text else 1.0) if asker is not None else 0.0
    return QueryContext(
        query=query, as_of=as_of, asker=asker, asker_row=asker_row, intent=intent,
        languages=tuple(dict.fromkeys([*query.languages, *intent.languages])), origin=origin,
        mentioned=tuple(mentioned), countries=tuple(countries), need=need, need_vectors=need_vectors,
        text_vector=text_vector, text_share=text_share, asker_share=asker_share)
