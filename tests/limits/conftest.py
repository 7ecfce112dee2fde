from __future__ import annotations

from tests.admin.support import redis_prefix

__all__ = ["redis_prefix"]
