"""Answers that survive the network, in a real browser (issue 11): the widget resumes an
answer after its connection drops, continues it after a reload, and stops it on the server.

Each test compares what the visitor sees with the answer the server stored: the text must be
the same, character for character (nothing shown twice, nothing missing).

The network drop: Playwright's ``set_offline`` makes Chromium fail new requests (and fire
``offline``/``online``), but an answer stream that is already open keeps flowing under it, so
on its own it cuts nothing. The API is therefore reached through ``FlakyNetwork``, a TCP proxy
that resets the open connections or silences them; a silenced stream is noticed by the
widget's idle timeout, which these tests make short (the server pings every 0.5 s, so the
config says 1.5 s).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.support.scripted_openai import Script, ScriptedOpenAI
from tests.widget.stack import (
    CHATBOT_ID,
    FlakyNetwork,
    HostSite,
    Stack,
    embed_page,
    flaky_network,
    sitechat_stack,
)
from tests.widget.test_browser import W, ask, open_page, wait_complete

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

TOKENS = [f"word{i} " for i in range(80)] + ["end."]
ANSWER = "".join(TOKENS)
SESSION_KEY = f"sitechat:{CHATBOT_ID}:session"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, model: ScriptedOpenAI, host: HostSite
) -> AsyncIterator[Stack]:
    data_dir = tmp_path_factory.mktemp("widget-resume-data")
    async with sitechat_stack(
        data_dir, model, allowed_origins=(host.origin,), sse_ping_interval_seconds=0.5
    ) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def network(stack: Stack) -> AsyncIterator[FlakyNetwork]:
    async with flaky_network(stack.api) as net:
        yield net


def page_through(stack: Stack, network: FlakyNetwork) -> str:
    """A host page whose widget reaches the API through the flaky network."""
    return embed_page(stack, attrs=f'data-api="{network.base_url}"')


async def last_answer_text(page: Any) -> str:
    """The last answer's text as drawn (textContent: innerText would trim a final space)."""
    text: str = await page.evaluate(
        "() => [...document.querySelector('sitechat-widget').shadowRoot"
        ".querySelectorAll('.msg.bot .bubble')].pop().textContent"
    )
    return text


async def wait_text(page: Any, fragment: str) -> None:
    # Generous: under a full suite on a shared 2-core machine the first tokens can be slow.
    await page.wait_for_function(
        """f => [...document.querySelector('sitechat-widget').shadowRoot
          .querySelectorAll('.msg.bot .bubble')].pop().textContent.includes(f)""",
        arg=fragment,
        timeout=30_000,
    )


async def stored_answer(stack: Stack, host: HostSite, page: Any) -> dict[str, Any]:
    """The session's last message as the messages API returns it to the page's visitor."""
    session = await page.evaluate("k => localStorage.getItem(k)", SESSION_KEY)
    assert session
    url = f"/api/public/chatbots/{CHATBOT_ID}/sessions/{session}/messages"
    async with httpx.AsyncClient(base_url=stack.api.base_url) as client:
        for _ in range(50):  # the answer is stored as its stream ends: give it a moment
            response = await client.get(url, headers={"Origin": host.origin})
            response.raise_for_status()
            message: dict[str, Any] = response.json()["messages"][-1]
            if message["role"] == "assistant" and message["status"] != "streaming":
                return message
            await asyncio.sleep(0.1)
    raise AssertionError(f"the answer is still streaming: {message}")


@pytest.mark.parametrize("drop", ["reset", "silence"])
async def test_a_network_drop_mid_answer_resumes_without_a_missing_or_repeated_character(
    drop: str,
    context: Any,
    host: HostSite,
    stack: Stack,
    network: FlakyNetwork,
    model: ScriptedOpenAI,
) -> None:
    model.script(Script(tokens=TOKENS, token_gap=0.1))
    page, requests = await open_page(
        context, host, f"drop-{drop}.html", page_through(stack, network)
    )
    await page.locator(f"{W} .launcher").click()
    await ask(page, "When do orders ship?")
    await wait_text(page, "word5 ")

    await context.set_offline(True)
    network.drop(drop)
    # A reset is seen at once; silence after the idle timeout (1.5 s). Then the widget says so
    # and tries again, in vain while the browser is offline.
    note = page.locator(f"{W} .msg.bot .note")
    await note.wait_for(timeout=5000)
    assert await note.inner_text() == "Reconnecting…"
    live = page.locator(f"{W} [role=status]")
    await page.wait_for_function(
        "() => document.querySelector('sitechat-widget').shadowRoot"
        ".querySelector('[role=status]').textContent === 'Reconnecting…'"
    )
    assert await live.inner_text() == "Reconnecting…"
    await asyncio.sleep(2.5)  # the backoff is now at its 2 or 4 s step
    during = await last_answer_text(page)
    assert "end." not in during

    network.restore()
    back = time.monotonic()
    await context.set_offline(False)
    # The online event resumes at once, not at the next backoff step.
    await page.wait_for_function(
        "n => [...document.querySelector('sitechat-widget').shadowRoot"
        ".querySelectorAll('.msg.bot .bubble')].pop().textContent.length > n",
        arg=len(during),
        timeout=3000,
    )
    waited = time.monotonic() - back
    print(f"{drop}: the next text {waited:.2f} s after coming back online")
    assert waited < 1.0
    await wait_complete(page)
    assert await page.locator(f"{W} .msg.bot .note").count() == 0

    shown = await last_answer_text(page)
    stored = await stored_answer(stack, host, page)
    assert stored["status"] == "complete"
    assert shown == stored["content"] == ANSWER
    resumes = [u for u in requests if "/stream?after=" in u]
    assert resumes and all(u.startswith(network.base_url) for u in resumes)
    assert not any(u.endswith("after=0") for u in resumes)
    await page.close()


async def test_a_reload_mid_answer_continues_the_answer_live(
    context: Any, host: HostSite, stack: Stack, model: ScriptedOpenAI
) -> None:
    # Slow enough that a reload on a loaded machine still lands mid-answer.
    model.script(Script(tokens=TOKENS, token_gap=0.2))
    page, requests = await open_page(context, host, "reload.html", embed_page(stack))
    await page.locator(f"{W} .launcher").click()
    await ask(page, "When do orders ship?")
    await wait_text(page, "word5 ")

    await page.reload()
    await page.locator(f"{W} .launcher").click()
    await page.locator(f"{W} .msg.user").wait_for()
    assert await page.locator(f"{W} .msg.user .bubble").all_inner_texts() == [
        "When do orders ship?"
    ]
    # The restored answer grows before the visitor's eyes: it is followed live.
    samples: list[str] = []
    deadline = time.monotonic() + 60
    while not await page.locator(f"{W} .msg.bot .sources").count():
        assert time.monotonic() < deadline, samples[-3:]
        samples.append(await last_answer_text(page))
        await asyncio.sleep(0.1)
    partials = [s for s in dict.fromkeys(samples) if s.startswith("word")]
    assert len(partials) >= 3, samples
    assert "end." not in partials[0]

    shown = await last_answer_text(page)
    stored = await stored_answer(stack, host, page)
    assert stored["status"] == "complete"
    assert shown == stored["content"] == ANSWER
    assert any(u.endswith(f"/messages/{stored['id']}/stream?after=0") for u in requests)
    assert await page.locator(f"{W} .stop").is_hidden()
    await page.close()


async def test_stop_stops_the_answer_on_the_server_and_shows_it_stopped(
    context: Any, host: HostSite, stack: Stack, model: ScriptedOpenAI
) -> None:
    model.script(Script(tokens=TOKENS, token_gap=0.1))
    page, requests = await open_page(context, host, "stop-resume.html", embed_page(stack))
    await page.locator(f"{W} .launcher").click()
    await ask(page, "When do orders ship?")
    await wait_text(page, "word5 ")
    await page.locator(f"{W} .stop").click()
    note = page.locator(f"{W} .msg.bot .note")
    await note.wait_for()
    assert await note.inner_text() == "Stopped."
    record = await stack.model.wait_closed(timeout=5)
    assert record.tokens_sent < len(TOKENS)

    shown = await last_answer_text(page)
    await asyncio.sleep(0.5)  # nothing more arrives
    assert await last_answer_text(page) == shown
    stored = await stored_answer(stack, host, page)
    assert stored["status"] == "stopped"
    assert shown == stored["content"]
    assert shown.startswith("word0 word1 word2 word3 word4 word5") and "end." not in shown
    assert any(u.endswith(f"/messages/{stored['id']}/stop") for u in requests)

    # A reload shows it stopped too.
    await page.reload()
    await page.locator(f"{W} .launcher").click()
    await page.locator(f"{W} .msg.bot .note").wait_for()
    assert await page.locator(f"{W} .msg.bot .note").inner_text() == "Stopped."
    assert await last_answer_text(page) == shown
    await page.close()
