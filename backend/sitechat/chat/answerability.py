"""Answerability: do the retrieved passages answer this question, not just share its words?

Retrieval always finds *something*, and a near miss shares most of its words with the
documents: "Do you sell gluten-free pizza?" to a bakery whose allergen page says it bakes no
gluten-free bread. What such a question asks about (pizza) is the word no passage contains.
So the decision looks at the words the passages do *not* cover:

1. A greeting ("hi", "good morning") is answered with the chatbot's greeting, without search.
2. The question's *distinctive* terms are its content terms less ``GENERIC_WORDS``: common
   verbs, adjectives and adverbs ("much", "keep", "happen", "different") that say how a
   question is asked, not what about, and less the figures the visitor gives of their own
   case ("my 15-year-old", "after 45 days"), which passages answer with figures of their own.
   A question with none ("How are you today?") is small talk: the fallback (unless it
   follows up on the conversation: "and what about it?").
3. A distinctive term no retrieved passage contains (allowing for light stemming: a shared
   prefix of five letters, words the passages hyphenate or split, "wifi"/"Wi-Fi", and the
   Snowball stems of the BM25 index itself, "save"/"savings", "fries"/"fried") is
   *unsupported*. One is enough to make the question unanswerable: the documents may mention
   everything around it, but not the thing asked about ("capital" of France, "pizza",
   "doorbell"). Retrieval ranks by the terms it finds, so a term absent from the top passages
   is, with BM25, almost always absent from the chatbot's whole corpus: the chatbot's own IDF
   says it is the rarest word of the question.
4. Except when the answer has a type the passages hold: "How much …", "How long …", "When …",
   "How many …" questions whose passages contain a price, a duration, a date or time, or a
   number (with at least one distinctive term supported). "What does the return label cost
   from Italy?" is answered by "from other countries the return label costs 6.50 euros":
   "Italy" is unsupported, but the answer's type is there.

On the three sets of ``make eval`` this gives the fallback to 97% of the near misses, all
off-topic questions and 13% of the in-scope ones (14% before the Snowball stems), most of
them paraphrases whose key word is in no chunk ("cash back" for a refund). The measured
numbers per set, and the signals that did not work (the best
passage's dense similarity, its margin, the local model judging, support from more passages,
compound heads, weighing the missing terms by IDF), are in ``docs/context-quality.md``.

``judge_with_meaning`` adds rescues for paraphrases, by the meaning of single words. First
by WordNet, when its database is installed (``WordNetMeaning``): a passage holds a synonym, a
derived form or what the word is a kind of ("bedroom"/"room"). Then by all-MiniLM-L6-v2, the
``dense`` extra (``WordMeaning``): an unsupported term is supported by a passage
word close to it (cosine at least ``SYNONYM_SIMILARITY``) that stands out from the passage's
other words (by ``SYNONYM_MARGIN``): "bedroom" by "rooms", "hiring" by "jobs", "Spanish" by
"language". A near miss usually names one more member of a list the passages enumerate
("Australia" to a shop shipping to Germany, Austria and France): its nearest word has close
rivals, and it stays unsupported. It runs only on questions the lexical rule finds
unanswerable, and without the model it changes nothing.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol

import anyio

from sitechat.chat.wordnet import WordNet
from sitechat.errors import VectorStoreError
from sitechat.retrieval.base import ScoredChunk
from sitechat.retrieval.dense import MiniLMEmbedder
from sitechat.retrieval.sparse import embed_document, embed_query
from sitechat.text import content_words, stem, terms, words

logger = logging.getLogger(__name__)

Verdict = Literal["answerable", "unanswerable", "small_talk", "greeting"]

# A shared prefix this long makes two terms the same word ("authenticate"/"authentication").
PREFIX_MATCH = 5
# A passage word means a question's word when their cosine (all-MiniLM-L6-v2) is at least
# this, and beats the passage's next closest word of another stem by the margin. Chosen on the
# three sets of ``make eval`` (see ``docs/context-quality.md``).
SYNONYM_SIMILARITY = 0.6
SYNONYM_MARGIN = 0.15
WORD_CACHE_SIZE = 8192

# Words that say how a question is asked rather than what it is about. A general list of
# common English verbs, adjectives and adverbs, not drawn from any chatbot's documents, and
# what contractions leave ("won't" is read as "won").
_GENERIC = """
    able about above accept across act actually add again ago all allow almost alone along
    already also always another any anymore anyone anything anyway anywhere appear around
    arrive ask available away back bad be become before begin behind being believe belong
    best better big bit both break bring broke broken build built buy call came can cannot
    care carry cause certain change check choose come coming correct cost could count cover
    create current cut daily dark deal decide did different do done down during each early
    easy either else end enough especially even ever every everyone everything exactly
    expect explain fact fail fall far fast feel few fill find fine finish first fit fix
    follow forget found free full get give given go going gone good got great grow happen
    hard have hear help here high hold how however hurt idea important instead just keep
    kept kind know large last late later least leave left less let like likely little live
    long look lose losing lost lot low made main make many matter may maybe mean might mind
    mine miss near nearby more most move much must need never new next nice normal normally
    not nothing
    now number often ok okay old once one only open other otherwise own part past pay people
    person pick place plan play point possible pretty probably problem put question quick
    quickly quite rather read ready real really reason reach receive recent remember right
    run said same saw say second see seem seen send sent set several shall short should show
    side simple since small so some someone something sometimes soon sort start stay still
    stop such suppose sure take taken talk tell than that thing things think though through
    time today together told tomorrow tonight too took total towards tried true try turn
    type under understand unless until up upon use used using usual usually very wait want
    way well went were whatever whenever whether while whole why will wish within without
    work worse worst would write wrong yes yet
    won ain aren couldn didn hadn hasn haven shan shouldn wasn weren wouldn
    began bought brought chose felt forgot gave grew heard held knew known meant met paid ran
    shown stood thought understood wrote written
"""
GENERIC_WORDS = frozenset(stem(w) for w in _GENERIC.split())

_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|hiya|howdy|hallo|greetings|good\s+(?:morning|afternoon|evening|day))"
    r"(?:\s+(?:there|all|everyone|team|folks))?[\s!.,:;)~]*$",
    re.IGNORECASE,
)

# What kind of value answers a question, and what such a value looks like in a passage.
_NUMBER = r"(?:\d+(?:[.,]\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty|thirty|forty|fifty|sixty|ninety|hundred)"  # noqa: E501
# A figure the visitor gives ("my 15-year-old", "32 kg", "after 45 days", "at 10pm") is a
# value of their case, not what the question is about: the passage answers it with its own
# figures ("ages 4 to 10", "within 30 days"), so it is no distinctive term. Names with a figure
# in them ("T3", "5G", "3D") are words, and stay.
_FIGURE = re.compile(rf"^(?:{_NUMBER}|\d+(?:[.,:]\d+)*(?:st|nd|rd|th|am|pm)?)$", re.I)
_ANSWER_TYPES: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (  # a price
        re.compile(
            r"\bhow much (?:is|are|does|do|will|would)\b|\b(?:cost|price|fee|charge)s?\b"
            r"|\b(?:cheap|cheaper|cheapest|expensive)\b",
            re.I,
        ),
        re.compile(
            rf"(?:[$€£]\s?\d|\b{_NUMBER}\s?(?:euros?|eur|dollars?|usd|cents?|pounds?|gbp)\b|\bfree\b)",
            re.I,
        ),
    ),
    (  # a duration
        re.compile(r"\bhow (?:long|fast|soon|quickly)\b|\bin advance\b", re.I),
        re.compile(
            rf"\b{_NUMBER}(?:\s?(?:to|-|\u2013)\s?{_NUMBER})?\s?(?:working\s)?"
            r"(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?)\b",
            re.I,
        ),
    ),
    (  # a moment: a time of day, a day, a month
        re.compile(r"^\s*(?:when|what time|which days?|until when)\b", re.I),
        re.compile(
            r"\b\d{1,2}(?::\d{2})?\s?(?:am|pm)\b|\b\d{1,2}:\d{2}\b|\b(?:monday|tuesday|"
            r"wednesday|thursday|friday|saturday|sunday|january|february|march|april|may|"
            r"june|july|august|september|october|november|december|noon|midnight)\b",
            re.I,
        ),
    ),
    (  # a count
        re.compile(r"\bhow many\b", re.I),
        re.compile(rf"\b{_NUMBER}\b", re.I),
    ),
)


@dataclass(frozen=True, slots=True)
class Answerability:
    verdict: Verdict
    # Distinctive terms of the question that no retrieved passage contains (stemmed).
    unsupported: tuple[str, ...] = ()
    # Those a passage holds only in other words (a ``Meaning``'s synonyms), stemmed.
    meant: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return self.verdict == "answerable"


GREETING = Answerability("greeting")


def is_greeting(message: str) -> bool:
    return bool(_GREETING.match(message))


def question_words(question: str) -> dict[str, str]:
    """The question's distinctive terms, in order, each with the first word it came from:
    passages are matched on the term, and on the word's BM25 term (``bm25_term``)."""
    found: dict[str, str] = {}
    for word in content_words(question):
        term = stem(word)
        if term not in GENERIC_WORDS and not _FIGURE.match(word):
            found.setdefault(term, word)
    return found


def distinctive_terms(question: str) -> list[str]:
    """The question's content terms that are not ``GENERIC_WORDS``, in order, distinct."""
    return list(question_words(question))


@lru_cache(maxsize=4096)  # the same passages come back for many questions
def passage_terms(text: str) -> frozenset[str]:
    """A passage's terms, plus each pair of adjacent words joined ("Wi-Fi" gives "wifi")."""
    found = set(terms(text))  # shared with ``chat.quality``'s coverage (cached)
    split = words(text)
    found.update(stem(a + b) for a, b in itertools.pairwise(split))
    return frozenset(found)


@lru_cache(maxsize=4096)
def passage_bm25_terms(text: str) -> frozenset[int]:
    """The terms the BM25 index keeps for a passage (see ``bm25_term``)."""
    return frozenset(embed_document(text).indices)


def supports(term: str, terms: frozenset[str] | set[str]) -> bool:
    if term in terms:
        return True
    return any(
        min(len(term), len(other)) >= PREFIX_MATCH
        and (other.startswith(term) or term.startswith(other))
        for other in terms
    )


@lru_cache(maxsize=4096)
def bm25_term(word: str) -> int | None:
    """The term the BM25 index keeps for ``word`` (its Snowball stem, hashed); None when it
    keeps none (a stopword) or several."""
    indices = embed_query(word).indices
    return indices[0] if len(indices) == 1 else None


def expected_answer_found(question: str, texts: Sequence[str]) -> bool:
    """Whether the question asks for a typed value (price, duration, moment, count) and a
    passage holds a value of that type."""
    for asks, looks_like in _ANSWER_TYPES:
        if asks.search(question):
            return any(looks_like.search(text) for text in texts)
    return False


def judge(
    question: str, results: Sequence[ScoredChunk], *, follow_up: bool = False
) -> Answerability:
    """Whether ``results`` answer ``question`` (see the module docstring). A ``follow_up``
    ("and what does it cost?") takes its subject from the conversation: without a
    distinctive term of its own it is not small talk, and the level decides."""
    if is_greeting(question):
        return GREETING
    wanted = question_words(question)
    if not wanted:
        return Answerability("answerable" if follow_up and results else "small_talk")
    if not results:
        return Answerability("unanswerable", tuple(wanted))
    texts = _texts(results)
    covered = frozenset().union(*map(passage_terms, texts))
    missing = {term: word for term, word in wanted.items() if not supports(term, covered)}
    if missing:  # the index's own stems may still hold them
        indexed = frozenset().union(*map(passage_bm25_terms, texts))
        missing = {t: w for t, w in missing.items() if bm25_term(w) not in indexed}
    unsupported = tuple(missing)
    if not unsupported:
        return Answerability("answerable")
    if len(unsupported) < len(wanted) and expected_answer_found(question, texts):
        return Answerability("answerable", unsupported)
    return Answerability("unanswerable", unsupported)


def _texts(results: Sequence[ScoredChunk]) -> list[str]:
    return [f"{r.chunk.title} {r.chunk.heading or ''} {r.chunk.text}" for r in results]


class Meaning(Protocol):
    """Which of a question's unsupported words a passage word names in other words."""

    async def synonyms(self, wanted: Sequence[str], candidates: Sequence[str]) -> set[str]: ...


class Meanings:
    """Several ``Meaning``s asked in order, each about the words the ones before left."""

    def __init__(self, *parts: Meaning) -> None:
        self.parts = parts

    async def synonyms(self, wanted: Sequence[str], candidates: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for part in self.parts:
            left = [w for w in wanted if w not in found]
            if not left:
                break
            found |= await part.synonyms(left, candidates)
        return found


class WordNetMeaning:
    """Which words name the same thing, by WordNet (Debian's ``wordnet-base``; see
    ``chat.wordnet``): a question's word is supported by a passage word that is one of its
    synonyms, derived forms ("sold"/"sell") or what it is a kind of ("bedroom"/"room",
    "toddler"/"child"), in its most frequent senses. The passage must hold that very word (no
    shared prefix: "motorboat" is not "motor"), and generic words ("cover", "take") support
    nothing: they are in every passage. Lookups are reads of the files through ``mmap``, done in a
    worker thread (a cold page can cost a few milliseconds)."""

    def __init__(self, wordnet: WordNet) -> None:
        self.wordnet = wordnet
        self.available = True

    async def synonyms(self, wanted: Sequence[str], candidates: Sequence[str]) -> set[str]:
        if not self.available or not wanted or not candidates:
            return set()
        try:
            return await anyio.to_thread.run_sync(self.synonyms_blocking, wanted, candidates)
        except (ValueError, IndexError, OSError):  # files not in the format read, or closed
            self.available = False
            logger.warning("answerability: WordNet unreadable, words alone", exc_info=True)
            return set()

    def synonyms_blocking(self, wanted: Sequence[str], candidates: Sequence[str]) -> set[str]:
        passage = frozenset(stem(c) for c in candidates)
        found = set()
        for word in wanted:
            own = stem(word)
            for related in self.wordnet.related(word):
                term = stem(related)
                if term != own and term in passage and term not in GENERIC_WORDS:
                    found.add(word)
                    break
        return found


class ModelLoader(Protocol):
    """Loads a sentence-transformers model (``MiniLMEmbedder`` does) in the calling thread."""

    def load_blocking(self) -> Any: ...


class WordMeaning:
    """Which words mean the same, by all-MiniLM-L6-v2's vectors of single words.

    The model loads the first time it is needed, in a worker thread, as does every encoding.
    Word vectors are cached (LRU): the same passages, so the same words, come back. Without
    the ``dense`` extra (or if the model fails to load) it finds no synonyms, and says so once
    in the log.
    """

    def __init__(
        self, embedder: ModelLoader | None = None, *, cache_size: int = WORD_CACHE_SIZE
    ) -> None:
        self._embedder: ModelLoader = embedder or MiniLMEmbedder()
        self._cache_size = cache_size
        self._vectors: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()  # the cache and the model, used from worker threads
        self.available = True

    async def synonyms(self, wanted: Sequence[str], candidates: Sequence[str]) -> set[str]:
        """The words of ``wanted`` that one of ``candidates`` means (see the module
        docstring)."""
        if not self.available or not wanted or not candidates:
            return set()
        try:
            return await anyio.to_thread.run_sync(
                self._synonyms_blocking, list(wanted), list(candidates)
            )
        except (VectorStoreError, ImportError):
            self.available = False
            logger.info("answerability: no word meanings (no local dense model)", exc_info=True)
            return set()

    def _synonyms_blocking(self, wanted: list[str], candidates: list[str]) -> set[str]:
        import numpy as np

        with self._lock:
            vectors = self._encode(wanted + candidates)
        passage = np.array(vectors[len(wanted) :])
        found: set[str] = set()
        for word, vector in zip(wanted, vectors[: len(wanted)], strict=True):
            similarity = passage @ vector
            order = np.argsort(-similarity)
            best = order[0]
            best_term = frozenset({stem(candidates[best])})
            rival = next(
                (similarity[i] for i in order[1:] if not supports(stem(candidates[i]), best_term)),
                0.0,
            )
            best_similarity = float(similarity[best])
            if best_similarity >= SYNONYM_SIMILARITY and best_similarity - rival >= SYNONYM_MARGIN:
                found.add(word)
        return found

    def _encode(self, texts: list[str]) -> list[Any]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            model = self._embedder.load_blocking()
            encoded = model.encode(
                missing, batch_size=64, normalize_embeddings=True, show_progress_bar=False
            )
            self._vectors.update(zip(missing, encoded, strict=True))
        for text in texts:
            self._vectors.move_to_end(text)
        while len(self._vectors) > max(self._cache_size, len(texts)):
            self._vectors.popitem(last=False)
        return [self._vectors[t] for t in texts]


async def judge_with_meaning(
    question: str,
    results: Sequence[ScoredChunk],
    *,
    follow_up: bool = False,
    meaning: Meaning | None = None,
) -> Answerability:
    """``judge``, then, for an unanswerable question, the unsupported terms that a passage
    word means are supported too (see the module docstring). Answerable questions pay
    nothing; without ``meaning`` (no local dense model) this is ``judge``."""
    verdict = judge(question, results, follow_up=follow_up)
    if meaning is None or verdict.verdict != "unanswerable" or not results:
        return verdict
    wanted = question_words(question)
    texts = _texts(results)
    candidates = sorted({w for t in texts for w in content_words(t) if not w.isdigit()})
    meant = await meaning.synonyms([wanted[t] for t in verdict.unsupported], candidates)
    unsupported = tuple(t for t in verdict.unsupported if wanted[t] not in meant)
    if len(unsupported) == len(verdict.unsupported):
        return verdict
    by_meaning = tuple(t for t in verdict.unsupported if wanted[t] in meant)
    if not unsupported:
        return Answerability("answerable", meant=by_meaning)
    if len(unsupported) < len(wanted) and expected_answer_found(question, texts):
        return Answerability("answerable", unsupported, by_meaning)
    return Answerability("unanswerable", unsupported, by_meaning)
