"""Split a document into retrieval chunks that follow its structure.

A chunk is at most ``max_tokens`` tiktoken tokens (``sitechat.tokens``), always; everything
else is best effort in this order:

1. Markdown headings open sections; a chunk never spans two sections and remembers the
   heading path above it (``("Install", "Embedding the widget")``). A level-1 heading equal
   to the document title is left out of the path: the title travels separately.
2. Blocks (paragraph, list, code block, table, quote) stay whole when they fit, and
   adjacent small blocks of a section are packed together up to the budget.
3. A block larger than the budget is split at its natural seams: paragraphs at sentence
   boundaries, lists between items, code and tables between lines; a piece that is still too
   large falls back to word boundaries, then to the longest runs of characters that fit the
   token budget. A split code block is re-fenced and a split table repeats its header row,
   so every piece still reads right.
4. A chunk that continues a section starts with the tail of the previous chunk (whole
   sentences where they fit, else whole words, at most ``overlap_tokens``), so a fact cut
   at a boundary is still retrievable. Code and tables carry no overlap: a fence or header
   would be cut out of context.

Markdown is read as documentation sites write it (ATX and setext headings, fences, lists,
tables, quotes; HTML comments dropped); YAML front matter is the loader's to strip.
Chunk texts hold only document text: no heading or title prefix. The vector store adds the
title and heading path to what BM25 indexes (``sparse.bm25_text``). The function is pure
and deterministic, and CPU-bound on large documents: call it from a worker thread.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from sitechat.tokens import count_tokens

TextFormat = Literal["markdown", "text"]
BlockKind = Literal["prose", "list", "code", "table"]

MIN_MAX_TOKENS = 16


@dataclass(frozen=True, slots=True)
class ChunkDraft:
    """A chunk before it belongs to a stored document (no ids yet)."""

    text: str
    heading_path: tuple[str, ...]
    position: int  # order within the document, from 0
    token_count: int


def chunk_document(
    text: str,
    *,
    title: str,
    fmt: TextFormat,
    max_tokens: int = 300,
    overlap_tokens: int = 50,
) -> list[ChunkDraft]:
    """The chunks of ``text`` in document order; ``[]`` when it holds no text at all."""
    if max_tokens < MIN_MAX_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_MAX_TOKENS}")
    if not 0 <= overlap_tokens <= max_tokens // 2:
        raise ValueError("overlap_tokens must be between 0 and max_tokens // 2")
    text = normalize_whitespace(text)
    sections = _parse_markdown(text, title) if fmt == "markdown" else _parse_text(text)
    drafts: list[ChunkDraft] = []
    for section in sections:
        for chunk_text in _chunk_section(section.blocks, max_tokens, overlap_tokens):
            drafts.append(
                ChunkDraft(
                    text=chunk_text,
                    heading_path=section.path,
                    position=len(drafts),
                    token_count=count_tokens(chunk_text),
                )
            )
    return drafts


# --- normalisation ---------------------------------------------------------------------

_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_ODD_SPACE = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_ODD_NEWLINE = re.compile("\r\n?|[\u2028\u2029\x0b\x0c\x85]")
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
_BLANK_RUN = re.compile(r"\n{3,}")


def normalize_whitespace(text: str) -> str:
    """One newline convention, plain spaces, no invisible or control characters.

    Runs of spaces inside lines are left to the block parser: code needs its indentation.
    """
    text = _ODD_NEWLINE.sub("\n", text)
    text = _INVISIBLE.sub("", text)
    text = _ODD_SPACE.sub(" ", text)
    return _CONTROL.sub("", text)


def _collapse(line: str) -> str:
    return re.sub(r"[ \t]+", " ", line).strip()


# --- parsing into sections of blocks -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Block:
    kind: BlockKind
    text: str  # normalised; for code, the body without fences
    fence: str = ""  # code: the opening fence line, e.g. "```python"


@dataclass(frozen=True, slots=True)
class _Section:
    path: tuple[str, ...]
    blocks: tuple[_Block, ...]


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_LIST_ITEM = re.compile(r"^([ \t]*)(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)")
_TABLE_ROW = re.compile(r"^[ \t]*\|")
_QUOTE = re.compile(r"^ {0,3}>")
_TABLE_RULE = re.compile(r"^\|?[ \t]*:?-{2,}:?[ \t]*(\|[ \t]*:?-{2,}:?[ \t]*)*\|?$")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def heading_text(raw: str) -> str:
    """A heading as plain text: links, code ticks and bold markers removed."""
    text = _LINK.sub(r"\1", raw)
    text = text.replace("`", "").replace("**", "").replace("__", "")
    return _collapse(text)


class _MarkdownParser:
    """A line-based reader of the Markdown that documentation sites are written in.

    Not a full CommonMark parser: it only needs block boundaries and headings right.
    """

    def __init__(self, title: str) -> None:
        self._title = heading_text(title).casefold()
        self._title_seen = False
        self._levels: list[tuple[int, str]] = []
        self._sections: list[_Section] = []
        self._blocks: list[_Block] = []
        self._lines: list[str] = []
        self._kind: Literal["prose", "list", "table", "quote"] | None = None

    def parse(self, text: str) -> list[_Section]:
        lines = text.split("\n")
        i = 0
        while i < len(lines):
            i = self._feed(lines, i)
        self._close_section()
        return self._sections

    def _feed(self, lines: list[str], i: int) -> int:
        """Consume the line at ``i`` (and more, for fenced code); the next index."""
        line = lines[i]
        fence = _FENCE.match(line)
        if fence is not None and not (fence.group(1)[0] == "`" and "`" in fence.group(2)):
            return self._read_fence(lines, i, fence.group(1))
        if line.lstrip().startswith("<!--"):
            return self._skip_comment(lines, i)
        if not line.strip():
            if self._kind == "list" and _list_continues(lines, i + 1):
                self._lines.append("")
            else:
                self._end_block()
            return i + 1
        atx = _ATX.match(line)
        if atx is not None:
            self._heading(len(atx.group(1)), atx.group(2) or "")
            return i + 1
        if self._kind == "prose" and _SETEXT.match(line):
            heading = " ".join(self._lines)
            self._lines = []
            self._heading(1 if line.strip()[0] == "=" else 2, heading)
            return i + 1
        if _RULE.match(line):
            self._end_block()
            return i + 1
        self._add_line(line)
        return i + 1

    def _skip_comment(self, lines: list[str], start: int) -> int:
        """Drop an HTML comment (invisible on the page; Node-style docs keep YAML in them)."""
        i = start
        while i < len(lines) and "-->" not in lines[i]:
            i += 1
        if i >= len(lines):
            return i
        rest = lines[i].split("-->", 1)[1]
        if rest.strip():
            lines[i] = rest  # text after the comment on the same line is still content
            return i
        return i + 1

    def _add_line(self, line: str) -> None:
        if _LIST_ITEM.match(line):
            kind: Literal["prose", "list", "table", "quote"] = "list"
        elif _TABLE_ROW.match(line):
            kind = "table"
        elif _QUOTE.match(line):
            kind = "quote"
        elif self._kind in ("list", "quote"):
            kind = self._kind  # an indented or lazy continuation line
        else:
            kind = "prose"
        if kind != self._kind:
            self._end_block()
            self._kind = kind
        self._lines.append(line)

    def _read_fence(self, lines: list[str], start: int, opener: str) -> int:
        self._end_block()
        body: list[str] = []
        i = start + 1
        while i < len(lines):
            closing = _FENCE.match(lines[i])
            if (
                closing is not None
                and closing.group(1)[0] == opener[0]
                and len(closing.group(1)) >= len(opener)
                and not closing.group(2).strip()
            ):
                i += 1
                break
            body.append(lines[i].rstrip())
            i += 1
        code = "\n".join(body).strip("\n")
        if code.strip():
            self._blocks.append(_Block("code", code, fence=_collapse(lines[start])))
        return i

    def _heading(self, level: int, raw: str) -> None:
        self._end_block()
        text = heading_text(raw)
        if not text:
            return
        self._close_section()
        if level == 1 and not self._title_seen and text.casefold() == self._title:
            # The document's own title: it is carried by the chunk's title already.
            self._title_seen = True
            self._levels = []
            return
        self._levels = [(lvl, name) for lvl, name in self._levels if lvl < level]
        self._levels.append((level, text))

    def _end_block(self) -> None:
        if self._lines and self._kind is not None:
            block = _make_block(self._kind, self._lines)
            if block is not None:
                self._blocks.append(block)
        self._lines = []
        self._kind = None

    def _close_section(self) -> None:
        self._end_block()
        if self._blocks:
            path = tuple(name for _, name in self._levels)
            self._sections.append(_Section(path, tuple(self._blocks)))
        self._blocks = []


def _list_continues(lines: list[str], j: int) -> bool:
    """After a blank line, does the list go on (a loose list) or has it ended?"""
    while j < len(lines) and not lines[j].strip():
        j += 1
    if j >= len(lines):
        return False
    return bool(_LIST_ITEM.match(lines[j])) or lines[j][:1] in (" ", "\t")


def _make_block(
    kind: Literal["prose", "list", "table", "quote"], lines: list[str]
) -> _Block | None:
    if kind == "list":
        indents = [len(ln) - len(ln.lstrip(" \t")) for ln in lines if ln.strip()]
        base = min(indents, default=0)
        kept = [_indent_then_collapse(ln[base:]) for ln in lines]
        text = "\n".join(kept)
        text = _BLANK_RUN.sub("\n\n", text).strip("\n")
        return _Block("list", text) if text.strip() else None
    collapsed = [_collapse(ln) for ln in lines]
    text = "\n".join(ln for ln in collapsed if ln)
    if not text:
        return None
    return _Block("table" if kind == "table" else "prose", text)


def _indent_then_collapse(line: str) -> str:
    stripped = line.lstrip(" \t")
    indent = line[: len(line) - len(stripped)].replace("\t", "    ")
    return indent + _collapse(stripped) if stripped else ""


def _parse_markdown(text: str, title: str) -> list[_Section]:
    return _MarkdownParser(title).parse(text)


def _parse_text(text: str) -> list[_Section]:
    blocks: list[_Block] = []
    for paragraph in re.split(r"\n[ \t]*\n", text):
        block = _make_block("prose", paragraph.split("\n"))
        if block is not None:
            blocks.append(block)
    return [_Section((), tuple(blocks))] if blocks else []


# --- splitting blocks that are too large -------------------------------------------------

# Each splitter cuts a text into consecutive slices whose concatenation is the text itself,
# so packing slices back together never changes a character.
Splitter = Callable[[str], list[str]]
Render = Callable[[str], str]
Trim = Callable[[str], str]

# Sentence ends (ASCII and CJK), optional closing quotes or brackets, then whitespace that is
# not followed by a lowercase letter (so "e.g. the" stays whole); every newline is a seam too.
_SENTENCE_END = re.compile("[.!?\u2026\u3002\uff01\uff1f][\"')\\]\u201d\u2019]*\\s++(?![a-z])|\n")
_WHITESPACE = re.compile(r"\s+")


def _cut(text: str, cuts: Sequence[int]) -> list[str]:
    bounds = [0, *(c for c in cuts if 0 < c < len(text)), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def sentences(text: str) -> list[str]:
    """Sentence (and line) slices of ``text``, trailing whitespace attached."""
    return _cut(text, [m.end() for m in _SENTENCE_END.finditer(text)])


def _words(text: str) -> list[str]:
    return _cut(text, [m.end() for m in _WHITESPACE.finditer(text)])


def _lines(text: str) -> list[str]:
    return _cut(text, [m.end() for m in re.finditer(r"\n", text)])


def _list_items(text: str) -> list[str]:
    starts = [m.start() for m in re.finditer(r"(?m)^(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)", text)]
    return _cut(text, starts)


_SPLITTERS: dict[BlockKind, tuple[Splitter, ...]] = {
    "prose": (sentences, _words),
    "list": (_list_items, sentences, _words),
    "code": (_lines, _words),
    "table": (_lines, _words),
}


def _identity(text: str) -> str:
    return text


def _trim_newlines(text: str) -> str:
    return text.strip("\n")


def _fits(text: str, budget: int) -> bool:
    # A text has at least len(utf-8 bytes) / 8 tokens in practice, but never more tokens
    # than bytes: skip the tokenizer when the byte length alone decides.
    return len(text.encode()) <= budget or count_tokens(text) <= budget


def _fit(
    text: str,
    budget: int,
    levels: Sequence[Splitter],
    render: Render,
    trim: Trim = str.strip,
) -> list[str]:
    """Rendered pieces of ``text``, each at most ``budget`` tokens, in order.

    ``trim`` cleans the edges of a piece: code keeps the indentation of its first line.
    """
    whole = trim(text)
    if not whole.strip():
        return []
    if _fits(render(whole), budget):
        return [render(whole)]
    if not levels:
        return _hard_split(whole, budget, render, trim)
    out: list[str] = []
    current = ""
    for piece in levels[0](text):
        if _fits(render(trim(current + piece)), budget):
            current += piece
            continue
        if trim(current).strip():
            out.append(render(trim(current)))
        if _fits(render(trim(piece)), budget):
            current = piece
        else:
            out.extend(_fit(piece, budget, levels[1:], render, trim))
            current = ""
    if trim(current).strip():
        out.append(render(trim(current)))
    return out


def _hard_split(text: str, budget: int, render: Render, trim: Trim) -> list[str]:
    """Last resort for a run without spaces: the longest prefixes that fit, by bisection.

    Cutting between characters (not token ids) never splits a multi-byte character.
    """
    out: list[str] = []
    rest = trim(text)
    while rest:
        lo, hi = 1, len(rest)  # a single character always fits: budget >= MIN_MAX_TOKENS
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _fits(render(trim(rest[:mid])), budget):
                lo = mid
            else:
                hi = mid - 1
        piece = trim(rest[:lo])
        if piece.strip():
            out.append(render(piece))
        rest = trim(rest[lo:])
    return out


def _block_parts(block: _Block, budget: int, overlap: int) -> list[str]:
    """The block whole if it fits, else its pieces (each fits the budget)."""
    if block.kind == "code":
        fence = block.fence
        closer = re.match(r"[`~]+", fence)
        close = closer.group(0) if closer else "```"

        def fenced(body: str) -> str:
            return f"{fence}\n{body}\n{close}"

        # With a tiny budget the fences would eat it: split the bare code instead.
        render: Render = fenced if count_tokens(fenced("x")) * 4 <= budget else _identity
        return _fit(block.text, budget, _SPLITTERS["code"], render, _trim_newlines)
    if block.kind == "table":
        rows = block.text.split("\n")
        if len(rows) > 2 and _TABLE_RULE.match(rows[1]):
            header = "\n".join(rows[:2])
            if count_tokens(header) * 2 <= budget:

                def with_header(body: str) -> str:
                    return f"{header}\n{body}"

                return _fit("\n".join(rows[2:]), budget, _SPLITTERS["table"], with_header)
    if _fits(block.text, budget):
        return [block.text]
    # Pieces of a split paragraph or list leave room for the overlap that continuation
    # chunks open with; otherwise every piece would fill the budget and no overlap would fit.
    piece_budget = max(budget - overlap - 2, budget // 2)
    return _fit(block.text, piece_budget, _SPLITTERS[block.kind], _identity)


# --- packing a section's blocks into chunks ----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Part:
    text: str
    block: int  # index of the block it comes from within its section
    kind: BlockKind


@dataclass(frozen=True, slots=True)
class _Overlap:
    text: str
    block: int  # the block the tail was cut from


def _chunk_section(blocks: Sequence[_Block], budget: int, overlap: int) -> list[str]:
    parts = [
        _Part(text, index, block.kind)
        for index, block in enumerate(blocks)
        for text in _block_parts(block, budget, overlap)
    ]
    chunks: list[str] = []
    prefix: _Overlap | None = None
    current: list[_Part] = []
    for part in parts:
        if current and _fits(_join(prefix, [*current, part]), budget):
            current.append(part)
            continue
        if current:
            chunks.append(_join(prefix, current))
            prefix = _overlap_prefix(chunks[-1], current[-1], part, budget, overlap)
        current = [part]
    if current:
        chunks.append(_join(prefix, current))
    return chunks


def _join(prefix: _Overlap | None, parts: Sequence[_Part]) -> str:
    body = "\n\n".join(part.text for part in parts).strip()
    if prefix is None:
        return body
    first = parts[0]
    # A chunk that continues a split block gets no paragraph break in the middle of it.
    continues = prefix.block == first.block
    glue = ("\n" if first.kind == "list" else " ") if continues else "\n\n"
    return f"{prefix.text}{glue}{body}"


def _overlap_prefix(
    previous: str, last: _Part, nxt: _Part, budget: int, overlap: int
) -> _Overlap | None:
    """The tail of ``previous`` to open the next chunk with, if any fits."""
    if overlap <= 0 or last.kind in ("code", "table") or nxt.kind in ("code", "table"):
        return None
    room = min(overlap, budget - count_tokens(nxt.text) - 1)
    tail = _tail(previous, room)
    if not tail:
        return None
    prefix = _Overlap(tail, last.block)
    return prefix if _fits(_join(prefix, [nxt]), budget) else None


def _tail(text: str, budget: int) -> str:
    """The longest run of whole sentences (else whole words) ending ``text`` within budget."""
    if budget <= 0:
        return ""
    for splitter in (sentences, _words):
        pieces = splitter(text)
        best = ""
        for start in range(len(pieces) - 1, -1, -1):
            candidate = "".join(pieces[start:]).strip()
            if not _fits(candidate, budget):
                break
            best = candidate
        if best:
            return best
    return ""
