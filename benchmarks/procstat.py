"""What a process costs, read from ``/proc`` (Linux): CPU time and resident memory.

CPU counts the process and every descendant alive at the time of reading (``sitechat serve``
with one worker is one process, but a launcher may sit in between); a descendant that exited
between two readings takes its time with it, so the callers read around work whose
processes stay up.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses; it ends at the last ")".
    return raw[raw.rindex(")") + 2 :].split()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread ended while we looked
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, as they are now."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        try:
            pending += _children(current)
        except OSError:
            continue
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its living descendants, in seconds."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = _stat_fields(member)
        except OSError:
            continue
        # After the command name: state is fields[0], so utime (14) and stime (15) are 11, 12.
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def rss_bytes(pid: int) -> int:
    """The resident set of ``pid`` alone (``VmRSS``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid} (a zombie?)")


def raise_open_files(wanted: int) -> int:
    """Raise this process's soft limit on open files towards ``wanted`` (at most the hard
    limit); children started afterwards inherit it. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft
