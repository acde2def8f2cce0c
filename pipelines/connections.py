"""Database connections: Airflow connection ids, retries with backoff, and password-free messages."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pipelines.urls import scrub_secret

log = logging.getLogger(__name__)

T = TypeVar("T")


class SourceUnavailable(RuntimeError):
    """A source could not be reached after all retries (message names host and database only)."""


def describe(url: str) -> str:
    """'host:port/database (dialect)' for messages; never the password."""
    try:
        u = make_url(url)
    except Exception:
        return "<unparseable URL>"
    if u.get_backend_name() == "sqlite":
        return f"SQLite file {u.database}"
    where = f"{u.host or 'localhost'}{':' + str(u.port) if u.port else ''}"
    return f"{u.get_backend_name()} at {where}, database {u.database}"


def with_retries(
    what: str,
    url: str,
    attempt: Callable[[], T],
    *,
    retries: int,
    backoff_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``attempt``; on a connection error retry ``retries`` times with exponential backoff."""
    last: Exception | None = None
    for i in range(retries + 1):
        try:
            return attempt()
        except (sa.exc.OperationalError, sa.exc.InterfaceError, ConnectionError, OSError) as exc:
            last = exc
            if i < retries:
                delay = backoff_seconds * (2**i)
                log.warning(
                    "%s: %s unreachable (attempt %d of %d), retrying in %.1fs",
                    what,
                    describe(url),
                    i + 1,
                    retries + 1,
                    delay,
                )
                sleep(delay)
    reason = str(getattr(last, "orig", last) or last).strip().splitlines()[0][:300] if last else "unknown"
    raise SourceUnavailable(
        f"{what}: cannot connect to {describe(url)} after {retries + 1} attempt(s): {scrub_secret(reason, url)}"
    ) from None
