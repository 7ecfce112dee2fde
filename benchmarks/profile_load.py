"""Where a sitechat worker spends its CPU under many simultaneous answers: py-spy records
the server process while rounds of N streams run against the scripted upstream.

    python -m benchmarks.profile_load --streams 50 --rounds 6 --out /tmp/sitechat.txt

The output is py-spy's ``raw`` format (collapsed stacks, one per line with its sample
count), which ``--top`` summarizes: the functions with the most samples, self and total.
Needs ``py-spy`` (``pip install py-spy``) and permission to read the server's memory
(root, or ``ptrace_scope`` 0).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.load import ANSWER, Config, _streams, warm_up
from benchmarks.servers import postgres_and_redis, sitechat
from benchmarks.servers import sitechat_env as _sitechat_env
from benchmarks.upstream import Upstream


async def profile(streams: int, rounds: int, out: Path, storage: str) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    config = Config(streams=[streams], setups=[], idle=0)
    with Upstream() as upstream, tempfile.TemporaryDirectory() as tmp:
        upstream.shape(ANSWER)
        extra: dict[str, str] = {}
        async with postgres_and_redis() as shared:
            if storage == "pg-redis":
                extra = shared
            env = _sitechat_env(Path(tmp), upstream.base_url, **extra)
            with sitechat("sitechat", env, Path(tmp)) as running:
                await warm_up(running, config)
                command = [py_spy, "record", "--pid", str(running.pid), "--format", "raw"]
                command += ["--rate", "250", "--output", str(out), "--nonblocking"]
                recorder = subprocess.Popen(  # noqa: ASYNC220 (started once, not awaited)
                    command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                await asyncio.sleep(1.0)
                for _ in range(rounds):
                    await _streams(running, streams, in_a_row=False, timeout=120)
                    await asyncio.to_thread(upstream.command, "forget")
                recorder.send_signal(2)  # SIGINT: py-spy writes its file and exits
                recorder.wait(timeout=30)


def top(path: Path, count: int = 40) -> None:
    """The functions with the most samples: self (on top of the stack) and total."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = stack.split(";")
        samples += int(n)
        own[frames[-1]] += int(n)
        for frame in set(frames):
            total[frame] += int(n)
    print(f"{samples} samples")
    print("-- self")
    for frame, n in own.most_common(count):
        print(f"{100 * n / samples:5.1f}%  {frame}")
    print("-- total")
    for frame, n in total.most_common(count * 2):
        print(f"{100 * n / samples:5.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--storage", choices=["sqlite", "pg-redis"], default="sqlite")
    parser.add_argument("--out", type=Path, default=Path("profile.txt"))
    parser.add_argument("--top", action="store_true", help="only summarize --out")
    args = parser.parse_args()
    if not args.top:
        asyncio.run(profile(args.streams, args.rounds, args.out, args.storage))
    top(args.out)


if __name__ == "__main__":
    main()
