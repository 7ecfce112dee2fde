"""Two API processes (real ``sitechat serve`` subprocesses on loopback) sharing one Redis and
one database: a rate limit is one limit across both, and a config change made through one
reaches the other's in-process cache at once (pub/sub), not after its TTL."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sitechat.storage import Database, Store
from tests.support.redis import IN_CI, REDIS_URL, delete_prefix, redis_available

QUESTION = {"message": "Tell me about quantum chromodynamics", "chatbot_id": "duo"}


@dataclass
class Pair:
    urls: tuple[str, str]
    key: str

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


def wait_ready(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited: {process.stdout.read().decode() if process.stdout else ''}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not start in time")


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
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for index in range(2):
            port = free_port()
            env = {
                **os.environ,
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
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        "from sitechat.cli import app; app()",
                        "serve",
                        "--port",
                        str(port),
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for url, process in zip(urls, processes, strict=True):
            wait_ready(url, process, deadline)
        yield Pair((urls[0], urls[1]), key)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
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
