"""The widget in a real browser (Debian's Chromium, driven by Playwright) against the real app.

The host page is served from another loopback port than the API, as on a customer's site.
The model is the scripted OpenAI-compatible server, so answers (hostile ones included) and
their timing are chosen by each test.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.scripted_openai import Script, ScriptedOpenAI
from tests.widget.stack import (
    CHATBOT_ID,
    GREETING,
    STARTERS,
    HostSite,
    Stack,
    documented_queue_stub,
    embed_page,
    free_port,
    trap_server,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

W = "sitechat-widget"  # Playwright's CSS selectors pierce the widget's open shadow root
ANSWER_TOKENS = [
    "Orders ", "ship ", "within ", "**two ", "business ", "days** ", "[1]. ", "Delivery ",
    "inside ", "the ", "EU ", "takes ", "three ", "to ", "five ", "days [2].",
]  # fmt: skip
ANSWER_TEXT = (
    "Orders ship within two business days [1]. Delivery inside the EU takes three to five days [2]."
)


def track_requests(page: Any) -> list[str]:
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


async def focused_in_widget(page: Any) -> str | None:
    """Class or id of the element focused inside the widget's shadow root, else None."""
    result: str | None = await page.evaluate(
        """() => {
          const host = document.activeElement;
          if (!host || host.tagName !== 'SITECHAT-WIDGET') return null;
          const el = host.shadowRoot.activeElement;
          return el ? (el.id || el.className || el.tagName) : null;
        }"""
    )
    return result


async def bot_texts(page: Any) -> list[str]:
    texts: list[str] = await page.locator(f"{W} .msg.bot .bubble").all_inner_texts()
    return texts


async def open_page(context: Any, host: HostSite, name: str, html: str) -> tuple[Any, list[str]]:
    host.pages[name] = html
    page = await context.new_page()
    requests = track_requests(page)
    await page.goto(host.url(name))
    await page.locator(f"{W} .launcher").wait_for(state="visible")
    return page, requests


async def ask(page: Any, question: str) -> None:
    await page.locator(f"{W} textarea").fill(question)
    await page.locator(f"{W} textarea").press("Enter")


async def wait_complete(page: Any, count: int = 1) -> None:
    """Until ``count`` answers show their sources (the complete event has been handled)."""
    await page.wait_for_function(
        """n => {
          const root = document.querySelector('sitechat-widget')?.shadowRoot;
          return root && root.querySelectorAll('.msg.bot .sources').length >= n;
        }""",
        arg=count,
    )


def only_expected_origins(urls: list[str], *origins: str) -> list[str]:
    return [u for u in urls if not any(u.startswith(o + "/") for o in origins)]


async def test_keyboard_question_streams_a_growing_answer_then_sources(
    context: Any, host: HostSite, stack: Stack, model: ScriptedOpenAI
) -> None:
    model.script(Script(tokens=ANSWER_TOKENS, first_token_delay=0.6, token_gap=0.15))
    page, requests = await open_page(context, host, "basic.html", embed_page(stack))

    # Keyboard only: Tab reaches the chat button, Enter opens, focus lands in the message box.
    await page.keyboard.press("Tab")
    assert await focused_in_widget(page) == "launcher"
    await page.keyboard.press("Enter")
    await page.locator(f"{W} .panel").wait_for(state="visible")
    assert await focused_in_widget(page) == "sc-input"
    assert await page.locator(f"{W} h2").inner_text() == "Shop helper"
    assert GREETING in (await bot_texts(page))[0]
    assert await page.locator(f"{W} .starters button").all_inner_texts() == list(STARTERS)

    await page.keyboard.type("When do orders ship?")
    await page.keyboard.press("Enter")
    # Before the first token: the typing indicator.
    await page.locator(f"{W} .typing").wait_for(state="visible")

    samples: list[str] = []
    announced_early: list[str] = []
    for _ in range(100):
        texts = await bot_texts(page)
        samples.append(texts[-1])
        if await page.locator(f"{W} .msg.bot .sources").count():
            break
        announced_early.append(await page.locator(f"{W} [role=status]").inner_text())
        await asyncio.sleep(0.1)
    partials = [s for s in dict.fromkeys(samples) if s and s != samples[-1]]
    # The text grew in several visible steps before the answer was complete...
    assert len(partials) >= 3, samples
    assert len(partials[0]) < len(partials[-1]) < len(samples[-1])
    # ...and the live region said nothing while tokens streamed.
    assert not any(a.strip() for a in announced_early), announced_early

    await wait_complete(page)
    final = (await bot_texts(page))[-1]
    assert final == ANSWER_TEXT
    assert await page.locator(f"{W} .msg.bot .bubble strong").inner_text() == "two business days"
    sources = page.locator(f"{W} .msg.bot .sources li")
    assert await sources.count() >= 2
    assert "Shipping" in await sources.first.inner_text()
    live = page.locator(f"{W} [role=status]")
    await page.wait_for_function(
        "t => document.querySelector('sitechat-widget').shadowRoot"
        ".querySelector('[role=status]').textContent.includes(t)",
        arg="Orders ship within two business days",
    )
    assert "Assistant" in await live.inner_text()

    # Citation [1] is a button that moves focus to source 1.
    cite = page.locator(f"{W} .msg.bot .cite").first
    assert await cite.inner_text() == "[1]"
    await cite.focus()
    await page.keyboard.press("Enter")
    assert (
        await page.evaluate(
            "() => document.querySelector('sitechat-widget').shadowRoot.activeElement.dataset.n"
        )
        == "1"
    )

    # Escape closes the panel and gives focus back to the chat button.
    await page.locator(f"{W} textarea").focus()
    await page.keyboard.press("Escape")
    await page.locator(f"{W} .panel").wait_for(state="hidden")
    assert await focused_in_widget(page) == "launcher"

    assert only_expected_origins(requests, host.origin, stack.api.base_url) == []
    await page.close()


async def test_hostile_model_output_renders_inert(
    context: Any, host: HostSite, stack: Stack, model: ScriptedOpenAI
) -> None:
    async with trap_server() as trap:
        t = trap.origin
        hostile = (
            f'Hi <img src=x onerror="window.__pwned=\'img\'"> <img src="{t}/img">\n\n'
            "<script>window.__pwned='script'</script> <svg onload=\"window.__pwned='svg'\">\n\n"
            f'<iframe src="{t}/iframe"></iframe> <a href="javascript:window.__pwned=\'a\'">raw</a>\n\n'  # noqa: E501
            "[click me](javascript:window.__pwned='md') [upper](JAVASCRIPT:alert(1)) "
            "[data](data:text/html,<script>alert(1)</script>) [tab](java\tscript:alert(1)) "
            "[angle](<javascript:alert(1)>) [entity](&#106;avascript:alert(1))\n\n"
            f"![leak]({t}/md-image?c=secret) [https://bank.example/login]({t}/phish)\n\n"
            f"- [rel](//{t.removeprefix('http://')}/protocol-relative)\n"
            f"- <{t}/autolink-ok> is a real http link"
        )
        # Split into small tokens so that half-open tags arrive in separate frames.
        tokens = [hostile[i : i + 7] for i in range(0, len(hostile), 7)]
        model.script(Script(tokens=tokens))
        page, requests = await open_page(context, host, "hostile.html", embed_page(stack))
        dialogs: list[str] = []

        async def on_dialog(dialog: Any) -> None:  # alert() from an injected script
            dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        await page.locator(f"{W} .launcher").click()
        await ask(page, "When do orders ship?")
        await wait_complete(page)
        await asyncio.sleep(0.3)  # give any onerror/onload a chance to fire

        bubble = page.locator(f"{W} .msg.bot .bubble").last
        text = await bubble.inner_text()
        assert "<script>window.__pwned='script'</script>" in text  # shown as text
        assert "<img src=x onerror=\"window.__pwned='img'\">" in text
        assert "click me" in text and "leak" in text
        elements = await page.evaluate(
            """() => {
              const b = [...document.querySelector('sitechat-widget').shadowRoot
                .querySelectorAll('.msg.bot .bubble')].pop();
              return {
                tags: [...new Set([...b.querySelectorAll('*')].map(e => e.tagName.toLowerCase()))],
                handlers: [...b.querySelectorAll('*')].flatMap(
                  e => [...e.attributes].map(a => a.name).filter(n => n.startsWith('on'))),
                links: [...b.querySelectorAll('a')].map(a => ({
                  href: a.getAttribute('href'), text: a.textContent,
                  rel: a.getAttribute('rel'), target: a.getAttribute('target')})),
              };
            }"""
        )
        assert set(elements["tags"]) <= {"p", "br", "ul", "li", "a", "strong", "em", "code"}
        assert elements["handlers"] == []
        for link in elements["links"]:
            assert link["href"].startswith(("http://", "https://")), link
            assert link["rel"] == "noopener noreferrer" and link["target"] == "_blank"
        # Only plain http(s) URLs became links (the ones inside raw tags are GFM autolinks,
        # inert until a visitor clicks them); every trick link stayed text.
        hrefs = {link["href"] for link in elements["links"]}
        assert hrefs == {f"{t}/img", f"{t}/iframe", f"{t}/phish", f"{t}/autolink-ok"}
        # The link whose text claimed another site shows where it really goes.
        phish = next(link for link in elements["links"] if link["href"] == f"{t}/phish")
        assert phish["text"] == f"{t}/phish"

        # Clicking the neutralised javascript: link text does nothing.
        await bubble.get_by_text("click me").click()
        await asyncio.sleep(0.2)
        assert await page.evaluate("() => window.__pwned") is None
        assert dialogs == []
        assert trap.hits == []
        assert only_expected_origins(requests, host.origin, stack.api.base_url) == []
        await page.close()


STYLE_PROBE = """() => [...document.querySelectorAll('#probe, #probe *, body, html')].map(e => {
  const s = getComputedStyle(e);
  return [e.tagName, s.display, s.color, s.fontSize, s.fontFamily, s.margin, s.position,
          s.background, s.boxSizing, s.lineHeight].join('|');
})"""

AGGRESSIVE_CSS = """<style>
* { all: unset !important; }
div { display: none !important; }
button, section, textarea { display: none !important; }
</style>"""
PROBE_BODY = (
    '<main id="probe"><h1>Shop</h1><p class="x">Hello <b>world</b></p>'
    "<div>a div</div><button>host button</button></main>"
)


async def test_aggressive_host_css_does_not_break_the_widget_nor_change_the_page(
    context: Any, host: HostSite, stack: Stack, model: ScriptedOpenAI
) -> None:
    model.script(Script(tokens=["Orders ship ", "within two ", "business days [1]."]))
    host.pages["plain.html"] = (
        f"<!doctype html><html><head>{AGGRESSIVE_CSS}</head><body>{PROBE_BODY}</body></html>"
    )
    plain = await context.new_page()
    await plain.goto(host.url("plain.html"))
    without_widget = await plain.evaluate(STYLE_PROBE)
    await plain.close()

    page, _ = await open_page(
        context, host, "aggressive.html", embed_page(stack, head=AGGRESSIVE_CSS, body=PROBE_BODY)
    )
    launcher = page.locator(f"{W} .launcher")
    box = await launcher.bounding_box()
    assert box is not None and box["width"] == 56 and box["height"] == 56
    assert box["x"] + box["width"] == pytest.approx(1280 - 20, abs=1)  # bottom-right corner
    await launcher.click()
    panel = page.locator(f"{W} .panel")
    await panel.wait_for(state="visible")
    panel_box = await panel.bounding_box()
    assert panel_box is not None and panel_box["width"] == 380
    await ask(page, "When do orders ship?")
    await wait_complete(page)
    assert (await bot_texts(page))[-1] == "Orders ship within two business days [1]."
    # The widget's font and colours, not the host's unset ones.
    assert (
        await page.evaluate(
            "() => getComputedStyle(document.querySelector('sitechat-widget').shadowRoot"
            ".querySelector('.send, .stop')).borderRadius"
        )
        == "12px"
    )

    with_widget = await page.evaluate(STYLE_PROBE)
    assert with_widget == without_widget
    await page.close()


async def test_reload_restores_the_conversation_and_new_conversation_clears_it(
    context: Any, host: HostSite, stack: Stack, model: ScriptedOpenAI
) -> None:
    model.script(Script(tokens=["Returns are free ", "within 30 days [1]."]))
    page, _ = await open_page(context, host, "restore.html", embed_page(stack))
    await page.locator(f"{W} .launcher").click()
    await ask(page, "How do returns work?")
    await wait_complete(page)
    key = f"sitechat:{CHATBOT_ID}:session"
    session = await page.evaluate("k => localStorage.getItem(k)", key)
    assert session

    await page.reload()
    await page.locator(f"{W} .launcher").click()
    await wait_complete(page)
    assert await page.locator(f"{W} .msg.user .bubble").all_inner_texts() == [
        "How do returns work?"
    ]
    texts = await bot_texts(page)
    assert (
        texts[0].startswith(GREETING[:10]) and texts[-1] == "Returns are free within 30 days [1]."
    )
    assert await page.locator(f"{W} .msg.bot .sources li").count() >= 1
    assert await page.evaluate("k => localStorage.getItem(k)", key) == session

    await page.locator(f"{W} header button").first.click()  # new conversation
    assert await page.locator(f"{W} .msg.user").count() == 0
    assert await page.evaluate("k => localStorage.getItem(k)", key) is None
    await page.close()


async def test_stop_halts_the_stream_and_closes_the_model_stream(
    context: Any, host: HostSite, stack: Stack, model: ScriptedOpenAI
) -> None:
    model.script(Script(tokens=[f"word{i} " for i in range(30)], token_gap=0.2))
    page, _ = await open_page(context, host, "stop.html", embed_page(stack))
    await page.locator(f"{W} .launcher").click()
    await ask(page, "When do orders ship?")
    await page.wait_for_function(
        "() => (document.querySelector('sitechat-widget').shadowRoot"
        ".querySelector('.msg.bot:last-child .bubble')?.textContent || '').includes('word2')"
    )
    stop = page.locator(f"{W} .stop")
    await stop.focus()
    await page.keyboard.press("Enter")
    await page.locator(f"{W} .note").wait_for()
    assert await page.locator(f"{W} .note").inner_text() == "Stopped."
    record = await model.wait_closed(timeout=5)
    assert record.closed_by == "client"
    assert record.tokens_sent < 30
    frozen = (await bot_texts(page))[-1]
    await asyncio.sleep(0.6)  # three more token gaps: nothing more arrives
    assert (await bot_texts(page))[-1] == frozen
    assert frozen.startswith("word0 word1 word2") and "word29" not in frozen
    assert await page.locator(f"{W} .stop").is_hidden()
    assert await page.locator(f"{W} .send").is_visible()
    assert await focused_in_widget(page) == "sc-input"
    await page.close()


async def test_model_failure_shows_a_friendly_error_and_retry_answers(
    context: Any, host: HostSite, stack: Stack, model: ScriptedOpenAI
) -> None:
    # First the model breaks off mid-answer, then (on retry) it answers in full.
    model.enqueue(
        Script(tokens=["Orders ", "ship ", "within"], fail_after=2),
        Script(tokens=["Orders ship ", "within two business days [1]."]),
    )
    page, _ = await open_page(context, host, "failure.html", embed_page(stack))
    await page.locator(f"{W} .launcher").click()
    await ask(page, "When do orders ship?")
    error = page.locator(f"{W} .err")
    await error.wait_for()
    assert "had a problem answering" in await error.inner_text()
    assert (await bot_texts(page))[-1] == "Orders ship"  # the partial answer stays visible
    await error.locator("button").click()
    await wait_complete(page)
    assert (await bot_texts(page))[-1] == "Orders ship within two business days [1]."
    assert await page.locator(f"{W} .err").count() == 0
    await page.close()


async def test_unreachable_api_shows_the_network_error(
    context: Any, host: HostSite, stack: Stack
) -> None:
    closed_port = free_port()  # nothing listens there
    html = embed_page(stack, attrs=f'data-api="http://127.0.0.1:{closed_port}"')
    # The config cannot load either: the widget still appears, with its default look.
    page, _ = await open_page(context, host, "offline.html", html)
    await page.locator(f"{W} .launcher").click()
    assert await page.locator(f"{W} h2").inner_text() == "Chat"
    await ask(page, "Anyone there?")
    error = page.locator(f"{W} .err")
    await error.wait_for()
    assert "Can't reach the chat service" in await error.inner_text()
    assert await error.locator("button").is_enabled()
    await page.close()


@asynccontextmanager
async def demo_policy(stack: Stack, policy: dict[str, Any]) -> AsyncIterator[None]:
    """The demo chatbot under ``policy`` (visitor token, limits) for one test, then as before."""
    services = stack.services
    config = await services.store.get_chatbot(CHATBOT_ID)
    assert config is not None
    await services.store.update_chatbot(CHATBOT_ID, settings=policy)
    await services.chatbot_changed(CHATBOT_ID)
    try:
        yield
    finally:
        await services.store.update_chatbot(CHATBOT_ID, settings=config.settings)
        await services.chatbot_changed(CHATBOT_ID)


async def test_429_shows_the_wait_and_counts_down_the_retry(
    context: Any, host: HostSite, stack: Stack, model: ScriptedOpenAI
) -> None:
    # The real gate: a visitor token is required (the first answer shows the widget sent
    # the one its config carried) and one question a minute per IP is allowed.
    policy = {"require_visitor_token": True, "rate_limits": {"per_ip": "1/minute"}}
    model.script(Script(tokens=["Orders ship ", "within two business days [1]."]))
    async with demo_policy(stack, policy):
        before = documented_queue_stub() + (
            "window.__errors = []; SitechatWidget.on('error', e => window.__errors.push(e));"
        )
        page, _ = await open_page(context, host, "limited.html", embed_page(stack, before=before))
        await page.locator(f"{W} .launcher").click()
        await ask(page, "When do orders ship?")
        await wait_complete(page)
        await ask(page, "And returns?")
        error = page.locator(f"{W} .err")
        await error.wait_for()
        text = await error.inner_text()
        wait = re.search(r"Please wait (\d+) seconds", text)
        assert wait and 50 <= int(wait.group(1)) <= 60, text
        assert await error.get_attribute("role") == "alert"
        retry = error.locator("button")
        assert await retry.is_disabled()
        assert re.fullmatch(r"Retry in \d+ s", await retry.inner_text())
        errors = await page.evaluate("() => window.__errors")
        assert len(errors) == 1
        assert errors[0]["code"] == "rate_limited" and errors[0]["status"] == 429
        assert errors[0]["retry_after"] == int(wait.group(1))
        assert errors[0]["request_id"]
        await page.close()


async def stack_config(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.api.base_url) as client:
        response = await client.get(f"/api/public/chatbots/{CHATBOT_ID}/config")
        config: dict[str, Any] = response.json()
        return config


async def test_calls_made_before_the_script_loads_are_replayed(
    context: Any, host: HostSite, stack: Stack, model: ScriptedOpenAI
) -> None:
    model.script(Script(tokens=["Orders ship ", "within two business days [1]."]))
    before = documented_queue_stub() + (
        "window.__messages = [];"
        "SitechatWidget.on('message', m => window.__messages.push([m.role, m.content]));"
        "SitechatWidget.send('When do orders ship?');"
    )
    page, _ = await open_page(context, host, "queued.html", embed_page(stack, before=before))
    await page.locator(f"{W} .panel").wait_for(state="visible")
    await wait_complete(page)
    messages = await page.evaluate("() => window.__messages")
    assert messages == [
        ["user", "When do orders ship?"],
        ["assistant", "Orders ship within two business days [1]."],
    ]
    assert await page.evaluate("() => typeof SitechatWidget.version") == "string"
    await page.close()


async def test_screenshots_at_desktop_and_phone_widths(
    browser: Any, host: HostSite, stack: Stack, model: ScriptedOpenAI, artifacts: Path
) -> None:
    answer = (
        "Orders ship within **two business days** [1].\n\n"
        "- Delivery inside the EU: *three to five days* [2]\n"
        "- Free shipping over 50 euros\n\nSee `orders/track` or https://example.com/help."
    )
    sizes = {
        "desktop": ({"width": 1280, "height": 800}, "light"),
        "phone-375": ({"width": 375, "height": 740}, "light"),
        "phone-375-dark": ({"width": 375, "height": 740}, "dark"),
        "narrow-320": ({"width": 320, "height": 640}, "light"),
    }
    host.pages["shot.html"] = embed_page(stack, body="<h1>Acme shop</h1><p>Welcome.</p>")
    for name, (viewport, scheme) in sizes.items():
        model.script(Script(tokens=[answer[i : i + 12] for i in range(0, len(answer), 12)]))
        ctx = await browser.new_context(
            viewport=viewport, color_scheme=scheme, reduced_motion="reduce", has_touch=True
        )
        page = await ctx.new_page()
        await page.goto(host.url("shot.html"))
        await page.locator(f"{W} .launcher").click()
        await ask(page, "When do orders ship?")
        await wait_complete(page)
        panel = await page.locator(f"{W} .panel").bounding_box()
        assert panel is not None
        if viewport["width"] <= 480:
            # Full screen on small viewports, and nothing wider than the screen.
            assert (panel["x"], panel["y"]) == (0, 0)
            assert (panel["width"], panel["height"]) == (viewport["width"], viewport["height"])
            assert await page.locator(f"{W} .launcher").is_hidden()
            overflow = await page.evaluate(
                "() => { const r = document.querySelector('sitechat-widget').shadowRoot;"
                " return [...r.querySelectorAll('.panel *')].filter(e =>"
                " e.getBoundingClientRect().right > innerWidth + 0.5).length; }"
            )
            assert overflow == 0
        styles = await page.evaluate(
            "() => { const p = document.querySelector('sitechat-widget').shadowRoot"
            ".querySelector('.panel'); const s = getComputedStyle(p);"
            " return [s.animationName, s.backgroundColor]; }"
        )
        assert styles[0] == "none"  # prefers-reduced-motion
        assert styles[1] == ("rgb(23, 25, 28)" if scheme == "dark" else "rgb(255, 255, 255)")
        await page.screenshot(path=str(artifacts / f"widget-{name}.png"))
        await ctx.close()


async def test_demo_page_runs_the_real_widget_under_its_content_security_policy(
    context: Any, stack: Stack, model: ScriptedOpenAI
) -> None:
    model.script(Script(tokens=["Paste one ", "script tag [1]."]))
    page = await context.new_page()
    # CSP violations and script errors show up on the console, failed loads as responses.
    console: list[str] = []
    failed: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type in {"error", "warning"} else None)
    page.on("pageerror", lambda e: console.append(str(e)))
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    await page.goto(stack.api.base_url + "/")
    # The page's own button uses the JavaScript API (send opens the panel).
    await page.get_by_role("button", name="Ask: how do I embed the widget?").click()
    await page.locator(f"{W} .panel").wait_for(state="visible")
    await wait_complete(page)
    assert (await bot_texts(page))[-1] == "Paste one script tag [1]."
    assert failed == []
    # Chromium fetches /favicon.ico by itself (not a page request): the demo has none, and
    # that 404 is the only console line allowed.
    favicon_404 = "Failed to load resource: the server responded with a status of 404 (Not Found)"
    assert [c for c in console if c != favicon_404] == [], console
    await page.close()
