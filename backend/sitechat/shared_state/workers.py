"""Which sitechat processes are alive: a heartbeat per process, so work a dead process held
(answers it was generating, stream slots it had taken) is found and freed within seconds.

Each process has a ``worker_id``. With Redis it refreshes a key that expires after ``ttl``
seconds, three times per ``ttl``; a process killed with SIGKILL stops refreshing, and
``alive`` stops counting it once the key lapses. Without Redis there is one process sharing
this database (several need Redis for their limits anyway), so only this one is alive.

While Redis cannot be reached nobody can be told dead: ``alive`` then answers "all of them",
so a sweeper never ends an answer that may still be running.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Awaitable, Callable, Iterable

import anyio

from sitechat.errors import SharedStateUnavailable
from sitechat.shared_state.redis_link import RedisLink

logger = logging.getLogger(__name__)

Beat = Callable[[], Awaitable[None]]


class WorkerPresence:
    def __init__(self, redis: RedisLink | None, *, ttl_seconds: float = 15.0) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.worker_id = secrets.token_hex(8)
        # Called on every beat (e.g. renewing this process's stream slot leases).
        self._on_beat: list[Beat] = []

    def _key(self, worker_id: str) -> str:
        assert self.redis is not None
        return self.redis.key("worker", worker_id)

    def on_beat(self, beat: Beat) -> None:
        self._on_beat.append(beat)

    async def beat(self) -> None:
        if self.redis is not None and self.redis.usable:
            try:
                async with self.redis.translated("refreshing this process's heartbeat"):
                    await self.redis.client.set(
                        self._key(self.worker_id), "1", px=math.ceil(self.ttl_seconds * 1000)
                    )
            except SharedStateUnavailable:
                pass  # logged by the link; the next beat tries again
        for beat in self._on_beat:
            try:
                await beat()
            except Exception:
                logger.exception("a heartbeat task failed")

    async def run(self) -> None:
        """Beat until cancelled; then the key is removed, so a clean exit is seen at once."""
        try:
            while True:
                await self.beat()
                await anyio.sleep(self.ttl_seconds / 3)
        finally:
            if self.redis is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                    try:
                        await self.redis.client.delete(self._key(self.worker_id))
                    except Exception:
                        logger.debug("could not remove the heartbeat key", exc_info=True)

    async def alive(self, worker_ids: Iterable[str | None]) -> set[str]:
        """The ids among ``worker_ids`` whose process is alive."""
        ids = {w for w in worker_ids if w}
        if self.redis is None:
            return ids & {self.worker_id}
        if not ids:
            return set()
        ordered = sorted(ids)
        try:
            async with (
                self.redis.translated("checking which processes are alive"),
                self.redis.client.pipeline(transaction=False) as pipe,
            ):
                for worker_id in ordered:
                    pipe.exists(self._key(worker_id))
                found = await pipe.execute()
        except SharedStateUnavailable:
            return ids  # cannot tell: nobody is declared dead
        return {w for w, n in zip(ordered, found, strict=True) if n} | (ids & {self.worker_id})
