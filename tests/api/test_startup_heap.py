"""A server process freezes its startup heap (``gc.freeze``) once started, so full garbage
collections no longer walk what every worker imports and builds; an app built in a test's
own process never does (frozen objects would pile up across tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, gc, sys
from sitechat.api.app import create_app
from sitechat.config import Settings

async def main(freeze: bool) -> None:
    settings = Settings(_env_file=None, data_dir=sys.argv[2], default_provider="extractive")
    app = create_app(settings, freeze_startup_heap=freeze)
    before = gc.get_freeze_count()
    async with app.router.lifespan_context(app):
        print(before, gc.get_freeze_count())

asyncio.run(main(sys.argv[1] == "freeze"))
"""


def freeze_counts(tmp_path: Path, mode: str) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(tmp_path / mode)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    before, after = done.stdout.split()
    return int(before), int(after)


def test_a_server_process_freezes_what_startup_built(tmp_path: Path) -> None:
    before, after = freeze_counts(tmp_path, "freeze")
    assert before == 0
    # Everything imported and built by then: the app, the SDKs' classes, the services.
    assert after > 50_000


def test_an_app_built_in_a_tests_process_freezes_nothing(tmp_path: Path) -> None:
    assert freeze_counts(tmp_path, "plain") == (0, 0)
