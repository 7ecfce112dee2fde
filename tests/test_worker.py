"""``sitechat worker`` beside API processes: one queue in PostgreSQL, shared by all.

Two ``sitechat serve`` processes with ``SITECHAT_RUN_JOBS=false`` and one ``sitechat worker``
share this machine's PostgreSQL and Redis. A document uploaded through API process A is
claimed and indexed by the worker, and its status reads ``done`` through API process B.

No Qdrant server can run here, so each process has its own embedded index (its own data
dir): this test checks the queue (who runs the job, and that everyone sees its outcome),
not that A and B can then search the worker's index, which a shared Qdrant server gives a
deployment.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.storage.conftest import (
    create_postgres_database,
    drop_postgres_database,
    require_postgres,
)
from tests.support.processes import Server, free_port, run_cli, start, stop, wait_ready
from tests.support.redis import REDIS_URL

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
async def postgres() -> AsyncIterator[str]:
    try:
        url = await create_postgres_database("sitechat_test_worker")
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        require_postgres(exc)
    try:
        yield url
    finally:
        await drop_postgres_database(url)


async def test_an_upload_through_one_api_process_is_indexed_by_the_worker(
    tmp_path: Path, postgres: str, redis_prefix: str
) -> None:
    shared = {
        "SITECHAT_ENVIRONMENT": "test",
        "SITECHAT_DATABASE_URL": postgres,
        "SITECHAT_REDIS_URL": REDIS_URL,
        "SITECHAT_REDIS_KEY_PREFIX": redis_prefix,
        "SITECHAT_DEFAULT_PROVIDER": "extractive",
        "SITECHAT_LOG_LEVEL": "WARNING",
    }
    admin_env = {**shared, "SITECHAT_DATA_DIR": str(tmp_path / "admin")}
    org = await asyncio.to_thread(run_cli, "db", "upgrade", env=admin_env)
    assert org.returncode == 0, org.stderr
    org = await asyncio.to_thread(run_cli, "org", "create", "Acme", env=admin_env)
    assert org.returncode == 0, org.stderr
    org_id = org.stdout.split("org id:")[1].split()[0]
    key = org.stdout.split("api key:")[1].split()[0]
    bot = await asyncio.to_thread(
        run_cli, "chatbot", "create", "--org", org_id, "--name", "Acme", "--id", "acme",
        env=admin_env,
    )  # fmt: skip
    assert bot.returncode == 0, bot.stderr

    apis: list[Server] = []
    worker = start("worker", env={**shared, "SITECHAT_DATA_DIR": str(tmp_path / "worker")})
    try:
        for name in ("a", "b"):
            port = free_port()
            env = {
                **shared,
                "SITECHAT_DATA_DIR": str(tmp_path / name),
                "SITECHAT_RUN_JOBS": "false",
            }
            apis.append(
                Server(f"http://127.0.0.1:{port}", start("serve", "--port", str(port), env=env))
            )
        for api in apis:
            await asyncio.to_thread(wait_ready, api)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(timeout=30, headers=headers) as client:
            upload = await client.post(
                f"{apis[0].url}/api/admin/chatbots/acme/documents",
                files={"file": ("parking.md", b"# Parking\n\nParking is free after 6 pm.\n")},
            )
            assert upload.status_code == 202, upload.text
            document_id = upload.json()["id"]
            status = ""
            for _ in range(300):
                seen = await client.get(
                    f"{apis[1].url}/api/admin/chatbots/acme/documents/{document_id}"
                )
                status = seen.json()["status"]
                if status in ("done", "failed"):
                    break
                await asyncio.sleep(0.1)
            assert status == "done", seen.text
            assert seen.json()["chunk_count"] >= 1

        connection = await asyncpg.connect(postgres.replace("+asyncpg", ""))
        try:
            # The job row ends just after its document does: the runner records it last.
            for _ in range(100):
                row = await connection.fetchrow(
                    "SELECT status, worker FROM ingestion_jobs WHERE document_id = $1",
                    document_id,
                )
                if row["status"] != "running":
                    break
                await asyncio.sleep(0.05)
        finally:
            await connection.close()
        assert row["status"] == "done"
        assert f":{worker.pid}:" in row["worker"]  # the worker ran it, not an API process

        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 15) == 0
        assert worker.stdout is not None
        assert b"worker stopped" in worker.stdout.read()
    finally:
        for api in apis:
            stop(api.process)
        stop(worker)
