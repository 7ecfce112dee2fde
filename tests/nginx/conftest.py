"""One app (real, with the scripted model) and one nginx in front of it per module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests.nginx.harness import RunningNginx, nginx_binary, run_nginx
from tests.support.scripted_openai import ScriptedOpenAI
from tests.widget.stack import Stack, sitechat_stack


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, model: ScriptedOpenAI
) -> AsyncIterator[Stack]:
    nginx_binary()  # skip (locally) or fail (CI) before starting anything
    async with sitechat_stack(tmp_path_factory.mktemp("nginx-data"), model) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def nginx(
    tmp_path_factory: pytest.TempPathFactory, stack: Stack
) -> AsyncIterator[RunningNginx]:
    async with run_nginx(
        tmp_path_factory.mktemp("nginx"), upstream_ports=[stack.api.port]
    ) as running:
        yield running
