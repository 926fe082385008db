"""A least-recently-used cache bounded by entries and by bytes: decoded audio is large (a
minute of PCM is ~1 MB, a <Play> file may be 50 MB), so a count alone does not bound memory."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class LruCache(Generic[V]):
    def __init__(self, max_entries: int, max_bytes: int, size: Callable[[V], int]) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._size = size
        self._items: OrderedDict[str, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: str) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def __setitem__(self, key: str, value: V) -> None:
        size = self._size(value)
        if size > self.max_bytes:
            return  # would evict everything else and still not fit: not cached
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= self._size(old)
        self._items[key] = value
        self.bytes += size
        while len(self._items) > self.max_entries or self.bytes > self.max_bytes:
            _, dropped = self._items.popitem(last=False)
            self.bytes -= self._size(dropped)

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0


def played_size(value: tuple[float, bytes | None]) -> int:
    """An `audio_cache` entry: (seconds, PCM or None)."""
    return len(value[1] or b"") + 64
