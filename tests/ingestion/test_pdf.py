"""PDFs become plain text with pypdf; a bad PDF fails with a reason an uploader can act on."""

from __future__ import annotations

import pytest

from sitechat.errors import IngestionError
from sitechat.ingestion.loaders import load_document
from sitechat.ingestion.pdf import DAMAGED, NO_TEXT, read_pdf
from tests.support.pdfgen import make_pdf


def test_text_of_every_page_is_extracted_in_order() -> None:
    paragraphs = [f"Paragraph {n}: the warranty covers defects for two years." for n in range(60)]
    pdf = read_pdf(make_pdf(paragraphs, title="Warranty"))
    assert pdf.pages > 1
    assert pdf.title == "Warranty"
    assert pdf.text.index("Paragraph 0:") < pdf.text.index("Paragraph 59:")


def test_a_pdf_loads_as_a_titled_text_document() -> None:
    doc = load_document(make_pdf(["Hello from a PDF (with parentheses)."]), filename="hello.pdf")
    assert doc.source_type == "pdf" and doc.fmt == "text"
    assert doc.title == "hello"
    assert "Hello from a PDF (with parentheses)." in doc.text


def test_a_pdf_is_recognised_by_its_bytes_whatever_its_name() -> None:
    doc = load_document(make_pdf(["Renamed."], title="Real title"), filename="notes.txt")
    assert doc.source_type == "pdf" and doc.title == "Real title"


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog",  # truncated
        b"%PDF-1.7\n" + bytes(range(256)) * 40,  # garbage after the header
    ],
)
def test_a_corrupt_pdf_fails_with_a_reason(data: bytes) -> None:
    with pytest.raises(IngestionError) as caught:
        load_document(data, filename="broken.pdf")
    assert caught.value.message in (DAMAGED, NO_TEXT)


def test_a_pdf_without_text_fails_with_a_reason() -> None:
    with pytest.raises(IngestionError) as caught:
        load_document(make_pdf([""]), filename="scan.pdf")
    assert caught.value.message == NO_TEXT


def test_a_file_named_pdf_that_is_not_one_is_refused() -> None:
    with pytest.raises(IngestionError, match="not a PDF"):
        load_document(b"just some text", filename="fake.pdf")
