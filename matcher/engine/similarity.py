"""Pure numpy helpers: exact top-k, per-query standardisation, segment maxima."""

from __future__ import annotations

import numpy as np

__all__ = ["mixed_top_k", "top_k", "zscore", "zscore_rows", "segment_max"]


def top_k(scores: np.ndarray, k: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` highest scores (among ``mask`` if given), best first.

    Exact: ``np.argpartition`` then a stable sort of the k survivors; ties are
    broken by the lower index, exactly like a stable full sort of ``-scores``.
    """
    scores = np.asarray(scores)
    idx = np.flatnonzero(mask) if mask is not None else np.arange(scores.shape[0])
    if k <= 0 or idx.size == 0:
        return np.zeros(0, dtype=np.int64)
    sub = scores[idx]
    if k < idx.size:
        # argpartition alone may split equal scores at the boundary arbitrarily;
        # keep every candidate tied with the k-th score, then sort stably.
        kth = np.partition(sub, idx.size - k)[idx.size - k]
        keep = np.flatnonzero(sub >= kth)
        idx, sub = idx[keep], sub[keep]
    order = np.lexsort((idx, -sub))[:k]
    return idx[order].astype(np.int64)


def mixed_top_k(scores: np.ndarray, k: int, mask: np.ndarray, groups: np.ndarray, wanted: tuple,
                eligible: np.ndarray) -> np.ndarray:
    """The top ``k`` by score, then, for each group of ``wanted`` without an ``eligible`` member in it, its
    best ``eligible`` candidate in place of the lowest-ranked one of a group that holds more than one place.

    The result stays ordered by score (a mixed-in candidate scored lower than those it joins)."""
    best = top_k(scores, k, mask)
    chosen = [int(i) for i in best]
    mixed_in: set[int] = set()
    for group in wanted:
        if any(groups[i] == group and eligible[i] for i in chosen):
            continue
        pool = np.flatnonzero(mask & eligible & (groups == group))
        if not pool.size:
            continue
        counts = {g: sum(groups[i] == g for i in chosen) for g in set(groups[chosen].tolist())}
        # the lowest-ranked result whose group keeps another place
        out = next((i for i in reversed(chosen) if counts[groups[i]] > 1 and i not in mixed_in), None)
        if out is None:
            continue
        chosen.remove(out)
        chosen.append(int(pool[np.argmax(scores[pool])]))
        mixed_in.add(chosen[-1])
    chosen_arr = np.array(chosen, dtype=np.int64)
    return chosen_arr[np.lexsort((chosen_arr, -scores[chosen_arr]))]


def zscore(x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Standardise ``x`` by the mean and std of the masked entries (std 0 → zeros)."""
    x = np.asarray(x, dtype=np.float32)
    ref = x[mask] if mask is not None else x
    if ref.size == 0:
        return np.zeros_like(x)
    mu, sd = float(ref.mean()), float(ref.std())
    if sd < 1e-9:
        return np.zeros_like(x)
    return (x - mu) / sd


def zscore_rows(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row-wise :func:`zscore`: each row standardised by its own masked entries (float32; std 0 → zeros)."""
    x = np.asarray(x, dtype=np.float32)
    out = np.zeros(x.shape, dtype=np.float32)
    if x.shape[0] == 0:
        return out
    full = mask.all(axis=1)
    if full.any():  # the usual case in a batch: every candidate counts
        mu = x[full].mean(axis=1, keepdims=True)
        sd = x[full].std(axis=1, keepdims=True)
        ok = sd[:, 0] >= 1e-9
        rows = np.flatnonzero(full)[ok]
        out[rows] = (x[rows] - mu[ok]) / sd[ok]
    for r in np.flatnonzero(~full):
        out[r] = zscore(x[r], mask[r])
    return out


def segment_max(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Maximum of each contiguous segment; ``starts`` are the segment offsets (non-empty segments)."""
    return np.maximum.reduceat(values, starts)
