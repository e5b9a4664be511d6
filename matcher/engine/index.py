"""The fitted catalog index: everything the engine derives from a catalog, in one object.

:class:`CatalogIndex` is built once per catalog version (by :meth:`Matcher.fit
<matcher.engine.matcher.Matcher.fit>`) and only read afterwards: entity arrays,
the profile and passage vectors, the TF-IDF views, places, languages, countries
and the advisors' served areas. The catalog is grouped by kind (advisors,
organisations, municipalities, events: :data:`INDEX_ORDER`; the given order within
a kind), so each kind's rows are one contiguous :class:`KindBlock` of every matrix,
and a query reads only its task's block: one kind, or adjacent kinds together
(:meth:`CatalogIndex.block_of`: partners and invitees are organisations and
municipalities).

Per-catalog columns that batch code derives from the index (e.g. an event's
candidate groups) are kept on it with :meth:`CatalogIndex.derived`, so they
live and die with the catalog version they belong to.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from matcher.domain.messages import alternatives, quoted
from matcher.domain.schema import Advisor, Event, Municipality, Organisation, Programme
from matcher.engine.embedding import Embedder
from matcher.errors import UnknownEntityError, ValidationError
from matcher.text.columns import packed
from matcher.text.countries import country_mentions
from matcher.text.gazetteer import Gazetteer, Place, area_keys, haversine_km
from matcher.text.lexical import LexicalIndex, WordIndex
from matcher.text.profile import passages, profile_text

__all__ = ["DOMAIN_TEXT", "INDEX_ORDER", "CatalogIndex", "Entity", "KindBlock", "actor_type"]

Entity = Advisor | Organisation | Event | Municipality | Programme

# what "belonging to the field at all" is measured against (the domain signal)
DOMAIN_TEXT = (
    "Kommunale Entwicklungspolitik und Eine-Welt-Arbeit: Migration und Entwicklung, Diaspora-Engagement, "
    "Migrantenorganisationen, Fairer Handel, faire Beschaffung, Klimagerechtigkeit, kommunale Partnerschaften "
    "mit dem Globalen Süden, Globales Lernen, Bildung für nachhaltige Entwicklung, Menschenrechte, Agenda 2030."
)
_ENCODE_BATCH = 256
# what a pickled index packs (matcher.text.columns): read item by item, never as a whole list
_PACKED_TEXTS = ("profile_texts", "passage_texts", "passage_unique_texts", "country_texts")
_PACKED_VALUES = ("entities", "places", "languages", "countries", "countries_named", "topic_rows")
# the order of the kinds in the index: organisations and municipalities are adjacent, so that the
# candidates of a partner search or an invitation list (both kinds) are one contiguous block too
INDEX_ORDER = ("advisor", "organisation", "municipality", "event", "programme")


def actor_type(entity: Any) -> str | None:
    """The actor type an entity counts as: an organisation's ``org_type``; a municipality is a
    municipal actor (``municipal_office``: filters, quotas and type fit treat it as one)."""
    if isinstance(entity, Municipality):
        return "municipal_office"
    return getattr(entity, "org_type", None)


@dataclass(frozen=True)
class KindBlock:
    """Where one kind's entities sit in the index: ``rows`` of the entity arrays, ``unique`` of
    ``passage_unique_vecs``; ``passage_map`` and ``passage_starts`` are that kind's parts of
    ``passage_map`` and ``passage_starts``, relative to those slices."""

    rows: slice
    unique: slice
    passage_map: np.ndarray
    passage_starts: np.ndarray

    @property
    def size(self) -> int:
        return self.rows.stop - self.rows.start

    @staticmethod
    def empty() -> KindBlock:
        """The block of a kind the catalog does not hold."""
        return KindBlock(slice(0, 0), slice(0, 0), np.zeros(0, np.int64), np.zeros(0, np.int64))


class CatalogIndex:
    """A catalog, encoded and indexed (see the module docstring).

    Args:
        entities: the catalog.
        embedder: encodes the texts the index does not find in ``reuse`` (role ``passage``;
            the domain text as ``query``).
        gazetteer: resolves places.
        domain_text: the text the domain signal compares profiles with.
        reuse: an index of a similar catalog with the same embedder (the one serving until a
            few entities changed): its vectors, n-gram counts and country mentions of unchanged
            texts are taken over; the result is the same as building from scratch.
        on_progress: ``(done, total)`` once before encoding and after each batch of texts sent
            to the model; ``total`` counts only texts the model must encode (0 on a warm cache:
            an embedder with ``cached(texts, role)`` is asked first).
        progress_bar: show a tqdm bar on stderr while encoding.

    Raises:
        ValidationError: two entities share an id.
    """

    def __init__(self, entities: Sequence[Entity], embedder: Embedder, gazetteer: Gazetteer,
                 domain_text: str = DOMAIN_TEXT, reuse: CatalogIndex | None = None,
                 on_progress: Callable[[int, int], None] | None = None, progress_bar: bool = False):
        if reuse is not None and reuse.model_id != embedder.model_id:
            reuse = None
        order = {kind: i for i, kind in enumerate(INDEX_ORDER)}
        ents = sorted(entities, key=lambda e: order.get(e.kind, len(order)))
        ids = [e.id for e in ents]
        if len(set(ids)) != len(ids):
            dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
            raise ValidationError(f"Doppelte ids im Katalog: {alternatives(dupes[:20], 'und')}"
                                  + (f" und {len(dupes) - 20} weitere" if len(dupes) > 20 else ""),
                                  [{"field": "id", "value": d} for d in dupes[:20]])
        self.model_id = embedder.model_id
        self.gazetteer = gazetteer
        self.domain_text = domain_text
        self.entities: list[Entity] = ents
        self.row = {e.id: i for i, e in enumerate(ents)}
        self._derived: dict[str, Any] = {}
        self._merged_blocks: dict[tuple[str, ...], KindBlock] = {}
        self._derived_lock = threading.Lock()
        n = len(ents)
        self.kind = np.array([e.kind for e in ents], dtype=object)
        self.org_type = np.array([actor_type(e) for e in ents], dtype=object)
        self.places: list[Place | None] = [gazetteer.locate(e.city, e.lat, e.lon) for e in ents]
        self.lat = np.array([p.lat if p and p.lat is not None else np.nan for p in self.places], dtype=np.float64)
        self.lon = np.array([p.lon if p and p.lon is not None else np.nan for p in self.places], dtype=np.float64)
        self.languages = [frozenset(e.languages) for e in ents]
        self.language_index: dict[str, list[int]] = {}
        for i, langs in enumerate(self.languages):
            for code in langs:
                self.language_index.setdefault(code, []).append(i)
        self.date = np.array(
            [np.datetime64(e.date) if isinstance(e, Event) and e.date else np.datetime64("NaT") for e in ents],
            dtype="datetime64[D]")
        # 0 for an advisor with no capacity left; everyone else (no limit given, not an advisor) 1
        self.has_capacity = np.array([0.0 if isinstance(e, Advisor) and e.capacity == 0 else 1.0 for e in ents],
                                     dtype=np.float32)
        self._encode_texts(ents, embedder, reuse, on_progress, progress_bar)
        self._index_countries(ents, reuse)
        self._index_places(ents)
        lexical_texts = [self.lexical_text(i) for i in range(len(ents))]
        self.lexical = LexicalIndex().fit(lexical_texts, reuse=reuse.lexical if reuse is not None else None,
                                          blocks=[b.rows for b in self.blocks.values()])
        # which rows use which surface words: the false-friend check reads it (signals.false_friends)
        self.words = WordIndex.fit(lexical_texts)
        unique_topics = list(dict.fromkeys(t for e in ents for t in e.topics))
        topic_pos = {t: j for j, t in enumerate(unique_topics)}
        self.topic_vecs = self.lexical.char_.transform(unique_topics) \
            if unique_topics and self.lexical.char_ is not None else None
        self.topic_rows = [[topic_pos[t] for t in e.topics] for e in ents]
        domain_vec = embedder.encode([domain_text], "query")[0]
        self.domain = (self.profile_vecs @ domain_vec).astype(np.float32) if n else np.zeros(0, np.float32)

    # ------------------------------------------------------------------ building
    def _encode_texts(self, ents: list[Entity], embedder: Embedder, reuse: CatalogIndex | None,
                      on_progress: Callable[[int, int], None] | None, progress_bar: bool) -> None:
        n = len(ents)
        self.profile_texts = [profile_text(e) for e in ents]
        passage_lists = [passages(e) for e in ents]
        self.passage_texts = [p for ps in passage_lists for p in ps]
        lengths = np.array([len(ps) for ps in passage_lists], dtype=np.int64)
        self.passage_starts = (np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if n
                               else np.zeros(0, np.int64))
        self.passage_owner = np.repeat(np.arange(n), lengths)
        inner = getattr(embedder, "embedder", embedder)  # a CachedEmbedder wraps the model
        self.part_slices = getattr(inner, "part_slices", None) or [(slice(0, embedder.dim), 1.0)]
        known = reuse.vectors_by_text() if reuse is not None else {}
        # identical passages (common in generated or templated catalogs) are stored once per kind,
        # so that each kind's unique passages are one block too
        uniq = list(dict.fromkeys(self.passage_texts))
        advance = _progress_counter(embedder, [*self.profile_texts, *uniq], known, on_progress) if on_progress else None
        self.profile_vecs = _encode(embedder, self.profile_texts, known, advance, progress_bar)
        vecs = _encode(embedder, uniq, known, advance, progress_bar)
        del known
        passage_kinds = self.kind[self.passage_owner]
        keyed = list(dict.fromkeys(zip(passage_kinds, self.passage_texts)))
        if len(keyed) != len(uniq):  # a text shared by two kinds: one row in each kind's block
            row = {t: i for i, t in enumerate(uniq)}
            uniq = [t for _, t in keyed]
            vecs = vecs[[row[t] for t in uniq]]
        pos = {key: i for i, key in enumerate(keyed)}
        self.passage_unique_texts = uniq
        self.passage_unique_vecs = vecs
        self.passage_map = np.array([pos[key] for key in zip(passage_kinds, self.passage_texts)], dtype=np.int64)
        self.blocks = self._kind_blocks()

    def _kind_blocks(self) -> dict[str, KindBlock]:
        """Each kind's rows, passages and unique passages as slices (the catalog is grouped by kind)."""
        blocks = {}
        n_passages = len(self.passage_texts)
        for kind in dict.fromkeys(self.kind.tolist()):
            rows = np.flatnonzero(self.kind == kind)
            a, b = int(rows[0]), int(rows[-1]) + 1
            pa = int(self.passage_starts[a])
            pb = int(self.passage_starts[b]) if b < len(self.passage_starts) else n_passages
            owned = self.passage_map[pa:pb]
            ua, ub = (int(owned.min()), int(owned.max()) + 1) if owned.size else (0, 0)
            blocks[kind] = KindBlock(slice(a, b), slice(ua, ub), owned - ua, self.passage_starts[a:b] - pa)
        return blocks

    def _index_countries(self, ents: list[Entity], reuse: CatalogIndex | None) -> None:
        # per entity: (countries named or partnered, in sub-regions named, in continents named)
        self.countries: list[tuple[frozenset[str], frozenset[str], frozenset[str]]] = []
        lists: tuple[dict[str, list[int]], ...] = ({}, {}, {})
        self.country_texts = [" ".join([e.name, e.description, *e.topics, *e.evidence]) for e in ents]
        known = dict(zip(reuse.country_texts, reuse.countries_named)) if reuse is not None else {}
        self.countries_named = [known.get(t) or country_mentions(t) for t in self.country_texts]
        for i, e in enumerate(ents):
            direct, regional, broad = self.countries_named[i]
            sets = (direct | frozenset(getattr(e, "partner_countries", ()) or ()), regional, broad)
            self.countries.append(sets)
            for index, codes in zip(lists, sets):
                for c in codes:
                    index.setdefault(c, []).append(i)
        # (named, in sub-regions, in continents): country code -> entity rows
        self.country_index = tuple({c: np.array(rows, dtype=np.int64) for c, rows in index.items()}
                                   for index in lists)

    def _index_places(self, ents: list[Entity]) -> None:
        """Inverted indexes so that per-query place signals are array operations, not loops."""
        self.area_members: dict[tuple[str, str], list[int]] = {}
        for i, pl in enumerate(self.places):
            if pl is not None:
                for key in area_keys(pl):
                    self.area_members.setdefault(key, []).append(i)
        # advisors' served areas: key -> advisors, plus served towns for the radius rule
        self.served_by: dict[tuple[str, str], list[int]] = {}
        towns: list[tuple[int, float, float]] = []
        for i, e in enumerate(ents):
            if not isinstance(e, Advisor):
                continue
            for area in e.regions:
                a = self.gazetteer.resolve(area)
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
                self.served_by.setdefault(key, []).append(i)
        self.served_towns = np.array(towns, dtype=np.float64).reshape(-1, 3)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self.entities)

    def entity(self, entity_id: str) -> Entity:
        """An entity by id. Raises :class:`UnknownEntityError`."""
        try:
            return self.entities[self.row[entity_id]]
        except KeyError:
            raise UnknownEntityError(f"Unbekannte id {quoted(entity_id)}: kein solcher Eintrag im Katalog",
                                     [{"field": "id", "value": entity_id}]) from None

    def block(self, kind: str) -> KindBlock:
        """The rows of one kind (an empty block for a kind the catalog does not hold)."""
        return self.blocks.get(kind) or KindBlock.empty()

    def block_of(self, kinds: Sequence[str]) -> KindBlock:
        """The rows of kinds adjacent in :data:`INDEX_ORDER`, as one block (kinds the catalog does not
        hold are left out); one kind is :meth:`block`."""
        held = [self.blocks[k] for k in INDEX_ORDER if k in kinds and k in self.blocks]
        if len(held) <= 1:
            return held[0] if held else KindBlock.empty()
        key = tuple(k for k in INDEX_ORDER if k in kinds and k in self.blocks)
        merged = self._merged_blocks.get(key)
        if merged is None:
            first, last = held[0], held[-1]
            if any(a.rows.stop != b.rows.start for a, b in zip(held, held[1:])):
                raise ValueError(f"kinds {key} are not adjacent in the index")
            ua = min(b.unique.start for b in held if b.unique.stop > b.unique.start) \
                if any(b.unique.stop > b.unique.start for b in held) else 0
            ub = max(b.unique.stop for b in held)
            rows = slice(first.rows.start, last.rows.stop)
            pa = int(self.passage_starts[rows.start])
            pb = int(self.passage_starts[rows.stop]) if rows.stop < len(self.passage_starts) \
                else len(self.passage_texts)
            merged = KindBlock(rows, slice(ua, ub), self.passage_map[pa:pb] - ua,
                               self.passage_starts[rows.start:rows.stop] - pa)
            self._merged_blocks[key] = merged
        return merged

    def vectors_by_text(self) -> dict[str, np.ndarray]:
        """Every catalog text encoded (profiles and passages, role ``passage``) → its vector."""
        out = dict(zip(self.profile_texts, self.profile_vecs))
        out.update(zip(self.passage_unique_texts, self.passage_unique_vecs))
        return out

    def lexical_text(self, i: int) -> str:
        """Entity ``i``'s text for the word-level signals: its profile and its evidence (the lexical index and
        :attr:`words`, the false-friend check, read it)."""
        return " ".join([self.profile_texts[i], *self.entities[i].evidence])

    def passage_range(self, i: int) -> range:
        """Entity ``i``'s passages (indices into ``passage_texts``)."""
        start = int(self.passage_starts[i])
        end = int(self.passage_starts[i + 1]) if i + 1 < len(self.passage_starts) else len(self.passage_texts)
        return range(start, end)

    def best_passage(self, i: int, vec: np.ndarray) -> int:
        """Index (into ``passage_texts``) of entity ``i``'s passage closest to ``vec``."""
        span = self.passage_range(i)
        sims = self.passage_unique_vecs[self.passage_map[span.start : span.stop]] @ vec
        return span.start + int(np.argmax(sims))

    def area_mask(self, place: Place, rows: slice) -> np.ndarray:
        """Rows ``rows`` inside a named area (region or district), or inside its named part."""
        key = ("region", place.name) if place.kind in ("region", "state") else ("district", place.name)
        members = np.asarray(self.area_members.get(key, []), dtype=np.int64)
        members = members[(members >= rows.start) & (members < rows.stop)] - rows.start
        mask = np.zeros(rows.stop - rows.start, dtype=bool)
        mask[members] = True
        if place.side is not None and mask.any():
            mask &= np.array([place.on_side(a, b) for a, b in zip(self.lat[rows], self.lon[rows])])
        return mask

    def distance_km(self, place: Place, rows: slice) -> np.ndarray:
        """Great-circle distance from ``place`` to rows ``rows`` (NaN without coordinates). A named area (region,
        district, state): 0 inside it (or inside its named part), else the distance to its centre — for a named
        part, the centre of that part (:meth:`~matcher.text.gazetteer.Gazetteer.centre`): the whole Ruhrgebiet's
        centre put Bochum, just east of the line, 1 km from "the western Ruhrgebiet"."""
        if place.kind not in ("region", "district", "state"):
            return haversine_km(place.lat, place.lon, self.lat[rows], self.lon[rows])
        lat, lon = self.gazetteer.centre(place)
        d = haversine_km(lat, lon, self.lat[rows], self.lon[rows])
        return np.where(self.area_mask(place, rows), 0.0, d)

    def served_at(self, place: Place, rows: slice, town_radius_km: float) -> np.ndarray:
        """1 for the advisors among ``rows`` whose ``regions`` cover ``place`` (or a town within the radius)."""
        out = np.zeros(rows.stop - rows.start, dtype=np.float32)
        keys = {("name", place.name.casefold())}
        if place.kind in ("municipality", "district") or "NRW" in place.regions:
            keys.add(("state", ""))
        keys.update(("region", r) for r in place.regions)
        if place.district:
            keys.add(("district", place.district))
        if place.kind in ("region", "state"):
            keys.add(("region", place.name))
        hits = [np.asarray(self.served_by[key], dtype=np.int64) for key in keys if key in self.served_by]
        if place.lat is not None and len(self.served_towns):
            km = haversine_km(place.lat, place.lon, self.served_towns[:, 1], self.served_towns[:, 2])
            near = km <= town_radius_km
            hits.append(self.served_towns[near, 0].astype(np.int64))
        if hits:
            found = np.concatenate(hits)
            out[found[(found >= rows.start) & (found < rows.stop)] - rows.start] = 1.0
        return out

    def derived(self, name: str, build: Callable[[CatalogIndex], Any]) -> Any:
        """A per-catalog column computed once from this index (``build(index)``) and kept on it.

        For data that batch code derives from the catalog and reuses across requests; it lives
        exactly as long as this index (one catalog version)."""
        value = self._derived.get(name)
        if value is None:
            with self._derived_lock:
                value = self._derived.get(name)
                if value is None:
                    value = self._derived[name] = build(self)
        return value

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_derived"] = {}
        state["_merged_blocks"] = {}  # a cache of block_of, rebuilt on demand
        del state["_derived_lock"]  # a lock cannot be pickled (fitted indexes are cached on disk by bench/)
        # per-entity and per-passage values as packed columns: a pickled index (the persisted one,
        # see matcher.engine.index_file) then holds two arrays each, not millions of objects to rebuild
        for name in _PACKED_TEXTS:
            state[name] = packed(state[name], texts=True)
        for name in _PACKED_VALUES:
            state[name] = packed(state[name], keep=name == "entities")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_merged_blocks", {})
        self._derived_lock = threading.Lock()


def _progress_counter(embedder: Embedder, texts: list[str], known: dict[str, np.ndarray],
                      on_progress: Callable[[int, int], None]) -> Callable[[int], None]:
    """Count the ``texts`` that need the model and report 0 of them; returns the per-batch callback.

    Vectors the embedder already holds join ``known`` (so a restart on a full store counts 0)."""
    cached = getattr(embedder, "cached", None)
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


def _encode(embedder: Embedder, texts: list[str], known: dict[str, np.ndarray],
            advance: Callable[[int], None] | None, progress_bar: bool) -> np.ndarray:
    """Vectors of catalog texts (role ``passage``); ``known`` ones are taken as they are.
    ``advance(n)`` is told after each batch of ``n`` texts encoded."""
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    todo = [i for i, t in enumerate(texts) if not known or t not in known]
    for i in range(len(texts)) if known else ():
        if texts[i] in known:
            out[i] = known[texts[i]]
    if not todo:
        return out
    chunks: Any = range(0, len(todo), _ENCODE_BATCH)
    if progress_bar:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="Profile kodieren", unit=f"×{_ENCODE_BATCH}", leave=False)
    for start in chunks:
        rows = todo[start : start + _ENCODE_BATCH]
        out[rows] = embedder.encode([texts[i] for i in rows], "passage")
        if advance is not None:
            advance(len(rows))
    return out
