"""A model asked whether the passages answer a question the words say they don't: the
paraphrase rescue.

Answerability (``chat.answerability``) gives the fallback when a distinctive word of the
question is in no passage. That keeps near misses out, but also turns away paraphrases
whose key word the documents never use ("cash back" for a refund, "my laptop" for "your own
device"): telling those apart needs a reader. A question the words find unanswerable (not
small talk, and only when the search found passages) is put to a model with its best
passages: "Do the passages answer the question? yes or no". A "yes" answers the question
(at least at level ``low``); "no", anything else, a failure or a call over the timeout keeps
the fallback. Questions the words already answer never pay for it. Who is asked:

- the chatbot's own model, for the providers listed in ``SITECHAT_ANSWER_CHECK_PROVIDERS``
  (three passages, ``SITECHAT_ANSWER_CHECK_TIMEOUT_SECONDS``): for a hosted model trusted
  to say no;
- else the answer judge, when ``SITECHAT_ANSWER_JUDGE_MODEL_PATH`` names a GGUF file: a local
  instruction-tuned model for every provider (five passages, its own, longer timeout).
  ``make judge`` assembles Qwen2.5-Coder-1.5B-Instruct, which separates the quality sets'
  paraphrases from their near misses with an AUC of 0.87 where SmolLM2-135M and Gemma 3 270M
  score at chance (``docs/context-quality.md``);
- else nobody, and the words decide.

The call is paid like the answer (``answer_check`` in the turn's usage), and verdicts are
cached per chatbot, asking model, question and passages.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sitechat import metrics
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


@dataclass(frozen=True, slots=True)
class Judge:
    """A model that judges for every provider (``SITECHAT_ANSWER_JUDGE_MODEL_PATH``), with
    its own bounds: a local model reads more slowly than a hosted one answers."""

    model: ChatModel
    timeout_seconds: float
    passages: int


class AnswerCheck:
    """Asks whether passages answer a question: the chatbot's own model for providers in
    ``providers``, else ``judge`` when there is one; see the module docstring."""

    def __init__(
        self,
        *,
        providers: Sequence[str] = (),
        timeout_seconds: float = 2.0,
        passages: int = 3,
        judge: Judge | None = None,
        cache_size: int = 4096,
        cache_ttl_seconds: float = 600.0,
    ) -> None:
        self.providers = frozenset(providers)
        self.timeout_seconds = timeout_seconds
        self.passages = passages
        self.judge = judge
        self._cache: TtlCache[bool] = TtlCache(cache_size, cache_ttl_seconds)

    def _judge_for(self, model: ChatModel) -> Judge | None:
        """Who is asked for an answer by ``model``: itself, the judge, or nobody."""
        if model.name in self.providers:
            return Judge(model, self.timeout_seconds, self.passages)
        return self.judge

    async def answers(
        self,
        config: ChatbotConfig,
        model: ChatModel,
        question: str,
        results: Sequence[ScoredChunk],
    ) -> tuple[bool | None, Usage | None]:
        """Whether the best of ``results`` answer ``question``, by the word of ``model`` (the
        chatbot's, when its provider is listed) or of the judge: True, False, or None when
        neither was asked or it gave none (failed, timed out, or answered neither yes nor no); and
        what the call cost (None when cached or not made)."""
        judge = self._judge_for(model)
        if judge is None or not results:
            return None, None
        used = list(results[: judge.passages])
        key = _key(config, judge.model, question, used)
        cached = self._cache.get(key)
        if cached is not None:
            return cached, None
        asked_at = time.monotonic()
        text, usage = await side_call(
            judge.model,
            # The chatbot's model is asked by the name it answers with; a judge by its own.
            check_request(config, question, used, config.model if judge.model is model else None),
            timeout_seconds=judge.timeout_seconds,
            what="answer check",
        )
        match = _VERDICT.match(text or "")
        said = match.group(1).lower() if match else "none"
        metrics.ANSWER_CHECKS.labels(judge.model.name, said).observe(time.monotonic() - asked_at)
        if match is None:
            return None, usage
        verdict = said == "yes"
        self._cache.put(key, verdict)
        return verdict, usage


def check_request(
    config: ChatbotConfig, question: str, results: Sequence[ScoredChunk], model: str | None
) -> GenerationRequest:
    """What the asked model reads: the instructions, the passages and the question, with
    room for one word of reply (``benchmarks.judge_auc`` scores models on the same)."""
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
        model=model,
        temperature=0.0,
        max_tokens=3,
        choices=("yes", "no"),
    )


def _key(
    config: ChatbotConfig, model: ChatModel, question: str, results: Sequence[ScoredChunk]
) -> str:
    digest = hashlib.sha256()
    parts = (config.id, model.name, config.model or "", " ".join(question.lower().split()))
    for part in (*parts, *(r.chunk.text for r in results)):
        digest.update(part.encode("utf-8") + b"\x00")
    return digest.hexdigest()
