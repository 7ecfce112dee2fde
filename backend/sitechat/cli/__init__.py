"""The ``sitechat`` command line: serve, run jobs, seed the demo, manage orgs, chatbots and
documents, assemble the answer judge's model.

Every command builds its clients from ``Settings`` (environment and ``.env``), does its work
and closes them. Errors print one line on stderr and exit with status 1. One module a group
of commands: ``serve`` (serve, worker), ``admin`` (db, org, chatbot), ``ingest`` (ingest,
demo), ``judge`` (judge); ``common`` holds what they share.
"""

from __future__ import annotations

from sitechat.cli import admin, ingest, judge, serve  # noqa: F401  (each registers its commands)
from sitechat.cli.common import app

__all__ = ["app"]
