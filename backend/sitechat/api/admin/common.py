"""What the admin resources share: the errors every route can answer, and how a body shows
its examples (``strict`` for what a route takes, ``shown`` for what it returns)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from sitechat.api.schemas import ErrorBody

# Every admin route can answer these; routes add their own (404, 409, ...).
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, wrong or revoked API key"},
    422: {"model": ErrorBody, "description": "A field is missing or invalid"},
    503: {"model": ErrorBody, "description": "A write while the shared cache is unreachable"},
}


def strict(*examples: dict[str, Any]) -> ConfigDict:
    """A request body's config: unknown fields are refused, ``examples`` are shown."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


def shown(*examples: dict[str, Any]) -> ConfigDict:
    """A response body's config: ``examples`` are shown."""
    return ConfigDict(json_schema_extra={"examples": list(examples)})
