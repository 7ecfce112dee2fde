"""``sitechat db``, ``org`` and ``chatbot``: commands that never open the index."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sitechat.cli.common import (
    MAX_NAME_CHARS,
    CliError,
    chatbot_app,
    clean_errors,
    db_app,
    org_app,
    run,
    with_services,
)
from sitechat.config import Settings
from sitechat.domain import ANSWER_SCOPES

# --- db -------------------------------------------------------------------------------------


@db_app.command("upgrade")
@clean_errors
def db_upgrade() -> None:
    """Apply the database migrations."""
    from sitechat.storage.database import Database

    async def work() -> None:
        database = Database.from_settings(Settings())
        await database.start(migrate=True)
        await database.close()

    run(work())
    typer.echo("database is up to date")


# --- orgs -----------------------------------------------------------------------------------


@org_app.command("create")
@clean_errors
def org_create(name: Annotated[str, typer.Argument(help="The organisation's name.")]) -> None:
    """Create an organisation and print its first admin API key (shown once)."""
    if not name.strip():
        raise CliError("the name must not be empty")

    async def work(services: Any) -> tuple[Any, str]:
        org = await services.store.create_org(name.strip())
        _record, key = await services.store.create_api_key(org.id, "cli")
        return org, key

    org, key = run(with_services(work))
    typer.echo(f"org id:  {org.id}")
    typer.echo(f"api key: {key}")
    typer.echo("Store this key now: it is not shown again.", err=True)


# --- chatbots -------------------------------------------------------------------------------


@chatbot_app.command("create")
@clean_errors
def chatbot_create(
    org_id: Annotated[str, typer.Option("--org", help="The owning organisation's id.")],
    name: Annotated[str, typer.Option(help="The chatbot's name.")],
    chatbot_id: Annotated[str | None, typer.Option("--id", help="A chosen id.")] = None,
    system_prompt: Annotated[str, typer.Option(help="Instructions for the model.")] = "",
    provider: Annotated[str | None, typer.Option(help="openai, local or extractive.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name for the provider.")] = None,
    allowed_origins: Annotated[
        list[str] | None,
        typer.Option("--allowed-origin", help="A website that may embed it (repeat for several)."),
    ] = None,
    any_origin: Annotated[
        bool, typer.Option("--any-origin", help="Let every website embed it.")
    ] = False,
    visitor_token: Annotated[
        bool, typer.Option(help="Require the widget's short-lived visitor token.")
    ] = True,
    answer_scope: Annotated[
        str,
        typer.Option(
            help="documents_only: answer only from its documents; documents_and_general: "
            "may add general knowledge, said as such."
        ),
    ] = "documents_only",
    fallback_providers: Annotated[
        list[str] | None,
        typer.Option(
            "--fallback-provider",
            help="A provider to answer when the chatbot's own fails before its first word "
            "(repeat for several, in order).",
        ),
    ] = None,
) -> None:
    """Create a chatbot in an organisation and print its id."""
    from sitechat.gate.origins import InvalidOrigin, normalize_origin

    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise CliError(f"--name must be 1 to {MAX_NAME_CHARS} characters, not only spaces")
    if provider not in (None, "openai", "local", "extractive"):
        raise CliError("--provider must be openai, local or extractive")
    if any_origin and allowed_origins:
        raise CliError("use --any-origin or --allowed-origin, not both")
    try:
        origins = [normalize_origin(o) for o in allowed_origins or []]
    except InvalidOrigin as exc:
        raise CliError(f"--allowed-origin: {exc}") from exc
    if answer_scope not in ANSWER_SCOPES:
        raise CliError(f"--answer-scope must be {' or '.join(ANSWER_SCOPES)}")
    policy = {"any_origin": any_origin, "require_visitor_token": visitor_token}

    async def work(services: Any) -> Any:
        unknown = services.settings.unknown_providers(fallback_providers or ())
        if unknown:
            raise CliError(
                f"--fallback-provider {unknown[0]!r} is not a provider here; choose from: "
                f"{', '.join(services.settings.provider_names)}"
            )
        if await services.store.get_org(org_id) is None:
            raise CliError(f"no organisation with id {org_id}")
        chatbot = await services.store.create_chatbot(
            org_id,
            name=name,
            chatbot_id=chatbot_id,
            system_prompt=system_prompt,
            provider=provider,
            model=model,
            allowed_origins=origins,
            answer_scope=answer_scope,
            fallback_providers=list(dict.fromkeys(fallback_providers or ())),
            settings=policy,
        )
        await services.chatbot_changed(chatbot.id)  # running servers drop a cached "unknown"
        return chatbot

    chatbot = run(with_services(work))
    typer.echo(chatbot.id)
