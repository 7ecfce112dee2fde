"""Query enhancement: turn a follow-up into a standalone search query.

"and how much does it cost?" retrieves nothing useful on its own. Two strategies, one
result (``EnhancedQuery``); the visitor's own words are what the model answers, only
retrieval sees the enhanced query:

- **Model rewrite** (``QueryEnhancer`` with a model that can rewrite, by default the
  ``openai`` provider): the chatbot's own model reads the recent history and writes the
  standalone query, and optionally a few alternative phrasings (*variants*) that are
  searched together with it. Collected from the model's stream, at temperature 0.
- **Heuristic** (``enhance_query``): detect a follow-up and add the content terms of the
  previous user turn to the message. A message is a follow-up when it is short (at most
  ``FOLLOW_UP_MAX_TERMS`` content terms) and either opens like a continuation ("and",
  "what about", "also", ...) or leans on a pronoun ("it", "that", "they", ...).

Only messages that may depend on the conversation are rewritten: there is history, and the
message is short or reads as a follow-up. A long, self-contained question goes to search as
it is, at no cost.

The rewrite is bounded: after ``timeout_seconds`` it is abandoned (its HTTP stream closed)
and the heuristic answers instead, so enhancement never delays the first token by more
than that bound. Meanwhile the pipeline searches with the raw message speculatively, so
when the rewrite changes nothing, its search is already done. Rewrites are cached per
chatbot, model, recent history and message (``cache_size`` entries, ``cache_ttl_seconds``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sitechat.chat.side_calls import TtlCache, side_call
from sitechat.domain import ChatbotConfig, Message
from sitechat.llm.base import ChatMessage, ChatModel, GenerationRequest, Usage
from sitechat.text import content_terms, content_words

logger = logging.getLogger(__name__)

FOLLOW_UP_MAX_TERMS = 6
HISTORY_TURNS = 6  # messages of history the rewrite sees
MAX_QUERY_CHARS = 300
MAX_HISTORY_CHARS = 600  # per message, for the rewrite prompt
_OPENERS = re.compile(
    r"^\s*(and|but|also|so|then|what about|how about|and what|and how|what else|same for)\b",
    re.IGNORECASE,
)
_ANAPHORA = re.compile(
    r"\b(it|its|it's|that|this|those|these|they|them|their|there|one|ones|he|she)\b",
    re.IGNORECASE,
)
_LINE_PREFIX = re.compile(r"^\s*(?:[-*•]|\d+[.)]|query\s*:|variant\s*\d*\s*:)\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class EnhancedQuery:
    text: str
    rewritten: bool
    # "none", "follow-up-heuristic", "model", or "model-cached"
    strategy: str
    variants: tuple[str, ...] = ()
    # What the rewrite's model call cost (None: no call); paid whether or not it was used.
    usage: Usage | None = None


def is_follow_up(message: str) -> bool:
    if len(content_terms(message)) > FOLLOW_UP_MAX_TERMS:
        return False
    return bool(_OPENERS.search(message) or _ANAPHORA.search(message))


def may_depend_on_history(message: str, history: Sequence[Message]) -> bool:
    """Worth a model rewrite: there was a question before, and this one is short or leans
    on it."""
    if not any(m.role == "user" for m in history):
        return False
    return is_follow_up(message) or len(content_terms(message)) <= FOLLOW_UP_MAX_TERMS // 2


def enhance_query(message: str, history: Sequence[Message]) -> EnhancedQuery:
    """The heuristic: a follow-up gets the previous user turn's content words appended."""
    previous = next((m.content for m in reversed(history) if m.role == "user"), None)
    if previous is None or not is_follow_up(message):
        return EnhancedQuery(message, rewritten=False, strategy="none")
    seen = set(content_words(message))
    carried = [w for w in dict.fromkeys(content_words(previous)) if w not in seen]
    if not carried:
        return EnhancedQuery(message, rewritten=False, strategy="none")
    return EnhancedQuery(
        f"{message} {' '.join(carried)}", rewritten=True, strategy="follow-up-heuristic"
    )


REWRITE_INSTRUCTIONS = """\
You rewrite a website visitor's last message into a standalone search query for the \
documentation of "{name}". Use the conversation only to resolve what the message refers to \
("it", "that", "and the price?"). Keep the visitor's language and key terms; do not answer \
and do not add facts.
Reply with the query alone on the first line.{variants}"""
VARIANTS_INSTRUCTION = (
    " Then write up to {n} different phrasings of the same query, one per line, using other "
    "words a document might use."
)


class QueryEnhancer:
    """Model rewrite with a deadline and a cache, the heuristic otherwise."""

    def __init__(
        self,
        *,
        rewrite_providers: Sequence[str] = ("openai",),
        timeout_seconds: float = 1.5,
        variants: int = 0,
        cache_size: int = 2048,
        cache_ttl_seconds: float = 600.0,
    ) -> None:
        # A 135M local model rewrites worse than the heuristic and would hold the one
        # generation slot the answer is waiting for: by default only remote models rewrite.
        self.rewrite_providers = frozenset(rewrite_providers)
        self.timeout_seconds = timeout_seconds
        self.variants = max(0, min(variants, 4))
        self._cache: TtlCache[EnhancedQuery] = TtlCache(cache_size, cache_ttl_seconds)

    def will_rewrite(
        self, model: ChatModel | None, message: str, history: Sequence[Message]
    ) -> bool:
        return (
            model is not None
            and model.name in self.rewrite_providers
            and may_depend_on_history(message, history)
        )

    async def enhance(
        self,
        config: ChatbotConfig,
        message: str,
        history: Sequence[Message],
        model: ChatModel | None,
    ) -> EnhancedQuery:
        if model is None or not self.will_rewrite(model, message, history):
            return enhance_query(message, history)
        key = self._key(config, model, message, history)
        cached = self._cache.get(key)
        if cached is not None:
            return EnhancedQuery(cached.text, cached.rewritten, "model-cached", cached.variants)
        text, usage = await side_call(
            model,
            self._request(config, message, history),
            timeout_seconds=self.timeout_seconds,
            what="query rewrite",
        )
        rewritten = None if text is None else self._parse(message, text)
        if rewritten is None:
            return dataclasses.replace(enhance_query(message, history), usage=usage)
        self._cache.put(key, rewritten)
        return dataclasses.replace(rewritten, usage=usage)

    def _request(
        self, config: ChatbotConfig, message: str, history: Sequence[Message]
    ) -> GenerationRequest:
        variants = VARIANTS_INSTRUCTION.format(n=self.variants) if self.variants else ""
        messages = [
            ChatMessage("system", REWRITE_INSTRUCTIONS.format(name=config.name, variants=variants)),
            ChatMessage("user", _conversation(message, history)),
        ]
        return GenerationRequest(
            messages=messages,
            question=message,
            model=config.model,
            temperature=0.0,
            max_tokens=48 * (1 + self.variants),
        )

    def _parse(self, message: str, text: str) -> EnhancedQuery | None:
        lines = [_clean(line) for line in text.splitlines()]
        lines = [line for line in lines if line]
        if not lines or not content_words(lines[0]):
            return None
        query, *others = lines
        extra = tuple(v for v in dict.fromkeys(others) if v != query)[: self.variants]
        return EnhancedQuery(query, rewritten=query != message, strategy="model", variants=extra)

    @staticmethod
    def _key(
        config: ChatbotConfig, model: ChatModel, message: str, history: Sequence[Message]
    ) -> str:
        digest = hashlib.sha256()
        for part in (config.id, model.name, config.model or "", message):
            digest.update(part.encode("utf-8") + b"\x00")
        for turn in history[-HISTORY_TURNS:]:
            digest.update(f"{turn.role}:{turn.content}".encode() + b"\x00")
        return digest.hexdigest()


def _conversation(message: str, history: Sequence[Message]) -> str:
    lines = ["Conversation:"]
    for turn in history[-HISTORY_TURNS:]:
        who = "Visitor" if turn.role == "user" else "Assistant"
        text = " ".join(turn.content.split())[:MAX_HISTORY_CHARS]
        lines.append(f"{who}: {text}")
    lines.append(f"\nLast message: {message}\n\nStandalone search query:")
    return "\n".join(lines)


def _clean(line: str) -> str:
    line = _LINE_PREFIX.sub("", line).strip().strip("\"'`").strip()
    return line[:MAX_QUERY_CHARS]
