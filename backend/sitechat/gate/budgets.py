"""Monthly token budgets, per chatbot and per org, checked before a chat request starts.

Usage is what the messages really used (provider-reported tokens, or tiktoken counts),
summed per calendar month (UTC) by storage as each answer is saved. The check reads those
sums through a short cache (``cache_seconds``), so a busy chatbot costs the database one
read per org and chatbot every few seconds rather than one per message.

Budgets are soft by the width of that cache and of the answers in flight: requests admitted
while under budget finish, so a month can overshoot by what those answers use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sitechat import metrics
from sitechat.domain import ChatbotConfig, TokenUsage
from sitechat.errors import BudgetExceeded
from sitechat.gate.policy import ChatbotPolicy
from sitechat.storage.usage import UsageLedger, month_of

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    budget: int | None
    used: TokenUsage

    @property
    def exceeded(self) -> bool:
        return self.budget is not None and self.used.total_tokens >= self.budget

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else max(self.budget - self.used.total_tokens, 0)


def seconds_until_next_month(now: datetime) -> float:
    now = now.astimezone(UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return (datetime(year, month, 1, tzinfo=UTC) - now).total_seconds()


class BudgetGuard:
    def __init__(self, ledger: UsageLedger, *, cache_seconds: float) -> None:
        self.ledger = ledger
        self.cache_seconds = cache_seconds
        self._usage: dict[tuple[str, str, str], tuple[float, TokenUsage]] = {}
        self._org_budgets: dict[str, tuple[float, int | None]] = {}
        self._reading: dict[object, asyncio.Task[Any]] = {}

    async def check(self, config: ChatbotConfig, policy: ChatbotPolicy) -> None:
        """``BudgetExceeded`` (429) when the chatbot's or its org's month is used up."""
        now = datetime.now(UTC)
        chatbot = await self.chatbot_status(config, policy, fresh=False, now=now)
        org = await self.org_status(config.org_id, fresh=False, now=now)
        if org.budget is not None:
            metrics.BUDGET_USED.labels(config.org_id).set(org.used.total_tokens)
        if chatbot.exceeded or org.exceeded:
            raise BudgetExceeded(retry_after=seconds_until_next_month(now))

    async def chatbot_status(
        self,
        config: ChatbotConfig,
        policy: ChatbotPolicy,
        *,
        fresh: bool = True,
        now: datetime | None = None,
    ) -> BudgetStatus:
        period = month_of(now or datetime.now(UTC))
        if policy.monthly_token_budget is None and not fresh:
            return BudgetStatus(None, TokenUsage())
        used = await self._used("chatbot", config.id, period, fresh=fresh)
        return BudgetStatus(policy.monthly_token_budget, used)

    async def org_status(
        self, org_id: str, *, fresh: bool = True, now: datetime | None = None
    ) -> BudgetStatus:
        period = month_of(now or datetime.now(UTC))
        budget = await self._org_budget(org_id, fresh=fresh)
        if budget is None and not fresh:
            return BudgetStatus(None, TokenUsage())
        return BudgetStatus(budget, await self._used("org", org_id, period, fresh=fresh))

    def forget_org(self, org_id: str) -> None:
        """Drop what is cached about an org (its budget changed in this process)."""
        self._org_budgets.pop(org_id, None)

    async def _used(self, scope: str, scope_id: str, period: str, *, fresh: bool) -> TokenUsage:
        return await self._cached(
            self._usage,
            (scope, scope_id, period),
            lambda: self.ledger.month_usage(scope, scope_id, period),
            fresh=fresh,
        )

    async def _org_budget(self, org_id: str, *, fresh: bool) -> int | None:
        return await self._cached(
            self._org_budgets, org_id, lambda: self.ledger.get_org_budget(org_id), fresh=fresh
        )

    async def _cached(
        self,
        cache: dict[Any, tuple[float, T]],
        key: Any,
        read: Callable[[], Awaitable[T]],
        *,
        fresh: bool,
    ) -> T:
        """``read()`` through ``cache`` for ``cache_seconds``; ``fresh`` reads whatever is
        cached, and on its own (an owner's view must show what they just changed)."""
        cached = cache.get(key)
        now = time.monotonic()
        if not fresh and cached is not None and cached[0] > now:
            return cached[1]
        value = await read() if fresh else await self._read_once(key, read)
        self._remember(cache, key, (now + self.cache_seconds, value))
        return value

    async def _read_once(self, key: object, read: Callable[[], Awaitable[T]]) -> T:
        """One read for every check that needs ``key`` while it is under way: the burst of
        requests that finds the cache lapsed costs the database one query, not one each.
        A caller that gives up (cancelled) does not cancel the read for the others."""
        task = self._reading.get(key)
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.ensure_future(read())
            self._reading[key] = task

            def done(finished: asyncio.Task[Any]) -> None:
                if self._reading.get(key) is finished:
                    del self._reading[key]
                if not finished.cancelled():
                    finished.exception()  # read by the callers; never "never retrieved"

            task.add_done_callback(done)
        return await asyncio.shield(task)

    @staticmethod
    def _remember(cache: dict, key: object, value: object) -> None:  # type: ignore[type-arg]
        if len(cache) >= 10_000:
            cache.clear()  # bounded; the next reads refill what is in use
        cache[key] = value
