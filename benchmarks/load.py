"""Many answers at once: sitechat against the thinnest relay, on one scripted upstream.

Every server is a real process on loopback (``benchmarks.servers``); the scripted
OpenAI-compatible upstream runs in a process of its own (``benchmarks.upstream``: 50 ms to
the first token, then 40 tokens 20 ms apart); the clients are this process
(``benchmarks.sse_streams``, a lean raw-socket reader). For each number of streams N, every
set-up gets N streams at once (N = 1: that many in a row, ``--sequential``), read to the end,
``--repeat`` times (3 by default). The set-ups take turns within each repetition, starting
with another one each time, so the machine's noise falls on all of them alike; a set-up's
numbers pool all of its rounds (a round of 50 streams lasts a second: one alone swung the
ratios by a third between runs). Each round's own TTFT median is kept too.

Reported per set-up and N: TTFT median and p99, token-gap p99 (between token arrivals at the
client), streams completed, and the server process's CPU per completed stream (utime+stime
from ``/proc``, read around the round); then each sitechat set-up's ratios against the relay,
and the targets of issue 13. Raw numbers go to ``benchmarks/results/load-<time>.json``.

Idle streams (``--idle``, 2,000 by default; 0 skips): a fresh relay, then a fresh ``sitechat
serve`` on SQLite, whose upstream now waits an hour before its first token, get that many
streams opened and left open (sitechat's only ping); each one's RSS (``VmRSS``) before and with
them open gives its memory per idle stream, sitechat's also as a ratio to the relay's.

    python -m benchmarks load                      # everything, default sizes
    python -m benchmarks.load --streams 1,10 --idle 100 --setups relay,sitechat-sqlite
    BENCH_LOAD_STREAMS=1,10 BENCH_LOAD_IDLE=100 make bench load

A set-up that cannot start (no PostgreSQL or Redis here) is reported as skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any, Literal

from benchmarks.procstat import cpu_seconds, raise_open_files, rss_bytes
from benchmarks.servers import HOST, REPO, Running, postgres_and_redis, relay, sitechat
from benchmarks.servers import sitechat_env as _sitechat_env
from benchmarks.sse_streams import OpenStream, StreamResult, Target, open_stream, read_stream
from benchmarks.stats import percentile
from benchmarks.upstream import Shape, Upstream

SETUPS = ("relay", "sitechat-sqlite", "sitechat-pg-redis")
BASELINE = "relay"
ANSWER = Shape(tokens=40, first_token_delay=0.05, token_gap=0.02)
SILENT = Shape(tokens=40, first_token_delay=3600.0, token_gap=0.02)
QUESTIONS = [
    "How do I embed the widget?",
    "How does streaming work?",
    "Which models can I use?",
    "How are rate limits configured?",
    "How do I deploy sitechat?",
    "What does the admin API offer?",
    "How is a document ingested?",
    "How does retrieval rank passages?",
]
# After a round, writes that follow the last frame (the answer stored) still count.
SETTLE_SECONDS = 0.5
IDLE_BATCH = 100


@dataclass
class Config:
    streams: list[int] = field(default_factory=lambda: [1, 50, 200])
    sequential: int = 20  # N = 1: this many streams one after another
    repeat: int = 3  # rounds per set-up and N, interleaved with the other set-ups'
    setups: list[str] = field(default_factory=lambda: list(SETUPS))
    idle: int = 2000
    timeout: float = 120.0  # per stream, from connect to its end
    warmup: int = 20
    results_dir: Path = REPO / "benchmarks" / "results"


# --- one round ----------------------------------------------------------------------------


def _body(running: Running, i: int) -> dict[str, Any]:
    body: dict[str, Any] = {"message": QUESTIONS[i % len(QUESTIONS)]}
    if running.chatbot_id is not None:
        body["chatbot_id"] = running.chatbot_id
    return body


def _target(running: Running) -> Target:
    return Target(HOST, running.port, running.path)


async def _streams(
    running: Running,
    n: int,
    *,
    in_a_row: bool,
    timeout: float,  # noqa: ASYNC109 (per stream, not for the whole call)
) -> list[StreamResult]:
    target = _target(running)
    if in_a_row:
        return [await read_stream(target, _body(running, i), timeout=timeout) for i in range(n)]
    return list(
        await asyncio.gather(
            *(read_stream(target, _body(running, i), timeout=timeout) for i in range(n))
        )
    )


@dataclass
class Measured:
    """A set-up's rounds at one N, pooled."""

    results: list[StreamResult] = field(default_factory=list)
    server_cpu: float = 0.0
    upstream_cpu: float = 0.0
    wall: float = 0.0
    round_medians: list[float | None] = field(default_factory=list)

    def add(
        self, results: list[StreamResult], server_cpu: float, upstream_cpu: float, wall: float
    ) -> None:
        self.results += results
        self.server_cpu += server_cpu
        self.upstream_cpu += upstream_cpu
        self.wall += wall
        ttfts = [r.ttft_ms for r in results if r.ok and r.ttft_ms is not None]
        self.round_medians.append(round(median(ttfts), 1) if ttfts else None)


async def measure(
    running: Running, upstream: Upstream, n: int, config: Config, into: Measured
) -> None:
    """One round: N streams at once (or ``sequential`` in a row), added to ``into``."""
    in_a_row = n == 1
    count = config.sequential if in_a_row else n
    server_cpu, upstream_cpu = cpu_seconds(running.pid), cpu_seconds(upstream.pid)
    started = time.monotonic()
    results = await _streams(running, count, in_a_row=in_a_row, timeout=config.timeout)
    wall = time.monotonic() - started
    await asyncio.sleep(SETTLE_SECONDS)
    server_cpu = cpu_seconds(running.pid) - server_cpu
    upstream_cpu = cpu_seconds(upstream.pid) - upstream_cpu
    await asyncio.to_thread(upstream.command, "forget")
    into.add(results, server_cpu, upstream_cpu, wall)


def summarize(setup: str, n: int, measured: Measured) -> dict[str, Any]:
    results, server_cpu, upstream_cpu = (
        measured.results,
        measured.server_cpu,
        measured.upstream_cpu,
    )
    ok = [r for r in results if r.ok]
    ttfts = [r.ttft_ms for r in ok if r.ttft_ms is not None]
    gaps = [g for r in ok for g in r.gaps_ms]
    errors = Counter((r.error or "incomplete")[:120] for r in results if not r.ok)
    done = len(ok)
    return {
        "setup": setup,
        "n": n,
        "streams": len(results),
        "completed": done,
        "ttft_median_ms": median(ttfts) if ttfts else None,
        "ttft_p99_ms": percentile(ttfts, 99) if ttfts else None,
        "gap_p99_ms": percentile(gaps, 99) if gaps else None,
        "tokens_median": median(len(r.token_times) for r in ok) if ok else None,
        "cpu_ms_per_stream": server_cpu * 1000 / done if done else None,
        "upstream_cpu_ms_per_stream": upstream_cpu * 1000 / done if done else None,
        "server_cpu_s": server_cpu,
        "wall_s": measured.wall,
        "rounds": len(measured.round_medians),
        "round_ttft_medians_ms": measured.round_medians,
        "errors": dict(errors.most_common(5)),
        "raw": {
            "ttft_ms": [round(t, 2) for t in ttfts],
            "gaps_ms": [round(g, 2) for g in gaps],
        },
    }


async def warm_up(running: Running, config: Config) -> None:
    """Imports, tokenizers, caches and connection pools, before anything is timed."""
    warm = await _streams(running, 3, in_a_row=True, timeout=config.timeout)
    warm += await _streams(running, config.warmup, in_a_row=False, timeout=config.timeout)
    failed = [r for r in warm if not r.ok]
    if failed:
        raise RuntimeError(f"{running.name}: warm-up streams failed: {failed[0].error}")


# --- idle streams -------------------------------------------------------------------------


async def idle_streams(upstream: Upstream, workdir: Path, config: Config) -> dict[str, Any]:
    """RSS ``config.idle`` streams whose model says nothing add to a sitechat worker, and
    to the relay (the baseline) in the same run."""
    with relay(upstream.base_url, workdir / "relay") as running:
        baseline = await _idle_memory(running, upstream, config, first="headers")
    env = _sitechat_env(
        workdir / "sitechat",
        upstream.base_url,
        # Silent answers must neither time out (the first-token deadline; the SDK's read
        # and connection-pool timeouts) nor linger once their reader is gone.
        SITECHAT_MODEL_FIRST_TOKEN_TIMEOUT_SECONDS="3600",
        SITECHAT_OPENAI_TIMEOUT_SECONDS="3600",
        SITECHAT_ANSWER_GRACE_SECONDS="0",
    )
    with sitechat("sitechat-idle", env, workdir / "sitechat") as running:
        measured = await _idle_memory(running, upstream, config, first="frame")
    ratio = (
        measured["kib_per_stream"] / baseline["kib_per_stream"]
        if measured["kib_per_stream"] and baseline["kib_per_stream"]
        else None
    )
    return {**measured, "relay": baseline, "ratio_per_stream": ratio}


async def _idle_memory(
    running: Running, upstream: Upstream, config: Config, *, first: Literal["frame", "headers"]
) -> dict[str, Any]:
    """Open ``config.idle`` silent streams on ``running`` (opened: its first frame, or for
    the relay, which sends none before the first token, its headers) and read its RSS."""

    def is_open(s: OpenStream) -> bool:
        seen = s.result.opened_at is not None if first == "frame" else s.result.status == 200
        return seen and s.result.error is None

    await asyncio.to_thread(upstream.shape, ANSWER)
    await warm_up(running, config)
    await asyncio.to_thread(upstream.shape, SILENT)
    await asyncio.sleep(1.0)
    before = rss_bytes(running.pid)
    target = _target(running)
    streams: list[OpenStream] = []
    try:
        for start in range(0, config.idle, IDLE_BATCH):
            batch = await asyncio.gather(
                *(
                    open_stream(target, _body(running, i))
                    for i in range(start, min(start + IDLE_BATCH, config.idle))
                )
            )
            streams += batch
            await asyncio.gather(
                *(s.wait_opened(60) if first == "frame" else s.wait_headers(60) for s in batch)
            )
        await asyncio.sleep(2.0)  # let the answers reach the upstream and settle
        with_open = rss_bytes(running.pid)
        stats = await asyncio.to_thread(upstream.command, "stats")
        opened_count = sum(is_open(s) for s in streams)
        errors = Counter((s.result.error or "")[:120] for s in streams if s.result.error)
    finally:
        for stream in streams:
            stream.close()
        await asyncio.to_thread(upstream.shape, ANSWER)
    added = with_open - before
    return {
        "setup": running.name,
        "streams": config.idle,
        "opened": opened_count,
        "upstream_open": stats.get("open"),
        "rss_before_mib": before / 2**20,
        "rss_with_mib": with_open / 2**20,
        "added_mib": added / 2**20,
        "kib_per_stream": added / 1024 / opened_count if opened_count else None,
        "errors": dict(errors.most_common(5)),
    }


# --- the report ---------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ratios(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    base = {r["n"]: r for r in rounds if r["setup"] == BASELINE}
    out = []
    for r in rounds:
        relay_row = base.get(r["n"])
        if r["setup"] == BASELINE or relay_row is None:
            continue
        out.append(
            {
                "setup": r["setup"],
                "n": r["n"],
                **{
                    key: _ratio(r[key], relay_row[key])
                    for key in ("ttft_median_ms", "ttft_p99_ms", "gap_p99_ms", "cpu_ms_per_stream")
                },
                "ttft_median_minus_relay_ms": (
                    r["ttft_median_ms"] - relay_row["ttft_median_ms"]
                    if r["ttft_median_ms"] is not None and relay_row["ttft_median_ms"] is not None
                    else None
                ),
            }
        )
    return out


def targets(rounds: list[dict[str, Any]], ratio_rows: list[dict[str, Any]]) -> list[str]:
    """Issue 13's targets, checked where this run has the numbers for them."""
    checks: list[tuple[str, int, str, float | None, float, str]] = []
    for q in ratio_rows:
        name, n = q["setup"], q["n"]
        checks.append((name, n, "CPU per stream / relay", q["cpu_ms_per_stream"], 1.6, "x"))
        checks.append((name, n, "token-gap p99 / relay", q["gap_p99_ms"], 1.0, "x"))
        if n == 1:
            minus = q["ttft_median_minus_relay_ms"]
            checks.append((name, n, "TTFT median - relay", minus, 5.0, " ms"))
        if n == 50:
            checks.append((name, n, "TTFT median / relay", q["ttft_median_ms"], 1.6, "x"))
            checks.append((name, n, "TTFT p99 / relay", q["ttft_p99_ms"], 2.0, "x"))
        if n == 200:
            checks.append((name, n, "TTFT median / relay", q["ttft_median_ms"], 2.0, "x"))
    lines = []
    for name, n, label, value, limit, unit in checks:
        verdict = "?" if value is None else ("ok" if value <= limit else "MISSED")
        shown = f"{_fmt(value, '.2f')}{unit}"
        lines.append(f"{name:<18} N={n:<4} {label:<24} {shown:>10} ≤ {limit:g}{unit}  {verdict}")
    for r in rounds:
        if r["setup"] != BASELINE and r["n"] >= 50:
            verdict = "ok" if r["completed"] == r["streams"] else "MISSED"
            shown = f"{r['completed']}/{r['streams']}"
            lines.append(f"{r['setup']:<18} N={r['n']:<4} {'completed':<24} {shown:>10}  {verdict}")
    return lines


def print_report(rounds: list[dict[str, Any]], idle: dict[str, Any] | None) -> list[dict[str, Any]]:
    print(
        f"{'set-up':<18} {'N':>4} {'done':>9} {'TTFT med':>9} {'p99':>8} {'gap p99':>8} "
        f"{'CPU/stream':>11} {'upstream':>9}  (ms)"
    )
    for r in sorted(rounds, key=lambda r: (r["n"], SETUPS.index(r["setup"]))):
        print(
            f"{r['setup']:<18} {r['n']:>4} {r['completed']:>4}/{r['streams']:<4} "
            f"{_fmt(r['ttft_median_ms']):>9} {_fmt(r['ttft_p99_ms']):>8} "
            f"{_fmt(r['gap_p99_ms']):>8} {_fmt(r['cpu_ms_per_stream']):>11} "
            f"{_fmt(r['upstream_cpu_ms_per_stream']):>9}"
        )
        for error, count in r["errors"].items():
            print(f"{'':<24} {count} x {error}")
    ratio_rows = ratios(rounds)
    if ratio_rows:
        print(
            f"\n{'ratio to relay':<18} {'N':>4} {'TTFT med':>9} {'p99':>8} {'gap p99':>8} "
            f"{'CPU':>6} {'Δ med ms':>9}"
        )
        for q in ratio_rows:
            print(
                f"{q['setup']:<18} {q['n']:>4} {_fmt(q['ttft_median_ms'], '.2f'):>9} "
                f"{_fmt(q['ttft_p99_ms'], '.2f'):>8} {_fmt(q['gap_p99_ms'], '.2f'):>8} "
                f"{_fmt(q['cpu_ms_per_stream'], '.2f'):>6} "
                f"{_fmt(q['ttft_median_minus_relay_ms'], '+.1f'):>9}"
            )
        print("\ntargets (issue 13)")
        for line in targets(rounds, ratio_rows):
            print(f"  {line}")
    if idle is not None:
        print(f"\nidle streams ({idle['streams']} at once, the model silent)")
        for name, row in (("relay", idle["relay"]), ("sitechat", idle)):
            print(
                f"  {name:<9} {row['opened']}/{row['streams']} open (upstream saw "
                f"{row['upstream_open']} open); RSS {row['rss_before_mib']:.1f} -> "
                f"{row['rss_with_mib']:.1f} MiB: +{row['added_mib']:.1f} MiB, "
                f"{_fmt(row['kib_per_stream'])} KiB per stream"
            )
            for error, count in row["errors"].items():
                print(f"    {count} x {error}")
        per_2000 = (idle["kib_per_stream"] or 0) * 2000 / 1024
        print(
            f"  sitechat per stream: {_fmt(idle['ratio_per_stream'], '.2f')}x the relay's; "
            f"{per_2000:.0f} MiB for 2,000 (target: ≤ 150 MiB)"
        )
    return ratio_rows


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def save(config: Config, report: dict[str, Any]) -> Path:
    config.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = config.results_dir / f"load-{stamp}.json"
    path.write_text(json.dumps(report, indent=1, default=str))
    return path


# --- the run ------------------------------------------------------------------------------


async def _start_setups(
    stack: AsyncExitStack, upstream: Upstream, tmp: Path, config: Config
) -> tuple[list[Running], dict[str, str]]:
    running: list[Running] = []
    skipped: dict[str, str] = {}
    for name in config.setups:
        print(f"  starting {name}")
        try:
            if name == "relay":
                running.append(stack.enter_context(relay(upstream.base_url, tmp / name)))
            elif name == "sitechat-sqlite":
                env = _sitechat_env(tmp / name, upstream.base_url)
                running.append(stack.enter_context(sitechat(name, env, tmp / name)))
            elif name == "sitechat-pg-redis":
                try:
                    shared = await stack.enter_async_context(postgres_and_redis())
                except Exception as exc:  # no PostgreSQL or Redis on this machine
                    skipped[name] = f"PostgreSQL or Redis unreachable: {exc!r}"
                    print(f"  skipped {name}: {skipped[name]}")
                    continue
                env = _sitechat_env(tmp / name, upstream.base_url, **shared)
                running.append(stack.enter_context(sitechat(name, env, tmp / name)))
        except RuntimeError as exc:
            skipped[name] = str(exc)
            print(f"  skipped {name}: {exc}")
            continue
        await warm_up(running[-1], config)
    return running, skipped


async def run(config: Config) -> dict[str, Any]:
    unknown = set(config.setups) - set(SETUPS)
    if unknown:
        raise SystemExit(f"unknown set-up(s) {sorted(unknown)}; known: {', '.join(SETUPS)}")
    # Each idle stream holds a socket here, two in the server (visitor and upstream) and one
    # in the upstream; children inherit the limit.
    limit = raise_open_files(max(4096, 3 * config.idle + 1024))
    if limit < config.idle + 256:
        raise SystemExit(f"open-file limit {limit} is too low for {config.idle} idle streams")
    started_at = datetime.now(UTC).isoformat()
    load_before = os.getloadavg()
    print(f"  {os.cpu_count()} cores, load average {load_before[0]:.2f} at start")
    rounds: list[dict[str, Any]] = []
    idle: dict[str, Any] | None = None
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="sitechat-bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        with Upstream() as upstream:
            await asyncio.to_thread(upstream.shape, ANSWER)
            async with AsyncExitStack() as stack:
                running, skipped = await _start_setups(stack, upstream, tmp, config)
                pooled: dict[tuple[str, int], Measured] = {}
                for turn, n in enumerate(config.streams):
                    for repetition in range(config.repeat):
                        shift = (turn + repetition) % len(running) if running else 0
                        for server in running[shift:] + running[:shift]:
                            into = pooled.setdefault((server.name, n), Measured())
                            await measure(server, upstream, n, config, into)
                            done = sum(
                                r.ok for r in into.results[-(config.sequential if n == 1 else n) :]
                            )
                            print(
                                f"  N={n:<4} {server.name:<18} round {repetition + 1}: "
                                f"{done} complete, TTFT median "
                                f"{_fmt(into.round_medians[-1])} ms"
                            )
                rounds = [summarize(name, n, m) for (name, n), m in pooled.items()]
            if config.idle:
                print(f"  idle: {config.idle} silent streams")
                idle = await idle_streams(upstream, tmp / "idle", config)
    load_after = os.getloadavg()
    print()
    ratio_rows = print_report(rounds, idle)
    report = {
        "started_at": started_at,
        "finished_at": datetime.now(UTC).isoformat(),
        "commit": _git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "config": asdict(config),
        "upstream": asdict(ANSWER),
        "skipped": skipped,
        "rounds": rounds,
        "ratios": ratio_rows,
        "idle": idle,
    }
    path = save(config, report)
    print(f"\nraw numbers: {path}")
    for name, reason in skipped.items():
        print(f"SKIPPED {name}: {reason.splitlines()[0]}")
    if load_before[0] > 0.5:
        print(f"note: the machine was busy (load {load_before[0]:.2f}): the numbers are noisy")
    return report


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def config_from(argv: list[str] | None = None) -> Config:
    """Options from the command line, defaulting to ``BENCH_LOAD_*`` variables (which is
    how ``python -m benchmarks load`` and ``make bench load`` take them)."""
    env = os.environ.get
    default = Config()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--streams",
        default=env("BENCH_LOAD_STREAMS", ",".join(map(str, default.streams))),
        help="streams at once, comma-separated (1: --sequential in a row)",
    )
    parser.add_argument(
        "--sequential", type=int, default=int(env("BENCH_LOAD_SEQUENTIAL", default.sequential))
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=int(env("BENCH_LOAD_REPEAT", default.repeat)),
        help="rounds per set-up and N, taking turns with the other set-ups (pooled)",
    )
    parser.add_argument(
        "--setups",
        default=env("BENCH_LOAD_SETUPS", ",".join(default.setups)),
        help=f"comma-separated, of {', '.join(SETUPS)}",
    )
    parser.add_argument(
        "--idle",
        type=int,
        default=int(env("BENCH_LOAD_IDLE", default.idle)),
        help="idle streams to hold open for the memory measurement (0: skip)",
    )
    parser.add_argument(
        "--timeout", type=float, default=float(env("BENCH_LOAD_TIMEOUT", default.timeout))
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=Path(env("BENCH_LOAD_RESULTS_DIR", str(default.results_dir))),
    )
    args = parser.parse_args(argv)
    return Config(
        streams=_ints(args.streams),
        sequential=args.sequential,
        repeat=max(1, args.repeat),
        setups=[s.strip() for s in args.setups.split(",") if s.strip()],
        idle=args.idle,
        timeout=args.timeout,
        results_dir=args.results_dir,
    )


async def main() -> None:
    await run(config_from([]))


if __name__ == "__main__":
    asyncio.run(run(config_from(sys.argv[1:])))
