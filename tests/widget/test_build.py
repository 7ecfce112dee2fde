"""The committed widget is the build of its sources: ``widget/build.mjs`` (esbuild, pinned in
``widget/package-lock.json``) is run again into a temporary file, which must be byte-identical
to ``backend/sitechat/api/web/static/sitechat.js``. A source edited without rebuilding fails
here. Needs node and ``widget/node_modules`` (``make widget``): skipped locally without
them, required in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIDGET = ROOT / "widget"
BUILT = ROOT / "backend" / "sitechat" / "api" / "web" / "static" / "sitechat.js"
ESBUILD = WIDGET / "node_modules" / ".bin" / "esbuild"
IN_CI = os.environ.get("CI", "").lower() == "true"
STALE = (
    "backend/sitechat/api/web/static/sitechat.js is not the build of widget/src: "
    "run `make widget` and commit the rebuilt file"
)


def build_into(out: Path) -> bytes:
    node = shutil.which("node")
    if node is None or not ESBUILD.exists():
        missing = "node" if node is None else "widget/node_modules (run `make widget`)"
        if IN_CI:
            pytest.fail(f"the widget cannot be rebuilt: {missing} is missing")
        pytest.skip(f"the widget cannot be rebuilt: {missing} is missing")
    result = subprocess.run(
        [node, "build.mjs", str(out)],
        cwd=WIDGET,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"widget build failed:\n{result.stdout}\n{result.stderr}"
    return out.read_bytes()


def test_committed_widget_is_the_build_of_its_sources(tmp_path: Path) -> None:
    rebuilt = build_into(tmp_path / "sitechat.js")
    assert BUILT.is_file(), "no built widget: run `make widget`"
    assert rebuilt == BUILT.read_bytes(), STALE


def test_the_build_is_deterministic(tmp_path: Path) -> None:
    first = build_into(tmp_path / "first.js")
    second = build_into(tmp_path / "second.js")
    assert first == second, (
        "two builds of the same sources differ: widget/build.mjs is not deterministic"
    )
