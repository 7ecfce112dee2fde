"""What every ``sitechat`` command shares: the Typer apps, one-line errors, and the two
ways a command gets its clients (without the index, or with it when no server holds it)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import typer

from sitechat.config import Settings
from sitechat.errors import SitechatError

app = typer.Typer(
    help="sitechat: website chatbots grounded in your documents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
org_app = typer.Typer(
    help="Organisations (tenants) and their admin API keys.", no_args_is_help=True
)
chatbot_app = typer.Typer(help="Chatbots.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(org_app, name="org")
app.add_typer(chatbot_app, name="chatbot")
app.add_typer(db_app, name="db")

P = ParamSpec("P")
T = TypeVar("T")

DEMO_ORG_NAME = "Demo"
MAX_NAME_CHARS = 200  # as the admin API's names


class CliError(Exception):
    """A failure to report in one line."""


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def clean_errors(func: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except CliError as exc:
            raise fail(str(exc)) from None
        except SitechatError as exc:
            raise fail(exc.message) from None
        except KeyboardInterrupt:
            raise typer.Exit(code=130) from None
        except Exception as exc:
            logging.getLogger("sitechat.cli").debug("command failed", exc_info=True)
            raise fail(f"{type(exc).__name__}: {exc}") from None

    return wrapper


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def with_services(work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work`` with every client but the index: org, chatbot and database commands
    work while a server holds the embedded index."""
    from sitechat.services import Services

    services = await Services.start(Settings(), open_index=False, run_jobs=False)
    try:
        return await work(services)
    finally:
        await services.aclose()


async def with_index_if_free(work: Callable[[Any, bool], Awaitable[T]]) -> T:
    """Run ``work(services, owns_index)``: with the index open when no other process holds
    it (the CLI then runs its own ingestion jobs), else without it (a running server runs
    them, and the CLI follows their progress in the database)."""
    from sitechat.errors import IndexBusy
    from sitechat.services import Services

    settings = Settings()
    try:
        services = await Services.start(settings, run_jobs=False)
        owns_index = True
    except IndexBusy:
        services = await Services.start(settings, open_index=False, run_jobs=False)
        owns_index = False
    try:
        return await work(services, owns_index)
    finally:
        await services.aclose()
