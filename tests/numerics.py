"""Comparing floating-point results with the tolerance the code promises, so tests hold on any x86-64 machine.

Scores are float32 products computed by OpenBLAS, which picks its kernel for the CPU it runs on
(Haswell, SkylakeX, Zen, ...), and by the embedding engines' SIMD code. Another kernel, another
thread count or another block size sums the same terms in another order and the result differs in
its last bits: 3.2e-6 on scores of ~5 between one and two worker processes on an AMD EPYC. What the
code promises (issue 14) is scores to a relative 1e-5 and rankings in the same order except where
neighbouring scores are tied within that tolerance; :func:`assert_scores_close` and
:func:`assert_same_ranking` check exactly that, no more and no less.

``python tests/numerics.py KERNEL`` prints the BLAS libraries in effect (threadpoolctl) and exits
non-zero unless every OpenBLAS runs ``KERNEL``: ``make test-numerics`` checks with it that an
``OPENBLAS_CORETYPE`` override really took effect before it runs the tests under it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import fields

import numpy as np

SCORE_RTOL = 1e-5  # what the engine promises for a score (issue 14)

# one query per task on the fixtures, and the day they are asked on: what the refit and index-file tests
# compare two matchers with (assert_same_answers)
FIXTURE_AS_OF_ISO = "2026-11-22"
FIXTURE_QUERIES = [
    {"task": "advisors", "text": "Faire Beschaffung von Dienstkleidung", "city": "Essen"},
    {"task": "partners", "from": "org-142"},
    {"task": "events", "from": "org-101", "text": "Veranstaltung zu Klimagerechtigkeit im Herbst"},
    {"task": "invitations", "from": "evt-113"},
]


def _row_scale(desired: np.ndarray) -> np.ndarray:
    """The largest finite |value| of each row (last axis), shaped to broadcast against ``desired``."""
    magnitude = np.where(np.isfinite(desired), np.abs(desired), 0.0)
    if magnitude.ndim == 0 or magnitude.shape[-1] == 0:
        return magnitude
    return magnitude.max(axis=-1, keepdims=True)


def assert_scores_close(actual, desired, *, rtol: float = SCORE_RTOL, scale: float | None = None,
                        err_msg: str = "") -> None:
    """Assert that two score arrays agree to ``rtol`` of the magnitude of their rows; masks exactly.

    A cell may differ from ``desired`` by ``rtol`` times the largest finite ``|desired|`` of its
    row (the last axis: one query's scores over its candidates; a 1-D array is one row), or of
    ``scale`` when given. Why not ``rtol`` of the cell itself: a fused score is a weighted sum of
    z-scored signals and products of ~400 float32 terms, and its rounding error is a few float32
    steps of those *terms*, not of the result. A cell near 0 in a row whose scores are ~5 carries
    an error of ~5 × 1e-7 whatever its own size; held to 1e-5 of itself (1e-7 for a cell of 0.01)
    it would fail on the next machine that sums in another order. For the row's largest cells the
    check is plain relative tolerance.

    Non-finite cells must be non-finite in the same places with the same value: ``-inf`` marks a
    candidate excluded by a hard filter, a decision and not a rounding, so it is compared exactly.

    Args:
        actual, desired: arrays (or scalars, or sequences) of the same shape.
        rtol: relative tolerance (default :data:`SCORE_RTOL`).
        scale: the magnitude the scores are held to, instead of each row's largest |value|
            (pass the whole score vector's when ``desired`` is a short excerpt of it).
        err_msg: added to the failure message.

    Raises:
        AssertionError: naming how many cells fail, the worst one, its difference and what was allowed.

    Example:
        >>> assert_scores_close([5.0, 0.01, -np.inf], [5.00002, 0.01003, -np.inf])
    """
    a = np.asarray(actual, dtype=np.float64)
    d = np.asarray(desired, dtype=np.float64)
    where = f" {err_msg}" if err_msg else ""
    if a.shape != d.shape:
        raise AssertionError(f"shapes differ: {a.shape} (actual) vs {d.shape} (desired).{where}")
    finite_a, finite_d = np.isfinite(a), np.isfinite(d)
    same_special = (a == d) | (np.isnan(a) & np.isnan(d))
    masks_differ = (finite_a != finite_d) | (~finite_a & ~finite_d & ~same_special)
    if masks_differ.any():
        first = tuple(int(i) for i in np.argwhere(masks_differ)[0])
        raise AssertionError(f"{int(masks_differ.sum())} cell(s) finite in one array and not in the other "
                             f"(or non-finite differently), first at {first}: {float(a[first])} (actual) vs "
                             f"{float(d[first])} (desired).{where}")
    magnitude = _row_scale(d) if scale is None else np.float64(abs(scale))
    allowed = rtol * np.broadcast_to(magnitude, d.shape)
    diff = np.where(finite_d, np.abs(a - np.where(finite_d, d, 0.0)), 0.0)
    over = diff > allowed
    if over.any():
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.where(over, diff - allowed, -1.0))),
                                                       d.shape))
        raise AssertionError(f"{int(over.sum())} of {d.size} score(s) differ by more than {rtol:g} of their "
                             f"row's magnitude; worst at {worst}: {float(a[worst])!r} (actual) vs {float(d[worst])!r} "
                             f"(desired), difference {diff[worst]:.3g}, allowed {allowed[worst]:.3g}.{where}")


def assert_same_ranking(actual: Sequence[tuple[str, float]], desired: Sequence[tuple[str, float]], *,
                        rtol: float = SCORE_RTOL, scale: float | None = None, truncated: bool = True,
                        err_msg: str = "") -> None:
    """Assert that two rankings agree: the same ids in the same order, except within ties.

    A tie is a run of neighbouring ``desired`` scores each within ``2 × rtol × scale`` of the
    next (both scores may move by ``rtol × scale``, so such a pair can swap on another machine);
    the ids of a tie must be the same set, in any order. The scores at each rank must agree as in
    :func:`assert_scores_close` (sorting moves no value by more than its largest perturbation).

    Args:
        actual, desired: ``(id, score)`` pairs, best first,
            e.g. ``[(r.entity_id, r.score) for r in ranking.results]``.
        rtol: relative tolerance (default :data:`SCORE_RTOL`).
        scale: the magnitude scores are held to (default: the largest finite |score| listed; pass
            the whole score vector's when the lists are a short top of it).
        truncated: the lists are the top ``k`` of longer rankings, so a tie at the end may go on
            past the cut and its places may hold other ids of (within tolerance) the same score.
        err_msg: added to the failure message.

    Raises:
        AssertionError: naming the first rank where the orders differ beyond a tie.
    """
    where = f" {err_msg}" if err_msg else ""
    ids_a, ids_d = [i for i, _ in actual], [i for i, _ in desired]
    if len(ids_a) != len(ids_d):
        raise AssertionError(f"{len(ids_a)} ranked (actual) vs {len(ids_d)} (desired).{where}")
    if len(set(ids_a)) != len(ids_a):
        raise AssertionError(f"an id is ranked twice: {ids_a}.{where}")
    if not ids_d:
        return
    s_a = np.array([s for _, s in actual], dtype=np.float64)
    s_d = np.array([s for _, s in desired], dtype=np.float64)
    magnitude = float(_row_scale(s_d)[0]) if scale is None else abs(scale)
    assert_scores_close(s_a, s_d, rtol=rtol, scale=magnitude, err_msg=f"(scores by rank){where}")
    gap = 2 * rtol * magnitude
    start = 0
    for end in range(1, len(ids_d) + 1):
        if end < len(ids_d) and (s_d[end - 1] == s_d[end] or s_d[end - 1] - s_d[end] <= gap):
            continue  # s_d[end] is tied with its predecessor: the run goes on
        cut = truncated and end == len(ids_d)
        if not cut and set(ids_a[start:end]) != set(ids_d[start:end]):
            ranks = f"rank {end}" if end == start + 1 else f"ranks {start + 1}-{end} (tied within {gap:.3g})"
            actual = list(zip(ids_a[start:end], s_a[start:end].tolist()))
            desired = list(zip(ids_d[start:end], s_d[start:end].tolist()))
            raise AssertionError(f"rankings differ at {ranks}: {actual} (actual) vs {desired} (desired).{where}")
        start = end


def assert_explanations_agree(actual, desired, *, rtol: float = SCORE_RTOL, err_msg: str = "") -> None:
    """Assert that two :class:`~matcher.engine.explain.Explanation` objects say the same.

    Words, terms, passages and languages must be equal; the contributions (rounded to 4 decimals
    by the engine) may differ by one step of that rounding plus the score tolerance, since two
    values a rounding apart can fall on either side of a rounding boundary.
    """
    where = f" {err_msg}" if err_msg else ""
    for f in fields(desired):
        if f.name == "contributions":
            continue
        if getattr(actual, f.name) != getattr(desired, f.name):
            raise AssertionError(f"explanations differ in {f.name}: {getattr(actual, f.name)!r} (actual) vs "
                                 f"{getattr(desired, f.name)!r} (desired).{where}")
    a, d = actual.contributions, desired.contributions
    if a.keys() != d.keys():
        raise AssertionError(f"explanations differ in the signals that contribute: {sorted(a)} vs {sorted(d)}.{where}")
    step = 1e-4  # the rounding of a contribution
    off = {k: (a[k], d[k]) for k in d if abs(a[k] - d[k]) > step + rtol * max(1.0, abs(d[k]))}
    if off:
        raise AssertionError(f"contributions differ by more than a rounding step: {off} (actual, desired).{where}")


# ---------------------------------------------------------------- the BLAS in effect
def blas_in_effect() -> list[dict]:
    """threadpoolctl's view of the loaded BLAS and OpenMP libraries (numpy's and scipy's OpenBLAS,
    the embedding engine's libgomp): one dict each with api, kernel, threads and file name."""
    from threadpoolctl import threadpool_info

    return [{"api": info["internal_api"], "kernel": info.get("architecture") or "-",
             "threads": info["num_threads"], "file": os.path.basename(info["filepath"])}
            for info in threadpool_info()]


def describe_blas() -> str:
    """One line: the kernel and thread count of each library in effect, with the variables asked for."""
    asked = " ".join(f"{v}={os.environ[v]}" for v in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
                     if v in os.environ) or "no override"
    libs = "; ".join(f"{lib['api']} {lib['kernel']} x{lib['threads']} ({lib['file']})" for lib in blas_in_effect())
    return f"BLAS in effect [{asked}]: {libs}"


def _check_kernel(kernel: str) -> int:
    import numpy  # noqa: F401  (loads numpy's OpenBLAS)
    import scipy.linalg  # loads scipy's OpenBLAS

    print(describe_blas())
    kernels = {lib["kernel"] for lib in blas_in_effect() if lib["api"] == "openblas"}
    if kernels != {kernel}:
        print(f"OPENBLAS_CORETYPE={kernel} did not take effect: OpenBLAS runs {sorted(kernels)}", file=sys.stderr)
        return 1
    # a kernel that this CPU cannot run (SkylakeX without AVX-512) is accepted and dies at its first product
    a = np.arange(64 * 64, dtype=np.float32).reshape(64, 64) / 4096
    return 0 if np.isfinite(a @ a).all() and np.isfinite(scipy.linalg.blas.sgemm(1.0, a, a)).all() else 1


def assert_same_answers(got, want, query: dict, as_of) -> None:
    """Two fitted matchers answer ``query`` alike: the same candidates, scores within tolerance, the same
    top 5 (ties within tolerance aside) and agreeing explanations of the results both show."""
    from matcher.domain.schema import Query

    q = Query.model_validate(query)
    a, b = got.score(q, as_of=as_of), want.score(q, as_of=as_of)
    assert [got.entities_[i].id for i in a.rows] == [want.entities_[i].id for i in b.rows]
    assert_scores_close(a.total, b.total)
    top_got, top_want = (m.rank(q, k=5, as_of=as_of).results for m in (got, want))
    assert_same_ranking([(r.entity_id, r.score) for r in top_got], [(r.entity_id, r.score) for r in top_want])
    why = {r.entity_id: r.explanation for r in top_want}
    for r in top_got:
        if r.entity_id in why:  # a tie at the cut may bring in another entity
            assert_explanations_agree(r.explanation, why[r.entity_id], err_msg=r.entity_id)


if __name__ == "__main__":
    sys.exit(_check_kernel(sys.argv[1]))

