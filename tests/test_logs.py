"""Structured logs: with ``log_format=json`` every line is one JSON object, and the lines
logged while serving a request carry its request id and chatbot id (from context variables,
not passed around); an answer's line says how it ended. Visitor text stays out."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from sitechat.config import Settings
from sitechat.logs import ContextFields, JsonFormatter, logging_config
from tests.conftest import running_app

QUESTION = "How long does delivery take for parcel 4111-1111?"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """sitechat's loggers, for this test, as a JSON handler would write them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFields())
    logger = logging.getLogger("sitechat")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_an_answers_log_line_carries_its_request_chatbot_and_outcome(
    settings: Settings, json_lines: io.StringIO
) -> None:
    async with running_app(settings) as h:
        response = await h.client.post(
            "/api/public/chat/stream", json={"message": QUESTION, "chatbot_id": "shop"}
        )
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    lines = parsed(json_lines)
    answer = [line for line in lines if line.get("outcome")]
    assert answer, lines
    assert answer[-1]["outcome"] == "complete"
    assert answer[-1]["request_id"] == request_id and answer[-1]["chatbot_id"] == "shop"
    assert {"time", "level", "logger", "message"} <= set(answer[-1])
    assert "4111" not in json_lines.getvalue() and "parcel" not in json_lines.getvalue()


def test_the_json_config_formats_every_handler_and_keeps_query_strings_out() -> None:
    config = logging_config("INFO", "json")
    for name in ("sitechat", "default", "access"):
        assert config["formatters"][name]["()"].endswith("JsonFormatter")
    assert "drop_query_strings" in config["loggers"]["uvicorn.access"]["filters"]
    text = logging_config("INFO", "text")
    assert text["formatters"]["sitechat"]["format"].startswith("%(levelname)s")


def test_an_exception_is_one_json_line_with_its_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("sitechat.x", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    body = json.loads(line)
    assert body["message"] == "failed" and "ValueError: boom" in body["exception"]
