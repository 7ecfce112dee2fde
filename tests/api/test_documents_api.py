"""The admin documents API through HTTP (ASGI client, lifespan running): uploads, text, URLs
and crawls become ingestion jobs whose status the list shows; bad input is refused at once
with a clear 4xx; deleting a document removes its chunks. Pages are served on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sitechat.api.admin import documents
from sitechat.config import Settings
from sitechat.ingestion.jobs import IngestionJobs
from tests.conftest import AppHarness, running_app
from tests.ingestion.site import Site
from tests.support.pdfgen import make_pdf

BASE = "/api/admin/chatbots/shop/documents"
PLAIN = {"content-type": "text/plain"}
JSON = {"content-type": "application/json"}


@dataclass
class Admin:
    harness: AppHarness
    jobs: IngestionJobs
    headers: dict[str, str]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.harness.client

    async def finished(self, document_id: str) -> dict[str, Any]:
        await self.jobs.wait(document_id)
        response = await self.client.get(f"{BASE}/{document_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def titles_found(self, query: str) -> set[str]:
        hits = await self.harness.services.vectors.search("shop", query, 10)
        return {hit.chunk.title for hit in hits}


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as running:
        yield running


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[Admin]:
    # The app's own job runner fetches, from this test's loopback site too.
    loopback = settings.model_copy(update={"fetch_allowed_networks": ["127.0.0.1/32"]})
    async with running_app(loopback) as h:
        services: Any = h.services
        _record, key = await services.store.create_api_key(h.org_id, "test")
        yield Admin(h, services.ingestion_jobs, {"Authorization": f"Bearer {key}"})


async def test_an_upload_is_accepted_then_ingested(admin: Admin) -> None:
    response = await admin.client.post(
        BASE,
        headers=admin.headers,
        files={"file": ("kettle.md", b"# Kettle\n\nThe kettle whistles when the water boils.")},
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] in ("queued", "running")
    assert response.headers["location"] == f"{BASE}/{accepted['id']}"
    done = await admin.finished(accepted["id"])
    assert done["status"] == "done" and done["error"] is None
    assert done["title"] == "Kettle" and done["source_type"] == "markdown"
    assert done["chunk_count"] >= 1 and done["progress"]["chunks"] == done["chunk_count"]
    assert "Kettle" in await admin.titles_found("kettle whistles")

    listing = await admin.client.get(BASE, headers=admin.headers)
    assert listing.status_code == 200
    rows = {row["id"]: row for row in listing.json()["documents"]}
    assert rows[accepted["id"]]["status"] == "done"
    assert {"Shipping", "Returns", "Opening hours"} <= {row["title"] for row in rows.values()}


async def test_pasted_text_is_ingested_under_its_title(admin: Admin) -> None:
    response = await admin.client.post(
        BASE,
        headers=admin.headers,
        json={"text": "Gift cards never expire and work in every store.", "title": "Gift cards"},
    )
    assert response.status_code == 202, response.text
    done = await admin.finished(response.json()["id"])
    assert done["status"] == "done" and done["title"] == "Gift cards"
    assert "Gift cards" in await admin.titles_found("gift cards expire")


async def test_a_url_and_a_crawl_are_ingested_with_progress(admin: Admin, site: Site) -> None:
    site.html("/", "Home", "Welcome to the kettle shop.", links=("/lids",))
    site.html("/lids", "Spare lids", "Spare lids cost seven euros.")
    one = await admin.client.post(BASE, headers=admin.headers, json={"url": site.url("/lids")})
    assert one.status_code == 202, one.text
    page = await admin.finished(one.json()["id"])
    assert page["status"] == "done" and page["url"] == site.url("/lids")

    crawl = await admin.client.post(
        BASE, headers=admin.headers, json={"url": site.url("/"), "crawl": {"max_depth": 1}}
    )
    assert crawl.status_code == 202, crawl.text
    root = await admin.finished(crawl.json()["id"])
    assert root["source_type"] == "site" and root["status"] == "done"
    assert root["progress"]["pages_total"] == 2 and root["progress"]["pages_done"] == 2
    listing = (await admin.client.get(BASE, headers=admin.headers)).json()["documents"]
    assert {r["title"] for r in listing if r["parent_id"] == root["id"]} == {"Home", "Spare lids"}


async def test_a_corrupt_pdf_fails_with_its_reason_and_nothing_else_changes(admin: Admin) -> None:
    before = await admin.harness.services.vectors.count("shop")
    response = await admin.client.post(
        BASE,
        headers=admin.headers,
        files={"file": ("manual.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 20, "application/pdf")},
    )
    assert response.status_code == 202
    failed = await admin.finished(response.json()["id"])
    assert failed["status"] == "failed" and "PDF" in failed["error"]
    assert await admin.harness.services.vectors.count("shop") == before
    failed_only = await admin.client.get(BASE, headers=admin.headers, params={"status": "failed"})
    assert [row["id"] for row in failed_only.json()["documents"]] == [failed["id"]]


async def test_a_real_pdf_upload_is_searchable(admin: Admin) -> None:
    pdf = make_pdf(["Descale the kettle with citric acid every month."], title="Care guide")
    response = await admin.client.post(
        BASE, headers=admin.headers, files={"file": ("care.pdf", pdf, "application/pdf")}
    )
    done = await admin.finished(response.json()["id"])
    assert done["status"] == "done" and done["source_type"] == "pdf"
    assert "Care guide" in await admin.titles_found("descale citric acid")


async def test_deleting_a_document_removes_its_chunks(admin: Admin) -> None:
    listing = (await admin.client.get(BASE, headers=admin.headers)).json()["documents"]
    returns = next(row for row in listing if row["title"] == "Returns")
    assert "Returns" in await admin.titles_found("return refund")
    response = await admin.client.delete(f"{BASE}/{returns['id']}", headers=admin.headers)
    assert response.status_code == 204
    assert "Returns" not in await admin.titles_found("return refund")
    gone = await admin.client.get(f"{BASE}/{returns['id']}", headers=admin.headers)
    assert gone.status_code == 404 and gone.json()["code"] == "document_not_found"
    again = await admin.client.delete(f"{BASE}/{returns['id']}", headers=admin.headers)
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"files": {"file": ("tool.exe", b"MZ\x90\x00binary")}}, 415, "unsupported_type"),
        ({"files": {"file": ("empty.md", b"  \n ")}}, 422, "invalid_input"),
        ({"files": {"other": ("a.md", b"# A")}}, 422, "invalid_input"),
        ({"content": b"just text", "headers": PLAIN}, 415, "unsupported_type"),
        ({"content": b"{not json", "headers": JSON}, 400, "invalid_json"),
        ({"json": [1, 2]}, 400, "invalid_json"),
        ({"json": {}}, 422, "invalid_input"),
        ({"json": {"text": "a", "url": "https://example.com"}}, 422, "invalid_input"),
        ({"json": {"text": "   "}}, 422, "invalid_input"),
        ({"json": {"text": 5}}, 422, "invalid_input"),
        ({"json": {"url": "ftp://example.com/file"}}, 422, "invalid_input"),
        ({"json": {"url": "http://169.254.169.254/latest/meta-data"}}, 422, "invalid_input"),
        ({"json": {"url": "https://example.com", "crawl": {"max_pages": 0}}}, 422, "invalid_input"),
        ({"json": {"text": "x", "unknown": 1}}, 422, "invalid_input"),
    ],
)  # fmt: skip
async def test_bad_input_is_refused_at_once_with_a_clear_4xx(
    admin: Admin, kwargs: dict[str, Any], status: int, code: str
) -> None:
    headers = {**admin.headers, **kwargs.pop("headers", {})}
    response = await admin.client.post(BASE, headers=headers, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["error"]


async def test_an_upload_over_the_size_limit_is_413(
    admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(documents, "MAX_UPLOAD_BYTES", 1000)
    response = await admin.client.post(
        BASE, headers=admin.headers, files={"file": ("big.txt", b"word " * 1000)}
    )
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"


async def test_without_a_key_or_for_another_orgs_chatbot_nothing_is_shown(admin: Admin) -> None:
    assert (await admin.client.get(BASE)).status_code == 401
    bad = {"Authorization": "Bearer sck_not-a-real-key"}
    assert (await admin.client.get(BASE, headers=bad)).status_code == 401

    store = admin.harness.services.store
    other = await store.create_org("Other Inc")
    await store.create_chatbot(other.id, name="Theirs", chatbot_id="theirs")
    _record, their_key = await store.create_api_key(other.id, "theirs")
    theirs = {"Authorization": f"Bearer {their_key}"}
    response = await admin.client.get(BASE, headers=theirs)
    assert response.status_code == 404 and response.json()["code"] == "chatbot_not_found"
    posted = await admin.client.post(BASE, headers=theirs, json={"text": "x", "title": "x"})
    assert posted.status_code == 404
    listing = await admin.client.get(BASE, headers=admin.headers)
    assert all(row["title"] != "x" for row in listing.json()["documents"])
