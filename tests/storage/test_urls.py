"""Database URL translation: Supabase (and other libpq) strings work as pasted."""

from __future__ import annotations

import inspect
import logging
import ssl
from pathlib import Path

import asyncpg
import pytest

from sitechat.config import Settings
from sitechat.storage import Database
from sitechat.storage.urls import (
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DatabaseTarget,
    SslSettings,
    build_ssl_context,
    parse_database_url,
)

REF = "abcdefghijklmnopqrst"
SUPABASE_DIRECT = f"postgresql://postgres:s3cret-pw@db.{REF}.supabase.co:5432/postgres"
SUPABASE_SESSION_POOLER = (
    f"postgres://postgres.{REF}:s3cret-pw@aws-0-eu-central-1.pooler.supabase.com:5432/postgres"
)
SUPABASE_TRANSACTION_POOLER = (
    f"postgres://postgres.{REF}:s3cret-pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres"
)
# What Supabase's Vercel integration puts in POSTGRES_PRISMA_URL.
SUPABASE_PRISMA = (
    f"postgres://postgres.{REF}:s3cret-pw@aws-0-us-east-1.pooler.supabase.com:6543/postgres"
    "?sslmode=require&supa=base-pooler.x&pgbouncer=true&connect_timeout=15"
)

# The keyword arguments asyncpg.connect takes, plus the two SQLAlchemy's adapter takes.
ACCEPTED_CONNECT_ARGS = set(inspect.signature(asyncpg.connect).parameters) | {
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
}


def assert_driver_accepts(target: DatabaseTarget) -> None:
    assert set(target.connect_args) <= ACCEPTED_CONNECT_ARGS
    assert dict(target.url.query) == {}


def assert_pooler_mode(target: DatabaseTarget) -> None:
    assert target.transaction_pooler
    assert target.connect_args["statement_cache_size"] == 0
    assert target.connect_args["prepared_statement_cache_size"] == 0
    name_of = target.connect_args["prepared_statement_name_func"]
    names = {name_of() for _ in range(100)}
    assert len(names) == 100


def test_supabase_direct_connection_is_a_plain_asyncpg_url() -> None:
    target = parse_database_url(SUPABASE_DIRECT)
    assert target.backend == "postgresql"
    assert target.url.drivername == "postgresql+asyncpg"
    assert (target.url.host, target.url.port, target.url.database) == (
        f"db.{REF}.supabase.co",
        5432,
        "postgres",
    )
    assert (target.url.username, target.url.password) == ("postgres", "s3cret-pw")
    assert not target.transaction_pooler
    assert target.connect_args == {"timeout": DEFAULT_CONNECT_TIMEOUT_SECONDS}
    assert_driver_accepts(target)


def test_supabase_session_pooler_keeps_prepared_statements() -> None:
    target = parse_database_url(SUPABASE_SESSION_POOLER)
    assert target.url.drivername == "postgresql+asyncpg"
    assert target.url.username == f"postgres.{REF}"
    assert target.url.host == "aws-0-eu-central-1.pooler.supabase.com"
    assert not target.transaction_pooler
    assert "statement_cache_size" not in target.connect_args
    assert_driver_accepts(target)


def test_supabase_transaction_pooler_turns_statement_caches_off() -> None:
    target = parse_database_url(SUPABASE_TRANSACTION_POOLER)
    assert target.url.drivername == "postgresql+asyncpg"
    assert target.url.port == 6543
    assert_pooler_mode(target)
    assert_driver_accepts(target)


def test_supabase_prisma_string_with_hints_for_other_clients() -> None:
    target = parse_database_url(SUPABASE_PRISMA)
    assert_pooler_mode(target)
    assert target.connect_args["ssl"] == "require"
    assert target.connect_args["timeout"] == 15.0
    assert "supa" in target.ignored_params
    assert_driver_accepts(target)


@pytest.mark.parametrize(
    "query",
    ["pgbouncer=true", "pgbouncer=1", "prepare_threshold=0", "statement_cache_size=0"],
)
def test_pooler_hints_turn_pooler_mode_on_at_any_port(query: str) -> None:
    target = parse_database_url(f"postgresql://u:p@pooler.example:5432/db?{query}")
    assert_pooler_mode(target)
    assert_driver_accepts(target)


def test_pgbouncer_false_is_not_pooler_mode() -> None:
    assert not parse_database_url("postgresql://u@h:5432/db?pgbouncer=false").transaction_pooler


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sslmode=disable", "disable"),
        ("sslmode=allow", "allow"),
        ("sslmode=prefer", "prefer"),
        ("sslmode=require", "require"),
        ("sslmode=verify-ca", "verify-ca"),
        ("sslmode=VERIFY-FULL", "verify-full"),
        ("ssl=true", "require"),
        ("ssl=false", "disable"),
        ("requiressl=1", "require"),
    ],
)
def test_libpq_sslmode_becomes_asyncpg_ssl(query: str, expected: str) -> None:
    target = parse_database_url(f"{SUPABASE_DIRECT}?{query}")
    assert target.connect_args["ssl"] == expected
    assert target.ssl is None
    assert_driver_accepts(target)


def test_no_sslmode_leaves_asyncpg_default_which_is_prefer() -> None:
    assert "ssl" not in parse_database_url(SUPABASE_DIRECT).connect_args


def test_certificate_files_make_sitechat_build_the_ssl_context() -> None:
    target = parse_database_url(
        f"{SUPABASE_DIRECT}?sslmode=verify-full&sslrootcert=/etc/certs/supabase.crt"
    )
    assert target.ssl == SslSettings(mode="verify-full", rootcert="/etc/certs/supabase.crt")
    assert "ssl" not in target.connect_args  # added as an SSLContext at start()
    assert_driver_accepts(target)


def test_ssl_context_verifies_like_libpq() -> None:
    cafile = ssl.get_default_verify_paths().cafile
    if cafile is None or not Path(cafile).exists():
        pytest.skip("no CA bundle on this machine")
    full = build_ssl_context(SslSettings(mode="verify-full", rootcert=cafile))
    assert full.verify_mode == ssl.CERT_REQUIRED and full.check_hostname
    ca_only = build_ssl_context(SslSettings(mode="verify-ca", rootcert=cafile))
    assert ca_only.verify_mode == ssl.CERT_REQUIRED and not ca_only.check_hostname
    system = build_ssl_context(SslSettings(mode="verify-full", rootcert="system"))
    assert system.verify_mode == ssl.CERT_REQUIRED and system.get_ca_certs() != []
    with pytest.raises(ValueError, match="sslrootcert"):
        build_ssl_context(SslSettings(mode="verify-full", cert="/client.crt"))


def test_libpq_options_become_startup_settings() -> None:
    target = parse_database_url(
        f"{SUPABASE_DIRECT}?application_name=sitechat&options=-c%20statement_timeout%3D5000"
        "&connect_timeout=3&target_session_attrs=read-write&keepalives=1&channel_binding=require"
    )
    assert target.connect_args["server_settings"] == {
        "application_name": "sitechat",
        "options": "-c statement_timeout=5000",
    }
    assert target.connect_args["timeout"] == 3.0
    assert target.connect_args["target_session_attrs"] == "read-write"
    assert set(target.ignored_params) == {"keepalives", "channel_binding"}
    assert_driver_accepts(target)


def test_unknown_parameters_are_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sitechat.storage.urls"):
        target = parse_database_url(f"{SUPABASE_DIRECT}?frobnicate=yes")
    assert target.ignored_params == ("frobnicate",)
    assert "frobnicate" in caplog.text and "s3cret-pw" not in caplog.text
    assert_driver_accepts(target)


@pytest.mark.parametrize("password", ["p@ss", "p/ss", "p?ss", "p#ss", "p@ss/w?rd#1:x"])
def test_passwords_pasted_without_percent_encoding_still_parse(password: str) -> None:
    target = parse_database_url(
        f"postgresql://postgres.{REF}:{password}@aws-0-eu-central-1.pooler.supabase.com:6543"
        "/postgres?sslmode=require"
    )
    assert target.url.password == password
    assert target.url.username == f"postgres.{REF}"
    assert target.url.host == "aws-0-eu-central-1.pooler.supabase.com"
    assert target.connect_args["ssl"] == "require"


def test_percent_encoded_passwords_are_decoded_once() -> None:
    target = parse_database_url("postgresql://u:p%40ss%2Fw@h:5432/db")
    assert target.url.password == "p@ss/w"


def test_an_at_sign_in_a_query_value_is_not_taken_for_the_host() -> None:
    target = parse_database_url("postgresql://u:pw@h:5432/db?application_name=me@example.com")
    assert (target.url.host, target.url.password) == ("h", "pw")
    assert target.connect_args["server_settings"] == {"application_name": "me@example.com"}


def test_asyncpg_urls_with_sqlalchemy_parameters_are_understood() -> None:
    target = parse_database_url(
        "postgresql+asyncpg://u:p@h/db?prepared_statement_cache_size=0&statement_cache_size=0"
    )
    assert_pooler_mode(target)
    assert_driver_accepts(target)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root:s3cret-pw@h/db",
        "",
        "   ",
        f"{SUPABASE_DIRECT}?sslmode=maybe",
        f"{SUPABASE_DIRECT}?connect_timeout=soon",
        "postgresql://root:s3cret-pw@h:notaport/db",
    ],
)
def test_unusable_urls_are_refused_without_repeating_the_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_database_url(url)
    assert "s3cret-pw" not in str(caught.value)


def test_safe_url_hides_the_password() -> None:
    safe = parse_database_url(SUPABASE_TRANSACTION_POOLER).safe_url
    assert "s3cret-pw" not in safe and f"postgres.{REF}" in safe


def test_sqlite_urls_use_aiosqlite_with_a_busy_timeout() -> None:
    target = parse_database_url("sqlite:///data/sitechat.db")
    assert target.backend == "sqlite"
    assert target.url.drivername == "sqlite+aiosqlite"
    assert target.sqlite_path == Path("data/sitechat.db")
    assert target.connect_args["timeout"] > 0
    assert parse_database_url("sqlite+aiosqlite:///:memory:").sqlite_path is None
    assert parse_database_url("sqlite+aiosqlite://").sqlite_path is None


def test_default_settings_give_an_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    database = Database.from_settings(settings)
    assert database.backend == "sqlite"
    assert database.target.sqlite_path == tmp_path / "data" / "sitechat.db"


def test_constructing_a_database_does_not_connect() -> None:
    # An unreachable host: construction must not notice.
    database = Database("postgresql://u:p@127.0.0.1:1/db")
    with pytest.raises(RuntimeError, match="start"):
        _ = database.engine
