"""Every client sitechat talks to, built from ``Settings`` and closed in reverse order.

The app's lifespan and the CLI both use ``Services.start``; nothing connects at import time.
Each external system is chosen here by configuration: its embedded default, or the real
server when its URL is set. Redis is optional: without ``SITECHAT_REDIS_URL`` caches, limits
and stream caps are per process; with it they are shared by every process, and when it
becomes unreachable the public path falls back to per-process state (see ``redis_link``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from sitechat.answers.frames import RedisFrames
from sitechat.answers.runs import AnswerRuns
from sitechat.answers.service import Answers
from sitechat.chat.answer_check import AnswerCheck, Judge
from sitechat.chat.answerability import Meaning, Meanings, WordMeaning, WordNetMeaning
from sitechat.chat.pipeline import ChatService
from sitechat.chat.ports import ChatSettings
from sitechat.chat.quality import DEFAULT_SIMILARITY_LEVELS, OPENAI_SIMILARITY_LEVELS
from sitechat.chat.query import QueryEnhancer
from sitechat.chat.wordnet import WordNet
from sitechat.config import Settings
from sitechat.errors import IndexBusy, ServerRestarting
from sitechat.gate.admission import PublicGate
from sitechat.gate.budgets import BudgetGuard
from sitechat.gate.client_ip import ClientIpResolver
from sitechat.gate.origin_index import OriginIndex
from sitechat.gate.rate_limits import RateLimiter
from sitechat.gate.rejections import RejectionCounter
from sitechat.gate.stream_slots import StreamSlots
from sitechat.gate.visitor_tokens import VisitorTokens, load_or_create_secret
from sitechat.ingestion import IngestionJobs, Ingestor
from sitechat.ingestion.fetch import FetchPolicy
from sitechat.ingestion.netguard import AddressPolicy, parse_networks
from sitechat.ingestion.runner import JobRunner
from sitechat.llm.local_model import LocalLlamaModel
from sitechat.llm.registry import ModelRegistry
from sitechat.retrieval.base import VectorStore
from sitechat.retrieval.dense import DenseEncoder, MiniLMEmbedder, build_encoder
from sitechat.retrieval.index_lock import IndexLock
from sitechat.shared_state.config_cache import ConfigCache, ConfigInvalidator, SharedConfigLoader
from sitechat.shared_state.redis_link import RedisLink
from sitechat.shared_state.workers import WorkerPresence
from sitechat.storage.conversations import ConversationArchive
from sitechat.storage.database import PRIVATE_DIR_MODE, Database
from sitechat.storage.jobs import JobQueue
from sitechat.storage.store import Store
from sitechat.storage.unanswered import UnansweredLog
from sitechat.storage.usage import UsageLedger

logger = logging.getLogger(__name__)


class Draining(Protocol):
    def stream_started(self) -> None: ...

    def stream_ended(self) -> None: ...

    async def stop_requested(self) -> None: ...


def build_meaning(
    settings: Settings, encoder: DenseEncoder | None, stack: AsyncExitStack
) -> Meaning | None:
    """How answerability tells a paraphrase from a near miss beyond the words themselves
    (see chat.answerability): WordNet's relations when its files are there, then the local
    dense model's word vectors when it is configured."""
    parts: list[Meaning] = []
    wordnet = WordNet.open(settings.wordnet_dir) if settings.wordnet_dir else None
    if wordnet is not None:
        stack.callback(wordnet.close)
        parts.append(WordNetMeaning(wordnet))
    elif settings.wordnet_dir:
        logger.info(
            "answerability: no WordNet in %s (apt-get install wordnet-base)", settings.wordnet_dir
        )
    if isinstance(encoder, MiniLMEmbedder):
        parts.append(WordMeaning(encoder))
    return Meanings(*parts) if len(parts) > 1 else (parts[0] if parts else None)


def build_answer_judge(settings: Settings) -> Judge | None:
    """The model that judges answerability for every provider whose own model is not asked
    (``chat.answer_check``), when a GGUF file is configured for it."""
    if not settings.answer_judge_model_path:
        return None
    model = LocalLlamaModel(
        model_path=settings.answer_judge_model_path,
        name="answer-judge",
        # Five passages of at most 1,200 characters each, the instructions and the question.
        context_window=4096,
        max_concurrency=1,
        threads=settings.answer_judge_threads,
        max_passages=None,
        max_answer_tokens=3,
    )
    return Judge(
        model,
        timeout_seconds=settings.answer_judge_timeout_seconds,
        passages=settings.answer_judge_passages,
    )


def build_dense_encoder(settings: Settings) -> DenseEncoder | None:
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return build_encoder(
        settings.embedding_provider,
        model=settings.embedding_model,
        dimensions=settings.embedding_dimensions,
        openai_api_key=key,
        openai_base_url=settings.embedding_base_url or settings.openai_base_url,
    )


def build_vector_store(settings: Settings, *, dense: DenseEncoder | None = None) -> VectorStore:
    if settings.qdrant_url:
        from sitechat.retrieval.server_store import QdrantServerStore

        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantServerStore.from_url(
            settings.qdrant_url,
            api_key=api_key,
            collection=settings.qdrant_collection,
            dense=dense,
        )
    from sitechat.retrieval.edge_store import EdgeVectorStore

    return EdgeVectorStore(settings.data_dir / "qdrant", dense=dense)


async def visitor_token_secret(settings: Settings) -> bytes:
    if settings.visitor_token_secret is not None:
        return settings.visitor_token_secret.get_secret_value().encode()
    # Settings refuse a missing secret in production; elsewhere one is made and kept.
    return await anyio.to_thread.run_sync(load_or_create_secret, settings.data_dir)


@dataclass
class Services:
    settings: Settings
    database: Database
    store: Store
    vectors: VectorStore
    models: ModelRegistry
    configs: ConfigCache
    chat: ChatService
    ingestor: Ingestor
    ingestion_jobs: IngestionJobs
    job_runner: JobRunner | None
    redis: RedisLink | None
    invalidator: ConfigInvalidator
    archive: ConversationArchive
    unanswered: UnansweredLog
    usage: UsageLedger
    budgets: BudgetGuard
    limiter: RateLimiter
    slots: StreamSlots
    tokens: VisitorTokens
    rejections: RejectionCounter
    origin_index: OriginIndex
    client_ips: ClientIpResolver
    gate: PublicGate
    presence: WorkerPresence
    answers: Answers
    _stack: AsyncExitStack
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        models: ModelRegistry | None = None,
        preload_model: bool = False,
        open_index: bool = True,
        run_jobs: bool | None = None,
        serve_answers: bool = False,
    ) -> Services:
        """Every client, connected. ``open_index=False`` builds the vector store without
        opening it (commands that never search, or a CLI beside a server that holds the
        embedded index); ``run_jobs`` (default ``settings.run_jobs``) runs the ingestion job
        queue in this process, which needs the index open. ``serve_answers`` (the server)
        runs what answers need beside them: this process's heartbeat, the frame recorder,
        the stop listener and the orphan sweeper."""
        stack = AsyncExitStack()
        try:
            # Private: it holds the SQLite file, the index and the visitor-token secret.
            settings.data_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
            database = Database.from_settings(settings)
            await database.start(migrate=settings.auto_migrate)
            stack.push_async_callback(database.close)
            store = Store(database)

            encoder = build_dense_encoder(settings)
            if encoder is not None:
                stack.push_async_callback(encoder.aclose)
                start_encoder = getattr(encoder, "start", None)
                if start_encoder is not None and open_index:
                    await start_encoder()  # load local weights now, not on the first search
            vectors = build_vector_store(settings, dense=encoder)
            if open_index:
                if not settings.qdrant_url:
                    lock = IndexLock(settings.data_dir)
                    if not lock.acquire():
                        raise IndexBusy(lock.path.parent / "qdrant", lock.holder())
                    stack.callback(lock.release)
                await vectors.start()
                stack.push_async_callback(vectors.close)

            registry = models or ModelRegistry(settings)
            stack.push_async_callback(registry.aclose)
            if preload_model:
                await registry.start()
            judge = build_answer_judge(settings)
            if judge is not None:
                stack.push_async_callback(judge.model.aclose)
                if preload_model and isinstance(judge.model, LocalLlamaModel):
                    await judge.model.preload()

            redis = None
            if settings.redis_url:
                redis = RedisLink(settings.redis_url, prefix=settings.redis_key_prefix)
                stack.push_async_callback(redis.aclose)
                if not await redis.ping():
                    logger.warning("redis is not reachable at start; running on local state")

            loader = (
                SharedConfigLoader(
                    redis, store.get_chatbot, ttl_seconds=settings.shared_config_ttl_seconds
                )
                if redis is not None
                else store.get_chatbot
            )
            configs = ConfigCache(loader, ttl_seconds=settings.config_cache_ttl_seconds)
            presence = WorkerPresence(redis, ttl_seconds=settings.worker_heartbeat_seconds)
            chat = ChatService(
                meaning=build_meaning(settings, encoder, stack),
                answer_check=AnswerCheck(
                    providers=settings.answer_check_providers,
                    timeout_seconds=settings.answer_check_timeout_seconds,
                    judge=judge,
                ),
                worker_id=presence.worker_id,
                messages=store,
                vectors=vectors,
                models=registry,
                configs=configs,
                settings=ChatSettings.of(settings),
                enhancer=QueryEnhancer(
                    rewrite_providers=settings.query_rewrite_providers,
                    timeout_seconds=settings.query_rewrite_timeout_seconds,
                    variants=settings.query_variants,
                ),
                similarity_levels=(
                    OPENAI_SIMILARITY_LEVELS
                    if settings.embedding_provider == "openai"
                    else DEFAULT_SIMILARITY_LEVELS
                ),
            )
            ingestor = Ingestor(store, vectors)
            queue = JobQueue(database)
            jobs = IngestionJobs(
                ingestor,
                queue,
                fetch_policy=FetchPolicy(
                    addresses=AddressPolicy(parse_networks(settings.fetch_allowed_networks)),
                    timeout_seconds=settings.fetch_timeout_seconds,
                    max_bytes=settings.fetch_max_bytes,
                ),
            )
            runner = None
            if open_index and (settings.run_jobs if run_jobs is None else run_jobs):
                runner = JobRunner(
                    queue,
                    jobs.execute,
                    on_requeued=jobs.requeued,
                    concurrency=settings.ingestion_concurrency,
                )
                jobs.on_queued = runner.wake

            usage = UsageLedger(database)
            budgets = BudgetGuard(usage, cache_seconds=settings.budget_cache_seconds)
            limiter = RateLimiter(redis)
            slots = StreamSlots(redis, ttl_seconds=settings.stream_slot_ttl_seconds)
            presence.on_beat(slots.renew)
            recorder = None
            if redis is not None and settings.record_answers:
                recorder = RedisFrames(redis, ended_ttl_seconds=settings.answer_frames_ttl_seconds)
                stack.push_async_callback(recorder.aclose)
            runs = AnswerRuns(
                chat,
                grace_seconds=settings.answer_grace_seconds,
                frames_ttl_seconds=settings.answer_frames_ttl_seconds,
                recorder=recorder,
                partials=store if recorder is None else None,
            )
            answers = Answers(
                runs,
                store,
                presence,
                redis=redis,
                recorder=recorder,
                sweep_interval_seconds=settings.orphan_sweep_interval_seconds,
            )
            tokens = VisitorTokens(
                await visitor_token_secret(settings),
                ttl_seconds=settings.visitor_token_ttl_seconds,
            )
            rejections = RejectionCounter(usage)
            gate = PublicGate(
                settings=settings,
                configs=configs,
                limiter=limiter,
                slots=slots,
                budgets=budgets,
                tokens=tokens,
                rejections=rejections,
            )
            services = cls(
                settings=settings,
                database=database,
                store=store,
                vectors=vectors,
                models=registry,
                configs=configs,
                chat=chat,
                ingestor=ingestor,
                ingestion_jobs=jobs,
                job_runner=runner,
                redis=redis,
                invalidator=ConfigInvalidator(configs, redis),
                archive=ConversationArchive(database),
                unanswered=UnansweredLog(database),
                usage=usage,
                budgets=budgets,
                limiter=limiter,
                slots=slots,
                tokens=tokens,
                rejections=rejections,
                origin_index=OriginIndex(store.chatbot_origins),
                client_ips=ClientIpResolver(settings.trusted_proxies),
                gate=gate,
                presence=presence,
                answers=answers,
                _stack=stack,
            )
            services.invalidator.add_listener(services._on_invalidation)
            stack.push_async_callback(services._stop_tasks)
            services._spawn(rejections.run())
            if runner is not None:
                services._spawn(runner.run())
            if redis is not None:
                services._spawn(services.invalidator.run())
            if serve_answers:
                await presence.beat()  # seen alive before its first answer
                services._spawn(presence.run())
                if recorder is not None:
                    services._spawn(recorder.run())
                services._spawn(answers.listen_for_stops())
                services._spawn(answers.run_sweeper())
                if recorder is None:
                    services._spawn(runs.run_checkpoints(settings.answer_checkpoint_seconds))
                # Closed first: answers still running store their partial text while the
                # database is open.
                stack.push_async_callback(runs.cancel_all)
        except BaseException:
            await stack.aclose()
            raise
        return services

    def follow_drain(self, drain: Draining) -> None:
        """A graceful restart counts the answers running here, and stops those still
        running when its grace period ends (``server_restarting``)."""
        runs = self.answers.runs
        runs.drain = drain

        async def stop_when_told() -> None:
            await drain.stop_requested()
            stopped = runs.stop_all(ServerRestarting.code)
            if stopped:
                logger.warning("stopped %d answers still running", stopped)

        self._spawn(stop_when_told())

    def _on_invalidation(self, kind: str, item_id: str) -> None:
        if kind in ("chatbot", "all"):
            self.origin_index.invalidate()
        if kind == "org":
            self.budgets.forget_org(item_id)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.create_task(work))

    async def _stop_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("a background task failed while stopping")
        self._tasks.clear()

    async def require_writable(self) -> None:
        """Admin writes call this first: 503 while a configured Redis is unreachable."""
        if self.redis is not None:
            await self.redis.require_writable()

    async def chatbot_changed(self, chatbot_id: str) -> None:
        """After a chatbot is updated or deleted: every process's caches forget it."""
        await self._invalidate("chatbot", chatbot_id)

    async def org_changed(self, org_id: str) -> None:
        await self._invalidate("org", org_id)

    async def _invalidate(self, kind: str, item_id: str) -> None:
        await self.invalidator.invalidate(kind, item_id)  # SharedStateUnavailable: 503

    async def aclose(self) -> None:
        await self._stack.aclose()
