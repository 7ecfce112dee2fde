"""Moving windows in Redis, shared by every API process: the rate limiter's real adapter.

The rule is ``MemoryWindows``' and the ``limits`` library's ``MovingWindowRateLimiter``'s: a
hit is allowed when fewer than ``amount`` hits of the same limit and identity fall in the
last ``window`` seconds. The storage is ``limits``' too, so windows carry over between
versions: a list per limit and identity, newest hit first, trimmed to ``amount`` entries,
under ``<prefix>limits:<item.key_for(scope, *identity)>``; a hit is allowed when the entry
at index ``amount - 1`` is older than the window.

What ``limits`` cannot do is check a request's limits in one round trip. A chat request
has stages (its IP, visitor and session first, then the chatbot-wide limit; see
``rate_limits``) and, once they pass, wants a stream slot (``stream_slots``): through
``limits`` that is a script call per limit, in two round trips one after the other (the
narrow limits, then the chatbot-wide one beside the slot's script). Here one script does
all of it, atomically: each stage's windows (every window of a stage is counted if it has
room, and the first full one refuses); the next stage only if none did; and the slot only
if every stage passed. Under load each wait is a turn of the event loop behind every other
request's work: one instead of two halved the gate's median at 50 streams at once
(``docs/rate-limits.md``). The time is Redis's own (``TIME``), one clock for every process.

Every key of a call goes to one Redis: a Redis Cluster would need them in one hash slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem

from sitechat.gate.stream_slots import SLOT_LUA, SlotRequest
from sitechat.shared_state.redis_link import RedisLink

# KEYS: the windows' lists, stage by stage, then the stream slot's sorted sets (if any).
# ARGV: the number of windows; for each window its amount, its length in seconds and its
# stage; then, with a slot: its ttl in ms, its lease and one cap per set.
# Returns {refused, entry, slot}: the 1-based index of the window that refused (0: none)
# and its oldest hit (seconds, as stored); slot 1 if the slot was taken.
_ADMIT = (
    """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = tonumber(ARGV[1])
local i = 1
while i <= n do
  local stage = ARGV[3 * i + 1]
  local refused, entry = 0, ''
  while i <= n and ARGV[3 * i + 1] == stage do
    local key, amount, seconds = KEYS[i], tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
    local oldest = redis.call('LINDEX', key, amount - 1)
    if oldest and tonumber(oldest) >= now - seconds then
      if refused == 0 then
        refused, entry = i, oldest
      end
    else
      redis.call('LPUSH', key, string.format('%.6f', now))
      redis.call('LTRIM', key, 0, amount - 1)
      redis.call('EXPIRE', key, seconds)
    end
    i = i + 1
  end
  if refused > 0 then
    return {refused, entry, 0}
  end
end
if #KEYS == n then
  return {0, '', 0}
end
local slot_keys = {}
for k = n + 1, #KEYS do
  slot_keys[#slot_keys + 1] = KEYS[k]
end
local a = 3 * n + 2
"""
    + SLOT_LUA.format(keys="slot_keys", ttl="ARGV[a]", lease="ARGV[a + 1]", cap="ARGV[a + 1 + k]")
    + """
return {0, '', taken}
"""
)

# KEYS: one window's list; ARGV: its amount. Returns {now, hits newest first}.
_STATS = """
local t = redis.call('TIME')
return {t[1] .. '.' .. string.format('%06d', tonumber(t[2])),
        redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)}
"""

Window = tuple[RateLimitItem, tuple[str, ...]]  # a limit and the identity it counts


@dataclass(frozen=True, slots=True)
class Outcome:
    refused: int | None  # the index (over every stage's windows, in order) that refused
    oldest: float  # that window's oldest hit (unix seconds)
    slot_taken: bool


class RedisWindows:
    def __init__(self, redis: RedisLink) -> None:
        self.redis = redis
        self._admit = redis.client.register_script(_ADMIT)
        self._stats = redis.client.register_script(_STATS)

    def key(self, item: RateLimitItem, *identity: str) -> str:
        return self.redis.key("limits") + ":" + item.key_for(*identity)

    async def admit(
        self, stages: Sequence[Sequence[Window]], slot: SlotRequest | None = None
    ) -> Outcome:
        """Count a request against every window, stage by stage, then take ``slot`` if none
        refused: one script call. Redis errors propagate (``RedisLink.translated``)."""
        keys: list[str] = []
        args: list[str | int | float] = [0]
        for number, stage in enumerate(stages):
            for item, identity in stage:
                keys.append(self.key(item, *identity))
                args += [item.amount, item.get_expiry(), number]
        args[0] = len(keys)
        if slot is not None:
            keys += slot.keys
            args += [slot.ttl_ms, slot.lease, *slot.caps]
        refused, oldest, taken = await self._admit(keys=keys, args=args)
        return Outcome(
            refused=int(refused) - 1 if int(refused) else None,
            oldest=float(oldest) if oldest else 0.0,
            slot_taken=bool(taken),
        )

    async def window_stats(self, item: RateLimitItem, *identity: str) -> tuple[float, int]:
        """(when the oldest hit in the window leaves it, in unix seconds; hits remaining)."""
        now_text, entries = await self._stats(keys=[self.key(item, *identity)], args=[item.amount])
        now, seconds = float(now_text), item.get_expiry()
        hits = [float(e) for e in entries if float(e) > now - seconds]
        oldest = hits[-1] if hits else now
        return oldest + seconds, item.amount - len(hits)

    async def clear(self, item: RateLimitItem, *identity: str) -> None:
        await self.redis.client.delete(self.key(item, *identity))
