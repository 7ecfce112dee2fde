"""Shared, small text normalisation for sitechat's own heuristics: follow-up detection,
context-quality coverage and the extractive model's sentence picking. (BM25 does its own
tokenising inside Qdrant.) Questions and passages go through the same functions, so the
stems only need to agree with each other, not be English words.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Words with an apostrophe keep only their first part: "store's" -> "store".
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)?", re.UNICODE)

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
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
        "don",
        "doesn",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "get",
        "got",
        "had",
        "has",
        "have",
        "having",
        "he",
        "hello",
        "her",
        "here",
        "hers",
        "herself",
        "hi",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "isn",
        "aren",
        "it",
        "its",
        "itself",
        "just",
        "know",
        "let",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "need",
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
        "please",
        "really",
        "s",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "t",
        "tell",
        "than",
        "thank",
        "thanks",
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
        "us",
        "very",
        "want",
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
    ]
)


@lru_cache(maxsize=65536)  # words repeat: most calls are one dict lookup
def stem(word: str) -> str:
    """A light stemmer: enough to match "opens"/"opening"/"opened"/"open", "prices"/"price",
    "embedding"/"embed", "policies"/"policy" or "closes"/"closed" with "close"."""
    if word.isdigit() or len(word) <= 3:
        return word
    stripped = True
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "xes", "zes", "ches", "shes")):
        word = word[:-2]
    elif word.endswith("ing") and len(word) >= 6:
        word = word[:-3]
    elif word.endswith(("ed", "ly")) and len(word) >= 6:  # "embed", "reply" stay
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    else:
        stripped = False
    # "shipping" -> "shipp" -> "ship"; but "calling" keeps its "ll".
    if stripped and len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
        word = word[:-1]
    # "close"/"closed"/"closing" all end as "clos".
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def words(text: str) -> list[str]:
    """Lower-cased words of ``text``, in order, apostrophe endings dropped."""
    return [w.replace("\u2019", "'").split("'")[0] for w in _WORD.findall(text.lower())]


def content_words(text: str) -> list[str]:
    """``words`` without stopwords and lone letters, in order, with repeats."""
    return [w for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def content_terms(text: str) -> list[str]:
    """``content_words`` stemmed: for comparing a question with passages."""
    return [stem(w) for w in content_words(text)]


@lru_cache(maxsize=4096)  # the same passages come back for many questions
def terms(text: str) -> frozenset[str]:
    """The distinct ``content_terms`` of ``text`` (remembered for recent texts)."""
    return frozenset(content_terms(text))
