"""The servers the ``load`` benchmark measures, each a real process of its own on loopback:

- ``relay``: ``benchmarks.relay`` under uvicorn (uvloop, httptools), the baseline;
- ``sitechat-sqlite``: ``sitechat serve`` (one worker) on the embedded defaults, with the
  demo chatbot (``sitechat demo``: sitechat's own docs) in a fresh data dir;
- ``sitechat-pg-redis``: the same on a throwaway PostgreSQL database and a Redis key prefix
  of its own, both removed afterwards.

Each child starts from this environment without any ``SITECHAT_*`` variable (a developer's
shell or ``.env`` must not change what is measured) and runs in its data dir, so no
``.env`` is read either. Limits that would refuse a benchmark's traffic are raised.
Every context manager stops its process (SIGTERM, then SIGKILL) however the block ends.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio

from benchmarks.relay import UPSTREAM_ENV
from sitechat.domain import DEMO_CHATBOT_ID
from tests.support.processes import CLI, Server, free_port, stop, wait_ready
from tests.support.redis import REDIS_URL, delete_prefix

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
UNLIMITED = "100000/minute"


@dataclass(frozen=True)
class Running:
    """A server under test: its name, where to post, and its process (for /proc)."""

    name: str
    port: int
    path: str
    chatbot_id: str | None  # None: the relay, which has no chatbots
    pid: int


def _clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SITECHAT_")}
    return {**env, **extra}


def sitechat_env(data_dir: Path, upstream_url: str, **extra: str) -> dict[str, str]:
    """``sitechat serve``'s environment: the scripted upstream as its model, no limit in
    the way, a short shutdown grace (answers left open must not hold the stop)."""
    return {
        "SITECHAT_DATA_DIR": str(data_dir),
        "SITECHAT_LOG_LEVEL": "WARNING",
        "SITECHAT_DEFAULT_PROVIDER": "openai",
        "SITECHAT_OPENAI_API_KEY": "bench",
        "SITECHAT_OPENAI_BASE_URL": upstream_url,
        "SITECHAT_RATE_LIMIT_PER_IP": UNLIMITED,
        "SITECHAT_RATE_LIMIT_PER_VISITOR": UNLIMITED,
        "SITECHAT_RATE_LIMIT_PER_SESSION": UNLIMITED,
        "SITECHAT_RATE_LIMIT_PER_CHATBOT": UNLIMITED,
        "SITECHAT_RATE_LIMIT_CONFIG_PER_IP": UNLIMITED,
        "SITECHAT_MAX_STREAMS_PER_IP": "100000",
        "SITECHAT_MAX_STREAMS_PER_CHATBOT": "100000",
        "SITECHAT_SHUTDOWN_GRACE_SECONDS": "1",
        **extra,
    }


@contextmanager
def _process(
    name: str, args: list[str], env: Mapping[str, str], cwd: Path, path: str, chatbot: str | None
) -> Iterator[Running]:
    port = free_port()
    log = (cwd / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [*args, "--port", str(port)],
        env=_clean_env(env),
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_ready(Server(f"http://{HOST}:{port}", process), seconds=90)
        except RuntimeError as exc:
            raise RuntimeError(f"{name}: {exc}; its log: {_tail(cwd / f'{name}.log')}") from exc
        yield Running(name, port, path, chatbot, process.pid)
    finally:
        stop(process)
        log.close()
        if process.returncode not in (0, -15):  # a crash is worth reading
            print(f"  {name} exited with {process.returncode}; log tail:\n{_tail(log.name)}")


def _tail(path: Path | str, lines: int = 20) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def relay(upstream_url: str, workdir: Path) -> AbstractContextManager[Running]:
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable, "-m", "uvicorn", "--factory", "benchmarks.relay:create_app",
        "--host", HOST, "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    env = {UPSTREAM_ENV: upstream_url, "PYTHONPATH": str(REPO)}
    return _process("relay", args, env, workdir, "/chat/stream", None)


def _seed_demo(env: Mapping[str, str], cwd: Path) -> None:
    """``sitechat demo``: an org and the chatbot ``demo`` over sitechat's own docs."""
    done = subprocess.run(
        [*CLI, "demo"],
        env=_clean_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0 or "demo ready" not in done.stdout:
        raise RuntimeError(f"sitechat demo failed:\n{done.stdout}\n{done.stderr}")
    if "0 failed" not in done.stdout:
        print(f"  warning: some demo documents failed to index:\n{done.stdout}")


def sitechat(name: str, env: Mapping[str, str], workdir: Path) -> AbstractContextManager[Running]:
    """``sitechat serve`` (one worker) with the demo chatbot seeded first."""
    workdir.mkdir(parents=True, exist_ok=True)
    _seed_demo(env, workdir)
    return _process(name, [*CLI, "serve"], env, workdir, "/api/public/chat/stream", DEMO_CHATBOT_ID)


@asynccontextmanager
async def postgres_and_redis() -> AsyncIterator[dict[str, str]]:
    """A throwaway PostgreSQL database and Redis key prefix, as ``SITECHAT_*`` variables;
    both are removed when the block ends. Raises ``OSError``/``TimeoutError``/asyncpg's
    errors when PostgreSQL is not there, and Redis's when Redis is not."""
    from redis.asyncio import Redis

    from tests.storage.conftest import create_postgres_database, drop_postgres_database

    redis = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await redis.ping()
    finally:
        await redis.aclose()
    url = await create_postgres_database("sitechat_bench_load")
    prefix = f"sitechat-bench:{secrets.token_hex(4)}:"
    try:
        yield {
            "SITECHAT_DATABASE_URL": url,
            "SITECHAT_REDIS_URL": REDIS_URL,
            "SITECHAT_REDIS_KEY_PREFIX": prefix,
        }
    finally:
        with anyio.CancelScope(shield=True):
            await delete_prefix(prefix)
            await drop_postgres_database(url)
