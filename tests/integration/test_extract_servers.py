"""Extraction against real servers: the Odoo profile on an Odoo-shaped PostgreSQL database, the
generic profile on MariaDB, the demo profile on both (COPY and server-side cursor paths, incremental
second night), and missing tables/columns named on each server."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipelines import contract, reporting
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.demo.source import DEMO_END_DATE, generate
from pipelines.extract import ExtractError, extract_stage
from tests.fixtures_erp import GENERIC_DDL, GENERIC_TABLES, ODOO_DDL, exec_sql, exec_statements, side_drops

pytestmark = pytest.mark.integration

RUN = date(2025, 3, 12)  # sales through 2025-03-11, stock dated 2025-03-12

ODOO_LANES = pd.DataFrame(
    {
        "from_location": ["SHDC"],
        "to_location": ["HZ01"],
        "cost_per_unit": [0.2],
        "fixed_cost_per_shipment": [50.0],
        "transit_days": [1],
        "min_units": [12],
    }
)
ODOO_LEAD_TIMES = pd.DataFrame(
    {
        "sku": ["GT500"],
        "location": ["HZ01"],
        "lead_time_days": [2],
        "lead_time_std_days": [0.5],
        "review_period_days": [7],
    }
)


def _files(folder: Path) -> dict:
    return side_drops(folder, ODOO_LANES, ODOO_LEAD_TIMES)


def _cfg(tmp: Path, url: str, **source):
    return load_config(
        overrides={
            "source": {"url": url, "retries": 0, **source},
            "reporting": {"url": f"sqlite:///{tmp / 'reporting.sqlite'}"},
            "staging_dir": str(tmp / "staging"),
            "output_dir": str(tmp / "out"),
            "forecast": {"history_days": 30},
            "timezone": "Asia/Shanghai",
        }
    )


def _staged(ctx: RunContext, name: str) -> pd.DataFrame:
    df = pd.read_parquet(ctx.run_dir / f"extract_{name}.parquet")
    return contract.canonical_order(df, name).reset_index(drop=True)


def test_odoo_profile_on_postgresql(pg_url, tmp_path):
    exec_sql(pg_url, ODOO_DDL)
    cfg = _cfg(tmp_path, pg_url, profile="odoo", folder=str(tmp_path / "drop"), files=_files(tmp_path / "drop"))
    ctx = RunContext(cfg, RUN)
    res = extract_stage(ctx)
    items = _staged(ctx, "items")
    assert items[["sku", "name", "name_en", "category", "unit_cost", "active"]].values.tolist() == [
        ["GT500", "绿茶 500ml", "Green tea 500ml", "All / Tea", 1.2, True],
        ["OLD", "旧产品", "Old product", "All / Tea", 0.0, False],
        ["odoo:2", "Oolong tea", "Oolong tea", "All / Tea", 2.5, True],  # no zh_CN translation: en_US
    ]
    locs = _staged(ctx, "locations")
    assert locs[["location", "name", "type", "region"]].values.tolist() == [
        ["HZ01", "杭州店", "store", "杭州"],
        ["SHDC", "上海配送中心", "dc", "上海市"],
    ]
    sales = _staged(ctx, "sales")
    # 2025-03-09 17:30 UTC is 2025-03-10 01:30 in Shanghai; 2 dozen = 24 units at 72 -> 3/unit
    assert sales[["sku", "location", "date", "quantity", "returns", "revenue"]].values.tolist() == [
        ["GT500", "HZ01", pd.Timestamp("2025-03-10"), 24.0, 0.0, 72.0],
        ["GT500", "HZ01", pd.Timestamp("2025-03-11"), 0.0, 2.0, -6.0],
        ["odoo:2", "HZ01", pd.Timestamp("2025-03-10"), 3.0, 0.0, 18.0],
    ]
    stock = _staged(ctx, "stock")
    assert stock[["sku", "location", "lot", "on_hand", "reserved"]].values.tolist() == [
        ["GT500", "HZ01", "", 12.0, 2.0],
        ["GT500", "SHDC", "LOT-A", 120.0, 10.0],
        ["odoo:2", "HZ01", "", 5.0, 0.0],
    ]
    assert stock["snapshot_date"].eq(pd.Timestamp(RUN)).all() and stock["expiry_date"].iloc[1] == pd.Timestamp(
        "2025-06-30"
    )
    assert _staged(ctx, "lead_times")[["sku", "location", "lead_time_days"]].values.tolist() == [["GT500", "HZ01", 2.0]]
    assert res.counts["lanes"] == 1
    src = _staged(ctx, "sourcing")
    cols = ["sku", "location", "supplier", "lead_time_days", "moq", "order_multiple", "unit_cost", "fixed_order_cost"]
    assert src[cols].values.tolist() == [
        ["GT500", "*", "福建茶业有限公司", 7.0, 12.0, 1.0, 1.15, 0.0],  # the variant's line, no ref: the name
        ["odoo:2", "*", "福建茶业有限公司", 12.0, 6.0, 1.0, 2.4, 0.0],  # the first line expired on 2025-01-31
    ]
    po = _staged(ctx, "purchase_orders")
    assert po[["po_no", "sku", "location", "supplier", "open_qty", "order_date", "expected_date"]].values.tolist() == [
        ["P00001", "GT500", "SHDC", "V-TEA", 60.0, pd.Timestamp("2025-03-05"), pd.Timestamp("2025-03-15")],
        ["P00003", "odoo:2", "HZ01", "福建茶业有限公司", 12.0, pd.Timestamp("2025-03-07"), pd.Timestamp("2025-03-11")],
    ]
    rec = {r["table"]: r for r in ctx.read_json("reconciliation")}
    assert set(rec) == {"items", "locations", "lanes", "sales", "stock", "lead_times", "sourcing", "purchase_orders"}
    assert all(r["ok"] for r in rec.values())
    assert rec["stock"]["source_quantity"] == 137 and rec["sales"]["source_quantity"] == 27
    wm = ctx.read_json("watermarks")
    assert wm[0]["table_name"] == "stock_move" and wm[0]["watermark"] == "2025-03-11"
    assert wm[0]["source"].startswith("odoo: postgresql at 127.0.0.1")


def test_odoo_missing_column_is_named(pg_url, tmp_path):
    exec_sql(pg_url, ODOO_DDL + "alter table stock_move drop column product_qty;")
    cfg = _cfg(tmp_path, pg_url, profile="odoo", folder=str(tmp_path / "drop"), files=_files(tmp_path / "drop"))
    with pytest.raises(ExtractError) as err:
        extract_stage(RunContext(cfg, RUN))
    assert str(err.value) == (
        "source profile 'odoo', query sales.sql (table sales): source table 'stock_move' has no column 'product_qty'"
    )


def test_generic_profile_on_mariadb(mysql_url, tmp_path):
    exec_statements(mysql_url, GENERIC_DDL)
    ctx = RunContext(_cfg(tmp_path, mysql_url, profile="generic", tables=GENERIC_TABLES), RUN)
    extract_stage(ctx)
    items = _staged(ctx, "items")
    assert items[["sku", "name", "unit_cost", "active"]].values.tolist() == [
        ["A1", "绿茶", 1.2, True],
        ["B2", "乌龙茶", 2.0, False],
    ]
    sales = _staged(ctx, "sales")
    assert sales[["sku", "date", "quantity", "revenue"]].values.tolist()[0] == [
        "A1",
        pd.Timestamp("2025-03-10"),
        5.0,
        17.5,
    ]
    lead = _staged(ctx, "lead_times")
    assert lead["lead_time_days"].tolist()[0] == 2.0 and lead["lead_time_days"].isna().sum() == 1  # 'abc' unreadable
    fails = pd.read_parquet(ctx.run_dir / "castfail_lead_times.parquet")
    assert fails[["column_name", "value"]].values.tolist() == [["lead_time_days", "abc"]]
    assert json.loads(fails["row_json"].iloc[0])["sku"] == "B2"
    assert len(sales) == 2  # 2025-01-01 is outside the 30-day window
    stock = _staged(ctx, "stock")
    assert stock[["location", "on_hand", "reserved"]].values.tolist() == [["S1", 4.0, 1.0], ["W1", 40.0, 0.0]]
    assert stock["snapshot_date"].eq(pd.Timestamp(RUN)).all()
    assert _staged(ctx, "lanes")["capacity"].isna().all()
    rec = {r["table"]: r for r in ctx.read_json("reconciliation")}
    assert all(r["ok"] for r in rec.values()) and rec["sales"]["source_quantity"] == 6.0


TRANSFER_STATUS_DDL = """
create table `Transfer Exec` (
  `DocNo` varchar(40), `Item` varchar(20), `State` varchar(20), `ShipQty` varchar(20), `ShipDay` date,
  `RecvQty` double, `RecvDay` date
);
insert into `Transfer Exec` values
  ('TB20250311-0a1b2c3d', 'A1', 'shipped', '4', '2025-03-11', null, null),
  ('TB20250310-9f8e7d6c', 'A1', 'received', '6', '2025-03-10', 6, '2025-03-11'),
  ('TB20250310-9f8e7d6c', 'B2', 'received', 'x', '2025-03-10', 2, '2025-03-11'),
  ('TB20250309-11112222', 'B2', 'cancelled', null, null, null, null);
"""
TRANSFER_STATUS_TABLE = {
    "table": "Transfer Exec",
    "columns": {
        "order_no": "DocNo",
        "sku": "Item",
        "status": "State",
        "shipped_qty": "ShipQty",
        "shipped_date": "ShipDay",
        "received_qty": "RecvQty",
        "received_date": "RecvDay",
    },
}


def test_generic_profile_reads_the_transfer_status_on_mariadb(mysql_url, tmp_path):
    """The ERP's execution of the exported orders comes back through the generic profile's mapping;
    an unreadable quantity is kept as a cast failure with its row, the rest of the rows staged."""
    exec_statements(mysql_url, GENERIC_DDL + TRANSFER_STATUS_DDL)
    tables = {**GENERIC_TABLES, "transfer_status": TRANSFER_STATUS_TABLE}
    ctx = RunContext(_cfg(tmp_path, mysql_url, profile="generic", tables=tables), RUN)
    res = extract_stage(ctx)
    assert res.counts["transfer_status"] == 4
    st = _staged(ctx, "transfer_status")[["order_no", "sku", "status", "shipped_qty", "received_qty"]]
    assert st.astype(object).where(st.notna(), None).values.tolist() == [
        ["TB20250309-11112222", "B2", "cancelled", None, None],
        ["TB20250310-9f8e7d6c", "A1", "received", 6.0, 6.0],
        ["TB20250310-9f8e7d6c", "B2", "received", None, 2.0],
        ["TB20250311-0a1b2c3d", "A1", "shipped", 4.0, None],
    ]
    fails = pd.read_parquet(ctx.run_dir / "castfail_transfer_status.parquet")
    assert fails[["column_name", "value"]].values.tolist() == [["shipped_qty", "x"]]
    rec = {r["table"]: r for r in ctx.read_json("reconciliation")}
    assert rec["transfer_status"]["ok"]


def test_file_drop_transfer_status_in_gbk_next_to_a_sql_source(tmp_path):
    """The ERP's status export dropped as a GBK CSV with Chinese headers and slashed dates, read
    beside a SQL source (the file entry takes the table's place)."""
    drop = tmp_path / "drop"
    drop.mkdir()
    pd.DataFrame(
        {
            "调拨单号": ["TB20250311-0a1b2c3d", "TB20250311-0a1b2c3d"],
            "物料": ["A1", "B2"],
            "状态": ["received", "received"],
            "发货数量": [4, 3],
            "发货日期": ["2025/03/10", "2025/03/10"],
            "收货数量": [4, 2],
            "收货日期": ["2025/03/11", "2025/03/11"],
        }
    ).to_csv(drop / "调拨执行_20250312.csv", index=False, encoding="gbk")
    files = {
        "transfer_status": {
            "pattern": "调拨执行_*.csv",
            "columns": {
                "order_no": "调拨单号",
                "sku": "物料",
                "status": "状态",
                "shipped_qty": "发货数量",
                "shipped_date": "发货日期",
                "received_qty": "收货数量",
                "received_date": "收货日期",
            },
        }
    }
    erp = tmp_path / "demo.sqlite"
    generate(f"sqlite:///{erp}", seed=3, n_skus=10, n_locations=3, days=60)
    cfg = _cfg(tmp_path, f"sqlite:///{erp}", folder=str(drop), files=files)
    ctx = RunContext(cfg, DEMO_END_DATE + timedelta(days=1))
    res = extract_stage(ctx)
    assert res.counts["transfer_status"] == 2  # from the drop, not the demo ERP's own requests
    st = _staged(ctx, "transfer_status")
    assert st["received_qty"].tolist() == [4.0, 2.0]
    assert st["received_date"].eq(pd.Timestamp("2025-03-11")).all()


def test_generic_missing_column_on_mariadb(mysql_url, tmp_path):
    exec_statements(mysql_url, GENERIC_DDL)
    exec_sql(mysql_url, "alter table `OnHand` drop column `Committed`")
    with pytest.raises(ExtractError) as err:
        extract_stage(RunContext(_cfg(tmp_path, mysql_url, profile="generic", tables=GENERIC_TABLES), RUN))
    assert str(err.value) == (
        "source profile 'generic', query generated from source.tables.stock (table stock):"
        " source table 'OnHand' has no column 'Committed'"
    )


@pytest.mark.parametrize("server", ["pg_url", "mysql_url"])
def test_demo_profile_two_nights_incremental(server, request, tmp_path):
    url = request.getfixturevalue(server)
    generate(url, n_skus=10, n_locations=3, days=60)
    cfg = _cfg(tmp_path, url, lookback_days=2)
    first = RunContext(cfg, DEMO_END_DATE)
    extract_stage(first)
    rep = cfg.reporting_url()
    reporting.migrate(rep)
    with reporting.engine_for(rep).begin() as conn:
        for w in first.read_json("watermarks"):
            reporting.set_watermark(conn, w["source"], w["table_name"], w["watermark"], first.run_date)
    second = RunContext(cfg, DEMO_END_DATE + timedelta(days=1))
    extract_stage(second)
    rec = {r["table"]: r for r in second.read_json("reconciliation")}
    assert rec["sales"]["window"] == [(DEMO_END_DATE - timedelta(days=2)).isoformat(), DEMO_END_DATE.isoformat()]
    assert all(r["ok"] for r in rec.values())
    full_cfg = _cfg(tmp_path / "full", url, full_refresh=True)
    full = RunContext(full_cfg, DEMO_END_DATE + timedelta(days=1))
    extract_stage(full)
    for name in ("sales", "stock", "items", "locations"):
        pd.testing.assert_frame_equal(_staged(second, name), _staged(full, name), obj=name)
    items = _staged(full, "items")
    assert items["name"].str.contains(r"[\u4e00-\u9fff]").all()  # Chinese names intact through COPY / cursor
    shutil.rmtree(tmp_path / "full")


def test_file_drops_sourcing_and_purchase_orders_in_gbk_next_to_a_sql_source(tmp_path):
    """A buyer's supplier list and open-order export dropped as GBK CSVs with Chinese headers (a
    supplier per item for every location, one location's own row; slashed dates), read beside a
    SQL source instead of its own purchasing tables; the contract's defaults fill what the files lack."""
    drop = tmp_path / "drop"
    drop.mkdir()
    pd.DataFrame(
        {
            "物料": ["A1", "A1", "B2"],
            "仓库": ["*", "WH-SH01", "*"],
            "供应商": ["华东乳业", "上海直供", "南方饮料"],
            "交期天数": [5, 9, None],
            "起订量": [24, 48, 1],
            "倍数": [12, 12, 1],
            "单价": [3.2, 3.0, None],
        }
    ).to_csv(drop / "供应商_20250312.csv", index=False, encoding="gbk")
    pd.DataFrame(
        {
            "采购单号": ["PO-1", "PO-2"],
            "物料": ["A1", "B2"],
            "仓库": ["WH-SH01", "ST-SH02"],
            "未到数量": [36, 10],
            "预计到货": ["2025/03/15", "2025/03/10"],
        }
    ).to_csv(drop / "采购在途_20250312.csv", index=False, encoding="gbk")
    files = {
        "sourcing": {
            "pattern": "供应商_*.csv",
            "columns": {
                "sku": "物料",
                "location": "仓库",
                "supplier": "供应商",
                "lead_time_days": "交期天数",
                "moq": "起订量",
                "order_multiple": "倍数",
                "unit_cost": "单价",
            },
            "defaults": {"fixed_order_cost": 0},
        },
        "purchase_orders": {
            "pattern": "采购在途_*.csv",
            "columns": {
                "po_no": "采购单号",
                "sku": "物料",
                "location": "仓库",
                "open_qty": "未到数量",
                "expected_date": "预计到货",
            },
        },
    }
    erp = tmp_path / "demo.sqlite"
    generate(f"sqlite:///{erp}", seed=3, n_skus=10, n_locations=3, days=60)
    cfg = _cfg(tmp_path, f"sqlite:///{erp}", folder=str(drop), files=files)
    ctx = RunContext(cfg, DEMO_END_DATE + timedelta(days=1))
    res = extract_stage(ctx)
    assert res.counts["sourcing"] == 3 and res.counts["purchase_orders"] == 2  # the drops, not the ERP's tables
    src = _staged(ctx, "sourcing")
    assert src[["sku", "location", "supplier", "moq", "fixed_order_cost"]].values.tolist() == [
        ["A1", "*", "华东乳业", 24.0, 0.0],
        ["A1", "WH-SH01", "上海直供", 48.0, 0.0],
        ["B2", "*", "南方饮料", 1.0, 0.0],
    ]
    assert src["lead_time_days"].isna().tolist() == [False, False, True] and pd.isna(src["unit_cost"].iloc[2])
    po = _staged(ctx, "purchase_orders")
    assert po["expected_date"].tolist() == [pd.Timestamp("2025-03-15"), pd.Timestamp("2025-03-10")]
    assert po["supplier"].isna().all() and po["open_qty"].tolist() == [36.0, 10.0]
