"""Benchmark: the planner workbench on 100,000 recommendations in a fresh PostgreSQL database.

Creates a throw-away database on the server (default ``postgresql+psycopg://postgres@127.0.0.1:5432``,
override with ``--server`` or ``TIAOBO_TEST_PG``), publishes one night with ``--rows`` transfers
(5,000 SKUs, 60 locations in 6 regions, every lane between them with a minimum of 6 units and a
capacity of 5,000; item, location and lane masters;
30% of the lines already approved by the auto tier), and measures through the app over HTTP
(Starlette's TestClient: the whole request, routing, session and CSRF checks, SQL, templates):

- ``transfers page``: the filtered first page of Transfers as a planner of one region
  (``/transfers?region=R1&status=undecided&sort=benefit``) and a search by item name
  (``q=``), ``--repeat`` times each;
- ``bulk approve``: a POST of 1,000 undecided lines of the manager's ``/transfers/bulk-approve``
  (every rule checked per line, the lanes' shipments re-checked, one multi-row INSERT ...
  ON CONFLICT DO NOTHING), each repetition on 1,000 other lines.

Reports median and p95 in milliseconds. The database is dropped at the end. Usage::

    .venv/bin/python benchmarks/workbench.py --rows 100000 --repeat 20
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines import contract, decision_store, reporting
from pipelines.config import load_config

RUN_DATE = date(2026, 11, 25)
RUN_ID = "20261125-wbbench0000"
PASSWORD = "benchmark-password-1"


def night(rows: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_loc, n_sku, regions = 60, 5000, 6
    locs = [f"L{i:03d}" for i in range(n_loc)]
    loc = pd.DataFrame(
        {
            "location": locs,
            "name": [f"门店 {i}" for i in range(n_loc)],
            "type": ["dc" if i < regions else "store" for i in range(n_loc)],
            "region": [f"R{i % regions}" for i in range(n_loc)],
            "can_ship": True,
            "can_receive": True,
            "active": True,
        }
    )
    skus = [f"SKU{i:05d}" for i in range(n_sku)]
    items = pd.DataFrame(
        {
            "sku": skus,
            "name": [f"商品{i} 洗洁精" if i % 50 == 0 else f"商品{i}" for i in range(n_sku)],
            "name_en": [f"Item {i}" for i in range(n_sku)],
            "category": [f"C{i % 12}" for i in range(n_sku)],
            "unit_cost": rng.uniform(1, 40, n_sku).round(2),
            "unit_price": rng.uniform(2, 80, n_sku).round(2),
            "pack_size": rng.choice([1, 6, 12], n_sku),
        }
    )
    pairs = [(a, b) for a in locs for b in locs if a != b]
    lanes = pd.DataFrame(
        {
            "from_location": [a for a, _ in pairs],
            "to_location": [b for _, b in pairs],
            "cost_per_unit": 0.5,
            "fixed_cost_per_shipment": 40.0,
            "transit_days": 2,
            "min_units": 6,
            "capacity": 5000,
        }
    )
    # unique (sku, lane) combinations
    combo = rng.choice(n_sku * len(pairs), size=rows, replace=False)
    s_idx, l_idx = combo // len(pairs), combo % len(pairs)
    pack = items["pack_size"].to_numpy()[s_idx]
    packs = rng.integers(1, 8, rows)
    tr = pd.DataFrame(
        {
            "sku": np.asarray(skus)[s_idx],
            "from_location": lanes["from_location"].to_numpy()[l_idx],
            "to_location": lanes["to_location"].to_numpy()[l_idx],
            "quantity": (pack * packs).astype(float),
            "packs": packs,
            "transfer_cost": rng.uniform(2, 60, rows).round(2),
            "expected_benefit": rng.uniform(5, 3000, rows).round(2),
            "receiver_stockout_date": pd.Timestamp(RUN_DATE) + pd.to_timedelta(rng.integers(0, 20, rows), unit="D"),
            "receiver_units_short": rng.uniform(1, 50, rows).round(1),
            "donor_days_of_cover": rng.uniform(10, 200, rows).round(1),
            "donor_excess_units": rng.uniform(0, 100, rows).round(0),
            "arrival_date": pd.Timestamp(RUN_DATE + timedelta(days=2)),
            "approval_tier": np.where(rng.random(rows) < 0.3, "auto", "planner"),
            "method": "milp",
            "explanation_en": "Move units to avoid a stockout.",
            "explanation_zh": "调拨以避免缺货。",
        }
    )
    run = {"run_date": pd.Timestamp(RUN_DATE), "run_id": RUN_ID}
    return {
        "transfers": tr.assign(**run),
        "item_master": items.assign(**run),
        "location_master": loc.assign(**run),
        "lane_master": lanes.assign(**run),
    }


def _ms(xs: list[float]) -> str:
    s = sorted(xs)
    p95 = s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]
    return f"median {statistics.median(s) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (n={len(s)})"


def _login(client, name: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    r = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token.group(1), "next": "/"})
    assert r.status_code == 200 and f'id="me">{name}<' in r.text, r.text[:500]


def set_up(url: str, rows: int) -> None:
    from pipelines.workbench import users

    t0 = time.perf_counter()
    frames = night(rows)
    reporting.migrate(url)
    reporting.publish(url, RUN_DATE, RUN_ID, frames)
    with reporting.engine_for(url).begin() as conn:
        auto = decision_store.approve_auto_tier(
            conn, contract.conform(frames["transfers"], "transfers"), RUN_DATE, RUN_ID
        )
        users.add_user(conn, "planner_r1", "planner", ["R1"], "zh", PASSWORD)
        users.add_user(conn, "manager", "manager", [], "zh", PASSWORD)
        conn.exec_driver_sql("analyze")
    print(f"set-up: {rows:,} transfers published, {auto:,} auto-approved, in {time.perf_counter() - t0:.1f}s")


def measure_pages(client: Any, repeat: int) -> None:
    for label, path in (
        ("transfers page (region R1, undecided, by benefit)", "/transfers?region=R1&status=undecided&sort=benefit"),
        ("transfers page (search 洗洁精, by stockout date)", "/transfers?q=%E6%B4%97%E6%B4%81%E7%B2%BE&sort=stockout"),
        ("transfers page 20 (no filter)", "/transfers?page=20"),
    ):
        client.get(path)  # warm
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            r = client.get(path)
            times.append(time.perf_counter() - t)
            assert r.status_code == 200 and r.text.count('name="line"') > 0
        shown = r.text.count('name="line"')
        print(f"{label}: {_ms(times)}; {shown} rows shown")


def measure_bulk(client: Any, url: str, bulk: int, repeat: int) -> None:
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/transfers").text)
    assert csrf is not None
    tr = reporting.OUTPUT_SA["transfers"]
    with reporting.engine_for(url).connect() as conn:
        undecided = conn.execute(
            sa.select(tr.c.sku, tr.c.from_location, tr.c.to_location)
            .where(tr.c.run_date == RUN_DATE, tr.c.approval_tier == "planner")
            .order_by(tr.c.sku, tr.c.from_location, tr.c.to_location)
        ).all()
    times = []
    for i in range(min(repeat, len(undecided) // bulk)):
        lines = undecided[i * bulk : (i + 1) * bulk]
        form = {"csrf_token": csrf.group(1), "line": [f"{RUN_DATE.isoformat()}|{s}|{a}|{b}|0" for s, a, b in lines]}
        t = time.perf_counter()
        r = client.post("/transfers/bulk-approve", data=form)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200 and f"已批准 {bulk} 行" in r.text, r.text[:800]
    print(f"bulk approve of {bulk:,} lines (HTTP POST, page re-rendered): {_ms(times)}")
    with reporting.engine_for(url).connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(reporting.TRANSFER_DECISIONS)).scalar_one()
    print(f"transfer_decisions rows at the end: {n:,}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--bulk", type=int, default=1000)
    ap.add_argument(
        "--server", default=os.environ.get("TIAOBO_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
    )
    args = ap.parse_args()
    from fastapi.testclient import TestClient

    from pipelines.workbench.app import create_app

    name = f"tiaobo_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{args.server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"create database {name} encoding 'UTF8' template template0"))
    url = f"{args.server}/{name}"
    try:
        set_up(url, args.rows)
        cfg = load_config(overrides={"reporting": {"url": url}, "workbench": {"page_size": 50}})
        planner = TestClient(create_app(cfg, secret="b" * 40))
        _login(planner, "planner_r1")
        measure_pages(planner, args.repeat)
        manager = TestClient(create_app(cfg, secret="b" * 40))
        _login(manager, "manager")
        measure_bulk(manager, url, args.bulk, args.repeat)
    finally:
        reporting.dispose_engine(url)
        with admin.connect() as conn:
            conn.execute(sa.text(f"drop database if exists {name} with (force)"))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
