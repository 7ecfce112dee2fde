"""The served widget stays within its budget: 15 KB gzipped (issue 5), measured on the file
exactly as it is served (it is not minified, so the readable file itself must fit)."""

from __future__ import annotations

import gzip
from pathlib import Path

WIDGET = Path(__file__).resolve().parents[2] / "widget" / "sitechat.js"
BUDGET_BYTES = 15 * 1024


def test_served_widget_is_at_most_15_kb_gzipped() -> None:
    size = len(gzip.compress(WIDGET.read_bytes(), compresslevel=9))
    assert size <= BUDGET_BYTES, f"sitechat.js is {size} bytes gzipped, over {BUDGET_BYTES}"


def test_served_widget_loads_nothing_else_and_never_parses_html() -> None:
    # One self-contained file (no imports), and no API that parses a string as HTML or code:
    # the Markdown renderer builds every node with createElement/textContent.
    source = WIDGET.read_text("utf-8")
    sinks = (
        "import ",
        "import(",
        "require(",
        "importScripts",
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "DOMParser",
    )
    for marker in sinks:
        assert marker not in source, marker
