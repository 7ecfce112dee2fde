"""Pytest fixtures over ``tests.support``; the top-level ``conftest.py`` imports them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.scripted_openai import ScriptedOpenAI


@pytest.fixture
def scripted_openai() -> Iterator[ScriptedOpenAI]:
    """A fresh scripted OpenAI-compatible server on 127.0.0.1 for one test.

    A plain (sync) fixture on purpose: the server runs in its own thread and loop, so sync
    tests (``TestClient``) and async tests on any event loop can use it alike.
    """
    with ScriptedOpenAI() as server:
        yield server
