"""Run every benchmark, or the ones named: ``python -m benchmarks [ttft ...]``."""

from __future__ import annotations

import asyncio
import sys

from benchmarks import limiter, load, resume, retrieval, ttft

BENCHMARKS = {
    "ttft": ttft.main,
    "retrieval": retrieval.main,
    "limiter": limiter.main,
    "resume": resume.main,
    "load": load.main,
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    for name in names:
        print(f"== {name}")
        asyncio.run(BENCHMARKS[name]())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
