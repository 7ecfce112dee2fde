"""No orphans on the embedded defaults (SQLite, no Redis): a server killed with SIGKILL
mid-answer leaves the message ``streaming``; the restarted server's sweeper ends it as
interrupted, keeping the text its last checkpoint saved, and a reader resuming it gets an
``answer_orphaned`` error."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.answers import answer_path, read_stream, read_then_hang_up
from tests.support.processes import Server, free_port, run_cli, start, stop, wait_ready
from tests.support.scripted_openai import Script, ScriptedOpenAI

BODY = {"message": "When do orders ship?", "chatbot_id": "acme"}
TOKENS = [f"w{i} " for i in range(10)]


def _row(data_dir: Path, message_id: str) -> Any:
    with sqlite3.connect(data_dir / "sitechat.db") as db:
        db.row_factory = sqlite3.Row
        return db.execute(
            "SELECT status, content, error_code FROM messages WHERE id = ?", (message_id,)
        ).fetchone()


async def test_kill_9_then_restart_ends_the_answer_with_its_checkpointed_text(
    tmp_path: Path, scripted_openai: ScriptedOpenAI
) -> None:
    data = tmp_path / "data"
    env = {
        "SITECHAT_ENVIRONMENT": "test",
        "SITECHAT_DATA_DIR": str(data),
        "SITECHAT_DEFAULT_PROVIDER": "openai",
        "SITECHAT_OPENAI_API_KEY": "test-key",
        "SITECHAT_OPENAI_BASE_URL": scripted_openai.base_url,
        "SITECHAT_QUERY_REWRITE_PROVIDERS": "",
        "SITECHAT_LOG_LEVEL": "WARNING",
        "SITECHAT_ANSWER_CHECKPOINT_SECONDS": "0.2",
    }
    org = run_cli("org", "create", "Acme", env=env)
    assert org.returncode == 0, org.stderr
    org_id = org.stdout.split("org id:")[1].split()[0]
    bot = run_cli(
        "chatbot", "create", "--org", org_id, "--name", "Acme", "--id", "acme",
        "--any-origin", "--no-visitor-token", env=env,
    )  # fmt: skip
    assert bot.returncode == 0, bot.stderr
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "shipping.md").write_text("# Shipping\n\nOrders ship within two business days.\n")
    ingested = run_cli("ingest", "acme", str(kb), env=env)
    assert ingested.returncode == 0, ingested.stderr

    port = str(free_port())
    server = Server(f"http://127.0.0.1:{port}", start("serve", "--port", port, env=env))
    try:
        await asyncio.to_thread(wait_ready, server)
        scripted_openai.script(Script(tokens=TOKENS, stall_after=3))
        first = await read_then_hang_up(server.url, BODY, tokens=3)
        start_event = first[0].data
        assert start_event is not None
        session, message = start_event["session_id"], start_event["message_id"]
        deadline = time.monotonic() + 10
        while _row(data, message)["content"] != "".join(TOKENS[:3]):  # checkpointed
            assert time.monotonic() < deadline, dict(_row(data, message))
            await asyncio.sleep(0.05)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        assert _row(data, message)["status"] == "streaming"

        server = Server(server.url, start("serve", "--port", port, env=env))
        await asyncio.to_thread(wait_ready, server)
        deadline = time.monotonic() + 10
        while (row := _row(data, message))["status"] == "streaming":
            assert time.monotonic() < deadline, "the orphan was not swept"
            await asyncio.sleep(0.05)
        assert row["status"] == "interrupted"
        assert row["error_code"] == "answer_orphaned"
        assert row["content"] == "".join(TOKENS[:3])

        frames = await read_stream(
            server.url, answer_path("acme", session, message, "stream"), params={"after": 5}
        )
        assert len(frames) == 1 and frames[0].type == "error"
        assert frames[0].data is not None and frames[0].data["code"] == "answer_orphaned"
        async with httpx.AsyncClient() as client:
            listed = await client.get(
                f"{server.url}/api/public/chatbots/acme/sessions/{session}/messages"
            )
        answer = listed.json()["messages"][-1]
        assert answer["status"] == "interrupted" and answer["content"] == row["content"]
    finally:
        stop(server.process)
