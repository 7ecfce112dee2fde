"""A test that runs for minutes is reported with what every asyncio task awaits.

``faulthandler_timeout`` (pyproject) prints each thread's stack, but a test stuck in an
``await`` shows only an idle event loop there. So when a test (set-up and teardown
included) is still running after ``SITECHAT_TEST_HANG_SECONDS`` (300 by default), every
running event loop is asked, from a watchdog thread, to print each of its tasks with the
whole chain of coroutines it awaits, down to the innermost. The test goes on: this only
tells where it waits. Some tests (containers, browsers) are legitimately slow; for them it
is a few lines of noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Generator
from types import FrameType
from typing import Any

import pytest

HANG_SECONDS = float(os.environ.get("SITECHAT_TEST_HANG_SECONDS", "300"))


def _frames(awaitable: Any) -> list[FrameType]:
    """The frames of a coroutine and of everything it awaits in turn, outermost first."""
    found: list[FrameType] = []
    seen: set[int] = set()
    while awaitable is not None and id(awaitable) not in seen:
        seen.add(id(awaitable))
        frame = (
            getattr(awaitable, "cr_frame", None)
            or getattr(awaitable, "ag_frame", None)
            or getattr(awaitable, "gi_frame", None)
        )
        if frame is not None:
            found.append(frame)
        awaitable = (
            getattr(awaitable, "cr_await", None)
            or getattr(awaitable, "ag_await", None)
            or getattr(awaitable, "gi_yieldfrom", None)
        )
    return found


# pytest's capture manager: the report goes to the terminal, past the output capture.
_capture: Any = None


def _dump_tasks(test: str) -> None:
    """Runs in the loop's own thread."""
    tasks = asyncio.all_tasks()
    lines = [f"=== {test}: still running after {HANG_SECONDS:.0f} s; {len(tasks)} tasks ==="]
    for task in tasks:
        lines.append(f"--- {task!r}")
        waiter = getattr(task, "_fut_waiter", None)
        if waiter is not None:
            lines.append(f"    waiting on {waiter!r}")
        for frame in _frames(task.get_coro()):
            lines.append("".join(traceback.format_stack(frame, limit=1)).rstrip())
    text = "\n".join(lines)
    if _capture is None:
        print(text, file=sys.stderr, flush=True)
        return
    with _capture.global_and_fixture_disabled():
        print("\n" + text, file=sys.stderr, flush=True)


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    """Every thread's running event loop: the ``self`` of a ``run_forever`` on its stack."""
    loops: list[asyncio.AbstractEventLoop] = []
    for frame in sys._current_frames().values():
        while frame is not None:
            running = frame.f_code.co_name == "run_forever"
            candidate = frame.f_locals.get("self") if running else None
            if isinstance(candidate, asyncio.AbstractEventLoop) and candidate not in loops:
                loops.append(candidate)
            frame = frame.f_back
    return loops


def _watch(test: str, done: threading.Event) -> None:
    if done.wait(HANG_SECONDS):
        return
    for loop in _running_loops():
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(_dump_tasks, test)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    global _capture
    _capture = item.config.pluginmanager.getplugin("capturemanager")
    done = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(item.nodeid, done), name="hang-watch", daemon=True
    )
    watcher.start()
    try:
        yield
    finally:
        done.set()
