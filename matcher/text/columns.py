"""Packed columns: a long list of texts (or other values) as one byte buffer and its offsets.

A fitted catalog holds several values per entity — its texts, its passages, its parsed places and
countries, the entity itself. As Python lists these are millions of objects at 100,000 profiles:
seconds to unpickle at every start, and memory that each worker holds on its own. A
:class:`PackedColumn` keeps them as two numpy arrays (so a persisted index maps them from its file,
shared between processes) and decodes an item only when it is read; a start then reads none.
It is a read-only :class:`~collections.abc.Sequence`: indexing, slices (a list), ``len``, iteration.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = ["PackedColumn", "packed"]

_TEXT, _PICKLE = "text", "pickle"


class PackedColumn(Sequence):
    """Items packed into ``blob`` (uint8) at ``offsets`` (int64, one more than items).

    Texts are stored as UTF-8, anything else as one pickle per item; ``keep`` keeps decoded items
    (for values that are read again and again and cost more to decode, such as entities).
    """

    def __init__(self, blob: np.ndarray, offsets: np.ndarray, how: str, keep: bool = False):
        self.blob = blob
        self.offsets = offsets
        self.how = how
        self.keep = keep
        self._kept: dict[int, Any] = {}

    @classmethod
    def of_texts(cls, texts: Iterable[str]) -> PackedColumn:
        return cls._pack([t.encode("utf-8", "surrogatepass") for t in texts], _TEXT, False)

    @classmethod
    def of_values(cls, values: Iterable[Any], keep: bool = False) -> PackedColumn:
        return cls._pack([pickle.dumps(v, protocol=5) for v in values], _PICKLE, keep)

    @classmethod
    def _pack(cls, raw: list[bytes], how: str, keep: bool) -> PackedColumn:
        offsets = np.zeros(len(raw) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in raw], out=offsets[1:])
        return cls(np.frombuffer(b"".join(raw), dtype=np.uint8), offsets, how, keep)

    def extended(self, other: PackedColumn) -> PackedColumn:
        """This column followed by ``other`` (packed the same way)."""
        if other.how != self.how:
            raise ValueError("columns packed differently")
        offsets = np.concatenate([self.offsets, self.offsets[-1] + other.offsets[1:]])
        return PackedColumn(np.concatenate([self.blob, other.blob]), offsets, self.how, self.keep)

    def __getstate__(self) -> dict:
        return {"blob": self.blob, "offsets": self.offsets, "how": self.how, "keep": self.keep}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["blob"], state["offsets"], state["how"], state["keep"])  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _decode(self, i: int) -> Any:
        if self.keep:
            found = self._kept.get(i, self)
            if found is not self:
                return found
        raw = self.blob[self.offsets[i] : self.offsets[i + 1]].tobytes()
        value = raw.decode("utf-8", "surrogatepass") if self.how == _TEXT else pickle.loads(raw)
        if self.keep:
            self._kept[i] = value
        return value

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._decode(j) for j in range(*i.indices(len(self)))]
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("column index out of range")
        return self._decode(i)

    def __iter__(self) -> Iterator[Any]:
        return (self._decode(i) for i in range(len(self)))


def packed(values: Sequence[Any], texts: bool = False, keep: bool = False) -> Sequence[Any]:
    """``values`` as a :class:`PackedColumn` (a column already packed stays as it is)."""
    if isinstance(values, PackedColumn):
        return values
    return PackedColumn.of_texts(values) if texts else PackedColumn.of_values(values, keep=keep)
