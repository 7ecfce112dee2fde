"""Retrieval latency and ingestion throughput at scale, embedded engine against qdrant-client.

- Latency: BM25 search for one chatbot whose index holds 10,000 and then 100,000 chunks,
  while four other chatbots hold as many again between them (one tenant among several, as
  in production), on Qdrant Edge (the embedded default) and on ``qdrant-client``'s
  in-process mode (``AsyncQdrantClient(":memory:")``, what tests use in place of a server).
  Each query is a visitor-like question; median and p99 over a few hundred searches on
  Edge, fewer on qdrant-client (``LOCAL_QUERIES``: it is two orders of magnitude slower).
- Ingestion: documents through the whole ``Ingestor`` (load, chunk, BM25, upsert, SQLite
  rows) in chunks per second, and raw index upserts in chunks per second at each size.

Chunks are synthetic but read like a help centre: sentences from templates over a product
vocabulary, with a Zipf-like word distribution, so BM25 sees realistic term statistics.
Every number is also given as a ratio to a baseline measured in the same run (Edge against
qdrant-client at the same size; 100k against 10k on the same engine), because absolute
milliseconds depend on the machine.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from statistics import median

from qdrant_client import AsyncQdrantClient

from benchmarks.stats import percentile, summary
from sitechat.config import Settings
from sitechat.retrieval.base import Chunk, VectorStore
from sitechat.retrieval.edge_store import EdgeVectorStore
from sitechat.retrieval.server_store import QdrantServerStore

SIZES = (10_000, 100_000)
OTHER_TENANTS = 4
# qdrant-client's local mode scores every point in Python (~0.25 s a query at 10k, ~10x at
# 100k): fewer queries there keep the run to minutes. Its p99 at 100k is then its maximum.
QUERIES = {("edge", 10_000): 300, ("edge", 100_000): 300}
LOCAL_QUERIES = {10_000: 100, 100_000: 20}
WARMUP = {"edge": 10, "local": 3}
SEED = 20241121
INGEST_DOCUMENTS = 120

_PRODUCTS = [
    "thermostat",
    "kettle",
    "router",
    "camera",
    "doorbell",
    "speaker",
    "lamp",
    "sensor",
    "plug",
    "lock",
    "vacuum",
    "purifier",
    "heater",
    "fan",
    "charger",
    "watch",
    "headset",
    "scale",
    "blender",
    "toaster",
    "printer",
    "monitor",
    "keyboard",
]
_TOPICS = [
    "warranty",
    "refund",
    "shipping",
    "delivery",
    "invoice",
    "subscription",
    "battery",
    "firmware",
    "update",
    "reset",
    "pairing",
    "bluetooth",
    "wifi",
    "password",
    "account",
    "login",
    "installation",
    "mounting",
    "wiring",
    "schedule",
    "notification",
    "app",
    "display",
    "error",
    "code",
    "repair",
    "replacement",
    "return",
    "exchange",
    "discount",
    "coupon",
    "voucher",
    "order",
    "tracking",
    "customs",
    "payment",
    "card",
    "paypal",
    "transfer",
    "plan",
    "upgrade",
    "cancellation",
    "privacy",
    "data",
    "export",
    "deletion",
    "support",
    "hours",
    "phone",
    "chat",
    "email",
    "manual",
    "guide",
    "cleaning",
    "descaling",
    "filter",
    "noise",
    "temperature",
    "humidity",
    "energy",
    "report",
    "savings",
    "tariff",
]
_VERBS = [
    "check",
    "restart",
    "replace",
    "contact",
    "open",
    "press",
    "hold",
    "tap",
    "select",
    "enter",
    "confirm",
    "download",
    "install",
    "remove",
    "connect",
    "charge",
    "clean",
    "register",
    "cancel",
    "renew",
    "request",
]
_FILLER = [
    "usually",
    "within",
    "about",
    "every",
    "after",
    "before",
    "during",
    "when",
    "then",
    "also",
    "only",
    "still",
    "always",
    "never",
    "often",
    "quickly",
    "carefully",
    "automatically",
    "manually",
    "free",
    "extra",
    "new",
    "old",
    "small",
    "large",
]
_TEMPLATES = (
    "To {verb} the {product} {topic}, {verb} the {topic} in the app and {verb} {filler}.",
    "The {product} {topic} takes {n} days {filler}, {filler} for {topic} and {topic}.",
    "If the {topic} of your {product} fails, {verb} the {topic} and {verb} {filler}.",
    "Our {topic} policy covers every {product} for {n} months {filler} after {topic}.",
    "You can {verb} {topic} for the {product} under Settings, {topic} {filler}.",
    "Error {n} means the {product} could not {verb} the {topic}; {verb} it {filler}.",
)
_QUESTIONS = (
    "how do I {verb} the {topic} of my {product}",
    "{product} {topic} not working",
    "what is your {topic} policy for the {product}",
    "how long does {topic} take",
    "can I {verb} my {topic}",
)


_ZIPF_S = 0.9
_CUMULATIVE: dict[int, list[float]] = {}


def _zipf_choice(rng: random.Random, words: Sequence[str]) -> str:
    # The word of rank r is drawn with probability ~ 1/r^0.9: a few common terms and a
    # long tail, as in real help-centre text.
    weights = _CUMULATIVE.get(len(words))
    if weights is None:
        total = 0.0
        weights = []
        for rank in range(1, len(words) + 1):
            total += 1 / rank**_ZIPF_S
            weights.append(total)
        _CUMULATIVE[len(words)] = weights
    return rng.choices(words, cum_weights=weights)[0]


def _sentence(rng: random.Random, templates: Sequence[str]) -> str:
    return rng.choice(templates).format(
        verb=_zipf_choice(rng, _VERBS),
        product=_zipf_choice(rng, _PRODUCTS),
        topic=_zipf_choice(rng, _TOPICS),
        filler=rng.choice(_FILLER),
        n=rng.randint(2, 90),
    )


def make_chunks(chatbot_id: str, count: int, rng: random.Random) -> list[Chunk]:
    chunks = []
    for i in range(count):
        document = i // 40
        text = " ".join(_sentence(rng, _TEMPLATES) for _ in range(rng.randint(4, 9)))
        chunks.append(
            Chunk(
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                chatbot_id=chatbot_id,
                document_id=f"doc-{document}",
                position=i % 40,
                text=text,
                title=f"{_zipf_choice(rng, _PRODUCTS).title()} {_zipf_choice(rng, _TOPICS)}",
                heading_path=(_zipf_choice(rng, _TOPICS).title(),),
            )
        )
    return chunks


def make_questions(rng: random.Random, count: int) -> list[str]:
    return [_sentence(rng, _QUESTIONS) for _ in range(count)]


async def _timed_searches(
    store: VectorStore, chatbot_id: str, questions: list[str], count: int, warmup: int
) -> list[float]:
    for question in questions[:warmup]:
        await store.search(chatbot_id, question, 5)
    times = []
    for question in questions[warmup : warmup + count]:
        started = time.perf_counter()
        await store.search(chatbot_id, question, 5)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def _fill(store: VectorStore, chunks: list[Chunk]) -> float:
    """Upsert in ingestion-sized calls; returns chunks per second."""
    started = time.perf_counter()
    for start in range(0, len(chunks), 2000):
        await store.upsert(chunks[start : start + 2000])
    return len(chunks) / (time.perf_counter() - started)


async def bench_engine(
    name: str,
    store: VectorStore,
    questions: list[str],
    rng: random.Random,
    queries: dict[int, int],
    warmup: int,
) -> dict[int, tuple[list[float], float]]:
    """Grow one store from 10k to 100k target chunks; latency and upsert rate at each size."""
    await store.start()
    results: dict[int, tuple[list[float], float]] = {}
    held = 0
    try:
        for size in SIZES:
            target = make_chunks("target", size - held, rng)
            others = [
                chunk
                for n in range(OTHER_TENANTS)
                for chunk in make_chunks(f"tenant-{n}", (size - held) // OTHER_TENANTS, rng)
            ]
            rate = await _fill(store, target + others)
            held = size
            assert await store.count("target") == size
            times = await _timed_searches(store, "target", questions, queries[size], warmup)
            results[size] = (times, rate)
            print(summary(f"{name} search, {size:,} chunks (+{size:,} others)", times))
            print(f"{'':<44} upsert {rate:,.0f} chunks/s")
    finally:
        await store.close()
    return results


async def bench_ingestion(directory: Path, rng: random.Random) -> float:
    """Whole-pipeline ingestion: Markdown documents in, chunks indexed; chunks per second."""
    from sitechat.services import Services

    settings = Settings(_env_file=None, data_dir=directory, default_provider="extractive")  # type: ignore[call-arg]
    services = await Services.start(settings)
    try:
        org = await services.store.create_org("Bench")
        await services.store.create_chatbot(org.id, name="Bench", chatbot_id="bench")
        documents = []
        for n in range(INGEST_DOCUMENTS):
            sections = [
                f"## {_zipf_choice(rng, _TOPICS).title()} {s}\n\n"
                + " ".join(_sentence(rng, _TEMPLATES) for _ in range(rng.randint(8, 30)))
                for s in range(rng.randint(3, 12))
            ]
            documents.append((f"guide-{n}.md", f"# Guide {n}\n\n" + "\n\n".join(sections)))
        started = time.perf_counter()
        chunks = 0
        for filename, text in documents:
            result = await services.ingestor.ingest_bytes("bench", text.encode(), filename=filename)
            chunks += result.document.chunk_count
        elapsed = time.perf_counter() - started
    finally:
        await services.aclose()
    rate = chunks / elapsed
    print(
        f"{'ingestion (load, chunk, index, store)':<44} {INGEST_DOCUMENTS} documents, "
        f"{chunks:,} chunks in {elapsed:.1f} s: {rate:,.0f} chunks/s"
    )
    return rate


async def main() -> None:
    warnings.filterwarnings("ignore", message="Payload indexes have no effect")
    warnings.filterwarnings("ignore", message="Local mode is not recommended")
    rng = random.Random(SEED)
    questions = make_questions(rng, max(QUERIES.values()) + max(WARMUP.values()))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sitechat-bench-") as directory:
        edge = await bench_engine(
            "edge",
            EdgeVectorStore(Path(directory) / "qdrant"),
            questions,
            random.Random(SEED),
            {size: QUERIES[("edge", size)] for size in SIZES},
            WARMUP["edge"],
        )
        local = await bench_engine(
            "qdrant-client :memory:",
            QdrantServerStore(AsyncQdrantClient(":memory:"), "bench"),
            questions,
            random.Random(SEED),
            LOCAL_QUERIES,
            WARMUP["local"],
        )
        ingest_rate = await bench_ingestion(Path(directory) / "ingest", rng)

    print("\nratios (same run):")
    for size in SIZES:
        e, q = median(edge[size][0]), median(local[size][0])
        e99, q99 = percentile(edge[size][0], 99), percentile(local[size][0], 99)
        print(
            f"  {size:>7,} chunks: qdrant-client's median is {q / e:,.0f}x edge's "
            f"(p99 {q99 / e99:,.0f}x); edge upserts {edge[size][1] / local[size][1]:.2f}x "
            "as fast"
        )
    small, large = SIZES
    for name, runs in (("edge", edge), ("qdrant-client", local)):
        grow = median(runs[large][0]) / median(runs[small][0])
        print(f"  {name}: median at {large:,} is {grow:.2f}x the median at {small:,}")
    print(
        f"  ingestion through the whole pipeline runs at {ingest_rate / edge[small][1]:.2f}x "
        "the raw edge upsert rate (storage rows, chunking and durable writes per document)"
    )
    print(f"(benchmark took {time.perf_counter() - started:.0f} s)")
