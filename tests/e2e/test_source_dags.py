"""End to end on the other kinds of source: the nightly DAG under ``dag.test()`` on a file drop, on the
Odoo profile (PostgreSQL) and on the generic profile (MariaDB), each publishing to a fresh PostgreSQL.

The demo profile runs end to end in ``test_nightly_dag.py``. Here each source holds a few products
at three locations with about four months of history; every run must succeed and publish forecasts,
policies and alerts for the source's SKU-locations, the reconciliation recorded for the run must
match the fixture's own row counts and quantity sums, and Chinese text must arrive byte for byte:
from GBK / UTF-8-BOM files, from Odoo's zh_CN translations and from MariaDB utf8mb4 columns.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pendulum
import pytest
import yaml

from pipelines import contract, reporting
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.demo.source import CATEGORIES, DEMO_END_DATE, generate
from pipelines.extract import extract_stage
from tests.conftest import fresh_pg_url
from tests.factories import published_tables, run_nightly_dag
from tests.fixtures_erp import GENERIC_TABLES, Erp, load_generic, load_odoo, side_drops, small_erp

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

RUN_DATE = DEMO_END_DATE + timedelta(days=1)
HISTORY_DAYS = 100  # the fixtures hold 10 more days: the window filter is exercised too
LOGICAL = pendulum.datetime(RUN_DATE.year, RUN_DATE.month, RUN_DATE.day, 2, tz="Asia/Shanghai")
SOURCE_TABLES = ("items", "locations", "lanes", "sales", "stock", "lead_times")


@pytest.fixture
def source_pg_url():
    """A second fresh PostgreSQL database (``pg_url`` is the reporting one): the Odoo source."""
    yield from fresh_pg_url()


def _nightly(tmp_path: Path, source: dict[str, Any], pg_url: str, monkeypatch) -> Path:
    """Write the run's configuration (reporting = ``pg_url``) and point the DAG at it."""
    cfg = {
        "source": {"retries": 0, **source},
        "reporting": {"url_env": "TIAOBO_TEST_REPORTING_URL"},
        "staging_dir": str(tmp_path / "staging"),
        "output_dir": str(tmp_path / "output"),
        "forecast": {"history_days": HISTORY_DAYS},
        "email": {
            "planners": [{"name": "华东计划组", "recipients": ["east@example.com"], "language": "zh-CN"}],
            "data_team": ["data@example.com"],
        },
    }
    path = tmp_path / "tiaobo.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("TIAOBO_CONFIG", str(path))
    monkeypatch.setenv("TIAOBO_TEST_REPORTING_URL", pg_url)
    return path


def _run_ok(logical: pendulum.DateTime, pg_url: str) -> dict[str, pd.DataFrame]:
    run = run_nightly_dag(logical)
    assert run.state == "success", run.state
    assert reporting.published_run_dates(pg_url) == [RUN_DATE]
    return published_tables(pg_url)


def _pairs(df: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(df["sku"], df["location"], strict=True))


def _reconciliation(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The reconciliation recorded in the run's summary (what the report and the run log show)."""
    summary = json.loads((tmp_path / "staging" / RUN_DATE.isoformat() / "summary.json").read_text(encoding="utf-8"))
    return {r["table"]: r for r in summary["reconciliation"]}


def _check_reconciliation(rec: dict[str, dict[str, Any]], expected: dict[str, pd.DataFrame]) -> None:
    # the six tables every source gives, and the optional ones a profile has queries for (all reconciled)
    assert set(SOURCE_TABLES) <= set(rec) <= {*SOURCE_TABLES, "transfer_status", "sourcing", "purchase_orders"}
    assert all(r["ok"] for r in rec.values())
    for name, frame in expected.items():
        r = rec[name]
        assert r["ok"] and r["source_rows"] == r["staged_rows"] == len(frame), (name, r, len(frame))
    for name, col in (("sales", "quantity"), ("stock", "on_hand")):
        want = float(expected[name][col].sum())
        assert rec[name]["quantity_checked"], rec[name]
        assert rec[name]["source_quantity"] == pytest.approx(want), name
        assert rec[name]["staged_quantity"] == pytest.approx(want), name


def _check_outputs(pub: dict[str, pd.DataFrame], sold: pd.DataFrame, stock: pd.DataFrame) -> None:
    """Forecasts and policies for every SKU-location that sold in the last four weeks, alerts and
    KPIs present, nothing about a SKU-location the source does not have."""
    recent = _pairs(sold[sold["date"] >= pd.Timestamp(RUN_DATE - timedelta(days=28))])
    known = _pairs(sold) | _pairs(stock)
    for name in ("forecasts", "inventory_policy"):
        assert recent <= _pairs(pub[name]) <= known, name
    assert len(pub["alerts"]) > 0 and _pairs(pub["alerts"]) <= known
    assert len(pub["kpis"]) > 0
    assert set(pub["forecasts"]["run_date"].dt.date) == {RUN_DATE}


def _check_rebalancing(pub: dict[str, pd.DataFrame]) -> None:
    """The ERP fixtures hold about a day of cover at HZ01 and months of it at NJ01: stock-out risk at
    HZ01 only, and transfers into it."""
    alerts = pub["alerts"]
    assert set(alerts.loc[alerts["alert_type"] == "stockout_risk", "location"]) == {"HZ01"}
    assert len(pub["transfers"]) > 0 and set(pub["transfers"]["to_location"]) == {"HZ01"}


def _utf8(values: Any) -> set[bytes]:
    return {str(v).encode("utf-8") for v in values}


# --------------------------------------------------------------------------------------------
# File drop
# --------------------------------------------------------------------------------------------

CATEGORY_ZH = {c.code: c.zh for c in CATEGORIES}


def _demo_canonical(tmp_path: Path) -> dict[str, pd.DataFrame]:
    """The demo ERP's canonical tables, as its (separately tested) SQL profile extracts them."""
    source = tmp_path / "erp.sqlite"
    generate(f"sqlite:///{source}", n_skus=10, n_locations=3, days=HISTORY_DAYS + 10)
    cfg = load_config(
        overrides={
            "source": {"url": f"sqlite:///{source}", "retries": 0},
            "reporting": {"url": f"sqlite:///{tmp_path / 'scratch.sqlite'}"},
            "staging_dir": str(tmp_path / "scratch"),
            "forecast": {"history_days": HISTORY_DAYS},
        }
    )
    ctx = RunContext(cfg, RUN_DATE)
    extract_stage(ctx)
    frames = {n: pd.read_parquet(ctx.run_dir / f"extract_{n}.parquet") for n in SOURCE_TABLES}
    frames["items"] = frames["items"].assign(category=frames["items"]["category"].map(CATEGORY_ZH))
    assert frames["items"]["category"].notna().all()
    return frames


SALES_HEADERS = {
    "sku": "商品编码",
    "location": "门店",
    "date": "日期",
    "quantity": "销量",
    "returns": "退货",
    "revenue": "销售额",
}
ITEM_HEADERS = {"sku": "物料编码", "name": "物料名称", "name_en": "英文名称", "category": "品类"}


def _write_drop(folder: Path, frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The canonical tables as an ERP export would drop them: sales in two GBK CSV files and items
    in a GB18030 CSV (Chinese headers, names and categories), locations as UTF-8-with-BOM CSV
    (Chinese names), stock as xlsx (a Chinese sheet name), lead times as Parquet, lanes as UTF-8 CSV."""
    folder.mkdir()
    sales = frames["sales"].rename(columns=SALES_HEADERS).assign(日期=lambda f: f["日期"].dt.strftime("%Y-%m-%d"))
    half = len(sales) // 2
    sales.iloc[:half].to_csv(folder / "sales_1.csv", index=False, encoding="gbk")
    sales.iloc[half:].to_csv(folder / "sales_2.csv", index=False, encoding="gbk")
    frames["items"].rename(columns=ITEM_HEADERS).to_csv(folder / "items.csv", index=False, encoding="gb18030")
    frames["locations"].to_csv(folder / "locations.csv", index=False, encoding="utf-8-sig")
    frames["stock"].to_excel(folder / "stock.xlsx", index=False, sheet_name="库存")
    frames["lead_times"].to_parquet(folder / "lead_times.parquet", index=False)
    frames["lanes"].to_csv(folder / "lanes.csv", index=False, encoding="utf-8")
    for gbk in ("sales_1.csv", "items.csv"):  # really GBK bytes, not UTF-8
        with pytest.raises(UnicodeDecodeError):
            (folder / gbk).read_bytes().decode("utf-8")
    assert (folder / "locations.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    return {
        "sales": {"pattern": "sales_*.csv", "columns": dict(SALES_HEADERS)},
        "items": {"pattern": "items.csv", "columns": dict(ITEM_HEADERS)},
        "locations": {"pattern": "locations.csv"},
        "stock": {"pattern": "stock.xlsx", "sheet": "库存"},
        "lead_times": {"pattern": "lead_times.parquet"},
        "lanes": {"pattern": "lanes.csv"},
    }


def test_file_drop_source_end_to_end(tmp_path, pg_url, airflow_db, monkeypatch):
    frames = _demo_canonical(tmp_path)
    mapping = _write_drop(tmp_path / "drop", frames)
    _nightly(tmp_path, {"kind": "files", "folder": str(tmp_path / "drop"), "files": mapping}, pg_url, monkeypatch)

    pub = _run_ok(LOGICAL, pg_url)

    # the files give exactly the canonical tables the demo's SQL profile extracts
    run_dir = tmp_path / "staging" / RUN_DATE.isoformat()
    for name in SOURCE_TABLES:
        got = contract.canonical_order(pd.read_parquet(run_dir / f"extract_{name}.parquet"), name)
        want = contract.canonical_order(frames[name], name)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), obj=name)
    _check_reconciliation(_reconciliation(tmp_path), frames)
    _check_outputs(pub, frames["sales"], frames["stock"])
    # Chinese categories from the GB18030 file reach the published tables byte for byte
    items = frames["items"].set_index("sku")
    assert _utf8(pub["inventory_policy"]["category"]) == _utf8(items.loc[pub["inventory_policy"]["sku"], "category"])
    assert _utf8(set(pub["kpis"]["category"]) - {"*"}) <= _utf8(CATEGORY_ZH.values())
    # names (GB18030 items, UTF-8-BOM locations) reach the planners' zh-CN report
    html = next((tmp_path / "output" / RUN_DATE.isoformat()).glob("report_*zh*.html")).read_text(encoding="utf-8")
    alerted = pub["alerts"]
    assert all(n in html for n in items.loc[alerted["sku"].unique(), "name"])
    names = frames["locations"].set_index("location")["name"]
    assert all(n in html for n in names[alerted["location"].unique()])


# --------------------------------------------------------------------------------------------
# Odoo on PostgreSQL
# --------------------------------------------------------------------------------------------


def _expected(erp: Erp, sales: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {
        "items": erp.items,
        "locations": erp.locations,
        "lanes": erp.lanes,
        "sales": sales,
        "stock": erp.stock,
        "lead_times": erp.lead_times,
    }


def test_odoo_source_end_to_end_twice(tmp_path, source_pg_url, pg_url, airflow_db, monkeypatch):
    erp = small_erp(RUN_DATE, days=HISTORY_DAYS + 10)
    load_odoo(source_pg_url, erp)
    files = side_drops(tmp_path / "drop", erp.lanes, erp.lead_times)
    source = {"url": source_pg_url, "profile": "odoo", "folder": str(tmp_path / "drop"), "files": files}
    _nightly(tmp_path, source, pg_url, monkeypatch)

    first = _run_ok(LOGICAL, pg_url)

    sales = erp.sales_window(HISTORY_DAYS)
    _check_reconciliation(_reconciliation(tmp_path), _expected(erp, sales))
    _check_outputs(first, sales, erp.stock)
    _check_rebalancing(first)
    run_dir = tmp_path / "staging" / RUN_DATE.isoformat()
    items = pd.read_parquet(run_dir / "items.parquet").set_index("sku")  # validated items
    want = erp.items.set_index("sku")
    # zh_CN translations byte for byte; odoo:2 has none: the en_US name
    assert list(_utf8(items.loc[want.index, "name"])) == list(_utf8(want["name"].fillna(want["name_en"])))
    assert _utf8(first["inventory_policy"]["category"]) <= _utf8(f"全部 / {c}" for c in want["category"])
    assert "全部 / 乳品".encode() in _utf8(first["inventory_policy"]["category"])
    staged_sales = pd.read_parquet(run_dir / "extract_sales.parquet")
    merged = staged_sales.merge(sales, on=["sku", "location", "date"], suffixes=("", "_want"), validate="1:1")
    assert len(merged) == len(sales) == len(staged_sales)  # evening UTC moves land on the Shanghai business date
    assert (merged["quantity"] == merged["quantity_want"]).all() and (merged["returns"] == merged["returns_want"]).all()

    # the same date again: sales now re-read from the published watermark, identical published rows
    second = _run_ok(LOGICAL.add(minutes=1), pg_url)
    rec = _reconciliation(tmp_path)
    assert rec["sales"]["read_plan"].startswith("watermark")
    assert rec["sales"]["staged_window_rows"] == len(sales)
    for name in contract.OUTPUT_TABLES:
        pd.testing.assert_frame_equal(first[name], second[name], obj=name)


# --------------------------------------------------------------------------------------------
# Generic profile on MariaDB
# --------------------------------------------------------------------------------------------


def test_generic_source_end_to_end(tmp_path, mysql_url, pg_url, airflow_db, monkeypatch):
    erp = small_erp(RUN_DATE, days=HISTORY_DAYS + 10, seed=11)
    load_generic(mysql_url, erp)
    _nightly(tmp_path, {"url": mysql_url, "profile": "generic", "tables": GENERIC_TABLES}, pg_url, monkeypatch)

    pub = _run_ok(LOGICAL, pg_url)

    window = erp.sales_window(HISTORY_DAYS)
    sales = window[window["quantity"] > 0]  # the source holds net sale lines, no returns
    _check_reconciliation(_reconciliation(tmp_path), _expected(erp, sales))
    _check_outputs(pub, sales, erp.stock)
    _check_rebalancing(pub)
    items = pd.read_parquet(tmp_path / "staging" / RUN_DATE.isoformat() / "items.parquet").set_index("sku")
    want = erp.items.set_index("sku")
    assert list(_utf8(items.loc[want.index, "name"])) == list(_utf8(want["name"].fillna(want["name_en"])))
    assert _utf8(pub["inventory_policy"]["category"]) == _utf8(want.loc[pub["inventory_policy"]["sku"], "category"])
