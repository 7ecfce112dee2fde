"""A guard against degenerate generation: small models (and sometimes large ones) fall into
loops, repeating the same sentence until ``max_tokens`` runs out. Streaming that to a
visitor wastes their time and the owner's tokens, so the pipeline stops the model as soon as
a sentence repeats.

Only sentences of at least ``MIN_SENTENCE_CHARS`` count: short ones ("Yes.", "[1]") repeat
legitimately.
"""

from __future__ import annotations

import re

MIN_SENTENCE_CHARS = 24
_BOUNDARY = re.compile(r"(?<=[.!?])\s+|\n+")


def _normalise(sentence: str) -> str:
    return " ".join(sentence.lower().split())


class RepetitionGuard:
    def __init__(self, max_repeats: int = 1) -> None:
        self.max_repeats = max_repeats
        self._buffer = ""
        self._seen: dict[str, int] = {}

    def feed(self, text: str) -> bool:
        """Add streamed text; True when the answer has started to loop."""
        # The buffer holds no sentence boundary: a new one ends at most one character
        # before this text (". " split across tokens). Most tokens end no sentence.
        start = max(len(self._buffer) - 1, 0)
        self._buffer += text
        if not _BOUNDARY.search(self._buffer, start):
            return False
        parts = _BOUNDARY.split(self._buffer)
        # The last part may be an unfinished sentence: keep it for the next feed.
        self._buffer = parts.pop()
        for sentence in parts:
            key = _normalise(sentence)
            if len(key) < MIN_SENTENCE_CHARS:
                continue
            count = self._seen.get(key, 0) + 1
            self._seen[key] = count
            if count > self.max_repeats:
                return True
        return False
