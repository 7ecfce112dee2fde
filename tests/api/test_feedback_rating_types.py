"""Issue 9, finding 6: the feedback route took ``"rating": true`` and ``"rating": 1.0`` as a
rating of 1. ``Literal[1, -1]`` matches by equality even in strict mode, and ``True == 1``;
the rating must now be the JSON integer 1 or -1, anything else is a 422 naming ``rating``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import AppHarness


async def answer_of(harness: AppHarness, session_id: str) -> str:
    asked = await harness.client.post(
        "/api/public/chat",
        json={
            "message": "How much does shipping cost?",
            "chatbot_id": "shop",
            "session_id": session_id,
        },
    )
    assert asked.status_code == 200, asked.text
    return str(asked.json()["message_id"])


@pytest.mark.parametrize("rating", [True, False, 1.0, -1.0, "1", 0, 2, None])
async def test_feedback_rating_true_or_float_is_422(harness: AppHarness, rating: Any) -> None:
    message_id = await answer_of(harness, "session-rating")
    response = await harness.client.post(
        f"/api/public/chatbots/shop/sessions/session-rating/messages/{message_id}/feedback",
        json={"rating": rating},
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_input"
    assert body["details"][0]["field"] == "rating"
    assert "rating" in body["error"]


@pytest.mark.parametrize("rating", [1, -1])
async def test_feedback_rating_of_one_or_minus_one_is_stored(
    harness: AppHarness, rating: int
) -> None:
    message_id = await answer_of(harness, "session-rating")
    response = await harness.client.post(
        f"/api/public/chatbots/shop/sessions/session-rating/messages/{message_id}/feedback",
        json={"rating": rating},
    )
    assert response.status_code == 204, response.text
    conversation = await harness.services.store.get_conversation("shop", "session-rating")
    assert conversation is not None
    feedback = await harness.services.archive.feedback(conversation.id)
    assert feedback[message_id].rating == rating
