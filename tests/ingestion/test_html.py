"""HTML pages become the Markdown of their readable content: no menus, scripts or footers."""

from __future__ import annotations

import pytest

from sitechat.errors import IngestionError
from sitechat.ingestion.chunking import chunk_document
from sitechat.ingestion.html import parse_html
from sitechat.ingestion.loaders import load_document
from tests.retrieval.quality_set import QUALITY_DIR

PAGE = """<!doctype html><html><head><title>Pricing | Acme</title>
<script>var tracking = "secret-tracker";</script><style>p { color: red }</style></head>
<body>
<header class="site-header"><a href="/">Acme</a><nav><a href="/docs">Docs</a>
<a href="/pricing#plans">Pricing</a><a href="mailto:hi@acme.example">Mail</a></nav></header>
<div class="cookie-banner">We use cookies <button>Accept</button></div>
<main><article><header><h1>Pricing <small>2024</small></h1></header>
<p>The <b>Business</b> plan costs <a href="/plans">49 euros</a> a month.<br>Billed yearly.</p>
<h2>Refunds</h2><ol><li>Within 30 days</li><li>Full amount<ul><li>by card</li></ul></li></ol>
<pre><code>curl -X POST /refund</code></pre>
<table><tr><th>Plan</th><th>Price</th></tr><tr><td>Free</td><td>0 | none</td></tr></table>
<p># not a heading</p>
</article><aside>Related posts</aside></main>
<footer>Copyright Acme</footer><noscript>Enable JavaScript</noscript></body></html>"""


def test_only_the_main_content_is_kept() -> None:
    page = parse_html(PAGE, base_url="https://acme.example/pricing")
    text = page.markdown
    assert "Business plan costs 49 euros a month. Billed yearly." in text
    for junk in ("secret-tracker", "color: red", "cookies", "Docs", "Related posts",
                 "Copyright", "Enable JavaScript"):  # fmt: skip
        assert junk not in text, junk


def test_structure_becomes_markdown_that_chunking_follows() -> None:
    page = parse_html(PAGE)
    assert page.title == "Pricing 2024"
    lines = page.markdown.split("\n")
    assert "## Refunds" in lines
    assert "1. Within 30 days" in lines and "    - by card" in lines
    assert "```\ncurl -X POST /refund\n```" in page.markdown
    assert "| Free | 0 \\| none |" in lines
    assert "\\# not a heading" in lines  # page text that looks like Markdown stays text
    chunks = chunk_document(
        page.markdown, title=page.title, fmt="markdown", max_tokens=40, overlap_tokens=10
    )
    assert any(c.heading_path == ("Refunds",) for c in chunks)


def test_links_are_absolute_deduplicated_and_come_from_the_whole_page() -> None:
    page = parse_html(PAGE, base_url="https://acme.example/pricing")
    assert page.links == (
        "https://acme.example/",
        "https://acme.example/docs",
        "https://acme.example/pricing",
        "https://acme.example/plans",
    )


def test_without_main_the_single_article_or_the_body_is_used() -> None:
    assert parse_html("<body><nav>Menu</nav><p>Just text.</p></body>").markdown == "Just text."
    two = parse_html("<body><article><p>One</p></article><article><p>Two</p></article></body>")
    assert two.markdown == "One\n\nTwo"


def test_the_title_falls_back_to_the_title_tag() -> None:
    page = parse_html("<html><head><title> Hello   World </title></head><body><p>x</p></body>")
    assert page.title == "Hello World"


def test_a_page_without_readable_text_fails_with_a_reason() -> None:
    html = b"<html><body><nav><a href='/'>Home</a></nav><script>x()</script></body></html>"
    with pytest.raises(IngestionError, match="no readable text"):
        load_document(html, filename="empty.html")


def test_a_declared_legacy_charset_is_honoured() -> None:
    data = (QUALITY_DIR / "accessories.html").read_bytes()
    assert "é".encode("latin-1") in data  # the fixture really is ISO-8859-1
    doc = load_document(data, filename="accessories.html")
    assert doc.source_type == "html" and doc.fmt == "markdown"
    assert "16 \u00d7 16 cm" in doc.text  # the multiplication sign, byte 0xD7 in the file
    assert doc.title == "Accessories for the Lumen T3"
