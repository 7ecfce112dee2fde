"""The ``sitechat`` CLI, run in-process against a temp data dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sitechat.cli import app


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SITECHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SITECHAT_DEFAULT_PROVIDER", "extractive")
    monkeypatch.chdir(tmp_path)  # no stray .env
    return CliRunner()


def invoke(cli: CliRunner, *args: str):  # type: ignore[no-untyped-def]
    return cli.invoke(app, list(args), catch_exceptions=False)


def test_org_create_prints_an_admin_key_once(cli: CliRunner) -> None:
    result = invoke(cli, "org", "create", "Acme")
    assert result.exit_code == 0, result.output
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    assert lines["api key"].strip().startswith("sck_")
    assert len(lines["org id"].strip()) >= 32


def test_chatbot_create_and_ingest_a_folder(cli: CliRunner, tmp_path: Path) -> None:
    org_id = invoke(cli, "org", "create", "Acme").stdout.split("org id:")[1].split()[0]
    result = invoke(cli, "chatbot", "create", "--org", org_id, "--name", "Helper", "--id", "helper")
    assert result.exit_code == 0 and result.stdout.strip() == "helper"

    docs = tmp_path / "kb"
    docs.mkdir()
    (docs / "a.md").write_text("# Parking\n\nParking is free after 6 pm.\n")
    (docs / "b.txt").write_text("The cafe serves breakfast until 11.\n")
    (docs / "ignored.bin").write_bytes(b"\x00\x01")
    result = invoke(cli, "ingest", "helper", str(docs))
    assert result.exit_code == 0, result.output
    assert "2 documents ready, 0 failed" in result.stdout

    again = invoke(cli, "ingest", "helper", str(docs))
    assert again.stdout.count("unchanged") == 2


def test_errors_are_one_line_and_exit_non_zero(cli: CliRunner, tmp_path: Path) -> None:
    missing = invoke(cli, "ingest", "nobody", str(tmp_path / "nowhere"))
    assert missing.exit_code == 1
    assert missing.stderr.strip().count("\n") == 0
    assert missing.stderr.startswith("error:")

    (tmp_path / "x.md").write_text("# X\n\nSome text.\n")
    unknown = invoke(cli, "ingest", "nobody", str(tmp_path / "x.md"))
    assert unknown.exit_code == 1
    assert unknown.stderr.strip() == "error: no chatbot with id nobody"

    bad_org = invoke(cli, "chatbot", "create", "--org", "nope", "--name", "N")
    assert bad_org.exit_code == 1 and "no organisation" in bad_org.stderr


def test_demo_seeds_the_demo_chatbot_from_the_docs_idempotently(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    first = invoke(cli, "demo")
    assert first.exit_code == 0, first.output
    assert "created the demo chatbot 'demo'" in first.stdout
    assert "0 failed" in first.stdout
    second = invoke(cli, "demo")
    assert "created" not in second.stdout
    assert "indexed" not in second.stdout
