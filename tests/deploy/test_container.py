"""sitechat's API-only image, built from ``deploy/Dockerfile`` on a local debootstrap'd Debian
and run with ``--network host`` against this machine's PostgreSQL and Redis, with the
scripted OpenAI-compatible model on a loopback port.

The container is set up as an owner would: ``docker exec … sitechat org create``,
``chatbot create`` and ``ingest`` of a folder mounted read-only. Then an answer streams
from it directly and through the host's nginx (``nginx/sitechat.conf.template``). No Qdrant
server can run here, so the container keeps its index embedded, in memory (tmpfs).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio

from sitechat.gate.visitor_tokens import HEADER as VISITOR_TOKEN_HEADER
from tests.conftest import SHOP_DOCS
from tests.deploy.engine import (
    BuiltImage,
    Docker,
    missing,
    run_container,
    wait_healthy,
)
from tests.nginx.harness import RunningNginx, run_nginx
from tests.support.redis import REDIS_URL, delete_prefix, redis_available
from tests.support.scripted_openai import Script, ScriptedOpenAI
from tests.support.sse_client import Frame, iter_frames
from tests.widget.stack import free_port

pytestmark = [pytest.mark.docker, pytest.mark.postgres, pytest.mark.redis]
in_module_loop = pytest.mark.asyncio(loop_scope="module")

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CHATBOT_ID = "deploy"
QUESTION = "How do returns work?"


# --- this machine's PostgreSQL and Redis -----------------------------------------------------


async def _create_database() -> str:
    name = f"sitechat_deploy_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


async def _drop_database(name: str) -> None:
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A new database on the local PostgreSQL (its URL), dropped afterwards."""
    try:
        name = asyncio.run(_create_database())
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        missing(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc!r}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_drop_database(name))


@contextmanager
def throwaway_redis_prefix() -> Iterator[str]:
    if not asyncio.run(redis_available()):
        missing(f"Redis at {REDIS_URL} is not reachable")
    prefix = f"sitechat-test:deploy:{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        asyncio.run(delete_prefix(prefix))


# --- one running container --------------------------------------------------------------------


@dataclass(frozen=True)
class Running:
    name: str
    port: int
    org_key: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def write_env_file(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    path.chmod(0o600)
    return path


def container_settings(
    *, database_url: str, redis_prefix: str, model: ScriptedOpenAI, port: int, **more: str
) -> dict[str, str]:
    """Production settings, as a deployment sets them, pointed at this machine's services."""
    return {
        "SITECHAT_ENVIRONMENT": "production",
        "SITECHAT_HOST": "127.0.0.1",
        "SITECHAT_PORT": str(port),
        "SITECHAT_DATABASE_URL": database_url,
        "SITECHAT_REDIS_URL": REDIS_URL,
        "SITECHAT_REDIS_KEY_PREFIX": redis_prefix,
        "SITECHAT_VISITOR_TOKEN_SECRET": secrets.token_hex(32),
        "SITECHAT_BOOTSTRAP_ADMIN_KEY": secrets.token_hex(32),
        "SITECHAT_OPENAI_API_KEY": "test-key",
        "SITECHAT_OPENAI_BASE_URL": model.base_url,
        "SITECHAT_OPENAI_MODEL": "scripted-model",
        # The scripted answers are queued per test: no follow-up rewrite may take one.
        "SITECHAT_QUERY_REWRITE_PROVIDERS": "",
        "SITECHAT_RATE_LIMIT_PER_IP": "1000/minute",
        "SITECHAT_RATE_LIMIT_CONFIG_PER_IP": "1000/minute",
        "SITECHAT_LOG_FORMAT": "json",
        **more,
    }


def sitechat(docker: Docker, container: str, *args: str) -> str:
    """``sitechat ARGS`` inside the container, as its (unprivileged) user; its stdout."""
    return docker.run("exec", container, "sitechat", *args, timeout=120).stdout


def create_org_and_chatbot(docker: Docker, container: str, chatbot_id: str) -> str:
    """Through the CLI inside the container; returns the org's admin API key."""
    created = sitechat(docker, container, "org", "create", "Deploy test")
    org_id = re.search(r"org id:\s+(\S+)", created)
    key = re.search(r"api key:\s+(\S+)", created)
    assert org_id and key, created
    out = sitechat(
        docker, container, "chatbot", "create", "--org", org_id[1], "--name", "Shop helper",
        "--id", chatbot_id,
    )  # fmt: skip
    assert out.strip() == chatbot_id
    return key[1]


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def docs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop's documents, readable by the container's user (mounted read-only)."""
    folder = tmp_path_factory.mktemp("deploy-docs")
    for name, text in SHOP_DOCS.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o644)
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def api(
    docker: Docker,
    image: BuiltImage,
    model: ScriptedOpenAI,
    docs_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    """``sitechat serve`` (the image's default command) in a container, seeded by the CLI."""
    name = f"sitechat-test-api-{secrets.token_hex(4)}"
    with (
        throwaway_database() as database_url,
        throwaway_redis_prefix() as prefix,
    ):
        port = free_port()
        env_file = write_env_file(
            tmp_path_factory.mktemp("api-env") / "sitechat.env",
            container_settings(
                database_url=database_url, redis_prefix=prefix, model=model, port=port
            ),
        )
        try:
            run_container(
                docker, name, image.tag, env_file=env_file, mounts=[f"{docs_dir}:/srv/docs:ro"]
            )
            wait_healthy(docker, name)
            key = create_org_and_chatbot(docker, name, CHATBOT_ID)
            ingested = sitechat(docker, name, "ingest", CHATBOT_ID, "/srv/docs")
            assert f"{len(SHOP_DOCS)} documents ready, 0 failed" in ingested, ingested
            yield Running(name, port, key)
        finally:
            docker.remove(name)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def nginx(
    tmp_path_factory: pytest.TempPathFactory, api: Running
) -> AsyncIterator[RunningNginx]:
    async with run_nginx(tmp_path_factory.mktemp("nginx"), upstream_ports=[api.port]) as running:
        yield running


async def ask(base_url: str) -> list[Frame]:
    """The widget's two requests: the config (with a visitor token), then the stream."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        config = await client.get(f"/api/public/chatbots/{CHATBOT_ID}/config")
        assert config.status_code == 200, config.text
        token = config.json()["visitor_token"]
        body = {"message": QUESTION, "chatbot_id": CHATBOT_ID}
        async with client.stream(
            "POST",
            "/api/public/chat/stream",
            json=body,
            headers={VISITOR_TOKEN_HEADER: token},
        ) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            return [frame async for frame in iter_frames(response)]


def assert_answered_from_the_returns_document(frames: list[Frame], model: ScriptedOpenAI) -> None:
    types = [f.type for f in frames if f.type is not None]
    assert types[0] == "start", types
    tokens = [f.data["content"] for f in frames if f.type == "token" and f.data]
    assert "".join(tokens) == "Returns are free within 30 days."
    complete = frames[-1].data
    assert complete is not None and complete["type"] == "complete", types
    assert complete["content"] == "Returns are free within 30 days."
    assert "Returns" in [source["title"] for source in complete["sources"]]
    # The ingested document reached the model as context.
    prompt = str(model.requests[-1].body["messages"])
    assert "within 30 days of delivery" in prompt


# --- the tests -----------------------------------------------------------------------------


def test_the_image_healthcheck_reports_the_server_healthy(docker: Docker, api: Running) -> None:
    state = docker.inspect(api.name)
    health = state["State"]["Health"]  # type: ignore[index]
    assert health["Status"] == "healthy"
    assert health["Log"][-1]["ExitCode"] == 0
    check = " ".join(state["Config"]["Healthcheck"]["Test"])  # type: ignore[index]
    assert "/healthz" in check and "curl" not in check


def test_the_server_runs_as_an_unprivileged_user(docker: Docker, api: Running) -> None:
    assert docker.run("exec", api.name, "id", "-u").stdout.strip() == "10001"
    assert docker.inspect(api.name)["Config"]["User"] == "10001:10001"  # type: ignore[index]
    # The root file system is read-only: nothing in the image can be changed at run time.
    denied = docker.run("exec", api.name, "touch", "/opt/venv/changed", check=False)
    assert denied.returncode != 0


def test_the_api_only_image_holds_neither_torch_nor_llama_cpp(
    docker: Docker, image: BuiltImage
) -> None:
    for module in ("torch", "llama_cpp", "sentence_transformers"):
        result = docker.run(
            "run", "--rm", "--network", "host", "--entrypoint", "python", image.tag,
            "-c", f"import {module}",
            check=False,
        )  # fmt: skip
        assert result.returncode != 0, module
        assert f"No module named '{module}'" in result.stderr


def test_the_builds_secrets_stay_out_of_the_image(docker: Docker, image: BuiltImage) -> None:
    """The CA bundle (and a pip.conf) are mounted only while a RUN needs them."""
    listing = docker.run(
        "run", "--rm", "--network", "host", "--entrypoint", "sh", image.tag,
        "-c", "ls -A /run/secrets 2>/dev/null; env | grep ^PIP_ || true",
    )  # fmt: skip
    assert listing.stdout.strip() == ""
    history = docker.run("history", "--no-trunc", image.tag).stdout
    assert "BEGIN CERTIFICATE" not in history


@in_module_loop
async def test_readiness_reports_postgres_and_the_index(api: Running) -> None:
    async with httpx.AsyncClient(base_url=api.base_url, timeout=10) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "vector_store": "ok"}


@in_module_loop
async def test_an_answer_streams_from_the_container_with_its_sources(
    api: Running, model: ScriptedOpenAI
) -> None:
    model.script(Script(tokens=["Returns are ", "free within ", "30 days."]))
    frames = await ask(api.base_url)
    assert_answered_from_the_returns_document(frames, model)


@in_module_loop
async def test_an_answer_streams_through_the_hosts_nginx_to_the_container(
    nginx: RunningNginx, model: ScriptedOpenAI
) -> None:
    model.script(Script(tokens=["Returns are ", "free within ", "30 days."], token_gap=0.2))
    frames = await ask(nginx.base_url)
    assert_answered_from_the_returns_document(frames, model)
    # Not buffered by nginx: the tokens, generated 200 ms apart, arrived spread out too.
    arrived = [f.arrived for f in frames if f.type == "token"]
    assert arrived[-1] - arrived[0] >= 0.2


@in_module_loop
async def test_metrics_hold_the_time_to_first_token_of_those_answers(api: Running) -> None:
    """The histogram docs/deploy.md's alert rule reads, from the image as deployed."""
    async with httpx.AsyncClient(base_url=api.base_url, timeout=10) as client:
        metrics = await client.get("/metrics")  # from 127.0.0.1: allowed by default
    assert metrics.status_code == 200, metrics.text
    count = re.search(
        r'^sitechat_time_to_first_token_seconds_count\{provider="openai"\} (\S+)$',
        metrics.text,
        re.MULTILINE,
    )
    assert count is not None and float(count[1]) >= 2, metrics.text[:2000]
    assert "sitechat_time_to_first_token_seconds_bucket{" in metrics.text


# --- the worker (once `sitechat worker` is in the image) ---------------------------------------


def image_has_worker(docker: Docker, image: BuiltImage) -> bool:
    result = docker.run(
        "run", "--rm", "--network", "host", image.tag, "worker", "--help", check=False
    )  # fmt: skip
    return result.returncode == 0


def document_status(client: httpx.Client, chatbot_id: str, document_id: str) -> str:
    response = client.get(f"/api/admin/chatbots/{chatbot_id}/documents/{document_id}")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


def test_the_worker_container_runs_jobs_queued_by_an_api_that_runs_none(
    docker: Docker, image: BuiltImage, model: ScriptedOpenAI, tmp_path: Path
) -> None:
    """An API container with SITECHAT_RUN_JOBS=false queues an upload; it stays queued until a
    worker container starts and indexes it; the worker then exits 0 on SIGTERM."""
    if not image_has_worker(docker, image):
        pytest.skip("this image has no `sitechat worker` command yet")
    api_name = f"sitechat-test-api-{secrets.token_hex(4)}"
    worker_name = f"sitechat-test-worker-{secrets.token_hex(4)}"
    chatbot_id = "deploy-worker"
    with (
        throwaway_database() as database_url,
        throwaway_redis_prefix() as prefix,
    ):
        port = free_port()
        settings = container_settings(
            database_url=database_url, redis_prefix=prefix, model=model, port=port
        )
        api_env = write_env_file(tmp_path / "api.env", {**settings, "SITECHAT_RUN_JOBS": "false"})
        worker_env = write_env_file(tmp_path / "worker.env", settings)
        try:
            run_container(docker, api_name, image.tag, env_file=api_env)
            wait_healthy(docker, api_name)
            key = create_org_and_chatbot(docker, api_name, chatbot_id)
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            ) as client:
                upload = client.post(
                    f"/api/admin/chatbots/{chatbot_id}/documents",
                    json={"title": "Warranty", "text": "Every product has a two-year warranty."},
                )
                assert upload.status_code == 202, upload.text
                document_id = upload.json()["id"]
                time.sleep(3)
                assert document_status(client, chatbot_id, document_id) == "queued"

                run_container(
                    docker, worker_name, image.tag, env_file=worker_env, args=["worker"],
                    healthcheck=False,
                )  # fmt: skip
                deadline = time.monotonic() + 60
                status = "queued"
                while status in ("queued", "running") and time.monotonic() < deadline:
                    time.sleep(0.5)
                    status = document_status(client, chatbot_id, document_id)
                assert status == "done", docker.run("logs", worker_name, check=False).stderr

            stopped = time.monotonic()
            docker.run("stop", "--time", "30", worker_name, timeout=60)
            assert time.monotonic() - stopped < 30  # it ended on SIGTERM, no SIGKILL needed
            assert docker.inspect(worker_name)["State"]["ExitCode"] == 0  # type: ignore[index]
        finally:
            docker.remove(api_name, worker_name)
