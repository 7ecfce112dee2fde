"""Turn an uploaded file (or pasted text) into a titled document ready for chunking.

Each supported type is one small function from decoded input to ``LoadedDocument``,
registered by file suffix in ``_BY_SUFFIX``. HTML, PDF and URL loaders slot in the same way:
they produce Markdown or plain text (``fmt``) and say what they came from (``source_type``).

Problems with the input are ``IngestionError`` with a message safe to show the uploader.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

from sitechat.errors import IngestionError
from sitechat.retrieval.chunking import TextFormat, heading_text, normalize_whitespace

SourceType = Literal["text", "markdown", "html", "pdf", "url"]

MAX_TITLE_CHARS = 200


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    title: str
    text: str  # normalised line endings and spaces, front matter removed
    fmt: TextFormat  # how ``chunk_document`` should read ``text``
    source_type: SourceType = "text"


def load_text(data: bytes | str, *, filename: str | None) -> LoadedDocument:
    """Load a Markdown (``.md``, ``.markdown``) or plain-text (``.txt``) document.

    Without a filename (pasted text) the format is sniffed: Markdown when the text opens
    with a heading or holds a fenced code block or several headings, else plain text.
    """
    suffix = PurePath(filename).suffix.lower() if filename else ""
    loader = _BY_SUFFIX.get(suffix) if suffix else None
    if suffix and loader is None:
        raise IngestionError(f"Unsupported file type {suffix!r}: upload .md or .txt.")
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


def decode_text(data: bytes) -> str:
    """Decode uploaded bytes: a BOM decides; else UTF-8; else Windows-1252, then Latin-1.

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
    for codec in ("utf-8", "cp1252", "latin-1"):
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
