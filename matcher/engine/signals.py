"""The engine's signals: pure functions of the index and read queries.

Every signal takes the fitted :class:`~matcher.engine.index.CatalogIndex`, a list
of :class:`~matcher.engine.context.QueryContext` (one query online, a block of
requests in a batch), the :class:`~matcher.engine.index.KindBlock` of the
candidates' kind and, where it needs them, the candidate masks and the
:class:`~matcher.engine.weights.Weights`; it returns a ``(queries, block rows)``
float32 array and changes nothing. The text signals are standardised per query
over its candidates (z-scores); the structured ones lie in [0, 1].

``dense``      embedding similarity of the need (and the asker's own profile) to the whole
               profile and to its best passage, per part of a fused embedder
``lexical``    TF-IDF similarity (character n-grams + stemmed words)
``domain``     how much a profile belongs to the field at all (development policy,
               migration, Eine Welt) — keeps look-alikes such as "Datenmigration" down
``proximity``  distance to the places the need names and to the asker, decaying
``region``     an advisor serves the asker's place (city, district, region, NRW)
``language``   share of the requested languages the candidate speaks
``country``    the countries or world regions the need names are the candidate's
``type_fit``   actor type fits: an event's target groups, the types a need asks for
``time_fit``   an event falls in the period the need names
``capacity``   an advisor has capacity left
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import sparse

from matcher.domain.schema import Event
from matcher.engine.context import QueryContext
from matcher.engine.index import CatalogIndex, KindBlock, actor_type
from matcher.engine.similarity import zscore_rows
from matcher.engine.weights import Weights
from matcher.text.gazetteer import Place
from matcher.text.lexical import modifier_phrases

Memo = dict  # memos of the signal functions, kept by a caller across calls on one index ({} at first)

__all__ = [
    "SIGNAL_FUNCTIONS", "candidate_mask", "candidate_masks", "capacity", "country", "dense", "distance_km", "domain",
    "false_friends", "language", "lexical", "municipalities_wanted", "proximity", "raw_signals", "reach_km", "region",
    "time_fit", "type_fit",
]


# ----------------------------------------------------------------------------- candidates
def candidate_mask(index: CatalogIndex, ctx: QueryContext, block: KindBlock) -> np.ndarray:
    """Which rows of the block may be suggested: never the asker, no past event, the actor types
    and (when required) the languages asked for."""
    rows = block.rows
    mask = np.ones(block.size, dtype=bool)
    if ctx.asker_row is not None and rows.start <= ctx.asker_row < rows.stop:
        mask[ctx.asker_row - rows.start] = False
    query = ctx.query
    if query.task == "events":
        mask &= ~(index.date[rows] < np.datetime64(ctx.as_of))  # NaT (no date) stays in
    if query.task in ("partners", "invitations"):
        if not municipalities_wanted(ctx):
            mask &= index.kind[rows] != "municipality"
        if query.kinds:
            mask &= np.isin(index.kind[rows], list(query.kinds))
        if query.org_types:
            mask &= np.isin(index.org_type[rows], list(query.org_types))
    reach = reach_km(ctx)
    if reach is not None and ctx.origin is not None and ctx.origin.lat is not None:
        mask &= ~(index.distance_km(ctx.origin, rows) > reach)  # unknown places (NaN) stay in
    if query.require_languages and query.languages:
        for code in set(query.languages):
            mask &= _members(index.language_index.get(code, ()), rows)
    return mask


def municipalities_wanted(ctx: QueryContext) -> bool:
    """Are municipalities (the city as a whole) candidates of a partner search or an invitation list?

    When municipal actors are asked for: in the query's ``kinds`` or ``org_types``, or named in the
    need ("mit der Stadtverwaltung"). Otherwise a municipality's profile (a city's portrait) would
    outrank the organisations on place and breadth alone; its offices, organisations of type
    ``municipal_office``, stand for the municipal side (and the partner mix takes one of either)."""
    query = ctx.query
    if "municipality" in query.kinds:
        return True
    if query.kinds:
        return False
    if "municipal_office" in query.org_types or "municipal_office" in ctx.intent.org_types:
        return True
    # an invitation to an event for municipal offices: municipalities belong to its audience
    return ctx.task == "invitations" and "municipal_office" in getattr(ctx.asker, "target_groups", ())


def reach_km(ctx: QueryContext) -> float | None:
    """The invitees' reach of an invitation list: the query's ``reach_km``, else the asking event's."""
    if ctx.task != "invitations":
        return None
    return ctx.query.reach_km or getattr(ctx.asker, "reach_km", None)


def candidate_masks(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock) -> np.ndarray:
    """:func:`candidate_mask` of each query, as rows."""
    return np.vstack([candidate_mask(index, c, block) for c in contexts]) if contexts \
        else np.zeros((0, block.size), dtype=bool)


def _memo(shared: Memo | None, name: str, block: KindBlock) -> dict:
    """The memo ``name`` of ``block``: kept in ``shared`` (the caller's, across calls on one index — the
    blocks of requests of a batch share towns, phrases and languages) or new for this call."""
    return {} if shared is None else shared.setdefault((name, block.rows.start, block.rows.stop), {})


def _members(rows_of_catalog: Sequence[int] | np.ndarray, rows: slice) -> np.ndarray:
    """A boolean vector over ``rows``: True where the catalog row is among ``rows_of_catalog``."""
    found = np.asarray(rows_of_catalog, dtype=np.int64)
    out = np.zeros(rows.stop - rows.start, dtype=bool)
    out[found[(found >= rows.start) & (found < rows.stop)] - rows.start] = True
    return out


# ----------------------------------------------------------------------------- text signals
def false_friends(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock,
                  shared: Memo | None = None) -> np.ndarray:
    """True where a candidate meets a phrase of the need only through a compound on its modifier with
    another head ("Freiwilligendienst" for "Freiwillige Feuerwehr",
    :func:`~matcher.text.lexical.compound_collision`): such evidence must not carry a result, so the
    lexical signal and the best passage give it no weight (:func:`dense`, :func:`lexical`)."""
    out = np.zeros((len(contexts), block.size), dtype=bool)
    memo: dict[tuple[str, str, bool], np.ndarray] = _memo(shared, "false_friends", block)  # requests share phrases
    for r, ctx in enumerate(contexts):
        phrases = modifier_phrases(ctx.query.text or "")
        if phrases:
            out[r] = index.words.collisions(phrases, block.rows, memo)
    return out


def dense(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock, masks: np.ndarray,
          weights: Weights, collided: np.ndarray | None = None) -> np.ndarray:
    """Embedding similarity, z-scored per part of a fused embedder and averaged.

    The need text and the asker's own profile are mixed by their shares (``from_share``); each
    is compared with the whole profile and with its best passage (``passage_share``). Where
    ``collided`` (:func:`false_friends`), the need text's best passage counts no more than the
    whole profile."""
    out = np.zeros((len(contexts), block.size), dtype=np.float32)
    if block.size == 0:
        return out
    profiles = index.profile_vecs[block.rows]
    unique = index.passage_unique_vecs[block.unique]
    texts = [r for r, c in enumerate(contexts) if c.text_vector is not None]
    askers = [r for r, c in enumerate(contexts) if c.asker_row is not None]
    for rows, vectors, shares, is_need in (
            (texts, [contexts[r].text_vector for r in texts], [contexts[r].text_share for r in texts], True),
            (askers, [index.profile_vecs[contexts[r].asker_row] for r in askers],
             [contexts[r].asker_share for r in askers], False)):
        if not rows:
            continue
        v = np.vstack(vectors)
        share = np.array(shares, dtype=np.float32)[:, None]
        for sl, part_weight in index.part_slices:
            # a part's slice of a fused vector is scaled by √weight: the z-score removes that scale
            prof = v[:, sl] @ profiles[:, sl].T
            pmax = np.maximum.reduceat((v[:, sl] @ unique[:, sl].T)[:, block.passage_map], block.passage_starts,
                                       axis=1)
            if is_need and collided is not None:
                pmax = np.where(collided[rows], np.minimum(pmax, prof), pmax)
            mixed = (1 - weights.passage_share) * prof + weights.passage_share * pmax
            out[rows] += share * part_weight * zscore_rows(mixed, masks[rows])
    return out


def lexical(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock, masks: np.ndarray) -> np.ndarray:
    """TF-IDF similarity of the need to each candidate (character and word views), z-scored.

    Not for an invitation list without a text of its own: the event's announcement describes a programme,
    and the words it shares with a profile ("Netzwerktreffen", "Kommunen", "Projekte") say little about
    whom to invite (the dense signal reads its theme). Measured: dev invitations 0.728 → 0.749, trust
    0.778 → 0.793 (model card)."""
    out = np.zeros((len(contexts), block.size), dtype=np.float32)
    rows = [r for r, c in enumerate(contexts)
            if c.need_vectors is not None and not (c.task == "invitations" and not c.query.text)]
    if not rows or block.size == 0:
        return out
    char, word = _stacked([contexts[r].need_vectors for r in rows])
    out[rows] = zscore_rows(index.lexical.similarity_matrix(char, word, block.rows), masks[rows])
    return out


def _stacked(vectors: list[Any]) -> tuple[sparse.csr_matrix, sparse.csr_matrix | None]:
    """The needs' (character, word) rows as two matrices (one slice when they share a batch)."""
    first = vectors[0]
    if len(vectors) == 1:
        return first.char_row(), first.word_row()
    if all(v.char is first.char for v in vectors):
        picks = [v.row for v in vectors]
        return first.char[picks], (first.word[picks] if first.word is not None else None)
    char = sparse.vstack([v.char_row() for v in vectors]).tocsr()
    word = sparse.vstack([v.word_row() for v in vectors]).tocsr() if first.word is not None else None
    return char, word


def domain(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock, masks: np.ndarray) -> np.ndarray:
    """How close each candidate's profile is to the field (development policy, migration, Eine Welt), z-scored."""
    values = np.broadcast_to(index.domain[block.rows], (len(contexts), block.size))
    return zscore_rows(values, masks)


# ----------------------------------------------------------------------------- places
def _distance_memo(index: CatalogIndex, block: KindBlock, shared: Memo | None = None) -> Callable[[Place], np.ndarray]:
    """Distances from a place to the block's rows, computed once per place (many requests share a town)."""
    memo: dict[Place, np.ndarray] = _memo(shared, "distance", block)

    def distance(place: Place) -> np.ndarray:
        if place not in memo:
            memo[place] = index.distance_km(place, block.rows)
        return memo[place]

    return distance


def _origin_and_named(ctx: QueryContext, distance: Callable[[Place], np.ndarray],
                      size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Distance to the asker's place (NaN where unknown) and to the nearest place the need names (or None)."""
    origin = ctx.origin
    d_origin = distance(origin) if origin is not None and origin.lat is not None else np.full(size, np.nan)
    named = [p for p in ctx.mentioned if p.lat is not None]
    return d_origin, (np.min([distance(p) for p in named], axis=0) if named else None)


def distance_km(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock,
                shared: Memo | None = None) -> np.ndarray:
    """The distance shown to the user: to the nearest place the need names, else to the asker (NaN: unknown)."""
    distance = _distance_memo(index, block, shared)
    out = np.full((len(contexts), block.size), np.nan)
    for r, ctx in enumerate(contexts):
        d_origin, d_named = _origin_and_named(ctx, distance, block.size)
        out[r] = d_named if d_named is not None else d_origin
    return out


def proximity(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock, weights: Weights,
              shared: Memo | None = None) -> np.ndarray:
    """Closeness in [0, 1]: places the need names ("aus Bochum und Umgebung") count most, the asker's own
    place a little; a need that says nothing of place makes nearness only a mild preference."""
    w = weights
    distance = _distance_memo(index, block, shared)
    memo: dict[Any, np.ndarray] = _memo(shared, ("proximity", weights), block)

    def decay(d: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(d), 0.0, np.exp(-np.nan_to_num(d) / w.distance_scale_km))

    out = np.zeros((len(contexts), block.size), dtype=np.float32)
    for r, ctx in enumerate(contexts):
        key = (ctx.origin, ctx.mentioned, ctx.intent.near, ctx.task)
        if key not in memo:
            d_origin, d_named = _origin_and_named(ctx, distance, block.size)
            if d_named is not None:
                near = decay(d_named) if np.isnan(d_origin).all() else \
                    w.named_share * decay(d_named) + (1 - w.named_share) * decay(d_origin)
            else:
                implicit = {"events": w.event_proximity, "invitations": w.invitation_proximity,
                            "partners": w.partner_proximity}.get(ctx.task, w.implicit_proximity)
                near = (1.0 if ctx.intent.near else implicit) * decay(d_origin)
            memo[key] = near.astype(np.float32)
        out[r] = memo[key]
    return out


def region(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock, weights: Weights,
           shared: Memo | None = None) -> np.ndarray:
    """1 for advisors who serve the asker's place or a place the need names (advisor searches only)."""
    memo: dict[Place, np.ndarray] = _memo(shared, ("region", weights.town_radius_km), block)
    out = np.zeros((len(contexts), block.size), dtype=np.float32)
    for r, ctx in enumerate(contexts):
        if ctx.task != "advisors":
            continue
        for place in (p for p in (ctx.origin, *ctx.mentioned) if p is not None):
            if place not in memo:
                memo[place] = index.served_at(place, block.rows, weights.town_radius_km)
            np.maximum(out[r], memo[place], out=out[r])
    return out


# ----------------------------------------------------------------------------- structured
def language(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock,
             shared: Memo | None = None) -> np.ndarray:
    """Share of the requested languages (asked for or named in the need) each candidate speaks."""
    memo: dict[frozenset[str], np.ndarray] = _memo(shared, "language", block)
    out = np.zeros((len(contexts), block.size), dtype=np.float32)
    for r, ctx in enumerate(contexts):
        codes = frozenset(ctx.languages)
        if not codes:
            continue
        if codes not in memo:
            row = np.zeros(block.size, dtype=np.float32)
            for code in codes:
                row[_members(index.language_index.get(code, ()), block.rows)] += 1.0 / len(codes)
            memo[codes] = row
        out[r] = memo[codes]
    return out


def country(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock, weights: Weights) -> np.ndarray:
    """How well the countries the need names fit the candidate's: the same country, only a world region
    ("Ostafrika" ~ Kenya) or only the continent, with the strengths of ``weights``."""
    by_direct, by_regional, by_broad = index.country_index
    out = np.zeros((len(contexts), block.size), dtype=np.float32)
    for r, ctx in enumerate(contexts):
        direct, regional, broad = ctx.countries
        if not (direct or regional or broad):
            continue
        # weakest first, so that a stronger link overwrites a weaker one
        for value, codes, indexes in ((weights.country_continent, direct | regional | broad,
                                       (by_direct, by_regional, by_broad)),
                                      (weights.country_region, direct | regional, (by_direct, by_regional)),
                                      (weights.country_same, direct, (by_direct,))):
            hits = [idx[c] for idx in indexes for c in codes if c in idx]
            if hits:
                out[r, _members(np.concatenate(hits), block.rows)] = value
    return out


def type_fit(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock, weights: Weights) -> np.ndarray:
    """Actor type fits. Events: may the asker attend (the event's target groups), and does it meet whom the
    need asks for. Partners and invitations: the types the need (or the query's filter) asks for, else the
    asking event's target groups."""
    w = weights
    out = np.zeros((len(contexts), block.size), dtype=np.float32)
    org_types = index.org_type[block.rows]
    for r, ctx in enumerate(contexts):
        query, asker, intent = ctx.query, ctx.asker, ctx.intent
        # actor types asked for, with strength: the query's filter and named types 1.0, generic words less
        wanted = dict(zip(intent.org_types, intent.org_type_strength)) | {t: 1.0 for t in query.org_types}
        if query.task == "events":
            asker_type = query.asker_type or actor_type(asker)
            for j, e in enumerate(index.entities[block.rows]):
                if not isinstance(e, Event):
                    continue
                groups = set(e.target_groups)
                if not groups:
                    out[r, j] = w.event_open_to_all
                    continue
                # can the asker attend? a migrant organisation is civil society too, in part
                fit = 1.0 if asker_type in groups else (
                    w.related_type if asker_type == "migrant_organisation" and "civil_society" in groups else 0.0)
                if asker_type is None:
                    fit = w.untyped_asker
                if wanted:  # whom the need says it wants to meet
                    fit = (1 - w.asked_share) * fit + w.asked_share * sum(
                        s for t, s in wanted.items() if t in groups) / sum(wanted.values())
                out[r, j] = fit
        elif query.task in ("partners", "invitations"):
            groups = set(asker.target_groups) if isinstance(asker, Event) else set()
            if wanted:
                out[r] = np.array([wanted.get(t, 0.0) for t in org_types], dtype=np.float32)
            elif groups:
                out[r] = np.isin(org_types, list(groups))
    return out


def time_fit(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock) -> np.ndarray:
    """1 for events within the period the need names ("im Frühjahr", "bis Ende März")."""
    out = np.zeros((len(contexts), block.size), dtype=np.float32)
    dates = index.date[block.rows]
    for r, ctx in enumerate(contexts):
        if ctx.task == "events" and ctx.intent.window is not None:
            lo, hi = (np.datetime64(d) for d in ctx.intent.window)
            out[r] = (dates >= lo) & (dates <= hi)
    return out


def capacity(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock) -> np.ndarray:
    """1 for advisors with capacity left (advisor searches only)."""
    out = np.zeros((len(contexts), block.size), dtype=np.float32)
    for r, ctx in enumerate(contexts):
        if ctx.task == "advisors":
            out[r] = index.has_capacity[block.rows]
    return out


SIGNAL_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "dense": dense, "lexical": lexical, "domain": domain, "proximity": proximity, "region": region,
    "language": language, "country": country, "type_fit": type_fit, "time_fit": time_fit, "capacity": capacity,
}


def raw_signals(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock, masks: np.ndarray,
                weights: Weights, shared: Memo | None = None) -> dict[str, np.ndarray]:
    """Every signal for every query and candidate: ``{signal: (queries, block rows)}``, in :data:`SIGNALS` order.
    ``shared``: memos kept across calls on the same index (a batch's blocks of requests; a dict, empty at first)."""
    collided = false_friends(index, contexts, block, shared)
    lex = lexical(index, contexts, block, masks)
    return {
        "dense": dense(index, contexts, block, masks, weights, collided),
        "lexical": np.where(collided, np.minimum(lex, 0.0), lex).astype(np.float32),
        "domain": domain(index, contexts, block, masks),
        "proximity": proximity(index, contexts, block, weights, shared),
        "region": region(index, contexts, block, weights, shared),
        "language": language(index, contexts, block, shared),
        "country": country(index, contexts, block, weights),
        "type_fit": type_fit(index, contexts, block, weights),
        "time_fit": time_fit(index, contexts, block),
        "capacity": capacity(index, contexts, block),
    }

