"""The served widget stays within its budget: 11 KB gzipped (issue 8), measured on the built
file exactly as the server sends it (esbuild's minified bundle of ``widget/src``).

The sources and the built file both keep away from every API that parses a string as HTML or
code: the Markdown renderer builds each node with createElement/textContent. The sources are
ES modules; the built file is one self-contained script that imports nothing.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / "backend" / "sitechat" / "api" / "web" / "static" / "sitechat.js"
SOURCES = sorted((ROOT / "widget" / "src").glob("*.[jc]s*"))
BUDGET_BYTES = 11 * 1024

# Anywhere: HTML and code parsers, and loading more code at run time.
SINKS = (
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
    "createContextualFragment",
    "srcdoc",
)


def test_built_widget_is_at_most_11_kb_gzipped() -> None:
    size = len(gzip.compress(BUILT.read_bytes(), compresslevel=9))
    assert size <= BUDGET_BYTES, f"{BUILT.name} is {size} bytes gzipped, over {BUDGET_BYTES}"


def test_sources_are_there() -> None:
    names = {p.name for p in SOURCES}
    assert {"index.js", "sse.js", "markdown.js", "render.js", "api.js", "strings.js"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_sources_never_parse_html_or_load_code(path: Path) -> None:
    source = path.read_text("utf-8")
    for marker in SINKS:
        assert marker not in source, f"{path.name}: {marker}"


def test_built_widget_loads_nothing_else_and_never_parses_html() -> None:
    built = BUILT.read_text("utf-8")
    for marker in (*SINKS, "import ", "export "):
        assert marker not in built, marker
