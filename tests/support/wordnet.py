"""WordNet's database as Debian's ``wordnet-base`` installs it: CI installs it (``.ci/run``),
so there a missing database fails the test; elsewhere it skips."""

from __future__ import annotations

import pytest

from sitechat.chat.wordnet import DEFAULT_PATH, WordNet
from tests.support.redis import IN_CI


def open_wordnet() -> WordNet:
    wordnet = WordNet.open()
    if wordnet is None:
        message = f"no WordNet database in {DEFAULT_PATH} (apt-get install wordnet-base)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return wordnet
