"""The WordNet reader (``chat.wordnet``) on Debian's ``wordnet-base`` files, and a tiny
database written here for the format's corners."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sitechat.chat.wordnet import WordNet
from tests.support.wordnet import open_wordnet


@pytest.fixture(scope="module")
def wordnet() -> Iterator[WordNet]:
    found = open_wordnet()
    try:
        yield found
    finally:
        found.close()


def test_base_forms_come_from_the_exception_lists_and_the_suffix_rules(
    wordnet: WordNet,
) -> None:
    assert ("sell", "v") in wordnet.lemmas("sold")  # verb.exc
    assert ("baker", "n") in wordnet.lemmas("bakers")
    assert ("child", "n") in wordnet.lemmas("children")  # noun.exc
    assert ("hire", "v") in wordnet.lemmas("hiring")
    assert wordnet.lemmas("xqzt") == []
    assert wordnet.lemmas("") == [] and wordnet.related("  ") == frozenset()
    assert wordnet.lemmas("ice cream") == [("ice_cream", "n")]  # a multi-word lemma


def test_related_words_are_synonyms_derived_forms_and_what_a_thing_is_a_kind_of(
    wordnet: WordNet,
) -> None:
    assert "room" in wordnet.related("bedroom")  # hypernym
    assert "child" in wordnet.related("toddler")
    assert "sell" in wordnet.related("sold")  # the base form
    assert "info" in wordnet.related("information")  # a synonym
    assert "payment" in wordnet.related("cash")
    assert "connection" in wordnet.related("join")  # a derived form
    assert "rent" in wordnet.related("hire")


def test_rare_senses_and_loose_adjective_clusters_are_left_out(wordnet: WordNet) -> None:
    # "information" is "data" only in its third sense ("a collection of facts")
    assert "data" in {w for s in wordnet.synsets("information") for w in s.words}
    assert "data" not in wordnet.related("information")
    assert "close" not in wordnet.related("private")  # only "similar to"


def test_multi_word_lemmas_are_not_related_words(wordnet: WordNet) -> None:
    assert all(" " not in w for w in wordnet.related("laptop"))
    assert wordnet.related("laptop") == frozenset({"laptop"})  # its hypernym is two words


def test_a_missing_database_is_none(tmp_path: Path) -> None:
    assert WordNet.open(tmp_path) is None


def _entry(offset: int, pos: str, words: list[str], pointers: list[str]) -> str:
    listed = " ".join(f"{w} 0" for w in words)
    return (
        f"{offset:08d} 05 {pos} {len(words):02x} {listed} {len(pointers):03d} "
        f"{' '.join(pointers)} | a gloss"
    )


def write_database(folder: Path) -> None:
    """Two nouns, the first a kind of the second; an adjective with a marker; licence lines."""
    licence = "  1 This software and database is being provided to you, the LICENSEE\n"
    for name in ("verb", "adv"):
        (folder / f"index.{name}").write_text(licence)
        (folder / f"data.{name}").write_text(licence)
    data = licence
    first = len(data.encode())
    kid = _entry(first, "n", ["kid", "nipper"], ["@ {parent:08d} n 0000"])
    parent_offset = first + len(kid.format(parent=0).encode()) + 1
    data += kid.format(parent=parent_offset) + "\n"
    data += _entry(parent_offset, "n", ["child", "youngster"], []) + "\n"
    (folder / "data.noun").write_text(data)
    (folder / "index.noun").write_text(
        licence
        + f"child n 1 0 1 0 {parent_offset:08d}\n"
        + f"kid n 1 1 @ 1 0 {first:08d}\n"
        + f"nipper n 1 1 @ 1 0 {first:08d}\n"
    )
    adjective = _entry(len(licence), "a", ["tiny(a)"], [])
    (folder / "data.adj").write_text(licence + adjective + "\n")
    (folder / "index.adj").write_text(licence + f"tiny a 1 0 1 0 {len(licence):08d}\n")
    (folder / "noun.exc").write_text("kiddies kid\n")


def test_the_files_are_read_as_the_format_describes(tmp_path: Path) -> None:
    write_database(tmp_path)
    wordnet = WordNet.open(tmp_path)
    assert wordnet is not None
    try:
        assert wordnet.related("kiddies") == frozenset({"kid", "nipper", "child", "youngster"})
        assert wordnet.related("nipper") >= {"child"}
        assert wordnet.related("child") == frozenset({"child", "youngster"})  # nothing above
        (synset,) = wordnet.synsets("tiny")
        assert synset.words == ("tiny",)  # the adjective marker is dropped
        assert wordnet.lemmas("licensee") == []  # the licence is not an entry
    finally:
        wordnet.close()


def test_the_binary_search_finds_every_lemma_of_the_index(wordnet: WordNet) -> None:
    """The index is sorted byte-wise with "_", "-", "'" and digits among the letters: a
    search that compared otherwise would miss some (every 25th lemma of each file here)."""
    for pos, name in (("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv")):
        text = (wordnet.path / f"index.{name}").read_text(encoding="utf-8", errors="replace")
        lemmas = [line.split()[0] for line in text.splitlines() if not line.startswith("  ")]
        missed = [lemma for lemma in lemmas[::25] if not wordnet.lemmas(lemma)]
        assert missed == [], pos
