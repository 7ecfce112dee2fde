"""Graceful restarts, with a real ``sitechat serve`` process and a real SIGTERM.

After SIGTERM the worker fails readiness at once and refuses new answers (503,
``server_restarting``); an answer that can finish within the grace period finishes; one
that cannot is stopped when the period ends: its stream ends with an ``error`` event whose
code tells the widget to ask again, and its partial text is stored as interrupted. Then the
process exits.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import Server, free_port, run_cli, start, stop, wait_ready
from tests.support.scripted_openai import Script, ScriptedOpenAI

GRACE_SECONDS = 2.0
DOC = "# Kettles\n\nThe Acme kettle boils one litre of water in ninety seconds.\n"


async def first_token(events: list[dict[str, Any]]) -> None:
    # Polled: the events list is filled by another task reading the stream.
    while not any(e["type"] == "token" for e in events):  # noqa: ASYNC110
        await asyncio.sleep(0.02)


async def test_sigterm_lets_short_answers_finish_and_stops_long_ones_retryably(
    tmp_path: Path,
) -> None:
    with ScriptedOpenAI() as upstream:
        env = {
            "SITECHAT_ENVIRONMENT": "test",
            "SITECHAT_DATA_DIR": str(tmp_path / "data"),
            "SITECHAT_DEFAULT_PROVIDER": "openai",
            "SITECHAT_OPENAI_API_KEY": "test-key",
            "SITECHAT_OPENAI_BASE_URL": upstream.base_url,
            "SITECHAT_OPENAI_MODEL": "scripted-model",
            "SITECHAT_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
            "SITECHAT_LOG_LEVEL": "WARNING",
        }
        org = run_cli("org", "create", "Acme", env=env)
        org_id = org.stdout.split("org id:")[1].split()[0]
        run_cli(
            "chatbot", "create", "--org", org_id, "--name", "Acme", "--id", "acme",
            "--any-origin", "--no-visitor-token", env=env,
        )  # fmt: skip
        (tmp_path / "kettles.md").write_text(DOC)
        assert run_cli("ingest", "acme", str(tmp_path / "kettles.md"), env=env).returncode == 0

        # The long answer is asked first, so it gets the first (slow) script.
        upstream.enqueue(
            Script(tokens=[f"w{i} " for i in range(400)], token_gap=0.05),
            Script(tokens=[f"s{i} " for i in range(10)], token_gap=0.1),
        )
        port = free_port()
        server = Server(f"http://127.0.0.1:{port}", start("serve", "--port", str(port), env=env))
        try:
            wait_ready(server, path="/readyz")
            async with httpx.AsyncClient(timeout=30) as client:
                long_events: list[dict[str, Any]] = []
                short_events: list[dict[str, Any]] = []

                long_task = asyncio.create_task(
                    read_into(client, server.url, "How fast does the kettle boil?", long_events)
                )
                await asyncio.wait_for(first_token(long_events), 10)
                short_task = asyncio.create_task(
                    read_into(client, server.url, "How fast is the Acme kettle?", short_events)
                )
                await asyncio.wait_for(first_token(short_events), 10)

                signalled = time.monotonic()
                server.process.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.3)
                ready = await client.get(f"{server.url}/readyz")
                assert ready.status_code == 503 and ready.json()["status"] == "draining"
                refused = await client.post(
                    f"{server.url}/api/public/chat",
                    json={"message": "Anything else?", "chatbot_id": "acme"},
                )
                assert refused.status_code == 503
                assert refused.json()["code"] == "server_restarting"
                assert refused.headers["retry-after"] == "1"

                await asyncio.wait_for(asyncio.gather(long_task, short_task), 20)
                stopped_after = time.monotonic() - signalled
        finally:
            stop(server.process)
        assert server.process.returncode is not None

    assert short_events[-1]["type"] == "complete"
    last = long_events[-1]
    assert last["type"] == "error" and last["code"] == "server_restarting"
    assert last["partial"] is True and last["message_id"]
    assert GRACE_SECONDS <= stopped_after < GRACE_SECONDS + 5
    streamed = "".join(e["content"] for e in long_events if e["type"] == "token")

    with sqlite3.connect(tmp_path / "data" / "sitechat.db") as db:
        status, error_code, content, usage = db.execute(
            "SELECT status, error_code, content, usage FROM messages WHERE id = ?",
            (last["message_id"],),
        ).fetchone()
    assert status == "interrupted" and error_code == "server_restarting"
    assert content == streamed and json.loads(usage)["prompt_tokens"] > 0


async def read_into(
    client: httpx.AsyncClient, url: str, question: str, into: list[dict[str, Any]]
) -> None:
    body = {"message": question, "chatbot_id": "acme"}
    async with client.stream("POST", f"{url}/api/public/chat/stream", json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                into.append(json.loads(line[6:]))
