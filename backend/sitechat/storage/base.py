"""What every repository shares: its database, new ids and timestamps, argument checks.

Each repository method opens one short session and closes it before returning, so nothing
holds a connection while a caller streams an answer. Failures come out as ``StorageError``
(the database is unreachable or broken), ``Conflict`` (a unique or foreign-key constraint),
``NotFound`` (a write to something that does not exist) or ``InvalidInput`` (a bad argument).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import CursorResult

from sitechat.errors import InvalidInput
from sitechat.storage.database import Database


class Repository:
    def __init__(self, database: Database) -> None:
        self._db = database


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid4())


def rowcount(result: Any) -> int:
    if isinstance(result, CursorResult):
        return int(result.rowcount)
    raise TypeError("expected a CursorResult from a DML statement")


def check_fields(fields: Iterable[str], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise InvalidInput(f"Unknown {what} field: {', '.join(unknown)}.")


def check_choice(value: object, allowed: frozenset[str], what: str) -> None:
    if value not in allowed:
        raise InvalidInput(f"Unknown {what}; use one of: {', '.join(sorted(allowed))}.")
