"""Structure-following, token-bounded chunking."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from sitechat.ingestion.chunking import ChunkDraft, chunk_document
from sitechat.tokens import count_tokens
from tests.retrieval.conftest import DOCS


def md(text: str, **kwargs: int) -> list[ChunkDraft]:
    return chunk_document(text, title="Guide", fmt="markdown", **kwargs)


def sentence(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n_words)]
    return " ".join(words).capitalize() + "."


_SAMPLE = (
    "widget install snippet page browser token budget section heading chunk overlap "
    "sentence paragraph visitor answer question pricing refund invoice origin domain "
    "résumé naïve 日本語 emoji🙂 x"
)
WORDS = _SAMPLE.split()


# --- structure -----------------------------------------------------------------------------


def test_headings_give_each_chunk_its_path() -> None:
    chunks = md(
        "# Guide\n\nIntro text.\n\n## Install\n\nRun the installer.\n\n"
        "### Embedding the widget\n\nPaste the snippet.\n\n## Billing\n\nMonthly invoices.\n"
    )
    assert [(c.heading_path, c.text) for c in chunks] == [
        ((), "Intro text."),  # the H1 equal to the title is not part of the path
        (("Install",), "Run the installer."),
        (("Install", "Embedding the widget"), "Paste the snippet."),
        (("Billing",), "Monthly invoices."),
    ]
    assert [c.position for c in chunks] == [0, 1, 2, 3]


def test_other_level_one_headings_and_setext_headings_are_kept() -> None:
    chunks = md("# Overview\n\nA.\n\nSetup\n=====\n\nB.\n\nDetails\n-------\n\nC.\n")
    assert [c.heading_path for c in chunks] == [
        ("Overview",),
        ("Setup",),
        ("Setup", "Details"),
    ]


def test_heading_markup_is_reduced_to_plain_text() -> None:
    [chunk] = md("## The `init()` call and [options](https://x.example) ##\n\nText.\n")
    assert chunk.heading_path == ("The init() call and options",)


def test_hashes_inside_code_fences_are_not_headings() -> None:
    text = "## Shell\n\n```bash\n# install it\npip install acme\n```\n\nDone.\n"
    [chunk] = md(text)
    assert chunk.heading_path == ("Shell",)
    assert chunk.text == "```bash\n# install it\npip install acme\n```\n\nDone."


def test_html_comments_and_front_matter_rules_do_not_become_text() -> None:
    [chunk] = md("## A\n\n<!-- YAML:\n  added: v1\n-->\n\nVisible text.\n\n---\n\nMore text.\n")
    assert chunk.text == "Visible text.\n\nMore text."


def test_a_document_without_text_has_no_chunks() -> None:
    assert md("# Guide\n\n## Empty\n\n### Also empty\n") == []
    assert md("   \n\n\t") == []
    assert chunk_document("", title="t", fmt="text") == []


def test_plain_text_keeps_markdown_syntax_as_text() -> None:
    [chunk] = chunk_document("# not a heading\n\nbody", title="t", fmt="text")
    assert chunk.heading_path == ()
    assert chunk.text == "# not a heading\n\nbody"


# --- packing and splitting -------------------------------------------------------------------


def test_small_paragraphs_of_a_section_are_packed_together() -> None:
    chunks = md("## A\n\nOne.\n\nTwo.\n\n- three\n- four\n\n## B\n\nFive.\n")
    assert [c.text for c in chunks] == ["One.\n\nTwo.\n\n- three\n- four", "Five."]


def test_a_paragraph_that_fits_is_never_split() -> None:
    rng = random.Random(1)
    paragraphs = [" ".join(sentence(rng, 12) for _ in range(6)) for _ in range(5)]
    assert all(60 < count_tokens(p) < 150 for p in paragraphs)
    chunks = md("## S\n\n" + "\n\n".join(paragraphs), max_tokens=200, overlap_tokens=0)
    for paragraph in paragraphs:
        assert sum(paragraph in c.text for c in chunks) == 1


def test_a_long_paragraph_is_split_at_sentence_ends() -> None:
    rng = random.Random(2)
    sentences = [sentence(rng, rng.randint(6, 20)) for _ in range(60)]
    chunks = md("## S\n\n" + " ".join(sentences), max_tokens=120, overlap_tokens=0)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.token_count <= 120
        assert chunk.text.endswith(".")
        assert chunk.text[0].isupper()
    assert " ".join(c.text for c in chunks) == " ".join(sentences)


def test_a_sentence_longer_than_the_budget_is_split_between_words() -> None:
    rng = random.Random(3)
    words = [rng.choice(WORDS) for _ in range(400)]
    chunks = chunk_document(" ".join(words), title="t", fmt="text", max_tokens=50, overlap_tokens=0)
    assert [w for c in chunks for w in c.text.split()] == words
    assert all(c.token_count <= 50 for c in chunks)


def test_a_run_without_spaces_is_split_by_tokens_without_losing_a_character() -> None:
    blob = "".join(random.Random(4).choice("abcdef0123456789日本🙂") for _ in range(3000))
    chunks = chunk_document(blob, title="t", fmt="text", max_tokens=40, overlap_tokens=0)
    assert "".join(c.text for c in chunks) == blob
    assert all(c.token_count <= 40 for c in chunks)


def test_a_long_code_block_is_split_between_lines_and_refenced() -> None:
    lines = [f"    value_{i} = compute({i})  # step {i}" for i in range(80)]
    text = "## Code\n\n```python\ndef main():\n" + "\n".join(lines) + "\n```\n"
    chunks = md(text, max_tokens=100)
    assert len(chunks) > 2
    body: list[str] = []
    for chunk in chunks:
        assert chunk.token_count <= 100
        assert chunk.text.startswith("```python\n") and chunk.text.endswith("\n```")
        body.extend(chunk.text.split("\n")[1:-1])
    assert body == ["def main():", *lines]  # indentation kept, no line lost or repeated


def test_a_long_table_is_split_between_rows_and_repeats_its_header() -> None:
    rows = [f"| plan {i} | {i * 10} dollars | {i * 1000} messages |" for i in range(60)]
    header = "| Plan | Price | Messages |\n|---|---|---|"
    chunks = md("## Plans\n\n" + header + "\n" + "\n".join(rows), max_tokens=120)
    assert len(chunks) > 2
    seen: list[str] = []
    for chunk in chunks:
        assert chunk.text.startswith(header + "\n")
        seen.extend(chunk.text.split("\n")[2:])
    assert seen == rows


def test_a_long_list_is_split_between_items() -> None:
    items = [f"- item {i}: " + " ".join(["detail"] * 12) for i in range(40)]
    chunks = md("## L\n\n" + "\n".join(items), max_tokens=100, overlap_tokens=0)
    assert len(chunks) > 2
    assert [ln for c in chunks for ln in c.text.split("\n")] == items


# --- overlap ---------------------------------------------------------------------------------


def test_overlap_carries_whole_sentences_within_a_section() -> None:
    rng = random.Random(5)
    sentences = [sentence(rng, rng.randint(5, 12)) for _ in range(80)]
    chunks = md("## S\n\n" + " ".join(sentences), max_tokens=120, overlap_tokens=30)
    assert len(chunks) > 3
    for previous, chunk in itertools.pairwise(chunks):
        shared = _shared_edge(previous.text, chunk.text)
        assert shared, "each continuation chunk opens with the previous chunk's tail"
        assert count_tokens(shared) <= 30
        assert shared[0].isupper() and shared.endswith(".")  # whole sentences


def test_overlap_never_crosses_a_section() -> None:
    rng = random.Random(6)
    first = " ".join(sentence(rng, 10) for _ in range(30))
    second = " ".join(sentence(rng, 10) for _ in range(30))
    chunks = md(f"## One\n\n{first}\n\n## Two\n\n{second}", max_tokens=100, overlap_tokens=30)
    opening = next(c for c in chunks if c.heading_path == ("Two",))
    assert second.startswith(opening.text.split(".")[0])


def test_overlap_zero_means_no_repeated_text() -> None:
    rng = random.Random(7)
    text = " ".join(sentence(rng, 9) for _ in range(50))
    chunks = chunk_document(text, title="t", fmt="text", max_tokens=80, overlap_tokens=0)
    assert " ".join(c.text for c in chunks) == text


def _shared_edge(previous: str, following: str) -> str:
    """The longest tail of ``previous`` that ``following`` starts with."""
    for start in range(len(previous)):
        tail = previous[start:].strip()
        if tail and following.startswith(tail):
            return tail
    return ""


# --- invariants, on real and random documents -----------------------------------------------


@pytest.mark.parametrize("max_tokens", [16, 40, 300])
def test_invariants_hold_on_random_markdown(max_tokens: int) -> None:
    for seed in range(15):
        text = random_markdown(random.Random(seed))
        chunks = md(text, max_tokens=max_tokens, overlap_tokens=max_tokens // 4)
        assert_invariants(chunks, max_tokens)
        assert md(text, max_tokens=max_tokens, overlap_tokens=max_tokens // 4) == chunks


def test_invariants_hold_on_the_sample_docs() -> None:
    for path in DOCS.glob("*.md"):
        assert_invariants(md(path.read_text()), 300)


def assert_invariants(chunks: list[ChunkDraft], max_tokens: int) -> None:
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text and chunk.text == chunk.text.strip()
        assert chunk.token_count == count_tokens(chunk.text) <= max_tokens
        assert "\n\n\n" not in chunk.text
        assert "\r" not in chunk.text and "\u00a0" not in chunk.text and "\u200b" not in chunk.text


def random_markdown(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(5, 25)):
        kind = rng.choice(["heading", "para", "para", "list", "code", "table", "blob", "noise"])
        if kind == "heading":
            parts.append("#" * rng.randint(1, 4) + " " + sentence(rng, rng.randint(1, 5)))
        elif kind == "para":
            parts.append(
                " ".join(sentence(rng, rng.randint(3, 30)) for _ in range(rng.randint(1, 12)))
            )
        elif kind == "list":
            parts.append(
                "\n".join(
                    f"- {sentence(rng, rng.randint(2, 25))}" for _ in range(rng.randint(1, 15))
                )
            )
        elif kind == "code":
            body = "\n".join(
                "  " * rng.randint(0, 3) + sentence(rng, rng.randint(1, 15))
                for _ in range(rng.randint(1, 40))
            )
            parts.append(f"```\n{body}\n```")
        elif kind == "table":
            rows = [
                f"| {rng.choice(WORDS)} | {rng.randint(0, 999)} |"
                for _ in range(rng.randint(1, 30))
            ]
            parts.append("| a | b |\n|---|---|\n" + "\n".join(rows))
        elif kind == "blob":
            parts.append("".join(rng.choice("abc日🙂/=-") for _ in range(rng.randint(50, 900))))
        else:
            parts.append(" \t\u00a0\u200b  text\r\nwith\r odd   spacing\x00\x07 ")
    return "\n\n".join(parts)


# --- whitespace --------------------------------------------------------------------------------


def test_whitespace_is_normalised_in_prose_and_kept_in_code() -> None:
    text = (
        "## A\r\n\r\nSome\u00a0 \t spaced\u200b   text.\r\n\r\n\r\n\r\n"
        "Next\tpara.\n\n```\nif x:\n\tdo()   \n```\n"
    )
    [chunk] = md(text)
    assert chunk.text == "Some spaced text.\n\nNext para.\n\n```\nif x:\n\tdo()\n```"


def test_invalid_budgets_are_refused() -> None:
    with pytest.raises(ValueError):
        md("text", max_tokens=8)
    with pytest.raises(ValueError):
        md("text", max_tokens=100, overlap_tokens=60)
    with pytest.raises(ValueError):
        md("text", max_tokens=100, overlap_tokens=-1)


def test_a_heading_word_only_lives_in_the_heading_path() -> None:
    [chunk] = md("## Embedding the widget\n\nPaste the snippet.\n")
    assert "widget" not in chunk.text
    assert re.search("widget", " ".join(chunk.heading_path))
