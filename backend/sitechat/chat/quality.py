"""``context_quality``: how well the retrieved passages cover the question.

Retrieval scores alone do not say this: BM25 scores are unbounded and depend on the corpus,
so a score of 7 is strong in one chatbot and weak in another. The level is decided from
*term coverage* (which of the question's content terms the passages contain), with the raw
scores reported beside it. The fields and rules are documented in ``docs/context-quality.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any, Literal

from sitechat.chat.text import content_terms
from sitechat.retrieval.base import ScoredChunk

Level = Literal["high", "medium", "low", "none"]

HIGH_COVERAGE = 0.75
HIGH_TOP_COVERAGE = 0.5
MEDIUM_COVERAGE = 0.5


@dataclass(frozen=True, slots=True)
class ContextQuality:
    level: Level
    top_score: float
    mean_score: float
    chunks_used: int
    coverage: float  # share of the question's content terms found in the passages used
    top_coverage: float  # the same, for the best passage alone

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "top_score": round(self.top_score, 4),
            "mean_score": round(self.mean_score, 4),
            "chunks_used": self.chunks_used,
            "coverage": round(self.coverage, 4),
            "top_coverage": round(self.top_coverage, 4),
        }


def _coverage(terms: set[str], text: str) -> float:
    if not terms:
        return 0.0
    return len(terms & set(content_terms(text))) / len(terms)


def assess(question: str, results: Sequence[ScoredChunk]) -> ContextQuality:
    if not results:
        return ContextQuality("none", 0.0, 0.0, 0, 0.0, 0.0)
    terms = set(content_terms(question))
    passages = [f"{r.chunk.title} {r.chunk.heading or ''} {r.chunk.text}" for r in results]
    coverage = _coverage(terms, " ".join(passages))
    top_coverage = _coverage(terms, passages[0])
    scores = [r.score for r in results]
    level: Level
    if not terms:
        # Nothing to measure against (e.g. "hi"): the search still found passages.
        level = "low"
    elif coverage == 0.0:
        level = "none"
    elif coverage >= HIGH_COVERAGE and top_coverage >= HIGH_TOP_COVERAGE:
        level = "high"
    elif coverage >= MEDIUM_COVERAGE:
        level = "medium"
    else:
        level = "low"
    return ContextQuality(
        level=level,
        top_score=max(scores),
        mean_score=fmean(scores),
        chunks_used=len(results),
        coverage=coverage,
        top_coverage=top_coverage,
    )
