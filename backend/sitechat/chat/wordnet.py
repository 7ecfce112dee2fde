"""A reader of WordNet's database files (the format Princeton's WordNet 3.0 ships, as Debian's
``wordnet-base`` installs it in ``/usr/share/wordnet``): which words a word's senses relate to.

Answerability asks one thing of WordNet: what a question's word may be called in a passage
("cash" is a kind of "payment", a "toddler" a kind of "child", "sold" a form of "sell"). The
files are read where they lie, through ``mmap``: the index files are sorted, so a lemma is a
binary search away, and a synset is a seek to its byte offset in the data file. Nothing is
loaded up front but the exception lists ("sold" -> "sell"), so a worker holds about 1.25 MiB
of its own (the files' pages are the kernel's page cache, shared by every worker), and a
word's related words take about 0.3 ms, then come from a cache.

The format (``wndb(5WN)``): ``index.<pos>`` lines are ``lemma pos synset_cnt p_cnt
[ptr_symbol...] sense_cnt tagsense_cnt synset_offset...``; ``data.<pos>`` lines are
``offset lex_filenum ss_type w_cnt(hex) word lex_id ... p_cnt ptr... | gloss``, a pointer
being ``symbol offset pos source/target(hex)``; ``<pos>.exc`` lines are ``inflected base...``.
Licence lines at the head of each file start with two spaces.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_PATH = Path("/usr/share/wordnet")  # Debian's wordnet-base

_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
# WordNet's morphy: the suffixes an inflected form may lose, per part of speech.
_DETACH = {
    "n": (
        ("s", ""),
        ("ses", "s"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ),
    "v": (
        ("s", ""),
        ("ies", "y"),
        ("es", "e"),
        ("es", ""),
        ("ed", "e"),
        ("ed", ""),
        ("ing", "e"),
        ("ing", ""),
    ),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}
# The pointers followed: a word's synonyms are its synset's words; these add its derived forms
# ("hire"/"hiring"/"hirer"), pertainyms and participles ("smashed" from "smash"), verb groups,
# and what it is a kind of (hypernyms: "bedroom" is a "room"). Not "similar to": adjective
# clusters are loose ("private" is similar to "close").
SAME = frozenset({"+", "\\", "<", "^", "$"})
BROADER = frozenset({"@", "@i"})
# Senses looked at per base form and part of speech, the most frequent first (WordNet orders
# them by their count in its tagged corpus): rare senses relate words a visitor does not mean
# ("scooter" is also a kind of boat).
SENSES = 2


@dataclass(frozen=True, slots=True)
class Pointer:
    symbol: str
    offset: int
    pos: str
    source: int  # the word of this synset it is from, 1-based; 0 for the whole synset
    target: int  # the word of the target synset it points to; 0 for all of them


@dataclass(frozen=True, slots=True)
class Synset:
    offset: int
    pos: str
    words: tuple[str, ...]  # lower-cased, multi-word lemmas with spaces
    pointers: tuple[Pointer, ...]


class _Sorted:
    """A sorted text file of ``key rest`` lines, searched in place (binary search over
    ``mmap``)."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as file:
            self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)

    def find(self, key: str) -> bytes | None:
        wanted = key.encode() + b" "
        data = self._map
        low, high = 0, len(data)
        while low < high:
            middle = (low + high) // 2
            start = data.rfind(b"\n", 0, middle) + 1
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end
            line = data[start:end]
            if line.startswith(wanted):
                return line
            if line.startswith(b"  ") or line < wanted:  # the licence sorts first
                low = end + 1
            else:
                high = start
        return None

    def line_at(self, offset: int) -> bytes:
        end = self._map.find(b"\n", offset)
        return self._map[offset : end if end >= 0 else len(self._map)]

    def close(self) -> None:
        self._map.close()


class WordNet:
    """WordNet's database in ``path`` (see the module docstring). ``WordNet.open`` returns
    None when the files are not there."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._index = {pos: _Sorted(path / f"index.{name}") for pos, name in _FILES.items()}
        self._data = {pos: _Sorted(path / f"data.{name}") for pos, name in _FILES.items()}
        self._exceptions: dict[str, dict[str, tuple[str, ...]]] = {}
        for pos, name in _FILES.items():
            table: dict[str, tuple[str, ...]] = {}
            exc = path / f"{name}.exc"
            if exc.exists():
                for line in exc.read_text(encoding="utf-8", errors="replace").splitlines():
                    inflected, *bases = line.split()
                    table[inflected] = tuple(bases)
            self._exceptions[pos] = table
        self.related = lru_cache(maxsize=4096)(self._related)

    @classmethod
    def open(cls, path: Path | None = None) -> WordNet | None:
        path = path or DEFAULT_PATH
        if not all(
            (path / f"{kind}.{name}").is_file()
            for name in _FILES.values()
            for kind in ("index", "data")
        ):
            return None
        return cls(path)

    def close(self) -> None:
        for table in (*self._index.values(), *self._data.values()):
            table.close()

    def lemmas(self, word: str) -> list[tuple[str, str]]:
        """The base forms of ``word`` WordNet knows, with their part of speech: ``sold`` gives
        ("sold", "a") and ("sell", "v"); ``bakers`` gives ("baker", "n")."""
        return [(form, pos) for form, pos, _ in self._bases(word)]

    def synsets(self, word: str, senses: int | None = None) -> list[Synset]:
        """The senses of every base form of ``word``, the ``senses`` most frequent of each
        (all by default)."""
        return self._synsets(self._bases(word), senses)

    def _bases(self, word: str) -> list[tuple[str, str, list[int]]]:
        """``lemmas``, each with its senses' offsets, looked up once."""
        word = "_".join(word.lower().split())
        if not word:  # the search would land on the licence lines
            return []
        found: list[tuple[str, str, list[int]]] = []
        for pos in _FILES:
            forms = [word, *self._exceptions[pos].get(word, ())]
            forms += [
                word[: -len(end)] + base
                for end, base in _DETACH[pos]
                if word.endswith(end) and len(word) > len(end)
            ]
            for form in dict.fromkeys(forms):
                offsets = self._offsets(form, pos)
                if offsets:
                    found.append((form, pos, offsets))
        return found

    def _synsets(self, bases: list[tuple[str, str, list[int]]], senses: int | None) -> list[Synset]:
        return [
            self.synset(offset, pos) for _, pos, offsets in bases for offset in offsets[:senses]
        ]

    def synset(self, offset: int, pos: str) -> Synset:
        fields = self._data["a" if pos == "s" else pos].line_at(offset).split(b" | ", 1)[0]
        parts = fields.decode("utf-8", "replace").split()
        count = int(parts[3], 16)
        words = tuple(_clean(parts[4 + 2 * i]) for i in range(count))
        at = 4 + 2 * count
        pointers = []
        for i in range(int(parts[at])):
            symbol, target, target_pos, where = parts[at + 1 + 4 * i : at + 5 + 4 * i]
            pointers.append(
                Pointer(symbol, int(target), target_pos, int(where[:2], 16), int(where[2:], 16))
            )
        return Synset(offset, parts[2], words, tuple(pointers))

    def _related(self, word: str) -> frozenset[str]:
        """Words that may name what ``word`` names in its ``SENSES`` most frequent senses:
        synonyms, derived forms, and the words of what it is a kind of (one step up). Single
        words only, lower-cased; ``word``'s own base forms included."""
        found: set[str] = set()
        bases = self._bases(word)
        forms = {form for form, _, _ in bases}
        for synset in self._synsets(bases, SENSES):
            found.update(synset.words)
            own = {i for i, w in enumerate(synset.words, 1) if w.replace(" ", "_") in forms}
            for pointer in synset.pointers:
                if pointer.symbol in BROADER:
                    found.update(self.synset(pointer.offset, pointer.pos).words)
                elif pointer.symbol in SAME and (pointer.source in own or pointer.source == 0):
                    target = self.synset(pointer.offset, pointer.pos)
                    found.update(
                        target.words
                        if pointer.target == 0
                        else target.words[pointer.target - 1 : pointer.target]
                    )
        return frozenset(w for w in found if " " not in w and "-" not in w)

    def _offsets(self, lemma: str, pos: str) -> list[int]:
        line = self._index[pos].find(lemma)
        if line is None:
            return []
        parts = line.decode("utf-8", "replace").split()
        pointer_count = int(parts[3])
        return [int(p) for p in parts[4 + pointer_count + 2 :]]


def _clean(word: str) -> str:
    if word.endswith(")") and "(" in word:  # adjective markers: "galore(ip)"
        word = word[: word.index("(")]
    return word.replace("_", " ").lower()
