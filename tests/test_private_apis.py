"""The private third-party functions the code uses for speed still do what it relies on.

Each is fenced twice: pyproject.toml bounds the package below its next untested minor release, and
a test here compares the private call with the public behaviour it stands for, so that raising the
bound on a release that changed it fails here first, not in a ranking or a rate limit:

- ``sklearn.utils.sparsefuncs_fast.inplace_csr_row_normalize_l2`` (matcher/text/lexical.py: one
  query's TF-IDF normalisation costs ~2 µs with it, ~170 µs through ``normalize``'s input checks);
- limits' ``MemoryStorage`` clean-up ``_MemoryStorage__expire_events`` and its ``timer`` attribute
  (service/ratelimit.py: one sweeper thread instead of a ``threading.Timer`` started on nearly
  every hit; tests/test_reliability_access.py checks the sweeper end to end).

(The ``char_wb`` n-grams of one word come from scikit-learn's public analyzer; tests/test_refit.py
checks the memoised analyzer against ``CountVectorizer(analyzer="char_wb").build_analyzer()``.)
"""

from __future__ import annotations

import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement
from scipy import sparse
from sklearn.preprocessing import normalize

ROOT = Path(__file__).resolve().parents[1]


def _random_csr(rng: np.random.Generator, rows: int, cols: int, density: float, dtype,
                index_dtype) -> sparse.csr_matrix:
    matrix = sparse.random(rows, cols, density=density, format="csr", dtype=dtype, random_state=rng,
                           data_rvs=lambda n: rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n))
    matrix.data[rng.random(matrix.nnz) < 0.05] = 0.0          # stored zeros, as a sum of duplicates can leave
    matrix.indptr, matrix.indices = matrix.indptr.astype(index_dtype), matrix.indices.astype(index_dtype)
    return matrix


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape", [(1, 60_000), (200, 500)], ids=["one query", "many rows"])
def test_inplace_csr_row_normalize_l2_gives_exactly_what_normalize_gives(dtype, index_dtype, shape):
    from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

    rng = np.random.default_rng(15)
    for density in (0.0, 0.002, 0.05):                         # 0.0: only empty rows, which stay empty
        matrix = _random_csr(rng, *shape, density, dtype, index_dtype)
        expected = normalize(matrix, norm="l2", copy=True)
        ours = matrix.copy()
        inplace_csr_row_normalize_l2(ours)
        assert ours.dtype == expected.dtype == dtype
        assert ours.indptr.tolist() == expected.indptr.tolist()      # integer structure: exactly the same
        assert ours.indices.tolist() == expected.indices.tolist()
        assert ours.data.tobytes() == expected.data.tobytes(), "not bit for bit what normalize() gives"


def test_limits_memory_storage_clean_up_drops_expired_entries_and_keeps_live_ones():
    from limits.storage import MemoryStorage

    assert callable(getattr(MemoryStorage, "_MemoryStorage__expire_events", None)), \
        "limits renamed MemoryStorage's clean-up: service/ratelimit.py's sweeper would silently stop"
    storage = MemoryStorage()
    storage.timer.join()                                       # the clean-up limits schedules at start
    # what SweptMemoryStorage does: while ``timer`` is alive, MemoryStorage schedules no clean-up of its own
    release = threading.Event()
    sweeper = storage.timer = threading.Thread(target=release.wait, daemon=True)
    sweeper.start()
    try:
        storage.incr("fixed-expired", expiry=0.05)
        storage.incr("fixed-live", expiry=60)
        assert storage.acquire_entry("moving-expired", limit=5, expiry=0.05)
        assert storage.acquire_entry("moving-live", limit=5, expiry=60)
        assert storage.acquire_entry("moving-mixed", limit=5, expiry=0.05)
        time.sleep(0.1)
        assert storage.acquire_entry("moving-mixed", limit=5, expiry=60)
        assert storage.timer is sweeper, "MemoryStorage started a clean-up timer of its own"
        assert set(storage.storage) == {"fixed-expired", "fixed-live"}, "nothing is swept before the sweep"

        storage._MemoryStorage__expire_events()

        assert dict(storage.storage) == {"fixed-live": 1} and set(storage.expirations) == {"fixed-live"}
        assert {key: len(entries) for key, entries in storage.events.items() if entries} == \
            {"moving-live": 1, "moving-mixed": 1}
        assert storage.get_moving_window("moving-mixed", limit=5, expiry=60)[1] == 1
    finally:
        release.set()


@pytest.mark.parametrize("package", ["scikit-learn", "limits"])
def test_packages_whose_private_functions_are_used_have_an_upper_bound(package):
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    requirement = next(r for r in map(Requirement, dependencies) if r.name.lower() == package)
    assert any(spec.operator == "<" for spec in requirement.specifier), \
        f"{package} needs an upper bound: tests/test_private_apis.py has only been run on the versions below it"
