"""Query enhancement: turn a follow-up into a standalone search query.

"and how much does it cost?" retrieves nothing useful on its own. The heuristic here (a
later change adds model-based rewriting with a timeout) detects a follow-up and adds the
content terms of the previous user turn to the search query. The visitor's own words are
what the model answers; only retrieval sees the enhanced query.

A message is a follow-up when it is short (at most ``FOLLOW_UP_MAX_TERMS`` content terms) and
either opens like a continuation ("and", "what about", "also", ...) or leans on a pronoun
("it", "that", "they", ...) to name its subject.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sitechat.chat.text import content_terms, content_words
from sitechat.domain import Message

FOLLOW_UP_MAX_TERMS = 6
_OPENERS = re.compile(
    r"^\s*(and|but|also|so|then|what about|how about|and what|and how|what else|same for)\b",
    re.IGNORECASE,
)
_ANAPHORA = re.compile(
    r"\b(it|its|it's|that|this|those|these|they|them|their|there|one|ones|he|she)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class EnhancedQuery:
    text: str
    rewritten: bool
    strategy: str  # "none" or "follow-up-heuristic"


def is_follow_up(message: str) -> bool:
    if len(content_terms(message)) > FOLLOW_UP_MAX_TERMS:
        return False
    return bool(_OPENERS.search(message) or _ANAPHORA.search(message))


def enhance_query(message: str, history: Sequence[Message]) -> EnhancedQuery:
    previous = next((m.content for m in reversed(history) if m.role == "user"), None)
    if previous is None or not is_follow_up(message):
        return EnhancedQuery(message, rewritten=False, strategy="none")
    seen = set(content_words(message))
    carried = [w for w in dict.fromkeys(content_words(previous)) if w not in seen]
    if not carried:
        return EnhancedQuery(message, rewritten=False, strategy="none")
    return EnhancedQuery(
        f"{message} {' '.join(carried)}", rewritten=True, strategy="follow-up-heuristic"
    )
