"""The ingestion job queue, in the database every process already shares.

A job is claimed with one statement that picks the oldest queued job and marks it running
for the claiming runner. On PostgreSQL the pick is ``FOR UPDATE SKIP LOCKED``, so runners in
several processes never wait on each other or take the same job; SQLite has one writer at a
time (a write session holds its lock from the start), which makes the same statement
atomic there. A runner beats a heartbeat on the jobs it holds; a running job whose heartbeat
is older than a timeout belonged to a runner that died and is queued again (``requeue_stale``,
at most ``MAX_ATTEMPTS`` times).

Why the database and not Redis: the job's record must outlive any process and be written in
the same store as the document it fills, Redis is optional on the embedded defaults, and
ingestion is a few jobs a minute, not thousands a second.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select, update

from sitechat.storage.base import Repository, new_id, rowcount, utcnow
from sitechat.storage.models import IngestionJobRow

JobKind = Literal["upload", "url", "crawl"]
JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
MAX_ATTEMPTS = 3
OPEN_STATUSES = ("queued", "running")


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    document_id: str
    chatbot_id: str
    kind: JobKind
    payload: dict[str, Any]
    data: bytes | None
    status: JobStatus
    attempts: int
    worker: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _job(row: IngestionJobRow) -> Job:
    return Job(
        id=row.id,
        document_id=row.document_id,
        chatbot_id=row.chatbot_id,
        kind=row.kind,  # type: ignore[arg-type]
        payload=dict(row.payload or {}),
        data=row.data,
        status=row.status,  # type: ignore[arg-type]
        attempts=row.attempts,
        worker=row.worker,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


class JobQueue(Repository):
    async def enqueue(
        self,
        *,
        document_id: str,
        chatbot_id: str,
        kind: JobKind,
        payload: dict[str, Any],
        data: bytes | None = None,
    ) -> Job:
        row = IngestionJobRow(
            id=new_id(),
            document_id=document_id,
            chatbot_id=chatbot_id,
            kind=kind,
            payload=payload,
            data=data,
            status="queued",
            attempts=0,
            created_at=utcnow(),
        )
        async with self._db.session(write=True) as session:
            session.add(row)
            await session.commit()
            return _job(row)

    async def claim(self, worker: str, *, only: Collection[str] | None = None) -> Job | None:
        """The oldest queued job, now running for ``worker``; None when there is none.

        ``only``: claim only among these job ids (a CLI running just the jobs it submitted).
        """
        pick = (
            select(IngestionJobRow.id)
            .where(IngestionJobRow.status == "queued")
            .order_by(IngestionJobRow.created_at, IngestionJobRow.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if only is not None:
            if not only:
                return None
            pick = pick.where(IngestionJobRow.id.in_(list(only)))
        now = utcnow()
        claim = (
            update(IngestionJobRow)
            .where(IngestionJobRow.id == pick.scalar_subquery())
            .where(IngestionJobRow.status == "queued")
            .values(
                status="running",
                worker=worker,
                attempts=IngestionJobRow.attempts + 1,
                started_at=now,
                heartbeat_at=now,
            )
            .returning(IngestionJobRow)
        )
        async with self._db.session(write=True) as session:
            row = (await session.execute(claim)).scalars().first()
            job = _job(row) if row is not None else None
            await session.commit()
        return job

    async def heartbeat(self, job_ids: Collection[str]) -> set[str]:
        """Refresh the heartbeat of these running jobs; returns those no longer running
        here (cancelled by a delete, or taken back), which the runner must stop."""
        if not job_ids:
            return set()
        async with self._db.session(write=True) as session:
            await session.execute(
                update(IngestionJobRow)
                .where(IngestionJobRow.id.in_(list(job_ids)))
                .where(IngestionJobRow.status == "running")
                .values(heartbeat_at=utcnow())
            )
            still = set(
                await session.scalars(
                    select(IngestionJobRow.id)
                    .where(IngestionJobRow.id.in_(list(job_ids)))
                    .where(IngestionJobRow.status == "running")
                )
            )
            await session.commit()
        return set(job_ids) - still

    async def finish(self, job_id: str, status: JobStatus, *, error: str | None = None) -> None:
        """End a job: its upload's bytes are dropped, its record stays."""
        async with self._db.session(write=True) as session:
            await session.execute(
                update(IngestionJobRow)
                .where(IngestionJobRow.id == job_id)
                .values(status=status, error=error, data=None, finished_at=utcnow())
            )
            await session.commit()

    async def release(self, job_id: str) -> None:
        """Put a running job back in the queue (its runner is stopping)."""
        async with self._db.session(write=True) as session:
            await session.execute(
                update(IngestionJobRow)
                .where(IngestionJobRow.id == job_id, IngestionJobRow.status == "running")
                .values(status="queued", worker=None, heartbeat_at=None)
            )
            await session.commit()

    async def cancel_document(self, document_id: str) -> int:
        """Cancel the open jobs of a document (it is being deleted); a runner holding one
        stops it at its next heartbeat."""
        async with self._db.session(write=True) as session:
            result = await session.execute(
                update(IngestionJobRow)
                .where(IngestionJobRow.document_id == document_id)
                .where(IngestionJobRow.status.in_(OPEN_STATUSES))
                .values(status="cancelled", data=None, finished_at=utcnow())
            )
            await session.commit()
        return rowcount(result)

    async def requeue_stale(self, older_than: timedelta) -> tuple[list[Job], list[Job]]:
        """Running jobs whose runner stopped beating: queued again while they have attempts
        left, failed after that. Returns (requeued, failed)."""
        cutoff = utcnow() - older_than
        stale = (
            select(IngestionJobRow)
            .where(IngestionJobRow.status == "running")
            .where(IngestionJobRow.heartbeat_at < cutoff)
            .with_for_update(skip_locked=True)
        )
        requeued: list[Job] = []
        failed: list[Job] = []
        async with self._db.session(write=True) as session:
            for row in (await session.scalars(stale)).all():
                if row.attempts >= MAX_ATTEMPTS:
                    row.status, row.data, row.finished_at = "failed", None, utcnow()
                    row.error = "The job's runner stopped, too many times."
                    failed.append(_job(row))
                else:
                    row.status, row.worker, row.heartbeat_at = "queued", None, None
                    requeued.append(_job(row))
            await session.commit()
        return requeued, failed

    async def depth(self) -> int:
        """Jobs waiting to be claimed."""
        async with self._db.session() as session:
            count = await session.scalar(
                select(func.count()).where(IngestionJobRow.status == "queued")
            )
        return int(count or 0)

    async def get(self, job_id: str) -> Job | None:
        async with self._db.session() as session:
            row = await session.get(IngestionJobRow, job_id)
            return _job(row) if row is not None else None

    async def open_jobs(self, document_ids: Collection[str]) -> list[Job]:
        """The queued or running jobs of these documents."""
        if not document_ids:
            return []
        async with self._db.session() as session:
            rows = await session.scalars(
                select(IngestionJobRow)
                .where(IngestionJobRow.document_id.in_(list(document_ids)))
                .where(IngestionJobRow.status.in_(OPEN_STATUSES))
            )
            return [_job(row) for row in rows]
