"""The reporting database: schema migrations, one atomic idempotent publish per run date, run log.

Planners read the published output tables (one per output table of :mod:`pipelines.contract`) and
the views of ``sql/views``; the data team reads ``run_log``. Works on SQLite (the embedded default)
and PostgreSQL (production).

- :func:`migrate` runs the hand-written Alembic migrations of ``sql/migrations`` up to head, then
  re-creates the views from ``sql/views/*.sql``, all in one transaction.
- :func:`publish` replaces everything published for one run date in ONE transaction: delete the
  date's rows of every output table, insert the new ones, upsert ``published_runs``, run the
  caller's ``before_commit(conn)`` hook, commit. Any exception rolls back: readers see either the
  previous publication or the new one, never a mix, and publishing the same frames twice gives the
  same rows. On PostgreSQL with psycopg 3 the rows go through ``COPY ... (FORMAT binary)`` straight into
  the table inside that transaction (binary format, encoded with numpy); elsewhere through ``executemany``.
- The run log has one row per attempt (:func:`log_attempt_start` / :func:`log_attempt_end`), each
  written in its own short transaction so that it survives a failed publish.

Limits: URLs are never shown with their password (:func:`pipelines.urls.redact_url`); messages
written to the run log have any ``scheme://user:password@`` scrubbed. The ``sql/`` folder is read
from the source tree (the package is installed editable); a wheel would need it as package data.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from pipelines import contract
from pipelines.urls import redact_url, scrub_urls

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
VIEWS_DIR = SQL_DIR / "views"

#: ``email_failed``: a separate attempt row written by the notify stage when a digest could not be
#: delivered (the run's own attempt stays ``published``: the results are published)
RUN_STATUSES = ("running", "published", "failed", "stopped", "email_failed", "abandoned", "skipped")
END_STATUSES = ("published", "failed", "stopped", "email_failed", "abandoned", "skipped")

#: rows per chunk of COPY text built in memory at once (bounds memory on big tables)
COPY_CHUNK_ROWS = 100_000

# advisory-lock class id on PostgreSQL ("tiaobo" folded to a signed 32-bit int)
_LOCK_CLASS = zlib.crc32(b"tiaobo") - 2**31


class PublishError(RuntimeError):
    """Publishing a run date failed; the previously published state is unchanged."""


class ReportingLockTimeout(RuntimeError):
    """A migration or publish waited longer than ``reporting.lock_timeout_s`` for a lock another
    session holds; the message names the session(s) and what to do. Nothing was changed."""


#: waits on the reporting database (seconds): lock waits and the longest statement; set from the
#: configuration by :func:`configure_timeouts` (the runner and every Airflow task call it)
TIMEOUTS = {"lock": 30.0, "statement": 1800.0}


def configure_timeouts(lock_s: float, statement_s: float) -> None:
    """Use these waits for every reporting session from now on (engines made before are remade)."""
    new = {"lock": float(lock_s), "statement": float(statement_s)}
    if new == TIMEOUTS:
        return
    TIMEOUTS.update(new)
    with _LOCK:
        stale = list(_ENGINES.items())
        _ENGINES.clear()
    for _, engine in stale:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Table objects used for reads and writes (the schema itself is created by the migrations)
# --------------------------------------------------------------------------------------------

_SA_TYPES: dict[str, Callable[[], sa.types.TypeEngine[Any]]] = {
    "str": sa.Text,
    "int": sa.BigInteger,
    "float": sa.Double,
    "bool": sa.Boolean,
    "date": sa.Date,
    "ts": lambda: sa.DateTime(timezone=True),
}

METADATA = sa.MetaData()


def _contract_table(t: contract.Table) -> sa.Table:
    return sa.Table(
        t.name,
        METADATA,
        *[sa.Column(c.name, _SA_TYPES[c.type](), nullable=c.nullable, primary_key=c.name in t.key) for c in t.columns],
    )


OUTPUT_SA: dict[str, sa.Table] = {name: _contract_table(t) for name, t in contract.OUTPUT_TABLES.items()}
TRANSFER_DECISIONS = _contract_table(contract.TRANSFER_DECISIONS)
PURCHASE_DECISIONS = _contract_table(contract.PURCHASE_DECISIONS)

RUN_LOG = sa.Table(
    "run_log",
    METADATA,
    sa.Column("attempt_id", sa.Text(), primary_key=True),
    sa.Column("run_date", sa.Date(), nullable=False),
    sa.Column("run_id", sa.Text()),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("stage", sa.Text()),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("counts_json", sa.Text(), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("method_notes", sa.Text()),
)

PUBLISHED_RUNS = sa.Table(
    "published_runs",
    METADATA,
    sa.Column("run_date", sa.Date(), primary_key=True),
    sa.Column("run_id", sa.Text(), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("counts_json", sa.Text(), nullable=False),
)

WATERMARKS = sa.Table(
    "watermarks",
    METADATA,
    sa.Column("source", sa.Text(), primary_key=True),
    sa.Column("table_name", sa.Text(), primary_key=True),
    sa.Column("watermark", sa.Text(), nullable=False),
    sa.Column("run_date", sa.Date(), nullable=False),
)


# --------------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------------

_ENGINES: dict[str, sa.Engine] = {}
_MIGRATED: set[str] = set()
_LOCK = threading.Lock()


def _normalise_url(url: str) -> sa.URL:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")  # psycopg 3 is the driver we ship (COPY)
    return u


def engine_for(url: str) -> sa.Engine:
    """The engine for ``url``, made once per URL and process.

    ``postgresql://`` URLs use psycopg 3. SQLite: the parent folder of the file is created, the
    connection runs in WAL mode with foreign keys on, and transactions are real (``BEGIN`` is
    emitted by SQLAlchemy, not left to the sqlite3 module, which would not wrap DDL).
    """
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is not None:
            return engine
        u = _normalise_url(url)
        if u.get_backend_name() == "sqlite":
            db = u.database or ""
            if db and db != ":memory:" and not db.startswith("file:"):
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(u, connect_args={"timeout": TIMEOUTS["lock"]})
            _sqlite_transactions(engine)
        elif u.get_backend_name() == "postgresql":
            # every session of ours gives up on a lock wait or a runaway statement instead of hanging
            options = f"-c lock_timeout={int(TIMEOUTS['lock'] * 1000)} -c statement_timeout={int(TIMEOUTS['statement'] * 1000)}"
            engine = sa.create_engine(u, pool_pre_ping=True, connect_args={"options": options})
        else:
            engine = sa.create_engine(u, pool_pre_ping=True)
        _ENGINES[url] = engine
        return engine


def _sqlite_transactions(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below drive transactions
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        # writers ask for BEGIN IMMEDIATE (see _write_engine): they take the write lock up front and
        # wait for it (busy timeout) instead of failing when a read snapshot cannot be upgraded
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("tiaobo_write") else "BEGIN")


def _write_engine(url: str) -> sa.Engine:
    """The engine of ``url`` for a read-write transaction (SQLite: BEGIN IMMEDIATE)."""
    return engine_for(url).execution_options(tiaobo_write=True)


def dispose_engine(url: str) -> None:
    """Close the pooled connections of ``url`` and forget its engine (e.g. before dropping a test DB)."""
    with _LOCK:
        engine = _ENGINES.pop(url, None)
        _MIGRATED.discard(url)
    if engine is not None:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Migrations and views
# --------------------------------------------------------------------------------------------


def alembic_config(url: str | None = None, connection: sa.Connection | None = None) -> Any:
    """An Alembic ``Config`` built in code (no alembic.ini) for ``sql/migrations``."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def view_names() -> list[str]:
    """Names of the planner views, one ``sql/views/<name>.sql`` file each."""
    return sorted(p.stem for p in VIEWS_DIR.glob("*.sql"))


def replace_views(conn: sa.Connection) -> list[str]:
    """Drop and re-create every view of ``sql/views`` on ``conn`` (inside the caller's transaction)."""
    names = view_names()
    for name in names:
        conn.exec_driver_sql(f"drop view if exists {name}")
    for name in names:
        body = (VIEWS_DIR / f"{name}.sql").read_text(encoding="utf-8").strip().rstrip(";")
        conn.exec_driver_sql(f"create view {name} as\n{body}")
    return names


def migrate(url: str) -> None:
    """Upgrade the reporting database at ``url`` to the head migration and re-create the views.

    One transaction: a failure leaves the database as it was. Running it again is a no-op for the
    tables (the views are dropped and re-created from their files, so an edited view file is
    picked up). On PostgreSQL an advisory lock serialises concurrent migrations.
    """
    from alembic import command

    try:
        with _write_engine(url).begin() as conn:
            if conn.dialect.name == "postgresql":
                advisory_xact_lock(conn, url, 0, "the migration")
            # the views go first: SQLite cannot rebuild a table (batch migrations) under a view
            for name in view_names():
                conn.exec_driver_sql(f"drop view if exists {name}")
            command.upgrade(alembic_config(connection=conn), "head")
            replace_views(conn)
    except sa.exc.OperationalError as exc:
        raise _lock_timeout(url, exc, "the migration (it drops and re-creates the planner views)") from None
    with _LOCK:
        _MIGRATED.add(url)
    log.info("reporting database %s migrated to head; views: %s", redact_url(url), ", ".join(view_names()))


def _ensure_schema(url: str) -> None:
    if url not in _MIGRATED:
        migrate(url)


def schema_revision(url: str) -> str | None:
    """The Alembic revision the database is at (None: not migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine_for(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


# --------------------------------------------------------------------------------------------
# Publish
# --------------------------------------------------------------------------------------------


def _prepare(name: str, df: pd.DataFrame | None, run_date: date, run_id: str) -> pd.DataFrame:
    """The frame conformed to the contract, checked to belong to this run, in canonical order."""
    if df is None:
        return contract.empty(name)
    out = contract.conform(df, name)
    other_date = out["run_date"] != pd.Timestamp(run_date)
    if other_date.any():
        raise ValueError(
            f"publish {run_date}: table {name} has {int(other_date.sum())} row(s) of another run date"
            f" (e.g. {out.loc[other_date, 'run_date'].iloc[0].date()})"
        )
    other_id = out["run_id"] != run_id
    if other_id.any():
        raise ValueError(
            f"publish {run_date}: table {name} has {int(other_id.sum())} row(s) of another run id"
            f" (e.g. {out.loc[other_id, 'run_id'].iloc[0]!r}, expected {run_id!r}): stale staging files?"
        )
    dup = contract.duplicated_keys(out, name)
    if dup.any():
        key = ", ".join(contract.OUTPUT_TABLES[name].key)
        raise contract.ContractError(
            f"publish {run_date}: table {name} has {int(dup.sum())} row(s) sharing a key ({key}),"
            f" e.g. row(s) {', '.join(str(i) for i in out.index[dup][:5])}"
        )
    return contract.canonical_order(out, name)


def _records(df: pd.DataFrame, name: str) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values (date, int, float, bool, str; None for NaN/NaT/NA)."""
    t = contract.OUTPUT_TABLES[name]
    cols: dict[str, pd.Series] = {}
    for col in t.columns:
        s = df[col.name]
        obj = s.dt.date if col.type == "date" else s.astype(object)
        cols[col.name] = obj.astype(object).where(s.notna(), None)
    return pd.DataFrame(cols, index=df.index).to_dict("records")


#: header and trailer of PostgreSQL's binary COPY format (signature, flags, header extension length)
PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
PGCOPY_TRAILER = b"\xff\xff"
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 - 1970-01-01 in days
_FIXED_WIDTH = {"int": 8, "float": 8, "bool": 1, "date": 4, "ts": 8}


def _fixed_payload(s: pd.Series, col: contract.Column) -> tuple[np.ndarray, np.ndarray]:
    """(null mask, big-endian payload bytes as an n x width uint8 matrix) of a fixed-width column."""
    n = len(s)
    null = s.isna().to_numpy()
    if col.type == "date":
        days = s.to_numpy(dtype="datetime64[D]", na_value=np.datetime64(0, "D")).astype(np.int64) - _PG_EPOCH_DAYS
        values = days.astype(">i4")
    elif col.type == "ts":
        us = (
            pd.to_datetime(s, utc=True)
            .dt.tz_localize(None)
            .to_numpy(dtype="datetime64[us]", na_value=np.datetime64(0, "us"))
        )
        values = (us.astype(np.int64) - _PG_EPOCH_DAYS * 86_400_000_000).astype(">i8")
    elif col.type == "int":
        values = s.to_numpy(dtype=np.int64, na_value=0).astype(">i8")
    elif col.type == "float":
        values = s.to_numpy(dtype=np.float64, na_value=np.nan).astype(">f8")
        null = null | np.isnan(s.to_numpy(dtype=np.float64, na_value=np.nan))
    else:  # bool
        values = s.to_numpy(dtype=bool, na_value=False).astype(np.uint8)
    return null, values.view(np.uint8).reshape(n, _FIXED_WIDTH[col.type])


def copy_column_order(name: str, df: pd.DataFrame) -> list[str]:
    """Column order of the binary COPY of ``df``: fixed-width columns without nulls first (they form
    one fixed block per row), then the others (text and fixed-width columns holding nulls)."""
    t = contract.OUTPUT_TABLES[name]
    fixed = [c.name for c in t.columns if c.type in _FIXED_WIDTH and not _has_null(df[c.name], c)]
    return fixed + [c for c in t.names if c not in fixed]


def _has_null(s: pd.Series, col: contract.Column) -> bool:
    if col.type == "float":
        return bool(np.isnan(s.to_numpy(dtype=np.float64, na_value=np.nan)).any())
    return bool(s.isna().any())


def _bytes_matrix(values: np.ndarray, width: int) -> np.ndarray:
    return np.ascontiguousarray(values).view(np.uint8).reshape(len(values), width)


def copy_binary_rows(df: pd.DataFrame, name: str, columns: list[str] | None = None) -> bytes:
    """The rows of ``df`` (conformed to output table ``name``) as PostgreSQL binary COPY tuples.

    ``columns``: the field order (default :func:`copy_column_order`; the COPY statement must list
    the same order). Built over whole columns, no per-value Python: every field is a big-endian
    int32 length (-1 = NULL) and its payload (text as UTF-8, bigint / double as 8 bytes, boolean
    1 byte, date as int32 days since 2000-01-01); NaN is written as NULL, like everywhere in the
    publish. The leading fixed-width fields of every row are one numpy byte matrix; each further
    field is an Arrow binary array (length prefix + payload); Arrow's ``binary_join_element_wise``
    concatenates them row by row in C. Without :data:`PGCOPY_HEADER` / :data:`PGCOPY_TRAILER`, so
    that chunks can follow one another.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    t = contract.OUTPUT_TABLES[name]
    columns = columns or copy_column_order(name, df)
    n = len(df)
    if n == 0:
        return b""
    sep = pa.scalar(b"", type=pa.large_binary())
    blocks = [_bytes_matrix(np.full(n, len(columns), dtype=">i2"), 2)]
    fields: list[Any] = []
    for cname in columns:
        col = t.column(cname)
        s = df[cname]
        if col.type == "str":
            text = pa.array(s, from_pandas=True, type=pa.large_string())
            if isinstance(text, pa.ChunkedArray):  # pyarrow-backed strings of a concatenated frame
                text = text.combine_chunks()
            null = text.is_null().to_numpy(zero_copy_only=False)
            length = np.where(null, -1, pc.binary_length(text).fill_null(0).to_numpy()).astype(">i4")
            prefix = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), n, [None, pa.py_buffer(length.tobytes())])
            payload = text.cast(pa.large_binary()).fill_null(b"")
            fields.append(pc.binary_join_element_wise(prefix.cast(pa.large_binary()), payload, sep))
            continue
        null, payload_m = _fixed_payload(s, col)
        width = _FIXED_WIDTH[col.type]
        length = _bytes_matrix(np.where(null, -1, width).astype(">i4"), 4)
        field_m = np.concatenate([length, payload_m], axis=1)
        if not null.any() and not fields:
            blocks.append(field_m)
            continue
        keep = np.ones_like(field_m, dtype=bool)
        keep[null, 4:] = False
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.where(null, 4, 4 + width), out=offsets[1:])
        fields.append(
            pa.LargeBinaryArray.from_buffers(
                pa.large_binary(), n, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(field_m[keep].tobytes())]
            )
        )
    fixed = np.ascontiguousarray(np.concatenate(blocks, axis=1))
    head = pa.FixedSizeBinaryArray.from_buffers(pa.binary(fixed.shape[1]), n, [None, pa.py_buffer(fixed.tobytes())])
    if not fields:
        return fixed.tobytes()
    rows = pc.binary_join_element_wise(head.cast(pa.large_binary()), *fields, sep)
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)[rows.offset : rows.offset + n + 1]
    return rows.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_pybytes()


def _insert_copy(conn: sa.Connection, name: str, df: pd.DataFrame) -> int:
    """PostgreSQL + psycopg 3: ``COPY <table> FROM STDIN (FORMAT binary)`` straight into the table.

    Runs inside the publish transaction (after the date's rows were deleted), so a failure or a
    killed connection rolls the COPY back with everything else; the table is never visible half
    loaded. Rows are encoded by :func:`copy_binary_rows` in chunks of :data:`COPY_CHUNK_ROWS`
    (binary: the server parses no text, ~1.5x faster than CSV, see docs/reporting.md).
    """
    q = conn.dialect.identifier_preparer.quote
    order = copy_column_order(name, df)
    cols = ", ".join(q(c) for c in order)
    raw = conn.connection.driver_connection
    if raw is None:
        raise PublishError("the database connection is closed")
    with raw.cursor() as cur:
        with cur.copy(f"copy {q(name)} ({cols}) from stdin (format binary)") as copy:
            copy.write(PGCOPY_HEADER)
            # encode the next chunk in a thread while this one is sent (Arrow and numpy release the GIL)
            starts = range(0, len(df), COPY_CHUNK_ROWS)

            def encode(i: int) -> bytes:
                return copy_binary_rows(df.iloc[i : i + COPY_CHUNK_ROWS], name, order)

            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tiaobo-copy") as pool:
                pending = pool.submit(encode, starts[0])
                for nxt in [*starts[1:], None]:
                    data = pending.result()
                    if nxt is not None:
                        pending = pool.submit(encode, nxt)
                    copy.write(data)
            copy.write(PGCOPY_TRAILER)
        inserted = cur.rowcount
    if inserted != len(df):
        raise PublishError(f"table {name}: {inserted} row(s) inserted, {len(df)} expected")
    return inserted


def _insert_rows(conn: sa.Connection, name: str, df: pd.DataFrame) -> int:
    if df.empty:
        return 0
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        return _insert_copy(conn, name, df)
    conn.execute(OUTPUT_SA[name].insert(), _records(df, name))
    return len(df)


def _now() -> datetime:
    """Wall-clock time for run-log and publication timestamps only (never used in a computation)."""
    return datetime.now(UTC)


def _dumps(obj: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(obj or {}), sort_keys=True, default=str, ensure_ascii=False)


def _db_error(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return scrub_urls(f"{type(orig or exc).__name__}: {text[0] if text else ''}")


def publish(
    url: str,
    run_date: date,
    run_id: str,
    frames: dict[str, pd.DataFrame],
    counts: dict[str, Any] | None = None,
    before_commit: Callable[[sa.Connection], None] | None = None,
) -> dict[str, int]:
    """Replace what is published for ``run_date`` with ``frames``, atomically; rows inserted per table.

    Every output table of the contract is replaced for ``run_date`` (a table missing from
    ``frames`` counts as empty, so its rows of that date are deleted). The frames are conformed to
    the contract, must all carry ``run_date`` and ``run_id`` and unique keys (else nothing is
    touched), and are written in canonical order with NaN as NULL. ``published_runs`` gets
    ``run_id`` and ``counts`` (default: rows per table). ``before_commit(conn)`` runs last, inside
    the transaction (e.g. to advance extraction watermarks with :func:`set_watermark`).

    Any exception rolls everything back. Database errors (including one met by ``before_commit``
    or at commit, e.g. the server connection killed) are raised as :class:`PublishError` naming the
    step and the password-free URL; any other exception (e.g. one ``before_commit`` raises itself)
    propagates as it is. Holds a per-date advisory lock on PostgreSQL, so two publishes of the same
    date run one after the other.
    """
    run_date = as_date(run_date)
    unknown = sorted(set(frames) - set(contract.OUTPUT_TABLES))
    if unknown:
        raise ValueError(
            f"publish {run_date}: not output tables of the contract: {', '.join(unknown)}"
            f" (expected some of {', '.join(contract.OUTPUT_TABLES)})"
        )
    prepared = {name: _prepare(name, frames.get(name), run_date, run_id) for name in contract.OUTPUT_TABLES}
    _ensure_schema(url)
    inserted: dict[str, int] = {}
    step = "connect"
    try:
        with _write_engine(url).begin() as conn:
            if conn.dialect.name == "postgresql":
                step = "lock"
                advisory_xact_lock(conn, url, run_date.toordinal(), f"the publish of {run_date}")
            for name, df in prepared.items():
                step = f"replace {name}"
                tbl = OUTPUT_SA[name]
                conn.execute(sa.delete(tbl).where(tbl.c.run_date == run_date))
                inserted[name] = _insert_rows(conn, name, df)
            step = "published_runs"
            conn.execute(sa.delete(PUBLISHED_RUNS).where(PUBLISHED_RUNS.c.run_date == run_date))
            conn.execute(
                PUBLISHED_RUNS.insert().values(
                    run_date=run_date,
                    run_id=run_id,
                    published_at=_now(),
                    counts_json=_dumps(counts if counts is not None else inserted),
                )
            )
            if before_commit is not None:
                step = "before_commit"
                before_commit(conn)
            step = "commit"
    except (PublishError, ReportingLockTimeout):
        raise
    except Exception as exc:
        if not (isinstance(exc, sa.exc.SQLAlchemyError) or _is_db_error(exc)):
            raise
        if isinstance(exc, sa.exc.OperationalError) and _lock_or_timeout(exc):
            raise _lock_timeout(url, exc, f"the publish of {run_date}") from None
        raise PublishError(
            f"publishing {run_date} (run {run_id}) to {redact_url(url)} failed at step {step!r}: {_db_error(exc)};"
            " the transaction was rolled back, the previously published rows are unchanged"
        ) from exc
    log.info(
        "published %s (run %s) to %s: %s",
        run_date,
        run_id,
        redact_url(url),
        ", ".join(f"{k}={v}" for k, v in inserted.items()),
    )
    return inserted


def _is_db_error(exc: BaseException) -> bool:
    """A DB-API error raised by the driver directly (the COPY path bypasses SQLAlchemy's wrapping)."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.Error)


# --------------------------------------------------------------------------------------------
# Reads
# --------------------------------------------------------------------------------------------


def read_table(url: str, table: str, run_date: date | None = None) -> pd.DataFrame:
    """Published rows of output ``table`` (one run date, or all with None), contract-typed, canonical order."""
    if table not in OUTPUT_SA:
        raise ValueError(f"{table!r} is not an output table (expected one of {', '.join(OUTPUT_SA)})")
    tbl = OUTPUT_SA[table]
    stmt = sa.select(tbl)
    if run_date is not None:
        stmt = stmt.where(tbl.c.run_date == run_date)
    with engine_for(url).connect() as conn:
        rows = conn.execute(stmt).all()
    if not rows:
        return contract.empty(table)
    df = pd.DataFrame([tuple(r) for r in rows], columns=contract.OUTPUT_TABLES[table].names)
    return contract.canonical_order(contract.conform(df, table), table)


def read_last_horizon_forecasts(url: str, run_date: date, horizon_days: int) -> pd.DataFrame:
    """The published forecasts of the latest run R <= ``run_date`` - ``horizon_days`` (its whole
    horizon has passed, so every day of it has actual sales by ``run_date``), target days before
    ``run_date`` only; an empty ``forecasts`` frame when no such run is published."""
    run_date = as_date(run_date)
    cutoff = run_date.toordinal() - horizon_days
    with engine_for(url).connect() as conn:
        r = conn.execute(
            sa.select(sa.func.max(PUBLISHED_RUNS.c.run_date)).where(
                PUBLISHED_RUNS.c.run_date <= date.fromordinal(cutoff)
            )
        ).scalar()
        if r is None:
            return contract.empty("forecasts")
        fc = OUTPUT_SA["forecasts"]
        rows = conn.execute(sa.select(fc).where(fc.c.run_date == as_date(r), fc.c.target_date < run_date)).all()
    if not rows:
        return contract.empty("forecasts")
    df = pd.DataFrame([tuple(x) for x in rows], columns=contract.FORECASTS.names)
    return contract.canonical_order(contract.conform(df, "forecasts"), "forecasts")


def read_kpi_history(url: str, until: date, days: int = 56, location: str = "*", category: str = "*") -> pd.DataFrame:
    """``kpis`` rows of one location and category (default: the network) for the published run
    dates in (``until`` - ``days``, ``until``], oldest first, contract-typed."""
    until = as_date(until)
    k = OUTPUT_SA["kpis"]
    stmt = sa.select(k).where(
        k.c.run_date <= until,
        k.c.run_date > date.fromordinal(until.toordinal() - days),
        k.c.location == location,
        k.c.category == category,
    )
    with engine_for(url).connect() as conn:
        rows = conn.execute(stmt).all()
    if not rows:
        return contract.empty("kpis")
    df = pd.DataFrame([tuple(r) for r in rows], columns=contract.KPIS.names)
    return contract.canonical_order(contract.conform(df, "kpis"), "kpis")


def published_run_dates(url: str) -> list[date]:
    """Run dates currently published, oldest first."""
    with engine_for(url).connect() as conn:
        rows = conn.execute(sa.select(PUBLISHED_RUNS.c.run_date).order_by(PUBLISHED_RUNS.c.run_date)).all()
    return [as_date(r[0]) for r in rows]


def read_published_runs(url: str) -> pd.DataFrame:
    """``published_runs`` as a frame: run_date, run_id, published_at (UTC), counts_json; oldest first."""
    with engine_for(url).connect() as conn:
        rows = conn.execute(sa.select(PUBLISHED_RUNS).order_by(PUBLISHED_RUNS.c.run_date)).all()
    df = pd.DataFrame([tuple(r) for r in rows], columns=[c.name for c in PUBLISHED_RUNS.columns])
    df["run_date"] = pd.to_datetime(df["run_date"]).astype("datetime64[ns]")
    df["published_at"] = _utc(df["published_at"])
    return df.astype({"run_id": "str", "counts_json": "str"})


def as_date(v: Any) -> date:
    """A date column's value as the drivers return it (date, datetime or ISO text) as a date."""
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


def _utc(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, utc=True).astype("datetime64[ns, UTC]")


# --------------------------------------------------------------------------------------------
# Run log
# --------------------------------------------------------------------------------------------


def log_attempt_start(url: str, run_date: date, message: str = "", attempt_id: str | None = None) -> str:
    """Record that an attempt at ``run_date`` started (status ``running``); returns its attempt id.

    ``message``: who runs it (the run lock's holder), so a later attempt can tell a dead one.
    ``attempt_id``: a given id (an Airflow DAG run's); when that attempt exists already (a retried
    first task) it is marked running again, not duplicated."""
    run_date = as_date(run_date)
    _ensure_schema(url)
    attempt_id = attempt_id or uuid.uuid4().hex
    with _write_engine(url).begin() as conn:
        if conn.execute(sa.select(RUN_LOG.c.attempt_id).where(RUN_LOG.c.attempt_id == attempt_id)).first():
            conn.execute(
                sa.update(RUN_LOG)
                .where(RUN_LOG.c.attempt_id == attempt_id)
                .values(status="running", finished_at=None, stage=None, message=message)
            )
            return attempt_id
        conn.execute(
            RUN_LOG.insert().values(
                attempt_id=attempt_id,
                run_date=run_date,
                status="running",
                started_at=_now(),
                counts_json="{}",
                message=message,
            )
        )
    return attempt_id


def abandon_running(url: str, run_date: date, by: str) -> pd.DataFrame:
    """Close every other ``running`` attempt of ``run_date`` as ``abandoned``; returns them (as before).

    Called by an attempt that holds the date's run lock (:mod:`pipelines.runlock`): no other run
    of the date is alive then, so a ``running`` row is one whose process died (``kill -9``, a lost
    machine) before it could close its attempt."""
    run_date = as_date(run_date)
    stale = read_run_log(url, run_date)
    stale = stale[(stale["status"] == "running") & (stale["attempt_id"] != by)].reset_index(drop=True)
    for row in stale.itertuples(index=False):
        started = row.started_at.isoformat(timespec="seconds") if not pd.isna(row.started_at) else "?"
        log_attempt_end(
            url,
            str(row.attempt_id),
            "abandoned",
            stage=row.stage if row.stage not in (None, "None") else None,
            message=(
                f"abandoned: started {started} ({row.message or 'holder unknown'}) and never finished: its"
                f" process ended without closing the attempt (killed or lost); noticed by attempt {by}"
            ),
        )
    return stale


def skipped_dates(url: str, run_date: date, days: int) -> list[date]:
    """The business dates among the ``days`` before ``run_date`` whose latest attempt was skipped."""
    if days <= 0:
        return []
    _ensure_schema(url)
    first = run_date - timedelta(days=days)
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            sa.select(RUN_LOG.c.run_date, RUN_LOG.c.status, RUN_LOG.c.started_at)
            .where(RUN_LOG.c.run_date >= first, RUN_LOG.c.run_date < run_date)
            .order_by(RUN_LOG.c.run_date, RUN_LOG.c.started_at)
        ).all()
    latest: dict[date, str] = {}
    for r in rows:  # the last attempt of each date wins
        latest[r.run_date if isinstance(r.run_date, date) else pd.Timestamp(r.run_date).date()] = r.status
    return sorted(d for d, st in latest.items() if st == "skipped")


def log_attempt_end(
    url: str,
    attempt_id: str,
    status: str,
    *,
    run_id: str | None = None,
    stage: str | None = None,
    counts: dict | None = None,
    message: str = "",
    method_notes: str | None = None,
) -> None:
    """Close attempt ``attempt_id`` with ``status`` (published | failed | stopped | email_failed |
    abandoned | skipped) in its own transaction.

    ``stage`` names where a failed attempt stopped. Passwords in URLs inside ``message`` and
    ``method_notes`` are scrubbed. Raises ``LookupError`` for an unknown attempt id.
    """
    if status not in END_STATUSES:
        raise ValueError(f"run log status must be one of {', '.join(END_STATUSES)}, not {status!r}")
    _ensure_schema(url)
    with _write_engine(url).begin() as conn:
        res = conn.execute(
            sa.update(RUN_LOG)
            .where(RUN_LOG.c.attempt_id == attempt_id)
            .values(
                status=status,
                run_id=run_id,
                stage=stage,
                finished_at=_now(),
                counts_json=_dumps(counts),
                message=scrub_urls(message or ""),
                method_notes=scrub_urls(method_notes) if method_notes is not None else None,
            )
        )
        if res.rowcount != 1:
            raise LookupError(f"run log: no attempt {attempt_id!r} in {redact_url(url)}")


def read_run_log(url: str, run_date: date | None = None) -> pd.DataFrame:
    """The run log (one run date or all), oldest attempt first; timestamps in UTC."""
    stmt = sa.select(RUN_LOG).order_by(RUN_LOG.c.started_at, RUN_LOG.c.attempt_id)
    if run_date is not None:
        stmt = stmt.where(RUN_LOG.c.run_date == run_date)
    with engine_for(url).connect() as conn:
        rows = conn.execute(stmt).all()
    names = [c.name for c in RUN_LOG.columns]
    df = pd.DataFrame([tuple(r) for r in rows], columns=names)
    df["run_date"] = pd.to_datetime(df["run_date"]).astype("datetime64[ns]")
    for col in ("started_at", "finished_at"):
        df[col] = _utc(df[col])
    for col in ("attempt_id", "run_id", "status", "stage", "counts_json", "message", "method_notes"):
        df[col] = df[col].astype("str").where(df[col].notna(), None).astype("str")
    return df.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Watermarks (used by extraction; set inside the publish transaction through before_commit)
# --------------------------------------------------------------------------------------------


def get_watermark(conn: sa.Connection, source: str, table_name: str) -> str | None:
    """The stored watermark of ``source``/``table_name`` (None when there is none yet)."""
    row = conn.execute(
        sa.select(WATERMARKS.c.watermark).where(WATERMARKS.c.source == source, WATERMARKS.c.table_name == table_name)
    ).first()
    return None if row is None else str(row[0])


def set_watermark(conn: sa.Connection, source: str, table_name: str, watermark: str, run_date: date) -> None:
    """Insert or replace the watermark of ``source``/``table_name`` on ``conn`` (caller's transaction)."""
    values = {"source": source, "table_name": table_name, "watermark": watermark, "run_date": run_date}
    name = conn.dialect.name
    if name in ("postgresql", "sqlite"):
        from sqlalchemy.dialects import postgresql, sqlite

        stmt = (postgresql.insert if name == "postgresql" else sqlite.insert)(WATERMARKS).values(**values)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[WATERMARKS.c.source, WATERMARKS.c.table_name],
                set_={"watermark": stmt.excluded.watermark, "run_date": stmt.excluded.run_date},
            )
        )
        return
    conn.execute(sa.delete(WATERMARKS).where(WATERMARKS.c.source == source, WATERMARKS.c.table_name == table_name))
    conn.execute(WATERMARKS.insert().values(**values))


# --------------------------------------------------------------------------------------------
# Roles (PostgreSQL): a read-only planner role, separate from the loader role
# --------------------------------------------------------------------------------------------

ROLES_SQL = SQL_DIR / "roles" / "roles.sql"
WORKBENCH_ROLES_SQL = SQL_DIR / "roles" / "workbench.sql"
_OWNED_TABLES = (
    *contract.OUTPUT_TABLES,
    *contract.DECISION_TABLES,
    "transfer_orders",
    "transfer_order_lines",
    "purchase_order_book",
    "purchase_order_book_lines",
    "order_exports",
    "order_events",
    "run_log",
    "published_runs",
    "watermarks",
    "alembic_version",
    # the planner workbench's own tables (pipelines.workbench.tables)
    "workbench_users",
    "workbench_sessions",
    "workbench_login_attempts",
)


def create_roles(
    url: str,
    planner_role: str = "tiaobo_planner",
    loader_role: str = "tiaobo_loader",
    password_env: tuple[str, str] = ("TIAOBO_PLANNER_PASSWORD", "TIAOBO_LOADER_PASSWORD"),
    schema: str = "public",
    workbench_role: str | None = None,
    workbench_password_env: str = "TIAOBO_WORKBENCH_PASSWORD",
) -> dict[str, Any]:
    """Create (or update) the planner and loader roles of the PostgreSQL reporting DB at ``url``.

    ``url`` connects as a superuser or a role with CREATEROLE (an administrator, not the loader).
    The database is migrated first; then, in one transaction: both roles are created with LOGIN
    when missing (passwords from the environment variables named by ``password_env``, planner
    first; an unset variable leaves the role's password as it is, e.g. for certificate or peer
    authentication), the reporting tables and views are handed to the loader (it runs later
    migrations and re-creates the views), and ``sql/roles/roles.sql`` grants the loader read-write
    and the planner read-only access to every table and view, including future ones (default
    privileges of the loader). Running it again changes nothing. Returns what it did.

    ``workbench_role``: also the planner workbench's role (password from ``workbench_password_env``),
    with ``sql/roles/workbench.sql``: it reads every table and view, may only INSERT into
    ``transfer_decisions``, and reads and writes its own accounts, sessions and login attempts.
    """
    from psycopg import sql

    u = _normalise_url(url)
    if u.get_backend_name() != "postgresql":
        raise ValueError(
            f"roles: {redact_url(url)} is {u.get_backend_name()}; database roles exist on PostgreSQL only"
            " (the embedded SQLite reporting database is a file: protect it with file permissions)"
        )
    if len({planner_role, loader_role, workbench_role or loader_role}) != (3 if workbench_role else 2):
        raise ValueError(
            f"roles: the planner, loader and workbench roles must differ ({planner_role!r}, {loader_role!r},"
            f" {workbench_role!r})"
        )
    migrate(url)
    passwords = {planner_role: os.environ.get(password_env[0]), loader_role: os.environ.get(password_env[1])}
    if workbench_role:
        passwords[workbench_role] = os.environ.get(workbench_password_env)
    created: list[str] = []
    with engine_for(url).begin() as conn:
        conn.execute(sa.text("select pg_advisory_xact_lock(:c, 1)"), {"c": _LOCK_CLASS})
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            for role, password in passwords.items():
                cur.execute("select 1 from pg_roles where rolname = %s", (role,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
                    created.append(role)
                if password:
                    cur.execute(
                        sql.SQL("alter role {} password {}").format(sql.Identifier(role), sql.Literal(password))
                    )
            cur.execute(
                "select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = %s and c.relkind in ('r', 'v', 'p') order by c.relname",
                (schema,),
            )
            objects = [(name, kind) for name, kind in cur.fetchall() if name in _OWNED_TABLES or name in view_names()]
            for name, kind in objects:
                what = "view" if kind == "v" else "table"
                cur.execute(
                    sql.SQL("alter {} {}.{} owner to {}").format(
                        sql.SQL(what), sql.Identifier(schema), sql.Identifier(name), sql.Identifier(loader_role)
                    )
                )
            cur.execute("select current_database()")
            database = cur.fetchone()[0]  # type: ignore[index]
            text = ROLES_SQL.read_text(encoding="utf-8")
            statements = [s.strip() for s in _strip_sql_comments(text).split(";") if s.strip()]
            idents = {
                "planner": sql.Identifier(planner_role),
                "loader": sql.Identifier(loader_role),
                "database": sql.Identifier(database),
                "schema": sql.Identifier(schema),
            }
            for stmt in statements:
                cur.execute(sql.SQL(stmt).format(**idents))
            if workbench_role:
                _grant_workbench(cur, {**idents, "workbench": sql.Identifier(workbench_role)})
    log.info(
        "roles on %s: planner %s (read-only), loader %s (owner of %d table(s)/view(s)); created: %s",
        redact_url(url),
        planner_role,
        loader_role,
        len(objects),
        ", ".join(created) or "none",
    )
    return {
        "planner_role": planner_role,
        "loader_role": loader_role,
        "workbench_role": workbench_role,
        "created": created,
        "passwords_set": sorted(r for r, p in passwords.items() if p),
        "objects": [n for n, _ in objects],
    }


def _grant_workbench(cur: Any, idents: dict[str, Any]) -> None:
    """Apply ``sql/roles/workbench.sql`` with the quoted identifiers ``idents``."""
    from psycopg import sql

    text = WORKBENCH_ROLES_SQL.read_text(encoding="utf-8")
    for stmt in [s.strip() for s in _strip_sql_comments(text).split(";") if s.strip()]:
        cur.execute(sql.SQL(stmt).format(**idents))


def _strip_sql_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))


def roles_command(
    url: str,
    planner_role: str = "tiaobo_planner",
    loader_role: str = "tiaobo_loader",
    workbench_role: str | None = None,
) -> str:
    """What ``tiaobo roles`` prints: :func:`create_roles` on ``url``, in words."""
    done = create_roles(url, planner_role, loader_role, workbench_role=workbench_role)
    wb = (
        f" Workbench role {workbench_role}: reads them, appends to transfer_decisions only, keeps its accounts."
        if workbench_role
        else ""
    )
    return (
        f"{redact_url(url)}: planner role {planner_role} can read {len(done['objects'])} table(s) and view(s)"
        f" (and future ones), read-only; loader role {loader_role} owns them and publishes."
        f" Created: {', '.join(done['created']) or 'none (already there)'}."
        f" Password set for: {', '.join(done['passwords_set']) or 'none (set TIAOBO_PLANNER_PASSWORD / TIAOBO_LOADER_PASSWORD)'}."
        + wb
    )


# --------------------------------------------------------------------------------------------
# Publication digest: row counts and a content hash per output table
# --------------------------------------------------------------------------------------------


def publication_digest(url: str, run_date: date | None = None, tables: Any = None) -> dict[str, dict[str, Any]]:
    """Rows and a SHA-256 of the published content of every output table (one run date or all).

    The hash is over the contract-typed rows in canonical order, each value written out exactly
    (floats by ``repr``), ``run_id`` left out so that the same rows published by runs of another
    fingerprint (e.g. sharded vs single) compare equal. Used to prove that two ways of running a
    night publish the same rows.
    """
    import hashlib

    out: dict[str, dict[str, Any]] = {}
    for name in tables or contract.OUTPUT_TABLES:
        df = read_table(url, name, run_date).drop(columns=["run_id"])
        h = hashlib.sha256()
        for col in df.columns:
            h.update(col.encode())
            h.update("\x1f".join("\x00" if pd.isna(v) else repr(v) for v in df[col].tolist()).encode())
        out[name] = {"rows": len(df), "sha256": h.hexdigest()}
    return out


# --------------------------------------------------------------------------------------------
# Waiting for other sessions: give up, and say who
# --------------------------------------------------------------------------------------------

_SESSIONS = """
select a.pid, a.usename, a.application_name, host(a.client_addr) as client, a.state,
       a.xact_start, left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 120) as query
from pg_stat_activity a
where a.pid = any(:pids)
order by a.pid
"""

_RELATION_HOLDERS = """
select distinct l.pid
from pg_locks l
join pg_class c on c.oid = l.relation
where l.locktype = 'relation' and l.granted and l.pid <> pg_backend_pid() and c.relname = any(:names)
"""

_ADVISORY_HOLDERS = """
select distinct pid from pg_locks
where locktype = 'advisory' and granted and classid = (:c)::oid and objid = (:d)::oid and pid <> pg_backend_pid()
"""


def advisory_xact_lock(conn: sa.Connection, url: str, key: int, what: str) -> None:
    """The pipeline's transaction-scoped advisory lock ``key``, waited for up to the lock timeout;
    :class:`ReportingLockTimeout` naming the session that holds it after that."""
    import time

    deadline = time.monotonic() + TIMEOUTS["lock"]
    args = {"c": _LOCK_CLASS, "d": key}
    while not conn.execute(sa.text("select pg_try_advisory_xact_lock(:c, :d)"), args).scalar():
        if time.monotonic() >= deadline:
            with engine_for(url).connect() as other:
                pids = [
                    r[0]
                    for r in other.execute(sa.text(_ADVISORY_HOLDERS), {"c": _LOCK_CLASS % 2**32, "d": key % 2**32})
                ]
                who = _describe_sessions(other, pids)
            raise ReportingLockTimeout(
                f"{what} waited {TIMEOUTS['lock']:g} s (reporting.lock_timeout_s) for the pipeline's lock on"
                f" {redact_url(url)}, held by {who}. Another run may be publishing; if that session"
                " is not a Tiaobo run, end it (select pg_terminate_backend(pid)) or ask its owner"
            )
        time.sleep(0.2)


def _lock_or_timeout(exc: sa.exc.OperationalError) -> bool:
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("55P03", "57014") or "database is locked" in str(exc)


def _lock_timeout(url: str, exc: sa.exc.OperationalError, what: str) -> Exception:
    """A lock wait or statement timeout as :class:`ReportingLockTimeout` naming the sessions that
    hold locks on our tables and views; any other operational error is returned as it is."""
    if not _lock_or_timeout(exc):
        return exc
    if "database is locked" in str(exc):
        return ReportingLockTimeout(
            f"{what} waited {TIMEOUTS['lock']:g} s (reporting.lock_timeout_s) for the SQLite database"
            f" {redact_url(url)}, which another process holds for writing (SQLite does not say which);"
            " let it finish or end it"
        )
    kind = "a lock" if getattr(exc.orig, "sqlstate", "") == "55P03" else "a statement to finish"
    limit = TIMEOUTS["lock"] if kind == "a lock" else TIMEOUTS["statement"]
    try:
        names = [*view_names(), *OUTPUT_SA, "published_runs", "run_log", "alembic_version"]
        with engine_for(url).connect() as other:
            pids = [r[0] for r in other.execute(sa.text(_RELATION_HOLDERS), {"names": names})]
            who = _describe_sessions(other, pids)
    except Exception as inner:  # the message must still come out
        who = f"sessions unknown ({str(inner).splitlines()[0][:200]})"
    return ReportingLockTimeout(
        f"{what} gave up after waiting {limit:g} s for {kind} on {redact_url(url)}"
        f" (reporting.{'lock' if kind == 'a lock' else 'statement'}_timeout_s): {who}. A session that"
        " reads a view and leaves its transaction open blocks the migration: end it"
        " (select pg_terminate_backend(pid)) or ask its owner to commit or roll back. Nothing was changed"
    )


def _describe_sessions(conn: sa.Connection, pids: list[int]) -> str:
    if not pids:
        return "no session holds it any more (try again)"
    rows = conn.execute(sa.text(_SESSIONS), {"pids": pids}).mappings().all()
    parts = [
        f"pid {r['pid']} (user {r['usename']}, application {r['application_name'] or '-'}, from"
        f" {r['client'] or 'local socket'}, {r['state']}"
        f"{', in a transaction since ' + r['xact_start'].isoformat(timespec='seconds') if r['xact_start'] else ''},"
        f" last query: {r['query'] or '-'})"
        for r in rows
    ]
    return "session(s) " + "; ".join(parts)
