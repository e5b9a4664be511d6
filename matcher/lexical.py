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
from functools import lru_cache
from collections.abc import Sequence

import numpy as np
import snowballstemmer
from sklearn.feature_extraction.text import TfidfVectorizer
from stop_words import get_stop_words

from .errors import NotFittedError

__all__ = ["LexicalIndex", "word_tokens"]

_WORD_RE = re.compile(r"[^\W\d_][\w\-]*[^\W_]|[^\W\d_]", re.UNICODE)
_STOP = frozenset(w.casefold() for w in get_stop_words("de") + get_stop_words("en")) | {
    "e.v", "ev", "gmbh", "themen", "stadt", "verein", "vereine", "wir", "uns", "unser", "unsere", "ca",
}
_STEMMER = snowballstemmer.stemmer("german")
_STEMMER_LOCK = threading.Lock()


def word_tokens(text: str) -> list[str]:
    """Lower-cased, stop-word-free word tokens (surface forms)."""
    return [t for t in (m.group(0).casefold() for m in _WORD_RE.finditer(text)) if t not in _STOP and len(t) > 2]


@lru_cache(maxsize=500_000)
def stem(word: str) -> str:
    """Snowball German stem of a lower-cased word (memoised: Snowball in pure Python costs ~0.2 ms a
    word, and a catalog repeats its vocabulary many times over)."""
    with _STEMMER_LOCK:  # a Snowball stemmer object keeps its state between calls: one thread at a time
        return _STEMMER.stemWord(word)


def _stem_analyzer(text: str) -> list[str]:
    toks = [stem(t) for t in word_tokens(text)]
    return toks + [f"{a} {b}" for a, b in zip(toks, toks[1:])]


class LexicalIndex:
    """TF-IDF index over a list of texts (one per catalog entity).

    Follows scikit-learn's estimator contract: ``__init__`` stores options,
    ``fit`` learns, learned state ends in ``_``.
    """

    def __init__(self, char_weight: float = 0.5, min_df: int = 1, max_df: float = 0.5):
        self.char_weight = char_weight
        self.min_df = min_df
        self.max_df = max_df

    def fit(self, texts: Sequence[str]) -> "LexicalIndex":
        texts = list(texts)
        # n-grams found in most profiles ("ung ", " de") tell nothing apart and would make every
        # query touch every row: max_df drops them
        self.char_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=self.min_df,
                                     max_df=self.max_df if len(texts) >= 50 else 1.0, lowercase=True, dtype=np.float32)
        self.word_ = TfidfVectorizer(analyzer=_stem_analyzer, sublinear_tf=True, min_df=self.min_df, dtype=np.float32)
        corpus = texts or [""]
        self.char_matrix_ = self.char_.fit_transform(corpus)
        try:
            self.word_matrix_ = self.word_.fit_transform(corpus)
        except ValueError:  # empty vocabulary (a catalog without words)
            self.word_ = None
            self.word_matrix_ = None
        surface: dict[str, Counter[str]] = {}
        for t in texts:
            for tok in word_tokens(t):
                surface.setdefault(stem(tok), Counter())[tok] += 1
        self.surface_ = {s: c.most_common(1)[0][0] for s, c in surface.items()}
        self.char_csc_ = self.char_matrix_.tocsc()
        self.word_csc_ = self.word_matrix_.tocsc() if self.word_matrix_ is not None else None
        self.word_names_ = self.word_.get_feature_names_out() if self.word_ is not None else np.array([])
        self.n_ = len(texts)
        return self

    def _check(self) -> None:
        if not hasattr(self, "char_"):
            raise NotFittedError("LexicalIndex is not fitted: call fit(texts) first")

    def vectors(self, text: str) -> tuple:
        """The text's (character, word) TF-IDF vectors, to reuse for similarity and matched terms."""
        self._check()
        return self.char_.transform([text]), (self.word_.transform([text]) if self.word_ is not None else None)

    def similarity(self, text: str, vectors: tuple | None = None) -> np.ndarray:
        """Cosine similarity of ``text`` to every fitted text.

        Only the query's own n-grams are touched: the fitted matrices are kept
        column-major, so this costs the size of those columns, not of the catalog.
        """
        char_vec, word_vec = vectors if vectors is not None else self.vectors(text)
        sim = self.char_weight * _sparse_dot(self.char_csc_, char_vec)
        if word_vec is not None:
            sim += (1 - self.char_weight) * _sparse_dot(self.word_csc_, word_vec)
        return sim.astype(np.float32)

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
        weights = vals[in_row] * q.data[in_query]
        out: list[str] = []
        for _, col in sorted(zip(weights.tolist(), shared.tolist()), reverse=True):
            term = self.word_names_[col]
            if " " in term:
                continue
            word = self.surface_.get(term, term)
            if word not in out:
                out.append(word)
            if len(out) >= top:
                break
        return out


def _sparse_dot(matrix_csc, query) -> np.ndarray:
    """``matrix @ query.T`` for a one-row sparse query, reading only the query's columns."""
    q = query.tocsr()
    if q.nnz == 0:
        return np.zeros(matrix_csc.shape[0], dtype=np.float32)
    return np.asarray(matrix_csc[:, q.indices] @ q.data, dtype=np.float32).ravel()
