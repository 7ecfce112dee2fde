"""The admin documents API: add knowledge to a chatbot, watch it being ingested, remove it.

    POST   /api/admin/chatbots/{chatbot_id}/documents          202, the job's document
    GET    /api/admin/chatbots/{chatbot_id}/documents          every document, with status
    GET    /api/admin/chatbots/{chatbot_id}/documents/{id}     one document
    DELETE /api/admin/chatbots/{chatbot_id}/documents/{id}     204, its chunks removed too

``POST`` takes a multipart upload (field ``file``, optional ``title``) or JSON: ``{"text",
"title"}`` for pasted text, ``{"url"}`` for one page, ``{"url", "crawl": {...}}`` for a site.
What can be judged at once is answered at once (wrong type 415, too large 413, empty or
malformed 422, a URL to a private address 422); the rest happens in an ingestion job
(``ingestion/jobs.py``) whose status and progress the ``GET`` routes show. Routes are thin:
the work is the jobs' and the ingestor's.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePath
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from sitechat.api.admin import examples
from sitechat.api.admin.common import ADMIN_ERRORS, BODY_ERRORS, shown
from sitechat.api.auth import AdminChatbot
from sitechat.api.schemas import ErrorBody
from sitechat.domain import ChatbotConfig, Document, DocumentStatus
from sitechat.errors import (
    DocumentNotFound,
    IngestionError,
    InvalidInput,
    InvalidJson,
    PayloadTooLarge,
    UnsupportedType,
)
from sitechat.ingestion.crawl import MAX_DEPTH_LIMIT, MAX_PAGES_LIMIT, CrawlOptions
from sitechat.ingestion.jobs import IngestionJobs, Upload
from sitechat.ingestion.loaders import SUPPORTED_SUFFIXES
from sitechat.ingestion.pdf import is_pdf

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_TEXT_CHARS = 2_000_000
MAX_TITLE_CHARS = 200
_UPLOAD_FIELDS = frozenset({"file", "title"})
_UPLOAD_TYPES = frozenset(
    {
        "text/plain", "text/markdown", "text/x-markdown", "text/html", "application/xhtml+xml",
        "application/pdf", "application/octet-stream", "",
    }
)  # fmt: skip


# --- bodies -----------------------------------------------------------------------------------


class CrawlBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    max_pages: int = Field(default=50, ge=1, le=MAX_PAGES_LIMIT)
    max_depth: int = Field(default=2, ge=0, le=MAX_DEPTH_LIMIT)
    sitemap: bool = Field(default=False, description="Take the pages from the site's sitemap.")


class DocumentBody(BaseModel):
    """Pasted text (``text`` and ``title``) or a URL (``url``, optionally ``crawl``)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [examples.DOCUMENT_TEXT, examples.DOCUMENT_URL, examples.DOCUMENT_CRAWL]
        },
    )

    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_CHARS)
    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE_CHARS)
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    crawl: CrawlBody | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DocumentBody:
        if (self.text is None) == (self.url is None):
            raise ValueError("send either 'text' (with 'title') or 'url'")
        if self.text is not None and not self.text.strip():
            raise ValueError("'text' is empty")
        if self.text is not None and self.crawl is not None:
            raise ValueError("'crawl' goes with 'url'")
        if self.url is not None and not self.url.lower().startswith(("http://", "https://")):
            raise ValueError("'url' must start with http:// or https://")
        return self


class DocumentOut(BaseModel):
    model_config = shown(examples.DOCUMENT)

    id: str
    chatbot_id: str
    title: str
    url: str | None
    source_type: str
    status: DocumentStatus
    error: str | None
    chunk_count: int
    progress: dict[str, int] = Field(
        description="pages_total, pages_done, pages_failed (URLs and crawls) and chunks."
    )
    parent_id: str | None = Field(description="The crawl this page was found by, if any.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, document: Document) -> DocumentOut:
        progress = document.metadata.get("progress") or {}
        return cls(
            id=document.id,
            chatbot_id=document.chatbot_id,
            title=document.title,
            url=document.url,
            source_type=document.source_type,
            status=document.status,
            error=document.error,
            chunk_count=document.chunk_count,
            progress={k: int(v) for k, v in progress.items() if isinstance(v, int)},
            parent_id=document.metadata.get("parent"),
            created_at=document.created_at,
            updated_at=document.updated_at,
        )


class DocumentList(BaseModel):
    model_config = shown(examples.DOCUMENT_LIST)

    documents: list[DocumentOut]


# --- dependencies -----------------------------------------------------------------------------


async def get_jobs(request: Request) -> IngestionJobs:
    jobs: IngestionJobs = request.app.state.services.ingestion_jobs
    return jobs


JobsDep = Annotated[IngestionJobs, Depends(get_jobs)]
DocumentId = Annotated[
    str, Path(description="A document's id.", examples=[examples.DOCUMENT["id"]])
]

ERRORS: dict[int | str, dict[str, Any]] = {
    **ADMIN_ERRORS,  # 401, and 503 for a write while the shared cache is unreachable
    404: {"model": ErrorBody, "description": "Unknown chatbot or document"},
    422: {"model": ErrorBody, "description": "Empty or malformed input"},
}


def inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its ``$defs`` put in place of their ``$ref``s: placed in an
    operation, ``#/$defs/...`` would point into the OpenAPI document's root, where nothing
    is (the models here are not recursive)."""
    defs = schema.get("$defs", {})

    def place(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return place(defs[ref.removeprefix("#/$defs/")])
            return {k: place(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [place(item) for item in node]
        return node

    placed: dict[str, Any] = place(schema)
    return placed


_POST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": inline_defs(DocumentBody.model_json_schema())},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string", "maxLength": MAX_TITLE_CHARS},
                    },
                    "additionalProperties": False,
                }
            },
        },
    }
}


# --- routes -----------------------------------------------------------------------------------


def build_documents_router() -> APIRouter:
    router = APIRouter(
        prefix="/api/admin/chatbots/{chatbot_id}/documents",
        tags=["admin: documents"],
        responses=ERRORS,
    )

    @router.post(
        "",
        status_code=202,
        response_model=DocumentOut,
        summary="Add a document: a file, pasted text, a URL or a whole site",
        openapi_extra=_POST_BODY,
        responses={
            **BODY_ERRORS,
            409: {"model": ErrorBody, "description": "Already being ingested"},
            413: {"model": ErrorBody, "description": "Too large"},
            415: {"model": ErrorBody, "description": "Unsupported type"},
        },
    )
    async def add_document(request: Request, chatbot: AdminChatbot, jobs: JobsDep) -> JSONResponse:
        content_type = request.headers.get("content-type", "").lower()
        if content_type.startswith("multipart/form-data"):
            document = await _submit_upload(request, chatbot, jobs)
        elif content_type.startswith("application/json"):
            document = await _submit_json(request, chatbot, jobs)
        else:
            raise UnsupportedType("Send multipart/form-data with a 'file', or a JSON body.")
        location = f"{request.url.path.rstrip('/')}/{document.id}"
        return JSONResponse(
            DocumentOut.of(document).model_dump(mode="json"),
            status_code=202,
            headers={"Location": location},
        )

    @router.get("", response_model=DocumentList, summary="Every document, with its status")
    async def list_documents(
        chatbot: AdminChatbot,
        jobs: JobsDep,
        status: Annotated[Literal["queued", "running", "done", "failed"] | None, Query()] = None,
    ) -> DocumentList:
        documents = await jobs.ingestor.store.list_documents(chatbot.id)
        if status is not None:
            documents = [d for d in documents if d.status == status]
        return DocumentList(documents=[DocumentOut.of(d) for d in documents])

    @router.get("/{document_id}", response_model=DocumentOut, summary="One document")
    async def get_document(
        chatbot: AdminChatbot, jobs: JobsDep, document_id: DocumentId
    ) -> DocumentOut:
        document = await jobs.ingestor.store.get_document(chatbot.id, document_id)
        if document is None:
            raise DocumentNotFound()
        return DocumentOut.of(document)

    @router.delete("/{document_id}", status_code=204, summary="Remove a document and its chunks")
    async def delete_document(
        chatbot: AdminChatbot, jobs: JobsDep, document_id: DocumentId
    ) -> Response:
        if await jobs.ingestor.store.get_document(chatbot.id, document_id) is None:
            raise DocumentNotFound()
        await jobs.cancel(document_id)  # a job still running would index it again
        if not await jobs.ingestor.delete_document(chatbot.id, document_id):
            raise DocumentNotFound()
        return Response(status_code=204)

    return router


async def _submit_upload(request: Request, chatbot: ChatbotConfig, jobs: IngestionJobs) -> Document:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
        raise PayloadTooLarge(f"The upload is larger than {MAX_UPLOAD_BYTES // 2**20} MB.")
    try:
        form = await request.form(max_files=1, max_fields=len(_UPLOAD_FIELDS))
    except StarletteHTTPException as exc:  # too many parts, or not multipart at all
        raise InvalidInput("Send one multipart field 'file' and, optionally, 'title'.") from exc
    try:
        if not set(form.keys()) <= _UPLOAD_FIELDS:
            raise InvalidInput("Send one multipart field 'file' and, optionally, 'title'.")
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise InvalidInput("Send the document in a multipart field named 'file'.")
        title = form.get("title")
        if title is not None and not isinstance(title, str):
            raise InvalidInput("'title' must be text.")
        if title is not None and len(title) > MAX_TITLE_CHARS:
            raise InvalidInput(f"'title' is at most {MAX_TITLE_CHARS} characters.")
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        filename = PurePath(file.filename or "").name or None
        file_type = (file.content_type or "").split(";")[0].strip().lower()
    finally:
        await form.close()
    if len(data) > MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"The upload is larger than {MAX_UPLOAD_BYTES // 2**20} MB.")
    if not data.strip():
        raise InvalidInput("The file is empty.")
    suffix = PurePath(filename).suffix.lower() if filename else ""
    if suffix and suffix not in SUPPORTED_SUFFIXES and not is_pdf(data):
        raise UnsupportedType(f"Unsupported file type {suffix!r}: upload .md, .txt, .html or .pdf.")
    if not suffix and file_type not in _UPLOAD_TYPES:
        raise UnsupportedType(f"Unsupported content type {file_type!r}.")
    upload = Upload(
        data, filename=filename, content_type=file_type or None, title=(title or "").strip() or None
    )
    return await jobs.submit_upload(chatbot.id, upload)


async def _submit_json(request: Request, chatbot: ChatbotConfig, jobs: IngestionJobs) -> Document:
    raw = await request.body()
    if len(raw) > MAX_UPLOAD_BYTES:
        raise PayloadTooLarge("The upload is too large.")
    try:
        body = DocumentBody.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid"}
        if first.get("type") == "json_invalid":
            raise InvalidJson() from exc
        if first.get("type") == "model_type":
            raise InvalidJson("The request body must be a JSON object.") from exc
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise InvalidInput(f"Invalid '{where}': {first.get('msg', 'invalid')}.") from exc
    if body.text is not None:
        title = body.title or _title_from(body.text)
        return await jobs.submit_upload(chatbot.id, Upload(body.text, title=title))
    assert body.url is not None
    await _check_address(jobs, body.url)
    crawl = None
    if body.crawl is not None:
        crawl = CrawlOptions(
            max_pages=body.crawl.max_pages,
            max_depth=body.crawl.max_depth,
            use_sitemap=body.crawl.sitemap,
        )
    return await jobs.submit_url(chatbot.id, body.url, crawl=crawl)


async def _check_address(jobs: IngestionJobs, url: str) -> None:
    """Refuse a private address now, not minutes later in a job (the fetch checks again)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidInput("'url' is not a valid URL.") from exc
    if not parsed.host:
        raise InvalidInput("'url' has no host.")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        await jobs.fetch_policy.addresses.check(parsed.host, port)
    except IngestionError as exc:
        raise InvalidInput(exc.message) from exc


def _title_from(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "Untitled")
    first = first.lstrip("#").strip()
    return first[:120] or "Untitled"
