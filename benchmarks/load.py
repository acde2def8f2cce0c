"""Benchmark: publish 1 million forecast rows to PostgreSQL, next to a plain COPY of the same rows.

Creates a throw-away database on the server (default ``postgresql+psycopg://postgres@127.0.0.1:5432``,
override with ``--server`` or ``TIAOBO_TEST_PG``), migrates it, and measures:

- ``plain COPY``: the rows already encoded in memory (as CSV by pyarrow, and in PostgreSQL's binary
  format), ``COPY forecasts FROM STDIN`` into the empty table in one transaction: the floor
  (server-side parsing, primary-key index maintenance), no encoding and no checks counted.
- ``publish``: :func:`pipelines.reporting.publish` of the same frame for one run date, end to end
  (contract checks, canonical sort, duplicate-key check, delete of the date, COPY, published_runs,
  commit), first into an empty date, then again over itself (the re-publish of a date).

Each measurement is repeated ``--repeat`` times and the best is reported (the machine is shared).
The database is dropped at the end. Usage::

    .venv/bin/python benchmarks/load.py --rows 1000000 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines import contract, reporting

RUN_DATE = date(2026, 11, 25)
RUN_ID = "20261125-benchmark00"


def forecast_frame(rows: int, horizon: int = 28, seed: int = 0) -> pd.DataFrame:
    """``rows`` forecast rows (series x horizon days), deterministic from ``seed``."""
    rng = np.random.default_rng(seed)
    n_series = -(-rows // horizon)
    n_loc = 20
    series = np.arange(n_series)
    sku = np.char.add("SKU", np.char.zfill((series // n_loc).astype(str), 6))
    loc = np.char.add("WH", np.char.zfill((series % n_loc).astype(str), 2))
    h = np.tile(np.arange(1, horizon + 1), n_series)[:rows]
    idx = np.repeat(series, horizon)[:rows]
    mean = rng.gamma(1.5, 2.0, size=rows)
    return pd.DataFrame(
        {
            "run_date": pd.Timestamp(RUN_DATE),
            "run_id": RUN_ID,
            "sku": pd.array(sku[idx], dtype="str"),
            "location": pd.array(loc[idx], dtype="str"),
            "target_date": pd.Timestamp(RUN_DATE) + pd.to_timedelta(h - 1, unit="D"),
            "horizon": h.astype("int64"),
            "mean": mean,
            "p50": np.floor(mean),
            "p90": mean * 1.8,
            "p95": mean * 2.1,
            "p99": mean * 2.9,
            "model": "moving_average",
        }
    )


def csv_bytes(df: pd.DataFrame) -> bytes:
    """The conformed forecasts as CSV (no header) written by pyarrow: the plain-COPY baseline."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, col in enumerate(contract.FORECASTS.columns):
        if col.type == "date":
            table = table.set_column(i, col.name, table.column(i).cast(pa.date32()))
    buf = pa.BufferOutputStream()
    pacsv.write_csv(table, buf, write_options=pacsv.WriteOptions(include_header=False))
    return buf.getvalue().to_pybytes()


def plain_copy(url: str, data: bytes, fmt: str, columns: list[str]) -> float:
    eng = reporting.engine_for(url)
    cols = ", ".join(f'"{c}"' for c in columns)
    with eng.begin() as conn:
        conn.exec_driver_sql("truncate forecasts")
    t0 = time.perf_counter()
    with eng.begin() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"copy forecasts ({cols}) from stdin (format {fmt})") as copy:
            for start in range(0, len(data), 1 << 22):
                copy.write(data[start : start + (1 << 22)])
    elapsed = time.perf_counter() - t0
    with eng.begin() as conn:
        conn.exec_driver_sql("truncate forecasts")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument(
        "--server", default=os.environ.get("TIAOBO_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
    )
    args = ap.parse_args()

    name = f"tiaobo_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{args.server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"create database {name} encoding 'UTF8' template template0")
    url = f"{args.server}/{name}"
    try:
        reporting.migrate(url)
        df = forecast_frame(args.rows)
        prepared = contract.canonical_order(contract.conform(df, "forecasts"), "forecasts")
        t0 = time.perf_counter()
        order = reporting.copy_column_order("forecasts", prepared)
        chunks = [
            reporting.copy_binary_rows(prepared.iloc[i : i + reporting.COPY_CHUNK_ROWS], "forecasts", order)
            for i in range(0, len(prepared), reporting.COPY_CHUNK_ROWS)
        ]
        encode_s = time.perf_counter() - t0  # the same chunks as the publish, one after the other
        binary = reporting.PGCOPY_HEADER + b"".join(chunks) + reporting.PGCOPY_TRAILER
        csv = csv_bytes(prepared)
        csv_s = min(plain_copy(url, csv, "csv", contract.FORECASTS.names) for _ in range(args.repeat))
        bin_s = min(plain_copy(url, binary, "binary", order) for _ in range(args.repeat))
        first, again = [], []
        for _ in range(args.repeat):
            with reporting.engine_for(url).begin() as conn:
                conn.exec_driver_sql("truncate forecasts")
            t0 = time.perf_counter()
            reporting.publish(url, RUN_DATE, RUN_ID, {"forecasts": df})
            first.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            reporting.publish(url, RUN_DATE, RUN_ID, {"forecasts": df})
            again.append(time.perf_counter() - t0)
        with reporting.engine_for(url).connect() as conn:
            n = conn.exec_driver_sql("select count(*) from forecasts").scalar_one()
        assert n == args.rows, f"{n} rows published, {args.rows} expected"
        rows = args.rows
        print(f"rows: {rows:,}  (forecasts table, PostgreSQL {reporting.engine_for(url).dialect.server_version_info})")
        print(f"plain COPY csv (bytes ready):    {csv_s:6.2f} s  {rows / csv_s:>10,.0f} rows/s")
        print(f"plain COPY binary (bytes ready): {bin_s:6.2f} s  {rows / bin_s:>10,.0f} rows/s")
        print(f"binary encoding alone (chunks):  {encode_s:6.2f} s  {rows / encode_s:>10,.0f} rows/s")
        print(f"publish into an empty date:      {min(first):6.2f} s  {rows / min(first):>10,.0f} rows/s")
        print(f"publish over the same date:      {min(again):6.2f} s  {rows / min(again):>10,.0f} rows/s")
    finally:
        reporting.dispose_engine(url)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"drop database if exists {name} with (force)")
        admin.dispose()


if __name__ == "__main__":
    main()
