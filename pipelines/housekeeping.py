"""Housekeeping of the files a run writes: disk-full errors that name the path and the free space,
and the pruning of stale failure emails.

- :func:`writing` wraps a write (a staging Parquet file, the sales store, an output file): an
  ``OSError`` with ``errno.ENOSPC`` (or ``EDQUOT``) is raised again as :class:`DiskFullError`, still
  an ``OSError`` with the same errno, whose message names the path being written and the space left
  on its file system (``no space left writing /var/staging/2026-11-25/extract_sales.parquet.tmp:
  12.0 MiB free of 20.0 GiB on /var/staging``). Other errors pass unchanged.
- :func:`prune_failure_emails` removes the data-team failure emails kept as ``.eml`` (no SMTP server,
  or one that refused them) from the run-date folders ``<output_dir>/<YYYY-MM-DD>/`` older than
  ``email.failure_eml_retention_days`` days before the run date, so that they no longer pile up.
  A failure email is recognised by its ``Subject`` header (``[Tiaobo] FAILED ...``, what
  :func:`pipelines.notify.build_failure_email` writes), never by the file name; planner digests and
  every other file are left alone. Age is counted in business dates from the run date, never from
  the wall clock.
"""

from __future__ import annotations

import errno
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path

FAILURE_SUBJECT = "[Tiaobo] FAILED"
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class DiskFullError(OSError):
    """A write failed for lack of space; the message names the path and the free space."""


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns at GiB


def free_space(path: str | Path) -> str:
    """``'<free> free of <total> on <folder>'`` for the file system holding ``path`` (its nearest
    existing folder), or ``'free space unknown'``."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        usage = shutil.disk_usage(p)
    except OSError:
        return "free space unknown"
    return f"{_size(usage.free)} free of {_size(usage.total)} on {p}"


def disk_full(exc: OSError, path: str | Path) -> DiskFullError:
    """The :class:`DiskFullError` for ``exc`` raised while writing ``path``."""
    return DiskFullError(exc.errno, f"no space left writing {path}: {free_space(path)}", str(path))


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Raise a disk-full ``OSError`` met inside the block as :class:`DiskFullError` naming ``path``."""
    try:
        yield
    except DiskFullError:
        raise
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise disk_full(exc, path) from exc
        raise


def _is_failure_email(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            headers = BytesHeaderParser(policy=default_policy).parse(fh)
    except OSError:
        return False
    return str(headers.get("Subject", "")).startswith(FAILURE_SUBJECT)


def prune_failure_emails(output_dir: str | Path, run_date: date, retention_days: int) -> list[Path]:
    """Remove failure ``.eml`` files (and ``.eml.tmp`` leftovers) of run dates more than
    ``retention_days`` before ``run_date``; returns what was removed. ``retention_days = 0`` keeps
    only the run date's own folder."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    oldest_kept = run_date - timedelta(days=int(retention_days))
    removed: list[Path] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and _DATE_FOLDER.match(p.name)):
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            continue
        if day >= oldest_kept:
            continue
        for f in sorted(folder.glob("*.eml")):
            if _is_failure_email(f):
                f.unlink(missing_ok=True)
                removed.append(f)
        for tmp in sorted(folder.glob("*.eml.tmp")):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


__all__ = ["DiskFullError", "disk_full", "free_space", "prune_failure_emails", "writing"]
