"""Real ``sitechat`` processes for tests: the CLI as a user runs it, servers on loopback ports.

Every process gets the environment it is given on top of this one, writes its output to a
pipe the test can read, and is stopped (SIGTERM, then SIGKILL) when the test is done.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

CLI = [sys.executable, "-c", "from sitechat.cli import app; app()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``sitechat ARGS`` to the end, as a user would type it."""
    return subprocess.run(
        [*CLI, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        """What the process printed; only once it has exited."""
        assert self.process.stdout is not None
        return self.process.stdout.read().decode(errors="replace")


def wait_ready(server: Server, *, seconds: float = 60, path: str = "/healthz") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited: {server.output()}")
        try:
            if httpx.get(f"{server.url}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.url} did not start in time")


def start(*args: str, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CLI, *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen[bytes], *, timeout: float = 15) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextmanager
def sitechat_serve(env: Mapping[str, str], *args: str) -> Iterator[Server]:
    """``sitechat serve`` on a free loopback port, ready when this yields."""
    port = free_port()
    server = Server(f"http://127.0.0.1:{port}", start("serve", "--port", str(port), *args, env=env))
    try:
        wait_ready(server)
        yield server
    finally:
        stop(server.process)
