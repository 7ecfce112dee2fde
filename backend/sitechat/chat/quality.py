"""``context_quality``: how well the retrieved passages cover the question.

Retrieval scores alone do not say this. BM25 scores are unbounded and depend on the corpus,
so a score of 7 is strong in one chatbot and weak in another; hybrid search returns
reciprocal-rank-fusion scores, which depend only on ranks (the best chunk of *any* search
scores about 2/61, relevant or not). So the level is decided from two fixed-scale signals,
with the raw scores reported beside them:

- *term coverage*: which of the question's content terms the passages contain (always);
- *similarity*: the cosine between the question's and the best passage's dense vectors
  (only when a dense model is configured), which catches passages that answer in other
  words ("get my money back" → "refunds").

Each signal gives a level; the better one wins. The fields and rules are documented in
``docs/context-quality.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any, Literal

from sitechat.retrieval.base import ScoredChunk
from sitechat.text import content_terms, terms

Level = Literal["high", "medium", "low", "none"]
_RANK: dict[Level, int] = {"none": 0, "low": 1, "medium": 2, "high": 3}

HIGH_COVERAGE = 0.75
HIGH_TOP_COVERAGE = 0.5
MEDIUM_COVERAGE = 0.5


@dataclass(frozen=True, slots=True)
class SimilarityLevels:
    """Cosine similarity of the best passage at which each level starts.

    The defaults are calibrated on all-MiniLM-L6-v2 over the retrieval-quality set in
    ``tests/retrieval/quality`` (best answering passage: median 0.46, 10th percentile 0.25;
    best passage for 12 off-topic questions: median 0.11, highest 0.24), so ``low`` starts
    above every off-topic question seen. Similarity only ever *raises* the level that term
    coverage gives. Other models spread their cosines differently: OpenAI's
    text-embedding-3 models sit lower (``OPENAI_SIMILARITY_LEVELS``, not calibrated here).
    """

    high: float = 0.55
    medium: float = 0.40
    low: float = 0.30

    def level(self, similarity: float) -> Level:
        if similarity >= self.high:
            return "high"
        if similarity >= self.medium:
            return "medium"
        if similarity >= self.low:
            return "low"
        return "none"


DEFAULT_SIMILARITY_LEVELS = SimilarityLevels()
OPENAI_SIMILARITY_LEVELS = SimilarityLevels(high=0.5, medium=0.38, low=0.28)


@dataclass(frozen=True, slots=True)
class ContextQuality:
    level: Level
    top_score: float
    mean_score: float
    chunks_used: int
    coverage: float  # share of the question's content terms found in the passages used
    top_coverage: float  # the same, for the best passage alone
    # Present when the search was hybrid: "rrf" scores, and the best passage's cosine.
    score_kind: str = "bm25"
    top_similarity: float | None = None
    # Whether the passages answer the question (``chat.answerability``), once judged, and
    # the question's distinctive terms that no passage contains.
    answerability: str | None = None
    unsupported_terms: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "level": self.level,
            "top_score": round(self.top_score, 4),
            "mean_score": round(self.mean_score, 4),
            "chunks_used": self.chunks_used,
            "coverage": round(self.coverage, 4),
            "top_coverage": round(self.top_coverage, 4),
        }
        if self.score_kind != "bm25" or self.top_similarity is not None:
            out["score_kind"] = self.score_kind
            out["top_similarity"] = (
                round(self.top_similarity, 4) if self.top_similarity is not None else None
            )
        if self.answerability is not None:
            out["answerability"] = self.answerability
            out["unsupported_terms"] = list(self.unsupported_terms)
        return out


def _coverage(question: set[str], passage_terms: frozenset[str]) -> float:
    if not question:
        return 0.0
    return len(question & passage_terms) / len(question)


def _coverage_level(terms: set[str], coverage: float, top_coverage: float) -> Level:
    if not terms:
        # Nothing to measure against (e.g. "hi"): the search still found passages.
        return "low"
    if coverage == 0.0:
        return "none"
    if coverage >= HIGH_COVERAGE and top_coverage >= HIGH_TOP_COVERAGE:
        return "high"
    if coverage >= MEDIUM_COVERAGE:
        return "medium"
    return "low"


def assess(
    question: str,
    results: Sequence[ScoredChunk],
    *,
    similarity_levels: SimilarityLevels = DEFAULT_SIMILARITY_LEVELS,
) -> ContextQuality:
    if not results:
        return ContextQuality("none", 0.0, 0.0, 0, 0.0, 0.0)
    asked = set(content_terms(question))
    # Each passage's terms are remembered (``terms``): the same passages answer many questions.
    found = [terms(f"{r.chunk.title} {r.chunk.heading or ''} {r.chunk.text}") for r in results]
    coverage = _coverage(asked, frozenset().union(*found))
    top_coverage = _coverage(asked, found[0])
    level = _coverage_level(asked, coverage, top_coverage)
    similarities = [r.similarity for r in results if r.similarity is not None]
    top_similarity = max(similarities) if similarities else None
    if top_similarity is not None:
        by_meaning = similarity_levels.level(top_similarity)
        if _RANK[by_meaning] > _RANK[level]:
            level = by_meaning
    scores = [r.score for r in results]
    return ContextQuality(
        level=level,
        top_score=max(scores),
        mean_score=fmean(scores),
        chunks_used=len(results),
        coverage=coverage,
        top_coverage=top_coverage,
        score_kind=results[0].score_kind,
        top_similarity=top_similarity,
    )
