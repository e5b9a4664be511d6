"""Fields of action (Handlungsfelder) and which actors work in them.

An actor (organisation or municipality) is assigned to a field on one of three
kinds of evidence, each shown to the user with the sentence that supports it:

``sentence``  zero-shot: one of its sentences (description sentence or evidence
              text) is close to the field's description in the embedding space.
              The similarity is centred by the field's mean over all sentences
              of the catalog, so that a field whose description happens to sit
              close to everything ("Partnerschaft") does not win by default;
              the threshold is calibrated on judged examples
              (``tests/data/fields_judged.csv``, :func:`matcher.landscape.calibration.calibrate`).
``topic``     explicit: one of its own topics starts with a word the field
              lists (``topics`` in the fields file: "Weltladen", "Klimaschutz").
``actor``     explicit: the field lists the actor's type (``actor_types``) and
              the profile names a partner country — a migrant organisation
              with projects in Togo works in "Migration und Entwicklung".

The fields live in the package's ``data/fields_of_action.json`` (``MATCHER_FIELDS_FILE``
points to an edited copy; see :func:`load_fields`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from matcher.domain.formatting import capitalised
from matcher.domain.labels import ORG_TYPE_LABELS_DE
from matcher.domain.loading import read_text
from matcher.domain.messages import json_error_reason, quoted
from matcher.domain.schema import pydantic_details
from matcher.engine.index import actor_type
from matcher.errors import CatalogError, NotFittedError, ValidationError
from matcher.settings import fields_file, package_data
from matcher.text.countries import country_name_de

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Matcher

__all__ = [
    "DEFAULT_FIELDS_FILE",
    "FieldOfAction",
    "FieldsOfAction",
    "Actor",
    "FieldAssignment",
    "FieldClassifier",
    "Thresholds",
    "actor_type",
    "load_fields",
    "save_thresholds",
]

DEFAULT_FIELDS_FILE = package_data("fields_of_action.json")
Source = Literal["topic", "actor", "sentence"]
_SHORT = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class _FieldRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    label: _SHORT
    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=20, max_length=2000)]
    topics: Annotated[list[_SHORT], Field(max_length=200)] = []
    actor_types: list[Literal["migrant_organisation", "civil_society", "municipal_office", "institution"]] = []


class _ThresholdRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    with_topics: float
    without_topics: float


class _FieldsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    about: str = ""
    fields: Annotated[list[_FieldRecord], Field(min_length=1, max_length=100)]
    thresholds: dict[str, _ThresholdRecord] = {}


@dataclass(frozen=True)
class Thresholds:
    """Centred similarity from which one sentence alone assigns a field.

    ``with_topics`` applies to actors that declare topics (sentences only add
    to explicit evidence, so the bar is high); ``without_topics`` to actors
    without any (sentences are all there is).
    """

    with_topics: float
    without_topics: float

    def for_entity(self, entity: Any) -> float:
        return self.with_topics if entity.topics else self.without_topics


@dataclass(frozen=True)
class FieldOfAction:
    """One field of action: stable id, German label, the description the model compares sentences with."""

    id: str
    label: str
    description: str
    topics: tuple[str, ...] = ()
    actor_types: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """What is embedded for the field: label and description."""
        return f"{self.label}: {self.description}"


@dataclass(frozen=True)
class FieldsOfAction:
    """The contents of a fields file: the fields and the calibrated threshold per embedding model."""

    fields: tuple[FieldOfAction, ...]
    thresholds: Mapping[str, Thresholds] = field(default_factory=dict)
    source: str = ""

    @property
    def ids(self) -> list[str]:
        return [f.id for f in self.fields]

    def thresholds_for(self, model_id: str) -> Thresholds:
        """The calibrated thresholds for an embedding model.

        Raises:
            ValidationError: no threshold was calibrated for this model (the
                similarity scale differs between models, so none is guessed).
        """
        if model_id not in self.thresholds:
            raise ValidationError(
                f"Für das Modell {quoted(model_id)} ist in {self.source or 'der Handlungsfelder-Datei'} kein "
                "Schwellenwert kalibriert. Bitte `matcher landscape-calibrate --write` ausführen oder dem "
                "FieldClassifier Schwellenwerte übergeben.",
                [{"field": "thresholds", "value": model_id, "known": sorted(self.thresholds)}],
            )
        return self.thresholds[model_id]


def load_fields(path: str | Path | None = None) -> FieldsOfAction:
    """Load fields of action from a JSON file (default: ``MATCHER_FIELDS_FILE`` or the package's own).

    Raises:
        CatalogError: the file cannot be read, is not valid JSON, or breaks the
            schema (unknown keys, missing label, duplicate id ...); every problem is listed.
    """
    path = Path(path) if path else fields_file()
    text = read_text(path)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path}: kein gültiges JSON", [{"file": str(path), "line": exc.lineno, "column": exc.colno,
                                                             "message": json_error_reason(exc)}]) from None
    try:
        data = _FieldsFile.model_validate(raw)
    except PydanticValidationError as exc:
        raise CatalogError(f"{path}: fehlerhafte Handlungsfelder; nichts wurde geladen",
                           pydantic_details(exc, file=str(path))) from None
    ids = [f.id for f in data.fields]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CatalogError(f"{path}: doppelte id(s) {', '.join(duplicates)}", [{"file": str(path), "field": "id"}])
    fields = tuple(FieldOfAction(f.id, f.label, f.description, tuple(t.casefold() for t in f.topics),
                                 tuple(f.actor_types))
                   for f in data.fields)
    thresholds = {k: Thresholds(v.with_topics, v.without_topics) for k, v in data.thresholds.items()}
    return FieldsOfAction(fields, thresholds, str(path))


def save_thresholds(path: str | Path, model_id: str, thresholds: Thresholds) -> None:
    """Store calibrated thresholds for ``model_id`` in the fields file (other content unchanged)."""
    path = Path(path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw.setdefault("thresholds", {})[model_id] = {k: round(float(v), 4) for k, v in asdict(thresholds).items()}
    path.write_text(json.dumps(raw, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class FieldAssignment:
    """Why one actor counts for one field: the kind of evidence and the sentence behind it."""

    field_id: str
    label: str
    source: Source
    score: float            # centred similarity of the best sentence (also for explicit evidence)
    sentence: str           # the actor's sentence closest to the field
    topic: str | None = None      # the own topic that names the field (source "topic")
    countries: tuple[str, ...] = ()  # partner countries (source "actor")
    actor_type: str | None = None

    @property
    def reason(self) -> str:
        """One German sentence for the report."""
        quote = f"„{_shorten(self.sentence)}“"
        if self.source == "topic":
            return f"Eigenes Thema „{self.topic}“; {quote}"
        if self.source == "actor":
            names = ", ".join(country_name_de(c) for c in self.countries[:3])
            kind = capitalised(ORG_TYPE_LABELS_DE.get(self.actor_type or "", "Akteur"))
            return f"{kind} mit Bezug zu {names}; {quote}"
        return quote

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "countries": list(self.countries), "score": round(self.score, 4), "reason": self.reason}


@dataclass
class Actor:
    """An organisation or municipality with the fields of action it works in."""

    id: str
    name: str
    kind: str
    actor_type: str
    city: str | None
    fields: list[FieldAssignment]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "actor_type": self.actor_type,
                "actor_type_label": capitalised(ORG_TYPE_LABELS_DE[self.actor_type]), "city": self.city,
                "fields": [a.as_dict() for a in self.fields]}


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0].rstrip(",;:–-") + " …"


class FieldClassifier:
    """Assigns the actors of a fitted :class:`~matcher.engine.matcher.Matcher` to fields of action.

    Follows scikit-learn's contract: ``__init__`` stores the options, ``fit``
    does the work (one batch of field vectors, then matrix products over the
    matcher's cached passage vectors), learned state ends in ``_``.

    Args:
        fields: the fields of action (default: :func:`load_fields`).
        thresholds: from which centred similarity a sentence alone assigns a
            field (default: the values calibrated for the matcher's model).

    Example:
        >>> fc = FieldClassifier().fit(matcher)
        >>> [(a.label, a.source) for a in fc.assignments("org-163")]
        [('Klimaschutz und Klimagerechtigkeit', 'topic'), ('Kommunale Partnerschaften', 'topic')]
        >>> fc.assignments("org-163")[1].reason
        'Eigenes Thema „Klimapartnerschaft“; „Gemeinsam mit der Mali-Solidarität prüfen wir den Aufbau …“'
    """

    def __init__(self, fields: FieldsOfAction | None = None, thresholds: Thresholds | None = None):
        self.fields = fields
        self.thresholds = thresholds

    def fit(self, matcher: Matcher) -> FieldClassifier:
        """Score every actor of ``matcher`` against every field.

        Raises:
            NotFittedError: the matcher is not fitted.
            ValidationError: no threshold given and none calibrated for the matcher's model.
        """
        if not hasattr(matcher, "entities_"):
            raise NotFittedError("Matcher is not fitted: call fit(entities) first")
        self.fields_ = self.fields or load_fields()
        self.thresholds_ = self.thresholds or self.fields_.thresholds_for(matcher.model_id)
        self.matcher_ = matcher
        self.model_id_ = matcher.model_id
        self.actors_ = [i for i, e in enumerate(matcher.entities_) if actor_type(e) is not None]
        self.scores_, self.best_sentence_ = self._sentence_scores(matcher)
        self.topic_hits_ = self._topic_hits(matcher)
        self.actor_hits_ = self._actor_hits(matcher)
        self.assignments_ = {matcher.entities_[i].id: self._assign(i) for i in self.actors_}
        return self

    def _sentence_scores(self, matcher: Matcher) -> tuple[np.ndarray, np.ndarray]:
        """Centred similarity of each entity's best sentence to each field, and that sentence's index."""
        field_vecs = matcher.embedder.encode([f.text for f in self.fields_.fields], "query")
        sims = (matcher.index_.passage_unique_vecs @ field_vecs.T)[matcher.index_.passage_map]  # (passages, fields)
        sentence = self._sentence_mask(matcher)
        centre = sims[sentence].mean(axis=0) if sentence.any() else np.zeros(sims.shape[1])
        sims = np.where(sentence[:, None], sims - centre, -np.inf)
        n, k = len(matcher.entities_), sims.shape[1]
        scores = np.full((n, k), -np.inf)
        best = np.zeros((n, k), dtype=np.int64)
        ends = np.append(matcher.index_.passage_starts[1:], sims.shape[0])
        for i, (start, end) in enumerate(zip(matcher.index_.passage_starts, ends)):
            block = sims[start:end]
            arg = block.argmax(axis=0)
            scores[i] = block[arg, np.arange(k)]
            best[i] = start + arg
        return scores, best

    @staticmethod
    def _sentence_mask(matcher: Matcher) -> np.ndarray:
        """Passages that are sentences: every passage except the topic list (topics are matched explicitly).
        An entity with nothing but topics keeps its topic list so that it has a sentence to show."""
        mask = np.ones(len(matcher.index_.passage_texts), dtype=bool)
        ends = np.append(matcher.index_.passage_starts[1:], len(mask))
        for e, start, end in zip(matcher.entities_, matcher.index_.passage_starts, ends):
            if e.topics and end - start > 1:
                mask[end - 1] = False
        return mask

    def _topic_hits(self, matcher: Matcher) -> list[dict[str, str]]:
        patterns = {f.id: re.compile("|".join(rf"(?<!\w){re.escape(t)}" for t in f.topics))
                    for f in self.fields_.fields if f.topics}
        hits: list[dict[str, str]] = []
        for e in matcher.entities_:
            found: dict[str, str] = {}
            for topic in e.topics:
                for fid, rx in patterns.items():
                    if fid not in found and rx.search(topic.casefold()):
                        found[fid] = topic
            hits.append(found)
        return hits

    def _actor_hits(self, matcher: Matcher) -> list[dict[str, tuple[str, ...]]]:
        hits: list[dict[str, tuple[str, ...]]] = []
        for i, e in enumerate(matcher.entities_):
            countries = tuple(sorted(matcher.index_.countries[i][0]))
            kind = actor_type(e)
            hits.append({f.id: countries for f in self.fields_.fields if countries and kind in f.actor_types})
        return hits

    def _assign(self, i: int) -> list[FieldAssignment]:
        out = []
        texts = self.matcher_.index_.passage_texts
        threshold = self.thresholds_.for_entity(self.matcher_.entities_[i])
        for j, f in enumerate(self.fields_.fields):
            score = float(self.scores_[i, j])
            sentence = texts[int(self.best_sentence_[i, j])]
            if f.id in self.topic_hits_[i]:
                out.append(FieldAssignment(f.id, f.label, "topic", score, sentence, topic=self.topic_hits_[i][f.id]))
            elif f.id in self.actor_hits_[i]:
                out.append(FieldAssignment(f.id, f.label, "actor", score, sentence, countries=self.actor_hits_[i][f.id],
                                           actor_type=actor_type(self.matcher_.entities_[i])))
            elif score >= threshold:
                out.append(FieldAssignment(f.id, f.label, "sentence", score, sentence))
        return out

    def _check(self) -> None:
        if not hasattr(self, "assignments_"):
            raise NotFittedError("FieldClassifier is not fitted: call fit(matcher) first")

    def assignments(self, entity_id: str) -> list[FieldAssignment]:
        """The fields an actor works in, in the order of the fields file.

        Raises:
            UnknownEntityError: the id is not in the catalog.
            ValidationError: the entity is neither an organisation with a type nor a municipality.
        """
        self._check()
        if entity_id not in self.assignments_:
            self.matcher_.entity(entity_id)  # raises UnknownEntityError for an unknown id
            raise ValidationError(f"{quoted(entity_id)} ist weder Organisation noch Kommune",
                                  [{"field": "id", "value": entity_id}])
        return self.assignments_[entity_id]

    def actor(self, entity_id: str) -> Actor:
        """An actor of the catalog with its fields of action."""
        e = self.matcher_.entity(entity_id)
        return Actor(e.id, e.name, e.kind, actor_type(e), e.city, self.assignments(entity_id))

    def explicit_matrix(self, entity_ids: Sequence[str], topics: bool = True) -> np.ndarray:
        """Boolean (entities × fields): assigned by topic (unless ``topics=False``) or actor type,
        whatever the threshold."""
        self._check()
        rows = [self.matcher_.index_.row[i] for i in entity_ids]
        return np.array([[(topics and f.id in self.topic_hits_[r]) or f.id in self.actor_hits_[r]
                          for f in self.fields_.fields]
                         for r in rows], dtype=bool).reshape(len(rows), len(self.fields_.fields))

    def score_matrix(self, entity_ids: Sequence[str]) -> np.ndarray:
        """Centred sentence similarities (entities × fields)."""
        self._check()
        return self.scores_[[self.matcher_.index_.row[i] for i in entity_ids]]
