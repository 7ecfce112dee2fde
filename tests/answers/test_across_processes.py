"""Answers across real ``sitechat serve`` processes sharing Postgres and Redis: an answer
generated in process A resumes and stops through process B; after A is killed with SIGKILL
its answer is swept (the text its frames recorded is kept), resuming it ends with
``answer_orphaned``, and its stream slot is free again once its heartbeat lapses.

A holds the search index (its own embedded Qdrant, fed by its job runner); B has none and
needs none: resuming and stopping never search.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.storage.conftest import (
    create_postgres_database,
    drop_postgres_database,
    require_postgres,
)
from tests.support.answers import (
    answer_path,
    assert_contiguous,
    joined_tokens,
    read_stream,
    read_then_hang_up,
)
from tests.support.processes import Server, free_port, run_cli, start, stop, wait_ready
from tests.support.redis import IN_CI, REDIS_URL, delete_prefix, redis_available
from tests.support.scripted_openai import Script, ScriptedOpenAI

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def require_redis() -> None:
    message = f"Redis at {REDIS_URL} is not reachable"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


BODY = {"message": "When do orders ship?", "chatbot_id": "acme"}
TOKENS = [f"w{i} " for i in range(10)]
DOC = (
    "# Shipping\n\nOrders ship within two business days. Delivery inside the EU takes three "
    "to five days.\n"
)


@dataclass
class Cluster:
    a: Server
    b: Server
    env_a: dict[str, str]
    postgres: str
    tmp: Path

    def restart_a(self) -> Server:
        port = self.a.url.rsplit(":", 1)[1]
        self.a = Server(self.a.url, start("serve", "--port", port, env=self.env_a))
        wait_ready(self.a)
        return self.a


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI() as server:
        yield server


@pytest.fixture
def scripted_openai(scripted: ScriptedOpenAI) -> ScriptedOpenAI:
    return scripted


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, scripted: ScriptedOpenAI
) -> Iterator[Cluster]:
    """Both processes, set up once for this module (each test's answers are its own)."""
    if not asyncio.run(redis_available()):
        require_redis()
    try:
        postgres = asyncio.run(create_postgres_database("sitechat_test_answers"))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        require_postgres(exc)
    prefix = f"sitechat-test:{secrets.token_hex(6)}:"
    tmp_path = tmp_path_factory.mktemp("cluster")
    shared = {
        "SITECHAT_ENVIRONMENT": "test",
        "SITECHAT_DATABASE_URL": postgres,
        "SITECHAT_REDIS_URL": REDIS_URL,
        "SITECHAT_REDIS_KEY_PREFIX": prefix,
        "SITECHAT_DEFAULT_PROVIDER": "openai",
        "SITECHAT_OPENAI_API_KEY": "test-key",
        "SITECHAT_OPENAI_BASE_URL": scripted.base_url,
        "SITECHAT_OPENAI_MODEL": "scripted-model",
        "SITECHAT_QUERY_REWRITE_PROVIDERS": "",
        "SITECHAT_LOG_LEVEL": "WARNING",
        "SITECHAT_WORKER_HEARTBEAT_SECONDS": "1.5",
        "SITECHAT_STREAM_SLOT_TTL_SECONDS": "1.5",
        "SITECHAT_ORPHAN_SWEEP_INTERVAL_SECONDS": "0.5",
        "SITECHAT_MAX_STREAMS_PER_CHATBOT": "1",
        "SITECHAT_RATE_LIMIT_PER_IP": "1000/minute",
        "SITECHAT_RATE_LIMIT_PER_SESSION": "1000/minute",
        "SITECHAT_RATE_LIMIT_PER_VISITOR": "1000/minute",
        "SITECHAT_RATE_LIMIT_CONFIG_PER_IP": "1000/minute",
    }
    env_a = {**shared, "SITECHAT_DATA_DIR": str(tmp_path / "a")}
    env_b = {**shared, "SITECHAT_DATA_DIR": str(tmp_path / "b"), "SITECHAT_RUN_JOBS": "false"}
    setup = {**shared, "SITECHAT_DATA_DIR": str(tmp_path / "cli")}
    servers: list[Server] = []
    running: Cluster | None = None
    try:
        for args in (("db", "upgrade"), ("org", "create", "Acme")):
            done = run_cli(*args, env=setup)
            assert done.returncode == 0, done.stderr
        org_id = done.stdout.split("org id:")[1].split()[0]
        bot = run_cli(
            "chatbot", "create", "--org", org_id, "--name", "Acme", "--id", "acme",
            "--any-origin", "--no-visitor-token", env=setup,
        )  # fmt: skip
        assert bot.returncode == 0, bot.stderr
        for env in (env_a, env_b):
            port = free_port()
            servers.append(
                Server(f"http://127.0.0.1:{port}", start("serve", "--port", str(port), env=env))
            )
        for server in servers:
            wait_ready(server)
        kb = tmp_path / "kb"
        kb.mkdir()
        (kb / "shipping.md").write_text(DOC)
        # Queued for A's job runner, which holds the index in A's data dir.
        ingested = run_cli("ingest", "acme", str(kb), env=env_a)
        assert ingested.returncode == 0 and "1 documents ready" in ingested.stdout, (
            ingested.stdout + ingested.stderr
        )
        running = Cluster(servers[0], servers[1], env_a, postgres, tmp_path)
        yield running
    finally:
        if running is not None:
            servers[0] = running.a
        for server in servers:
            stop(server.process)
        asyncio.run(drop_postgres_database(postgres))
        asyncio.run(delete_prefix(prefix))


@pytest.mark.parametrize("cut_after", [1, 6])
async def test_an_answer_generated_in_a_resumes_through_b(
    cluster: Cluster, scripted_openai: ScriptedOpenAI, cut_after: int
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, token_gap=0.05))
    first = await read_then_hang_up(cluster.a.url, BODY, tokens=cut_after)
    start_event = first[0].data
    assert start_event is not None
    path = answer_path("acme", start_event["session_id"], start_event["message_id"], "stream")
    rest = await read_stream(
        cluster.b.url, path, headers={"Last-Event-ID": str(first[-1].event_id)}
    )
    frames = first + rest
    assert_contiguous(frames)
    complete = frames[-1].data
    assert complete is not None and complete["type"] == "complete"
    assert joined_tokens(frames) == complete["content"] == "".join(TOKENS)


async def test_stop_sent_to_b_stops_the_answer_running_in_a(
    cluster: Cluster, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, stall_after=3))
    first = await read_then_hang_up(cluster.a.url, BODY, tokens=3)
    start_event = first[0].data
    assert start_event is not None
    session, message = start_event["session_id"], start_event["message_id"]
    async with httpx.AsyncClient(timeout=10) as client:
        sent_at = asyncio.get_running_loop().time()
        stopped = await client.post(cluster.b.url + answer_path("acme", session, message, "stop"))
    assert stopped.status_code == 200
    assert stopped.json() == {"message_id": message, "status": "stopping"}
    record = await scripted_openai.wait_closed(timeout=5)
    assert record.closed_by == "client"
    assert record.closed_at is not None and record.closed_at - sent_at < 1.0
    # A reader joining through B sees the ordinary ending, marked stopped.
    rest = await read_stream(
        cluster.b.url,
        answer_path("acme", session, message, "stream"),
        params={"after": first[-1].event_id},
    )
    complete = rest[-1].data
    assert complete is not None and complete["type"] == "complete"
    assert complete["stopped"] is True
    assert complete["content"] == "".join(TOKENS[:3]) == joined_tokens(first + rest)
    row = await _message_row(cluster.postgres, message)
    assert row["status"] == "stopped" and row["content"] == complete["content"]
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0


async def test_kill_9_mid_answer_then_restart_sweeps_the_orphan(
    cluster: Cluster, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, stall_after=4))
    first = await read_then_hang_up(cluster.a.url, BODY, tokens=4)
    start_event = first[0].data
    assert start_event is not None
    session, message = start_event["session_id"], start_event["message_id"]
    await asyncio.sleep(0.2)  # the frames reach Redis
    os.kill(cluster.a.process.pid, signal.SIGKILL)
    cluster.a.process.wait(timeout=10)
    killed_at = time.monotonic()
    assert (await _message_row(cluster.postgres, message))["status"] == "streaming"

    await asyncio.to_thread(cluster.restart_a)
    row = await _wait_row(cluster.postgres, message, lambda r: r["status"] != "streaming")
    assert row["status"] == "interrupted"
    assert row["error_code"] == "answer_orphaned"
    assert row["content"] == "".join(TOKENS[:4])  # the recorded frames were the source
    assert row["completion_tokens"] > 0

    # A reader resuming it gets the rest of what was recorded, then the orphan's error.
    rest = await read_stream(
        cluster.b.url,
        answer_path("acme", session, message, "stream"),
        params={"after": 2},
    )
    assert rest[-1].type == "error"
    error = rest[-1].data
    assert error is not None and error["code"] == "answer_orphaned" and error["partial"] is True
    assert joined_tokens(first[:2] + rest) == row["content"]
    assert_contiguous(first[:2] + rest)

    # The dead process's stream slot (the chatbot's only one) is free again: within the
    # heartbeat, not the old ten minutes.
    scripted_openai.script(Script(tokens=["again."]))
    status = await _first_accepted(cluster.a.url, deadline=killed_at + 20)
    assert status == 200


async def _first_accepted(url: str, *, deadline: float) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            response = await client.post(f"{url}/api/public/chat", json=BODY)
            if response.status_code != 429 or time.monotonic() > deadline:
                return response.status_code
            await asyncio.sleep(0.2)


async def _message_row(postgres: str, message_id: str) -> Any:
    connection = await asyncpg.connect(postgres.replace("+asyncpg", ""))
    try:
        return await connection.fetchrow(
            "SELECT status, content, error_code, prompt_tokens, completion_tokens, worker_id "
            "FROM messages WHERE id = $1",
            message_id,
        )
    finally:
        await connection.close()


async def _wait_row(postgres: str, message_id: str, done: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        row = await _message_row(postgres, message_id)
        if done(row) or time.monotonic() > deadline:
            return row
        await asyncio.sleep(0.1)
