"""The whole loop over several business nights, on each kind of order target: recommendations are
decided, approved transfers become orders in the ERP, the demo warehouse ships and receives them,
the next nights read that back, and every executed order is reviewed.

- SQL write-back into the demo ERP on PostgreSQL (with a run killed between the export and the
  publish, then re-run) and on MariaDB;
- a file drop (GBK CSV with Chinese headers) that the ERP imports, on a SQLite demo ERP.

The nights run through the runner (the same stages the DAG runs; the DAG itself is covered by
``test_nightly_dag.py``), with a small demo ERP and the fast forecaster so the test stays short.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from pipelines import orderbook, reporting, runner
from pipelines.config import Config, load_config
from pipelines.context import RunContext
from pipelines.demo import nights as dn
from pipelines.demo.source import DEMO_END_DATE, generate
from pipelines.demo.warehouse import advance_day
from pipelines.order_export import orders_cycle

pytestmark = pytest.mark.e2e

SMALL = {"seed": 5, "n_skus": 24, "n_locations": 5, "days": 400}  # a year back: the warehouse sells at lag 364
FIRST = DEMO_END_DATE + timedelta(days=1)
NIGHTS = 4
#: Chinese headers of the file-drop template, as an ERP's import screen names them
FILE_COLUMNS = {
    "order_no": "调拨单号",
    "revision": "版本",
    "action": "操作",
    "departure_date": "计划发货日期",
    "from_location": "调出仓",
    "to_location": "调入仓",
    "sku": "物料编码",
    "quantity": "数量",
}


def _overrides(tmp: Path, source_url: str, targets: list[dict[str, Any]], expire_after_days: int = 5) -> dict[str, Any]:
    return {
        "source": {"url": source_url, "retries": 0},
        "staging_dir": str(tmp / "staging"),
        "output_dir": str(tmp / "output"),
        "forecast": {"history_days": SMALL["days"], "use_gbm": False, "backtest_folds": 1},
        "orders": {"targets": targets, "expire_after_days": expire_after_days},
    }


def _night(cfg: Config, day: date, *, import_files: Path | None = None, cycle: bool = True) -> None:
    """One business night and the day after it: the run, the simulated planner, the order cycle
    (when ``cycle``), the ERP importing dropped files (when ``import_files``), the warehouse."""
    runner.run_pipeline(cfg, day)
    transfers = reporting.read_table(cfg.reporting_url(), "transfers", day)
    dn.record_planner_decisions(
        cfg.reporting_url(), day, dn.simulated_planner(transfers, 42), dn._decision_time(cfg.reporting_url(), day, 42)
    )
    if cycle:
        orders_cycle(cfg, day)
    if import_files is not None:
        _erp_imports(import_files, cfg.source_url())
    advance_day(cfg.source_url(), day)


def _erp_imports(folder: Path, erp_url: str) -> None:
    """What the ERP's import screen does with the dropped files: read each (GBK, Chinese headers) in
    revision order and upsert the request on its number; a cancel closes it."""
    back = {v: k for k, v in FILE_COLUMNS.items()}
    files = sorted(folder.glob("*.csv"), key=lambda p: (p.stem.rsplit("-r", 1)[0], int(p.stem.rsplit("-r", 1)[1])))
    engine = sa.create_engine(erp_url)
    with engine.begin() as conn:
        for path in files:
            f = pd.read_csv(path, encoding="gbk", dtype={"调拨单号": str, "物料编码": str}).rename(columns=back)
            no = str(f["order_no"].iloc[0])
            have = conn.execute(sa.text("select status from tr_request_header where req_no = :n"), {"n": no}).first()
            status = "CANCELLED" if f["action"].iloc[0] == "cancel" else "APPROVED"
            if have is None:
                conn.execute(
                    sa.text(
                        "insert into tr_request_header (req_no, revision, status, req_date, plan_ship_date, from_wh,"
                        " to_wh) values (:n, :r, :s, :d, :d, :f, :t)"
                    ),
                    {
                        "n": no,
                        "r": int(f["revision"].iloc[0]),
                        "s": status,
                        "d": date.fromisoformat(str(f["departure_date"].iloc[0])),
                        "f": str(f["from_location"].iloc[0]),
                        "t": str(f["to_location"].iloc[0]),
                    },
                )
            elif have[0] == "APPROVED":
                conn.execute(
                    sa.text("update tr_request_header set revision = :r, status = :s where req_no = :n"),
                    {"n": no, "r": int(f["revision"].iloc[0]), "s": status},
                )
            for i, r in enumerate(f.itertuples(), start=1):
                line = {"n": no, "m": r.sku, "q": float(r.quantity), "i": i}
                hit = conn.execute(
                    sa.text("select 1 from tr_request_line where req_no = :n and mat_code = :m"), line
                ).first()
                conn.execute(
                    sa.text(
                        "update tr_request_line set qty_req = :q where req_no = :n and mat_code = :m"
                        if hit
                        else "insert into tr_request_line (req_no, line_no, mat_code, qty_req) values (:n, :i, :m, :q)"
                    ),
                    line,
                )
    engine.dispose()
    for path in files:  # imported: the ERP moves them out of the drop folder
        path.rename(path.with_suffix(".imported"))


def _book(cfg: Config) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    with reporting.engine_for(cfg.reporting_url()).connect() as conn:
        orders = orderbook.read_orders(conn)
        lines = orderbook.read_lines(conn, active_only=False)
        events = pd.DataFrame(conn.execute(sa.select(orderbook.EVENTS)).mappings().all())
    return orders, lines, events


def _erp_requests(url: str) -> pd.DataFrame:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select req_no, status from tr_request_header")).all()
    engine.dispose()
    return pd.DataFrame([tuple(r) for r in rows], columns=["req_no", "status"])


def _approvals(cfg: Config) -> pd.DataFrame:
    """The latest decision per recommendation that approves units."""
    from pipelines.decision_store import latest_decisions

    with reporting.engine_for(cfg.reporting_url()).connect() as conn:
        d = latest_decisions(conn)
    d = d[(d["decision"] == "approve") & (d["new_quantity"] > 0)]
    return d.assign(rec_run_date=pd.to_datetime(d["rec_run_date"]))


def _check_loop(cfg: Config, erp_url: str, last: date) -> pd.DataFrame:
    """What every target must give; returns the order lines with their order's fields."""
    orders, lines, events = _book(cfg)
    full = lines.merge(orders, on="order_no", suffixes=("", "_order"))
    # every approval (by a person or the auto tier) of a night before the last is exactly one order line
    appr = _approvals(cfg)
    appr = appr[appr["rec_run_date"] < pd.Timestamp(last)]
    assert len(appr) > 0
    key = ["rec_run_date", "sku", "from_location", "to_location"]
    hits = appr[key].merge(
        full.assign(rec_run_date=pd.to_datetime(full["rec_run_date"]))[key], on=key, how="left", indicator=True
    )
    assert (hits["_merge"] == "both").all() and not hits.duplicated(key).any()
    assert not full.duplicated(["order_no", "sku"]).any()
    # the ERP holds each exported order once, under the order book's number
    erp = _erp_requests(erp_url)
    assert not erp["req_no"].duplicated().any()
    exported = set(orders.loc[orders["exported_revision"] > 0, "order_no"])
    assert exported and exported <= set(erp["req_no"])
    # executed in the source and read back: shipped and received orders in the book, with quantities
    states = set(orders["state"])
    assert {"received", "partly_received"} & states
    got = full[full["received_date"].notna()]
    assert len(got) > 0 and (got["received_qty"] <= got["shipped_qty"]).all()
    # never proposed again while open: nights after the departure up to the receipt (or the end)
    nights = sorted({pd.Timestamp(last) - pd.Timedelta(days=k) for k in range(NIGHTS)})
    for night in nights:
        recs = reporting.read_table(cfg.reporting_url(), "transfers", night.date())
        dep = pd.to_datetime(full["departure_date"])
        until = pd.to_datetime(full["received_date"]).fillna(pd.Timestamp(last))
        open_then = full[
            (dep < night)
            & (night <= until)
            & full["state"].isin(["exported", "shipped", "received", "partly_received"])
        ]
        clash = recs.merge(
            open_then[["sku", "from_location", "to_location"]], on=["sku", "from_location", "to_location"]
        )
        assert clash.empty, f"{night:%Y-%m-%d}: proposed again while its order is open: {clash.head()}"
    # a cancelled or expired order frees its units: no later night counts it on the way
    closed = events[events["event"].isin(["cancelled", "expired"])]
    for ev in closed.itertuples():
        for night in [n for n in nights if n.date() > ev.run_date]:
            staged = RunContext(cfg, night.date()).read("open_transfers")
            assert ev.order_no not in set(staged["order_no"]), (ev.order_no, night)
    # reviewed: the received lines in the last night's review with their lead time and outcome
    review = reporting.read_table(cfg.reporting_url(), "transfer_review", last)
    rec = review[review["received_date"].notna()]
    assert len(rec) > 0 and rec["lead_time_days"].notna().all() and (rec["lead_time_days"] >= 0).all()
    assert rec["on_time"].notna().all() and rec["explanation_zh"].str.len().gt(0).all()
    kpis = reporting.read_table(cfg.reporting_url(), "kpis", last)
    net = kpis[(kpis["location"] == "*") & (kpis["category"] == "*")].set_index("metric")["value"]
    assert net["transfers_approved_count"] > 0 and net["transfer_lead_time_days"] >= 0
    assert 0 <= net["transfer_on_time_rate"] <= 1 and 0 <= net["decision_acceptance_rate"] <= 1
    return full


def _demo_erp(url: str) -> None:
    generate(url, **SMALL)


def test_sql_write_back_on_postgresql_with_a_run_killed_between_export_and_publish(tmp_path, pg_url):
    _demo_erp(pg_url)
    # expire_after_days 1: the warehouse's later shipments (1-2 days after the planned date) expire
    overrides = _overrides(tmp_path, pg_url, [{"name": "erp", "kind": "sql", "profile": "demo"}], 1)
    cfg = load_config(overrides=overrides)
    _night(cfg, FIRST, cycle=False)  # no daytime order cycle: night 2's run creates and exports the orders
    day2 = FIRST + timedelta(days=1)
    before = len(_erp_requests(pg_url))
    # kill night 2's run once its feedback stage has exported, before it publishes
    config = tmp_path / "tiaobo.yaml"
    config.write_text(yaml.safe_dump(overrides, allow_unicode=True), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--date", day2.isoformat(), "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while len(_erp_requests(pg_url)) == before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it exported: nothing to kill"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_orders = _erp_requests(pg_url)
    assert len(killed_orders) > before
    assert pd.Timestamp(day2) not in set(reporting.read_published_runs(cfg.reporting_url())["run_date"])
    # the re-run of the date publishes; every order is in the ERP once, none lost, none doubled
    for n in range(1, NIGHTS):
        _night(cfg, FIRST + timedelta(days=n))
    last = FIRST + timedelta(days=NIGHTS - 1)
    full = _check_loop(cfg, pg_url, last)
    assert set(killed_orders["req_no"]) <= set(full["order_no"])
    _, _, events = _book(cfg)
    assert (events["event"] == "expired").any()  # and their units were freed (checked in _check_loop)
    reporting.dispose_engine(cfg.reporting_url())


def test_sql_write_back_on_mariadb(tmp_path, mysql_url):
    _demo_erp(mysql_url)
    cfg = load_config(overrides=_overrides(tmp_path, mysql_url, [{"name": "erp", "kind": "sql", "profile": "demo"}]))
    for n in range(NIGHTS):
        _night(cfg, FIRST + timedelta(days=n))
    _check_loop(cfg, mysql_url, FIRST + timedelta(days=NIGHTS - 1))
    reporting.dispose_engine(cfg.reporting_url())


def test_file_drop_in_gbk_imported_by_the_erp(tmp_path):
    erp = f"sqlite:///{tmp_path / 'erp.sqlite'}"
    _demo_erp(erp)
    drop = tmp_path / "drop"
    target = {"name": "drop", "kind": "file", "folder": str(drop), "encoding": "gbk", "file_columns": FILE_COLUMNS}
    cfg = load_config(overrides=_overrides(tmp_path, erp, [target]))
    for n in range(NIGHTS):
        _night(cfg, FIRST + timedelta(days=n), import_files=drop)
    full = _check_loop(cfg, erp, FIRST + timedelta(days=NIGHTS - 1))
    written = sorted(drop.glob("*.imported"))
    assert {p.stem.rsplit("-r", 1)[0] for p in written} == set(full["order_no"])
    head = written[0].read_bytes().split(b"\n", 1)[0]
    assert head.decode("gbk").split(",") == list(FILE_COLUMNS.values())  # GBK, the configured headers
    assert not list(drop.glob(".*.tmp"))  # written atomically: no temporary file left behind
    reporting.dispose_engine(cfg.reporting_url())
