"""Regression: visitors' questions and query strings went into the logs.

Every question that found no context was logged at INFO with its text ("no context for ...
(query '...')"): a privacy choice that belongs to the owner, not a default. And uvicorn's
access log kept whole request targets, so a mistaken ``?api_key=...`` landed in the log.

Now visitor text is logged only with ``SITECHAT_LOG_VISITOR_TEXT=true`` (the line keeps
the chatbot and request id either way), and ``sitechat serve`` hands uvicorn a logging
configuration whose access log drops query strings.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from uvicorn.logging import AccessFormatter

from sitechat.chat.turn import ChatRequest
from sitechat.cli import app as cli_app
from sitechat.config import Settings
from sitechat.logs import DropQueryStrings, logging_config
from tests.conftest import running_app
from tests.support.admin import with_settings

SECRET_QUESTION = "Zqxv blorft wibbles for 4111-1111-1111-1111?"


async def ask_without_context(settings: Settings) -> None:
    async with running_app(settings) as harness:
        chat = harness.services.chat
        turn = await chat.open_turn(ChatRequest(SECRET_QUESTION, chatbot_id="shop"))
        outcome = await chat.answer(turn)
        assert outcome.to_dict().get("fallback") is True


async def test_visitor_questions_stay_out_of_the_log_by_default(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await ask_without_context(settings)
    fallback = [r for r in caplog.records if "no context" in r.getMessage()]
    assert fallback, "the fallback line itself is still logged"
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("sitechat")]
    assert ours and not [m for m in ours if "4111" in m or "blorft" in m]


async def test_the_owner_may_opt_in_to_logging_visitor_text(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await ask_without_context(with_settings(settings, log_visitor_text=True))
    assert any("blorft" in r.getMessage() for r in caplog.records)


def access_record(target: str) -> logging.LogRecord:
    """A record shaped exactly as uvicorn's access logger makes them."""
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("203.0.113.9:5555", "GET", target, "1.1", 200),
        None,
    )


def test_the_access_log_drops_query_strings() -> None:
    config = logging_config("info")
    assert "drop_query_strings" in config["loggers"]["uvicorn.access"]["filters"]
    # aiosqlite logs every statement's parameters (visitors' messages) at DEBUG.
    assert config["loggers"]["aiosqlite"]["level"] == "INFO"
    module, _, name = config["filters"]["drop_query_strings"]["()"].rpartition(".")
    log_filter = getattr(importlib.import_module(module), name)()
    assert isinstance(log_filter, DropQueryStrings)

    record = access_record("/api/admin/chatbots?api_key=sck_secret&x=1")
    assert log_filter.filter(record)
    line = AccessFormatter(
        '%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False
    ).format(record)
    assert line == '203.0.113.9:5555 - "GET /api/admin/chatbots HTTP/1.1" 200 OK'

    plain = access_record("/healthz")
    assert log_filter.filter(plain) and plain.args == access_record("/healthz").args


def test_serve_gives_uvicorn_the_logging_without_query_strings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    monkeypatch.setenv("SITECHAT_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli_app, ["serve"])
    assert result.exit_code == 0, result.output
    assert "drop_query_strings" in seen["log_config"]["loggers"]["uvicorn.access"]["filters"]
