"""Orgs and their admin API keys (stored hashed, shown once)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets

from sqlalchemy import select, update

from sitechat.domain import (
    ApiKeyRecord,
    Org,
)
from sitechat.storage import records
from sitechat.storage.base import Repository, new_id, utcnow
from sitechat.storage.models import (
    ApiKeyRow,
    OrgRow,
)

API_KEY_PREFIX = "sck_"
API_KEY_VISIBLE_CHARS = 12  # "sck_" and 8 random characters: enough to tell keys apart
_MAX_API_KEY_LENGTH = 256


class TenantStore(Repository):
    # --- orgs ----------------------------------------------------------------------------

    async def create_org(self, name: str) -> Org:
        row = OrgRow(id=new_id(), name=name, created_at=utcnow())
        async with self._db.session(write=True) as session:
            session.add(row)
            await session.commit()
        return records.org(row)

    async def get_org(self, org_id: str) -> Org | None:
        async with self._db.session() as session:
            row = await session.get(OrgRow, org_id)
            return records.org(row) if row is not None else None

    async def rename_org(self, org_id: str, name: str) -> Org | None:
        async with self._db.session(write=True) as session:
            row = await session.get(OrgRow, org_id)
            if row is None:
                return None
            row.name = name
            await session.commit()
            return records.org(row)

    # --- api keys ------------------------------------------------------------------------

    async def create_api_key(self, org_id: str, name: str = "default") -> tuple[ApiKeyRecord, str]:
        """A new key for ``org_id``: its record and the plaintext, which is never stored."""
        plaintext = API_KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id=new_id(),
            org_id=org_id,
            prefix=plaintext[:API_KEY_VISIBLE_CHARS],
            key_hash=_key_hash(plaintext),
            name=name,
            created_at=utcnow(),
            last_used_at=None,
            revoked_at=None,
        )
        async with self._db.session(write=True) as session:
            session.add(row)
            await session.commit()
        return records.api_key(row), plaintext

    async def authenticate_api_key(self, plaintext: str) -> ApiKeyRecord | None:
        """The live key ``plaintext`` is, or None; records when it was last used.

        Candidates are found by their visible prefix and then compared by hash in constant
        time, so response timing says nothing about how much of a guess was right.
        """
        if not plaintext.startswith(API_KEY_PREFIX) or not (
            API_KEY_VISIBLE_CHARS < len(plaintext) <= _MAX_API_KEY_LENGTH
        ):
            return None
        digest = _key_hash(plaintext)
        async with self._db.session() as session:
            candidates = await session.scalars(
                select(ApiKeyRow).where(
                    ApiKeyRow.prefix == plaintext[:API_KEY_VISIBLE_CHARS],
                    ApiKeyRow.revoked_at.is_(None),
                )
            )
            match = None
            for row in candidates:
                if hmac.compare_digest(row.key_hash, digest):
                    match = records.api_key(row)
        if match is None:
            return None
        now = utcnow()
        async with self._db.session(write=True) as session:
            await session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == match.id)
                .values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return dataclasses.replace(match, last_used_at=now)

    async def list_api_keys(self, org_id: str) -> list[ApiKeyRecord]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(ApiKeyRow)
                .where(ApiKeyRow.org_id == org_id)
                .order_by(ApiKeyRow.created_at, ApiKeyRow.id)
            )
            return [records.api_key(row) for row in rows]

    async def revoke_api_key(self, org_id: str, key_id: str) -> bool:
        """True if ``org_id`` has that key (revoking it again changes nothing)."""
        async with self._db.session(write=True) as session:
            row = await session.scalar(
                select(ApiKeyRow).where(ApiKeyRow.id == key_id, ApiKeyRow.org_id == org_id)
            )
            if row is None:
                return False
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                await session.commit()
            return True


def _key_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()
