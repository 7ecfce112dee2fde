"""``Store``: every read and write sitechat makes, returning plain ``sitechat.domain`` records.

It is the four repositories in one object, one a kind of aggregate, for the callers that
use several (the CLI, the admin API). A part that needs one kind takes just that one:

- ``TenantStore`` (``tenants``): orgs and their admin API keys;
- ``ChatbotStore`` (``chatbots``): chatbot configs and their allowed origins;
- ``MessageStore`` (``messages``): conversations and messages, what a chat turn writes;
- ``DocumentStore`` (``documents``): documents and their ingestion status.
"""

from __future__ import annotations

from sitechat.storage.chatbots import ChatbotStore
from sitechat.storage.documents import DocumentStore
from sitechat.storage.messages import MessageStore
from sitechat.storage.tenants import TenantStore


class Store(TenantStore, ChatbotStore, MessageStore, DocumentStore):
    async def ping(self) -> bool:
        return await self._db.ping()
