"""Unanswered questions: what visitors asked that the documents did not answer, grouped so
an owner sees what to add (no HTTP, no SQL here).

An *unanswered* question is a visitor message whose answer had no usable context
(``context_quality.level`` ``none``: the chatbot gave its fallback message) or little
(``low``), whatever the answer's status. Questions are grouped by their normalised text:

1. Unicode NFKC, then case-folded (``"Straße"`` and ``"STRASSE"`` agree);
2. every run of whitespace becomes one space;
3. whitespace and punctuation (Unicode category P) at either end are stripped, so
   ``"  Do you ship to Mars?? "`` and ``"do you ship to mars"`` are one group; punctuation
   inside the text stays.

A group's ``id`` is the first 32 hex digits of the SHA-256 of its normalised text: stable,
so an owner can mark it resolved and the mark holds for every later ask of the same text.
A group is *resolved* when it was marked resolved and not asked again since (within the
range read): a question asked again after being resolved is open again, with
``asked_since_resolved`` saying how often, and the old ``resolved_at`` shown beside it.
Groups sort by how often they were asked, then by when they were last asked, newest first.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sitechat.domain import UnansweredAsk

TOP_IN_ANALYTICS = 5


def normalise_question(text: str) -> str:
    folded = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    start, end = 0, len(folded)
    while start < end and _trimmed(folded[start]):
        start += 1
    while end > start and _trimmed(folded[end - 1]):
        end -= 1
    return folded[start:end]


def _trimmed(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith("P")


def question_id(normalised: str) -> str:
    return hashlib.sha256(normalised.encode()).hexdigest()[:32]


@dataclass(slots=True)
class UnansweredGroup:
    id: str
    question: str  # the normalised text
    example: str  # the latest ask, as the visitor typed it
    count: int
    fallbacks: int  # asks whose answer was the fallback (level none); the rest were low
    first_seen: datetime
    last_seen: datetime
    quality: str  # the latest answer's level
    session_id: str  # of the latest ask
    conversation_id: str
    resolved_at: datetime | None = None
    asked_since_resolved: int = 0

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None and self.asked_since_resolved == 0


@dataclass(slots=True)
class UnansweredSummary:
    """What analytics shows: open and resolved groups, the asks of the open ones, the top."""

    questions: int = 0
    asked: int = 0
    resolved: int = 0
    top: list[UnansweredGroup] = field(default_factory=list)


def group_unanswered(
    asks: Iterable[UnansweredAsk], resolutions: Mapping[str, datetime]
) -> list[UnansweredGroup]:
    """Every group, resolved or not, most asked first."""
    groups: dict[str, UnansweredGroup] = {}
    for ask in sorted(asks, key=lambda a: a.asked_at):
        text = normalise_question(ask.question)
        group = groups.get(text)
        if group is None:
            key = question_id(text)
            group = groups[text] = UnansweredGroup(
                id=key,
                question=text,
                example=ask.question,
                count=0,
                fallbacks=0,
                first_seen=ask.asked_at,
                last_seen=ask.asked_at,
                quality=ask.quality_level,
                session_id=ask.session_id,
                conversation_id=ask.conversation_id,
                resolved_at=resolutions.get(key),
            )
        group.count += 1
        group.fallbacks += ask.quality_level == "none"
        group.example, group.last_seen = ask.question, ask.asked_at
        group.quality, group.session_id = ask.quality_level, ask.session_id
        group.conversation_id = ask.conversation_id
        if group.resolved_at is not None and ask.asked_at > group.resolved_at:
            group.asked_since_resolved += 1
    return sorted(groups.values(), key=lambda g: (-g.count, -g.last_seen.timestamp(), g.question))


def summarise(groups: Iterable[UnansweredGroup], top: int = TOP_IN_ANALYTICS) -> UnansweredSummary:
    summary = UnansweredSummary()
    for group in groups:
        if group.resolved:
            summary.resolved += 1
            continue
        summary.questions += 1
        summary.asked += group.count
        if len(summary.top) < top:
            summary.top.append(group)
    return summary
