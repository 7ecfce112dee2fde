"""PDF to plain text with ``pypdf``, one page after another.

What can go wrong with a PDF is reported as ``IngestionError`` with a reason an uploader can
act on: not a PDF, damaged, password-protected, or only scanned images (no text layer). A
document with some unreadable pages keeps the pages that read. Text extraction is CPU-bound
and can be slow on large files: call from a worker thread.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sitechat.errors import IngestionError

if TYPE_CHECKING:
    from pypdf import PdfReader

logger = logging.getLogger(__name__)

MAX_PAGES = 2000
_SPACE_RUN = re.compile(r"[ \t]+")
_HYPHEN_BREAK = re.compile(r"(\w)-\n(\w)")

NOT_A_PDF = "The file is not a PDF."
DAMAGED = "The PDF is damaged or not a PDF file pypdf can read."
ENCRYPTED = "The PDF is password-protected."
NO_TEXT = "The PDF has no extractable text (it may be scanned images)."


@dataclass(frozen=True, slots=True)
class PdfText:
    title: str  # from the document information, "" when absent
    text: str
    pages: int


def is_pdf(data: bytes) -> bool:
    return data[:1024].lstrip().startswith(b"%PDF-")


def read_pdf(data: bytes) -> PdfText:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    if not is_pdf(data):
        raise IngestionError(NOT_A_PDF)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _unlock(reader):
            raise IngestionError(ENCRYPTED)
        pages = reader.pages
        count = len(pages)
    except IngestionError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise IngestionError(DAMAGED) from exc
    if count > MAX_PAGES:
        raise IngestionError(f"The PDF has more than {MAX_PAGES} pages.")
    texts: list[str] = []
    for number in range(count):
        try:
            text = pages[number].extract_text() or ""
        except Exception:
            # One broken page (bad font, bad content stream) should not lose the others.
            logger.info("page %d of a PDF could not be read", number + 1, exc_info=True)
            continue
        text = _tidy(text)
        if text:
            texts.append(text)
    if not texts:
        raise IngestionError(NO_TEXT)
    return PdfText(_info_title(reader), "\n\n".join(texts), count)


def _unlock(reader: PdfReader) -> bool:
    """Many PDFs are encrypted with an empty user password only to restrict printing."""
    try:
        return bool(reader.decrypt(""))
    except Exception:
        return False


def _info_title(reader: PdfReader) -> str:
    try:
        info = reader.metadata
        title = info.title if info is not None else None
    except Exception:
        return ""
    return str(title).strip() if title else ""


def _tidy(text: str) -> str:
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    lines = [_SPACE_RUN.sub(" ", line).strip() for line in text.splitlines()]
    return "\n".join(lines).strip()
