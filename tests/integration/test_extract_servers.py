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
import sqlalchemy as sa

from pipelines import contract, reporting
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.demo_source import DEMO_END_DATE, generate
from pipelines.extract import ExtractError, extract_stage

pytestmark = pytest.mark.integration

RUN = date(2025, 3, 12)  # sales through 2025-03-11, stock dated 2025-03-12

ODOO_DDL = """
create table product_category (id serial primary key, name varchar, complete_name varchar);
create table product_template (id serial primary key, name jsonb not null, categ_id int, list_price numeric,
    active boolean default true, sale_ok boolean default true);
create table product_product (id serial primary key, default_code varchar, product_tmpl_id int not null,
    active boolean default true);
create table ir_property (id serial primary key, name varchar, res_id varchar, company_id int, fields_id int,
    value_float double precision, type varchar);
create table res_country_state (id serial primary key, name varchar);
create table res_partner (id serial primary key, name varchar, city varchar, state_id int);
create table stock_warehouse (id serial primary key, name varchar not null, code varchar(5) not null,
    active boolean default true, partner_id int);
create table stock_wh_resupply_table (supplied_wh_id int, supplier_wh_id int);
create table stock_location (id serial primary key, name varchar, usage varchar, warehouse_id int);
create table stock_lot (id serial primary key, name varchar, product_id int, expiration_date timestamp);
create table stock_quant (id serial primary key, product_id int, location_id int, lot_id int, quantity numeric,
    reserved_quantity numeric default 0);
create table uom_uom (id serial primary key, name jsonb, factor numeric);
create table sale_order (id serial primary key, name varchar, warehouse_id int, state varchar);
create table sale_order_line (id serial primary key, order_id int, product_id int, product_uom_qty numeric,
    product_uom int, price_subtotal numeric);
create table stock_move (id serial primary key, product_id int, product_qty numeric, product_uom_qty numeric,
    location_id int, location_dest_id int, state varchar, date timestamp, sale_line_id int);

insert into product_category (id, name, complete_name) values (1, 'Tea', 'All / Tea');
insert into product_template (id, name, categ_id, list_price) values
    (1, '{"en_US": "Green tea 500ml", "zh_CN": "绿茶 500ml"}', 1, 3.5),
    (2, '{"en_US": "Oolong tea"}', 1, 6),
    (3, '{"en_US": "Old product", "zh_CN": "旧产品"}', 1, 1);
insert into product_product (id, default_code, product_tmpl_id, active) values
    (1, 'GT500', 1, true), (2, null, 2, true), (3, 'OLD', 3, false);
insert into ir_property (name, res_id, value_float, type) values
    ('standard_price', 'product.product,1', 1.2, 'float'), ('standard_price', 'product.product,2', 2.5, 'float');
insert into res_country_state (id, name) values (1, '上海市');
insert into res_partner (id, name, city, state_id) values (1, 'DC', 'Shanghai', 1), (2, 'Store', '杭州', null);
insert into stock_warehouse (id, name, code, partner_id) values (1, '上海配送中心', 'SHDC', 1), (2, '杭州店', 'HZ01', 2);
insert into stock_wh_resupply_table values (2, 1);
insert into stock_location (id, name, usage, warehouse_id) values
    (1, 'SHDC/Stock', 'internal', 1), (2, 'HZ01/Stock', 'internal', 2), (3, 'Customers', 'customer', null),
    (4, 'SHDC/Stock/Shelf 1', 'internal', 1), (5, 'Vendors', 'supplier', null);
insert into stock_lot (id, name, product_id, expiration_date) values (1, 'LOT-A', 1, '2025-06-30 00:00:00');
insert into stock_quant (product_id, location_id, lot_id, quantity, reserved_quantity) values
    (1, 1, 1, 100, 10), (1, 4, 1, 20, 0), (1, 2, null, 12, 2), (2, 2, null, 5, 0), (2, 3, null, -3, 0);
insert into uom_uom (id, name, factor) values (1, '{"en_US": "Units"}', 1), (2, '{"en_US": "Dozens"}', 0.0833333333333333);
insert into sale_order (id, name, warehouse_id, state) values (1, 'S0001', 2, 'sale');
insert into sale_order_line (id, order_id, product_id, product_uom_qty, product_uom, price_subtotal) values
    (1, 1, 1, 2, 2, 72), (2, 1, 2, 3, 1, 18);
insert into stock_move (product_id, product_qty, product_uom_qty, location_id, location_dest_id, state, date, sale_line_id) values
    (1, 24, 2, 2, 3, 'done', '2025-03-09 17:30:00', 1),
    (2, 3, 3, 2, 3, 'done', '2025-03-10 03:00:00', 2),
    (1, 2, 2, 3, 2, 'done', '2025-03-11 02:00:00', 1),
    (1, 50, 50, 2, 3, 'cancel', '2025-03-10 03:00:00', null),
    (1, 40, 40, 1, 2, 'done', '2025-03-10 03:00:00', null),
    (2, 9, 9, 2, 3, 'done', '2025-03-12 01:00:00', null);
"""


def _files(folder: Path) -> dict:
    folder.mkdir()
    (folder / "lanes.csv").write_bytes(
        "from,to,unit_cost,trip_cost,days,min\nSHDC,HZ01,0.2,50,1,12\n".encode("utf-8-sig")
    )
    (folder / "lead_times.csv").write_bytes("sku,仓库,天数,标准差,周期\nGT500,HZ01,2,0.5,7\n".encode("gb18030"))
    return {
        "lanes": {
            "pattern": "lanes.csv",
            "columns": {
                "from_location": "from",
                "to_location": "to",
                "cost_per_unit": "unit_cost",
                "fixed_cost_per_shipment": "trip_cost",
                "transit_days": "days",
                "min_units": "min",
            },
        },
        "lead_times": {
            "pattern": "lead_times.csv",
            "columns": {
                "location": "仓库",
                "lead_time_days": "天数",
                "lead_time_std_days": "标准差",
                "review_period_days": "周期",
            },
        },
    }


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


def _exec(url: str, sql: str) -> None:
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.exec_driver_sql(sql)
    eng.dispose()


def test_odoo_profile_on_postgresql(pg_url, tmp_path):
    _exec(pg_url, ODOO_DDL)
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
    rec = {r["table"]: r for r in ctx.read_json("reconciliation")}
    assert set(rec) == {"items", "locations", "lanes", "sales", "stock", "lead_times"} and all(
        r["ok"] for r in rec.values()
    )
    assert rec["stock"]["source_quantity"] == 137 and rec["sales"]["source_quantity"] == 27
    wm = ctx.read_json("watermarks")
    assert wm[0]["table_name"] == "stock_move" and wm[0]["watermark"] == "2025-03-11"
    assert wm[0]["source"].startswith("odoo: postgresql at 127.0.0.1")


def test_odoo_missing_column_is_named(pg_url, tmp_path):
    _exec(pg_url, ODOO_DDL + "alter table stock_move drop column product_qty;")
    cfg = _cfg(tmp_path, pg_url, profile="odoo", folder=str(tmp_path / "drop"), files=_files(tmp_path / "drop"))
    with pytest.raises(ExtractError) as err:
        extract_stage(RunContext(cfg, RUN))
    assert str(err.value) == (
        "source profile 'odoo', query sales.sql (table sales): source table 'stock_move' has no column 'product_qty'"
    )


GENERIC_DDL = """
create table `Item Master` (`ItemCode` varchar(20), `Description` varchar(100), `Grp` varchar(10), `Cost` decimal(12,4),
    `Price` decimal(12,2), `Active` varchar(1));
create table `Warehouses` (`WhsCode` varchar(10), `WhsName` varchar(50), `Kind` varchar(10), `Region` varchar(20));
create table `Routes` (`From` varchar(10), `To` varchar(10), `Cost` double, `Trip` double, `Days` int, `MinQ` int, `MaxQ` int);
create table `Sales Lines` (`ItemCode` varchar(20), `WhsCode` varchar(10), `DocDate` datetime, `Qty` double,
    `LineTotal` decimal(14,2));
create table `OnHand` (`ItemCode` varchar(20), `WhsCode` varchar(10), `Qty` double, `Committed` double);
create table `LeadTimes` (`ItemCode` varchar(20), `WhsCode` varchar(10), `Days` varchar(10));
insert into `Item Master` values ('A1', '绿茶', 'TEA', 1.2, 3.5, 'Y'), ('B2', '乌龙茶', 'TEA', 2, 6, 'N');
insert into `Warehouses` values ('W1', '上海仓', 'dc', '华东'), ('S1', '杭州店', 'store', '华东');
insert into `Routes` values ('W1', 'S1', 0.1, 30, 1, 10, null);
insert into `Sales Lines` values ('A1', 'S1', '2025-03-10 09:00:00', '2', 7), ('A1', 'S1', '2025-03-10 18:00:00', '3', 10.5),
    ('B2', 'S1', '2025-03-11 10:00:00', 1, 6), ('A1', 'S1', '2025-01-01 10:00:00', '9', 1);
insert into `OnHand` values ('A1', 'S1', 4, 1), ('A1', 'W1', 40, 0);
insert into `LeadTimes` values ('A1', 'S1', '2'), ('B2', 'S1', 'abc');
"""

GENERIC_TABLES = {
    "items": {
        "table": "Item Master",
        "columns": {
            "sku": "ItemCode",
            "name": "Description",
            "category": "Grp",
            "unit_cost": "Cost",
            "unit_price": "Price",
            "active": "Active",
        },
        "defaults": {"pack_size": 1},
    },
    "locations": {
        "table": "Warehouses",
        "columns": {"location": "WhsCode", "name": "WhsName", "type": "Kind", "region": "Region"},
        "defaults": {"can_ship": True, "can_receive": True, "active": True},
    },
    "lanes": {
        "table": "Routes",
        "columns": {
            "from_location": "From",
            "to_location": "To",
            "cost_per_unit": "Cost",
            "fixed_cost_per_shipment": "Trip",
            "transit_days": "Days",
            "min_units": "MinQ",
            "capacity": "MaxQ",
        },
    },
    "sales": {
        "table": "Sales Lines",
        "columns": {
            "sku": "ItemCode",
            "location": "WhsCode",
            "date": "DocDate",
            "quantity": "Qty",
            "revenue": "LineTotal",
        },
        "defaults": {"returns": 0},
    },
    "stock": {
        "table": "OnHand",
        "columns": {"sku": "ItemCode", "location": "WhsCode", "on_hand": "Qty", "reserved": "Committed"},
        "defaults": {"lot": "", "in_transit": 0},
    },
    "lead_times": {
        "table": "LeadTimes",
        "columns": {"sku": "ItemCode", "location": "WhsCode", "lead_time_days": "Days"},
        "defaults": {"lead_time_std_days": 1, "review_period_days": 7},
    },
}


def test_generic_profile_on_mariadb(mysql_url, tmp_path):
    for stmt in GENERIC_DDL.strip().split(";\n"):
        _exec(mysql_url, stmt)
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


def test_generic_missing_column_on_mariadb(mysql_url, tmp_path):
    for stmt in GENERIC_DDL.strip().split(";\n"):
        _exec(mysql_url, stmt)
    _exec(mysql_url, "alter table `OnHand` drop column `Committed`")
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
