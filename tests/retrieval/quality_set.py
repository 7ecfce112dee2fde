"""The retrieval-quality set: 12 documents of a fictional thermostat maker in four formats
(Markdown, plain text, HTML, PDF), and 48 visitors' questions, each answered by one document.

Documents go through the real loaders and chunker (``load_document``, ``chunk_document``);
the PDFs are written from ``*.pdf.txt`` sources by ``pdfgen.make_pdf``. ``evaluate`` asks every
question and scores where the first chunk of the answering document ranks:

- recall@3: the share of questions whose answering document is among the top 3 chunks;
- MRR: the mean of 1/rank of its first chunk (0 when it is not in the top ``DEPTH``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from sitechat.ingestion.chunking import chunk_document
from sitechat.ingestion.loaders import load_document
from sitechat.retrieval.base import Chunk, VectorStore
from tests.support.pdfgen import make_pdf

QUALITY_DIR = Path(__file__).parent / "quality"
DEPTH = 10
_IDS = uuid.UUID("0b9c1a52-3e0f-4c55-b0c8-6f4a1d2e7b93")


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    document: str  # the stem of the answering file


@dataclass(frozen=True, slots=True)
class Scores:
    recall_at_3: float
    mrr: float
    ranks: tuple[int | None, ...]  # per question; None when not in the top DEPTH

    def misses(self, questions: list[Question]) -> list[str]:
        return [q.text for q, r in zip(questions, self.ranks, strict=True) if r is None or r > 3]


def source_files() -> dict[str, tuple[str, bytes]]:
    """stem -> (filename as uploaded, bytes)."""
    files: dict[str, tuple[str, bytes]] = {}
    for path in sorted(QUALITY_DIR.iterdir()):
        if path.name == "questions.json":
            continue
        if path.name.endswith(".pdf.txt"):
            paragraphs = [p.strip() for p in path.read_text().split("\n\n") if p.strip()]
            stem = path.name.removesuffix(".pdf.txt")
            title, body = paragraphs[0], paragraphs[1:]
            files[stem] = (f"{stem}.pdf", make_pdf([title, *body], title=title))
        else:
            files[path.stem] = (path.name, path.read_bytes())
    return files


def corpus_chunks(chatbot_id: str) -> list[Chunk]:
    chunks: list[Chunk] = []
    for stem, (filename, data) in source_files().items():
        doc = load_document(data, filename=filename)
        for draft in chunk_document(doc.text, title=doc.title, fmt=doc.fmt):
            chunks.append(
                Chunk(
                    id=str(uuid.uuid5(_IDS, f"{chatbot_id}/{stem}/{draft.position}")),
                    chatbot_id=chatbot_id,
                    document_id=stem,
                    position=draft.position,
                    text=draft.text,
                    title=doc.title,
                    heading_path=draft.heading_path,
                    token_count=draft.token_count,
                )
            )
    return chunks


def questions() -> list[Question]:
    """The in-scope questions (the file also holds out-of-scope ones, for ``tests/quality``)."""
    raw = json.loads((QUALITY_DIR / "questions.json").read_text())
    return [Question(item["q"], item["doc"]) for item in raw if "doc" in item]


async def evaluate(store: VectorStore, chatbot_id: str) -> Scores:
    asked = questions()
    ranks: list[int | None] = []
    for question in asked:
        hits = await store.search(chatbot_id, question.text, DEPTH)
        rank = next(
            (i for i, hit in enumerate(hits, 1) if hit.chunk.document_id == question.document),
            None,
        )
        ranks.append(rank)
    recall = sum(1 for r in ranks if r is not None and r <= 3) / len(ranks)
    mrr = sum(1 / r for r in ranks if r is not None) / len(ranks)
    return Scores(recall, mrr, tuple(ranks))
