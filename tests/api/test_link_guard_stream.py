"""Invented links never reach the visitor (issue 12): through ``POST /api/public/chat/stream``
with the real OpenAI client against the scripted server, a link the model makes up, split
across tokens, is removed from the streamed tokens, from ``complete`` and from the stored
message alike, while links to the chatbot's own site are kept."""

from __future__ import annotations

from typing import Any

from tests.conftest import AppHarness, running_app
from tests.support.scripted_openai import Script
from tests.support.sse_client import parse_body

STREAM = "/api/public/chat/stream"


async def ask(h: AppHarness, message: str) -> tuple[list[Any], Any]:
    response = await h.client.post(STREAM, json={"message": message, "chatbot_id": "shop"})
    frames = parse_body(response.text)
    conversation = await h.services.store.get_conversation("shop", frames[0].data["session_id"])
    assert conversation is not None
    stored = await h.services.store.list_messages(conversation.id)
    return frames, stored[-1]


async def test_an_invented_link_split_across_tokens_is_removed_everywhere(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(
        Script(
            tokens=[
                "Returns are free [1]. See [the ",
                "policy](https://ev",
                "il.example/ret",
                "urns) or [our page](https://shop",
                ".example/returns",
                ") and https://evil",
                ".example/x.",
            ]
        )
    )
    async with running_app(openai_settings(), allowed_origins=["https://shop.example"]) as h:
        frames, stored = await ask(h, "How do returns work?")
    tokens = [f.data["content"] for f in frames if f.type == "token"]
    complete = frames[-1].data
    expected = (
        "Returns are free [1]. See the policy or [our page](https://shop.example/returns) and ."
    )
    assert "".join(tokens) == expected
    assert not any("evil" in token for token in tokens)
    assert tokens[0] == "Returns are free [1]. See "  # the text before "[" was not held
    assert complete["type"] == "complete" and complete["content"] == expected
    assert stored.status == "complete" and stored.content == expected


async def test_a_link_held_when_the_model_fails_is_streamed_and_stored_alike(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(
        Script(tokens=["Orders ship ", "[fast](https://evil", ".example)", "."], fail_after=2)
    )
    async with running_app(openai_settings()) as h:
        frames, stored = await ask(h, "When do orders ship?")
    tokens = [f.data["content"] for f in frames if f.type == "token"]
    error = frames[-1].data
    assert error["type"] == "error" and error["partial"] is True
    assert "".join(tokens) == "Orders ship [fast](" == stored.content
    assert stored.status == "interrupted"


async def test_the_extractive_answer_keeps_a_link_its_document_contains(
    harness: AppHarness,
) -> None:
    await harness.services.ingestor.ingest_bytes(
        "shop",
        b"# Warranty\n\nWarranty claims go through https://claims.partner.example/form only.\n",
        filename="warranty.md",
    )
    frames, stored = await ask(harness, "Where do warranty claims go?")
    complete = frames[-1].data
    assert "https://claims.partner.example/form" in complete["content"]
    assert stored.content == complete["content"]
