"""Per-day analytics of a chatbot, computed from stored messages (no HTTP, no SQL here).

For each UTC day in the range: conversations started, messages stored, answers, tokens in
(prompt) and out (completion), the median and 95th percentile of time to first token,
answers given with no usable context (``context_quality.level == "none"``), answers that
ended in an error (a visitor closing the tab is not an error), and the public requests the
gate refused, by reason (rate limits, budgets, stream caps, origins, visitor tokens).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sitechat.domain import MessageFacts, RejectionCount
from sitechat.storage.usage import day_of

NOT_AN_ERROR = frozenset({"client_disconnected"})


@dataclass(slots=True)
class DayStats:
    day: str
    conversations: int = 0
    messages: int = 0
    answers: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    ttft_median_ms: float | None = None
    ttft_p95_ms: float | None = None
    no_context_answers: int = 0
    errors: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default) of sorted values."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 1)


def days_between(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def daily_stats(
    first: date,
    last: date,
    *,
    messages: Iterable[MessageFacts],
    conversation_starts: Iterable[datetime],
    rejections: Iterable[RejectionCount],
) -> list[DayStats]:
    days = {day: DayStats(day) for day in days_between(first, last)}
    ttfts: dict[str, list[float]] = defaultdict(list)
    for started in conversation_starts:
        stats = days.get(day_of(started))
        if stats is not None:
            stats.conversations += 1
    for fact in messages:
        key = day_of(fact.created_at)
        stats = days.get(key)
        if stats is None:
            continue
        stats.messages += 1
        if fact.role != "assistant":
            continue
        stats.answers += 1
        stats.tokens_in += fact.prompt_tokens
        stats.tokens_out += fact.completion_tokens
        if fact.ttft_ms is not None:
            ttfts[key].append(fact.ttft_ms)
        if fact.quality_level == "none":
            stats.no_context_answers += 1
        if fact.error_code is not None and fact.error_code not in NOT_AN_ERROR:
            stats.errors += 1
    for key, values in ttfts.items():
        values.sort()
        days[key].ttft_median_ms = percentile(values, 0.5)
        days[key].ttft_p95_ms = percentile(values, 0.95)
    for rejection in rejections:
        stats = days.get(rejection.day)
        if stats is not None:
            stats.rejected[rejection.reason] = (
                stats.rejected.get(rejection.reason, 0) + rejection.count
            )
    return list(days.values())
