"""The code guard: a fenced code block in an answer is kept only when it is quoted from the
passages or the question, the same however the answer is split into tokens, and prose
streams through without being held."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest

from sitechat.code_guard import CodeGuard
from tests.support.chunks import split

SOURCE = """\
Question: how do I embed the widget?
Embed the widget: paste <script src="https://host.example/widget/sitechat.js"
  data-chatbot-id="shop" async></script> before </body>.
Install the client with pip install sitechat-client and then run sitechat-client login.
def greet(name):
    return f"hello {name}"
"""

SCRIPT_TAG = '<script src="https://host.example/widget/sitechat.js" data-chatbot-id="shop" async>'
CASES = {
    # Quoted, re-wrapped onto one line: kept whole, fences and language included.
    f"Paste this:\n\n```html\n{SCRIPT_TAG}</script>\n```\nThat is all.": (
        f"Paste this:\n\n```html\n{SCRIPT_TAG}</script>\n```\nThat is all."
    ),
    # Invented (jQuery no passage shows): removed whole, the prose around it kept.
    "Use this:\n```js\n$(document).ready(function () {\n  $('#chat').x();\n});\n```\nDone.": (
        "Use this:\nDone."
    ),
    # One invented line spoils the block.
    "Run:\n```\npip install sitechat-client\npip install sitechat-pro\n```\n": "Run:\n",
    # Lines of brackets alone, blank lines and indentation do not count.
    '```python\ndef greet(name):\n\n        return f"hello {name}"\n}\n```': (
        '```python\ndef greet(name):\n\n        return f"hello {name}"\n}\n```'
    ),
    # Tildes, and a longer closing fence; a shorter run of the fence's character is code.
    "~~~~\nsitechat-client login\n~~~\n~~~~~\nafter": (
        "~~~~\nsitechat-client login\n~~~\n~~~~~\nafter"
    ),
    "~~~\ninvented --flag\n~~~\nafter": "after",
    # A backtick fence is not closed by tildes.
    "```\nsitechat-client login\n~~~\n```\n": "```\nsitechat-client login\n~~~\n```\n",
    # Never closed: judged when the answer ends.
    "Run:\n```sh\npip install sitechat-client": "Run:\n```sh\npip install sitechat-client",
    "Run:\n```sh\nrm -rf /": "Run:\n",
    # Not fences: inline code, a fence indented by four spaces, text before the backticks.
    "`pip install x` is how.\n``not a fence``\n": "`pip install x` is how.\n``not a fence``\n",
    "    ```\n    invented\n    ```\n": "    ```\n    invented\n    ```\n",
    "a ```\ninvented\n```": "a ```\ninvented\n```",
    # The question is a source too.
    "```\nhow do I embed the widget?\n```": "```\nhow do I embed the widget?\n```",
    "No code here at all.": "No code here at all.",
    "": "",
}


def guarded(chunks: Iterable[str], source: str = SOURCE, **kwargs: int) -> tuple[list[str], str]:
    """What each chunk released, and the whole answer (flush included)."""
    guard = CodeGuard(source, **kwargs)
    released = [guard.feed(chunk) for chunk in chunks]
    released.append(guard.flush())
    assert not guard.holding
    return released, "".join(released)


@pytest.mark.parametrize(("answer", "expected"), list(CASES.items()))
def test_a_code_block_is_kept_only_when_quoted(answer: str, expected: str) -> None:
    assert guarded([answer])[1] == expected


@pytest.mark.parametrize("answer", list(CASES))
def test_a_block_split_at_any_one_position_gives_the_same_result(answer: str) -> None:
    for cut in range(1, len(answer)):
        assert guarded([answer[:cut], answer[cut:]])[1] == CASES[answer], cut


def test_random_chunks_give_the_same_result() -> None:
    rng = random.Random(7)
    for answer, expected in CASES.items():
        for _ in range(30):
            chunks = split(answer, [rng.randint(1, 6) for _ in answer])
            assert guarded(chunks)[1] == expected, answer


def test_prose_streams_at_once_and_a_block_when_it_closes() -> None:
    chunks = ["Paste ", "this", ":\n", "``", "`html\n", SCRIPT_TAG, "</script>\n", "``", "`\n"]
    chunks += ["Then ", "reload."]
    released, whole = guarded(chunks)
    block = f"```html\n{SCRIPT_TAG}</script>\n```\n"
    assert released == ["Paste ", "this", ":\n", "", "", "", "", "", block, "Then ", "reload.", ""]
    assert whole == f"Paste this:\n{block}Then reload."


def test_a_line_start_is_held_only_while_it_may_open_a_fence() -> None:
    guard = CodeGuard(SOURCE)
    assert guard.feed("Hi\n") == "Hi\n"
    assert guard.feed("  ") == ""  # spaces may still come before a fence
    assert guard.feed("`") == ""
    assert guard.feed("x` is code") == "  `x` is code"  # inline code after all
    assert guard.feed(" and prose") == " and prose"
    assert guard.flush() == ""


def test_a_block_past_the_limit_is_removed_to_its_end() -> None:
    line = "pip install sitechat-client\n"
    answer = "Run:\n```\n" + line * 20 + "```\nafter"
    assert guarded(split(answer, [7] * len(answer)), max_code=200)[1] == "Run:\nafter"
    assert guarded([answer], max_code=10_000)[1] == answer
    # The guard holds no more than the limit while it drops.
    guard = CodeGuard(SOURCE, max_code=100)
    guard.feed("```\n")
    for _ in range(1000):
        assert guard.feed("x" * 50) == ""
    assert guard.feed("\n```\nend") == "end"
