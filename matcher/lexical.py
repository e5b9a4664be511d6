"""Lexical similarity with scikit-learn TF-IDF, fitted on the catalog.

Two views of a text: character n-grams within word boundaries (``char_wb``,
3–5), which cope with German compounds ("Klimapartnerschaft" shares
"partnerschaft" with "Städtepartnerschaft"), and stemmed words (Snowball
German stemmer, German + English stop words, uni- and bigrams), which give
the matched terms an explanation can show.
"""

from __future__ import annotations

import re
from collections import Counter
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


def word_tokens(text: str) -> list[str]:
    """Lower-cased, stop-word-free word tokens (surface forms)."""
    return [t for t in (m.group(0).casefold() for m in _WORD_RE.finditer(text)) if t not in _STOP and len(t) > 2]


def _stem_analyzer(text: str) -> list[str]:
    toks = [_STEMMER.stemWord(t) for t in word_tokens(text)]
    return toks + [f"{a} {b}" for a, b in zip(toks, toks[1:])]


class LexicalIndex:
    """TF-IDF index over a list of texts (one per catalog entity).

    Follows scikit-learn's estimator contract: ``__init__`` stores options,
    ``fit`` learns, learned state ends in ``_``.
    """

    def __init__(self, char_weight: float = 0.5, min_df: int = 1):
        self.char_weight = char_weight
        self.min_df = min_df

    def fit(self, texts: Sequence[str]) -> "LexicalIndex":
        texts = list(texts)
        self.char_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=self.min_df,
                                     lowercase=True, dtype=np.float32)
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
                surface.setdefault(_STEMMER.stemWord(tok), Counter())[tok] += 1
        self.surface_ = {s: c.most_common(1)[0][0] for s, c in surface.items()}
        self.n_ = len(texts)
        return self

    def _check(self) -> None:
        if not hasattr(self, "char_"):
            raise NotFittedError("LexicalIndex is not fitted: call fit(texts) first")

    def similarity(self, text: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Cosine similarity of ``text`` to every fitted text (or the given rows)."""
        self._check()
        c = self.char_.transform([text])
        char_m = self.char_matrix_ if rows is None else self.char_matrix_[rows]
        sim = self.char_weight * np.asarray((char_m @ c.T).todense()).ravel()
        if self.word_ is not None:
            w = self.word_.transform([text])
            word_m = self.word_matrix_ if rows is None else self.word_matrix_[rows]
            sim += (1 - self.char_weight) * np.asarray((word_m @ w.T).todense()).ravel()
        return sim.astype(np.float32)

    def matched_terms(self, text: str, row: int, top: int = 5) -> list[str]:
        """Words the query and fitted text ``row`` share, most distinctive first."""
        self._check()
        if self.word_ is None:
            return []
        q = self.word_.transform([text])
        d = self.word_matrix_[row]
        prod = q.multiply(d).tocoo()
        names = self.word_.get_feature_names_out()
        pairs = sorted(zip(prod.data, prod.col), reverse=True)
        out: list[str] = []
        for _, col in pairs:
            term = names[col]
            if " " in term:
                continue
            word = self.surface_.get(term, term)
            if word not in out:
                out.append(word)
            if len(out) >= top:
                break
        return out
