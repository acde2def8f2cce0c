"""Extraction throughput and peak memory: N sales rows in PostgreSQL and in MariaDB, streamed to parquet.

Usage (servers as in tests/conftest.py; each run creates and drops its own database):

    .venv/bin/python benchmarks/extract.py --rows 10000000
    .venv/bin/python benchmarks/extract.py --rows 1000000 --only postgresql

For each server the script generates a daily sales table (PostgreSQL: ``generate_series``;
MariaDB: ``INSERT ... SELECT`` from the built-in sequence engine), then measures

- the **raw floor**: PostgreSQL ``COPY (select * from table) TO STDOUT`` (CSV) with the bytes
  discarded; MariaDB: an unbuffered ``SSCursor`` fetching every row, discarded;
- the **extraction**: :func:`pipelines.extract.extract_sql_table` with the generic profile's
  generated query (rename and cast), streamed in chunks to ``extract_sales.parquet`` with the
  contract types (PostgreSQL through COPY + pyarrow's streaming CSV reader, MariaDB through the
  server-side cursor);
- the **incremental sales path** (``--full-path``): the same rows through
  :func:`pipelines.extract.extract_sales_incremental` (read into the cumulative store, partitioned
  by day, then the history window staged from it).

It prints rows/s and the peak resident memory (RSS, sampled every 20 ms from /proc/self/status)
of each step, and ``ru_maxrss`` of the whole process. Targets: PostgreSQL >= 400,000 rows/s,
MariaDB >= 150,000 rows/s, RSS < 1.5 GB.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipelines.config import load_config  # noqa: E402
from pipelines.context import RunContext  # noqa: E402
from pipelines.extract import extract_sales_incremental, extract_sql_table, generic_query, load_profile  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
MY = "mysql+pymysql://root@127.0.0.1:3306"
START = date(2024, 1, 1)
SKUS, LOCS = 20_000, 50  # rows per day = SKUS * LOCS / 50 ... the date advances every 200,000 rows
PER_DAY = 200_000


class RssSampler:
    """Peak RSS of this process while a block runs (sampled from /proc/self/status)."""

    def __init__(self, every: float = 0.02) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.every)

    def __enter__(self) -> RssSampler:
        self.peak = self.rss()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.rss())


def measure(label: str, rows: int, fn: Callable[[], Any]) -> dict[str, Any]:
    with RssSampler() as s:
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = out if isinstance(out, int) else rows
    rec = {
        "step": label,
        "rows": n,
        "seconds": round(secs, 2),
        "rows_per_s": int(n / secs),
        "cpu_seconds": round(cpu, 1),
        "peak_rss_mb": round(s.peak / 2**20),
    }
    print(
        f"  {label:<40} {n:>11,} rows {secs:7.1f} s {rec['rows_per_s']:>10,} rows/s"
        f"  (client CPU {cpu:6.1f} s)  peak RSS {rec['peak_rss_mb']:>5} MB",
        flush=True,
    )
    return rec


def generate(kind: str, url: str, rows: int) -> None:
    eng = sa.create_engine(url)
    t0 = time.perf_counter()
    with eng.begin() as c, _disposing(eng):
        if kind == "postgresql":
            c.execute(
                sa.text(
                    "create unlogged table bench_sales as select"
                    " 'SKU' || lpad((g % :skus)::text, 6, '0') as item_code,"
                    " 'LOC' || lpad(((g / :skus) % :locs)::text, 3, '0') as whs_code,"
                    " cast(:start as date) + (g / :per_day)::int as sale_date,"
                    " ((g * 7919) % 13)::double precision as qty,"
                    " ((g * 31) % 97 = 0)::int::double precision as ret_qty,"
                    " round((((g * 7919) % 13) * 2.35)::numeric, 2)::double precision as amount"
                    " from generate_series(0::bigint, :n - 1) as g"
                ),
                {"skus": SKUS, "locs": LOCS, "start": START, "per_day": PER_DAY, "n": rows},
            )
            c.execute(sa.text("analyze bench_sales"))
        else:
            c.execute(
                sa.text(
                    "create table bench_sales (item_code varchar(16), whs_code varchar(8), sale_date date,"
                    " qty double, ret_qty double, amount double) engine=InnoDB"
                )
            )
            c.execute(
                sa.text(
                    f"insert into bench_sales select concat('SKU', lpad(seq mod {SKUS}, 6, '0')),"
                    f" concat('LOC', lpad((seq div {SKUS}) mod {LOCS}, 3, '0')),"
                    f" date_add('{START.isoformat()}', interval (seq div {PER_DAY}) day),"
                    " (seq * 7919) mod 13, if((seq * 31) mod 97 = 0, 1, 0), round(((seq * 7919) mod 13) * 2.35, 2)"
                    f" from seq_0_to_{rows - 1}"
                )
            )
    print(f"  generated {rows:,} rows in {time.perf_counter() - t0:.1f} s", flush=True)


class _disposing:
    def __init__(self, eng: sa.Engine) -> None:
        self.eng = eng

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self.eng.dispose()


def floor(kind: str, url: str) -> int:
    eng = sa.create_engine(url)
    n = 0
    try:
        with eng.connect() as c:
            raw = c.connection.driver_connection
            if kind == "postgresql":
                with raw.cursor().copy("copy (select * from bench_sales) to stdout with (format csv)") as cp:
                    for block in cp:
                        n += bytes(block).count(b"\n")
            else:
                import pymysql.cursors

                cur = raw.cursor(pymysql.cursors.SSCursor)
                cur.execute("select * from bench_sales")
                while chunk := cur.fetchmany(200_000):
                    n += len(chunk)
                cur.close()
    finally:
        eng.dispose()
    return n


def bench(kind: str, server: str, admin_db: str, rows: int, full_path: bool, work: Path) -> list[dict[str, Any]]:
    name = f"tiaobo_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{server}/{admin_db}", isolation_level="AUTOCOMMIT")
    create = f"create database {name}" + (" character set utf8mb4" if kind == "mariadb" else "")
    with admin.connect() as c:
        c.execute(sa.text(create))
    url = f"{server}/{name}" + ("?charset=utf8mb4" if kind == "mariadb" else "")
    print(f"{kind}: {url}", flush=True)
    out: list[dict[str, Any]] = []
    try:
        generate("postgresql" if kind == "postgresql" else "mariadb", url, rows)
        days = rows // PER_DAY + 1
        end = START + timedelta(days=days - 1)
        cfg = load_config(
            overrides={
                "source": {
                    "url": url,
                    "profile": "generic",
                    "full_refresh": True,
                    "tables": {
                        t: {"table": "bench_sales", "columns": {"sku": "item_code", "location": "whs_code"}}
                        for t in ("items", "locations", "lanes", "stock", "lead_times")
                    }
                    | {
                        "sales": {
                            "table": "bench_sales",
                            "aggregate": False,
                            "columns": {
                                "sku": "item_code",
                                "location": "whs_code",
                                "date": "sale_date",
                                "quantity": "qty",
                                "returns": "ret_qty",
                                "revenue": "amount",
                            },
                        }
                    },
                },
                "staging_dir": str(work / kind / "staging"),
                "output_dir": str(work / kind / "out"),
                "reporting": {"url": f"sqlite:///{work / kind / 'rep.sqlite'}"},
                "forecast": {"history_days": max(days, 28)},
            }
        )
        ctx = RunContext(cfg, end + timedelta(days=1))
        spec = load_profile("generic", cfg)
        query = generic_query("sales", cfg.source.tables["sales"])
        floor_label = "raw floor: COPY ... TO STDOUT (csv)" if kind == "postgresql" else "raw floor: SSCursor fetch"
        out.append(measure(floor_label, rows, lambda: floor(kind, url)))
        eng = sa.create_engine(url)
        try:
            with eng.connect() as conn:
                out.append(
                    measure(
                        "extract to parquet (contract types)",
                        rows,
                        lambda: extract_sql_table(conn, spec, query, ctx, url).rows,
                    )
                )
                if full_path:
                    out.append(
                        measure(
                            "incremental path (store + window)",
                            rows,
                            lambda: extract_sales_incremental(conn, spec, ctx, url)[0].rows,
                        )
                    )
        finally:
            eng.dispose()
    finally:
        with admin.connect() as c:
            force = " with (force)" if kind == "postgresql" else ""
            c.execute(sa.text(f"drop database if exists {name}{force}"))
        admin.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--only", choices=["postgresql", "mariadb"])
    ap.add_argument("--full-path", action="store_true", help="also time the incremental sales path (store + window)")
    ap.add_argument("--pg", default=PG)
    ap.add_argument("--mysql", default=MY)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tiaobo-bench-") as tmp:
        for kind, server, admin_db in (("postgresql", args.pg, "postgres"), ("mariadb", args.mysql, "")):
            if args.only and args.only != kind:
                continue
            bench(kind, server, admin_db, args.rows, args.full_path, Path(tmp))
    print(f"process ru_maxrss: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
