"""``sitechat serve`` and ``sitechat worker``: the long-running processes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio
import typer

from sitechat.cli.common import CliError, app, clean_errors, run
from sitechat.config import Settings

# --- serve ----------------------------------------------------------------------------------


@app.command()
@clean_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the API, the widget and the demo page."""
    import uvicorn

    from sitechat.logs import logging_config
    from sitechat.retrieval.index_lock import IndexLock

    settings = Settings()
    if workers > 1 and not (settings.qdrant_url and settings.redis_url):
        raise CliError(
            f"--workers {workers} needs state the workers can share: the embedded index "
            "(Qdrant Edge) opens in one process only, and limits and caches live in each "
            "process. Set SITECHAT_QDRANT_URL (a Qdrant server) and SITECHAT_REDIS_URL, or "
            "serve with one worker."
        )
    if not settings.qdrant_url:
        lock = IndexLock(settings.data_dir)
        if not lock.acquire():
            holder = lock.holder()
            raise CliError(
                f"another sitechat process{f' (pid {holder})' if holder else ''} holds the "
                f"embedded index in {settings.data_dir}: stop it, or serve another data dir "
                "(SITECHAT_DATA_DIR)"
            )
        lock.release()  # the server takes it again as it starts
    if workers > 1:
        _prepare_multiprocess_metrics(settings)
    uvicorn.run(
        "sitechat.api.app:factory",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        # In every worker: sitechat's loggers, and an access log without query strings.
        log_config=logging_config(settings.log_level, settings.log_format),
        log_level=settings.log_level.lower(),
        proxy_headers=False,  # client IPs are taken from trusted proxies by the app itself
    )


def _prepare_multiprocess_metrics(settings: Settings) -> None:
    """Several workers: each writes its metrics under one folder that any scrape sums."""
    import os
    import shutil

    from sitechat.metrics import MULTIPROCESS_ENV

    folder = Path(os.environ.get(MULTIPROCESS_ENV) or settings.data_dir / "metrics")
    shutil.rmtree(folder, ignore_errors=True)  # values of a previous run are not this one's
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROCESS_ENV] = str(folder)


# --- worker ---------------------------------------------------------------------------------


@app.command()
@clean_errors
def worker() -> None:
    """Run ingestion jobs from the database queue, apart from the API processes.

    Deployments run API processes with SITECHAT_RUN_JOBS=false and one (or more) workers;
    they share the queue through the database. Stops cleanly on SIGTERM or Ctrl-C: the jobs
    it holds go back to the queue.
    """
    import signal

    from sitechat.logs import configure as configure_logging
    from sitechat.services import Services

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)

    async def work() -> None:
        services = await Services.start(settings, run_jobs=True)
        try:
            assert services.job_runner is not None
            typer.echo(f"worker {services.job_runner.worker}: running ingestion jobs", err=True)
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _signal in signals:
                    break
        finally:
            with anyio.CancelScope(shield=True):
                await services.aclose()
        typer.echo("worker stopped", err=True)

    run(work())
