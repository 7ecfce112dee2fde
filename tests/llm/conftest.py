"""Fixtures for the model tests."""

from __future__ import annotations

from tests.support.fixtures import scripted_openai

__all__ = ["scripted_openai"]
