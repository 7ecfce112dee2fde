"""Through a real transaction pooler: PgBouncer in ``pool_mode = transaction``.

Supabase's transaction pooler (port 6543) hands each transaction to whichever server
connection is free; PgBouncer in transaction mode does the same, so it stands in for it here.
With asyncpg's defaults, a statement prepared and cached in one transaction is missing when a
later transaction lands on another server connection (the control test shows it); in
sitechat's pooler mode (what ``:6543`` or ``pgbouncer=true`` turn on) that cannot happen, and
the whole Store works through the pooler, concurrency included.

Needs the ``pgbouncer`` program (Debian package ``pgbouncer``): skipped where it is missing,
failed when ``CI=true``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import make_url, text

from sitechat.errors import StorageError
from sitechat.storage import Database, Store
from tests.storage.conftest import IN_CI, with_params

pytestmark = pytest.mark.postgres

PGBOUNCER_CONFIG = """\
[databases]
{dbname} = host={host} port={port} dbname={dbname} user={user}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
ignore_startup_parameters = extra_float_digits
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        message = "pgbouncer is not installed (Debian package: pgbouncer)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def _read_log(log: Path, stderr: bytes) -> str:
    return log.read_text() if log.exists() else stderr.decode()


async def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    dsn = make_url(url).render_as_string(hide_password=False)
    for _ in range(100):
        if process.poll() is not None:
            _out, err = process.communicate()
            details = await asyncio.to_thread(_read_log, log, err)
            raise RuntimeError(f"pgbouncer exited with {process.returncode}: {details}")
        try:
            connection = await asyncpg.connect(dsn, statement_cache_size=0, timeout=2)
        except (OSError, asyncpg.PostgresError):
            await asyncio.sleep(0.05)
            continue
        await connection.close()
        return
    raise RuntimeError("pgbouncer did not start serving")


@pytest.fixture
def pgbouncer_url(fresh_postgres_url: str) -> Iterator[str]:
    """A fresh database, reachable only through a PgBouncer started for this test."""
    binary = _pgbouncer_binary()
    upstream = make_url(fresh_postgres_url)
    # Not under pytest's tmp_path: pgbouncer drops root to the postgres user, who cannot
    # enter pytest's private folder.
    workdir = Path(tempfile.mkdtemp(prefix="sitechat-pgbouncer-"))
    workdir.chmod(0o777)
    listen_port = _free_port()
    config = workdir / "pgbouncer.ini"
    config.write_text(
        PGBOUNCER_CONFIG.format(
            dbname=upstream.database,
            host=upstream.host or "127.0.0.1",
            port=upstream.port or 5432,
            user=upstream.username or "postgres",
            listen_port=listen_port,
            workdir=workdir,
        )
    )
    config.chmod(0o644)
    command = [binary, str(config)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = upstream.set(host="127.0.0.1", port=listen_port).render_as_string(hide_password=False)
    try:
        asyncio.run(_wait_until_serving(url, process, workdir / "pgbouncer.log"))
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


async def _query_twice_with_the_first_server_taken(url: str) -> None:
    """Run one statement, then again while another client holds the server it ran on.

    The second run lands on the pooler's other server connection, which never saw the
    first run's prepared statement.
    """
    database = Database(url)
    await database.start(migrate=False)
    statement = text("SELECT count(*) FROM pg_class WHERE relname = :name")
    try:
        async with database.session() as session:
            await session.execute(statement, {"name": "orgs"})
        holder = await asyncpg.connect(
            make_url(url).set(query={}).render_as_string(hide_password=False),
            statement_cache_size=0,
        )
        try:
            async with holder.transaction():
                await holder.execute("SELECT 1")
                async with database.session() as session:
                    await session.execute(statement, {"name": "orgs"})
        finally:
            await holder.close()
    finally:
        await database.close()


async def test_default_mode_breaks_behind_a_transaction_pooler(pgbouncer_url: str) -> None:
    """The control: asyncpg's cached prepared statement is missing on the other server."""
    assert not Database(pgbouncer_url).target.transaction_pooler
    with pytest.raises(StorageError) as caught:
        await _query_twice_with_the_first_server_taken(pgbouncer_url)
    assert "does not exist" in str(caught.value.__cause__)


async def test_pooler_mode_survives_switching_server_connections(pgbouncer_url: str) -> None:
    url = with_params(pgbouncer_url, pgbouncer="true")
    assert Database(url).target.transaction_pooler
    await _query_twice_with_the_first_server_taken(url)


async def test_the_store_works_behind_a_transaction_pooler(pgbouncer_url: str) -> None:
    url = with_params(pgbouncer_url, pgbouncer="true")
    workers = [Database(url) for _ in range(3)]
    try:
        await asyncio.gather(*(worker.start(migrate=True) for worker in workers))
        stores = [Store(worker) for worker in workers]
        store = stores[0]
        org = await store.create_org("Acme")
        key, plaintext = await store.create_api_key(org.id)
        assert (await stores[1].authenticate_api_key(plaintext)) is not None
        await store.create_chatbot(org.id, name="Demo", chatbot_id="demo", theme={"c": 1})

        conversations = await asyncio.gather(
            *(stores[i % 3].get_or_create_conversation("demo", "s1") for i in range(10))
        )
        assert len({c.id for c in conversations}) == 1
        conversation = conversations[0]

        async def exchange(i: int) -> None:
            s = stores[i % 3]
            await s.add_message(conversation.id, "user", f"q{i}")
            reply = await s.add_message(conversation.id, "assistant", "", status="streaming")
            await s.finish_message(reply.id, content=f"a{i}", status="complete", usage={"n": i})

        await asyncio.gather(*(exchange(i) for i in range(8)))
        messages = await stores[2].list_messages(conversation.id)
        assert len(messages) == 16 and all(m.status == "complete" for m in messages)
        assert len(await store.recent_messages(conversation.id, 5)) == 5
        assert (await stores[1].get_chatbot("demo")).theme == {"c": 1}  # type: ignore[union-attr]
        assert await store.revoke_api_key(org.id, key.id) is True
        assert await store.delete_chatbot("demo") is True
        assert await stores[1].list_messages(conversation.id) == []
        assert all([await s.ping() for s in stores])
    finally:
        await asyncio.gather(*(worker.close() for worker in workers))
