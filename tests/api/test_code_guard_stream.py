"""Invented code never reaches the visitor (issue 12): through ``POST /api/public/chat/stream``
with the real OpenAI client against the scripted server, a code block the model makes up,
split across tokens, is removed from the streamed tokens, from ``complete`` and from the
stored message alike, while a block quoted from the chatbot's documents is kept."""

from __future__ import annotations

from typing import Any

from tests.conftest import running_app
from tests.support.scripted_openai import Script
from tests.support.sse_client import parse_body

STREAM = "/api/public/chat/stream"
GUIDE = b"""# Embedding

Paste the widget's tag before the end of your page:

```html
<script src="https://cdn.shop.example/widget.js" data-shop="acme" async></script>
```

The widget then loads on every page.
"""


async def test_invented_code_is_removed_and_quoted_code_kept_everywhere(
    openai_settings: Any, scripted_openai: Any
) -> None:
    tag = '<script src="https://cdn.shop.example/widget.js" data-shop="acme" async></script>'
    scripted_openai.script(
        Script(
            tokens=[
                "Paste the tag [1]:\n\n``",
                '`html\n<script src="https://cdn.shop',
                '.example/widget.js" data-shop="acme" async></script>\n``',
                "`\n\nOr with jQuery:\n```js\n$(document).rea",
                "dy(function () { $.getScript('/w.js'); });\n``",
                "`\nThat is all.",
            ]
        )
    )
    async with running_app(openai_settings()) as h:
        await h.services.ingestor.ingest_bytes("shop", GUIDE, filename="embedding.md")
        response = await h.client.post(
            STREAM, json={"message": "How do I embed the widget?", "chatbot_id": "shop"}
        )
        frames = parse_body(response.text)
        conversation = await h.services.store.get_conversation("shop", frames[0].data["session_id"])
        assert conversation is not None
        stored = (await h.services.store.list_messages(conversation.id))[-1]
    tokens = [f.data["content"] for f in frames if f.type == "token"]
    expected = f"Paste the tag [1]:\n\n```html\n{tag}\n```\n\nOr with jQuery:\nThat is all."
    assert "".join(tokens) == expected
    assert tokens[0] == "Paste the tag [1]:\n\n"  # prose before the fence was not held
    assert not any("getScript" in token or "ready" in token for token in tokens)
    complete = frames[-1].data
    assert complete["type"] == "complete" and complete["content"] == expected
    assert stored.status == "complete" and stored.content == expected
