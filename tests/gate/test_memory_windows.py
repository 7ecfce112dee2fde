"""The in-process moving windows (the rate limiter's embedded default) keep the same rule as
the ``limits`` library's moving windows on Redis: one contract, run against both, and the
memory side's own bookkeeping on a clock of the test's; and the rate limiter's stages, on
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


@pytest.fixture(params=["memory", "redis"])
def windows(request: pytest.FixtureRequest) -> Windows:
    if request.param == "memory":
        return InMemory()
    prefix: str = request.getfixturevalue("redis_prefix")
    return OnRedis(prefix)


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
