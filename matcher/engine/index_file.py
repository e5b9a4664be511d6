"""A fitted :class:`~matcher.engine.index.CatalogIndex` as one file, memory-mapped when read.

A start that finds the index of the store's current catalog reads it instead of fitting: no
n-gram counting, no country or place lookups, no vectors fetched from the store. The file is a
pickle (protocol 5) whose large numpy buffers — the dense vectors, the TF-IDF matrices (scipy's
CSR/CSC components), the kept n-gram counts, every per-entity column — are written out of band,
each aligned, after the pickle. Reading maps the file (``mmap``, read-only) and hands those
buffers to :func:`pickle.loads`: the arrays are views of the mapping, never copied, so every
process that serves the same catalog (gunicorn workers, replicas on one machine) shares their
pages with the page cache. The arrays are read-only; the engine never writes into a fitted index.

The header (JSON) says what the index belongs to: :func:`save_index` writes ``meta`` (catalog
version and stamp, model id, the code that builds indexes, …) and :func:`load_index` returns
``None`` unless the caller's ``meta`` is exactly the one stored — an index of another catalog
version, model or code is never used, the caller fits and saves a new one.
"""

from __future__ import annotations

import hashlib
import io
import json
import mmap
import os
import pickle
import struct
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from matcher.engine.index import CatalogIndex
from matcher.text.gazetteer import Gazetteer

__all__ = ["FORMAT", "code_key", "load_index", "read_meta", "save_index"]

FORMAT = "matcher-index/1"
_MAGIC = b"MIDX0001"
_ALIGN = 64
_IN_BAND_BELOW = 4096        # smaller buffers stay inside the pickle (a mapping per tiny array costs more)
# the code whose change makes a stored index stale: everything that decides what an index holds
_SOURCES = ("engine", "text", "domain")


@cache
def code_key() -> str:
    """A hash of the library code that builds an index (its engine, text and domain packages and
    their reference data): an index written by other code is stale."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha1(FORMAT.encode())
    for package in _SOURCES:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".json", ".csv", ".txt"):
                h.update(str(path.relative_to(root)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


def save_index(index: CatalogIndex, path: Path, meta: dict[str, Any]) -> Path:
    """Write ``index`` with ``meta`` to ``path`` atomically (a reader sees the old file or the new one)."""
    buffers: list[pickle.PickleBuffer] = []

    def out_of_band(buf: pickle.PickleBuffer) -> bool:
        if buf.raw().nbytes < _IN_BAND_BELOW:
            return True
        buffers.append(buf)
        return False

    out = io.BytesIO()
    # the gazetteer is the reader's own (its file is part of ``meta``): not copied into every index
    state = {k: v for k, v in index.__getstate__().items() if k != "gazetteer"}
    pickle.Pickler(out, protocol=5, buffer_callback=out_of_band).dump(state)
    body = out.getbuffer()
    spans, offset = [], _align(len(body))
    for buf in buffers:
        n = buf.raw().nbytes
        spans.append((offset, n))
        offset = _align(offset + n)
    header = json.dumps({"format": FORMAT, "meta": meta, "pickle": len(body), "buffers": spans}).encode()
    start = _align(len(_MAGIC) + 8 + len(header))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + struct.pack("<Q", len(header)) + header)
            for at, chunk in [(0, body), *((a, buf.raw()) for (a, _), buf in zip(spans, buffers))]:
                f.seek(start + at)
                f.write(chunk)
            f.truncate(start + offset)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_meta(path: Path) -> dict[str, Any] | None:
    """The ``meta`` stored in an index file (None: no such file, or not an index file)."""
    try:
        with open(path, "rb") as f:
            return _header(f)["meta"]
    except (OSError, ValueError, KeyError):
        return None


def load_index(path: Path, meta: dict[str, Any], gazetteer: Gazetteer) -> CatalogIndex | None:
    """The index stored at ``path`` if it was saved with exactly ``meta``, its arrays mapped
    read-only from the file, resolving places with ``gazetteer``; None if there is none or it
    belongs to something else."""
    try:
        f = open(path, "rb")
    except OSError:
        return None
    with f:
        try:
            header = _header(f)
        except (OSError, ValueError):
            return None
        if header.get("format") != FORMAT or header.get("meta") != meta:
            return None
        start = _align(f.tell())
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mapped)
    body = view[start : start + header["pickle"]]
    buffers = [view[start + a : start + a + n] for a, n in header["buffers"]]
    state = pickle.loads(body, buffers=buffers)
    index = CatalogIndex.__new__(CatalogIndex)
    index.__setstate__({**state, "gazetteer": gazetteer})
    return index


def _header(f) -> dict[str, Any]:
    if f.read(len(_MAGIC)) != _MAGIC:
        raise ValueError("not an index file")
    (n,) = struct.unpack("<Q", f.read(8))
    return json.loads(f.read(n))


def _align(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN
