"""The extractive model: answers by quoting the retrieved passages, with no language model.

It is the always-available provider (no key, no weights) and the fallback when the others
fail. Deterministic: the same question and passages give the same answer, word for word.

The answer is the few sentences of the passages that share the most (rarity-weighted) terms
with the question, each followed by the citation marker of its passage, e.g. ``... [2]``.
Ties go to the earlier passage, then the earlier sentence. Chosen sentences are told in
document order so that sentences from one passage read as they were written. A fenced code
block is one unit, quoted whole with its lines; a chosen sentence that introduces one ("paste
this tag before </body>:") brings it along.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass

import anyio.lowlevel

from sitechat.llm.base import (
    ChatMessage,
    ContextPassage,
    GenerationRequest,
    StreamItem,
    TextDelta,
    Usage,
)
from sitechat.text import terms
from sitechat.tokens import count_tokens

NOT_COVERED = "I couldn't find that in the documents I have, so I can't answer it reliably."

MAX_SENTENCES = 3
# A sentence must score at least this share of the best one to be told alongside it.
RELATIVE_CUTOFF = 0.5

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Sentence ends: . ! ? then space and a capital, digit or opening quote/bracket (so "9 a.m. on"
# stays whole), a blank line, or a line break (lists and headings) unless the next line goes
# on in lower case: prose wrapped at a fixed width ("paste one script tag into your page, just
# before\nthe closing </body> tag") is one sentence.
_SENTENCE_END = re.compile(
    r"(?<=[.!?])\s+(?=[A-ZÀ-ÖØ-Þ0-9\"'\u201c\u2018(\[])"
    r"|\s*\n[ \t]*\n\s*"
    r"|\s*\n[ \t]*+(?![a-zß-öø-ÿ])"
)
_WRAP = re.compile(r"[ \t]*\n[ \t]*")
_CODE_BLOCK = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n.*?^ {0,3}\1[ \t]*$", re.M | re.S)
# A code block is quoted with a sentence that introduces it when it takes at most this many
# tokens.
MAX_CODE_TOKENS = 200


@dataclass(frozen=True, slots=True)
class _Sentence:
    passage_index: int
    sentence_index: int
    number: int  # the passage's citation number
    text: str
    terms: frozenset[str]
    code: bool = False  # a fenced code block, quoted whole


class ExtractiveModel:
    def __init__(self, *, name: str = "extractive", context_window: int = 8192) -> None:
        self.name = name
        self.context_window = context_window
        self.max_passages: int | None = None
        self.max_answer_tokens: int | None = None

    async def aclose(self) -> None:
        return None

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        answer = compose_answer(request.question, request.passages, request.max_tokens)
        for word in re.findall(r"\S+\s*", answer):
            yield TextDelta(word)
            # No artificial delay, but give the loop a turn so the answer streams.
            await anyio.lowlevel.checkpoint()
        yield Usage(
            prompt_tokens=_prompt_tokens(request.messages),
            completion_tokens=count_tokens(answer),
            source="estimated",
            model=self.name,
        )


def compose_answer(question: str, passages: Sequence[ContextPassage], max_tokens: int) -> str:
    """The extractive answer as one string (what ``stream`` sends, word by word)."""
    chosen = select_sentences(question, passages, max_tokens)
    if not chosen:
        return NOT_COVERED
    parts: list[str] = []
    for s in chosen:
        if s.code:  # on lines of its own, after the citation of the sentence before it
            parts.append(f"\n{s.text}\n")
        else:
            space = " " if parts and not parts[-1].endswith("\n") else ""
            parts.append(f"{space}{s.text} [{s.number}]")
    return "".join(parts).strip()


def select_sentences(
    question: str, passages: Sequence[ContextPassage], max_tokens: int
) -> list[_Sentence]:
    wanted = terms(question)
    sentences = list(_sentences(passages))
    if not wanted or not sentences:
        return []
    # Rarer terms say more about which sentence answers: weight each by its idf.
    doc_freq = {t: sum(1 for s in sentences if t in s.terms) for t in wanted}
    weight = {t: 1.0 + math.log(len(sentences) / df) for t, df in doc_freq.items() if df}
    scored = [(sum(weight.get(t, 0.0) for t in s.terms & wanted), s) for s in sentences]
    scored = [(score, s) for score, s in scored if score > 0]
    if not scored:
        return []
    scored.sort(key=lambda item: (-item[0], item[1].passage_index, item[1].sentence_index))
    best = scored[0][0]
    chosen: list[_Sentence] = []
    seen: set[str] = set()
    budget = max(max_tokens, 1)
    for score, sentence in scored:
        if len(chosen) == MAX_SENTENCES or score < best * RELATIVE_CUTOFF:
            break
        key = " ".join(_WORD.findall(sentence.text.lower()))
        if key in seen:
            continue
        cost = count_tokens(f"{sentence.text} [{sentence.number}] ")
        if chosen and cost > budget:
            continue
        seen.add(key)
        chosen.append(sentence)
        budget -= cost
        if budget <= 0:
            break
    chosen.sort(key=lambda s: (s.passage_index, s.sentence_index))
    return _with_code(chosen, sentences, budget)


def _with_code(chosen: list[_Sentence], sentences: list[_Sentence], budget: int) -> list[_Sentence]:
    """``chosen``, each sentence ending in a colon followed by the code block right after it
    in its passage (when the block fits in ``budget`` and ``MAX_CODE_TOKENS``)."""
    following = {
        (a.passage_index, a.sentence_index): b
        for a, b in itertools.pairwise(sentences)
        if b.code and b.passage_index == a.passage_index
    }
    out: list[_Sentence] = []
    for sentence in chosen:
        out.append(sentence)
        block = following.get((sentence.passage_index, sentence.sentence_index))
        if block is None or sentence.code or not sentence.text.endswith(":"):
            continue
        cost = count_tokens(block.text)
        if cost <= min(budget, MAX_CODE_TOKENS) and block not in chosen:
            out.append(block)
            budget -= cost
    return out


def _sentences(passages: Sequence[ContextPassage]) -> Iterable[_Sentence]:
    for p_index, passage in enumerate(passages):
        units: list[tuple[str, bool]] = []
        start = 0
        for block in _CODE_BLOCK.finditer(passage.text):
            units += [(part, False) for part in _prose(passage.text[start : block.start()])]
            units.append((block.group(0).strip("\n"), True))
            start = block.end()
        units += [(part, False) for part in _prose(passage.text[start:])]
        for s_index, (text, code) in enumerate(units):
            yield _Sentence(p_index, s_index, passage.number, text, terms(text), code)


def _prose(text: str) -> list[str]:
    parts = (_WRAP.sub(" ", part.strip()) for part in _SENTENCE_END.split(text))
    return [part for part in parts if part]


def _prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    return sum(count_tokens(m.content) + 3 for m in messages) + 3
