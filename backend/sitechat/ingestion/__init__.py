"""Ingestion: documents in (files, text, URLs, whole sites), chunks indexed for a chatbot.

``core.Ingestor`` indexes one document; ``jobs.IngestionJobs`` runs ingestion as background
jobs with status and progress; ``fetch``, ``robots``, ``netguard`` and ``crawl`` bring pages
in from the web safely. See ``docs/ingestion.md``.
"""

from __future__ import annotations

from sitechat.ingestion.core import Ingestor, IngestResult, chunk_id, content_hash, source_key
from sitechat.ingestion.crawl import CrawlOptions
from sitechat.ingestion.fetch import Fetcher, FetchPolicy
from sitechat.ingestion.jobs import IngestionJobs, Upload
from sitechat.ingestion.netguard import AddressPolicy, parse_networks

__all__ = [
    "AddressPolicy",
    "CrawlOptions",
    "FetchPolicy",
    "Fetcher",
    "IngestResult",
    "IngestionJobs",
    "Ingestor",
    "Upload",
    "chunk_id",
    "content_hash",
    "parse_networks",
    "source_key",
]
