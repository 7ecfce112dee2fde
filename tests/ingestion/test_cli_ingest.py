"""``sitechat ingest`` with every kind of source: files of each format, a page, a site."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sitechat.cli import app
from tests.support.pdfgen import make_pdf

from .site import Site


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SITECHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SITECHAT_DEFAULT_PROVIDER", "extractive")
    monkeypatch.chdir(tmp_path)  # no stray .env
    runner = CliRunner()
    org = runner.invoke(app, ["org", "create", "Acme"], catch_exceptions=False)
    org_id = org.stdout.split("org id:")[1].split()[0]
    made = runner.invoke(
        app, ["chatbot", "create", "--org", org_id, "--name", "Helper", "--id", "helper"]
    )
    assert made.exit_code == 0, made.output
    return runner


def test_files_of_every_format_are_ingested(cli: CliRunner, tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "a.md").write_text("# Parking\n\nParking is free after 6 pm.\n")
    (kb / "b.html").write_text("<html><body><main><h1>Cafe</h1><p>Breakfast until 11.</p></main>")
    (kb / "c.pdf").write_bytes(make_pdf(["The lift is out of order on Mondays."]))
    (kb / "d.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 10)  # corrupt
    result = cli.invoke(app, ["ingest", "helper", str(kb)], catch_exceptions=False)
    assert result.exit_code == 1, "one document failed"
    assert "3 documents ready, 1 failed" in result.stdout
    assert "d.pdf" in result.stderr and "PDF" in result.stderr


def test_a_page_and_a_site_are_ingested_from_loopback(cli: CliRunner) -> None:
    with Site() as site:
        site.html("/", "Home", "Welcome.", links=("/lids",))
        site.html("/lids", "Spare lids", "Spare lids cost seven euros.")
        allow = ["--allow-network", "127.0.0.1/32"]
        page = cli.invoke(app, ["ingest", "helper", site.url("/lids"), *allow])
        assert page.exit_code == 0, page.output
        assert "1 documents ready, 0 failed" in page.stdout
        whole = cli.invoke(
            app, ["ingest", "helper", site.url("/"), "--crawl", "--max-depth", "1", *allow]
        )
        assert whole.exit_code == 0, whole.output
        assert "(2 pages," in whole.stdout


def test_loopback_is_refused_unless_allowed(cli: CliRunner) -> None:
    with Site() as site:
        site.html("/", "Home", "Welcome.")
        result = cli.invoke(app, ["ingest", "helper", site.url("/")])
        assert result.exit_code == 1
        assert "private or reserved network" in result.stderr
        assert site.hits == []


def test_bad_options_are_one_line_errors(cli: CliRunner) -> None:
    result = cli.invoke(app, ["ingest", "helper", "https://example.com", "--sitemap"])
    assert result.exit_code == 1 and result.stderr.startswith("error: --sitemap goes with")
    bad = cli.invoke(app, ["ingest", "helper", "https://x.example", "--allow-network", "nope"])
    assert bad.exit_code == 1 and "--allow-network" in bad.stderr
