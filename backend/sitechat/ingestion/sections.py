"""Reading a document's text into sections of blocks, for ``chunking`` to pack.

Whitespace is normalised first (odd spaces, invisible characters, line separators). Then
Markdown headings open sections, each remembering its heading path, and the text between
them becomes blocks: paragraphs, lists, code blocks, tables and quotes, each kept whole.
Plain text has no headings: one section whose blocks are its paragraphs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

BlockKind = Literal["prose", "list", "code", "table"]

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
class Block:
    kind: BlockKind
    text: str  # normalised; for code, the body without fences
    fence: str = ""  # code: the opening fence line, e.g. "```python"


@dataclass(frozen=True, slots=True)
class Section:
    path: tuple[str, ...]
    blocks: tuple[Block, ...]


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_LIST_ITEM = re.compile(r"^([ \t]*)(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)")
_TABLE_ROW = re.compile(r"^[ \t]*\|")
_QUOTE = re.compile(r"^ {0,3}>")
TABLE_RULE = re.compile(r"^\|?[ \t]*:?-{2,}:?[ \t]*(\|[ \t]*:?-{2,}:?[ \t]*)*\|?$")
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
        self._sections: list[Section] = []
        self._blocks: list[Block] = []
        self._lines: list[str] = []
        self._kind: Literal["prose", "list", "table", "quote"] | None = None

    def parse(self, text: str) -> list[Section]:
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
            self._blocks.append(Block("code", code, fence=_collapse(lines[start])))
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
            self._sections.append(Section(path, tuple(self._blocks)))
        self._blocks = []


def _list_continues(lines: list[str], j: int) -> bool:
    """After a blank line, does the list go on (a loose list) or has it ended?"""
    while j < len(lines) and not lines[j].strip():
        j += 1
    if j >= len(lines):
        return False
    return bool(_LIST_ITEM.match(lines[j])) or lines[j][:1] in (" ", "\t")


def _make_block(kind: Literal["prose", "list", "table", "quote"], lines: list[str]) -> Block | None:
    if kind == "list":
        indents = [len(ln) - len(ln.lstrip(" \t")) for ln in lines if ln.strip()]
        base = min(indents, default=0)
        kept = [_indent_then_collapse(ln[base:]) for ln in lines]
        text = "\n".join(kept)
        text = _BLANK_RUN.sub("\n\n", text).strip("\n")
        return Block("list", text) if text.strip() else None
    collapsed = [_collapse(ln) for ln in lines]
    text = "\n".join(ln for ln in collapsed if ln)
    if not text:
        return None
    return Block("table" if kind == "table" else "prose", text)


def _indent_then_collapse(line: str) -> str:
    stripped = line.lstrip(" \t")
    indent = line[: len(line) - len(stripped)].replace("\t", "    ")
    return indent + _collapse(stripped) if stripped else ""


def parse_markdown(text: str, title: str) -> list[Section]:
    return _MarkdownParser(title).parse(text)


def parse_text(text: str) -> list[Section]:
    blocks: list[Block] = []
    for paragraph in re.split(r"\n[ \t]*\n", text):
        block = _make_block("prose", paragraph.split("\n"))
        if block is not None:
            blocks.append(block)
    return [Section((), tuple(blocks))] if blocks else []
