"""The answer-quality sets: small knowledge bases with the questions a visitor asks them.

Each set is a folder of documents (Markdown, HTML, plain text; ``*.pdf.txt`` sources become
PDFs through ``pdfgen.make_pdf``) and a ``questions.json`` whose items are either

- in scope: ``{"q": ..., "doc": <stem of the answering file>, "fact": [...]}``, where a
  correct answer contains at least one of the ``fact`` strings (case-insensitive); or
- not: ``{"q": ..., "kind": "out_of_scope" | "off_topic" | "greeting"}``. Out-of-scope
  questions are near misses, in the site's own vocabulary, about things it does not offer;
  off-topic ones are world knowledge or chit-chat.

The thermostat set is the retrieval-quality set (``tests/retrieval/quality``), extended; the
bakery and the city library were written for this, and the bike shop later, by someone who
had not seen the answerability rules, as a check on them (most of its in-scope questions are
paraphrases). The vet clinic came last, written the same way (blind to the rules and to the
answer judge's prompt), and was first measured as it was written, before anything changed.
``benchmarks/eval.py`` runs them all through the public API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tests.support.pdfgen import make_pdf

Kind = Literal["in_scope", "out_of_scope", "off_topic", "greeting"]
HERE = Path(__file__).parent
SET_DIRS = {
    "thermostat": HERE.parent / "retrieval" / "quality",
    "bakery": HERE / "bakery",
    "library": HERE / "library",
    "bikeshop": HERE / "bikeshop",
    "vetclinic": HERE / "vetclinic",
}


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    kind: Kind
    document: str | None = None  # the answering file's stem (in scope only)
    facts: tuple[str, ...] = ()  # any one of them makes an answer correct

    def has_fact(self, answer: str) -> bool:
        lowered = answer.lower()
        return any(fact.lower() in lowered for fact in self.facts)


@dataclass(frozen=True, slots=True)
class Document:
    stem: str
    filename: str  # as uploaded
    data: bytes

    def url(self, set_name: str) -> str:
        return f"https://{set_name}.example/{self.stem}"


@dataclass(frozen=True, slots=True)
class QualitySet:
    name: str
    documents: tuple[Document, ...]
    questions: tuple[Question, ...]

    def of_kind(self, kind: Kind) -> list[Question]:
        return [q for q in self.questions if q.kind == kind]

    @property
    def site(self) -> str:
        return f"https://{self.name}.example"


def load(name: str) -> QualitySet:
    folder = SET_DIRS[name]
    documents = []
    for path in sorted(folder.iterdir()):
        if path.name == "questions.json" or path.is_dir():
            continue
        if path.name.endswith(".pdf.txt"):
            paragraphs = [p.strip() for p in path.read_text().split("\n\n") if p.strip()]
            stem = path.name.removesuffix(".pdf.txt")
            pdf = make_pdf(paragraphs, title=paragraphs[0])
            documents.append(Document(stem, f"{stem}.pdf", pdf))
        else:
            documents.append(Document(path.stem, path.name, path.read_bytes()))
    questions = []
    for item in json.loads((folder / "questions.json").read_text()):
        if "doc" in item:
            facts = item.get("fact", ())
            facts = (facts,) if isinstance(facts, str) else tuple(facts)
            questions.append(Question(item["q"], "in_scope", item["doc"], facts))
        else:
            questions.append(Question(item["q"], item["kind"]))
    return QualitySet(name, tuple(documents), tuple(questions))


def load_all() -> list[QualitySet]:
    return [load(name) for name in SET_DIRS]
