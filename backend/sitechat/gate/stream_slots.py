"""Caps on answers streaming at once, per chatbot and per client IP.

A rate limit counts requests over time; a long answer holds a model for its whole length,
so concurrency needs its own cap. Each stream takes a *slot* (a lease) in two sets, the
chatbot's and the IP's, atomically: both have room or neither is taken. The slot is given
back when the answer ends; a lease also expires by itself after ``ttl`` seconds unless its
process renews it (``renew``, on every heartbeat of ``WorkerPresence``), so the slots of a
process that dies mid-answer are free again within ``ttl`` seconds.

With Redis the sets are sorted sets (score: expiry) shared by every process, changed by one
Lua script; without it, or while it is unreachable, they live in this process's memory.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass, field

from sitechat.errors import SharedStateUnavailable
from sitechat.shared_state.redis_link import RedisLink

# Takes a lease in every set of the Lua table ``{keys}`` if each has room under its cap;
# sets ``taken`` (1 or 0). Needs ``t`` (Redis ``TIME``); ``{ttl}`` (ms), ``{lease}`` and
# ``{cap}`` (the cap of set ``k``) are Lua expressions. Shared by the script below and by
# the gate's one script for limits and slot (``redis_windows``).
SLOT_LUA = """
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber({ttl})
local taken = 1
for k, key in ipairs({keys}) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms)
  if taken == 1 and redis.call('ZCARD', key) >= tonumber({cap}) then
    taken = 0
  end
end
if taken == 1 then
  for _, key in ipairs({keys}) do
    redis.call('ZADD', key, now_ms + ttl, {lease})
    redis.call('PEXPIRE', key, ttl)
  end
end
"""

# KEYS: the sets; ARGV: ttl ms, lease id, then one cap per key. 1 if the lease was taken.
_ACQUIRE = (
    "local t = redis.call('TIME')"
    + SLOT_LUA.format(keys="KEYS", ttl="ARGV[1]", lease="ARGV[2]", cap="ARGV[k + 2]")
    + "return taken\n"
)

# KEYS: the sets; ARGV: ttl ms, then the leases to renew (those still present).
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  for i = 2, #ARGV do
    redis.call('ZADD', key, 'XX', now + ttl, ARGV[i])
  end
  redis.call('PEXPIRE', key, ttl)
end
return 1
"""


@dataclass(frozen=True, slots=True)
class SlotRequest:
    """A slot asked for: a lease in each of ``keys``, each under its cap."""

    keys: tuple[str, ...]
    caps: tuple[int, ...]
    lease: str
    ttl_ms: int


@dataclass(slots=True)
class StreamSlot:
    """A taken slot; ``release`` gives it back (safe to call more than once)."""

    owner: StreamSlots
    keys: tuple[str, ...]
    lease: str
    shared: bool
    released: bool = field(default=False)

    async def release(self) -> None:
        if self.released:
            return
        self.released = True
        await self.owner._release(self)


class StreamSlots:
    def __init__(self, redis: RedisLink | None, *, ttl_seconds: float) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self._local: dict[str, dict[str, float]] = {}
        self._script = redis.client.register_script(_ACQUIRE) if redis is not None else None
        self._renew = redis.client.register_script(_RENEW) if redis is not None else None
        # Leases taken in Redis and not yet given back, by key set: what ``renew`` extends.
        self._held: dict[str, tuple[str, ...]] = {}

    def _key(self, kind: str, *parts: str) -> str:
        name = "streams:" + kind + ":" + ":".join(parts)
        return self.redis.key(name) if self.redis is not None else name

    def request(
        self, chatbot_id: str, client_ip: str, *, per_chatbot: int, per_ip: int
    ) -> SlotRequest:
        """A slot in the chatbot's and the IP's sets: ``take`` it, or have the gate's one
        script take it with the limits and ``adopt`` it."""
        return SlotRequest(
            keys=(self._key("chatbot", chatbot_id), self._key("ip", chatbot_id, client_ip)),
            caps=(per_chatbot, per_ip),
            lease=secrets.token_hex(8),
            ttl_ms=math.ceil(self.ttl_seconds * 1000),
        )

    async def take(self, request: SlotRequest) -> StreamSlot | None:
        """The slot ``request`` asks for, or None when one of its sets is at its cap."""
        if self._script is not None and self.redis is not None and self.redis.usable:
            try:
                async with self.redis.translated("taking a stream slot"):
                    taken = await self._script(
                        keys=list(request.keys),
                        args=[request.ttl_ms, request.lease, *request.caps],
                    )
                return self.adopt(request) if taken else None
            except SharedStateUnavailable:
                pass  # counted in this process until Redis is back
        return self._acquire_local(request.keys, request.caps, request.lease)

    def adopt(self, request: SlotRequest) -> StreamSlot:
        """The slot for ``request``, taken in Redis (by ``take`` or the gate's script)."""
        self._held[request.lease] = request.keys
        return StreamSlot(self, request.keys, request.lease, shared=True)

    def _acquire_local(
        self, keys: tuple[str, ...], caps: tuple[int, ...], lease: str
    ) -> StreamSlot | None:
        now = time.monotonic()
        sets = [self._local.setdefault(key, {}) for key in keys]
        for leases in sets:
            for expired in [k for k, expiry in leases.items() if expiry <= now]:
                del leases[expired]
        if any(len(leases) >= cap for leases, cap in zip(sets, caps, strict=True)):
            return None
        for leases in sets:
            leases[lease] = now + self.ttl_seconds
        return StreamSlot(self, keys, lease, shared=False)

    async def _release(self, slot: StreamSlot) -> None:
        if not slot.shared:
            for key in slot.keys:
                leases = self._local.get(key)
                if leases is not None:
                    leases.pop(slot.lease, None)
                    if not leases:
                        del self._local[key]
            return
        self._held.pop(slot.lease, None)
        if self.redis is None:
            return
        try:
            async with (
                self.redis.translated("giving back a stream slot"),
                self.redis.client.pipeline(transaction=False) as pipe,
            ):
                for key in slot.keys:
                    pipe.zrem(key, slot.lease)
                await pipe.execute()
        except SharedStateUnavailable:
            pass  # the lease expires by itself

    async def renew(self) -> None:
        """Extend every lease this process holds in Redis by ``ttl`` from now."""
        if not self._held or self._renew is None or self.redis is None or not self.redis.usable:
            return
        by_keys: dict[tuple[str, ...], list[str]] = {}
        for lease, keys in list(self._held.items()):
            by_keys.setdefault(keys, []).append(lease)
        ttl_ms = math.ceil(self.ttl_seconds * 1000)
        try:
            async with self.redis.translated("renewing stream slots"):
                for keys, leases in by_keys.items():
                    await self._renew(keys=list(keys), args=[ttl_ms, *leases])
        except SharedStateUnavailable:
            pass  # the next heartbeat tries again

    def local_count(self, chatbot_id: str) -> int:
        return len(self._local.get(self._key("chatbot", chatbot_id), {}))
