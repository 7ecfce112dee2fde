"""``sitechat chatbot create`` sets who may embed the chatbot, as the admin API does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sitechat.cli import app
from sitechat.config import Settings
from sitechat.storage import Database, Store


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SITECHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SITECHAT_DEFAULT_PROVIDER", "extractive")
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def stored(tmp_path: Path, chatbot_id: str):  # type: ignore[no-untyped-def]
    async def read():  # type: ignore[no-untyped-def]
        settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
        database = Database.from_settings(settings)
        await database.start(migrate=False)
        try:
            return await Store(database).get_chatbot(chatbot_id)
        finally:
            await database.close()

    return asyncio.run(read())


def test_origins_are_validated_normalised_and_stored(cli: CliRunner, tmp_path: Path) -> None:
    created = cli.invoke(app, ["org", "create", "Acme"], catch_exceptions=False)
    org_id = created.stdout.split("org id:")[1].split()[0]
    result = cli.invoke(
        app,
        ["chatbot", "create", "--org", org_id, "--name", "Web", "--id", "web",
         "--allowed-origin", "https://Shop.Example:443", "--allowed-origin", "http://localhost:3000"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = stored(tmp_path, "web")
    assert config.allowed_origins == ("https://shop.example", "http://localhost:3000")
    assert config.settings == {"any_origin": False, "require_visitor_token": True}

    bad = cli.invoke(
        app,
        ["chatbot", "create", "--org", org_id, "--name", "X", "--allowed-origin", "shop.example/x"],
        catch_exceptions=False,
    )
    assert bad.exit_code == 1 and bad.stderr.startswith("error: --allowed-origin")
    assert bad.stderr.strip().count("\n") == 0

    both = cli.invoke(
        app,
        ["chatbot", "create", "--org", org_id, "--name", "X", "--any-origin",
         "--allowed-origin", "https://a.example"],
        catch_exceptions=False,
    )  # fmt: skip
    assert both.exit_code == 1


@pytest.mark.parametrize("name", ["   ", "", "x" * 201])
def test_cli_chatbot_name_of_only_spaces_is_a_one_line_error(
    cli: CliRunner, tmp_path: Path, name: str
) -> None:
    """Issue 9, finding 6: ``chatbot create --name "   "`` saved a chatbot named "   "; the
    CLI now trims the name and refuses an empty or over-long one in one line, as the API."""
    created = cli.invoke(app, ["org", "create", "Acme"], catch_exceptions=False)
    org_id = created.stdout.split("org id:")[1].split()[0]
    result = cli.invoke(
        app,
        ["chatbot", "create", "--org", org_id, "--name", name, "--id", "blank"],
        catch_exceptions=False,
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --name must be 1 to 200 characters")
    assert result.stderr.strip().count("\n") == 0
    assert stored(tmp_path, "blank") is None

    padded = cli.invoke(
        app,
        ["chatbot", "create", "--org", org_id, "--name", "  Web  ", "--id", "web"],
        catch_exceptions=False,
    )
    assert padded.exit_code == 0, padded.output
    assert stored(tmp_path, "web").name == "Web"


def test_answer_scope_and_fallback_providers_are_checked_and_stored(
    cli: CliRunner, tmp_path: Path
) -> None:
    """What the admin API sets on a chatbot the CLI sets too: its answer scope and the
    providers that answer when its own fails; an unknown value is a one-line error that
    stores nothing."""
    created = cli.invoke(app, ["org", "create", "Acme"], catch_exceptions=False)
    org_id = created.stdout.split("org id:")[1].split()[0]
    base = ["chatbot", "create", "--org", org_id, "--name", "Help"]

    default = cli.invoke(app, [*base, "--id", "plain"], catch_exceptions=False)
    assert default.exit_code == 0, default.output
    plain = stored(tmp_path, "plain")
    assert (plain.answer_scope, plain.fallback_providers) == ("documents_only", ())

    result = cli.invoke(
        app,
        [*base, "--id", "broad", "--answer-scope", "documents_and_general",
         "--fallback-provider", "extractive", "--fallback-provider", "extractive"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    broad = stored(tmp_path, "broad")
    assert broad.answer_scope == "documents_and_general"
    assert broad.fallback_providers == ("extractive",)

    scope = cli.invoke(app, [*base, "--id", "s", "--answer-scope", "anything"])
    assert scope.exit_code == 1
    assert scope.stderr.strip() == (
        "error: --answer-scope must be documents_only or documents_and_general"
    )
    provider = cli.invoke(app, [*base, "--id", "p", "--fallback-provider", "nope"])
    assert provider.exit_code == 1
    assert provider.stderr.startswith("error: --fallback-provider 'nope' is not a provider here")
    assert provider.stderr.strip().count("\n") == 0
    assert stored(tmp_path, "s") is None and stored(tmp_path, "p") is None
