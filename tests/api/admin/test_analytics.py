"""Analytics per chatbot per day, from real chat turns through the public API: counts,
tokens in and out as the model reported them, time to first token, answers without
context, errors, and the gate's refusals, with this month's budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sitechat.reports.analytics import percentile
from tests.support.admin import admin_app
from tests.support.scripted_openai import Script, ScriptedOpenAI

CHAT = "/api/public/chat"


async def test_a_days_answers_errors_gaps_and_refusals_are_counted(
    openai_settings: Any, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.enqueue(
        Script(tokens=["Shipping ", "is ", "free ", "over 50 euros [1]."]),
        Script(tokens=["Returns ", "within ", "30 days [1]."]),
        Script(status_error=500),
    )
    # Analytics alone: no model rewrites of follow-ups consuming the scripted answers.
    settings = openai_settings(rate_limit_per_session="3/minute", query_rewrite_providers=[])
    async with admin_app(settings) as admin:
        ask = admin.client.post
        ok1 = await ask(
            CHAT,
            json={"message": "Shipping costs?", "chatbot_id": "shop", "session_id": "sess-0001"},
        )
        ok2 = await ask(
            CHAT,
            json={
                "message": "How do returns work?",
                "chatbot_id": "shop",
                "session_id": "sess-0001",
            },
        )
        assert ok1.status_code == ok2.status_code == 200
        gap = await ask(
            CHAT, json={"message": "Quantum chromodynamics lattice?", "chatbot_id": "shop"}
        )
        assert gap.json()["context_quality"]["level"] == "none"
        failed = await ask(
            CHAT,
            json={
                "message": "When do orders ship?",
                "chatbot_id": "shop",
                "session_id": "sess-0001",
            },
        )
        assert failed.status_code == 502
        refused = await ask(
            CHAT, json={"message": "Again?", "chatbot_id": "shop", "session_id": "sess-0001"}
        )
        assert refused.status_code == 429

        response = await admin.get("/api/admin/chatbots/shop/analytics")
        assert response.status_code == 200, response.text
        body = response.json()

    days = body["days"]
    assert len(days) == 30 and body["to"] == datetime.now(UTC).date().isoformat()
    today = days[-1]
    assert today["day"] == body["to"]
    assert today["conversations"] == 2
    assert today["answers"] == 4
    assert today["messages"] == 8
    usages = [ok1.json()["usage"], ok2.json()["usage"]]
    assert all(u["source"] == "provider" for u in usages)
    assert today["tokens_in"] == sum(u["prompt_tokens"] for u in usages)
    assert today["tokens_out"] == sum(u["completion_tokens"] for u in usages)
    assert today["no_context_answers"] == 1
    assert today["errors"] == 1
    assert today["ttft_median_ms"] is not None
    assert today["ttft_p95_ms"] >= today["ttft_median_ms"]
    assert today["rejected"] == {"rate_limited": 1}
    assert all(d["answers"] == 0 for d in days[:-1])
    assert (
        body["budget"]["chatbot"]["used"]["total_tokens"]
        == today["tokens_in"] + today["tokens_out"]
    )
    assert body["budget"]["chatbot"]["monthly_token_budget"] is None


async def test_the_range_is_validated(openai_settings: Any) -> None:
    async with admin_app(openai_settings()) as admin:
        path = "/api/admin/chatbots/shop/analytics"
        today = datetime.now(UTC).date()
        one_day = await admin.get(path, params={"from": str(today), "to": str(today)})
        assert len(one_day.json()["days"]) == 1
        backwards = await admin.get(
            path, params={"from": str(today), "to": str(today - timedelta(days=1))}
        )
        assert backwards.status_code == 422
        too_long = await admin.get(path, params={"from": "2020-01-01", "to": "2024-01-01"})
        assert too_long.status_code == 422
        not_a_date = await admin.get(path, params={"from": "yesterday"})
        assert not_a_date.status_code == 422


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([10.0], 0.95) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(i) for i in range(1, 101)], 0.95) == 95.0
