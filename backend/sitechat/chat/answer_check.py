"""The chatbot's own model asked whether the passages answer a question the words say they
don't: a paraphrase rescue for capable models, off unless configured.

Answerability (``chat.answerability``) gives the fallback when a distinctive word of the
question is in no passage. That keeps near misses out, but also turns away paraphrases
whose key word the documents never use ("cash back" for a refund, "my laptop" for "your own
device"): telling those apart needs a reader. For providers listed in
``SITECHAT_ANSWER_CHECK_PROVIDERS``, a question the words find unanswerable (not small talk,
and only when the search found passages) is put to the chatbot's model with its best
passages: "Do the passages answer the question? yes or no". A "yes" answers the question
(at least at level ``low``); "no", anything else, a failure or a call over
``SITECHAT_ANSWER_CHECK_TIMEOUT_SECONDS`` keeps the fallback. Questions the words already
answer never pay for it.

Not measured here: no model that can judge runs on this machine (SmolLM2-135M, the local
default, and Gemma 3 270M scored at chance on this task; see ``docs/context-quality.md``),
so it is off by default and for the operator to turn on for a model they trust to say no.
The call is paid like the answer (``answer_check`` in the turn's usage), and verdicts are
cached per chatbot, model, question and passages.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from sitechat.chat.side_calls import TtlCache, side_call
from sitechat.domain import ChatbotConfig
from sitechat.llm.base import ChatMessage, ChatModel, GenerationRequest, Usage
from sitechat.retrieval.base import ScoredChunk

CHECK_INSTRUCTIONS = """\
You check whether passages from the documents of "{name}" answer a website visitor's \
question. The answer may use other words than the question. Reply with one word: "yes" if \
the passages contain the answer, "no" if they do not (the question asks about something \
they do not mention, or needs knowledge from outside them)."""
PASSAGE_CHARS = 1200  # of each passage, in the check's prompt
_VERDICT = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


class AnswerCheck:
    """Asks the chatbot's model (providers in ``providers`` only) whether passages answer a
    question; see the module docstring."""

    def __init__(
        self,
        *,
        providers: Sequence[str] = (),
        timeout_seconds: float = 2.0,
        passages: int = 3,
        cache_size: int = 4096,
        cache_ttl_seconds: float = 600.0,
    ) -> None:
        self.providers = frozenset(providers)
        self.timeout_seconds = timeout_seconds
        self.passages = passages
        self._cache: TtlCache[bool] = TtlCache(cache_size, cache_ttl_seconds)

    def will_check(self, model: ChatModel) -> bool:
        return model.name in self.providers

    async def answers(
        self,
        config: ChatbotConfig,
        model: ChatModel,
        question: str,
        results: Sequence[ScoredChunk],
    ) -> tuple[bool | None, Usage | None]:
        """Whether the best of ``results`` answer ``question`` by ``model``'s word: True, False,
        or None when it gave none (failed, timed out, or answered neither yes nor no); and
        what the call cost (None when cached or not made)."""
        used = list(results[: self.passages])
        if not used or not self.will_check(model):
            return None, None
        key = _key(config, model, question, used)
        cached = self._cache.get(key)
        if cached is not None:
            return cached, None
        text, usage = await side_call(
            model,
            _request(config, question, used),
            timeout_seconds=self.timeout_seconds,
            what="answer check",
        )
        match = _VERDICT.match(text or "")
        if match is None:
            return None, usage
        verdict = match.group(1).lower() == "yes"
        self._cache.put(key, verdict)
        return verdict, usage


def _request(
    config: ChatbotConfig, question: str, results: Sequence[ScoredChunk]
) -> GenerationRequest:
    passages = "\n\n".join(
        f"[{i}] {r.chunk.title}\n{r.chunk.text[:PASSAGE_CHARS]}" for i, r in enumerate(results, 1)
    )
    user = f"Passages:\n\n{passages}\n\nQuestion: {question}\n\nDo the passages answer it?"
    return GenerationRequest(
        messages=[
            ChatMessage("system", CHECK_INSTRUCTIONS.format(name=config.name)),
            ChatMessage("user", user),
        ],
        question=question,
        model=config.model,
        temperature=0.0,
        max_tokens=3,
    )


def _key(
    config: ChatbotConfig, model: ChatModel, question: str, results: Sequence[ScoredChunk]
) -> str:
    digest = hashlib.sha256()
    parts = (config.id, model.name, config.model or "", " ".join(question.lower().split()))
    for part in (*parts, *(r.chunk.text for r in results)):
        digest.update(part.encode("utf-8") + b"\x00")
    return digest.hexdigest()
