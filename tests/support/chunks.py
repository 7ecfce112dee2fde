"""An answer cut into tokens of given sizes, for the streaming guards' tests."""

from __future__ import annotations

from collections.abc import Iterable


def split(text: str, sizes: Iterable[int]) -> list[str]:
    """``text`` in pieces of ``sizes`` characters, the rest (if any) as a last piece."""
    chunks, i = [], 0
    for size in sizes:
        if i >= len(text):
            break
        chunks.append(text[i : i + size])
        i += size
    if i < len(text):
        chunks.append(text[i:])
    return chunks
