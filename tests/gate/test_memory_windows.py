"""The moving windows keep one rule wherever they live: one contract, run against the
in-process windows (the rate limiter's embedded default), sitechat's own Redis windows (the
real adapter: every stage and the stream slot in one script) and, as the reference, the
``limits`` library's moving windows on Redis, whose keys sitechat's share. Then the memory
side's own bookkeeping on a clock of the test's, and the rate limiter's stages and slot, on
both storages."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import pytest
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from sitechat.gate import memory_windows
from sitechat.gate.memory_windows import MemoryWindows
from sitechat.gate.rate_limits import LimitCheck, RateLimiter
from sitechat.gate.redis_windows import RedisWindows
from sitechat.gate.stream_slots import SlotRequest, StreamSlots
from sitechat.shared_state.redis_link import RedisLink
from tests.support.redis import REDIS_URL


class Windows(Protocol):
    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool: ...

    async def stats(self, item: RateLimitItem, *identifiers: str) -> tuple[float, int]: ...


class InMemory:
    def __init__(self) -> None:
        self.windows = MemoryWindows()

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        return self.windows.hit(item, *identifiers)

    async def stats(self, item: RateLimitItem, *identifiers: str) -> tuple[float, int]:
        return self.windows.window_stats(item, *identifiers)


class OnRedis:
    def __init__(self, link: RedisLink) -> None:
        self.windows = RedisWindows(link)

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        outcome = await self.windows.admit([[(item, identifiers)]])
        return outcome.refused is None

    async def stats(self, item: RateLimitItem, *identifiers: str) -> tuple[float, int]:
        return await self.windows.window_stats(item, *identifiers)


class LimitsLibrary:
    def __init__(self, prefix: str) -> None:
        storage = RedisStorage(
            "async+" + REDIS_URL, implementation="redispy", key_prefix=prefix + "limits"
        )
        self.limiter = MovingWindowRateLimiter(storage)

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        return await self.limiter.hit(item, *identifiers)

    async def stats(self, item: RateLimitItem, *identifiers: str) -> tuple[float, int]:
        found = await self.limiter.get_window_stats(item, *identifiers)
        return found.reset_time, found.remaining


@pytest.fixture(params=["memory", "redis", "limits"])
def windows(request: pytest.FixtureRequest) -> Windows:
    if request.param == "memory":
        return InMemory()
    if request.param == "redis":
        return OnRedis(request.getfixturevalue("redis_link"))
    prefix: str = request.getfixturevalue("redis_prefix")
    return LimitsLibrary(prefix)


async def test_windows_the_limits_library_counted_count_on_redis(redis_link: RedisLink) -> None:
    # The same keys and entries: a deployment that moved from ``limits`` keeps its windows.
    item = parse("3/minute")
    reference, ours = LimitsLibrary(redis_link.prefix), OnRedis(redis_link)
    assert await reference.hit(item, "per_ip", "bot", "1.2.3.4")
    assert await reference.hit(item, "per_ip", "bot", "1.2.3.4")
    assert await ours.hit(item, "per_ip", "bot", "1.2.3.4")
    assert not await ours.hit(item, "per_ip", "bot", "1.2.3.4")
    assert not await reference.hit(item, "per_ip", "bot", "1.2.3.4")
    assert (await ours.stats(item, "per_ip", "bot", "1.2.3.4"))[1] == 0


async def test_a_window_lets_amount_hits_through_then_refuses(windows: Windows) -> None:
    item = parse("3/second")
    assert [await windows.hit(item, "per_ip", "bot", "1.2.3.4") for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    reset_at, remaining = await windows.stats(item, "per_ip", "bot", "1.2.3.4")
    assert remaining == 0
    # The oldest hit leaves the window within a second (both report unix seconds).
    assert 0 < reset_at - time.time() <= 1
    # Another identity, and the same identity under another limit, have windows of their own.
    assert await windows.hit(item, "per_ip", "bot", "5.6.7.8")
    assert await windows.hit(parse("3/minute"), "per_ip", "bot", "1.2.3.4")


async def test_a_refused_hit_is_not_counted_and_the_window_moves_on(windows: Windows) -> None:
    item = parse("2/second")
    assert await windows.hit(item, "per_session", "s")
    assert await windows.hit(item, "per_session", "s")
    for _ in range(5):
        assert not await windows.hit(item, "per_session", "s")
    await asyncio.sleep(1.2)
    _, remaining = await windows.stats(item, "per_session", "s")
    assert remaining == 2  # the refusals did not keep the window full
    assert await windows.hit(item, "per_session", "s")
    _, remaining = await windows.stats(item, "per_session", "s")
    assert remaining == 1


async def test_an_unused_window_has_its_whole_amount(windows: Windows) -> None:
    before = time.time()
    reset_at, remaining = await windows.stats(parse("7/minute"), "per_chatbot", "never-hit")
    assert remaining == 7
    assert before + 60 <= reset_at <= time.time() + 60  # a whole window from now


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_hit_leaves_the_window_exactly_its_length_later() -> None:
    clock = Clock()
    windows = MemoryWindows(clock)
    item = parse("2/minute")
    assert windows.hit(item, "ip")
    clock.now += 30
    assert windows.hit(item, "ip")
    assert not windows.hit(item, "ip")
    assert windows.window_stats(item, "ip") == (1_000_000.0 + 60, 0)
    clock.now += 29.9  # the first hit is still inside
    assert not windows.hit(item, "ip")
    clock.now += 0.1  # now it is not
    assert windows.hit(item, "ip")
    assert windows.window_stats(item, "ip") == (1_000_030.0 + 60, 0)


def test_windows_nobody_uses_any_more_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_windows, "SWEEP_EVERY", 10)
    clock = Clock()
    windows = MemoryWindows(clock)
    item = parse("5/minute")
    for i in range(9):
        windows.hit(item, f"visitor-{i}")
    assert len(windows) == 9
    clock.now += 61  # every window is empty now
    windows.hit(item, "visitor-new")  # the tenth hit sweeps
    assert len(windows) == 1
    windows.clear(item, "visitor-new")
    assert len(windows) == 0


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    if request.param == "memory":
        return RateLimiter()
    link: RedisLink = request.getfixturevalue("redis_link")
    return RateLimiter(link)


async def test_a_refusal_in_a_stage_leaves_the_later_stages_uncounted(limiter: RateLimiter) -> None:
    one, three = parse("1/minute"), parse("3/minute")
    chatbot = LimitCheck("per_chatbot", ("bot",), (three,))

    def ip(address: str) -> LimitCheck:
        return LimitCheck("per_ip", ("bot", address), (one,))

    assert (await limiter.check([[ip("192.0.2.1")], [chatbot]])).allowed
    refused = await limiter.check([[ip("192.0.2.1")], [chatbot]])
    assert not refused.allowed and refused.scope == "per_ip"
    # The refusal did not count against the chatbot: two more addresses get through.
    assert (await limiter.check([[ip("192.0.2.2")], [chatbot]])).allowed
    assert (await limiter.check([[ip("192.0.2.3")], [chatbot]])).allowed
    full = await limiter.check([[ip("192.0.2.4")], [chatbot]])
    assert not full.allowed and full.scope == "per_chatbot"
    assert (full.limit, full.remaining) == (3, 0)
    assert 0 < full.retry_after <= 60


async def test_every_window_of_a_stage_is_counted_and_the_first_full_one_refuses(
    limiter: RateLimiter,
) -> None:
    # A stage is counted as a whole: the IP's window fills up even when the visitor's
    # refuses, and the refusal names the first full window in the stage's order.
    two, one = parse("2/minute"), parse("1/minute")
    ip = LimitCheck("per_ip", ("bot", "192.0.2.9"), (two,))
    visitor = LimitCheck("per_visitor", ("bot", "v1"), (one,))
    assert (await limiter.check([[ip, visitor]])).allowed
    refused = await limiter.check([[ip, visitor]])
    assert not refused.allowed and refused.scope == "per_visitor"
    refused = await limiter.check([[ip]])
    assert not refused.allowed and refused.scope == "per_ip"


async def test_the_stream_slot_is_taken_only_when_every_limit_allows(
    limiter: RateLimiter, request: pytest.FixtureRequest
) -> None:
    link = request.getfixturevalue("redis_link") if limiter.redis is not None else None
    slots = StreamSlots(link, ttl_seconds=60)
    chatbot = LimitCheck("per_chatbot", ("bot",), (parse("2/minute"),))

    def ask(ip: str) -> tuple[list[list[LimitCheck]], StreamSlots, SlotRequest]:
        stages = [[LimitCheck("per_ip", ("bot", ip), (parse("5/minute"),))], [chatbot]]
        return stages, slots, slots.request("bot", ip, per_chatbot=1, per_ip=1)

    async def count() -> int:
        if link is None:
            return slots.local_count("bot")
        return int(await link.client.zcard(link.key("streams:chatbot:bot")))

    verdict, first = await limiter.check_and_take(*ask("192.0.2.1"))
    assert verdict.allowed and first is not None and first.shared == (link is not None)
    # At the chatbot's cap of one stream: allowed by the limits, and counted, but no slot.
    verdict, second = await limiter.check_and_take(*ask("192.0.2.2"))
    assert verdict.allowed and second is None
    assert await count() == 1
    await first.release()
    assert await count() == 0
    # Over the chatbot-wide limit (its two were used): refused, and no slot was taken.
    verdict, third = await limiter.check_and_take(*ask("192.0.2.3"))
    assert not verdict.allowed and verdict.scope == "per_chatbot" and third is None
    assert await count() == 0
