"""Who is calling the admin API, and what they may touch.

Every ``/api/admin/...`` route takes one of these dependencies:

- ``AdminOrg``: ``Authorization: Bearer <key>`` resolved to the org that owns the key. A
  missing, malformed, unknown or revoked key is a 401; the key's last-used time is recorded.
- ``OwnedChatbot`` (alias ``AdminChatbot``): the ``chatbot_id`` path parameter resolved to a
  chatbot the caller's org owns. Another org's chatbot and an unknown id are the same 404
  (``chatbot_not_found``), so a key never learns that someone else's resource exists.
- ``BootstrapAdmin``: the bootstrap key from settings (``SITECHAT_BOOTSTRAP_ADMIN_KEY``). It
  may create orgs and nothing else; it is not an org key.

Writes (any method but GET/HEAD/OPTIONS) also need the cross-process coordination to be up:
with Redis configured but unreachable, a config change could not reach the other API
processes' caches, so it is refused with 503 rather than half-applied.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sitechat.api.deps import ServicesDep
from sitechat.domain import ChatbotConfig, Org
from sitechat.errors import ChatbotNotFound, Forbidden, InvalidApiKey

# auto_error=False: we answer 401 ourselves, in the one JSON error shape.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminKey",
    description="An org's admin API key (`sck_...`), or the bootstrap key for `POST /orgs`.",
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _presented_key(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials.strip():
        raise InvalidApiKey("Send an admin API key as 'Authorization: Bearer <key>'.")
    return credentials.credentials.strip()


def _is_bootstrap_key(services: ServicesDep, key: str) -> bool:
    configured = services.settings.bootstrap_admin_key
    if configured is None:
        return False
    return hmac.compare_digest(configured.get_secret_value().encode(), key.encode())


async def _require_writable(request: Request, services: ServicesDep) -> None:
    if request.method.upper() not in _READ_METHODS:
        await services.require_writable()


async def get_admin_org(request: Request, services: ServicesDep, credentials: BearerDep) -> Org:
    key = _presented_key(credentials)
    record = await services.store.authenticate_api_key(key)
    if record is None:
        if _is_bootstrap_key(services, key):
            raise Forbidden("The bootstrap key may only create orgs; use an org's API key.")
        raise InvalidApiKey("The API key is not valid or has been revoked.")
    org = await services.store.get_org(record.org_id)
    if org is None:  # deleting an org deletes its keys; this is a race at most
        raise InvalidApiKey("The API key is not valid or has been revoked.")
    await _require_writable(request, services)
    return org


AdminOrg = Annotated[Org, Depends(get_admin_org)]


async def get_owned_chatbot(
    org: AdminOrg,
    services: ServicesDep,
    chatbot_id: Annotated[str, Path(description="The chatbot's id.", examples=["shop"])],
) -> ChatbotConfig:
    # Read from the database, not the cache: an admin must see their own write at once.
    config = await services.store.get_chatbot(chatbot_id)
    if config is None or config.org_id != org.id:
        raise ChatbotNotFound()
    return config


OwnedChatbot = Annotated[ChatbotConfig, Depends(get_owned_chatbot)]
AdminChatbot = OwnedChatbot  # the name the documents router imports


async def require_bootstrap(
    request: Request, services: ServicesDep, credentials: BearerDep
) -> None:
    key = _presented_key(credentials)
    if not _is_bootstrap_key(services, key):
        raise InvalidApiKey("Creating an org needs the bootstrap admin key.")
    await _require_writable(request, services)


BootstrapAdmin = Annotated[None, Depends(require_bootstrap)]
