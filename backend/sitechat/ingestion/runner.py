"""The job runner: claims ingestion jobs from the database queue and runs them.

It runs in whichever process owns the index: the server on the embedded defaults (Qdrant
Edge can be opened by one process only), ``sitechat worker`` in a deployment, or the CLI
for the jobs it submitted itself when no server holds the index. At most ``concurrency``
jobs run at once. While a job runs its heartbeat is refreshed; a job cancelled meanwhile
(its document was deleted) is stopped at the next beat. Jobs whose runner died are queued
again by whichever runner notices their heartbeat lapsed.

Stopping the runner (cancelling ``run``) puts the jobs it holds back in the queue, so a
restart, or another worker, picks them up where the queue left them.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Collection
from datetime import timedelta

import anyio

from sitechat import metrics
from sitechat.storage.jobs import Job, JobQueue, JobStatus

logger = logging.getLogger(__name__)

Execute = Callable[[Job], Awaitable[JobStatus]]
Requeued = Callable[[Job, bool], Awaitable[None]]  # (job, failed for good)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class JobRunner:
    def __init__(
        self,
        queue: JobQueue,
        execute: Execute,
        *,
        on_requeued: Requeued | None = None,
        concurrency: int = 2,
        poll_seconds: float = 1.0,
        heartbeat_seconds: float = 5.0,
        stale_after_seconds: float = 60.0,
        worker: str | None = None,
    ) -> None:
        self.queue = queue
        self.execute = execute
        self.on_requeued = on_requeued
        self.worker = worker or worker_name()
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_after = timedelta(seconds=stale_after_seconds)
        self._slots = anyio.Semaphore(max(1, concurrency))
        self._wake = anyio.Event()
        self._running: dict[str, anyio.CancelScope] = {}
        self._finished = anyio.Event()

    def wake(self) -> None:
        """A job was queued in this process: look now instead of at the next poll."""
        self._wake.set()

    @property
    def running_jobs(self) -> Collection[str]:
        return tuple(self._running)

    async def run(self, *, only: Collection[str] | None = None) -> None:
        """Claim and run jobs until cancelled (or, with ``only``, until those jobs ended)."""
        pending = set(only) if only is not None else None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._beat)
            while pending is None or pending:
                await self._slots.acquire()
                try:
                    job = await self.queue.claim(self.worker, only=pending)
                except BaseException:
                    self._slots.release()
                    raise
                if job is None:
                    self._slots.release()
                    if pending is not None and not self._running:
                        pending = await self._still_open(pending)
                        if not pending:
                            break
                    await self._idle()
                    continue
                if pending is not None:
                    pending.discard(job.id)
                # Registered before the task starts, so _all_done() never misses it.
                self._running[job.id] = anyio.CancelScope()
                tg.start_soon(self._run_one, job, self._running[job.id])
            await self._all_done()
            tg.cancel_scope.cancel()

    async def _still_open(self, job_ids: set[str]) -> set[str]:
        """Of these jobs, those still queued or running (elsewhere, perhaps)."""
        still = set()
        for job_id in job_ids:
            job = await self.queue.get(job_id)
            if job is not None and job.status in ("queued", "running"):
                still.add(job_id)
        return still

    async def _idle(self) -> None:
        with anyio.move_on_after(self.poll_seconds):
            await self._wake.wait()
        self._wake = anyio.Event()

    async def _all_done(self) -> None:
        while self._running:
            await self._finished.wait()
            self._finished = anyio.Event()

    async def _run_one(self, job: Job, scope: anyio.CancelScope) -> None:
        started = time.monotonic()
        status: JobStatus = "failed"
        error: str | None = None
        released = False
        try:
            with scope:
                try:
                    status = await self.execute(job)
                except Exception as exc:
                    logger.exception("ingestion job %s crashed", job.id)
                    error = type(exc).__name__
            if scope.cancelled_caught:
                status = "cancelled"  # cancelled at a heartbeat: its document is gone
        except BaseException:
            # The runner itself is stopping: the job goes back to the queue.
            with anyio.CancelScope(shield=True):
                await self.queue.release(job.id)
                if self.on_requeued is not None:
                    await self.on_requeued(job, False)
            released = True
            raise
        finally:
            self._running.pop(job.id, None)
            self._finished.set()
            self._slots.release()
            if not released:
                with anyio.CancelScope(shield=True):
                    await self._finish(job, status, error)
                metrics.INGESTION_JOB.labels(job.kind, status).observe(time.monotonic() - started)

    async def _finish(self, job: Job, status: JobStatus, error: str | None) -> None:
        try:
            if status != "cancelled":
                await self.queue.finish(job.id, status, error=error)
        except Exception:
            logger.exception("could not record the end of ingestion job %s", job.id)

    async def _beat(self) -> None:
        while True:
            await anyio.sleep(self.heartbeat_seconds)
            try:
                lost = await self.queue.heartbeat(list(self._running))
                for job_id in lost:
                    scope = self._running.get(job_id)
                    if scope is not None:
                        logger.info("ingestion job %s was cancelled; stopping it", job_id)
                        scope.cancel()
                requeued, failed = await self.queue.requeue_stale(self.stale_after)
                for job in requeued + failed:
                    logger.warning(
                        "ingestion job %s lost its runner %s: %s",
                        job.id,
                        job.worker,
                        "failed" if job in failed else "queued again",
                    )
                    if self.on_requeued is not None:
                        await self.on_requeued(job, job in failed)
                if requeued:
                    self.wake()
                metrics.INGESTION_QUEUE_DEPTH.set(await self.queue.depth())
            except Exception:
                logger.exception("the ingestion job heartbeat failed; trying again")
