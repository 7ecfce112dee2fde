"""Keep the facts: a small model's answer, checked against its passages as it streams.

SmolLM2-135M, the no-key default, paraphrases its passages and loses or changes what matters
(a price, a duration, a name): on the quality sets its answers held the expected fact less
often than the extractive quote of the same passages. ``keep_facts`` wraps its stream:

1. Text is passed on a sentence at a time. A sentence goes out only when every number,
   every URL and every code span (`` `send_to()` ``) in it is written in the passages or the
   question; the first one that is not ends the generated part (what the model writes after
   it is dropped). A fenced code block goes out whole when every line is quoted from them
   (``sitechat.code_guard``); an invented one ends the generated part the same way.
2. When the answer ends, the extractive answer (``llm.extractive``: the sentences of the
   passages that best match the question) says what the facts are. If the generated part
   lacks them, the extractive answer is added after it, or is the whole answer when nothing
   generated held. So an answer keeps the fact whenever the extractive one has it. It lacks
   them when it misses one of the extractive answer's figures (numbers standing on their
   own: "14 days", "6.50"; not a model name like "T3", nor a list item's number), or, when
   there are none, more than a quarter of its terms that are not the question's (negations
   aside); or when one says no ("not", "never", "without") and the other does not ("Yes,
   there are fees" against "We do not charge late fees").
3. A sentence of some length said a second time means the model is looping: the generated
   part ends there, the model is stopped, and the quote completes the answer as in 2. (The
   pipeline's own repetition guard would stop the stream too, but before the quote.)

The price is latency: a sentence is shown when it is complete, not word by word.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator

from sitechat.code_guard import CodeGuard
from sitechat.llm.base import GenerationRequest, StreamItem, TextDelta
from sitechat.llm.extractive import NOT_COVERED, compose_answer
from sitechat.text import terms

# A sentence ends at . ! ? followed by a space, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_CITATION = re.compile(r"\[\d+\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# A figure stands on its own: "14 days", "6.50 euros", not "T3" or "E21" (names).
_FIGURE = re.compile(r"(?<![^\W\d_])\d+(?:[.,]\d+)*(?![^\W\d_])")
_NEGATION = re.compile(
    r"\b(?:no|not|never|none|nothing|nobody|cannot|without)\b|n['\u2019]t\b", re.IGNORECASE
)
# A list item's number ("2. Bring them in") is no figure.
_LIST_MARKER = re.compile(r"^[ \t]*\d+[.)](?=\s)", re.MULTILINE)
_URL = re.compile(r"https?://[^\s)\]>\"']+")
# A code span, as the widget's Markdown reads one (``widget/src/markdown.js``).
_CODE_SPAN = re.compile(r"(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)")
# Share of the extractive answer's own terms a generated answer must contain: three quarters,
# so a paraphrase may drop a word like "must". At half, "You cannot install the T3 without a
# C-wire, which supplies power" passed for "Without a C-wire, install the Lumen Power Adapter"
# (two of lumen, power, adapter), and the quote that holds the answer was left out.
TERM_SHARE = 0.75
# A sentence this long said twice: the model is looping (as ``chat.guard`` sees it).
MIN_REPEATED_CHARS = 24


def _numbers(text: str, pattern: re.Pattern[str] = _NUMBER) -> set[str]:
    """The numbers of ``text`` outside its citations, "6,50" written "6.50"; ``_FIGURE`` for
    only those standing on their own."""
    text = _LIST_MARKER.sub(" ", _CITATION.sub(" ", text))
    return {n.replace(",", ".").rstrip(".") for n in pattern.findall(text)}


def holds(sentence: str, source: str) -> bool:
    """Whether every number, URL and code span of ``sentence`` is written in ``source`` (a
    code span's spaces aside)."""
    if any(url.rstrip(".,;:") not in source for url in _URL.findall(sentence)):
        return False
    spans = [_squeeze(m.group(2)) for m in _CODE_SPAN.finditer(sentence)]
    if spans:
        squeezed = _squeeze(source)
        if any(span not in squeezed for span in spans):
            return False
    return _numbers(_URL.sub(" ", sentence)) <= _numbers(source)


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _says_no(text: str) -> bool:
    return bool(_NEGATION.search(text))


def has_facts(answer: str, extractive: str, question: str) -> bool:
    """Whether ``answer`` carries what the extractive answer says beyond the question: all
    its figures (or, without figures, three quarters of its own terms), and the same yes or no."""
    if _says_no(answer) != _says_no(extractive):
        return False
    figures = _numbers(extractive, _FIGURE) - _numbers(question, _FIGURE)
    if figures:  # the figures are the facts
        return figures <= _numbers(answer, _FIGURE)
    # Negations are the yes or no above, not content.
    own = {t for t in terms(_CITATION.sub(" ", extractive)) - terms(question) if not _says_no(t)}
    if not own:
        return True
    return len(own & terms(answer)) >= TERM_SHARE * len(own)


async def keep_facts(
    items: AsyncIterator[StreamItem], request: GenerationRequest
) -> AsyncGenerator[StreamItem, None]:
    source = request.question + "\n" + "\n".join(p.text for p in request.passages)
    code = CodeGuard(source)
    pending = ""
    shown: list[str] = []
    seen: set[str] = set()
    held = True  # every sentence so far was backed by the passages
    async for item in items:
        if not isinstance(item, TextDelta):
            # The usage: the model's own tokens (the quote added below costs nothing).
            if held:
                pending += code.flush()
                held = not code.removed
            if held and pending.strip():
                if holds(pending, source):
                    shown.append(pending)
                    yield TextDelta(pending)
                pending = ""
            async for extra in _complete(shown, request):
                yield extra
            yield item
            return
        if not held:
            continue
        pending += code.feed(item.text)
        *done, pending = _split(pending)
        looping = False
        for sentence in done:
            key = " ".join(sentence.lower().split())
            looping = len(key) >= MIN_REPEATED_CHARS and key in seen
            if looping or not holds(sentence, source):
                held = False
                break
            seen.add(key)
            shown.append(sentence)
            yield TextDelta(sentence)
        if code.removed:  # an invented code block: the generated part ends before it
            held = False
        if looping:
            # The model repeats itself: stop it now (the caller closing this stream stops
            # its thread) and finish with the quote. Its usage is unknown: the caller
            # estimates it.
            async for extra in _complete(shown, request):
                yield extra
            return
    # The stream ended without usage: finish all the same.
    if held:
        pending += code.flush()
        held = not code.removed
    if held and pending.strip() and holds(pending, source):
        shown.append(pending)
        yield TextDelta(pending)
    async for extra in _complete(shown, request):
        yield extra


def _split(text: str) -> list[str]:
    """``text`` cut after each sentence end, the separators kept with their sentence; the
    last element is the unfinished rest."""
    parts: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        parts.append(text[start : match.end()])
        start = match.end()
    parts.append(text[start:])
    return parts


async def _complete(
    shown: list[str], request: GenerationRequest
) -> AsyncGenerator[TextDelta, None]:
    answer = "".join(shown)
    extractive = compose_answer(request.question, request.passages, request.max_tokens)
    if extractive == NOT_COVERED or has_facts(answer, extractive, request.question):
        if not answer.strip():  # nothing generated held, and nothing to quote either
            yield TextDelta(extractive)
        return
    yield TextDelta(f"\n\n{extractive}" if answer.strip() else extractive)
