"""What the admin resources share: the errors every route can answer, how a body shows its
examples (``strict`` for what a route takes, ``shown`` for what it returns), and the bounds
of the numbers and dates the admin API takes.

Names are trimmed and must keep a character. Every day a query names is within 2000-01-01
to 2100-12-31 (before sitechat, and far enough ahead; outside it, date arithmetic and the
databases overflow). Offsets and token
budgets are 0 to 2**53 - 1: inside PostgreSQL's BIGINT, and the largest integer every JSON
reader takes exactly (a bound of 2**63 - 1 reads as 2**63 in a float, so a client checking
the schema in floats would allow one past it). Out of bounds is a 422 naming the field.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from sitechat.api.schemas import ErrorBody
from sitechat.errors import InvalidInput

EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2100, 12, 31)
JSON_INT_MAX = 2**53 - 1

# JSON Schema has no minimum for a date: the pattern says the years to clients and fuzzers.
_DAY_PATTERN = r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
Day = Annotated[
    date, Field(ge=EARLIEST_DAY, le=LATEST_DAY, json_schema_extra={"pattern": _DAY_PATTERN})
]
"""A UTC day a query names, 2000-01-01 to 2100-12-31."""
DAY_RANGE = f"{EARLIEST_DAY.isoformat()} to {LATEST_DAY.isoformat()}"
MAX_DAYS = 366
DEFAULT_DAYS = 30


def report_range(first: date | None, last: date | None) -> tuple[date, date]:
    """The days a report covers (analytics, unanswered questions): inclusive, the last
    ``DEFAULT_DAYS`` by default, at most ``MAX_DAYS``."""
    last = last or datetime.now(UTC).date()
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidInput("'from' must not be after 'to'.")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"The range is at most {MAX_DAYS} days.")
    return first, last


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC of the days ``first`` to ``last``, inclusive."""
    start = datetime.combine(first, time.min, tzinfo=UTC)
    return start, datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)


Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"\S")
]
"""The name of an org, a key or a chatbot: trimmed, then 1 to 200 characters (``pattern``
says "not only spaces" to schema readers; after trimming it always holds)."""


def _whole_number(value: object) -> object:
    # JSON Schema's integer is any number without a fraction (1000.0 is one); ``true`` and
    # "1000" are not numbers. A whole float becomes an int, so ``1e30`` fails the bound.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise PydanticCustomError("int_from_float", "Input should be a whole number")
        return int(value)
    return value


# The validator last, so it runs first (and the bounds stay in the JSON schema).
TokenBudget = Annotated[int, Field(ge=0, le=JSON_INT_MAX), BeforeValidator(_whole_number)]
"""Tokens a month, a whole number; stored in a BIGINT column (orgs) or the settings JSON
(chatbots)."""

# Every admin route can answer these; routes add their own (404, 409, ...).
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, wrong or revoked API key"},
    403: {"model": ErrorBody, "description": "The bootstrap key, which only creates orgs"},
    422: {"model": ErrorBody, "description": "A field is missing or invalid"},
    503: {"model": ErrorBody, "description": "A write while the shared cache is unreachable"},
}

# Routes that take a JSON body can also answer these (``api/errors.py``: ``invalid_json``
# for a body that is not JSON or not an object; the body-size middleware's 413).
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not JSON, or not a JSON object"},
    413: {"model": ErrorBody, "description": "The request body is too large"},
}


def strict(*examples: dict[str, Any]) -> ConfigDict:
    """A request body's config: unknown fields are refused, ``examples`` are shown."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


def shown(*examples: dict[str, Any]) -> ConfigDict:
    """A response body's config: ``examples`` are shown."""
    return ConfigDict(json_schema_extra={"examples": list(examples)})
