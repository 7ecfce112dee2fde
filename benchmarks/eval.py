"""Answer quality, end to end: ``make eval`` (``python -m benchmarks.eval``).

Every set of ``tests/quality/sets.py`` (the thermostat maker, a bakery, a city library, a bike
shop and a vet clinic written later as checks on the answerability rules) is ingested into
a real app, and every question is asked through the public API
(``POST /api/public/chat``, over ``httpx.ASGITransport``), once per provider:

- ``local``: SmolLM2-135M through llama.cpp, the default when no key is set;
- ``extractive``: quotes sentences of the passages, generates nothing;
- ``openai``: the scripted OpenAI-compatible server (``tests/support/scripted_openai.py``)
  playing a model that always answers: it quotes the sentence of the first source that shares
  the most words with the question, and appends a link to a page that does not exist
  (``[more](https://help.invented.example/faq)``); when the prompt has no sources it answers
  from "world knowledge" ("Paris is the capital of France."). So what is measured for openai
  is sitechat's decision to call the model at all, and what it lets through, not the model.

Printed per provider, over all sets and per set:

- recall@3 and MRR of the answering document (the app's own search, as the pipeline runs it);
- fallback rates: out-of-scope questions (want: high), in-scope ones (want: low), off-topic
  ones (want: all; a fallback is the honest answer to world knowledge and chit-chat);
- greetings answered with the chatbot's greeting;
- in-scope answers containing the expected fact;
- answers with an invented link: a URL that is not a source of the answer, not on the
  chatbot's site, and not written in its documents.

The raw numbers, per question, go to ``test-artifacts/eval.json`` (``--out`` to change it).
``--providers extractive,openai`` and ``--sets bakery`` narrow the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sitechat.api.app import create_app
from sitechat.config import Settings
from sitechat.domain import ChatbotConfig
from sitechat.llm.base import ContextPassage
from sitechat.llm.extractive import select_sentences
from tests.quality.sets import SET_DIRS, QualitySet, Question, load
from tests.support.scripted_openai import Script, ScriptedOpenAI

PROVIDERS = ("local", "extractive", "openai")
DEPTH = 10
JUDGE = Path("models/answer-judge.gguf")  # what `make judge` writes
UNLIMITED = {
    "rate_limit_per_ip": "100000/minute",
    "rate_limit_per_session": "100000/minute",
    "rate_limit_per_visitor": "100000/minute",
    "rate_limit_per_chatbot": "100000/minute",
}
INVENTED_LINK = "[more](https://help.invented.example/faq)"
WORLD_KNOWLEDGE = "Paris is the capital of France."
_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)|(https?://[^\s)\]>\"']+)")
_SOURCE = re.compile(r"^\[(\d+)\] (.*?)\n(.*?)(?=\n\n\[\d+\] |\n</sources>)", re.S | re.M)


class QuotingScript(Script):
    """A scripted model that always answers something plausible (see the module docstring)."""

    def answer(self, body: dict[str, Any]) -> tuple[list[str], str]:
        user = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        question = user.rsplit("Question:", 1)[-1].strip()
        passages = [
            ContextPassage(number=int(n), title=title, text=text, url=None, score=0.0)
            for n, title, text in _SOURCE.findall(user)
        ]
        chosen = select_sentences(question, passages[:1], 200) if passages else []
        if chosen:
            text = f"{chosen[0].text} [{chosen[0].number}] See {INVENTED_LINK}."
        else:
            text = WORLD_KNOWLEDGE
        return re.findall(r"\S+\s*", text), "stop"


@dataclass(slots=True)
class Asked:
    question: str
    kind: str
    answer: str
    fallback: bool
    level: str | None
    rank: int | None = None  # in scope: rank of the answering document's first chunk
    has_fact: bool | None = None
    invented_links: list[str] = field(default_factory=list)
    greeted: bool | None = None
    seconds: float = 0.0
    answerability: str | None = None  # answerable, unanswerable, small_talk
    judged: bool = False  # the answer judge (or the model) was asked


@dataclass(slots=True)
class Summary:
    questions: int
    recall_at_3: float
    mrr: float
    out_of_scope_fallback: float
    in_scope_fallback: float
    off_topic_fallback: float
    greeting_replies: float
    facts: float
    facts_count: str
    invented_links: int


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def summarise(asked: Sequence[Asked]) -> Summary:
    def of(kind: str) -> list[Asked]:
        return [a for a in asked if a.kind == kind]

    inside = of("in_scope")
    facts = [bool(a.has_fact) for a in inside]
    return Summary(
        questions=len(asked),
        recall_at_3=_share([a.rank is not None and a.rank <= 3 for a in inside]),
        mrr=sum(1 / a.rank for a in inside if a.rank) / len(inside) if inside else 0.0,
        out_of_scope_fallback=_share([a.fallback for a in of("out_of_scope")]),
        in_scope_fallback=_share([a.fallback for a in inside]),
        off_topic_fallback=_share([a.fallback for a in of("off_topic")]),
        greeting_replies=_share([bool(a.greeted) for a in of("greeting")]),
        facts=_share(facts),
        facts_count=f"{sum(facts)}/{len(facts)}",
        invented_links=sum(1 for a in asked if a.invented_links),
    )


def invented_links(answer: str, allowed: Sequence[str], corpus: str) -> list[str]:
    """URLs in an answer that are no source's, not on the site, and not in its documents."""
    found = [m.group(1) or m.group(2) for m in _LINK.finditer(answer)]
    return [
        url
        for url in found
        if not any(url == a or url.startswith(a.rstrip("/") + "/") for a in allowed)
        and url not in corpus
    ]


@contextmanager
def provider_settings(
    provider: str, data_dir: Path, embedding: str = "none", judge: Path | None = None
) -> Iterator[Settings]:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "default_provider": provider,
        "embedding_provider": embedding,
        # A shared CPU can make the local model slow to start: measure answers, not timeouts.
        "model_first_token_timeout_seconds": 600,
        "answer_judge_model_path": str(judge or ""),
        "answer_judge_timeout_seconds": 600,
        **UNLIMITED,
    }
    if provider != "openai":
        yield Settings(_env_file=None, **values)  # type: ignore[call-arg]
        return
    with ScriptedOpenAI() as server:
        server.script(QuotingScript())
        values.update(openai_api_key="k", openai_base_url=server.base_url, openai_model="m")
        yield Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def ingest(services: Any, qset: QualitySet) -> ChatbotConfig:
    """The set's chatbot (its id is the set's name) with every document ingested."""
    org = await services.store.create_org(f"{qset.name} owner")
    config: ChatbotConfig = await services.store.create_chatbot(
        org.id, name=qset.name.title(), chatbot_id=qset.name, allowed_origins=(qset.site,)
    )
    for doc in qset.documents:
        await services.ingestor.ingest_bytes(
            qset.name, doc.data, filename=doc.filename, url=doc.url(qset.name)
        )
    return config


async def run_set(client: httpx.AsyncClient, services: Any, qset: QualitySet) -> list[Asked]:
    config = await ingest(services, qset)
    corpus = "".join(doc.data.decode("utf-8", "replace") for doc in qset.documents)
    url_of = {doc.url(qset.name): doc.stem for doc in qset.documents}
    asked = []
    for question in qset.questions:
        asked.append(await ask(client, services, qset, question, config.greeting, url_of, corpus))
    return asked


async def ask(
    client: httpx.AsyncClient,
    services: Any,
    qset: QualitySet,
    question: Question,
    greeting: str,
    url_of: dict[str, str],
    corpus: str,
) -> Asked:
    started = time.perf_counter()
    response = await client.post(
        "/api/public/chat", json={"message": question.text, "chatbot_id": qset.name}
    )
    seconds = time.perf_counter() - started
    body = response.json()
    if response.status_code != 200:  # counted as an answer without the fact, not a fallback
        body = {"content": f"<error {response.status_code}: {body.get('code')}>"}
    answer: str = body["content"]
    quality = body.get("context_quality") or {}
    source_urls = [s["url"] for s in body.get("sources", []) if s.get("url")]
    result = Asked(
        question=question.text,
        kind=question.kind,
        answer=answer,
        fallback=bool(body.get("fallback")),
        level=quality.get("level"),
        invented_links=invented_links(answer, [*source_urls, qset.site], corpus),
        seconds=round(seconds, 3),
        answerability=quality.get("answerability"),
        judged="answer_check" in (body.get("usage") or {}),
    )
    if question.kind == "in_scope":
        hits = await services.vectors.search(qset.name, question.text, DEPTH)
        result.rank = next(
            (
                i
                for i, hit in enumerate(hits, 1)
                if url_of.get(hit.chunk.url or "") == question.document
            ),
            None,
        )
        result.has_fact = not result.fallback and question.has_fact(answer)
    elif question.kind == "greeting":
        result.greeted = answer.strip() == greeting.strip()
    return result


async def run_provider(
    provider: str, sets: Sequence[QualitySet], embedding: str = "none", judge: Path | None = None
) -> dict[str, list[Asked]]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        provider_settings(provider, Path(tmp), embedding, judge) as settings,
    ):
        app = create_app(settings, preload_model=provider == "local")
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://sitechat.test", timeout=300
            ) as client:
                return {q.name: await run_set(client, app.state.services, q) for q in sets}


COLUMNS = [
    ("set", "{}", 11),
    ("n", "{}", 4),
    ("recall@3", "{:.3f}", 9),
    ("MRR", "{:.3f}", 6),
    ("OOS fb", "{:.0%}", 7),
    ("in fb", "{:.0%}", 6),
    ("off fb", "{:.0%}", 7),
    ("greet", "{:.0%}", 6),
    ("facts", "{:.0%}", 6),
    ("facts n", "{}", 8),
    ("links", "{}", 6),
]


def table(provider: str, results: dict[str, list[Asked]]) -> str:
    rows = [(name, summarise(asked)) for name, asked in results.items()]
    rows.append(("all", summarise([a for asked in results.values() for a in asked])))
    lines = [f"provider: {provider}", " ".join(f"{t:>{w}}" for t, _, w in COLUMNS)]
    for name, s in rows:
        values = [
            name,
            s.questions,
            s.recall_at_3,
            s.mrr,
            s.out_of_scope_fallback,
            s.in_scope_fallback,
            s.off_topic_fallback,
            s.greeting_replies,
            s.facts,
            s.facts_count,
            s.invented_links,
        ]
        lines.append(
            " ".join(
                f"{fmt.format(v):>{w}}" for (_, fmt, w), v in zip(COLUMNS, values, strict=True)
            )
        )
    return "\n".join(lines)


LEGEND = (
    "OOS fb: out-of-scope questions answered with the fallback (want >= 90%); in fb: in-scope "
    "ones (want <= 5%);\noff fb: off-topic ones (want 100%); greet: greetings answered with "
    "the greeting; facts: in-scope answers\ncontaining the expected fact; links: answers with "
    "an invented link (want 0)."
)


async def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.eval")
    parser.add_argument("--providers", default=",".join(PROVIDERS))
    parser.add_argument("--sets", default=",".join(SET_DIRS))
    parser.add_argument(
        "--embedding",
        choices=["none", "local"],
        default="none",
        help="dense embeddings: none (the default deployment) or local (MiniLM, hybrid search "
        "and answerability's word meanings)",
    )
    parser.add_argument(
        "--judge",
        default=str(JUDGE),
        help="the answer judge's GGUF file (make judge), or 'none' for the words alone",
    )
    parser.add_argument("--out", type=Path, default=Path("test-artifacts/eval.json"))
    args = parser.parse_args(list(argv))
    judge = None if args.judge == "none" else Path(args.judge)
    if judge is not None and not judge.is_file():
        parser.error(f"no answer judge at {judge}: run `make judge`, or pass --judge none")
    sets = [load(name) for name in args.sets.split(",")]
    report: dict[str, Any] = {}
    for provider in args.providers.split(","):
        started = time.perf_counter()
        results = await run_provider(provider, sets, args.embedding, judge)
        print(table(provider, results))
        print(f"({time.perf_counter() - started:.0f} s)\n", flush=True)
        report[provider] = {
            "summary": {
                **{name: asdict(summarise(asked)) for name, asked in results.items()},
                "all": asdict(summarise([a for asked in results.values() for a in asked])),
            },
            "questions": {name: [asdict(a) for a in asked] for name, asked in results.items()},
        }
    print(LEGEND)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"raw numbers: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
