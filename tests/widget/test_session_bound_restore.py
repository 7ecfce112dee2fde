"""Sessions bound to visitor tokens, in a real browser: a reload still restores the
conversation, because the widget keeps its visitor token next to the session id and sends
it with the next config request (which then keeps the visitor's id); without the token
the server would answer the stored session with 404, as it does for any other visitor."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.scripted_openai import Script, ScriptedOpenAI
from tests.widget.stack import CHATBOT_ID, HostSite, Stack, embed_page
from tests.widget.test_browser import W, ask, demo_policy, open_page, wait_complete

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def test_reload_restores_a_session_bound_to_the_visitor(
    context: Any, host: HostSite, stack: Stack, model: ScriptedOpenAI
) -> None:
    model.script(Script(tokens=["Returns are free ", "within 30 days [1]."]))
    async with demo_policy(stack, {"require_visitor_token": True}):
        page, _ = await open_page(context, host, "bound.html", embed_page(stack))
        await page.locator(f"{W} .launcher").click()
        await ask(page, "How do returns work?")
        await wait_complete(page)
        token_key = f"sitechat:{CHATBOT_ID}:visitor"
        assert await page.evaluate("k => localStorage.getItem(k)", token_key)

        await page.reload()
        await page.locator(f"{W} .launcher").click()
        await wait_complete(page)
        user = await page.locator(f"{W} .msg.user .bubble").all_inner_texts()
        assert user == ["How do returns work?"]
        await page.close()
