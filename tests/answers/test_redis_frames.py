"""The shared recording of answers' frames on the real Redis: batched writes, and what is
queued when the writer stops."""

from __future__ import annotations

import asyncio

import pytest

from sitechat.answers.frames import RedisFrames, payload_of
from sitechat.shared_state.redis_link import RedisLink


@pytest.fixture
def link(redis_link: RedisLink) -> RedisLink:
    return redis_link


def token(n: int) -> bytes:
    return payload_of({"type": "token", "content": f"word{n} "})


COMPLETE = payload_of({"type": "complete", "content": "…"})


async def test_frames_queued_within_a_batch_go_out_together(link: RedisLink) -> None:
    frames = RedisFrames(link, ended_ttl_seconds=60, batch_seconds=0.2)
    writer = asyncio.create_task(frames.run())
    try:
        for seq in (1, 2, 3):
            frames.record("m1", seq, token(seq))
        await asyncio.sleep(0)  # the writer wakes, and waits for the batch to fill
        frames.record("m1", 4, payload_of({"type": "complete", "content": "…"}))
        await asyncio.wait_for(frames.flush(), 5)

        recorded = await frames.after("m1", 0)
        assert [seq for seq, _ in recorded] == [1, 2, 3, 4]
        assert recorded[0][1] == token(1)
        ttl = await link.client.pttl(frames.key("m1"))
        assert 0 < ttl <= 60_000  # the final frame's expiry, not a live answer's hour
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await frames.aclose()


async def test_a_stopped_writer_sends_what_is_queued_first(link: RedisLink) -> None:
    # At shutdown the answers still running are stopped (their last frame is queued) and
    # then the writer is cancelled: those frames must not wait for a batch that never comes.
    frames = RedisFrames(link, ended_ttl_seconds=60, batch_seconds=30)
    writer = asyncio.create_task(frames.run())
    await asyncio.sleep(0)
    frames.record("m2", 1, token(1))
    frames.record("m2", 2, payload_of({"type": "error", "code": "server_restarting"}))
    await asyncio.sleep(0.05)
    assert await frames.after("m2", 0) == []  # waiting for the batch to fill

    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)

    assert [seq for seq, _ in await frames.after("m2", 0)] == [1, 2]
    await frames.aclose()


async def test_a_frame_redis_refuses_is_logged_and_the_others_are_recorded(
    link: RedisLink, caplog: pytest.LogCaptureFixture
) -> None:
    # Frames of several answers go out in one script call; a frame whose seq is not after
    # the last one recorded (a bug) is refused alone, loudly.
    frames = RedisFrames(link, ended_ttl_seconds=60, batch_seconds=0)
    for seq in (1, 2):
        frames.record("a", seq, token(seq))
    frames.record("b", 1, token(1))
    frames.record("a", 2, token(99))  # again
    frames.record("a", 3, COMPLETE)
    with caplog.at_level("ERROR", logger="sitechat.answers.frames"):
        await frames._send_queued()
    assert await frames.after("a", 0) == [(1, token(1)), (2, token(2)), (3, COMPLETE)]
    assert await frames.after("b", 0) == [(1, token(1))]
    assert "1 refused" in caplog.text
    assert 0 < await link.client.pttl(frames.key("a")) <= 60_000  # ended
    assert await link.client.pttl(frames.key("b")) > 60_000  # still live
    await frames.aclose()
