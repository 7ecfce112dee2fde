"""The code guard: a code block in an answer must be quoted from the documents.

Models invent code: asked "How do I embed the widget?", a small model behind an
OpenAI-compatible server wrote jQuery that no page of the site shows, and SmolLM2 answered a
question about notifications with ``from django.contrib import admin``. A visitor pastes
what a website's assistant gives them, so code is held to a stricter rule than prose: it
must be *quoted*. A fenced block (a line opening with at least three backticks or tildes,
indented by at most three spaces, as CommonMark and the widget's Markdown read it) is held
back as it streams until its closing fence, then judged against the passages and the
question: it is kept, whole, when every line of it that holds a letter or a digit is written
there (spaces aside, so re-indented or re-wrapped code passes; lines of brackets alone always
do); otherwise it is removed, whole. A block that never closes is judged when the answer
ends. One that grows past ``MAX_CODE`` characters is removed to its end: no answer quotes
that much.

Inline code (`` `like this` ``) is prose's business: hosted models write ``POST /api/...``
in their own sentences. The no-key local model is held tighter by ``llm.fact_check``, which
ends its answer at a sentence whose code span is in no passage.

Streaming costs nothing outside code: text passes through at once, except a line's first
characters while they may still open a fence (spaces, one or two backticks or tildes).
What ``feed`` and ``flush`` return, concatenated, is what the visitor sees and what is stored.
"""

from __future__ import annotations

import re
import zlib

MAX_CODE = 6000  # characters of one block, fences included

_OPENING = re.compile(r" {0,3}(`{3,}|~{3,})")
_MAY_OPEN = re.compile(r" {0,3}(?:`{0,2}|~{0,2})")  # fullmatch: a fence may still follow
_HAS_CONTENT = re.compile(r"\w")
_LINES = re.compile(r"[^\n]*\n|[^\n]+")  # each line with its end, then an unfinished one


def _squeeze(text: str) -> str:
    return "".join(text.split())


class CodeGuard:
    """Filters one answer's text as it streams; see the module docstring."""

    __slots__ = (
        "_at_line_start",
        "_block",
        "_dropping",
        "_fence",
        "_line",
        "_lines",
        "_max_code",
        "_size",
        "_source",
        "_squeezed",
        "removed",
    )

    def __init__(self, source: str, *, max_code: int = MAX_CODE) -> None:
        # Kept compressed: an answer waiting on a silent model holds little else (the
        # memory per idle stream, ``make bench load``), and most answers hold no code.
        self._source = zlib.compress(_squeeze(source).encode("utf-8"), 1)
        self._squeezed: str | None = None  # the source itself, once a block needs it
        self._max_code = max_code
        self._line = ""  # held: the start of a line that may open a fence, or a block's line
        self._at_line_start = True
        self._fence = ""  # the open block's fence ("```", "~~~~"), "" outside a block
        self._block: list[str] = []  # the open block's complete lines, its fence first
        self._lines = 0  # how many lines the open block has had (kept or not)
        self._size = 0
        self._dropping = False  # the open block grew past ``max_code``: removed to its end
        self.removed = 0  # blocks removed so far

    @property
    def holding(self) -> bool:
        return bool(self._line or self._fence)

    def feed(self, text: str) -> str:
        """Add streamed text; what may be shown now."""
        if not self._fence and not self._at_line_start and "\n" not in text:
            return text  # the middle of a line of prose: most tokens
        return self._scan(text, final=False)

    def flush(self) -> str:
        """The answer ended (or stopped, or failed): what was held, judged as final."""
        return self._scan("", final=True)

    def _scan(self, text: str, *, final: bool) -> str:
        out: list[str] = []
        for piece in _LINES.findall(text):
            if self._fence:
                self._in_block(piece, out)
            elif self._at_line_start:
                self._line += piece
                self._line_start(out)
            else:
                out.append(piece)
                self._at_line_start = piece.endswith("\n")
        if final:
            if self._fence:
                if self._line:
                    self._block.append(self._line)
                out.append("" if self._dropping else self._judged(closed=False))
                self._reset_block()
            elif self._line:
                out.append(self._line)
            self._line = ""
            self._at_line_start = True
        return "".join(out)

    def _line_start(self, out: list[str]) -> None:
        body = self._line.rstrip("\r\n")
        complete = self._line.endswith("\n")
        opening = _OPENING.match(body)
        if opening and opening.end() == len(body) and not complete:
            return  # hold: the fence may be longer yet ("```" then "`")
        if opening:  # a block opens: its fence line (with any info string) is the first
            self._fence = opening.group(1)
            line, self._line = self._line, ""
            self._size = 0
            self._in_block(line, out)
        elif not complete and _MAY_OPEN.fullmatch(body):
            return  # hold: the next characters decide
        else:
            out.append(self._line)
            self._at_line_start = self._line.endswith("\n")
            self._line = ""

    def _in_block(self, piece: str, out: list[str]) -> None:
        self._size += len(piece)
        if self._size > self._max_code and not self._dropping:
            self._dropping = True
            self.removed += 1
            self._block.clear()
        self._line += piece
        if not self._line.endswith("\n"):
            if self._dropping:
                self._line = self._line[-len(self._fence) - 8 :]  # enough to see the fence
            return
        line, self._line = self._line, ""
        closes = self._lines > 0 and _closes(line, self._fence)
        self._lines += 1
        if not self._dropping:
            self._block.append(line)
        if closes:
            out.append("" if self._dropping else self._judged(closed=True))
            self._reset_block()
            self._at_line_start = True

    def _judged(self, *, closed: bool) -> str:
        """The block, when every line of its code is quoted; else nothing."""
        code = self._block[1:-1] if closed else self._block[1:]
        if self._squeezed is None:
            self._squeezed = zlib.decompress(self._source).decode("utf-8")
        source = self._squeezed
        if all(_squeeze(line) in source for line in code if _HAS_CONTENT.search(line)):
            return "".join(self._block)
        self.removed += 1
        return ""

    def _reset_block(self) -> None:
        self._fence = ""
        self._block = []
        self._lines = 0
        self._size = 0
        self._dropping = False


def _closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a block opened by ``fence`` (the same character, at least as
    many, nothing after them but spaces)."""
    body = line.strip(" \r\n")
    return (
        len(line) - len(line.lstrip(" ")) <= 3
        and len(body) >= len(fence)
        and set(body) == {fence[0]}
    )
