"""Runs the widget's JavaScript unit tests (``node --test widget/tests/*.test.js``, on the ES
modules in ``widget/src``) inside pytest, so ``make test`` covers them. Without node they
are skipped locally and fail in CI. The files are named one by one: newer node versions take
patterns, not folders."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"


def test_widget_javascript_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        if IN_CI:
            pytest.fail("node is not installed: the widget's JavaScript tests cannot run")
        pytest.skip("node is not installed")
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "widget" / "tests").glob("*.test.js"))
    assert files, "no widget/tests/*.test.js files"
    result = subprocess.run(
        [node, "--test", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    summary = "\n".join(line for line in result.stdout.splitlines() if line.startswith("# "))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# pass 0" not in summary and "# fail 0" in summary, summary
