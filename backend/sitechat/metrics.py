"""Prometheus metrics: what an operator watches, recorded where it happens.

The metrics are module-level objects of ``prometheus_client`` (its own idiom), recorded by
the chat pipeline, the gate and the ingestion job runner; ``GET /metrics`` (``api.health``)
renders them. Nothing here talks HTTP or opens a port.

With several worker processes (``sitechat serve --workers N``) each process writes its
values to files under ``PROMETHEUS_MULTIPROC_DIR`` (the CLI sets it before the workers
start) and a scrape of any one process sums them all: ``render`` uses prometheus-client's
multiprocess collector then. Gauges say how they combine across processes
(``multiprocess_mode``): active streams add up, a queue depth or a budget is the latest value.

Names (all prefixed ``sitechat_``):

- ``time_to_first_token_seconds``: request arrival to the first token, by provider
- ``answer_duration_seconds``: request arrival to the end of the answer, by provider
- ``tokens_per_second``: completion tokens per second of streaming, by provider
- ``model_first_token_seconds``: the model call alone, to its first token, by provider
- ``retrieval_seconds``: one search of the vector store
- ``answers_total``: answers by ``outcome`` (complete, fallback, interrupted, error) and ``code``
- ``model_fallbacks_total``: answers handed to the next model of a fallback chain, by
  ``from_provider``, ``to_provider`` and ``reason`` (``ModelError.reason``)
- ``active_streams``: answers streaming now
- ``gate_refusals_total``: public requests refused, by ``reason``
- ``ingestion_queue_depth``: ingestion jobs waiting
- ``ingestion_job_seconds``: ingestion jobs by ``kind`` and ``outcome``
- ``budget_used_tokens``: tokens used this month, by ``org`` (orgs with a budget)
- ``db_group_commit_ops``: writes committed together in one transaction (group commit)
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds: from a fast cache hit to a slow model on a loaded machine.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
DURATION_BUCKETS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0, 300.0)
RATE_BUCKETS = (1, 5, 10, 20, 40, 60, 100, 150, 250, 500)
SEARCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
JOB_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0, 1800.0)

TIME_TO_FIRST_TOKEN = Histogram(
    "sitechat_time_to_first_token_seconds",
    "From the request's arrival to the first token of the answer.",
    ["provider"],
    buckets=LATENCY_BUCKETS,
)
ANSWER_DURATION = Histogram(
    "sitechat_answer_duration_seconds",
    "From the request's arrival to the end of the answer.",
    ["provider"],
    buckets=DURATION_BUCKETS,
)
TOKENS_PER_SECOND = Histogram(
    "sitechat_tokens_per_second",
    "Completion tokens per second, from the first token to the last.",
    ["provider"],
    buckets=RATE_BUCKETS,
)
MODEL_FIRST_TOKEN = Histogram(
    "sitechat_model_first_token_seconds",
    "From the model call to its first token (the model's own latency).",
    ["provider"],
    buckets=LATENCY_BUCKETS,
)
GROUP_COMMIT_SIZE = Histogram(
    "sitechat_db_group_commit_ops",
    "Writes (chat turns opened or ended) committed together in one transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
RETRIEVAL = Histogram(
    "sitechat_retrieval_seconds",
    "One search of a chatbot's documents.",
    buckets=SEARCH_BUCKETS,
)
ANSWER_CHECKS = Histogram(
    "sitechat_answer_check_seconds",
    "Questions the words found unanswerable, put to a model (the chatbot's own or the answer "
    "judge): how long it took, by the model asked and its verdict (yes, no, none: failed, "
    "timed out or neither). Cached verdicts are not counted.",
    ["model", "verdict"],
    buckets=LATENCY_BUCKETS,
)
ANSWERS = Counter(
    "sitechat_answers",
    "Answers by how they ended: complete, fallback (no context), stopped, interrupted, error.",
    ["outcome", "code"],
)
MODEL_FALLBACKS = Counter(
    "sitechat_model_fallbacks",
    "Answers a model failed before its first token, handed to the next model of the chain.",
    ["from_provider", "to_provider", "reason"],
)
ACTIVE_STREAMS = Gauge(
    "sitechat_active_streams",
    "Answers streaming now.",
    multiprocess_mode="livesum",
)
ANSWER_RESUMES = Counter(
    "sitechat_answer_resumes",
    "Resumed answer streams, by where they were served from: local (this process's run), "
    "recorded (the Redis Stream), stored (the database; frames expired).",
    ["source"],
)
ORPHANS_SWEPT = Counter(
    "sitechat_answers_orphaned",
    "Answers whose process died mid-answer, ended by the orphan sweeper.",
)
GATE_REFUSALS = Counter(
    "sitechat_gate_refusals",
    "Public requests the gate refused, by reason.",
    ["reason"],
)
INGESTION_QUEUE_DEPTH = Gauge(
    "sitechat_ingestion_queue_depth",
    "Ingestion jobs queued and not yet started.",
    multiprocess_mode="mostrecent",
)
INGESTION_JOB = Histogram(
    "sitechat_ingestion_job_seconds",
    "Ingestion jobs by kind (upload, url, crawl) and outcome (done, failed).",
    ["kind", "outcome"],
    buckets=JOB_BUCKETS,
)
BUDGET_USED = Gauge(
    "sitechat_budget_used_tokens",
    "Tokens an org has used this calendar month (UTC), as last seen by the gate.",
    ["org"],
    multiprocess_mode="mostrecent",
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_ENV) or None


def render() -> tuple[bytes, str]:
    """The exposition text of every metric, and its content type."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def process_exited(pid: int) -> None:
    """Tell the multiprocess store a worker is gone, so its live gauges stop counting."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
