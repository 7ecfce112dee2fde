"""A raw SSE reader for tests: parses ``id:``/``data:`` frames and comments as bytes arrive,
recording when each arrived, without any client library buffering in between."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Frame:
    event_id: int | None
    data: dict[str, Any] | None  # None for a comment
    comment: str | None
    arrived: float  # time.monotonic()

    @property
    def type(self) -> str | None:
        return None if self.data is None else self.data.get("type")


def parse_block(block: str, arrived: float) -> Frame:
    event_id: int | None = None
    data_lines: list[str] = []
    comment: str | None = None
    for line in block.split("\n"):
        if line.startswith(":"):
            comment = line[1:].strip()
        elif line.startswith("id:"):
            event_id = int(line[3:].strip())
        elif line.startswith("data:"):
            data_lines.append(line[5:].lstrip())
    data = json.loads("\n".join(data_lines)) if data_lines else None
    return Frame(event_id, data, comment, arrived)


async def iter_frames(response: httpx.Response) -> AsyncIterator[Frame]:
    buffer = ""
    async for text in response.aiter_text():
        buffer += text.replace("\r\n", "\n")
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            if block.strip():
                yield parse_block(block, time.monotonic())


def parse_body(body: str) -> list[Frame]:
    now = time.monotonic()
    blocks = body.replace("\r\n", "\n").split("\n\n")
    return [parse_block(b, now) for b in blocks if b.strip()]
