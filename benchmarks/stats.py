"""Small helpers for reporting latencies."""

from __future__ import annotations

from statistics import median


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(label: str, values_ms: list[float]) -> str:
    return (
        f"{label:<44} n={len(values_ms):<4} median={median(values_ms):8.1f} ms  "
        f"p99={percentile(values_ms, 99):8.1f} ms  worst={max(values_ms):8.1f} ms"
    )
