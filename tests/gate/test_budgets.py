"""Monthly token budgets per chatbot and per org, counted from the usage the model reported:
over budget, chat answers 429 ``budget_exceeded`` before any stream starts, and the owner
sees both the usage and the refusals in analytics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sitechat.gate.budgets import seconds_until_next_month
from tests.support.admin import admin_app
from tests.support.scripted_openai import Script, ScriptedOpenAI

STREAM = "/api/public/chat/stream"
QUESTION = {"message": "How much is shipping?", "chatbot_id": "shop"}


async def test_a_chatbot_over_its_budget_is_refused_and_the_owner_sees_why(
    openai_settings: Any, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=["Free ", "over ", "50 euros [1]."]))
    settings = openai_settings(budget_cache_seconds=0)
    async with admin_app(settings, policy={"monthly_token_budget": 100}) as admin:
        first = await admin.client.post(STREAM, json=QUESTION)
        assert first.status_code == 200 and '"type":"complete"' in first.text
        refused = await admin.client.post(STREAM, json=QUESTION)
        assert refused.status_code == 429
        assert refused.json()["code"] == "budget_exceeded"
        assert "monthly" in refused.json()["error"]
        wait = int(refused.headers["retry-after"])
        assert abs(wait - seconds_until_next_month(datetime.now(UTC))) < 5
        assert len(scripted_openai.requests) == 1  # the model was not called again

        analytics = (await admin.get("/api/admin/chatbots/shop/analytics")).json()
        budget = analytics["budget"]["chatbot"]
        assert budget["monthly_token_budget"] == 100 and budget["exceeded"] is True
        assert budget["used"]["total_tokens"] > 100
        assert analytics["days"][-1]["rejected"] == {"budget_exceeded": 1}

        # Raising the budget lets visitors in again at once.
        await admin.patch("/api/admin/chatbots/shop", json={"monthly_token_budget": 10**6})
        assert (await admin.client.post(STREAM, json=QUESTION)).status_code == 200


async def test_the_org_budget_covers_all_its_chatbots(
    openai_settings: Any, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=["Free ", "over ", "50 euros [1]."]))
    async with admin_app(openai_settings(budget_cache_seconds=0)) as admin:
        assert (await admin.client.post(STREAM, json=QUESTION)).status_code == 200
        used = (await admin.get("/api/admin/org")).json()["budget"]["used"]["total_tokens"]
        assert used > 0
        set_budget = await admin.patch("/api/admin/org", json={"monthly_token_budget": used})
        assert set_budget.status_code == 200
        assert set_budget.json()["budget"]["exceeded"] is True
        refused = await admin.client.post(STREAM, json=QUESTION)
        assert refused.status_code == 429 and refused.json()["code"] == "budget_exceeded"
        await admin.patch("/api/admin/org", json={"monthly_token_budget": None})
        assert (await admin.client.post(STREAM, json=QUESTION)).status_code == 200


def test_the_wait_runs_to_the_first_of_next_month_utc() -> None:
    assert seconds_until_next_month(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == 60
    assert seconds_until_next_month(datetime(2026, 2, 1, tzinfo=UTC)) == 28 * 86400
