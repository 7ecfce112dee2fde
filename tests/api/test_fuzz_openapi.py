"""Schemathesis against the app's own OpenAPI document, in-process over ASGI (issue 9).

Every operation of ``/openapi.json`` is fuzzed with data the schema allows and data it
refuses (Schemathesis' positive and negative modes, plus its coverage phase of boundary
values). Each response must be:

- no 5xx: nothing a client sends may reach a 500;
- what the document says: a documented status code and content type, a body that validates
  against the documented schema, the documented headers;
- free of internal text: no traceback, exception class name, vendor module or SQL.

Public routes are called without a key, admin routes with a real org key (``AdminKey``), and
``POST /api/admin/orgs`` with the bootstrap key. The data is a throwaway database made for
this module: the org, its key and the chatbot ``shop`` with three documents. Destructive
routes that would remove that fixture (deleting a chatbot, revoking a key) are left out;
the other ``DELETE`` routes run against ids that mostly do not exist.

Bounded to stay well under two minutes on two cores: a fixed number of examples per
operation, no deadline, a fixed seed and derandomised generation, so a failure reproduces.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.config import SchemathesisConfig

from sitechat.api.app import create_app
from sitechat.config import Settings
from sitechat.domain import CHATBOT_ID_PATTERN
from sitechat.services import Services
from tests.conftest import seed_chatbot
from tests.storage.conftest import (
    create_postgres_database,
    drop_postgres_database,
    require_postgres,
)

MAX_EXAMPLES = 15
SEED = 20260109
BOOTSTRAP_KEY = "fuzz-bootstrap-key-" + "x" * 20

# Internal text a response must never carry. Scanned in every body, errors and successes
# alike; the cases are derandomised, so a visitor message the fuzzer made up that happened to
# spell one of these would fail the same way every run, never intermittently.
INTERNAL_TEXT = re.compile(
    r"Traceback \(most recent call last\)"
    r'|File "[^"]+", line \d+'
    r"|\b(?:sqlalchemy|asyncpg|aiosqlite|sqlite3|psycopg2?|pydantic_core|starlette|redis)\."
    r"|\b[A-Z][A-Za-z]*(?:Error|Exception)\b"
    r"|\b(?:SELECT|INSERT INTO|UPDATE|DELETE FROM)\b[^\n]{0,200}\b(?:FROM|VALUES|SET|WHERE)\b"
)


@dataclass
class Target:
    backend: str
    settings: Settings
    key: str


class Tally:
    """Cases and time per database, printed when its run ends (``-s`` shows it)."""

    cases = 0
    started = time.monotonic()
    statuses: Counter[int] = Counter()

    @classmethod
    def start(cls) -> None:
        cls.cases, cls.started, cls.statuses = 0, time.monotonic(), Counter()

    @classmethod
    def report(cls, backend: str) -> None:
        elapsed = time.monotonic() - cls.started
        seen = ", ".join(f"{status}: {n}" for status, n in sorted(cls.statuses.items()))
        print(f"\nschemathesis on {backend}: {cls.cases} cases in {elapsed:.1f} s ({seen})")


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ],
)
def fuzz_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    # Both databases: what one stores the other may refuse (integer sizes, NUL in text).
    Tally.start()
    database_url = ""
    if request.param == "postgres":
        try:
            database_url = asyncio.run(create_postgres_database("sitechat_test_fuzz"))
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            require_postgres(exc)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path_factory.mktemp("fuzz") / "data",
        database_url=database_url,
        default_provider="extractive",
        bootstrap_admin_key=BOOTSTRAP_KEY,
        # Generous limits: the fuzzer's requests should reach the handlers, not the limiter
        # (429 is documented and would pass, but would test nothing past the gate).
        rate_limit_per_ip="100000/minute",
        rate_limit_per_visitor="100000/minute",
        rate_limit_per_session="100000/minute",
        rate_limit_config_per_ip="100000/minute",
    )

    async def seed() -> str:
        services = await Services.start(settings)
        try:
            org_id = await seed_chatbot(services)
            _record, key = await services.store.create_api_key(org_id, "fuzz")
            return key
        finally:
            await services.aclose()

    try:
        yield Target(request.param, settings, asyncio.run(seed()))
    finally:
        Tally.report(request.param)
        if database_url:
            asyncio.run(drop_postgres_database(database_url))


class AppUnderTest:
    """The ASGI app Schemathesis calls: the module's app, once its fixture has built it.

    Schemathesis' own fixture-based loader does not run under this pytest (it reads a
    removed private attribute of the test node), so the schema is loaded when the module is
    imported, from the same ``create_app`` the fixture uses, and its requests go through
    this stand-in to the app built on the seeded database."""

    app: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "the fuzz_app fixture has not run"
        await self.app(scope, receive, send)


APP = AppUnderTest()


@pytest.fixture(scope="module", autouse=True)
def fuzz_app(fuzz_target: Target) -> Iterator[FastAPI]:
    APP.app = create_app(fuzz_target.settings)
    yield APP.app
    APP.app = None


def fuzz_config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            # Unknown query parameters are ignored, as HTTP APIs do (a cache-busting ``_=``
            # must not fail), so requests with extra ones are not negative cases here.
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "allow-extra-parameters": False,
            },
            "operations": [
                # What a document may be is decided by its content and name (.md, .txt,
                # .html or .pdf, not empty; text or a URL), which the schema cannot say of a
                # binary part: a schema-valid upload may be refused with 415 or 422.
                {"include-path": "/api/admin/chatbots/{chatbot_id}/documents",
                 "include-method": "POST",
                 "checks": {"positive_data_acceptance": {"expected-statuses": [
                     "2xx", "401", "403", "404", "409", "415", "422"]}}},
                # ``DELETE .../conversations/export`` is routed to ``DELETE .../{id}`` with
                # the id "export" (and answers 404), so that path's ``Allow`` names DELETE,
                # which the document, reading the two paths apart, does not list for it.
                {"include-path": "/api/admin/chatbots/{chatbot_id}/conversations/export",
                 "checks": {"allow_header_conformance": {"enabled": False}}},
                # The fixture's own chatbot and key must survive the run.
                {"include-path": "/api/admin/chatbots/{chatbot_id}", "include-method": "DELETE",
                 "enabled": False},
                {"include-path": "/api/admin/keys/{key_id}", "enabled": False},
            ],
            # Admin routes act on the fixture's chatbot, so handlers run past the 404.
            "parameters": {"path.chatbot_id": "shop"},
        }
    )  # fmt: skip


def load_schema() -> Any:
    # The document only depends on the routes, not on settings: any settings will do here.
    document = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
    loaded = schemathesis.openapi.from_dict(document, config=fuzz_config())
    loaded.app = APP
    return loaded


schema = load_schema()


def no_internal_text(ctx: Any, response: Any, case: Any) -> None:
    found = INTERNAL_TEXT.search(response.text or "")
    if found:
        raise AssertionError(f"internal text in the response: {found.group(0)!r}")


def day(value: object) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def steer_days(case: Any) -> None:
    # Rules across parameters, which a schema cannot state: ``from`` is not after ``to``, and
    # analytics covers at most 366 days (``to`` defaults to today). Valid days are put in
    # that order and range (unanswered questions take the same range as analytics); invalid
    # ones are left for the negative cases.
    query = case.query
    if not isinstance(query, dict):
        return
    first, last = day(query.get("from")), day(query.get("to"))
    if first and last and first > last:
        query["from"], query["to"] = query["to"], query["from"]
        first, last = last, first
    if first and case.path.endswith(("/analytics", "/unanswered")):
        last = last or datetime.now(UTC).date()
        if not timedelta(0) <= last - first < timedelta(days=366):
            query["to"] = min(first + timedelta(days=30), date(2100, 12, 31)).isoformat()


def steer(case: Any) -> None:
    """What the schema cannot say, set here instead of fuzzed."""
    steer_days(case)
    body = case.body
    if not isinstance(body, dict):
        return
    # A chat body names its chatbot; a random (valid) id is a 404 before anything runs, so
    # valid ids become the fixture's chatbot and the pipeline runs. Invalid ids stay.
    chatbot_id = body.get("chatbot_id")
    if isinstance(chatbot_id, str) and re.fullmatch(CHATBOT_ID_PATTERN, chatbot_id):
        body["chatbot_id"] = "shop"
    # A document URL is resolved and fetched. The schema cannot say "a public host", and the
    # suite must not reach the internet: every URL points at TEST-NET-1 (RFC 5737), which
    # the address policy refuses (422) before any lookup or fetch.
    url = body.get("url")
    if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
        body["url"] = "http://192.0.2.1/" + url.split("/", 3)[-1][:100]


@schema.parametrize()
@hypothesis.settings(
    deadline=None,
    derandomize=True,
    max_examples=MAX_EXAMPLES,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)
def test_the_api_answers_every_generated_request_as_documented(
    case: Any, fuzz_target: Target
) -> None:
    steer(case)
    Tally.cases += 1
    headers = {}
    if case.path == "/api/admin/orgs":
        headers["Authorization"] = f"Bearer {BOOTSTRAP_KEY}"
    elif case.path.startswith("/api/admin/"):
        headers["Authorization"] = f"Bearer {fuzz_target.key}"
    response = case.call_and_validate(headers=headers, additional_checks=[no_internal_text])
    Tally.statuses[response.status_code] += 1
