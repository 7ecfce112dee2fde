"""The one vocabulary of errors in sitechat.

Vendor exceptions (SQLAlchemy, openai, qdrant, redis, llama.cpp) are translated into these
where they enter, with ``raise ... from exc``; the rest of the code sees only this tree::

    SitechatError                 code            HTTP
    ├── InvalidInput              invalid_input    422
    ├── NotFound                  not_found        404
    │   ├── ChatbotNotFound       chatbot_not_found
    │   └── DocumentNotFound      document_not_found
    ├── Unauthorized              unauthorized     401
    ├── Forbidden                 forbidden        403
    ├── RateLimited               rate_limited     429   (carries retry_after seconds)
    ├── Conflict                  conflict         409
    ├── ModelError                model_error      502
    │   ├── ModelUnavailable      model_unavailable       (failed before its first token)
    │   └── ModelInterrupted      model_interrupted       (failed mid-stream)
    ├── StorageError              storage_error    503
    ├── VectorStoreError          vector_store_error 503
    ├── IngestionError            ingestion_error  422
    └── ServiceUnavailable        unavailable      503

``message`` is always safe to show to a public client: it never contains internal exception
text. Details belong in ``__cause__`` and the log.
"""

from __future__ import annotations


class SitechatError(Exception):
    code: str = "internal_error"
    status: int = 500
    message: str = "Something went wrong."

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


class InvalidInput(SitechatError):
    code = "invalid_input"
    status = 422
    message = "The request is not valid."


class NotFound(SitechatError):
    code = "not_found"
    status = 404
    message = "Not found."


class ChatbotNotFound(NotFound):
    code = "chatbot_not_found"
    message = "No chatbot with that id."


class DocumentNotFound(NotFound):
    code = "document_not_found"
    message = "No document with that id."


class Unauthorized(SitechatError):
    code = "unauthorized"
    status = 401
    message = "A valid API key is required."


class Forbidden(SitechatError):
    code = "forbidden"
    status = 403
    message = "Not allowed."


class RateLimited(SitechatError):
    code = "rate_limited"
    status = 429
    message = "Too many requests; try again later."

    def __init__(self, message: str | None = None, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Conflict(SitechatError):
    code = "conflict"
    status = 409
    message = "That conflicts with what is stored."


class ModelError(SitechatError):
    code = "model_error"
    status = 502
    message = "The language model failed to answer."


class ModelUnavailable(ModelError):
    code = "model_unavailable"
    message = "The language model is not available right now."


class ModelInterrupted(ModelError):
    code = "model_interrupted"
    message = "The answer was interrupted."


class StorageError(SitechatError):
    code = "storage_error"
    status = 503
    message = "Storage is not available right now."


class VectorStoreError(SitechatError):
    code = "vector_store_error"
    status = 503
    message = "Search is not available right now."


class IngestionError(SitechatError):
    code = "ingestion_error"
    status = 422
    message = "The document could not be ingested."


class ServiceUnavailable(SitechatError):
    code = "unavailable"
    status = 503
    message = "The service is not available right now."
