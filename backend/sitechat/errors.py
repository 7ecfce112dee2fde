"""The one vocabulary of errors in sitechat, and how each one answers.

Vendor exceptions (SQLAlchemy, openai, qdrant, redis, llama.cpp) are translated into these
where they enter, with ``raise ... from exc``; the rest of the code sees only this tree.
Every subclass lives here, so this drawing is the whole of it::

    SitechatError                   code                     HTTP  headers
    ├── InvalidInput                invalid_input             422
    │   ├── InvalidJson             invalid_json              400
    │   ├── PayloadTooLarge         payload_too_large         413
    │   └── UnsupportedType         unsupported_type          415
    ├── NotFound                    not_found                 404
    │   ├── ChatbotNotFound         chatbot_not_found         404
    │   ├── ConversationNotFound    conversation_not_found    404
    │   └── DocumentNotFound        document_not_found        404
    ├── MethodNotAllowed            method_not_allowed        405  Allow
    ├── Unauthorized                unauthorized              401
    │   ├── InvalidApiKey           unauthorized              401  WWW-Authenticate
    │   ├── VisitorTokenRequired    visitor_token_required    401
    │   ├── VisitorTokenInvalid     visitor_token_invalid     401
    │   └── VisitorTokenExpired     visitor_token_expired     401
    ├── Forbidden                   forbidden                 403
    │   └── OriginNotAllowed        origin_not_allowed        403
    ├── RateLimited                 rate_limited              429  Retry-After
    │   ├── LimitExceeded           rate_limited              429  Retry-After, X-RateLimit-*
    │   ├── BudgetExceeded          budget_exceeded           429  Retry-After
    │   └── TooManyStreams          too_many_streams          429  Retry-After
    ├── Conflict                    conflict                  409
    ├── ModelError                  model_error               502
    │   ├── ModelUnavailable        model_unavailable         502  (before its first token)
    │   └── ModelInterrupted        model_interrupted         502  (mid-stream)
    ├── StorageError                storage_error             503
    ├── VectorStoreError            vector_store_error        503
    │   └── IndexBusy               index_busy                503  (another process holds it)
    ├── AnswerAbandoned             client_disconnected       499  (stored, never sent)
    ├── IngestionError              ingestion_error           422
    │   └── AddressRefused          ingestion_error           422  (a private or unknown host)
    └── ServiceUnavailable          unavailable               503
        ├── SharedStateUnavailable  unavailable               503  (Redis away: admin writes)
        ├── ServerRestarting        server_restarting         503  Retry-After (ask again)
        ├── AnswerOrphaned          answer_orphaned           503  (its process died)
        └── AnswerNotResumable      answer_not_resumable      503  (no shared recording)

How an error answers is decided here and nowhere else: ``status``, ``code``, ``message``
and ``headers()``. ``error_body`` is the one JSON shape of every error, used by the HTTP
error handlers, the body-size middleware and the SSE ``error`` event alike.

``message`` is always safe to show to a public client: it never contains internal exception
text. Details belong in ``__cause__`` and the log.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def error_body(
    code: str,
    message: str,
    *,
    request_id: str | None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The JSON body of every error sitechat answers: ``error``, ``code``, ``request_id``
    and, for invalid input, ``details`` (one entry per field)."""
    body: dict[str, Any] = {"error": message, "code": code, "request_id": request_id}
    if details:
        body["details"] = details
    return body


class SitechatError(Exception):
    code: str = "internal_error"
    status: int = 500
    message: str = "Something went wrong."

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with this error's response."""
        return {}

    def body(self, request_id: str | None) -> dict[str, Any]:
        return error_body(self.code, self.message, request_id=request_id)


# --- 4xx: the request ------------------------------------------------------------------------


class InvalidInput(SitechatError):
    code = "invalid_input"
    status = 422
    message = "The request is not valid."


class InvalidJson(InvalidInput):
    code = "invalid_json"
    status = 400
    message = "The request body is not valid JSON."


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"
    status = 413
    message = "The request body is too large."


class UnsupportedType(InvalidInput):
    code = "unsupported_type"
    status = 415
    message = "Unsupported document type: upload .md, .txt, .html or .pdf."


class NotFound(SitechatError):
    code = "not_found"
    status = 404
    message = "Not found."


class ChatbotNotFound(NotFound):
    code = "chatbot_not_found"
    message = "No chatbot with that id."


class ConversationNotFound(NotFound):
    code = "conversation_not_found"
    message = "No conversation with that id."


class DocumentNotFound(NotFound):
    code = "document_not_found"
    message = "No document with that id."


class MethodNotAllowed(SitechatError):
    code = "method_not_allowed"
    status = 405
    message = "Method not allowed."

    def __init__(self, message: str | None = None, *, allow: str | None = None) -> None:
        super().__init__(message)
        self.allow = allow

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allow} if self.allow else {}


class Unauthorized(SitechatError):
    code = "unauthorized"
    status = 401
    message = "A valid API key is required."


class InvalidApiKey(Unauthorized):
    """An admin request without a valid key: ``WWW-Authenticate: Bearer``, as RFC 6750
    asks of a bearer-protected API."""

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="sitechat-admin"'}


class VisitorTokenRequired(Unauthorized):
    code = "visitor_token_required"
    message = "This chatbot needs a visitor token: load its config first."


class VisitorTokenInvalid(Unauthorized):
    code = "visitor_token_invalid"
    message = "The visitor token is not valid here; load the chatbot's config again."


class VisitorTokenExpired(Unauthorized):
    code = "visitor_token_expired"
    message = "The visitor token has expired; load the chatbot's config again."


class Forbidden(SitechatError):
    code = "forbidden"
    status = 403
    message = "Not allowed."


class OriginNotAllowed(Forbidden):
    code = "origin_not_allowed"
    message = "This website is not allowed to use this chatbot."


class RateLimited(SitechatError):
    """429 with ``Retry-After``: whole seconds, rounded up, at least 1."""

    code = "rate_limited"
    status = 429
    message = "Too many requests; try again later."

    def __init__(self, message: str | None = None, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


class LimitExceeded(RateLimited):
    """Over a rate limit: also the ``X-RateLimit-*`` headers of the limit that was hit."""

    def __init__(
        self, *, retry_after: float, limit_headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(retry_after=retry_after)
        self.limit_headers = dict(limit_headers or {})

    def headers(self) -> dict[str, str]:
        return {**self.limit_headers, **super().headers()}


class BudgetExceeded(RateLimited):
    code = "budget_exceeded"
    message = "This chatbot has used its monthly allowance. Please try again later."


class TooManyStreams(RateLimited):
    code = "too_many_streams"
    message = "Too many answers are being written at once; try again in a moment."

    def __init__(self) -> None:
        super().__init__(retry_after=5)


class Conflict(SitechatError):
    code = "conflict"
    status = 409
    message = "That conflicts with what is stored."


# --- 5xx and ingestion: the parts sitechat depends on -----------------------------------------


class ModelError(SitechatError):
    """``request_accepted`` is False when the provider never took the request (it could not
    be reached, refused it with an error status, or the local model is not loaded): nothing
    was generated, providers bill nothing, so the budget charges nothing either. Otherwise
    the prompt is charged even though the answer failed (see ``chat.pipeline``).

    ``reason`` says why, for operators (logs, metrics, a fallback chain's ``usage``), never
    for visitors: ``connect_error``, ``rate_limited``, ``server_error``, ``rejected`` (another
    error status), ``timeout``, ``first_token_timeout``, ``unavailable``, ``interrupted``."""

    code = "model_error"
    status = 502
    message = "The language model failed to answer."
    reason = "unavailable"

    def __init__(
        self,
        message: str | None = None,
        *,
        request_accepted: bool = True,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.request_accepted = request_accepted
        if reason is not None:
            self.reason = reason


class ModelUnavailable(ModelError):
    code = "model_unavailable"
    message = "The language model is not available right now."


class ModelInterrupted(ModelError):
    code = "model_interrupted"
    message = "The answer was interrupted."
    reason = "interrupted"


class StorageError(SitechatError):
    code = "storage_error"
    status = 503
    message = "Storage is not available right now."


class VectorStoreError(SitechatError):
    code = "vector_store_error"
    status = 503
    message = "Search is not available right now."


class IndexBusy(VectorStoreError):
    """The embedded index is open in another sitechat process: only one may hold it."""

    code = "index_busy"

    def __init__(self, where: object, holder: str | None = None) -> None:
        by = f" (pid {holder})" if holder else ""
        super().__init__(
            f"The embedded index at {where} is held by another sitechat process{by}, "
            "probably a running `sitechat serve`. Stop it, or configure a Qdrant server "
            "(SITECHAT_QDRANT_URL) to share the index between processes."
        )


class IngestionError(SitechatError):
    code = "ingestion_error"
    status = 422
    message = "The document could not be ingested."


class AddressRefused(IngestionError):
    """The URL's host is not a permitted address (or has none)."""


class ServiceUnavailable(SitechatError):
    code = "unavailable"
    status = 503
    message = "The service is not available right now."


class AnswerAbandoned(SitechatError):
    """Every reader left and none came back within the grace period: the answer was stopped
    so it stops costing tokens. Stored as the interrupted answer's code; nobody is left to
    receive it as an event."""

    code = "client_disconnected"
    status = 499
    message = "The answer was stopped: nobody was reading it."


class SharedStateUnavailable(ServiceUnavailable):
    message = "Changes cannot be saved right now (shared cache unreachable); try again shortly."


class ServerRestarting(ServiceUnavailable):
    """This worker is draining after SIGTERM: a new answer is refused, and one still running
    when the grace period ends is stopped. Asking again at once reaches another worker."""

    code = "server_restarting"
    message = "The server is restarting; please ask again."

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class AnswerOrphaned(ServiceUnavailable):
    """The process generating this answer died mid-answer; the orphan sweeper stored what
    had been recorded, and readers resuming it get this code. Asking again works."""

    code = "answer_orphaned"
    message = "The server writing this answer stopped before it was finished; please ask again."


class AnswerNotResumable(ServiceUnavailable):
    """The answer runs in another process and nothing shared records it (Redis is not
    configured or not reachable, or recording is off): it cannot be followed from here."""

    code = "answer_not_resumable"
    message = "This answer cannot be followed right now; it will be in the conversation soon."
