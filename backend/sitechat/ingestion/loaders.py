"""Turn an uploaded file, a fetched page or pasted text into a titled document for chunking.

``load_document`` is the entry point: it decides the format from the file suffix, the
``Content-Type`` and the bytes themselves (``%PDF-``, ``<html``), then hands over to one small
function per format. Text and Markdown are decoded here; HTML becomes Markdown of its
readable content (``retrieval/html.py``); PDF becomes plain text (``retrieval/pdf.py``). Each
produces Markdown or plain text (``fmt``) and says what it came from (``source_type``).

Problems with the input are ``IngestionError`` with a message safe to show the uploader.
"""

from __future__ import annotations

import codecs
import contextlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

from sitechat.errors import IngestionError
from sitechat.ingestion.chunking import TextFormat
from sitechat.ingestion.html import parse_html
from sitechat.ingestion.pdf import is_pdf, read_pdf
from sitechat.ingestion.sections import heading_text, normalize_whitespace

SourceType = Literal["text", "markdown", "html", "pdf", "url"]

MAX_TITLE_CHARS = 200
SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".text", ".html", ".htm", ".pdf")
_HTML_SUFFIXES = (".html", ".htm", ".xhtml")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_TEXT_TYPES = ("text/plain", "text/markdown", "text/x-markdown")
_HTML_SNIFF = re.compile(
    rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)[\s>]", re.I | re.S
)
_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_.:-]+)", re.I)


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    title: str
    text: str  # normalised line endings and spaces, front matter removed
    fmt: TextFormat  # how ``chunk_document`` should read ``text``
    source_type: SourceType = "text"


def load_document(
    data: bytes | str,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    url: str | None = None,
) -> LoadedDocument:
    """Load any supported document; ``IngestionError`` with a reason when it cannot be.

    ``content_type`` is a MIME type with optional parameters (``text/html; charset=utf-8``),
    as a server or an upload sent it. The suffix of ``filename`` wins over it, and the bytes
    win over both where they are unmistakable (a PDF is a PDF whatever it is called).
    """
    mime, charset = _parse_content_type(content_type)
    suffix = PurePath(filename).suffix.lower() if filename else ""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if not raw.strip():
        raise IngestionError("The document is empty.")
    if is_pdf(raw) or suffix == ".pdf" or mime == "application/pdf":
        return _load_pdf(raw, filename)
    if (
        suffix in _HTML_SUFFIXES
        or (not suffix and mime in _HTML_TYPES)
        or (not suffix and not mime and _HTML_SNIFF.match(raw[:4096]))
    ):
        return _load_html(raw, filename, charset, url)
    if suffix and suffix not in _BY_SUFFIX:
        raise IngestionError(_unsupported(suffix))
    if not suffix and mime and mime not in _TEXT_TYPES:
        raise IngestionError(
            f"Unsupported content type {mime!r}: send text, Markdown, HTML or PDF."
        )
    if not suffix and mime == "text/markdown":
        filename = (filename or "document") + ".md"
    text = data if isinstance(data, str) else decode_text(raw, charset=charset)
    return load_text(text, filename=filename)


def _unsupported(suffix: str) -> str:
    return f"Unsupported file type {suffix!r}: upload .md, .txt, .html or .pdf."


def _parse_content_type(value: str | None) -> tuple[str, str | None]:
    if not value:
        return "", None
    mime, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip("\"'")
    return mime.strip().lower(), charset


def _load_pdf(data: bytes, filename: str | None) -> LoadedDocument:
    pdf = read_pdf(data)
    title = (
        pdf.title or _stem(filename) or next((ln for ln in pdf.text.split("\n") if ln.strip()), "")
    )
    return LoadedDocument(_clean_title(title), normalize_whitespace(pdf.text), "text", "pdf")


def _load_html(
    data: bytes, filename: str | None, charset: str | None, url: str | None
) -> LoadedDocument:
    if charset is None:
        declared = _META_CHARSET.search(data[:4096])
        charset = declared.group(1).decode("ascii") if declared else None
    page = parse_html(decode_text(data, charset=charset), base_url=url)
    if not page.markdown.strip():
        raise IngestionError("The page has no readable text.")
    title = page.title or _stem(filename) or (url or "")
    return LoadedDocument(
        _clean_title(title), normalize_whitespace(page.markdown), "markdown", "html"
    )


def load_text(data: bytes | str, *, filename: str | None) -> LoadedDocument:
    """Load a Markdown (``.md``, ``.markdown``) or plain-text (``.txt``) document.

    Without a filename (pasted text) the format is sniffed: Markdown when the text opens
    with a heading or holds a fenced code block or several headings, else plain text.
    """
    suffix = PurePath(filename).suffix.lower() if filename else ""
    loader = _BY_SUFFIX.get(suffix) if suffix else None
    if suffix and loader is None:
        raise IngestionError(_unsupported(suffix))
    text = data if isinstance(data, str) else decode_text(data)
    text = normalize_whitespace(text)
    if loader is None:
        loader = _load_markdown if _looks_like_markdown(text) else _load_plain
    doc = loader(text, filename)
    if not doc.text.strip():
        raise IngestionError("The document is empty.")
    return doc


# --- decoding ------------------------------------------------------------------------------

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: its BOM starts with UTF-16-LE's
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_UNDECODABLE = "The file is not readable text (binary, or an unknown encoding)."


def decode_text(data: bytes, *, charset: str | None = None) -> str:
    """Decode uploaded bytes: a BOM decides; else the declared charset when it decodes
    cleanly; else UTF-8; else Windows-1252, then Latin-1.

    Latin-1 accepts any byte string, so binary files are caught by what they decode to:
    NUL bytes or many control characters mean "not text".
    """
    if not data.strip():
        raise IngestionError("The document is empty.")
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return _checked(data.decode(codec))
            except UnicodeDecodeError as exc:
                raise IngestionError(_UNDECODABLE) from exc
    if b"\x00" in data:
        raise IngestionError(_UNDECODABLE)
    codecs_to_try = ["utf-8", "cp1252", "latin-1"]
    if charset:
        # An unknown declared charset: guess as for undeclared ones.
        with contextlib.suppress(LookupError):
            codecs_to_try.insert(0, codecs.lookup(charset).name)
    for codec in codecs_to_try:
        try:
            return _checked(data.decode(codec))
        except UnicodeDecodeError:
            continue
    raise IngestionError(_UNDECODABLE)  # unreachable: latin-1 decodes anything


def _checked(text: str) -> str:
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f\v")
    if "\x00" in text or controls > max(8, len(text) // 100):
        raise IngestionError(_UNDECODABLE)
    return text


# --- formats -------------------------------------------------------------------------------

Loader = Callable[[str, str | None], LoadedDocument]

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_H1 = re.compile(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)
_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.MULTILINE)


def _load_markdown(text: str, filename: str | None) -> LoadedDocument:
    title = ""
    front = _FRONT_MATTER.match(text)
    if front is not None:
        # YAML front matter (Jekyll, Hugo, Docusaurus): metadata, not page text.
        text = text[front.end() :]
        found = _FRONT_TITLE.search(front.group(1))
        if found is not None:
            title = found.group(1).strip("\"'")
    if not title:
        title = heading_text(_first_heading(text)) or _stem(filename)
    return LoadedDocument(_clean_title(title), text.strip(), "markdown", "markdown")


def _first_heading(text: str) -> str:
    """The first level-1 ATX heading outside fenced code, or ""."""
    in_fence = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            found = _H1.match(line)
            if found is not None:
                return found.group(1)
    return ""


def _load_plain(text: str, filename: str | None) -> LoadedDocument:
    title = _stem(filename)
    if not title:
        first_line = next((ln for ln in text.split("\n") if ln.strip()), "")
        title = first_line
    return LoadedDocument(_clean_title(title), text.strip(), "text", "text")


def _looks_like_markdown(text: str) -> bool:
    first = next((ln for ln in text.split("\n") if ln.strip()), "")
    return bool(_ATX.match(first)) or bool(_FENCE.search(text)) or len(_ATX.findall(text)) >= 2


def _stem(filename: str | None) -> str:
    return PurePath(filename).stem if filename else ""


def _clean_title(title: str) -> str:
    title = re.sub(r"\s+", " ", title).strip()
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return title or "Untitled"


_BY_SUFFIX: dict[str, Loader] = {
    ".md": _load_markdown,
    ".markdown": _load_markdown,
    ".txt": _load_plain,
    ".text": _load_plain,
}
