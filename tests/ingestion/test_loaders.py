"""Uploaded bytes or pasted text to a titled document."""

from __future__ import annotations

import codecs

import pytest

from sitechat.errors import IngestionError
from sitechat.ingestion.loaders import LoadedDocument, load_document, load_text
from tests.retrieval.conftest import DOCS

# --- titles and formats ----------------------------------------------------------------------


def test_markdown_title_is_the_first_level_one_heading() -> None:
    doc = load_text(b"Intro line\n\n## Not this\n\n# The `Real` Title\n\nText.", filename="a.md")
    assert doc == LoadedDocument(
        title="The Real Title",
        text="Intro line\n\n## Not this\n\n# The `Real` Title\n\nText.",
        fmt="markdown",
        source_type="markdown",
    )


def test_a_heading_inside_a_code_fence_is_not_the_title() -> None:
    doc = load_text("```\n# comment\n```\n\nBody.", filename="notes.markdown")
    assert doc.title == "notes"


def test_front_matter_gives_the_title_and_is_removed() -> None:
    doc = load_text((DOCS / "getting-started.md").read_bytes(), filename="getting-started.md")
    assert doc.title == "Getting started with Acme Chat"
    assert doc.text.startswith("# Getting started with Acme Chat")
    assert "sidebar_position" not in doc.text


def test_markdown_without_heading_is_titled_by_its_file_name() -> None:
    assert load_text(b"Just text.", filename="docs/faq-page.md").title == "faq-page"


def test_plain_text_is_titled_by_its_file_name_or_first_line() -> None:
    doc = load_text(b"Opening hours\n\nWe open at nine.", filename="hours.TXT")
    assert (doc.title, doc.fmt, doc.source_type) == ("hours", "text", "text")
    pasted = load_text("\n\n  Opening   hours  \nWe open at nine.", filename=None)
    assert pasted.title == "Opening hours"
    assert pasted.fmt == "text"


def test_pasted_markdown_is_recognised() -> None:
    assert load_text("# Guide\n\nText", filename=None).fmt == "markdown"
    assert load_text("Text\n\n```\ncode\n```", filename=None).fmt == "markdown"
    assert load_text("Notes\n# one comment line\nmore", filename=None).fmt == "text"


def test_a_very_long_title_is_shortened() -> None:
    doc = load_text(("word " * 200).encode(), filename=None)
    assert len(doc.title) == 200
    assert doc.title.endswith("…")


def test_line_endings_and_odd_spaces_are_normalised() -> None:
    doc = load_text(b"Line one\r\nLine\xc2\xa0two\r\x07", filename="a.txt")
    assert doc.text == "Line one\nLine two"


# --- decoding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("Café ünïcode ✓".encode(), "Café ünïcode ✓"),
        (codecs.BOM_UTF8 + "Café".encode(), "Café"),
        (codecs.BOM_UTF16_LE + "Café".encode("utf-16-le"), "Café"),
        (codecs.BOM_UTF16_BE + "Café".encode("utf-16-be"), "Café"),
        (b"caf\xe9 \x93quoted\x94 \x80", "café “quoted” €"),  # Windows-1252
        (b"caf\xe9 \x81", "café \x81"),  # not cp1252 (0x81 is unassigned): Latin-1
    ],
)
def test_bytes_are_decoded_by_bom_then_utf8_then_legacy_codepages(data: bytes, text: str) -> None:
    assert load_text(data, filename="a.txt").text == text


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
        bytes(range(256)) * 4,
        b"%PDF-1.7\n" + bytes([7, 8, 14, 15, 16, 17, 18, 19, 20, 21] * 20),
        codecs.BOM_UTF16_LE + b"\x00\xd8",  # a lone surrogate
    ],
)
def test_binary_content_is_refused(data: bytes) -> None:
    with pytest.raises(IngestionError) as caught:
        load_text(data, filename="upload.txt")
    assert caught.value.message == "The file is not readable text (binary, or an unknown encoding)."


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"", "a.txt"),
        (b"  \n\t\r\n", "a.md"),
        ("", None),
        ("\u200b\u00a0 \n", None),
        (b"---\ntitle: Only front matter\n---\n", "a.md"),
    ],
)
def test_empty_content_is_refused(data: bytes | str, filename: str | None) -> None:
    with pytest.raises(IngestionError) as caught:
        load_text(data, filename=filename)
    assert caught.value.message == "The document is empty."


@pytest.mark.parametrize("filename", ["report.pdf", "page.html", "archive.zip", "x.docx"])
def test_unsupported_file_types_are_refused_by_suffix(filename: str) -> None:
    with pytest.raises(IngestionError) as caught:
        load_text(b"%PDF-1.7 binary", filename=filename)
    assert "Unsupported file type" in caught.value.message


# --- load_document: choosing the format -------------------------------------------------


def test_the_content_type_decides_when_there_is_no_filename() -> None:
    html = b"<html><body><main><h1>Hi</h1><p>There.</p></main></body></html>"
    assert load_document(html, content_type="text/html; charset=utf-8").source_type == "html"
    assert load_document(b"# Title\n\nBody", content_type="text/markdown").fmt == "markdown"
    assert load_document(b"plain words", content_type="text/plain").fmt == "text"


def test_html_is_sniffed_without_a_name_or_type() -> None:
    doc = load_document(b"<!DOCTYPE html><html><body><p>Sniffed.</p></body></html>")
    assert doc.source_type == "html" and "Sniffed." in doc.text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filename": "sheet.xlsx"}, "Unsupported file type '.xlsx'"),
        ({"content_type": "image/png"}, "Unsupported content type 'image/png'"),
    ],
)
def test_an_unsupported_type_is_refused_with_a_reason(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(IngestionError, match=message):
        load_document(b"some bytes", **kwargs)  # type: ignore[arg-type]


def test_a_declared_charset_is_used_for_text() -> None:
    doc = load_document("Größe".encode("cp1250"), content_type="text/plain; charset=cp1250")
    assert doc.text == "Größe"
