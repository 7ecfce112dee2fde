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

from sitechat.ingestion.sections import (
    TABLE_RULE,
    Block,
    BlockKind,
    normalize_whitespace,
    parse_markdown,
    parse_text,
)
from sitechat.tokens import count_tokens

TextFormat = Literal["markdown", "text"]

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
    sections = parse_markdown(text, title) if fmt == "markdown" else parse_text(text)
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


def _block_parts(block: Block, budget: int, overlap: int) -> list[str]:
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
        if len(rows) > 2 and TABLE_RULE.match(rows[1]):
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


def _chunk_section(blocks: Sequence[Block], budget: int, overlap: int) -> list[str]:
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
