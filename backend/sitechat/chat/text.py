"""Small, shared text normalisation for the chat pipeline's heuristics (not for BM25, which
Qdrant's own tokenizer does): lowercase word terms without stopwords, lightly stemmed."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+(?:['\u2019][a-z]+)?")

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "please",
        "tell",
        "know",
        "want",
        "need",
        "let",
        "get",
        "got",
        "also",
        "really",
        "thanks",
        "thank",
        "hi",
        "hello",
    ]
)


def stem(word: str) -> str:
    """A deliberately light suffix stripper, applied alike to questions and passages: enough
    to match "prices"/"price", "embedding"/"embed", "policies"/"policy"."""
    if len(word) <= 4:
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            base = word[: -len(suffix)]
            # "embedding" -> "embedd" -> "embed"
            if base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]
            return stem(base) if base.endswith("e") else base
    if word.endswith("e"):
        return word[:-1]
    if word.endswith("s") and not word.endswith("ss"):
        return stem(word[:-1]) if word[:-1].endswith("e") else word[:-1]
    return word


def content_words(text: str) -> list[str]:
    """Lowercased words of ``text`` without stopwords, in order, with repeats."""
    words = (w.replace("\u2019", "'").split("'")[0] for w in _WORD.findall(text.lower()))
    return [w for w in words if w and w not in STOPWORDS]


def content_terms(text: str) -> list[str]:
    """``content_words`` lightly stemmed: for comparing a question with passages."""
    return [stem(w) for w in content_words(text)]
