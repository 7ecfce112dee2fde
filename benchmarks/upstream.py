"""The scripted OpenAI-compatible upstream in a process of its own, so its CPU is never
counted with (or taken from the event loop of) the servers under test.

The child runs ``tests.support.scripted_openai.ScriptedOpenAI`` and takes one JSON command
per line on stdin, answering each with one JSON line on stdout:

- ``{"cmd": "script", "tokens": 40, "first_token_delay": 0.05, "token_gap": 0.02}``: how
  every answer from now on looks (a silent model: a first-token delay of an hour);
- ``{"cmd": "stats"}``: ``{"streams": <started>, "open": <not yet closed>}``;
- ``{"cmd": "forget"}``: drop the records of closed answers (they grow with every request).

The first line it prints is ``{"base_url": ...}``. EOF on stdin stops it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import IO, Any


@dataclass(frozen=True)
class Shape:
    """How the upstream answers: ``tokens`` tokens, the first after ``first_token_delay``
    seconds, the rest ``token_gap`` apart."""

    tokens: int = 40
    first_token_delay: float = 0.05
    token_gap: float = 0.02


class Upstream:
    """The parent's handle on the upstream process (a context manager)."""

    def __init__(self, *, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Upstream:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.upstream"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.base_url = str(self._read()["base_url"])
        return self

    def __exit__(self, *exc: object) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        try:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait(timeout=5)

    def command(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """Send one command and wait (at most ``timeout``) for its answer. Thread-safe, so
        async callers may use ``asyncio.to_thread``."""
        with self._lock:
            assert self.process is not None and self.process.stdin is not None
            self.process.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
            self.process.stdin.flush()
            return self._read()

    def shape(self, shape: Shape) -> None:
        self.command(
            "script",
            tokens=shape.tokens,
            first_token_delay=shape.first_token_delay,
            token_gap=shape.token_gap,
        )

    def _read(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        result: list[str] = []
        reader = threading.Thread(
            target=lambda: result.append(self.process.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(self.timeout)
        if not result or not result[0]:
            code = self.process.poll()
            raise RuntimeError(
                "the scripted upstream did not answer"
                + (f" (it exited with {code})" if code is not None else " in time")
            )
        answer: dict[str, Any] = json.loads(result[0])
        return answer


def _serve(commands: IO[str], answers: IO[str]) -> None:
    from tests.support.scripted_openai import Script, ScriptedOpenAI

    def reply(data: dict[str, Any]) -> None:
        answers.write(json.dumps(data) + "\n")
        answers.flush()

    with ScriptedOpenAI() as server:
        server.script(Script(tokens=[f"word{i} " for i in range(Shape().tokens)]))
        reply({"base_url": server.base_url})
        for line in commands:
            request = json.loads(line)
            cmd = request.get("cmd")
            if cmd == "script":
                server.script(
                    Script(
                        tokens=[f"word{i} " for i in range(int(request["tokens"]))],
                        first_token_delay=float(request["first_token_delay"]),
                        token_gap=float(request["token_gap"]),
                    )
                )
                reply({"ok": True})
            elif cmd == "stats":
                streams = list(server.streams)
                reply({"streams": len(streams), "open": sum(s.closed_at is None for s in streams)})
            elif cmd == "forget":
                server.streams[:] = [s for s in server.streams if s.closed_at is None]
                server.requests.clear()
                reply({"ok": True})
            else:
                reply({"error": f"unknown command {cmd!r}"})


if __name__ == "__main__":
    answers, sys.stdout = sys.stdout, sys.stderr  # stray prints must not look like answers
    _serve(sys.stdin, answers)
