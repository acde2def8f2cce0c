"""One run per business date at a time: a lock file with its holder, and a wait with a limit.

Two runs of the same date used to share one staging folder: interleaved, one published the
other's transfers under its own run id. The runner now holds ``<staging_dir>/<date>.lock`` for the
whole run (an ``flock``: the kernel releases it when the holder dies, even by ``kill -9``, so a
lock can never go stale) and writes who holds it into the file: process, host, attempt, since when.
A second run of that date waits up to ``run_lock_timeout_s`` and then gives up with
:class:`RunLocked`, naming the holder; the run log records it. Runs of different dates never wait
for each other here (the publish transaction serialises them in the reporting database).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

POLL_S = 0.2


class RunLocked(RuntimeError):
    """Another run of the same date holds the lock (named in the message)."""

    def __init__(self, run_date: date, holder: dict[str, Any], waited_s: float) -> None:
        who = describe(holder)
        super().__init__(
            f"another run of {run_date} is in progress ({who}); waited {waited_s:.0f} s for it"
            " (run_lock_timeout_s). Let it finish, or end that process if it hangs"
        )
        self.holder = holder


@dataclass(frozen=True)
class Held:
    """The lock this process holds: its file and what it says about us."""

    path: Path
    holder: dict[str, Any]

    @property
    def text(self) -> str:
        return describe(self.holder)


def describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    attempt = f", attempt {holder['attempt']}" if holder.get("attempt") else ""
    return f"pid {holder.get('pid')} on {holder.get('host')}, {holder.get('via', 'tiaobo')}{attempt}, since {holder.get('since')}"


def lock_path(staging_dir: Path | str, run_date: date) -> Path:
    return Path(staging_dir) / f"{run_date.isoformat()}.lock"


def read_holder(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8") or "{}"))
    except (OSError, ValueError):
        return {}


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def run_lock(staging_dir: Path | str, run_date: date, timeout_s: float, via: str = "tiaobo run") -> Iterator[Held]:
    """Hold the run lock of ``run_date`` for the ``with`` block; :class:`RunLocked` after ``timeout_s``."""
    path = lock_path(staging_dir, run_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waited = _acquire(fd, timeout_s)
        if waited is not None:
            raise RunLocked(run_date, read_holder(path), waited)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "via": via,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _write(fd, holder)
        held = Held(path, holder)
        try:
            yield held
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def set_attempt(held: Held, attempt: str) -> None:
    """Name the run-log attempt in the lock file (known only once the attempt is logged)."""
    held.holder["attempt"] = attempt
    fd = os.open(held.path, os.O_RDWR)
    try:
        _write(fd, held.holder)
    finally:
        os.close(fd)


def _write(fd: int, holder: dict[str, Any]) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder, sort_keys=True).encode(), 0)


def _acquire(fd: int, timeout_s: float) -> float | None:
    """Take the exclusive ``flock`` on ``fd`` within ``timeout_s``; None, or the seconds waited in vain."""
    t0 = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            waited = time.monotonic() - t0
            if waited >= timeout_s:
                return waited
            time.sleep(min(POLL_S, max(0.0, timeout_s - waited)))


@contextmanager
def store_lock(folder: Path, timeout_s: float) -> Iterator[None]:
    """Hold ``<folder>/store.lock`` (the incremental sales store of one source) for the ``with``
    block: runs of different dates refresh and read the store one at a time, so none reads a day
    another is swapping in. Raises ``TimeoutError`` naming the lock after ``timeout_s``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "store.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waited = _acquire(fd, timeout_s)
        if waited is not None:
            raise TimeoutError(
                f"the sales store {folder} is being refreshed by another run (lock {path}); waited {waited:.0f} s"
                " (run_lock_timeout_s)"
            )
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
