"""Lexical similarity with scikit-learn TF-IDF, fitted on the catalog.

Two views of a text: character n-grams within word boundaries (``char_wb``,
3–5), which cope with German compounds ("Klimapartnerschaft" shares
"partnerschaft" with "Städtepartnerschaft"), and stemmed words (Snowball
German stemmer, German + English stop words, uni- and bigrams), which give
the matched terms an explanation can show.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import repeat

import numpy as np
import snowballstemmer
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2
from stop_words import get_stop_words

from matcher.errors import NotFittedError
from matcher.text.columns import PackedColumn, packed

__all__ = ["LexicalIndex", "TextCounts", "WordIndex", "compound_collision", "modifier_phrases", "word_tokens", "stem"]

_WORD_RE = re.compile(r"[^\W\d_][\w\-]*[^\W_]|[^\W\d_]", re.UNICODE)
_STOP = frozenset(w.casefold() for w in get_stop_words("de") + get_stop_words("en")) | {
    "e.v", "ev", "gmbh", "themen", "stadt", "verein", "vereine", "wir", "uns", "unser", "unsere", "ca",
}
_STEMMER = snowballstemmer.stemmer("german")
_STEMMER_LOCK = threading.Lock()


def word_tokens(text: str) -> list[str]:
    """Lower-cased, stop-word-free word tokens (surface forms)."""
    return [t for t in map(str.casefold, _WORD_RE.findall(text)) if t not in _STOP and len(t) > 2]


@lru_cache(maxsize=500_000)
def stem(word: str) -> str:
    """Snowball German stem of a lower-cased word (memoised: Snowball in pure Python costs ~0.2 ms a
    word, and a catalog repeats its vocabulary many times over)."""
    with _STEMMER_LOCK:  # a Snowball stemmer object keeps its state between calls: one thread at a time
        return _STEMMER.stemWord(word)


# a two-word noun phrase of a need, "Freiwillige Feuerwehr": a modifier (6+ letters) and a capitalised head
_PHRASE_RE = re.compile(r"\b([^\W\d_]{6,})\s+([A-ZÄÖÜ][^\W\d_]{3,})")
# a capitalised adjective inside a sentence ("bei der Freiwilligen Feuerwehr", "the Voluntary Fire Brigade"):
# the phrase is a name, whose meaning is not its words' — its modifier alone ("Freiwillige") meets nothing of it
_NAME_MODIFIER_RE = re.compile(r"[A-ZÄÖÜ][^\W\d_]*(?:e|en|er|es|em|al|ary|ive|ic)")
_SENTENCE_START_RE = re.compile(r"(?:^|[.!?:;–—\"„“(]\s*)$")


def modifier_phrases(need: str) -> tuple[tuple[str, str, bool], ...]:
    """The (modifier stem, head, named) triples of a need's two-word noun phrases, lower-cased
    ("Freiwillige Feuerwehr" → ``("freiwill", "feuerwehr", True)``). ``named``: the modifier is a capitalised
    adjective inside a sentence, so the phrase is a name (:data:`_NAME_MODIFIER_RE`)."""
    out = []
    for m in _PHRASE_RE.finditer(need or ""):
        modifier, head = m.group(1).casefold(), m.group(2).casefold()
        if modifier not in _STOP and head not in _STOP and len(stem(modifier)) >= 5:
            named = bool(_NAME_MODIFIER_RE.fullmatch(m.group(1))) and not _SENTENCE_START_RE.search(
                need[max(0, m.start() - 3):m.start()])
            out.append((stem(modifier), head, named))
    return tuple(dict.fromkeys(out))


def compound_collision(phrases: Sequence[tuple[str, str, bool]], words: frozenset[str]) -> bool:
    """Does a profile (its :func:`word_tokens`) meet one of the need's phrases only through a compound that
    shares the modifier but not the head — "Freiwilligendienst" for "Freiwillige Feuerwehr", a false
    friend? Not when the profile has the head (in any word), nor, unless the phrase is a name, the modifier
    as a word of its own ("faire Produkte" meet "faire Beschaffung"; "Freiwillige" in a volunteering fair's
    text do not meet the Freiwillige Feuerwehr)."""
    for root, head, named in phrases:
        if any(head in w for w in words) or (
                not named and any(stem(w) == root for w in words if w.startswith(root))):
            continue
        if any(w.startswith(root) and len(w) >= len(root) + 5 for w in words):
            return True
    return False


class WordIndex:
    """Which texts use which surface words (:func:`word_tokens`): :func:`compound_collision` for many
    texts at once, without a Python loop over them.

    The vocabulary is one sorted string of words (a word per line, so that prefix and substring
    searches are single regular-expression scans), ``starts`` each word's offset in it, and for each
    word the rows that use it (``rows[indptr[j]:indptr[j + 1]]``, ascending). Built at fit and kept in
    the persisted index, so a query never tokenises the catalog.
    """

    def __init__(self, vocabulary: str, starts: np.ndarray, indptr: np.ndarray, rows: np.ndarray):
        self.vocabulary = vocabulary
        self.starts = starts
        self.indptr = indptr
        self.rows = rows

    @classmethod
    def fit(cls, texts: Sequence[str]) -> WordIndex:
        words = [frozenset(word_tokens(t)) for t in texts]
        vocab = sorted(frozenset().union(*words))
        pos = {w: j for j, w in enumerate(vocab)}
        counts = np.fromiter((len(ws) for ws in words), dtype=np.int64, count=len(words))
        ids = np.fromiter((pos[w] for ws in words for w in ws), dtype=np.int64, count=int(counts.sum()))
        owners = np.repeat(np.arange(len(words), dtype=np.int32), counts)
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(ids, minlength=len(vocab)), out=indptr[1:])
        starts = np.zeros(len(vocab), dtype=np.int64)
        if vocab:
            np.cumsum(np.fromiter((len(w) + 1 for w in vocab[:-1]), dtype=np.int64, count=len(vocab) - 1),
                      out=starts[1:])
        return cls("\n".join(vocab), starts, indptr, owners[np.lexsort((owners, ids))])

    def _ids(self, pattern: str) -> list[tuple[int, str]]:
        """(word id, match) of each match of ``pattern`` in the vocabulary (a match never spans two lines)."""
        if not self.vocabulary:
            return []
        found = [(m.start(), m.group(0)) for m in re.finditer(pattern, self.vocabulary, re.M)]
        ids = np.searchsorted(self.starts, [at for at, _ in found], side="right") - 1
        return [(int(j), w) for j, (_, w) in zip(ids, found)]

    def _members(self, ids: Sequence[int], rows: slice) -> np.ndarray:
        """True for the rows of ``rows`` that use one of the words ``ids``."""
        out = np.zeros(rows.stop - rows.start, dtype=bool)
        if ids:
            found = np.concatenate([self.rows[self.indptr[j] : self.indptr[j + 1]] for j in ids])
            out[found[(found >= rows.start) & (found < rows.stop)] - rows.start] = True
        return out

    def collisions(self, phrases: Sequence[tuple[str, str, bool]], rows: slice,
                   memo: dict[tuple[str, str, bool], np.ndarray] | None = None) -> np.ndarray:
        """:func:`compound_collision` of ``phrases`` with each text of ``rows`` (a boolean per row);
        ``memo`` keeps each phrase's rows for further calls on the same ``rows``."""
        out = np.zeros(rows.stop - rows.start, dtype=bool)
        for phrase in phrases:
            hit = memo.get(phrase) if memo is not None else None
            if hit is None:
                hit = self._collisions(*phrase, rows)
                if memo is not None:
                    memo[phrase] = hit
            out |= hit
        return out

    def _collisions(self, root: str, head: str, named: bool, rows: slice) -> np.ndarray:
        prefixed = self._ids(f"^{re.escape(root)}[^\n]*")
        compounds = [j for j, w in prefixed if len(w) >= len(root) + 5]
        if not compounds:
            return np.zeros(rows.stop - rows.start, dtype=bool)
        # the head inside any word, or (unless the phrase is a name) the modifier as a word of its own
        fine = {j for j, _ in self._ids(re.escape(head))}
        if not named:
            fine |= {j for j, w in prefixed if stem(w) == root}
        return self._members(compounds, rows) & ~self._members(sorted(fine), rows)


def _stem_analyzer(text: str) -> list[str]:
    toks = [stem(t) for t in word_tokens(text)]
    return toks + [f"{a} {b}" for a, b in zip(toks, toks[1:])]


class TextCounts:
    """Term counts of texts over a growing vocabulary, kept so that a refit counts only new texts.

    ``analyzer`` is a scikit-learn analyzer (``CountVectorizer(...).build_analyzer()``): the tokens
    are exactly those a vectorizer would count. Rows are stored per distinct text; :meth:`retain`
    drops the texts a catalog no longer holds. Thread-safe: a refit may count while an older
    index transforms queries (which never touch the shared state).
    """

    def __init__(self, analyzer: Callable[[str], list[str]]):
        self.analyzer = analyzer
        self._vocabulary: dict[str, int] | None = {}
        self._vocabulary_terms: Sequence[str] = ()   # the vocabulary by id, while the dict is not built
        self._rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        # rows read from a pickle, kept packed (one CSR-like triple, no per-text arrays) until asked for
        self._packed: tuple[Sequence[str], np.ndarray, np.ndarray, np.ndarray] | None = None
        self._packed_pos: dict[str, int] | None = None
        self._lock = threading.Lock()

    @property
    def vocabulary(self) -> dict[str, int]:
        """Term → id (ids in the order terms were first seen). Read from a pickle, it is built when
        first asked for: by the next refit, not at start-up."""
        vocab = self._vocabulary
        if vocab is None:
            with self._lock:
                if self._vocabulary is None:
                    self._vocabulary = {t: i for i, t in enumerate(self._vocabulary_terms)}
                    self._vocabulary_terms = ()
                vocab = self._vocabulary
        return vocab

    def __getstate__(self) -> dict:
        # a lock cannot be pickled (fitted matchers are cached on disk by bench/); the rows are packed
        # into one column of texts and three arrays, so that a persisted index holds no per-text objects
        with self._lock:
            items = list(self._rows.items())
            base = self._packed
        lengths = [r[0].size for _, r in items]
        ids = np.concatenate([r[0] for _, r in items]).astype(np.int32) if items else np.zeros(0, np.int32)
        counts = np.concatenate([r[1] for _, r in items]).astype(np.int32) if items else np.zeros(0, np.int32)
        texts = PackedColumn.of_texts(t for t, _ in items)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        if base is not None:   # read from a pickle and counted more since: the packed rows first
            texts = packed(base[0], texts=True).extended(texts)
            indptr = np.concatenate([base[1], base[1][-1] + indptr[1:]])
            ids, counts = np.concatenate([base[2], ids]), np.concatenate([base[3], counts])
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_rows", "_packed", "_packed_pos")}
        state["_packed_rows"] = (texts, indptr, ids, counts)
        terms = self._vocabulary_terms if self._vocabulary is None else list(self._vocabulary)
        state["_vocabulary"], state["_vocabulary_terms"] = None, packed(terms, texts=True)
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        rows = state.pop("_packed_rows", None)
        if "vocabulary" in state:   # pickled by an older version
            state["_vocabulary"], state["_vocabulary_terms"] = state.pop("vocabulary"), ()
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._rows = state.get("_rows", {})
        self._packed, self._packed_pos = rows, None

    def _row_of(self, text: str) -> tuple[np.ndarray, np.ndarray] | None:
        found = self._rows.get(text)
        if found is None and self._packed is not None:
            texts, indptr, ids, counts = self._packed
            if self._packed_pos is None:  # built on the first refit, not at start-up
                self._packed_pos = {t: i for i, t in enumerate(texts)}
            i = self._packed_pos.get(text)
            if i is not None:
                a, b = indptr[i], indptr[i + 1]
                found = (ids[a:b].astype(np.int64), counts[a:b].astype(np.int64))
        return found

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(term ids, counts) of ``text``, counting it first if it is new."""
        found = self._row_of(text)
        if found is not None:
            return found
        counted = Counter(self.analyzer(text))
        terms = list(counted)
        vocab = self.vocabulary
        with self._lock:
            known = list(map(vocab.get, terms))  # a C loop; most terms of a catalog are known after its first texts
            if None in known:
                for j, term in enumerate(terms):
                    if known[j] is None:
                        known[j] = vocab.setdefault(term, len(vocab))
            ids = np.array(known, dtype=np.int64)
            counts = np.fromiter(counted.values(), dtype=np.int64, count=len(counted))
            order = np.argsort(ids)
            self._rows[text] = found = (ids[order], counts[order])
        return found

    def matrix(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Counts of ``texts`` (rows) over the whole vocabulary so far (columns)."""
        rows = [self.row(t) for t in texts]
        indptr = np.concatenate([[0], np.cumsum([r[0].size for r in rows])]).astype(np.int64)
        indices = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.int64)
        data = np.concatenate([r[1] for r in rows]).astype(np.float32) if rows else np.zeros(0, np.float32)
        return sparse.csr_matrix((data, indices, indptr), shape=(len(rows), len(self.vocabulary)))

    def retain(self, texts: Sequence[str]) -> None:
        """Forget the counts of every text not in ``texts`` (the vocabulary only grows)."""
        keep = set(texts)
        with self._lock:
            if self._packed is not None:  # unpack what is kept: a refit after a start from a stored index
                self._rows = {t: r for t in keep if (r := self._row_of(t)) is not None}
                self._packed, self._packed_pos = None, None
            else:
                self._rows = {t: r for t, r in self._rows.items() if t in keep}


class _TfidfView:
    """One TF-IDF view of the catalog: what ``TfidfVectorizer(sublinear_tf=True, min_df, max_df)``
    fitted on the texts gives (the same matrix up to column order), built from kept counts:
    document-frequency pruning on the counts, then scikit-learn's ``TfidfTransformer``."""

    def __init__(self, counts: TextCounts, texts: Sequence[str], min_df: int, max_df: float):
        matrix = counts.matrix(texts)
        df = np.bincount(matrix.indices, minlength=matrix.shape[1])
        keep = np.flatnonzero((df >= min_df) & (df <= max_df * max(matrix.shape[0], 1)))
        if keep.size == 0:
            raise ValueError("empty vocabulary")
        self.analyzer = counts.analyzer
        names = np.empty(matrix.shape[1], dtype=object)
        for term, i in list(counts.vocabulary.items()):
            if i < names.size:
                names[i] = term
        keep = keep[np.argsort(names[keep], kind="stable")]  # columns in the vectorizer's (alphabetical) order
        self.feature_names_ = names[keep]
        self._column: dict[str, int] | None = None
        self._words: dict[str, np.ndarray] | None = None
        self.tfidf_ = TfidfTransformer(sublinear_tf=True).fit(matrix[:, keep])
        self.matrix_ = self.tfidf_.transform(matrix[:, keep]).astype(np.float32).tocsr()

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """TF-IDF vectors of new texts (terms the catalog does not have are ignored)."""
        rows = []
        get = self.column_.get
        if self.analyzer is char_wb_analyzer:
            # n-grams never cross a space: a text's columns are its words' columns in order, and words
            # repeat across a batch of requests (the same tokens, one dict look-up per word instead of ~12)
            of_word = self._word_columns
            for text in texts:
                words = _CHAR_WB_PREPROCESS(text).split()
                rows.append(np.concatenate([of_word(w) for w in words]) if words else np.zeros(0, np.int64))
        else:
            for text in texts:
                tokens = self.analyzer(text)
                ids = np.fromiter(map(get, tokens, repeat(-1, len(tokens))), dtype=np.int64, count=len(tokens))
                rows.append(ids[ids >= 0])
        indptr = np.concatenate([[0], np.cumsum([r.size for r in rows])]).astype(np.int64)
        indices = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        counts = sparse.csr_matrix((np.ones(indices.size, dtype=np.float32), indices, indptr),
                                   shape=(len(texts), len(self.column_)))
        counts.sum_duplicates()
        # TfidfTransformer.transform's own steps (sublinear tf, idf, l2 norm) without its input
        # validation, which cost most of a one-query transform; the result is the same (pinned by a test)
        np.log(counts.data, counts.data)
        counts.data += 1.0
        counts.data *= self.tfidf_.idf_[counts.indices]
        # what normalize(norm="l2") runs after its checks (~2 µs instead of ~170 µs a query). Private to
        # scikit-learn: pyproject.toml bounds its version and tests/test_private_apis.py pins the result
        inplace_csr_row_normalize_l2(counts)
        return counts

    def _word_columns(self, word: str) -> np.ndarray:
        """The known columns of one lower-cased word's character n-grams (kept per view: columns are its own)."""
        cache = self._words
        if cache is None:
            cache = self._words = {}
        found = cache.get(word)
        if found is None:
            tokens = _char_wb_word(word)
            get = self.column_.get
            ids = np.fromiter(map(get, tokens, repeat(-1, len(tokens))), dtype=np.int64, count=len(tokens))
            found = ids[ids >= 0]
            if len(cache) < _WORD_CACHE:
                cache[word] = found
        return found

    @property
    def column_(self) -> dict[str, int]:
        """Term → column (frozen at fit: later counting cannot change it); built on first use."""
        column = self._column
        if column is None:
            column = self._column = {t: j for j, t in enumerate(self.feature_names_)}
        return column

    def get_feature_names_out(self) -> np.ndarray:
        return self.feature_names_

    def __getstate__(self) -> dict:
        # the fitted matrix is the index's to keep (``word_matrix_``) or to drop (the character view's);
        # the column of each term is rebuilt from the names when first needed
        return {k: v for k, v in self.__dict__.items() if k not in ("matrix_", "_words")} | {"_column": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({k: v for k, v in state.items() if k != "column_"})   # (older pickles held it)
        self._column = None
        self._words = None


_WORD_CACHE = 200_000  # words whose columns a view keeps (a catalog's and its queries' vocabulary)
_CHAR_WB = CountVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True)
_CHAR_WB_PREPROCESS = _CHAR_WB.build_preprocessor()
_CHAR_WB_WORD = CountVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=False).build_analyzer()


@lru_cache(maxsize=500_000)
def _char_wb_word(word: str) -> tuple[str, ...]:
    # the public analyzer on one word already lower-cased by _CHAR_WB_PREPROCESS; only a word the
    # cache has not seen pays its call overhead (~0.5 µs of ~5 µs)
    return tuple(_CHAR_WB_WORD(word))


def char_wb_analyzer(text: str) -> list[str]:
    """scikit-learn's ``char_wb`` analyzer (3–5, lower-cased), memoised per word.

    ``char_wb`` n-grams never cross a space, so a text's n-grams are its words' n-grams in
    order; words repeat across a catalog and its queries, and generating n-grams in Python
    was most of the cost of reading a text (identical tokens, pinned by a test).
    """
    out: list[str] = []
    for word in _CHAR_WB_PREPROCESS(text).split():
        out.extend(_char_wb_word(word))
    return out


def char_counts() -> TextCounts:
    """Counts of character n-grams within word boundaries (3–5, lower-cased)."""
    return TextCounts(char_wb_analyzer)


def word_counts() -> TextCounts:
    """Counts of Snowball-stemmed words and word pairs without stop words."""
    return TextCounts(CountVectorizer(analyzer=_stem_analyzer).build_analyzer())


class LexicalIndex:
    """TF-IDF index over a list of texts (one per catalog entity).

    Follows scikit-learn's estimator contract: ``__init__`` stores options,
    ``fit`` learns, learned state ends in ``_``.

    ``fit(texts, reuse=previous_index)`` counts only the texts the previous
    index had not seen (the catalog after a few edits): the result is the
    same as fitting from scratch.
    """

    def __init__(self, char_weight: float = 0.5, min_df: int = 1, max_df: float = 0.5):
        self.char_weight = char_weight
        self.min_df = min_df
        self.max_df = max_df

    def fit(self, texts: Sequence[str], reuse: LexicalIndex | None = None,
            blocks: Sequence[slice] | None = None) -> LexicalIndex:
        """``blocks``: contiguous row ranges that :meth:`similarity` is asked for alone (the
        matcher's kinds); each is kept column-major on its own, so asking for one reads only it."""
        texts = list(texts)
        corpus = texts or [""]
        if reuse is not None and hasattr(reuse, "counts_"):
            self.counts_ = reuse.counts_
        else:
            self.counts_ = (char_counts(), word_counts())
        # n-grams found in most profiles ("ung ", " de") tell nothing apart and would make every
        # query touch every row: max_df drops them
        try:
            self.char_ = _TfidfView(self.counts_[0], corpus, self.min_df, self.max_df if len(texts) >= 50 else 1.0)
            self.char_matrix_ = self.char_.matrix_
        except ValueError:  # no n-grams at all (an empty catalog)
            self.char_ = None
            self.char_matrix_ = sparse.csr_matrix((len(corpus), 0), dtype=np.float32)
        try:
            self.word_ = _TfidfView(self.counts_[1], corpus, self.min_df, 1.0)
            self.word_matrix_ = self.word_.matrix_
        except ValueError:  # empty vocabulary (a catalog without words)
            self.word_ = None
            self.word_matrix_ = None
        for counts in self.counts_:
            counts.retain(corpus)
        self.texts_ = texts
        self._surface: dict[int, dict[str, str]] = {}
        bounds = sorted({0, len(corpus), *(b for s in blocks or () for b in (s.start, s.stop))})
        self.blocks_ = [slice(a, b) for a, b in zip(bounds, bounds[1:])]
        self.char_csc_ = [_rows(self.char_matrix_, s).tocsc() for s in self.blocks_]
        self.word_csc_ = ([_rows(self.word_matrix_, s).tocsc() for s in self.blocks_]
                          if self.word_matrix_ is not None else None)
        self.word_names_ = self.word_.get_feature_names_out() if self.word_ is not None else np.array([])
        self.n_ = len(texts)
        return self

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["texts_"] = packed(self.texts_, texts=True)   # read one row at a time (matched terms)
        state["_surface"] = {}
        state["char_matrix_"] = None   # only a fit reads it (to build char_csc_, which is kept)
        return state

    def _check(self) -> None:
        if not hasattr(self, "counts_"):
            raise NotFittedError("LexicalIndex is not fitted: call fit(texts) first")

    def vectors(self, text: str) -> tuple:
        """The text's (character, word) TF-IDF vectors, to reuse for similarity and matched terms."""
        self._check()
        char = self.char_.transform([text]) if self.char_ is not None else sparse.csr_matrix((1, 0), dtype=np.float32)
        return char, (self.word_.transform([text]) if self.word_ is not None else None)

    def similarity(self, text: str, vectors: tuple | None = None, rows: slice | None = None) -> np.ndarray:
        """Cosine similarity of ``text`` to every fitted text, or to the fitted texts ``rows``.

        Only the query's own n-grams are touched: the fitted matrices are kept
        column-major, so this costs the size of those columns, not of the catalog;
        ``rows`` given to ``fit`` as a block reads that block only.
        """
        char_vec, word_vec = vectors if vectors is not None else self.vectors(text)
        wanted = range(len(self.blocks_)) if rows is None else \
            [k for k, s in enumerate(self.blocks_) if s.start < rows.stop and rows.start < s.stop]

        def dot(blocks: list, vec) -> np.ndarray:
            return np.concatenate([_sparse_dot(blocks[k], vec) for k in wanted]) if wanted else np.zeros(0, np.float32)

        sim = self.char_weight * dot(self.char_csc_, char_vec)
        if word_vec is not None:
            sim += (1 - self.char_weight) * dot(self.word_csc_, word_vec)
        if rows is not None and wanted:
            offset = self.blocks_[wanted[0]].start
            sim = sim[rows.start - offset : rows.stop - offset]
        return sim.astype(np.float32)

    def similarity_matrix(self, char: sparse.csr_matrix, word: sparse.csr_matrix | None,
                          rows: slice) -> np.ndarray:
        """Cosine similarity of several texts' vectors (rows of ``char``/``word``, from
        :meth:`vectors` or the views' ``transform``) to the fitted texts ``rows``: (texts, rows).

        One text reads only its own n-grams' columns (:meth:`similarity`); several are one
        sparse product with the block's columns."""
        self._check()
        if char.shape[0] == 1:
            return self.similarity("", (char, word), rows=rows)[None, :]
        wanted = [k for k, s in enumerate(self.blocks_) if s.start < rows.stop and rows.start < s.stop]

        def product(blocks: list, vecs) -> np.ndarray:
            # a CSC block transposed is CSR (terms × rows) without a copy
            return np.hstack([(vecs @ blocks[k].T).toarray() for k in wanted]) if wanted \
                else np.zeros((vecs.shape[0], 0), np.float32)

        sim = self.char_weight * product(self.char_csc_, char)
        if word is not None:
            sim += (1 - self.char_weight) * product(self.word_csc_, word)
        if wanted:
            offset = self.blocks_[wanted[0]].start
            sim = sim[:, rows.start - offset : rows.stop - offset]
        return sim.astype(np.float32)

    def _surface_forms(self, row: int) -> dict[str, str]:
        """Stem → the word as fitted text ``row`` writes it most often (what an explanation shows).
        Kept per row: the same profiles are explained again and again."""
        cached = self._surface.get(row)
        if cached is None:
            forms: dict[str, Counter[str]] = {}
            for tok in word_tokens(self.texts_[row]):
                forms.setdefault(stem(tok), Counter())[tok] += 1
            if len(self._surface) >= 20_000:
                self._surface.clear()
            cached = self._surface[row] = {s: c.most_common(1)[0][0] for s, c in forms.items()}
        return cached

    def matched_terms(self, text: str, row: int, top: int = 5, query_vec=None) -> list[str]:
        """Words the query and fitted text ``row`` share, most distinctive first.

        ``query_vec`` is the query's word vector when the caller already has it
        (explaining several results of one query).
        """
        self._check()
        if self.word_ is None:
            return []
        q = (self.word_.transform([text]) if query_vec is None else query_vec).tocsr()
        m = self.word_matrix_
        cols, vals = m.indices[m.indptr[row] : m.indptr[row + 1]], m.data[m.indptr[row] : m.indptr[row + 1]]
        shared, in_row, in_query = np.intersect1d(cols, q.indices, assume_unique=True, return_indices=True)
        if not shared.size:
            return []
        weights = vals[in_row] * q.data[in_query]
        out: list[str] = []
        surface = self._surface_forms(row)
        for _, col in sorted(zip(weights.tolist(), shared.tolist()), reverse=True):
            term = self.word_names_[col]
            if " " in term:
                continue
            word = surface.get(term, term)
            if word not in out:
                out.append(word)
            if len(out) >= top:
                break
        return out


def _rows(matrix: sparse.csr_matrix, rows: slice) -> sparse.csr_matrix:
    """Rows ``rows`` of a CSR matrix as a view of its arrays (slicing would copy them first)."""
    ptr = matrix.indptr[rows.start : rows.stop + 1]
    a, b = int(ptr[0]), int(ptr[-1])
    return sparse.csr_matrix((matrix.data[a:b], matrix.indices[a:b], ptr - a),
                             shape=(rows.stop - rows.start, matrix.shape[1]), copy=False)


def _sparse_dot(matrix_csc, query) -> np.ndarray:
    """``matrix @ query.T`` for a one-row sparse query, reading only the query's columns."""
    q = query.tocsr()
    if q.nnz == 0:
        return np.zeros(matrix_csc.shape[0], dtype=np.float32)
    return np.asarray(matrix_csc[:, q.indices] @ q.data, dtype=np.float32).ravel()
