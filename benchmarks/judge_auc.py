"""Can a model tell paraphrases from near misses? ``python -m benchmarks.judge_auc MODEL.gguf``

The offline measurement behind the answer judge's choice (``docs/context-quality.md``):

1. Every question of the quality sets goes through a real app (extractive provider, no judge)
   over the public API, as in ``make eval``; the questions the words find unanswerable are
   recorded with the passages the answer check would have been given.
2. A GGUF model (llama.cpp, in this process) is asked the answer check's own prompt
   (``chat.answer_check.check_request``) for each of them, and scored by
   log P(yes) - log P(no) of its first token.
3. Printed: how many of each kind were asked, the AUC of the score (in-scope questions
   against near misses), and what the model's own decision (yes over no) rescues and lets
   through, per set. Raw scores go to ``--out``.

``--passages`` sets how many passages the model reads (the judge's default is 5).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.eval import ingest, provider_settings
from sitechat.api.app import create_app
from sitechat.chat.answer_check import check_request
from sitechat.domain import ChatbotConfig
from sitechat.llm.base import ChatModel, Usage
from sitechat.llm.local_model import chat_template, messages_as_dicts
from sitechat.retrieval.base import ScoredChunk
from tests.quality.sets import SET_DIRS, QualitySet, load


@dataclass(slots=True)
class Judged:
    set: str
    kind: str
    question: str
    titles: list[str]
    score: float = 0.0  # log P(yes) - log P(no)
    seconds: float = 0.0


class Recorder:
    """Stands in for the app's ``AnswerCheck``: notes what it would be asked, answers nothing."""

    def __init__(self) -> None:
        self.asked: list[tuple[ChatbotConfig, str, list[ScoredChunk]]] = []

    async def answers(
        self,
        config: ChatbotConfig,
        model: ChatModel,
        question: str,
        results: Sequence[ScoredChunk],
    ) -> tuple[bool | None, Usage | None]:
        self.asked.append((config, question, list(results)))
        return None, None


async def collect(
    sets: Sequence[QualitySet], embedding: str
) -> list[tuple[str, str, ChatbotConfig, str, list[ScoredChunk]]]:
    """(set, kind, config, question, passages) for each question the words turn away."""
    found: list[tuple[str, str, ChatbotConfig, str, list[ScoredChunk]]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        provider_settings("extractive", Path(tmp), embedding) as settings,
    ):
        app = create_app(settings, preload_model=False)
        async with app.router.lifespan_context(app):
            services = app.state.services
            recorder = Recorder()
            services.chat.answer_check = recorder
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://sitechat.test", timeout=300
            ) as client:
                for qset in sets:
                    await ingest(services, qset)
                    for question in qset.questions:
                        before = len(recorder.asked)
                        response = await client.post(
                            "/api/public/chat",
                            json={"message": question.text, "chatbot_id": qset.name},
                        )
                        response.raise_for_status()
                        for config, text, results in recorder.asked[before:]:
                            found.append((qset.name, question.kind, config, text, results))
    return found


def _logsumexp(values: Sequence[float]) -> float:
    if not values:
        return -1e9
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def score(llama: Any, render: Any, messages: list[dict[str, str]]) -> float:
    """log P(yes) - log P(no) for the first token of the reply, over its spellings."""
    prompt, special = render(messages)
    tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=not special, special=True)
    llama.reset()
    llama.eval(tokens)
    # Without logits_all llama.cpp keeps the logits of the last token only.
    last = np.ctypeslib.as_array(llama._ctx.get_logits_ith(-1), shape=(llama.n_vocab(),))
    logits = last.astype(np.float64)
    logprobs = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))

    def of(words: Sequence[str]) -> float:
        ids = {llama.tokenize(w.encode(), add_bos=False, special=False)[0] for w in words}
        return _logsumexp([float(logprobs[i]) for i in ids])

    return of(["yes", "Yes", " yes", " Yes", "YES"]) - of(["no", "No", " no", " No", "NO"])


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """The chance that a random positive outscores a random negative (ties count half)."""
    if not positives or not negatives:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def report(judged: Sequence[Judged]) -> str:
    lines = []
    for name in [*sorted({j.set for j in judged}), "all"]:
        rows = [j for j in judged if name in ("all", j.set)]
        inside = [j.score for j in rows if j.kind == "in_scope"]
        near = [j.score for j in rows if j.kind == "out_of_scope"]
        off = [j.score for j in rows if j.kind == "off_topic"]
        lines.append(
            f"{name:>11}: in scope {sum(s > 0 for s in inside)}/{len(inside)} rescued, "
            f"near misses {sum(s > 0 for s in near)}/{len(near)} and off-topic "
            f"{sum(s > 0 for s in off)}/{len(off)} let through; AUC {auc(inside, near):.2f}"
        )
    seconds = sorted(j.seconds for j in judged)
    if seconds:
        lines.append(
            f"seconds per check: median {seconds[len(seconds) // 2]:.1f}, "
            f"mean {sum(seconds) / len(seconds):.1f}, max {seconds[-1]:.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.judge_auc")
    parser.add_argument("model", type=Path, help="a GGUF file (models/answer-judge.gguf)")
    parser.add_argument("--passages", type=int, default=5)
    parser.add_argument("--sets", default=",".join(SET_DIRS))
    parser.add_argument("--embedding", choices=["none", "local"], default="none")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("test-artifacts/judge-auc.json"))
    args = parser.parse_args(argv)
    if not args.model.is_file():
        parser.error(f"no model at {args.model}")
    import llama_cpp

    sets = [load(name) for name in args.sets.split(",")]
    found = asyncio.run(collect(sets, args.embedding))
    llama = llama_cpp.Llama(
        model_path=str(args.model), n_ctx=4096, n_threads=args.threads, verbose=False
    )
    render = chat_template(llama)
    judged = []
    for set_name, kind, config, question, results in found:
        used = results[: args.passages]
        request = check_request(config, question, used, None)
        messages = messages_as_dicts(request.messages)
        started = time.perf_counter()
        entry = Judged(set_name, kind, question, [r.chunk.title for r in used])
        entry.score = round(score(llama, render, messages), 3)
        entry.seconds = round(time.perf_counter() - started, 2)
        judged.append(entry)
        print(f"{entry.score:+7.2f} {kind:>12} {set_name:>10}  {question}", flush=True)
    print(report(judged))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([asdict(j) for j in judged], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
