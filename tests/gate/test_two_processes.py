"""Two API processes (real ``sitechat serve`` subprocesses on loopback) sharing one Redis and
one database: a rate limit is one limit across both, and a config change made through one
reaches the other's in-process cache at once (pub/sub), not after its TTL."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sitechat.storage import Database, Store
from tests.support.processes import Server, free_port, start, stop, wait_ready
from tests.support.redis import IN_CI, REDIS_URL, delete_prefix, redis_available

QUESTION = {"message": "Tell me about quantum chromodynamics", "chatbot_id": "duo"}


@dataclass
class Pair:
    urls: tuple[str, str]
    key: str

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def seed(database_url: str) -> str:
    database = Database(database_url)
    await database.start(migrate=True)
    try:
        store = Store(database)
        org = await store.create_org("Duo")
        await store.create_chatbot(org.id, name="Duo", chatbot_id="duo", greeting="Hello")
        _record, key = await store.create_api_key(org.id, "test")
        return key
    finally:
        await database.close()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    if not asyncio.run(redis_available()):
        message = f"Redis at {REDIS_URL} is not reachable"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    root: Path = tmp_path_factory.mktemp("two-processes")
    database_url = f"sqlite+aiosqlite:///{root / 'shared.db'}"
    key = asyncio.run(seed(database_url))
    prefix = f"sitechat-test:{secrets.token_hex(6)}:"
    servers: list[Server] = []
    try:
        for index in range(2):
            port = free_port()
            env = {
                "SITECHAT_ENVIRONMENT": "test",
                "SITECHAT_DATA_DIR": str(root / f"node{index}"),
                "SITECHAT_DATABASE_URL": database_url,
                "SITECHAT_REDIS_URL": REDIS_URL,
                "SITECHAT_REDIS_KEY_PREFIX": prefix,
                "SITECHAT_DEFAULT_PROVIDER": "extractive",
                "SITECHAT_RATE_LIMIT_PER_IP": "4/minute",
                # A TTL far longer than the test: only an invalidation can refresh a config.
                "SITECHAT_CONFIG_CACHE_TTL_SECONDS": "600",
                "SITECHAT_LOG_LEVEL": "WARNING",
            }
            servers.append(
                Server(f"http://127.0.0.1:{port}", start("serve", "--port", str(port), env=env))
            )
        for server in servers:
            wait_ready(server)
        yield Pair((servers[0].url, servers[1].url), key)
    finally:
        for server in servers:
            stop(server.process)
        asyncio.run(delete_prefix(prefix))


async def test_the_rate_limit_is_shared_by_both_processes(pair: Pair) -> None:
    ip = {"X-Forwarded-For": "203.0.113.50"}
    async with httpx.AsyncClient(timeout=10) as client:
        statuses = []
        for i in range(6):
            url = pair.urls[i % 2]
            response = await client.post(f"{url}/api/public/chat", json=QUESTION, headers=ip)
            statuses.append(response.status_code)
    # Each process alone would allow 4 (8 in all); together they allow 4.
    assert statuses == [200, 200, 200, 200, 429, 429]


async def test_a_change_through_one_process_reaches_the_others_cache(pair: Pair) -> None:
    first, second = pair.urls
    async with httpx.AsyncClient(timeout=10) as client:
        warm = await client.get(f"{second}/api/public/chatbots/duo/config")
        assert warm.json()["greeting"] == "Hello"  # now cached in the second process

        changed = await client.patch(
            f"{first}/api/admin/chatbots/duo",
            headers=pair.admin,
            json={"greeting": "Changed", "fallback_message": "Nothing on that, sorry."},
        )
        assert changed.status_code == 200, changed.text

        started = time.monotonic()
        while True:
            seen = await client.get(f"{second}/api/public/chatbots/duo/config")
            if seen.json()["greeting"] == "Changed" or time.monotonic() - started > 2:
                break
            await asyncio.sleep(0.01)
        assert seen.json()["greeting"] == "Changed"

        answer = await client.post(
            f"{second}/api/public/chat",
            json=QUESTION,
            headers={"X-Forwarded-For": "203.0.113.51"},
        )
        assert answer.status_code == 200
        assert answer.json()["content"] == "Nothing on that, sorry."
