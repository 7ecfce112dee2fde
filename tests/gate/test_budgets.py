"""Monthly token budgets per chatbot and per org, counted from the usage the model reported:
over budget, chat answers 429 ``budget_exceeded`` before any stream starts, and the owner
sees both the usage and the refusals in analytics."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sitechat.config import Settings
from sitechat.domain import TokenUsage
from sitechat.gate.budgets import BudgetGuard, seconds_until_next_month
from sitechat.gate.policy import policy_of
from sitechat.storage import Database, Store
from sitechat.storage.usage import UsageLedger
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


async def test_a_burst_after_the_cache_lapsed_reads_the_budget_once(tmp_path: Path) -> None:
    """Many requests arriving together find the budget cache empty; they share one read of
    the org's budget (and of a budgeted chatbot's usage) rather than one query each. A later
    burst, once the cache lapsed, reads again; a burst that finds it fresh reads nothing."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'sitechat.db'}")
    await database.start(migrate=True)
    try:
        store = Store(database)
        org = await store.create_org("Acme")
        config = await store.create_chatbot(
            org.id, name="Shop", chatbot_id="shop", settings={"monthly_token_budget": 1000}
        )
        ledger = UsageLedger(database)
        await ledger.set_org_budget(org.id, 5000)
        reads: Counter[str] = Counter()

        class CountingLedger(UsageLedger):
            async def get_org_budget(self, org_id: str) -> int | None:
                reads["budget"] += 1
                return await super().get_org_budget(org_id)

            async def month_usage(self, scope: str, scope_id: str, period: str) -> TokenUsage:
                reads["usage"] += 1
                return await super().month_usage(scope, scope_id, period)

        guard = BudgetGuard(CountingLedger(database), cache_seconds=0.2)
        policy = policy_of(config, Settings(_env_file=None))  # type: ignore[call-arg]

        await asyncio.gather(*(guard.check(config, policy) for _ in range(50)))
        assert reads == {"budget": 1, "usage": 2}  # the org's month and the chatbot's
        await asyncio.gather(*(guard.check(config, policy) for _ in range(50)))
        assert reads == {"budget": 1, "usage": 2}  # still cached
        await asyncio.sleep(0.25)
        await asyncio.gather(*(guard.check(config, policy) for _ in range(50)))
        assert reads == {"budget": 2, "usage": 4}
    finally:
        await database.close()
