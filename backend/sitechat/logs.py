"""Logging for sitechat processes: text or JSON lines, context on every line, and no secrets.

- **Format**: ``log_format="text"`` (``LEVEL logger: message``) or ``"json"``: one object a
  line with ``time``, ``level``, ``logger``, ``message`` and, when known, ``request_id``,
  ``chatbot_id`` and the fields a line adds itself (an answer's ``outcome`` and ``code``).
- **Context**: the request id (set by ``api.middleware``) and the chatbot id (set by the chat
  pipeline) live in context variables, so every line logged while serving a request carries
  them without being passed around.
- **Privacy**: visitors' text is never logged unless the owner opts in
  (``log_visitor_text``); the access log keeps method, path and status, and
  ``DropQueryStrings`` cuts what follows ``?`` (a mistaken ``?api_key=...`` must not outlive
  its revocation in every log shipper and backup).

``logging_config`` is a ``logging.config.dictConfig`` dictionary handed to uvicorn, so it
applies in every worker process too; ``configure`` applies the same to other commands.
"""

from __future__ import annotations

import contextvars
import copy
import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

from uvicorn.config import LOGGING_CONFIG

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "sitechat_request_id", default=None
)
chatbot_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "sitechat_chatbot_id", default=None
)

# Fields a log call may add with ``extra=``; anything else stays out of the JSON line.
EXTRA_FIELDS = ("outcome", "code", "ttft_ms", "tokens", "status", "job_id", "document_id")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class ContextFields(logging.Filter):
    """Adds the request id and chatbot id of the current context to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        if not hasattr(record, "chatbot_id"):
            record.chatbot_id = chatbot_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("request_id", "chatbot_id", *EXTRA_FIELDS):
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class DropQueryStrings(logging.Filter):
    """Cuts the query string from uvicorn's access-log records (their third argument is
    the request target: path and query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            target = args[2]
            if "?" in target:
                record.args = (*args[:2], target.split("?", 1)[0], *args[3:])
        return True


def logging_config(level: str, fmt: str = "text") -> dict[str, Any]:
    """uvicorn's logging configuration, with ``DropQueryStrings`` on the access log,
    sitechat's loggers at ``level``, and every line as text or JSON (``fmt``)."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {
        "drop_query_strings": {"()": f"{__name__}.DropQueryStrings"},
        "context": {"()": f"{__name__}.ContextFields"},
    }
    config["loggers"]["uvicorn.access"]["filters"] = ["drop_query_strings", "context"]
    if fmt == "json":
        json_formatter = {"()": f"{__name__}.JsonFormatter"}
        config["formatters"] = {
            "sitechat": json_formatter,
            "default": json_formatter,
            "access": json_formatter,
        }
    else:
        config["formatters"]["sitechat"] = {"format": TEXT_FORMAT}
    config["handlers"]["sitechat"] = {
        "formatter": "sitechat",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "filters": ["context"],
    }
    config["root"] = {"handlers": ["sitechat"], "level": level.upper()}
    # At DEBUG, aiosqlite logs every statement with its parameters: visitors' messages.
    config["loggers"]["aiosqlite"] = {"level": "INFO"}
    return config


def configure(level: str, fmt: str = "text") -> None:
    """The same logging for commands that are not served by uvicorn (``sitechat worker``)."""
    logging.config.dictConfig(logging_config(level, fmt))
