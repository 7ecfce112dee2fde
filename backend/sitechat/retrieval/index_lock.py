"""Which process owns the embedded index.

Qdrant Edge keeps its shard in files that one process at a time may open. Rather than let
a second process fail deep inside Qdrant (``failed to open WAL … WouldBlock``), the owner
takes an exclusive advisory lock on ``<data_dir>/qdrant.lock`` first, and whoever finds it
taken knows at once that another process (a running ``sitechat serve``) holds the index: the
CLI then only queues its work for that process, and a second server refuses to start with
one line saying why. The lock dies with its process, so a crash never leaves it behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "qdrant.lock"


class IndexLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting: False when another process holds it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str | None:
        """The pid written by the process holding the lock, if readable."""
        try:
            return self.path.read_text().strip() or None
        except OSError:
            return None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
