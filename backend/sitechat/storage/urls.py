"""Database URLs as operators paste them → what SQLAlchemy and the driver accept.

Operators copy connection strings from their provider (Supabase, Neon, RDS, a local Postgres)
and expect them to work unchanged. Those are libpq strings: ``postgres://`` or
``postgresql://``, with libpq query parameters (``sslmode``, ``connect_timeout``,
``options``…) and sometimes another client's hints (Prisma's ``pgbouncer=true``,
psycopg's ``prepare_threshold``, Vercel's ``supa=…``). SQLAlchemy hands every query
parameter to ``asyncpg.connect`` as a keyword argument, and asyncpg rejects the ones it does
not know, so they are translated here, once, into a clean URL plus ``connect_args``.

Transaction poolers (Supabase's Supavisor on port 6543, PgBouncer in transaction mode) hand
each transaction to whichever server connection is free, so a prepared statement made in one
transaction may not exist in the next. Behind one, both asyncpg's statement cache and
SQLAlchemy's are turned off and every statement gets a unique name.

Pure functions only: nothing here reads files or opens sockets, except
``build_ssl_context``, which reads certificate files and is meant to run in a worker thread.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote
from uuid import uuid4

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

logger = logging.getLogger(__name__)

Backend = Literal["sqlite", "postgresql"]

TRANSACTION_POOLER_PORT = 6543
DEFAULT_CONNECT_TIMEOUT_SECONDS = 10.0
# SQLite waits this long for another connection's write lock before "database is locked".
SQLITE_BUSY_TIMEOUT_SECONDS = 15.0

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_VERIFYING_MODES = ("require", "verify-ca", "verify-full")

_SSL_FILE_PARAMS = {
    "sslrootcert": "rootcert",
    "sslcert": "cert",
    "sslkey": "key",
    "sslpassword": "password",
    "sslcrl": "crl",
    "ssl_min_protocol_version": "min_protocol",
    "ssl_max_protocol_version": "max_protocol",
}
# libpq parameters and other clients' hints that have no asyncpg equivalent, or none that
# matters here. Dropped quietly (they are expected in pasted strings); anything else unknown
# is dropped with a warning naming it.
_IGNORED_PARAMS = frozenset(
    {
        "supa",  # Supabase/Vercel marker
        "connection_limit",  # Prisma
        "pool_timeout",  # Prisma
        "socket_timeout",  # Prisma
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "channel_binding",  # asyncpg negotiates SCRAM itself
        "gssencmode",
        "sslcompression",
        "sslsni",  # asyncpg always sends SNI when it uses TLS
        "client_encoding",  # asyncpg always speaks UTF-8
        "replication",
        "load_balance_hosts",
    }
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class SslSettings:
    """An ``sslmode`` with certificate files: sitechat builds the ``SSLContext`` itself."""

    mode: str
    rootcert: str | None = None
    cert: str | None = None
    key: str | None = None
    password: str | None = None
    crl: str | None = None
    min_protocol: str | None = None
    max_protocol: str | None = None


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """Everything needed to build the engine, derived from one URL."""

    url: URL
    backend: Backend
    connect_args: Mapping[str, Any]
    # Behind a transaction pooler: no prepared-statement caches, unique statement names.
    transaction_pooler: bool = False
    # Set when certificate files (or the system roots) must be loaded into an SSLContext.
    ssl: SslSettings | None = None
    # The SQLite file, when there is one (not for in-memory databases).
    sqlite_path: Path | None = None
    ignored_params: tuple[str, ...] = field(default=())

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden, fit for logs."""
        return self.url.render_as_string(hide_password=True)


def unique_statement_name() -> str:
    """A fresh prepared-statement name, so two clients never collide on a pooled server."""
    return f"__sitechat_{uuid4().hex}__"


def parse_database_url(raw: str) -> DatabaseTarget:
    """Translate ``raw`` into a ``DatabaseTarget``; ``ValueError`` if it cannot be used.

    Error messages never include the URL itself: it usually carries a password.
    """
    text = raw.strip()
    if not text:
        raise ValueError("The database URL is empty.")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        return _sqlite_target(_make_url(text))
    if base in ("postgres", "postgresql"):
        return _postgres_target(_make_url(_quote_userinfo(text)))
    shown = base or "(none)"
    raise ValueError(f"Unsupported database URL scheme {shown!r}: use sqlite:// or postgresql://.")


def build_ssl_context(settings: SslSettings) -> ssl.SSLContext:
    """An SSLContext that behaves as libpq does for ``settings`` (reads files: use a thread).

    ``sslrootcert=system`` (libpq 16) trusts the operating system's certificate store.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = settings.mode == "verify-full"
    if settings.rootcert == "system":
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        context.verify_mode = ssl.CERT_REQUIRED
    elif settings.rootcert:
        context.load_verify_locations(cafile=settings.rootcert)
        context.verify_mode = ssl.CERT_REQUIRED
    elif settings.mode in ("verify-ca", "verify-full"):
        # libpq refuses verification without a root certificate; so do we, rather than
        # silently trusting any server.
        raise ValueError(f"sslmode={settings.mode} needs sslrootcert (a file, or 'system').")
    else:
        context.verify_mode = ssl.CERT_NONE
    if settings.crl:
        context.load_verify_locations(cafile=settings.crl)
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    if settings.cert:
        password = settings.password
        context.load_cert_chain(
            settings.cert, keyfile=settings.key, password=(lambda: password or "")
        )
    context.minimum_version = _tls_version(settings.min_protocol or "TLSv1.2")
    if settings.max_protocol:
        context.maximum_version = _tls_version(settings.max_protocol)
    return context


# --- SQLite ------------------------------------------------------------------------------


def _sqlite_target(url: URL) -> DatabaseTarget:
    url = url.set(drivername="sqlite+aiosqlite")
    database = url.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in database
    path = None if in_memory or database.startswith("file:") else Path(database)
    connect_args: dict[str, Any] = {}
    if "timeout" not in url.query:
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_SECONDS
    return DatabaseTarget(url=url, backend="sqlite", connect_args=connect_args, sqlite_path=path)


# --- PostgreSQL ---------------------------------------------------------------------------


def _postgres_target(url: URL) -> DatabaseTarget:
    params = {key: _last(value) for key, value in url.query.items()}
    keep_query: dict[str, str | tuple[str, ...]] = {}
    connect_args: dict[str, Any] = {}
    server_settings: dict[str, str] = {}
    ssl_files: dict[str, str] = {}
    ssl_mode: str | None = None
    pooler = url.port == TRANSACTION_POOLER_PORT
    ignored: list[str] = []
    url_fields: dict[str, Any] = {}

    for key, value in params.items():
        if key == "host":
            # SQLAlchemy's multi-host form (?host=a:5432&host=b:5432): it reads these itself.
            keep_query[key] = url.query[key]
        elif key in ("user", "password"):
            url_fields["username" if key == "user" else key] = value
        elif key == "dbname":
            url_fields["database"] = value
        elif key == "port":
            url_fields["port"] = _int(key, value)
        elif key == "sslmode":
            ssl_mode = _ssl_mode(value)
        elif key == "ssl":
            ssl_mode = _ssl_flag(value)
        elif key == "requiressl":
            if value.lower() in _TRUE:
                ssl_mode = "require"
        elif key in _SSL_FILE_PARAMS:
            ssl_files[_SSL_FILE_PARAMS[key]] = value
        elif key == "sslnegotiation":
            if value.lower() == "direct":
                connect_args["direct_tls"] = True
        elif key == "connect_timeout":
            seconds = _float(key, value)
            # libpq: 0 waits forever (we keep our bound instead), and less than 2 means 2.
            if seconds > 0:
                connect_args["timeout"] = max(seconds, 2.0)
        elif key in ("application_name", "fallback_application_name"):
            if key == "application_name" or "application_name" not in params:
                server_settings["application_name"] = value
        elif key == "options":
            # libpq sends ``options`` as a startup parameter; so does asyncpg's server_settings.
            server_settings["options"] = value
        elif key == "schema":
            server_settings["search_path"] = value  # Prisma's spelling of search_path
        elif key in ("target_session_attrs", "krbsrvname", "gsslib", "passfile"):
            connect_args[key] = value
        elif key == "pgbouncer":
            pooler = pooler or value.lower() in _TRUE
        elif key == "prepare_threshold":
            # psycopg's knob; whoever sets it in a URL is working around a pooler.
            pooler = pooler or value.lower() in ("0", "", "none", "null")
        elif key == "statement_cache_size":
            size = _int(key, value)
            connect_args[key] = size
            pooler = pooler or size == 0
        elif key == "prepared_statement_cache_size":
            connect_args[key] = _int(key, value)
        elif key in _IGNORED_PARAMS:
            ignored.append(key)
        else:
            logger.warning("Ignoring database URL parameter %r: asyncpg has no use for it", key)
            ignored.append(key)

    if server_settings:
        connect_args["server_settings"] = server_settings
    connect_args.setdefault("timeout", DEFAULT_CONNECT_TIMEOUT_SECONDS)
    if pooler:
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = unique_statement_name

    ssl_settings = None
    mode = ssl_mode or "prefer"
    wants_context = ssl_files.get("rootcert") == "system" or (
        mode in _VERIFYING_MODES and bool(ssl_files)
    )
    if wants_context:
        ssl_settings = SslSettings(mode=mode, **ssl_files)
    elif ssl_mode is not None:
        # asyncpg implements libpq's modes itself, including prefer's plain-text fallback.
        connect_args["ssl"] = ssl_mode
    if ssl_files and not wants_context:
        ignored.extend(name for name, attr in _SSL_FILE_PARAMS.items() if attr in ssl_files)

    clean = url.set(drivername="postgresql+asyncpg", query=keep_query, **url_fields)
    return DatabaseTarget(
        url=clean,
        backend="postgresql",
        connect_args=connect_args,
        transaction_pooler=pooler,
        ssl=ssl_settings,
        ignored_params=tuple(ignored),
    )


def _make_url(text: str) -> URL:
    try:
        return make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise ValueError("The database URL could not be parsed.") from exc


# An authority's host part: what may follow the '@' that ends the user info.
_HOST_AFTER_AT = re.compile(r"[A-Za-z0-9.\-_\[\]:,%]+(?=[/?])")


def _quote_userinfo(text: str) -> str:
    """Percent-encode ``@ / ? #`` left raw in a password, as pasted from a dashboard.

    libpq and SQLAlchemy need them encoded; people rarely do it. The user info ends at the
    last '@' that is followed by something shaped like a host.
    """
    scheme, rest = text.split("://", 1)
    split_at = -1
    for match in re.finditer("@", rest):
        if _HOST_AFTER_AT.match(rest, match.end()):
            split_at = match.start()
    if split_at < 0:
        return text
    userinfo, hostpart = rest[:split_at], rest[split_at + 1 :]
    user, colon, password = userinfo.partition(":")
    encoded = _encode_raw(user) + colon + _encode_raw(password)
    return f"{scheme}://{encoded}@{hostpart}"


def _encode_raw(part: str) -> str:
    return quote(part, safe="%!$&'()*+,;=:~-._") if part else part


def _last(value: str | tuple[str, ...]) -> str:
    # A repeated parameter: libpq keeps the last one.
    return value[-1] if isinstance(value, tuple) else value


def _ssl_mode(value: str) -> str:
    mode = value.strip().lower()
    if mode not in SSL_MODES:
        raise ValueError(f"Unsupported sslmode; use one of: {', '.join(SSL_MODES)}.")
    return mode


def _ssl_flag(value: str) -> str:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return "require"
    if lowered in _FALSE:
        return "disable"
    return _ssl_mode(lowered)


def _int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"Database URL parameter {key!r} must be an integer.") from None


def _float(key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"Database URL parameter {key!r} must be a number.") from None


def _tls_version(name: str) -> ssl.TLSVersion:
    versions = {
        "tlsv1": ssl.TLSVersion.TLSv1,
        "tlsv1.1": ssl.TLSVersion.TLSv1_1,
        "tlsv1.2": ssl.TLSVersion.TLSv1_2,
        "tlsv1.3": ssl.TLSVersion.TLSv1_3,
    }
    try:
        return versions[name.strip().lower()]
    except KeyError:
        raise ValueError("Unsupported TLS protocol version in the database URL.") from None
