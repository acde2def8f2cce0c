"""Extract: stage the canonical tables from a source system as parquet, in bounded memory.

Sources (``source.kind``):

- ``sql``: a *source profile* ``sql/sources/<profile>/`` with one staging query per canonical
  table (rename and cast only) and a ``manifest.yaml`` naming each query, its parameters and the
  source tables and columns it reads. The ``generic`` profile has no ``.sql`` files: its queries
  are generated with SQLAlchemy Core (quoted identifiers) from the table and column names in
  ``source.tables``. A SQL profile may take some tables from file drops (``source.files``), for
  what the ERP does not hold (Odoo has no transfer lanes).
- ``files``: every table from CSV / xlsx / Parquet files (:mod:`pipelines.files`).

Each table is streamed in chunks straight to ``extract_<table>.parquet`` in the run's staging
folder, cast to its contract type. PostgreSQL goes through ``COPY (query) TO STDOUT`` (CSV) parsed
by pyarrow's streaming CSV reader; MariaDB/MySQL through an unbuffered server-side cursor
(pymysql ``SSCursor``); other dialects through SQLAlchemy's ``stream_results``. Values that cannot
be cast (text where a number is expected, an unreadable date) are not dropped: the cell becomes
null and the whole original row is kept in ``castfail_<table>.parquet`` with the column and value,
for validation to quarantine.

Sales are incremental (see docs/extract.md): a cumulative per-source store of typed daily sales
(``<staging_dir>/_store/<source key>/sales/day=YYYY-MM-DD/``) is refreshed from the source from
``watermark - lookback_days + 1`` to the day before the run date, then the history window
(``forecast.history_days``) is staged from the store. The watermark is read from the reporting
database and the proposed new one written to ``watermarks.json``; only the load stage advances it,
inside the publish transaction. The re-read always starts from the *published* watermark, so a run
that fails after extraction never makes a later run skip data. ``full_refresh`` (or a store that
does not cover the window) re-reads the whole window. Stock is the snapshot dated the run date;
master data is re-read every night.

Reconciliation: for every table, row count and quantity sum at the source (the profile's own
``reconcile_<table>.sql`` when it has one, else an aggregate over the staging query) versus what
was staged, in ``reconciliation.json``. A mismatch fails the run.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import math
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import sqlalchemy as sa
import yaml
from sqlalchemy.ext.compiler import compiles

from pipelines import contract, runlock
from pipelines.config import Config, FileTable, GenericTable
from pipelines.connections import describe, with_retries
from pipelines.context import RunContext, StageResult, policies_frame
from pipelines.housekeeping import writing
from pipelines.urls import scrub_secret

log = logging.getLogger(__name__)

SQL_DIR = Path(os.environ.get("TIAOBO_SQL_DIR", Path(__file__).resolve().parents[1] / "sql"))
SOURCE_TABLES = ("items", "locations", "lanes", "sales", "stock", "lead_times")
#: tables a source may provide; one it does not is staged empty (e.g. a source without purchase orders)
OPTIONAL_TABLES = ("transfer_status", "sourcing", "purchase_orders")
#: the column whose sum is reconciled, per table (tables without one reconcile the row count only)
QUANTITY_COLUMN = {"sales": "quantity", "stock": "on_hand"}
_STORE_EXTRA = "_castfail"  # store column: JSON of the cast failures of a row (null when none)
_COPY_BLOCK_BYTES = 8 << 20


class ExtractError(RuntimeError):
    """Extraction failed; the message names the profile, the query and the table or column."""


# --------------------------------------------------------------------------------------------
# Profiles and queries
# --------------------------------------------------------------------------------------------


@dataclass
class Query:
    """One staging query of a profile: SQL text from a file, or a SQLAlchemy Core select."""

    table: str
    label: str  # the .sql file name, or "generated from source.tables.<table>"
    stmt: Any  # sa.TextClause | sa.Select
    params: list[str] = field(default_factory=list)
    reads: dict[str, list[str]] = field(default_factory=dict)


def load_profile(profile: str, cfg: Config | None = None) -> dict[str, Any]:
    """The manifest of ``sql/sources/<profile>/`` (tables given as file drops in ``cfg`` may be absent)."""
    folder = SQL_DIR / "sources" / profile
    manifest = folder / "manifest.yaml"
    if not manifest.exists():
        known = sorted(p.name for p in (SQL_DIR / "sources").iterdir() if (p / "manifest.yaml").exists())
        raise ExtractError(f"source profile {profile!r} not found ({manifest} missing); known profiles: {known}")
    spec = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    spec.setdefault("tables", {})
    spec["tables"] = spec["tables"] or {}
    from_files = set(cfg.source.files) if cfg else set()
    generated = set(cfg.source.tables) if (cfg and spec.get("generated")) else set()
    missing = [t for t in SOURCE_TABLES if t not in spec["tables"] and t not in from_files and t not in generated]
    if missing:
        hint = " or source.tables" if spec.get("generated") else ""
        raise ExtractError(
            f"source profile {profile!r}: no query for table(s) {', '.join(missing)}; give them in the manifest,"
            f" or as file drops in source.files{hint}"
        )
    spec["folder"] = folder
    spec.setdefault("profile", profile)
    return spec


def provides(spec: dict[str, Any], cfg: Config, name: str) -> bool:
    """Whether a profile (or the generic profile's configuration) has a query for table ``name``."""
    return name in spec["tables"] or bool(spec.get("generated") and name in cfg.source.tables)


def _read_sql(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip().rstrip(";")


def profile_query(spec: dict[str, Any], name: str, cfg: Config) -> Query:
    """The staging query of canonical table ``name``."""
    if spec.get("generated") and name in cfg.source.tables:
        return generic_query(name, cfg.source.tables[name])
    entry = spec["tables"][name]
    return Query(
        name,
        entry["query"],
        sa.text(_read_sql(spec["folder"] / entry["query"])),
        list(entry.get("params") or []),
        dict(entry.get("reads") or {}),
    )


def _ident(name: str) -> sa.sql.elements.quoted_name:
    return sa.sql.quoted_name(name, quote=True)


class DayOf(sa.sql.functions.FunctionElement[Any]):
    """The calendar day of a date, timestamp or date text column, as a date (a portable SQL expression).

    PostgreSQL and MariaDB/MySQL: ``CAST(x AS DATE)`` (a timestamp's day; MariaDB makes text it
    cannot read NULL). SQLite has no date type and its ``CAST(x AS DATE)`` gives a number (``2026``
    for ``'2026-11-24'``), which compared with the window's bounds drops every row: there, text
    takes the day written in its first ten characters (``'2026-11-24 10:15:00'`` and
    ``'2026-11-24T01:00:00+08:00'`` are both 2026-11-24, the local day as the ERP wrote it) and
    numbers go through ``date(x, 'auto')`` (julian day numbers, or Unix seconds, UTC). Text that is
    no date gives NULL, which :func:`check_generic_sales_dates` refuses.
    """

    type = sa.Date()
    inherit_cache = True
    name = "day_of"


@compiles(DayOf)
def _day_of_default(element: DayOf, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(list(element.clauses)[0], **kw)} AS DATE)"


@compiles(DayOf, "sqlite")
def _day_of_sqlite(element: DayOf, compiler: Any, **kw: Any) -> str:
    x = compiler.process(list(element.clauses)[0], **kw)
    return f"(CASE WHEN typeof({x}) IN ('integer', 'real') THEN date({x}, 'auto') ELSE date(substr({x}, 1, 10)) END)"


def generic_query(name: str, gt: GenericTable) -> Query:
    """The staging query of the generic profile for ``name``: rename and cast, quoted identifiers.

    Sales rows are summed per SKU, location and day (the source may hold document lines or daily
    rows; a timestamp or date-text column is taken to its day, :class:`DayOf`) and filtered on
    ``:start_date`` (inclusive) .. ``:end_before`` (exclusive, the day after the window's last day);
    stock is filtered on ``:snapshot_date`` when the table has a snapshot column, else the current
    balances are dated the run date. A canonical column neither mapped nor defaulted is read from a
    source column of the same name; a nullable one is null when absent from both.
    """
    t = contract.TABLES[name]
    schema, _, tname = gt.table.rpartition(".")
    mapped = {c: gt.columns.get(c, c) for c in t.names if c not in gt.defaults}
    optional = {c for c in t.names if t.column(c).nullable and c not in gt.columns and c not in gt.defaults}
    if name == "stock" and "snapshot_date" not in gt.columns:
        optional.add("snapshot_date")
    src_cols = sorted({v for c, v in mapped.items() if c not in optional})
    src = sa.table(_ident(tname), *[sa.column(_ident(c)) for c in src_cols], schema=_ident(schema) if schema else None)

    def expr(col: str) -> Any:
        if col in gt.defaults:
            return sa.literal(gt.defaults[col])
        if name == "stock" and col == "snapshot_date" and col in optional:
            return sa.bindparam("snapshot_date", type_=sa.Date)
        if col in optional:
            return sa.null()
        return src.c[mapped[col]]

    params: list[str] = []
    if name == "sales":
        day = DayOf(expr("date"))
        measures = {
            c: sa.func.sum(expr(c)) if gt.aggregate and c not in gt.defaults else expr(c)
            for c in ("quantity", "returns", "revenue")
        }
        stmt = sa.select(
            expr("sku").label("sku"),
            expr("location").label("location"),
            day.label("date"),
            *[m.label(c) for c, m in measures.items()],
        ).where(day >= sa.bindparam("start_date", type_=sa.Date), day < sa.bindparam("end_before", type_=sa.Date))
        if gt.aggregate:
            stmt = stmt.group_by(expr("sku"), expr("location"), day)
        params = ["start_date", "end_before"]
    else:
        stmt = sa.select(*[expr(c).label(c) for c in t.names])
        if name == "stock":
            params = ["snapshot_date"]
            if "snapshot_date" not in optional:
                stmt = stmt.where(
                    sa.cast(expr("snapshot_date"), sa.Date) == sa.bindparam("snapshot_date", type_=sa.Date)
                )
    stmt = stmt.select_from(src)
    return Query(name, f"generated from source.tables.{name}", stmt, params, {gt.table: src_cols})


def check_generic_sales_dates(conn: sa.Connection, gt: GenericTable) -> None:
    """Refuse a generic sales table whose date column holds values that are no day.

    Such rows would fall out of the window filter unseen (their day is NULL), and the table would
    look empty or short with a reconciliation that agrees. Checked where a cast that cannot read a
    value gives NULL (SQLite, MariaDB/MySQL); PostgreSQL raises on the value itself.
    """
    if conn.dialect.name not in ("sqlite", "mysql", "mariadb") or "date" in gt.defaults:
        return
    schema, _, tname = gt.table.rpartition(".")
    col = gt.columns.get("date", "date")
    src = sa.table(_ident(tname), sa.column(_ident(col)), schema=_ident(schema) if schema else None)
    raw = src.c[col]
    stmt = sa.select(sa.func.count().label("n"), sa.func.min(raw).label("example")).where(
        raw.is_not(None), DayOf(raw).is_(None)
    )
    try:
        row = conn.execute(stmt).mappings().one()
    except _driver_errors(conn):
        conn.rollback()
        return  # the extraction query that follows names the missing table or column
    if row["n"]:
        raise ExtractError(
            f"source profile 'generic', table {gt.table!r}, column {col!r} (canonical sales.date):"
            f" {row['n']} row(s) hold a value that is not a date, e.g. {row['example']!r}; the rule: a"
            " date, a timestamp or ISO text 'YYYY-MM-DD[ HH:MM:SS]' (SQLite: also a julian day number or"
            " Unix seconds). These rows would be dropped from every window: fix the column or map another one"
        )


# --------------------------------------------------------------------------------------------
# Casting
# --------------------------------------------------------------------------------------------


def arrow_schema(table: contract.Table) -> pa.Schema:
    types = {
        "str": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.timestamp("ns"),
    }
    return pa.schema([pa.field(c.name, types[c.type], nullable=True) for c in table.columns])


# Text columns whose empty cell stands for a value of the contract: a stock row without a lot is not
# lot-managed, which the contract writes as ''. A CSV or xlsx cell left blank, or a SQL NULL, would
# otherwise reach validation as a null key and the stock row would be quarantined.
EMPTY_MEANS: dict[tuple[str, str], str] = {("stock", "lot"): ""}


# a time of day followed by a UTC offset or Z ('2025-03-10' alone ends in '-10' but has no time: no zone)
_OFFSET = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[Zz]|(?:UTC|GMT)?[+-]\d{2}(?::?\d{2})?)$"


def parse_days(s: pd.Series, tz: str | None = None) -> pd.Series:
    """Dates, timestamps or date text as the calendar day (naive ``datetime64[ns]`` at midnight).

    The rule: a value without a zone (``'2025-03-10'``, ``'2025-03-10 23:30'``, a naive datetime) is
    a local date or time and gives its own day; a value with a UTC offset or zone
    (``'2025-03-10T23:30:00+08:00'``, ``'...Z'``, a zone-aware timestamp) is converted to the
    configured ``timezone`` (``tz``; UTC when none is given) and gives the local day there: with
    ``Asia/Shanghai``, ``'2025-03-10T20:00:00-05:00'`` is 2025-03-11 09:00 and so 2025-03-11. Values
    neither readable as a date give NaT (the caller records them as cast failures).
    """
    tz = tz or "UTC"
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert(tz).dt.tz_localize(None).astype("datetime64[ns]").dt.normalize()
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return s.astype("datetime64[ns]").dt.normalize()
    text = s.astype("string").str.strip()
    zoned = text.str.contains(_OFFSET, regex=True, na=False)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    if zoned.any():
        aware = pd.to_datetime(text[zoned], errors="coerce", utc=True, format="ISO8601")
        out[zoned] = aware.dt.tz_convert(tz).dt.tz_localize(None).astype("datetime64[ns]")
    plain = ~zoned & text.notna()
    if plain.any():
        out[plain] = _parse_plain(text[plain], tz)
    return out.dt.normalize()


def _parse_plain(text: pd.Series, tz: str) -> pd.Series:
    try:  # a zone only pandas recognises ('... UTC', '... CST'): mixed zones or an aware result
        naive = pd.to_datetime(text, errors="coerce", format="mixed")
        if not isinstance(naive.dtype, pd.DatetimeTZDtype):
            return naive.astype("datetime64[ns]")
    except (ValueError, TypeError):
        pass
    parsed = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
    return parsed.dt.tz_convert(tz).dt.tz_localize(None).astype("datetime64[ns]")


def cast_lenient(
    df: pd.DataFrame, table: contract.Table, offset: int = 0, tz: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cast each column to its contract type; uncastable cells become null.

    Dates follow :func:`parse_days` (a value with a UTC offset takes its day in ``tz``).

    Infinite numbers count as uncastable. Returns the typed frame and a frame of cast failures (row_number, column_name, value,
    row_json) so that no bad row is lost. Nulls in required columns are left for validation, except in
    the columns of ``EMPTY_MEANS`` (a stock row without a lot gets the contract's ``''``).
    """
    out: dict[str, pd.Series] = {}
    fails: list[pd.DataFrame] = []
    for col in table.columns:
        s = df[col.name]
        if col.type in ("int", "float"):
            typed = pd.to_numeric(s, errors="coerce").astype("float64")
            typed = typed.mask(np.isinf(typed))  # inf is not a quantity, a price or a day count
            if col.type == "int":
                frac = typed.notna() & (typed != typed.round())
                typed = typed.mask(frac)
            bad = typed.isna() & s.notna()
            typed = typed.astype("Int64") if col.type == "int" else typed
        elif col.type == "date":
            typed = parse_days(s, tz)
            bad = typed.isna() & s.notna()
        elif col.type == "bool":
            mapped = s.map(_bool_or_none) if not pd.api.types.is_bool_dtype(s) else s
            typed = mapped.astype("boolean")
            bad = typed.isna() & s.notna()
        else:
            typed = s.astype("str").where(s.notna(), None).astype("str")
            if (table.name, col.name) in EMPTY_MEANS:
                typed = typed.fillna(EMPTY_MEANS[table.name, col.name])
            bad = pd.Series(False, index=s.index)
        if bad.any():
            rows = df[bad]
            fails.append(
                pd.DataFrame(
                    {
                        "row_number": rows.index.to_numpy() + offset,
                        "column_name": col.name,
                        "value": rows[col.name].astype("str").to_numpy(),
                        "row_json": rows.astype("str").to_dict(orient="records"),
                    }
                )
            )
        out[col.name] = typed
    failures = pd.concat(fails, ignore_index=True) if fails else _empty_failures()
    if len(failures):
        failures["row_json"] = failures["row_json"].map(lambda r: json.dumps(r, ensure_ascii=False, sort_keys=True))
    return pd.DataFrame(out, index=df.index), failures


def _empty_failures() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_number": pd.Series(dtype="int64"),
            "column_name": pd.Series(dtype="str"),
            "value": pd.Series(dtype="str"),
            "row_json": pd.Series(dtype="str"),
        }
    )


def _bool_or_none(v: object) -> object:
    try:
        return contract._to_bool(v)
    except ValueError:
        return None


def _fast_str(arr: Any, table: contract.Table, col: contract.Column) -> Any:
    if arr.type != pa.string():
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            return None
        arr = pc.cast(arr, pa.string())
    if (table.name, col.name) in EMPTY_MEANS:
        arr = pc.fill_null(arr, EMPTY_MEANS[table.name, col.name])
    return arr


def _fast_date(arr: Any, tz: str | None = None) -> Any:
    if pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
        # a zone-aware timestamp: its day in the configured time zone (see parse_days)
        arr = pc.local_timestamp(pc.cast(arr, pa.timestamp(arr.type.unit, tz=tz or "UTC")))
    if pa.types.is_string(arr.type) or pa.types.is_date(arr.type) or pa.types.is_timestamp(arr.type):
        arr = pc.cast(arr, pa.timestamp("ns"))
    elif pa.types.is_null(arr.type):
        arr = pa.nulls(len(arr), pa.timestamp("ns"))
    else:
        return None
    return pc.floor_temporal(arr, unit="day")


_FAST_NUMBER_SOURCES = (
    pa.types.is_string,
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_decimal,
    pa.types.is_null,
)


def _fast_number(arr: Any, col: contract.Column, fld: pa.Field) -> Any:
    if not any(is_type(arr.type) for is_type in _FAST_NUMBER_SOURCES):
        return None
    arr = pc.cast(arr, fld.type)
    if col.type == "float" and pc.any(pc.is_inf(arr)).as_py():
        return None
    return arr


def _fast_column(arr: Any, table: contract.Table, col: contract.Column, fld: pa.Field, tz: str | None = None) -> Any:
    """One column cast with pyarrow alone, or None when it needs the lenient path."""
    if col.type == "bool":
        return None
    if col.type == "str":
        return _fast_str(arr, table, col)
    if col.type == "date":
        return _fast_date(arr, tz)
    return _fast_number(arr, col, fld)


def _fast_cast(batch: pa.Table, table: contract.Table, schema: pa.Schema, tz: str | None = None) -> pa.Table | None:
    """Cast a batch with pyarrow alone; None when any value needs the lenient path (or a bool column)."""
    cols = []
    for col, fld in zip(table.columns, schema, strict=True):
        arr = batch.column(col.name)
        try:
            arr = _fast_column(arr, table, col, fld, tz)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return None
        if arr is None:
            return None
        cols.append(arr)
    return pa.Table.from_arrays(cols, schema=schema)


def conform_batch(
    batch: pa.Table | pd.DataFrame, table: contract.Table, schema: pa.Schema, offset: int, tz: str | None = None
) -> tuple[pa.Table, pd.DataFrame]:
    """Typed arrow table and cast failures of one chunk (row numbers counted from ``offset``; dates
    with a UTC offset take their day in ``tz``, :func:`parse_days`)."""
    if isinstance(batch, pa.Table):
        fast = _fast_cast(batch, table, schema, tz)
        if fast is not None:
            return fast, _empty_failures()
        df = batch.to_pandas(types_mapper=None)
        df = df.astype(object).where(df.notna(), None)
    else:
        df = batch
    df.index = pd.RangeIndex(offset, offset + len(df))
    typed, fails = cast_lenient(df[table.names], table, tz=tz)
    return pa.Table.from_pandas(typed[table.names], schema=schema, preserve_index=False), fails


# --------------------------------------------------------------------------------------------
# Streaming readers
# --------------------------------------------------------------------------------------------


class _CopyStream(io.RawIOBase):
    """A read-only file over psycopg's COPY TO STDOUT blocks (for pyarrow's streaming CSV reader)."""

    def __init__(self, copy: Any) -> None:
        self._it = iter(copy)
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if not self._buf:
            # psycopg yields one row per block: join a few thousand at once (in C) to keep Python out of the loop
            self._buf = memoryview(b"".join(itertools.islice(self._it, 4096)))
            if not self._buf:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _compile(conn: sa.Connection, query: Query, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    compiled = query.stmt.compile(dialect=conn.dialect)
    values = compiled.construct_params(params)
    if compiled.positional:
        return str(compiled), tuple(values[k] for k in compiled.positiontup or [])  # type: ignore[return-value]
    return str(compiled), values


def _pg_batches(conn: sa.Connection, query: Query, params: dict[str, Any]) -> tuple[list[str], Iterator[pa.Table]]:
    """Column names and string batches of ``COPY (query) TO STDOUT`` (PostgreSQL, psycopg 3)."""
    sql, bound = _compile(conn, query, params)
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cur.execute("set datestyle to 'ISO, YMD'")
    cur.execute(f"select * from ({sql}) as tiaobo_q limit 0", bound)
    names = [d.name for d in cur.description or []]

    def gen() -> Iterator[pa.Table]:
        with cur.copy(f"copy ({sql}) to stdout with (format csv)", bound) as cp:
            stream = io.BufferedReader(_CopyStream(cp), buffer_size=1 << 20)
            if not stream.peek(1):
                return  # no row: pyarrow refuses an empty CSV
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(column_names=names, block_size=_COPY_BLOCK_BYTES, use_threads=False),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
            for batch in reader:
                yield pa.Table.from_batches([batch])

    return names, gen()


def _rows_to_batch(rows: list[tuple[Any, ...]], names: list[str]) -> pa.Table | pd.DataFrame:
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    try:
        return pa.Table.from_arrays([pa.array(list(c)) for c in cols], names=names)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return pd.DataFrame(rows, columns=names, dtype=object)


def _cursor_batches(
    conn: sa.Connection, query: Query, params: dict[str, Any], chunk_rows: int
) -> tuple[list[str], Iterator[Any]]:
    """Column names and chunks of a server-side cursor (MariaDB/MySQL: SSCursor; others: stream_results)."""
    if conn.dialect.name in ("mysql", "mariadb") and conn.dialect.driver == "pymysql":
        import pymysql.cursors

        sql, bound = _compile(conn, query, params)
        raw = conn.connection.driver_connection
        cur = raw.cursor(pymysql.cursors.SSCursor)  # type: ignore[union-attr]
        # values as text: pyarrow casts whole columns far faster than pymysql's per-value converters
        decoders, raw.decoders = raw.decoders, {}  # type: ignore[union-attr]
        try:
            cur.execute(sql, bound)
        finally:
            raw.decoders = decoders  # type: ignore[union-attr]
        names = [d[0] for d in cur.description or []]

        def gen_my() -> Iterator[Any]:
            try:
                while rows := cur.fetchmany(chunk_rows):
                    yield _rows_to_batch(rows, names)
            finally:
                cur.close()

        return names, gen_my()
    result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(query.stmt, params)
    names = list(result.keys())

    def gen() -> Iterator[Any]:
        for part in result.partitions(chunk_rows):
            yield _rows_to_batch([tuple(r) for r in part], names)

    return names, gen()


def _driver_errors(conn: sa.Connection) -> tuple[type[BaseException], ...]:
    errs: list[type[BaseException]] = [sa.exc.DBAPIError]
    dbapi = getattr(conn.dialect, "loaded_dbapi", None)
    if dbapi is not None and hasattr(dbapi, "Error"):
        errs.append(dbapi.Error)
    return tuple(errs)


def _explain_failure(exc: BaseException, profile: str, query: Query, conn: sa.Connection, url: str = "") -> str:
    """Name the missing source table or column, using what the query reads (manifest or configuration)."""
    head = f"source profile {profile!r}, query {query.label} (table {query.table})"
    try:
        conn.rollback()
        conn.connection.driver_connection.rollback()  # type: ignore[union-attr]  # raw cursors bypass SQLAlchemy
        insp = sa.inspect(conn)
        for tbl, cols in query.reads.items():
            schema, _, tname = tbl.rpartition(".")
            have = {t.lower() for t in insp.get_table_names(schema=schema or None)}
            if tname.lower() not in have:
                return f"{head}: source table {tbl!r} does not exist"
            present = {c["name"].lower() for c in insp.get_columns(tname, schema=schema or None)}
            for c in cols:
                if c.lower() not in present:
                    return f"{head}: source table {tbl!r} has no column {c!r}"
    except Exception:  # the inspection is a courtesy; fall back to the driver's message
        pass
    detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return f"{head} failed: {scrub_secret(detail, url) if url else detail}"


# --------------------------------------------------------------------------------------------
# Writing one table
# --------------------------------------------------------------------------------------------


@dataclass
class Staged:
    rows: int = 0
    quantity_sum: float = 0.0
    quantity_failures: int = 0  # cells of the quantity column that could not be cast
    failures: list[pd.DataFrame] = field(default_factory=list)

    @property
    def cast_failures(self) -> int:
        return int(sum(len(f) for f in self.failures))


def _write_batches(
    batches: Iterator[Any],
    table: contract.Table,
    target: Path,
    *,
    with_failures_column: bool = False,
    tz: str | None = None,
) -> Staged:
    """Cast each chunk and append it to ``target`` (atomically replaced at the end)."""
    schema = arrow_schema(table)
    out_schema = schema.append(pa.field(_STORE_EXTRA, pa.string())) if with_failures_column else schema
    qty_col = QUANTITY_COLUMN.get(table.name)
    st = Staged()
    tmp = target.with_name(target.name + ".tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with writing(tmp), pq.ParquetWriter(tmp, out_schema) as writer:
            for raw in batches:
                typed, fails = conform_batch(raw, table, schema, st.rows, tz)
                if with_failures_column:
                    typed = typed.append_column(_STORE_EXTRA, _failures_column(fails, st.rows, typed.num_rows))
                elif len(fails):
                    st.failures.append(fails)
                if with_failures_column and len(fails):
                    st.failures.append(fails)
                writer.write_table(typed)
                if qty_col:
                    st.quantity_sum += float(pc.sum(typed.column(qty_col)).as_py() or 0.0)
                    if len(fails):
                        st.quantity_failures += int((fails["column_name"] == qty_col).sum())
                st.rows += typed.num_rows
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)
    return st


def _failures_column(fails: pd.DataFrame, offset: int, n: int) -> pa.Array:
    """Per row of a chunk: JSON of its cast failures (row_json and [column, value] pairs), or null."""
    out: list[str | None] = [None] * n
    if len(fails):
        for rn, grp in fails.groupby("row_number", sort=True):
            out[int(rn) - offset] = json.dumps(
                {"row_json": grp["row_json"].iloc[0], "fails": grp[["column_name", "value"]].values.tolist()},
                ensure_ascii=False,
            )
    return pa.array(out, pa.string())


def _failures_from_column(values: pa.Array, offset: int) -> pd.DataFrame:
    s = values.to_pandas()
    hit = s[s.notna()]
    if not len(hit):
        return _empty_failures()
    recs = []
    for pos, text in hit.items():
        d = json.loads(text)
        recs += [
            {"row_number": offset + int(pos), "column_name": c, "value": v, "row_json": d["row_json"]}
            for c, v in d["fails"]
        ]
    return pd.DataFrame(recs).astype({"row_number": "int64"})


def _write_failures(failures: list[pd.DataFrame], path: Path) -> int:
    df = pd.concat(failures, ignore_index=True) if failures else _empty_failures()
    df = df.astype({"row_number": "int64", "column_name": "str", "value": "str", "row_json": "str"})
    with writing(path):
        df.to_parquet(path, index=False)
    return len(df)


def window_params(first: date, last: date) -> dict[str, Any]:
    """The sales window ``first``..``last`` (inclusive days) as the extractor binds it.

    ``start_date`` (inclusive) .. ``end_before`` (exclusive, the day after ``last``): a profile
    should filter ``x >= :start_date and x < :end_before`` so that a timestamp, or date text with a
    time, on the last day is kept (``'2026-11-24 10:15' <= '2026-11-24'`` is false). ``end_date``
    (inclusive) stays bound for profiles written before; ``start_day``/``end_day`` are the same
    window as ISO text, for a reconciliation that compares the day written in the source's own text.
    """
    return {
        "start_date": first,
        "end_date": last,
        "end_before": last + timedelta(days=1),
        "start_day": first.isoformat(),
        "end_day": last.isoformat(),
    }


def _query_params(ctx: RunContext, start: date | None = None, end: date | None = None) -> dict[str, Any]:
    last = ctx.last_sales_date
    first = start or last - timedelta(days=ctx.cfg.forecast.history_days - 1)
    return {
        **window_params(first, end or last),
        "snapshot_date": ctx.run_date,
        "tz": ctx.cfg.timezone,
        "lang": ctx.cfg.source.language,
    }


def _stream_query(
    conn: sa.Connection, profile: str, query: Query, params: dict[str, Any], chunk_rows: int, url: str
) -> tuple[list[str], Iterator[Any]]:
    """Open the query's stream (PostgreSQL COPY, else a server-side cursor); check its columns."""
    bound = {k: v for k, v in params.items() if k in query.params}
    table = contract.TABLES[query.table]
    try:
        if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
            names, batches = _pg_batches(conn, query, bound)
        else:
            names, batches = _cursor_batches(conn, query, bound, chunk_rows)
    except _driver_errors(conn) as exc:
        raise ExtractError(_explain_failure(exc, profile, query, conn, url)) from None
    drift = contract.check_columns(names, table)
    if drift["missing"]:
        raise ExtractError(
            f"source profile {profile!r}, query {query.label} (table {query.table}): the query returns no"
            f" column(s) {', '.join(drift['missing'])}; it must return {', '.join(table.names)}"
        )
    return names, _guard(batches, conn, profile, query, url)


def _guard(batches: Iterator[Any], conn: sa.Connection, profile: str, query: Query, url: str) -> Iterator[Any]:
    try:
        yield from batches
    except _driver_errors(conn) as exc:
        raise ExtractError(_explain_failure(exc, profile, query, conn, url)) from None


def _source_aggregate(conn: sa.Connection, query: Query, params: dict[str, Any]) -> tuple[int, float | None]:
    """Row count and quantity sum of the staging query, computed by the source database."""
    qty = QUANTITY_COLUMN.get(query.table)
    stmt = query.stmt
    if isinstance(stmt, sa.TextClause):
        stmt = stmt.columns(*[sa.column(c) for c in contract.TABLES[query.table].names])
    sub = stmt.subquery("tiaobo_q")
    cols = [sa.func.count().label("row_count")]
    if qty:
        cols.append(sa.func.sum(sub.c[qty]).label("quantity_sum"))
    row = (
        conn.execute(sa.select(*cols).select_from(sub), {k: v for k, v in params.items() if k in query.params})
        .mappings()
        .one()
    )
    return int(row["row_count"] or 0), (float(row["quantity_sum"] or 0.0) if qty else None)


def _reconcile_entry(
    name: str, how: str, src_rows: int, src_qty: float | None, st: Staged, **extra: Any
) -> dict[str, Any]:
    qty_checked = src_qty is not None and st.quantity_failures == 0
    src = float(src_qty or 0.0)
    # a non-finite sum (an inf or NaN in the source) never reconciles: its tolerance would be infinite too
    ok = src_rows == st.rows and (
        not qty_checked
        or (
            math.isfinite(src)
            and math.isfinite(st.quantity_sum)
            and abs(src - st.quantity_sum) <= 1e-6 * max(1.0, abs(src))
        )
    )
    out = {
        "table": name,
        "checked": True,
        "source": how,
        "source_rows": src_rows,
        "staged_rows": st.rows,
        "source_quantity": src_qty,
        "staged_quantity": st.quantity_sum if src_qty is not None else None,
        "quantity_checked": qty_checked,
        "ok": ok,
    }
    out.update(extra)
    return out


def _reconcile_sql(
    conn: sa.Connection,
    spec: dict[str, Any],
    query: Query,
    params: dict[str, Any],
    st: Staged,
    url: str = "",
    **extra: Any,
) -> dict[str, Any]:
    name = query.table
    rec = (spec.get("reconcile") or {}).get(name)
    src_qty: float | None
    try:
        if rec:
            stmt = sa.text(_read_sql(spec["folder"] / rec["query"]))
            row = (
                conn.execute(stmt, {k: v for k, v in params.items() if k in (rec.get("params") or [])}).mappings().one()
            )
            src_rows, src_qty = int(row["row_count"] or 0), float(row["quantity_sum"] or 0.0)
            how = rec["query"]
        else:
            src_rows, src_qty = _source_aggregate(conn, query, params)
            how = "count/sum over the staging query"
    except _driver_errors(conn) as exc:
        raise ExtractError(
            f"reconciliation of {name}: " + _explain_failure(exc, spec["profile"], query, conn, url)
        ) from None
    return _reconcile_entry(name, how, src_rows, src_qty, st, **extra)


def extract_sql_table(
    conn: sa.Connection,
    spec: dict[str, Any],
    query: Query,
    ctx: RunContext,
    url: str = "",
    *,
    params: dict[str, Any] | None = None,
    target: Path | None = None,
    with_failures_column: bool = False,
) -> Staged:
    """Stream one staging query into ``target`` (default ``extract_<table>.parquet``)."""
    params = params or _query_params(ctx)
    target = target or ctx.output_path(f"extract_{query.table}")
    names, batches = _stream_query(conn, spec["profile"], query, params, ctx.cfg.source.chunk_rows, url)
    # the source query's own column list, for validation's schema-drift report (new / renamed columns)
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    ctx.output_path(f"columns_{query.table}.json").write_text(json.dumps(names), encoding="utf-8")
    return _write_batches(
        batches,
        contract.TABLES[query.table],
        target,
        with_failures_column=with_failures_column,
        tz=ctx.cfg.timezone,
    )


def extract_table(
    conn: sa.Connection, spec: dict[str, Any], name: str, ctx: RunContext, url: str = ""
) -> dict[str, Any]:
    """Stream one profile query into ``extract_<name>.parquet``; returns rows, quantity sum, cast failures."""
    query = profile_query(spec, name, ctx.cfg)
    st = extract_sql_table(conn, spec, query, ctx, url)
    n = _write_failures(st.failures, ctx.output_path(f"castfail_{name}"))
    return {
        "rows": st.rows,
        "quantity_sum": st.quantity_sum,
        "cast_failures": n,
        "path": str(ctx.output_path(f"extract_{name}")),
        "staged": st,
        "query": query,
    }


def extract_file_table(name: str, spec: FileTable, ctx: RunContext) -> tuple[Staged, dict[str, Any]]:
    """One canonical table from file drops; returns what was staged and its reconciliation entry."""
    from pipelines import files

    src = ctx.cfg.source
    qty = QUANTITY_COLUMN.get(name)
    counted: dict[str, Any] = {"rows": 0, "qty": 0.0, "files": 0, "path": None}
    seen: set[str] = set()

    def chunks() -> Iterator[pd.DataFrame]:
        for path, frame in files.read_chunks(name, spec, src.folder or "", src.chunk_rows, src.encoding):
            if path not in seen:
                seen.add(path)
                counted["files"] += 1
                counted["path"] = path
            counted["rows"] += len(frame)
            if qty:
                counted["qty"] += float(
                    pd.to_numeric(frame[qty], errors="coerce").replace([np.inf, -np.inf], np.nan).sum()
                )
            yield frame.astype(object).where(frame.notna(), None)

    try:
        st = _write_batches(chunks(), contract.TABLES[name], ctx.output_path(f"extract_{name}"), tz=ctx.cfg.timezone)
    except files.FileDropError as exc:
        raise ExtractError(f"file drop for {name}: {exc}") from None
    except (UnicodeDecodeError, ValueError, OSError) as exc:
        where = f", file {counted['path']}" if counted["path"] else ""
        raise ExtractError(f"file drop for {name}{where}: {exc}") from None
    _write_failures(st.failures, ctx.output_path(f"castfail_{name}"))
    rec = _reconcile_entry(
        name,
        f"{counted['files']} file(s) matching {spec.pattern}",
        counted["rows"],
        counted["qty"] if qty else None,
        st,
    )
    return st, rec


# --------------------------------------------------------------------------------------------
# Incremental sales: cumulative store + watermark
# --------------------------------------------------------------------------------------------


def source_key(cfg: Config, url: str) -> str:
    """The watermark's ``source`` name: profile (or files) and where it reads from, never a password."""
    where = describe(url) if cfg.source.kind == "sql" else f"files at {cfg.source.folder}"
    return f"{cfg.source.profile if cfg.source.kind == 'sql' else 'files'}: {where}"


def _store_dir(cfg: Config, key: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", key.split(":")[0])[:40]
    return Path(cfg.staging_dir) / "_store" / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}" / "sales"


def read_watermark(cfg: Config, source: str, table_name: str) -> date | None:
    """The published watermark of ``source``/``table_name`` in the reporting database (None if none)."""
    from pipelines import reporting

    try:
        with reporting.engine_for(cfg.reporting_url()).connect() as conn:
            value = reporting.get_watermark(conn, source, table_name)
    except sa.exc.DBAPIError as exc:  # no reporting schema yet: behave as a first run (full window)
        log.warning(
            "no watermark readable for %s/%s (%s): reading the whole window",
            source,
            table_name,
            str(getattr(exc, "orig", exc)).splitlines()[0][:200],
        )
        return None
    return date.fromisoformat(value[:10]) if value else None


def plan_sales_read(
    window_start: date,
    end: date,
    watermark: date | None,
    coverage: tuple[date, date] | None,
    lookback_days: int,
    full_refresh: bool,
) -> tuple[date, str]:
    """First day to re-read from the source, and why.

    The whole window is read on a full refresh, without a watermark, or when the store does not
    hold every day from the window start to the day before the re-read. Otherwise the re-read
    starts ``lookback_days`` days before the day after the published watermark (a backfill of an
    older date re-reads its own look-back days).
    """
    if full_refresh:
        return window_start, "full refresh"
    if watermark is None:
        return window_start, "no published watermark"
    start = watermark + timedelta(days=1) - timedelta(days=lookback_days)
    if start > end:
        start = end + timedelta(days=1) - timedelta(days=max(lookback_days, 1))
    start = max(start, window_start)
    if coverage is None or coverage[0] > window_start or coverage[1] < start - timedelta(days=1):
        return window_start, "store does not cover the window"
    return start, f"watermark {watermark.isoformat()}, look-back {lookback_days} day(s)"


def _coverage(store: Path) -> tuple[date, date] | None:
    p = store / "coverage.json"
    if not p.exists():
        return None
    d = json.loads(p.read_text(encoding="utf-8"))
    return date.fromisoformat(d["first"]), date.fromisoformat(d["last"])


def _days(a: date, b: date) -> list[date]:
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


def _write_incoming(delta: Path, staging: Path) -> None:
    """The rows of ``delta`` as a hive-partitioned dataset (one ``day=`` folder per day) in ``staging``."""
    data = ds.dataset(delta, format="parquet")
    scanner = data.scanner(batch_size=262_144)

    def with_day() -> Iterator[pa.RecordBatch]:
        for b in scanner.to_batches():
            yield b.append_column("day", pc.strftime(b.column("date"), format="%Y-%m-%d"))

    schema = data.schema.append(pa.field("day", pa.string()))
    with writing(staging):
        ds.write_dataset(
            with_day(),
            staging,
            schema=schema,
            format="parquet",
            partitioning=ds.partitioning(pa.schema([("day", pa.string())]), flavor="hive"),
            existing_data_behavior="overwrite_or_ignore",
            basename_template="part-{i}.parquet",
            max_open_files=4096,
        )


def replace_store_days(store: Path, delta: Path, start: date, end: date) -> None:
    """Replace the store's days ``start``..``end`` with the rows of ``delta`` (one folder per day).

    Each day is swapped by renames, and coverage.json is written last: an interrupted update leaves
    days that the next run re-reads anyway (it starts from the same published watermark). The
    temporary ``.incoming-*`` folder is removed whatever happens (a disk-full write once left 20 MB
    of it behind, keeping the disk full).
    """
    staging = store.parent / f".incoming-{uuid.uuid4().hex[:8]}"
    try:
        _write_incoming(delta, staging)
        store.mkdir(parents=True, exist_ok=True)
        for d in _days(start, end):
            name = f"day={d.isoformat()}"
            new, old = staging / name, store / name
            trash = store.parent / f".trash-{uuid.uuid4().hex[:8]}"
            if old.exists():
                os.replace(old, trash)
            if new.exists():
                os.replace(new, old)
            shutil.rmtree(trash, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    cov = _coverage(store)
    first, last = (
        (start, end)
        if cov is None or cov[1] < start - timedelta(days=1) or cov[0] > end + timedelta(days=1)
        else (min(cov[0], start), max(cov[1], end))
    )
    tmp = store / "coverage.json.tmp"
    try:
        with writing(tmp):
            tmp.write_text(json.dumps({"first": first.isoformat(), "last": last.isoformat()}), encoding="utf-8")
        os.replace(tmp, store / "coverage.json")
    finally:
        tmp.unlink(missing_ok=True)


def stage_sales_window(store: Path, start: date, end: date, target: Path, castfail_path: Path) -> Staged:
    """Write the store's days ``start``..``end`` to ``target`` and its cast failures (row numbers of ``target``)."""
    schema = arrow_schema(contract.SALES)
    st = Staged()
    tmp = target.with_name(target.name + ".tmp")
    try:
        _copy_store_days(store, start, end, tmp, schema, st)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_failures(st.failures, castfail_path)
    return st


def _copy_store_days(store: Path, start: date, end: date, tmp: Path, schema: pa.Schema, st: Staged) -> None:
    with writing(tmp), pq.ParquetWriter(tmp, schema) as writer:
        for d in _days(start, end):
            folder = store / f"day={d.isoformat()}"
            if not folder.exists():
                continue
            for part in sorted(folder.glob("*.parquet")):
                pf = pq.ParquetFile(part)
                for b in pf.iter_batches(batch_size=262_144):
                    t = pa.Table.from_batches([b])
                    extra = t.column(_STORE_EXTRA)
                    # most days hold no cast failure: skip the conversion to pandas for them
                    fails = (
                        _failures_from_column(extra.combine_chunks(), st.rows)
                        if extra.null_count < len(extra)
                        else None
                    )
                    if fails is not None and len(fails):
                        st.failures.append(fails)
                        st.quantity_failures += int((fails["column_name"] == "quantity").sum())
                    typed = t.select(schema.names).cast(schema)
                    writer.write_table(typed)
                    st.quantity_sum += float(pc.sum(typed.column("quantity")).as_py() or 0.0)
                    st.rows += typed.num_rows


def extract_sales_incremental(
    conn: sa.Connection, spec: dict[str, Any], ctx: RunContext, url: str
) -> tuple[Staged, dict[str, Any], dict[str, Any]]:
    """Refresh the sales store from the source (look-back window), stage the history window.

    Returns what was staged, the reconciliation entry (source vs re-read rows) and the proposed
    watermark row for ``watermarks.json``.
    """
    cfg = ctx.cfg
    query = profile_query(spec, "sales", cfg)
    key = source_key(cfg, url)
    table_name = str((spec["tables"].get("sales") or {}).get("watermark_table") or "sales")
    store = _store_dir(cfg, key)
    # runs of other dates share the store: plan, refresh and read it under its lock, one at a time
    with runlock.store_lock(store.parent, cfg.run_lock_timeout_s):
        return _refresh_and_stage(conn, spec, ctx, url, query, key, table_name, store)


def _refresh_and_stage(
    conn: sa.Connection,
    spec: dict[str, Any],
    ctx: RunContext,
    url: str,
    query: Query,
    key: str,
    table_name: str,
    store: Path,
) -> tuple[Staged, dict[str, Any], dict[str, Any]]:
    cfg = ctx.cfg
    end = ctx.last_sales_date
    window_start = end - timedelta(days=cfg.forecast.history_days - 1)
    wm = None if cfg.source.full_refresh else read_watermark(cfg, key, table_name)
    read_from, why = plan_sales_read(
        window_start, end, wm, _coverage(store), cfg.source.lookback_days, cfg.source.full_refresh
    )
    params = _query_params(ctx, read_from, end)
    if spec.get("generated") and "sales" in cfg.source.tables:
        check_generic_sales_dates(conn, cfg.source.tables["sales"])
    delta = ctx.run_dir / "extract_sales_delta.parquet"
    try:
        read = extract_sql_table(conn, spec, query, ctx, url, params=params, target=delta, with_failures_column=True)
        rec = _reconcile_sql(
            conn, spec, query, params, read, url, window=[read_from.isoformat(), end.isoformat()], read_plan=why
        )
        if rec["ok"]:
            replace_store_days(store, delta, read_from, end)
    finally:
        delta.unlink(missing_ok=True)  # the re-read rows, only needed to refresh the store
    st = stage_sales_window(
        store, window_start, end, ctx.output_path("extract_sales"), ctx.output_path("castfail_sales")
    )
    rec["staged_window"] = [window_start.isoformat(), end.isoformat()]
    rec["staged_window_rows"] = st.rows
    new_wm = max(end, wm) if wm else end
    return st, rec, {"source": key, "table_name": table_name, "watermark": new_wm.isoformat()}


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------


def _connect(cfg: Config, url: str) -> tuple[sa.Engine, sa.Connection]:
    engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        conn = with_retries(
            f"source {cfg.source.profile!r}",
            url,
            engine.connect,
            retries=cfg.source.retries,
            backoff_seconds=cfg.source.retry_backoff_seconds,
        )
    except BaseException:
        engine.dispose()
        raise
    return engine, conn


_Record = Callable[[str, Staged, dict[str, Any]], None]


def _extract_file_tables(ctx: RunContext, record: _Record, progress: Any) -> None:
    """The tables the source's ``files`` section maps to files (any source kind)."""
    src = ctx.cfg.source
    for name in [n for n in (*SOURCE_TABLES, *OPTIONAL_TABLES) if n in src.files]:
        if progress:
            progress(f"extract {name} (files)")
        st, rec = extract_file_table(name, src.files[name], ctx)
        record(name, st, rec)


def _extract_sql_tables(ctx: RunContext, record: _Record, progress: Any) -> list[dict[str, Any]]:
    """The tables read from the SQL source (sales incrementally); returns the sales watermarks."""
    cfg = ctx.cfg
    src = cfg.source
    watermarks: list[dict[str, Any]] = []
    spec = load_profile(src.profile, cfg)
    url = cfg.source_url()
    engine, conn = _connect(cfg, url)
    try:
        with conn:
            for name in (*SOURCE_TABLES, *[t for t in OPTIONAL_TABLES if provides(spec, cfg, t)]):
                if name in src.files:
                    continue
                if progress:
                    progress(f"extract {name}")
                if name == "sales":
                    st, rec, wm = extract_sales_incremental(conn, spec, ctx, url)
                    watermarks.append(wm)
                else:
                    info = extract_table(conn, spec, name, ctx, url)
                    st = info["staged"]
                    rec = _reconcile_sql(conn, spec, info["query"], _query_params(ctx), st, url)
                record(name, st, rec)
                conn.commit()  # end the read transaction between tables (no long snapshot held)
    finally:
        engine.dispose()
    return watermarks


def _stage_absent_optional_tables(ctx: RunContext, result: StageResult) -> None:
    for name in OPTIONAL_TABLES:  # not provided by the source: staged empty
        if name not in result.counts:
            contract.empty(name).to_parquet(ctx.output_path(f"extract_{name}"), index=False)
            _write_failures([], ctx.output_path(f"castfail_{name}"))
            result.counts.setdefault(name, 0)


def _stage_policies(ctx: RunContext, result: StageResult) -> None:
    pol = policies_frame(ctx.cfg)
    pol.to_parquet(ctx.output_path("extract_policies"), index=False)
    _write_failures([], ctx.output_path("castfail_policies"))
    result.paths["policies"] = str(ctx.output_path("extract_policies"))
    result.counts["policies"] = len(pol)


def _check_reconciliation(cfg: Config, reconciliation: list[dict[str, Any]]) -> None:
    """Raise :class:`ExtractError` for the first checked table whose staged rows differ from the source."""
    src = cfg.source
    bad = [r for r in reconciliation if r.get("checked") and not r["ok"]]
    if not bad:
        return
    r = bad[0]
    where = (
        describe(cfg.source_url()) if src.kind == "sql" and r["table"] not in src.files else f"files in {src.folder}"
    )
    sq = "" if r["source_quantity"] is None else f" / quantity {r['source_quantity']:.2f}"
    tq = "" if r["staged_quantity"] is None else f" / quantity {r['staged_quantity']:.2f}"
    raise ExtractError(
        f"reconciliation failed for {r['table']} from {where}: source has {r['source_rows']} rows{sq},"
        f" staged {r['staged_rows']} rows{tq}"
    )


def extract_stage(ctx: RunContext, progress: Any = None) -> StageResult:
    """Extract every canonical table of the configured source for the run date."""
    cfg = ctx.cfg
    result = StageResult(stage="extract")
    reconciliation: list[dict[str, Any]] = []
    watermarks: list[dict[str, Any]] = []
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    ctx.output_path("watermarks.json").unlink(missing_ok=True)

    def record(name: str, st: Staged, rec: dict[str, Any]) -> None:
        result.paths[name] = str(ctx.output_path(f"extract_{name}"))
        result.counts[name] = st.rows
        if st.cast_failures:
            result.notes.append(f"{name}: {st.cast_failures} value(s) could not be read as their type")
        reconciliation.append(rec)

    _extract_file_tables(ctx, record, progress)
    if cfg.source.kind == "sql":
        watermarks = _extract_sql_tables(ctx, record, progress)
    _stage_absent_optional_tables(ctx, result)
    _stage_policies(ctx, result)
    ctx.write_json("reconciliation", reconciliation)
    _check_reconciliation(cfg, reconciliation)
    if watermarks:
        ctx.write_json("watermarks", watermarks)
    return result
