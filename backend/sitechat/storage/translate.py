"""Driver and SQLAlchemy errors → ``sitechat.errors``, at the edge of storage.

Unique and foreign-key violations become ``Conflict``; text PostgreSQL cannot store (a NUL
character, which SQLite takes) becomes ``InvalidInput``, since it is the request's fault, not
an outage; everything else that goes wrong talking to the database (refused connections,
timeouts, a missing database, a dead pool) becomes ``StorageError``. Messages are safe for
public clients; the original exception stays on ``__cause__`` for the log.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, TypeAlias

import asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from sitechat.errors import Conflict, InvalidInput, SitechatError, StorageError

logger = logging.getLogger(__name__)

UNREACHABLE_MESSAGE = "The database cannot be reached right now."
IntegrityKind = Literal["unique", "foreign_key", "other"]
# A constraint violation through SQLAlchemy, or from asyncpg used directly.
BrokenConstraint: TypeAlias = IntegrityError | asyncpg.IntegrityConstraintViolationError

_UNIQUE_SQLSTATE = "23505"
_FOREIGN_KEY_SQLSTATE = "23503"
# character_not_in_repertoire (NUL in text), untranslatable_character (\u0000 in JSON).
_UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})
UNSTORABLE_TEXT_MESSAGE = "Text must not contain the NUL character (\\u0000)."


def integrity_kind(exc: BrokenConstraint) -> IntegrityKind:
    """Which constraint ``exc`` broke, for PostgreSQL (SQLSTATE) and SQLite (error name);
    asyncpg's own error when a statement went to the driver directly."""
    state = _sqlstate(exc)
    if state == _UNIQUE_SQLSTATE:
        return "unique"
    if state == _FOREIGN_KEY_SQLSTATE:
        return "foreign_key"
    orig = exc.orig if isinstance(exc, IntegrityError) else exc
    name = getattr(orig, "sqlite_errorname", "") or ""
    text = str(orig)
    if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY") or (
        "UNIQUE constraint failed" in text
    ):
        return "unique"
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY" or "FOREIGN KEY constraint failed" in text:
        return "foreign_key"
    return "other"


def conflict_for(exc: BrokenConstraint) -> Conflict:
    if integrity_kind(exc) == "foreign_key":
        return Conflict("That refers to something that does not exist.")
    return Conflict()


def storage_error_for(exc: BaseException) -> StorageError:
    if _is_unreachable(exc):
        return StorageError(UNREACHABLE_MESSAGE)
    return StorageError()


@contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise database failures inside the block as ``Conflict``, ``InvalidInput`` (text
    PostgreSQL cannot store) or ``StorageError``."""
    try:
        yield
    except SitechatError:
        raise
    except (IntegrityError, asyncpg.IntegrityConstraintViolationError) as exc:
        raise conflict_for(exc) from exc
    except (DBAPIError, asyncpg.PostgresError) as exc:
        if _sqlstate(exc) in _UNSTORABLE_TEXT_SQLSTATES:
            raise InvalidInput(UNSTORABLE_TEXT_MESSAGE) from exc
        logger.warning("database operation failed: %s", type(exc).__name__)
        raise storage_error_for(exc) from exc
    except (SQLAlchemyError, OSError, TimeoutError, sqlite3.Error) as exc:
        logger.warning("database operation failed: %s", type(exc).__name__)
        raise storage_error_for(exc) from exc
    except (asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
        # The driver's own state, e.g. a connection the server ended while it sat in the pool.
        logger.warning("database driver failed: %s", type(exc).__name__)
        raise storage_error_for(exc) from exc


def _sqlstate(exc: BaseException) -> str | None:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state if isinstance(state, str) else None


def _is_unreachable(exc: BaseException) -> bool:
    """True for failures to connect at all, as opposed to a failing statement."""
    driver: object = exc
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        driver = getattr(exc.orig, "driver_exception", None) or exc.orig
    if isinstance(
        driver,
        OSError
        | TimeoutError
        | asyncpg.CannotConnectNowError
        | asyncpg.ConnectionDoesNotExistError
        | asyncpg.InvalidCatalogNameError
        | asyncpg.InvalidAuthorizationSpecificationError
        | asyncpg.TooManyConnectionsError,
    ):
        return True
    if isinstance(driver, sqlite3.OperationalError) and (
        "unable to open" in str(driver) or "locked" in str(driver)
    ):
        return True
    cause = exc.__cause__
    return cause is not None and cause is not exc and _is_unreachable(cause)
