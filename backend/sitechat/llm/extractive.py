"""The extractive model: answers by quoting the retrieved passages, with no language model.

It is the always-available provider (no key, no weights) and the fallback when the others
fail. Deterministic: the same question and passages give the same answer, word for word.

The answer is the few sentences of the passages that share the most (rarity-weighted) terms
with the question, each followed by the citation marker of its passage, e.g. ``... [2]``.
Ties go to the earlier passage, then the earlier sentence. Chosen sentences are told in
document order so that sentences from one passage read as they were written.
"""

from __future__ import annotations

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
# stays whole), or a line break (lists and headings).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÀ-ÖØ-Þ0-9\"'\u201c\u2018(\[])|\s*\n+\s*")


@dataclass(frozen=True, slots=True)
class _Sentence:
    passage_index: int
    sentence_index: int
    number: int  # the passage's citation number
    text: str
    terms: frozenset[str]


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
    return " ".join(f"{s.text} [{s.number}]" for s in chosen)


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
    return chosen


def _sentences(passages: Sequence[ContextPassage]) -> Iterable[_Sentence]:
    for p_index, passage in enumerate(passages):
        parts = (part.strip() for part in _SENTENCE_END.split(passage.text))
        for s_index, text in enumerate(part for part in parts if part):
            yield _Sentence(p_index, s_index, passage.number, text, terms(text))


def _prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    return sum(count_tokens(m.content) + 3 for m in messages) + 3
