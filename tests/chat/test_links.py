"""The link guard: links outside the sources and the chatbot's own sites lose their target,
the same however the answer is split into tokens, without holding back text that cannot be
part of a link."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest

from sitechat.chat.links import MAX_LINK_TEXT, MAX_URL, LinkGuard, LinkPolicy
from sitechat.llm.base import ContextPassage
from tests.support.chunks import split

PASSAGES = [
    ContextPassage(1, "Returns", "Print the label from https://labels.example/print.", url=None),
    ContextPassage(
        2, "Shipping", "Orders ship in two days.", url="https://docs.other.example/ship"
    ),
]
POLICY = LinkPolicy.of(["https://www.shop.example", "http://localhost:3000"], PASSAGES)


def guarded(chunks: Iterable[str], policy: LinkPolicy = POLICY) -> tuple[list[str], str]:
    """What each chunk released, and the whole answer (flush included)."""
    guard = LinkGuard(policy)
    released = [guard.feed(chunk) for chunk in chunks]
    released.append(guard.flush())
    return released, "".join(released)


def clean(text: str, policy: LinkPolicy = POLICY) -> str:
    return guarded([text], policy)[1]


CASES = {
    "[docs](https://evil.example/x) and [ok](https://shop.example/a)": (
        "docs and [ok](https://shop.example/a)"
    ),
    "See https://evil.example/x. Or https://shop.example/b, fine.": (
        "See . Or https://shop.example/b, fine."
    ),
    "<https://evil.example/a> and <https://docs.shop.example/b>": (
        " and <https://docs.shop.example/b>"
    ),
    "Cite [1] and [2].": "Cite [1] and [2].",
    '[a [b] c](https://evil.example) [x](<https://shop.example/y> "Title")': (
        'a [b] c [x](<https://shop.example/y> "Title")'
    ),
    "Ship [2](https://docs.other.example/ship/#eta) and (https://labels.example/print)": (
        "Ship [2](https://docs.other.example/ship/#eta) and (https://labels.example/print)"
    ),
    "[https://evil.example](https://shop.example/p)": "[https://shop.example/p](https://shop.example/p)",
    "[https://evil.example/a](https://evil.example/a)": "",
    "Use [x][1].\n\n[1]: https://evil.example/r\n[2]: <https://shop.example/s>": (
        "Use [x][1].\n\n[1]: \n[2]: <https://shop.example/s>"
    ),
    "![logo](https://evil.example/l.png)": "!logo",
    "[rel](/pricing) [mail](mailto:a@b.example) [js](javascript:alert(1))": "rel mail js",
    "`curl https://evil.example/api` and `curl https://api.shop.example/v1`": (
        "`curl ` and `curl https://api.shop.example/v1`"
    ),
    "[a] [b](https://evil.example) ]] [[ (x) [c](not a link)": "[a] b ]] [[ (x) [c](not a link)",
    "HTTPS://EVIL.EXAMPLE/UP and https://good@evil.example/": " and ",
    "[x](https://shop.example.evil.example/) [y](https://evilshop.example/)": "x y",
    "http://localhost:3000/docs https://localhost:9/other": (
        "http://localhost:3000/docs https://localhost:9/other"
    ),
    "a prefix: xhttps://evil.example stays text the widget does not link": (
        "a prefix: xhttps://evil.example stays text the widget does not link"
    ),
    "(see https://evil.example/a_(b))": "(see )",
    "unterminated [text](https://evil.example/abc": "unterminated [text](",
    "ends with [": "ends with [",
    "ends with [1]": "ends with [1]",
    "ends with https://ev": "ends with ",
    "ends with <https://shop.example/x": "ends with <https://shop.example/x",
    "ends with htt": "ends with htt",
    "Café https://evil.example/é?q=1#f!": "Café !",
}


@pytest.mark.parametrize(("answer", "expected"), list(CASES.items()))
def test_links_outside_sources_and_allowed_sites_lose_their_target(
    answer: str, expected: str
) -> None:
    assert clean(answer) == expected


@pytest.mark.parametrize("answer", list(CASES))
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_splitting_the_answer_into_tokens_never_changes_the_result(answer: str, size: int) -> None:
    chunks = split(answer, [size] * len(answer))
    assert guarded(chunks)[1] == CASES[answer]


@pytest.mark.parametrize("answer", list(CASES))
def test_a_link_split_at_any_one_position_gives_the_same_result(answer: str) -> None:
    for cut in range(1, len(answer)):
        assert guarded([answer[:cut], answer[cut:]])[1] == CASES[answer], cut


def test_random_chunks_give_the_same_result() -> None:
    rng = random.Random(12)
    for answer, expected in CASES.items():
        for _ in range(30):
            sizes = [rng.randint(1, 9) for _ in answer]
            assert guarded(split(answer, sizes))[1] == expected, answer


def test_text_before_a_bracket_goes_out_at_once_and_the_link_when_it_closes() -> None:
    chunks = ["Returns are ", "free. See [the ", "policy](https://ev", "il.example/x) or "]
    chunks += ["[ours]", "(https://shop.example/r)", " now"]
    released, whole = guarded(chunks)
    assert released == [
        "Returns are ",
        "free. See ",
        "",
        "the policy or ",
        "",
        "[ours](https://shop.example/r)",
        " now",
        "",
    ]
    assert "evil" not in whole


def test_plain_text_is_never_held() -> None:
    guard = LinkGuard(POLICY)
    for chunk in ["Orders ", "ship within ", "two days (", "see below", ")."]:
        assert guard.feed(chunk) == chunk
    assert guard.flush() == ""


def test_a_possible_url_start_waits_only_for_the_next_token() -> None:
    guard = LinkGuard(POLICY)
    assert guard.feed("Read ht") == "Read "
    assert guard.feed("e manual") == "hte manual"
    assert guard.feed("each") == "each"  # "h" inside a word is no URL start


def test_an_unclosed_bracket_is_released_as_text_after_max_link_text_chars() -> None:
    guard = LinkGuard(POLICY)
    assert guard.feed("Note [this is a long aside") == "Note "
    filler = "x" * MAX_LINK_TEXT
    assert guard.feed(filler) == "[this is a long aside" + filler
    assert guard.feed(" https://evil.example/x ok") == "  ok"
    assert guard.flush() == ""


def test_a_url_longer_than_max_url_is_removed_to_its_end() -> None:
    guard = LinkGuard(POLICY)
    out = [guard.feed("Go https://evil.example/"), guard.feed("a" * (MAX_URL + 10))]
    out += [guard.feed("bbb"), guard.feed("ccc then"), guard.feed(" text")]
    out.append(guard.flush())
    assert "".join(out) == "Go  then text"


def test_subdomains_of_an_allowed_origin_count_and_www_is_dropped() -> None:
    policy = LinkPolicy.of(["https://www.shop.example"], [])
    assert policy.hosts == ("shop.example",)
    for url in ["https://shop.example/", "http://www.shop.example/a", "https://a.b.shop.example"]:
        assert policy.allows(url), url
    for url in ["https://evilshop.example", "https://shop.example.evil", "ftp://shop.example"]:
        assert not policy.allows(url), url


def test_a_chatbot_open_to_any_origin_allows_its_sources_only() -> None:
    policy = LinkPolicy.of([], PASSAGES)
    assert policy.hosts == ()
    assert policy.allows("https://docs.other.example/ship/")
    assert policy.allows("http://DOCS.other.example/ship#x")
    assert not policy.allows("https://docs.other.example/other")
    assert clean("[a](https://shop.example/x)", policy) == "a"


def test_extractive_quotes_keep_the_links_their_passages_contain() -> None:
    answer = "Print the label from https://labels.example/print. [1]"
    assert clean(answer, LinkPolicy.of([], PASSAGES)) == answer
