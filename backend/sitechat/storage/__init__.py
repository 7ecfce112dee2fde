"""Storage: SQLAlchemy 2 (async) on SQLite or PostgreSQL, schema by Alembic.

Build a ``Database`` from settings in the app's lifespan, ``await db.start(migrate=...)``,
wrap it in a ``Store`` and use only the ``Store``: it returns ``sitechat.domain`` records
and raises ``sitechat.errors`` classes. Nothing here connects at import time.
"""

from __future__ import annotations

from sitechat.storage.database import Database
from sitechat.storage.store import Store

__all__ = ["Database", "Store"]
