"""Counts of public requests the gate refused, per chatbot, UTC day and reason.

Refusals are what a flood is made of, so they are never written one by one: they are
added up in memory and flushed to storage every few seconds (and at shutdown) by one task,
so a burst of 429s costs a handful of upserts. Analytics adds the not-yet-flushed counts of
this process, so an owner sees a refusal at once.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime

import anyio

from sitechat import metrics
from sitechat.domain import RejectionCount
from sitechat.storage.usage import UsageLedger, day_of

logger = logging.getLogger(__name__)

REASONS = frozenset(
    {"rate_limited", "budget_exceeded", "too_many_streams", "origin", "visitor_token"}
)


class RejectionCounter:
    def __init__(self, ledger: UsageLedger, *, flush_seconds: float = 5.0) -> None:
        self.ledger = ledger
        self.flush_seconds = flush_seconds
        self._pending: Counter[tuple[str, str, str]] = Counter()

    def add(self, chatbot_id: str, reason: str) -> None:
        metrics.GATE_REFUSALS.labels(reason).inc()
        self._pending[(chatbot_id, day_of(datetime.now(UTC)), reason)] += 1

    def pending(self, chatbot_id: str) -> list[RejectionCount]:
        return [
            RejectionCount(day, reason, n)
            for (bot, day, reason), n in self._pending.items()
            if bot == chatbot_id
        ]

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, Counter()
        try:
            await self.ledger.add_rejections(dict(batch))
        except Exception:
            logger.warning("could not save rejection counts; keeping them for the next flush")
            self._pending.update(batch)

    async def run(self) -> None:
        """Flush every ``flush_seconds`` until cancelled; then flush what is left."""
        try:
            while True:
                await anyio.sleep(self.flush_seconds)
                await self.flush()
        finally:
            with anyio.CancelScope(shield=True):
                await self.flush()
