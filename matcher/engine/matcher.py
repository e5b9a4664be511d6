"""The matching engine: hybrid ranking of catalog entities for a query.

Signals (each documented in ``models/MODEL_CARD.md``):

``dense``      embedding similarity of the need (and the asker's own profile)
               to the whole profile and to its best passage
``lexical``    TF-IDF similarity (character n-grams + stemmed words)
``domain``     how much a profile belongs to the field at all (development
               policy, migration, Eine Welt) — keeps look-alikes such as an IT
               firm's "Datenmigration" down
``proximity``  great-circle distance to the asker or to the places the need
               names, with an exponential decay
``region``     an advisor serves the asker's place (city, district, region, NRW)
``language``   share of the requested languages the candidate speaks
``country``    the countries or world regions the need names ("Menschen aus
               Ostafrika") are among the candidate's partner countries or named in its profile
``type_fit``   actor type fits: the event's target groups, the types a need asks for (for a
               partner search without text: the types the asker's profile says it seeks)
``time_fit``   an event falls in the period the need names
``capacity``   an advisor has capacity left

Text signals are standardised per query over the candidates (z-scores), the
structured ones are in [0, 1]; the fused score is their weighted sum.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from matcher.engine.embedding import Embedder
from matcher.errors import NotFittedError, UnknownEntityError, ValidationError
from matcher.engine.explain import Explanation, explain
from matcher.text.gazetteer import Gazetteer, Place, area_keys, default_gazetteer, haversine_km
from matcher.text.countries import country_mentions
from matcher.text.intent import Intent, asked_types, parse_intent
from matcher.text.lexical import LexicalIndex
from matcher.domain.messages import KIND_LABELS, alternatives, quoted
from matcher.domain.schema import KINDS, Advisor, Event, Municipality, Organisation, Query
from matcher.engine.similarity import segment_max, top_k, zscore
from matcher.text.profile import passages, profile_text

__all__ = ["Weights", "Matcher", "Result", "Ranking", "TASK_KIND", "DOMAIN_TEXT", "SIGNALS"]

TASK_KIND = {"advisors": "advisor", "partners": "organisation", "events": "event", "invitations": "organisation"}
TOWN_RADIUS_KM = 15.0  # an advisor who serves a town also serves places this close to it
SIGNALS = ("dense", "lexical", "domain", "proximity", "region", "language", "country", "type_fit", "time_fit", "capacity")

DOMAIN_TEXT = (
    "Kommunale Entwicklungspolitik und Eine-Welt-Arbeit: Migration und Entwicklung, Diaspora-Engagement, "
    "Migrantenorganisationen, Fairer Handel, faire Beschaffung, Klimagerechtigkeit, kommunale Partnerschaften "
    "mit dem Globalen Süden, Globales Lernen, Bildung für nachhaltige Entwicklung, Menschenrechte, Agenda 2030."
)

Entity = Advisor | Organisation | Event | Municipality


@dataclass(frozen=True)
class Weights:
    """Fusion weights and shape parameters. Defaults chosen on the dev set (see the model card)."""

    dense: float = 1.0
    lexical: float = 0.1
    domain: float = 0.1
    proximity: float = 3.0
    region: float = 0.5
    language: float = 3.0
    country: float = 4.0
    type_fit: float = 3.0
    time_fit: float = 1.5
    capacity: float = 0.2
    # how the dense signal is built
    passage_share: float = 0.4    # best passage vs whole profile
    from_share: float = 0.35      # asker's own profile vs the need text, when both are given
    # how proximity is built
    distance_scale_km: float = 40.0
    named_share: float = 0.6      # places the need names vs the asker's own location
    implicit_proximity: float = 0.3  # weight of nearness when the need does not mention place

    def without(self, signal: str) -> "Weights":
        """A copy with one signal switched off (for ablations)."""
        if signal not in SIGNALS:
            raise ValidationError(f"Unbekanntes Signal {quoted(signal)}; erlaubt: {alternatives(SIGNALS)}",
                                  [{"field": "signal", "value": signal}])
        return replace(self, **{signal: 0.0})

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, values: dict[str, float]) -> "Weights":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValidationError(f"Unbekannte Gewichte {alternatives(unknown, 'und')}; erlaubt: "
                                  f"{alternatives(sorted(names))}", [{"field": "weights", "value": u} for u in unknown])
        return cls(**{k: float(v) for k, v in values.items()})


@dataclass
class Result:
    """One ranked entity with its fused score and explanation."""

    entity: Entity
    score: float
    rank: int
    explanation: Explanation

    @property
    def entity_id(self) -> str:
        return self.entity.id


@dataclass
class Ranking:
    """The answer to one query."""

    query: Query
    results: list[Result]
    candidates: int
    model_id: str
    intent: Intent = field(default_factory=Intent)


@dataclass(frozen=True)
class KindBlock:
    """Where one kind's entities sit in a fitted matcher's arrays: ``rows`` of the entity arrays,
    ``unique`` of ``passage_unique_vecs_``; ``passage_map`` and ``passage_starts`` are that kind's
    parts of ``passage_map_`` and ``passage_starts_``, relative to those slices."""

    rows: slice
    unique: slice
    passage_map: np.ndarray
    passage_starts: np.ndarray


class Matcher:
    """Hybrid matcher over a catalog.

    Follows scikit-learn's contract: ``__init__`` stores collaborators and
    options, ``fit(entities)`` encodes and indexes the catalog, learned state
    ends in ``_``. ``entities_`` holds the catalog grouped by kind (advisors,
    organisations, events, municipalities; the given order within a kind), and a
    query's dense and lexical products read only its kind's rows (``blocks_``).

    Example:
        >>> m = Matcher(embedder).fit(entities)
        >>> ranking = m.rank(Query(task="advisors", text="Faire Beschaffung von Dienstkleidung", city="Essen"))
        >>> ranking.results[0].explanation.reasons
        ['Erfahrung mit fairer Beschaffung', '3 km entfernt']
    """

    def __init__(self, embedder: Embedder, gazetteer: Gazetteer | None = None, weights: Weights | None = None,
                 domain_text: str = DOMAIN_TEXT, progress: bool = False):
        self.embedder = embedder
        self.gazetteer = gazetteer
        self.weights = weights
        self.domain_text = domain_text
        self.progress = progress

    # ------------------------------------------------------------------ fit
    def fit(self, entities: Sequence[Entity], reuse: "Matcher | None" = None,
            on_progress: Callable[[int, int], None] | None = None) -> "Matcher":
        """Encode and index ``entities`` (only texts not in the embedder's cache are encoded).

        ``reuse``: a matcher fitted before on a similar catalog (the same embedder and
        gazetteer), e.g. the one serving until a few entities changed. Its vectors, n-gram
        counts and country mentions of unchanged texts are taken over instead of being read
        or computed again; the result is the same as a fit from scratch.

        ``on_progress(done, total)``: called once before encoding and after each batch of
        catalog texts sent to the model; ``total`` counts only the texts that need the model
        (not in ``reuse`` nor, if the embedder offers ``cached(texts, role)`` as
        :class:`~matcher.live.StoreBackedEmbedder` does, in its cache): 0 on a warm cache.
        Indexing follows the last call.
        """
        # grouped by kind (stable): a query scores one kind, and its rows are then one contiguous
        # block of every matrix, which the dense and lexical products read without copying
        order = {kind: i for i, kind in enumerate(KINDS)}
        ents = sorted(entities, key=lambda e: order.get(e.kind, len(order)))
        if reuse is not None and (not hasattr(reuse, "entities_") or reuse.model_id != self.embedder.model_id):
            reuse = None
        ids = [e.id for e in ents]
        if len(set(ids)) != len(ids):
            dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
            raise ValidationError(f"Doppelte ids im Katalog: {alternatives(dupes[:20], 'und')}"
                                  + (f" und {len(dupes) - 20} weitere" if len(dupes) > 20 else ""),
                                  [{"field": "id", "value": d} for d in dupes[:20]])
        self.gazetteer_ = self.gazetteer or default_gazetteer()
        self.weights_ = self.weights or Weights()
        self.entities_ = ents
        self.index_ = {e.id: i for i, e in enumerate(ents)}
        n = len(ents)
        self.kind_ = np.array([e.kind for e in ents], dtype=object)
        self.org_type_ = np.array([getattr(e, "org_type", None) for e in ents], dtype=object)
        self.places_: list[Place | None] = [self.gazetteer_.locate(e.city, e.lat, e.lon) for e in ents]
        self.lat_ = np.array([p.lat if p and p.lat is not None else np.nan for p in self.places_], dtype=np.float64)
        self.lon_ = np.array([p.lon if p and p.lon is not None else np.nan for p in self.places_], dtype=np.float64)
        self.languages_ = [frozenset(e.languages) for e in ents]
        self.language_index_: dict[str, list[int]] = {}
        for i, langs in enumerate(self.languages_):
            for code in langs:
                self.language_index_.setdefault(code, []).append(i)
        self.date_ = np.array(
            [np.datetime64(e.date) if isinstance(e, Event) and e.date else np.datetime64("NaT") for e in ents],
            dtype="datetime64[D]",
        )
        # 0 for an advisor with no capacity left; everyone else (no limit given, not an advisor) 1
        self.has_capacity_ = np.array([0.0 if isinstance(e, Advisor) and e.capacity == 0 else 1.0 for e in ents],
                                      dtype=np.float32)

        self.profile_texts_ = [profile_text(e) for e in ents]
        passage_lists = [passages(e) for e in ents]
        self.passage_texts_ = [p for ps in passage_lists for p in ps]
        lengths = np.array([len(ps) for ps in passage_lists], dtype=np.int64)
        self.passage_starts_ = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if n else np.zeros(0, np.int64)
        self.passage_owner_ = np.repeat(np.arange(n), lengths)

        inner = getattr(self.embedder, "embedder", self.embedder)  # a CachedEmbedder wraps the model
        self.part_slices_ = getattr(inner, "part_slices", None) or [(slice(0, self.embedder.dim), 1.0)]
        known = reuse._vectors_by_text() if reuse is not None else {}
        # identical passages (common in generated or templated catalogs) are stored once per kind,
        # so that each kind's unique passages are one block too
        uniq = list(dict.fromkeys(self.passage_texts_))
        advance = self._progress_counter([*self.profile_texts_, *uniq], known, on_progress) if on_progress else None
        self.profile_vecs_ = self._encode(self.profile_texts_, known, advance)
        vecs = self._encode(uniq, known, advance)
        del known
        passage_kinds = self.kind_[self.passage_owner_]
        keyed = list(dict.fromkeys(zip(passage_kinds, self.passage_texts_)))
        if len(keyed) != len(uniq):  # a text shared by two kinds: one row in each kind's block
            row = {t: i for i, t in enumerate(uniq)}
            uniq = [t for _, t in keyed]
            vecs = vecs[[row[t] for t in uniq]]
        pos = {key: i for i, key in enumerate(keyed)}
        self.passage_unique_texts_ = uniq
        self.passage_unique_vecs_ = vecs
        self.passage_map_ = np.array([pos[key] for key in zip(passage_kinds, self.passage_texts_)], dtype=np.int64)
        self.blocks_ = self._kind_blocks()

        self.countries_ = []  # (countries named or partnered, in sub-regions named, in continents named)
        lists: tuple[dict[str, list[int]], ...] = ({}, {}, {})
        self.country_texts_ = [" ".join([e.name, e.description, *e.topics, *e.evidence]) for e in ents]
        known_countries = dict(zip(reuse.country_texts_, reuse.countries_named_)) if reuse is not None else {}
        self.countries_named_ = [known_countries.get(t) or country_mentions(t) for t in self.country_texts_]
        del known_countries
        for i, e in enumerate(ents):
            direct, regional, broad = self.countries_named_[i]
            sets = (direct | frozenset(getattr(e, "partner_countries", ()) or ()), regional, broad)
            self.countries_.append(sets)
            for index, codes in zip(lists, sets):
                for c in codes:
                    index.setdefault(c, []).append(i)
        # (named, in sub-regions, in continents): country code -> entity rows
        self.country_index_ = tuple({c: np.array(rows, dtype=np.int64) for c, rows in index.items()} for index in lists)
        self._index_places(ents)
        self.lexical_ = LexicalIndex().fit([" ".join([t, *e.evidence]) for t, e in zip(self.profile_texts_, ents)],
                                           reuse=reuse.lexical_ if reuse is not None else None,
                                           blocks=[b.rows for b in self.blocks_.values()])
        unique_topics = list(dict.fromkeys(t for e in ents for t in e.topics))
        topic_pos = {t: j for j, t in enumerate(unique_topics)}
        self.topic_vecs_ = self.lexical_.char_.transform(unique_topics) \
            if unique_topics and self.lexical_.char_ is not None else None
        self.topic_rows_ = [[topic_pos[t] for t in e.topics] for e in ents]
        domain_vec = self.embedder.encode([self.domain_text], "query")[0]
        self.domain_ = (self.profile_vecs_ @ domain_vec).astype(np.float32) if n else np.zeros(0, np.float32)
        return self

    def _kind_blocks(self) -> dict[str, "KindBlock"]:
        """Each kind's rows, passages and unique passages as slices (``fit`` keeps them contiguous)."""
        blocks = {}
        n_passages = len(self.passage_texts_)
        for kind in dict.fromkeys(self.kind_.tolist()):
            rows = np.flatnonzero(self.kind_ == kind)
            a, b = int(rows[0]), int(rows[-1]) + 1
            pa = int(self.passage_starts_[a])
            pb = int(self.passage_starts_[b]) if b < len(self.passage_starts_) else n_passages
            owned = self.passage_map_[pa:pb]
            ua, ub = (int(owned.min()), int(owned.max()) + 1) if owned.size else (0, 0)
            blocks[kind] = KindBlock(slice(a, b), slice(ua, ub), owned - ua, self.passage_starts_[a:b] - pa)
        return blocks

    def _vectors_by_text(self) -> dict[str, np.ndarray]:
        """Every catalog text this matcher encoded (profiles and passages, role ``passage``) → its vector."""
        self._check()
        out = dict(zip(self.profile_texts_, self.profile_vecs_))
        out.update(zip(self.passage_unique_texts_, self.passage_unique_vecs_))
        return out

    def _progress_counter(self, texts: list[str], known: dict[str, np.ndarray],
                          on_progress: Callable[[int, int], None]) -> Callable[[int], None]:
        """Count the ``texts`` that need the model and report 0 of them; returns the per-batch callback.

        Vectors the embedder already holds join ``known`` (so a restart on a full store counts 0)."""
        cached = getattr(self.embedder, "cached", None)
        if cached is not None:
            known.update(cached([t for t in dict.fromkeys(texts) if t not in known], "passage"))
        total = sum(t not in known for t in texts)
        done = 0

        def advance(encoded: int) -> None:
            nonlocal done
            done += encoded
            on_progress(done, total)

        on_progress(0, total)
        return advance

    def _encode(self, texts: list[str], known: dict[str, np.ndarray] | None = None,
                advance: Callable[[int], None] | None = None) -> np.ndarray:
        """Vectors of catalog texts (role ``passage``); ``known`` ones are taken as they are.
        ``advance(n)`` is told after each batch of ``n`` texts encoded."""
        out = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        todo = [i for i, t in enumerate(texts) if not known or t not in known]
        for i in range(len(texts)) if known else ():
            if texts[i] in known:
                out[i] = known[texts[i]]
        if not todo:
            return out
        chunks = range(0, len(todo), 256)
        if self.progress:
            from tqdm import tqdm

            chunks = tqdm(chunks, desc="Profile kodieren", unit="×256", leave=False)
        for start in chunks:
            rows = todo[start : start + 256]
            out[rows] = self.embedder.encode([texts[i] for i in rows], "passage")
            if advance is not None:
                advance(len(rows))
        return out

    def _index_places(self, ents: list[Entity]) -> None:
        """Inverted indexes so that per-query place signals are array operations, not loops."""
        self.area_members_: dict[tuple[str, str], list[int]] = {}
        for i, pl in enumerate(self.places_):
            if pl is not None:
                for key in area_keys(pl):
                    self.area_members_.setdefault(key, []).append(i)
        # advisors' served areas: key -> advisors, plus served towns for the radius rule
        self.served_by_: dict[tuple[str, str], list[int]] = {}
        towns: list[tuple[int, float, float]] = []
        for i, e in enumerate(ents):
            if not isinstance(e, Advisor):
                continue
            for area in e.regions:
                a = self.gazetteer_.resolve(area)
                if a is None:
                    key = ("name", area.strip().casefold())
                elif a.kind == "state":
                    key = ("state", "")
                elif a.kind == "region":
                    key = ("region", a.name)
                elif a.kind == "district":
                    key = ("district", a.name)
                else:
                    key = ("name", a.name.casefold())
                    if a.lat is not None:
                        towns.append((i, a.lat, a.lon))
                self.served_by_.setdefault(key, []).append(i)
        self.served_towns_ = np.array(towns, dtype=np.float64).reshape(-1, 3)

    def _area_mask(self, place: Place) -> np.ndarray:
        """Entities inside a named area (region or district), or inside its named part."""
        n = len(self.entities_)
        key = ("region", place.name) if place.kind in ("region", "state") else ("district", place.name)
        mask = np.zeros(n, dtype=bool)
        mask[self.area_members_.get(key, [])] = True
        if place.side is not None:
            mask &= np.array([place.on_side(a, b) for a, b in zip(self.lat_, self.lon_)]) if mask.any() else mask
        return mask

    def _check(self) -> None:
        if not hasattr(self, "entities_"):
            raise NotFittedError("Matcher is not fitted: call fit(entities) first")

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    def entity(self, entity_id: str) -> Entity:
        self._check()
        try:
            return self.entities_[self.index_[entity_id]]
        except KeyError:
            raise UnknownEntityError(f"Unbekannte id {quoted(entity_id)}: kein solcher Eintrag im Katalog",
                                     [{"field": "id", "value": entity_id}]) from None

    # ------------------------------------------------------------------ rank
    def rank(self, query: Query, k: int = 10, as_of: dt.date | None = None, lang: str = "de") -> Ranking:
        """Rank the catalog for ``query``; return the top ``k`` with explanations.

        Raises:
            UnknownEntityError: ``query.from_`` is not in the catalog.
            ValidationError: the asker is of the wrong kind for the task.
        """
        self._check()
        scores, signals, ctx = self.score(query, as_of=as_of)
        best = top_k(scores, k, ctx["mask"])
        results = [
            Result(self.entities_[i], float(scores[i]), r + 1, explain(self, int(i), signals, ctx, lang=lang))
            for r, i in enumerate(best)
        ]
        return Ranking(query, results, int(ctx["mask"].sum()), self.model_id, ctx["intent"])

    def score(self, query: Query, as_of: dt.date | None = None) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
        """Fused scores for every catalog entity (−inf outside the candidate mask),
        each signal's weighted contribution, and the context the explanation needs."""
        self._check()
        w = self.weights_
        n = len(self.entities_)
        as_of = as_of or query.as_of or dt.date.today()
        asker = self.entity(query.from_) if query.from_ else None
        self._check_asker(query, asker)
        intent = parse_intent(query.text, as_of)
        if query.task == "partners" and not query.text and asker is not None:
            # the asker's profile is the need: whom it says it wants to work with is asked for
            asked = asked_types(asker.description)
            intent = replace(intent, org_types=tuple(asked), org_type_strength=(1.0,) * len(asked),
                             cues=tuple(asked.values()))

        mask = np.zeros(n, dtype=bool)
        block = self.blocks_.get(TASK_KIND[query.task])
        if block is not None:
            mask[block.rows] = True
        if asker is not None:
            mask[self.index_[asker.id]] = False
        if query.task == "events":
            mask &= ~(self.date_ < np.datetime64(as_of))  # NaT (no date) stays in
        if query.task in ("partners", "invitations") and query.org_types:
            mask &= np.isin(self.org_type_, list(query.org_types))
        languages = tuple(dict.fromkeys([*query.languages, *intent.languages]))
        if query.require_languages and query.languages:
            for code in set(query.languages):
                speaks = np.zeros(n, dtype=bool)
                speaks[self.language_index_.get(code, [])] = True
                mask &= speaks

        raw: dict[str, np.ndarray] = {}
        raw["dense"], main_vec = self._dense(query, asker, mask, block)
        need = query.text or (asker.description if asker is not None else "")
        need_vectors = self.lexical_.vectors(need) if need else None
        raw["lexical"] = np.zeros(n, np.float32)
        if need and block is not None:
            raw["lexical"][block.rows] = zscore(self.lexical_.similarity(need, need_vectors, rows=block.rows),
                                                mask[block.rows])
        raw["domain"] = zscore(self.domain_, mask)

        origin = self.gazetteer_.locate(query.city, query.lat, query.lon)
        if origin is None and asker is not None:
            origin = self.places_[self.index_[asker.id]]
        mentioned = self.gazetteer_.mentions(query.text)
        if isinstance(asker, Event):
            # an event's announcement names its catchment area ("vom Niederrhein und aus dem Ruhrgebiet")
            mentioned += [p for p in self.gazetteer_.mentions(asker.description) if p not in mentioned]
        raw["proximity"], distance = self._proximity(origin, mentioned, intent)
        raw["region"] = self._region_served(query.task, origin, mentioned)
        raw["language"] = self._language(languages)
        raw["country"], countries = self._country(query, asker)
        raw["type_fit"] = self._type_fit(query, asker, intent)
        raw["time_fit"] = self._time_fit(query.task, intent)
        raw["capacity"] = self.has_capacity_ if query.task == "advisors" else np.zeros(n, np.float32)

        contrib = {s: getattr(w, s) * raw[s].astype(np.float32) for s in SIGNALS}
        total = np.sum(list(contrib.values()), axis=0).astype(np.float64)
        total[~mask] = -np.inf
        ctx = {
            "mask": mask, "query": query, "asker": asker, "intent": intent, "languages": languages,
            "distance_km": distance, "origin": origin, "mentioned": mentioned, "main_vec": main_vec, "need": need, "need_vectors": need_vectors,
            "raw": raw, "as_of": as_of, "countries": countries,
        }
        return total, contrib, ctx

    # ------------------------------------------------------------- signals
    def _check_asker(self, query: Query, asker: Entity | None) -> None:
        if asker is None:
            return
        expected = {"advisors": ("municipality", "organisation"), "partners": ("organisation", "municipality"),
                    "events": ("organisation", "municipality", "advisor"), "invitations": ("event",)}[query.task]
        if asker.kind not in expected:
            raise ValidationError(
                f"Für die Aufgabe {quoted(query.task)} muss „from“ auf einen Eintrag der Art "
                f"{' oder '.join(KIND_LABELS[k] for k in expected)} zeigen, nicht auf {quoted(asker.id)} "
                f"(Art: {KIND_LABELS.get(asker.kind, asker.kind)})",
                [{"field": "from", "value": asker.id}],
            )

    def _dense(self, query: Query, asker: Entity | None, mask: np.ndarray,
               block: KindBlock | None) -> tuple[np.ndarray, np.ndarray]:
        """Embedding similarity, z-scored per backend of a fused embedder and averaged.

        The need text and the asker's own profile are mixed by ``from_share``;
        each is compared with the whole profile and with its best passage.
        Returns the signal and the query vector that weighs most (the one an
        explanation quotes the best passage for). ``block`` is the asked kind's (every candidate
        is in it); only its rows are scored.
        """
        w = self.weights_
        vecs, shares = [], []
        if query.text:
            vecs.append(self.embedder.encode([query.text], "query")[0])
            shares.append(1.0 - (w.from_share if asker is not None else 0.0))
        if asker is not None:
            vecs.append(self.profile_vecs_[self.index_[asker.id]])
            shares.append(w.from_share if query.text else 1.0)
        dense = np.zeros(len(self.entities_), dtype=np.float32)
        if block is None:  # no entity of the kind asked for
            return dense, vecs[0]
        # only the candidates' kind: every candidate is in it, and its rows are contiguous (views)
        profiles = self.profile_vecs_[block.rows]
        unique = self.passage_unique_vecs_[block.unique]
        within = mask[block.rows]
        out = dense[block.rows]
        for v, share in zip(vecs, shares):
            for sl, part_weight in self.part_slices_:
                # a part's slice of a fused vector is scaled by √weight: the z-score removes that scale
                prof = profiles[:, sl] @ v[sl]
                pmax = segment_max((unique[:, sl] @ v[sl])[block.passage_map], block.passage_starts)
                out += share * part_weight * zscore((1 - w.passage_share) * prof + w.passage_share * pmax, within)
        return dense, vecs[int(np.argmax(shares))]

    def best_passage(self, i: int, vec: np.ndarray) -> int:
        """Index (into ``passage_texts_``) of entity ``i``'s passage closest to ``vec``."""
        start = int(self.passage_starts_[i])
        end = int(self.passage_starts_[i + 1]) if i + 1 < len(self.passage_starts_) else len(self.passage_texts_)
        sims = self.passage_unique_vecs_[self.passage_map_[start:end]] @ vec
        return start + int(np.argmax(sims))

    def _distance_km(self, place: Place) -> np.ndarray:
        d = haversine_km(place.lat, place.lon, self.lat_, self.lon_)
        if place.kind in ("region", "district", "state"):  # inside a named area (or the named part of it) is distance 0
            d = np.where(self._area_mask(place), 0.0, d)
        return d

    def _proximity(self, origin: Place | None, mentioned: list[Place], intent: Intent,
                   distance_km: Callable[[Place], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Closeness in [0, 1] and the distance in km shown to the user.

        Places the need names ("aus Bochum und Umgebung", "vom Niederrhein")
        count most; the asker's own location still counts a little. When the
        need says nothing about place, nearness is only a mild preference
        (``implicit_proximity``).
        """
        w = self.weights_
        n = len(self.entities_)
        distance_km = distance_km or self._distance_km  # a batch passes a memoised one
        d_origin = distance_km(origin) if origin is not None and origin.lat is not None else np.full(n, np.nan)
        named = [p for p in mentioned if p.lat is not None]
        decay = lambda d: np.where(np.isnan(d), 0.0, np.exp(-np.nan_to_num(d) / w.distance_scale_km))  # noqa: E731
        if named:
            d_named = np.min([distance_km(p) for p in named], axis=0)
            prox = decay(d_named) if np.isnan(d_origin).all() else w.named_share * decay(d_named) + (1 - w.named_share) * decay(d_origin)
            return prox.astype(np.float32), d_named
        factor = 1.0 if intent.near else w.implicit_proximity
        return (factor * decay(d_origin)).astype(np.float32), d_origin

    def _region_served(self, task: str, origin: Place | None, mentioned: list[Place],
                       served_by: Callable[[Place], np.ndarray] | None = None) -> np.ndarray:
        n = len(self.entities_)
        out = np.zeros(n, dtype=np.float32)
        if task != "advisors":
            return out
        served = served_by or self._served_at
        for p in (p for p in [origin, *mentioned] if p is not None):
            np.maximum(out, served(p), out=out)
        return out

    def _served_at(self, p: Place) -> np.ndarray:
        """1 for the advisors whose ``regions`` cover place ``p`` (or a town within TOWN_RADIUS_KM)."""
        out = np.zeros(len(self.entities_), dtype=np.float32)
        keys = {("name", p.name.casefold())}
        if p.kind in ("municipality", "district") or "NRW" in p.regions:
            keys.add(("state", ""))
        keys.update(("region", r) for r in p.regions)
        if p.district:
            keys.add(("district", p.district))
        if p.kind in ("region", "state"):
            keys.add(("region", p.name))
        for key in keys:
            out[self.served_by_.get(key, [])] = 1.0
        if p.lat is not None and len(self.served_towns_):
            near = haversine_km(p.lat, p.lon, self.served_towns_[:, 1], self.served_towns_[:, 2]) <= TOWN_RADIUS_KM
            out[self.served_towns_[near, 0].astype(np.int64)] = 1.0
        return out

    def _language(self, languages: tuple[str, ...]) -> np.ndarray:
        out = np.zeros(len(self.entities_), dtype=np.float32)
        for code in set(languages):
            out[self.language_index_.get(code, [])] += 1.0 / len(set(languages))
        return out

    def _country(self, query: Query, asker: Entity | None) -> tuple[np.ndarray, frozenset[str]]:
        """How well the countries the need names fit the candidate's: 1 for the same country,
        0.5 when only a world region links them ("Ostafrika" ~ Kenya), 0.2 for a continent."""
        n = len(self.entities_)
        empty = frozenset()
        if query.text:
            direct, regional, broad = country_mentions(query.text)
        elif asker is not None:
            direct, regional, broad = self.countries_[self.index_[asker.id]]
        else:
            direct, regional, broad = empty, empty, empty
        out = np.zeros(n, dtype=np.float32)
        if not (direct or regional or broad):
            return out, direct
        by_direct, by_regional, by_broad = self.country_index_
        # weakest first, so that a stronger link overwrites a weaker one
        for value, codes, indexes in ((0.2, direct | regional | broad, (by_direct, by_regional, by_broad)),
                                      (0.5, direct | regional, (by_direct, by_regional)),
                                      (1.0, direct, (by_direct,))):
            hits = [index[c] for index in indexes for c in codes if c in index]
            if hits:
                out[np.concatenate(hits)] = value
        return out, direct

    def _type_fit(self, query: Query, asker: Entity | None, intent: Intent) -> np.ndarray:
        n = len(self.entities_)
        out = np.zeros(n, dtype=np.float32)
        # actor types asked for, with strength: the query's filter and named types 1.0, generic words less
        wanted = dict(zip(intent.org_types, intent.org_type_strength)) | {t: 1.0 for t in query.org_types}
        if query.task == "events":
            asker_type = getattr(asker, "org_type", None) or ("municipal_office" if isinstance(asker, Municipality) else None)
            for i, e in enumerate(self.entities_):
                if not isinstance(e, Event):
                    continue
                groups = set(e.target_groups)
                if not groups:
                    out[i] = 0.5
                    continue
                # can the asker attend? a migrant organisation is civil society too, in part
                fit = 1.0 if asker_type in groups else (
                    0.5 if asker_type == "migrant_organisation" and "civil_society" in groups else 0.0)
                if asker_type is None:
                    fit = 0.5
                if wanted:  # whom the need says it wants to meet
                    fit = 0.5 * fit + 0.5 * sum(s for t, s in wanted.items() if t in groups) / sum(wanted.values())
                out[i] = fit
        elif query.task in ("partners", "invitations"):
            # whom the need asks for decides; otherwise the event's own target groups
            groups = set(asker.target_groups) if isinstance(asker, Event) else set()
            if wanted:
                out = np.array([wanted.get(t, 0.0) for t in self.org_type_], dtype=np.float32)
            elif groups:
                out = np.isin(self.org_type_, list(groups)).astype(np.float32)
        return out

    def _time_fit(self, task: str, intent: Intent) -> np.ndarray:
        n = len(self.entities_)
        if task != "events" or intent.window is None:
            return np.zeros(n, dtype=np.float32)
        lo, hi = (np.datetime64(d) for d in intent.window)
        return ((self.date_ >= lo) & (self.date_ <= hi)).astype(np.float32)
