"""ERP fixtures shared by the extraction tests on real servers and the end-to-end DAG tests.

Two kinds of fixture:

- the small hand-written ones (``ODOO_DDL``, ``GENERIC_DDL``): a few rows each, with every awkward
  case the profiles handle (translations, units of measure, time zones, cancelled moves, document
  lines, unreadable values). ``tests/integration/test_extract_servers.py`` checks them row by row.
- :func:`small_erp`: a few products at three locations with months of daily sales, written into an
  Odoo-shaped PostgreSQL database (:func:`load_odoo`) or a generic-profile MariaDB database
  (:func:`load_generic`), enough history for the forecast and policy stages of a nightly run. The
  :class:`Erp` frames are the expected canonical tables (daily sales per business date) the tests
  compare the pipeline's reconciliation and outputs with.

Both share the schemas (``ODOO_SCHEMA``, ``GENERIC_SCHEMA``) and the side file drops that profiles
without lanes or lead times need (:func:`side_drops`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

# --------------------------------------------------------------------------------------------
# Database helpers
# --------------------------------------------------------------------------------------------


def exec_sql(url: str, sql: str) -> None:
    """Run ``sql`` as one driver-level script (PostgreSQL accepts several statements at once)."""
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.exec_driver_sql(sql)
    eng.dispose()


def exec_statements(url: str, script: str) -> None:
    """Run a ``;``-separated script one statement at a time (MariaDB takes one per call)."""
    for stmt in script.strip().rstrip(";").split(";\n"):
        if stmt.strip():
            exec_sql(url, stmt)


def _insert(conn: sa.Connection, table: str, quote: str, frame: pd.DataFrame) -> None:
    """executemany of ``frame``'s rows into ``table`` (identifiers quoted with ``quote``)."""
    if frame.empty:
        return
    cols = list(frame.columns)
    params = [f"p{i}" for i in range(len(cols))]
    sql = (
        f"insert into {quote}{table}{quote} ({', '.join(f'{quote}{c}{quote}' for c in cols)})"
        f" values ({', '.join(':' + p for p in params)})"
    )
    rows = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    conn.execute(sa.text(sql), [dict(zip(params, r, strict=True)) for r in rows])


# --------------------------------------------------------------------------------------------
# Odoo (PostgreSQL)
# --------------------------------------------------------------------------------------------

ODOO_SCHEMA = """
create table product_category (id serial primary key, name varchar, complete_name varchar);
create table product_template (id serial primary key, name jsonb not null, categ_id int, list_price numeric,
    active boolean default true, sale_ok boolean default true);
create table product_product (id serial primary key, default_code varchar, product_tmpl_id int not null,
    active boolean default true);
create table ir_property (id serial primary key, name varchar, res_id varchar, company_id int, fields_id int,
    value_float double precision, type varchar);
create table res_country_state (id serial primary key, name varchar);
create table res_partner (id serial primary key, name varchar, city varchar, state_id int, ref varchar);
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
create table product_supplierinfo (id serial primary key, partner_id int not null, product_tmpl_id int,
    product_id int, min_qty numeric default 0, price numeric default 0, delay int default 1, sequence int default 1,
    date_start date, date_end date, company_id int);
create table stock_picking_type (id serial primary key, name varchar, code varchar, warehouse_id int);
create table purchase_order (id serial primary key, name varchar not null, partner_id int not null, state varchar,
    date_order timestamp, date_planned timestamp, picking_type_id int);
create table purchase_order_line (id serial primary key, order_id int not null, product_id int, product_qty numeric,
    product_uom_qty numeric, product_uom int, qty_received numeric default 0, date_planned timestamp);
"""

ODOO_DDL = (
    ODOO_SCHEMA
    + """
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
insert into res_partner (id, name, city, state_id, ref) values (3, 'Tea Growers Co.', 'Fuzhou', null, 'V-TEA'),
    (4, '福建茶业有限公司', '福州', null, null);
-- GT500: its variant's own line (福建茶业) wins over the template's; odoo:2: the first line has expired
insert into product_supplierinfo (id, partner_id, product_tmpl_id, product_id, min_qty, price, delay, sequence,
    date_start, date_end) values
    (1, 3, 1, null, 24, 1.1, 5, 1, null, null),
    (2, 4, 1, 1, 12, 1.15, 7, 5, '2025-01-01', null),
    (3, 3, 2, null, 0, 2.3, 10, 1, null, '2025-01-31'),
    (4, 4, 2, null, 6, 2.4, 12, 3, null, null);
insert into stock_picking_type (id, name, code, warehouse_id) values (1, 'SHDC: Receipts', 'incoming', 1),
    (2, 'HZ01: Receipts', 'incoming', 2);
insert into purchase_order (id, name, partner_id, state, date_order, picking_type_id) values
    (1, 'P00001', 3, 'purchase', '2025-03-05 02:00:00', 1),
    (2, 'P00002', 4, 'cancel', '2025-03-06 02:00:00', 1),
    (3, 'P00003', 4, 'done', '2025-03-07 02:00:00', 2),
    (4, 'P00004', 3, 'draft', '2025-03-08 02:00:00', 1);
-- P00001: GT500 on two lines (36 + 24 open), the first planned 18:00 UTC = the next day in Shanghai;
-- its odoo:2 line is received in full. P00003: 2 dozen ordered, 1 received -> 12 units open.
insert into purchase_order_line (order_id, product_id, product_qty, product_uom_qty, product_uom, qty_received,
    date_planned) values
    (1, 1, 48, 48, 1, 12, '2025-03-14 18:00:00'),
    (1, 1, 24, 24, 1, 0, '2025-03-16 02:00:00'),
    (1, 2, 5, 5, 1, 5, '2025-03-10 02:00:00'),
    (2, 2, 10, 10, 1, 0, '2025-03-12 02:00:00'),
    (3, 2, 2, 24, 2, 1, '2025-03-11 02:00:00'),
    (4, 1, 99, 99, 1, 0, '2025-03-20 02:00:00');
"""
)

# --------------------------------------------------------------------------------------------
# Generic profile (MariaDB): identifiers with spaces and capitals
# --------------------------------------------------------------------------------------------

GENERIC_SCHEMA = """
create table `Item Master` (`ItemCode` varchar(20), `Description` varchar(100), `Grp` varchar(10), `Cost` decimal(12,4),
    `Price` decimal(12,2), `Active` varchar(1));
create table `Warehouses` (`WhsCode` varchar(10), `WhsName` varchar(50), `Kind` varchar(10), `Region` varchar(20));
create table `Routes` (`From` varchar(10), `To` varchar(10), `Cost` double, `Trip` double, `Days` int, `MinQ` int, `MaxQ` int);
create table `Sales Lines` (`ItemCode` varchar(20), `WhsCode` varchar(10), `DocDate` datetime, `Qty` double,
    `LineTotal` decimal(14,2));
create table `OnHand` (`ItemCode` varchar(20), `WhsCode` varchar(10), `Qty` double, `Committed` double);
create table `LeadTimes` (`ItemCode` varchar(20), `WhsCode` varchar(10), `Days` varchar(10));
"""

GENERIC_DDL = (
    GENERIC_SCHEMA
    + """
insert into `Item Master` values ('A1', '绿茶', 'TEA', 1.2, 3.5, 'Y'), ('B2', '乌龙茶', 'TEA', 2, 6, 'N');
insert into `Warehouses` values ('W1', '上海仓', 'dc', '华东'), ('S1', '杭州店', 'store', '华东');
insert into `Routes` values ('W1', 'S1', 0.1, 30, 1, 10, null);
insert into `Sales Lines` values ('A1', 'S1', '2025-03-10 09:00:00', '2', 7), ('A1', 'S1', '2025-03-10 18:00:00', '3', 10.5),
    ('B2', 'S1', '2025-03-11 10:00:00', 1, 6), ('A1', 'S1', '2025-01-01 10:00:00', '9', 1);
insert into `OnHand` values ('A1', 'S1', 4, 1), ('A1', 'W1', 40, 0);
insert into `LeadTimes` values ('A1', 'S1', '2'), ('B2', 'S1', 'abc');
"""
)

GENERIC_TABLES: dict[str, Any] = {
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

# --------------------------------------------------------------------------------------------
# Side file drops: lanes and lead times for profiles whose database has none (Odoo)
# --------------------------------------------------------------------------------------------

_LANE_HEADERS = {
    "from_location": "from",
    "to_location": "to",
    "cost_per_unit": "unit_cost",
    "fixed_cost_per_shipment": "trip_cost",
    "transit_days": "days",
    "min_units": "min",
}
_LEAD_HEADERS = {
    "sku": "sku",
    "location": "仓库",
    "lead_time_days": "天数",
    "lead_time_std_days": "标准差",
    "review_period_days": "周期",
}


def side_drops(folder: Path, lanes: pd.DataFrame, lead_times: pd.DataFrame) -> dict[str, Any]:
    """Write lanes (UTF-8 with BOM, short English headers) and lead times (GBK, Chinese headers) into
    ``folder``; returns the ``source.files`` entries that map them."""
    folder.mkdir(parents=True, exist_ok=True)
    lanes[list(_LANE_HEADERS)].rename(columns=_LANE_HEADERS).to_csv(
        folder / "lanes.csv", index=False, encoding="utf-8-sig"
    )
    lead_times[list(_LEAD_HEADERS)].rename(columns=_LEAD_HEADERS).to_csv(
        folder / "lead_times.csv", index=False, encoding="gb18030"
    )
    return {
        "lanes": {"pattern": "lanes.csv", "columns": _LANE_HEADERS},
        "lead_times": {"pattern": "lead_times.csv", "columns": {k: v for k, v in _LEAD_HEADERS.items() if k != "sku"}},
    }


# --------------------------------------------------------------------------------------------
# A small ERP with months of history
# --------------------------------------------------------------------------------------------

_PRODUCTS = pd.DataFrame(
    {
        # odoo:2 is the SKU Odoo's profile gives a product without an internal reference (default_code)
        "sku": ["GT500", "odoo:2", "MK1L", "WT550", "SN100"],
        "name": ["绿茶 500ml", None, "鲜牛奶 1L", "矿泉水 550ml", "薯片 100g"],  # odoo:2: no Chinese name
        "name_en": ["Green tea 500ml", "Oolong tea 250ml", "Fresh milk 1L", "Mineral water 550ml", "Potato chips 100g"],
        "category": ["茶饮", "茶饮", "乳品", "饮用水", "零食"],
        "unit_cost": [1.2, 2.5, 4.0, 0.6, 3.1],
        "unit_price": [3.5, 6.0, 7.5, 1.5, 6.9],
    }
)
_WAREHOUSES = pd.DataFrame(
    {
        "location": ["SHDC", "HZ01", "NJ01"],
        "name": ["上海配送中心", "杭州西湖店", "南京新街口店"],
        "type": ["dc", "store", "store"],
        "region": ["上海市", "浙江省", "江苏省"],
    }
)


@dataclass(frozen=True)
class Erp:
    """A small ERP as canonical frames: what a correct extraction of it must give."""

    run_date: date
    items: pd.DataFrame  # sku, name (None = no Chinese translation), name_en, category, unit_cost, unit_price
    locations: pd.DataFrame  # location, name, type, region
    sales: pd.DataFrame  # sku, location, date (business date), quantity, returns, revenue; one row per active day
    stock: pd.DataFrame  # sku, location, on_hand, reserved (snapshot of run_date)
    lanes: pd.DataFrame
    lead_times: pd.DataFrame

    def sales_window(self, history_days: int) -> pd.DataFrame:
        """The sales rows a run reads: business dates run_date - history_days .. run_date - 1."""
        start = pd.Timestamp(self.run_date - timedelta(days=history_days))
        return self.sales[(self.sales["date"] >= start) & (self.sales["date"] < pd.Timestamp(self.run_date))]


def small_erp(run_date: date, days: int, seed: int = 7) -> Erp:
    """Five products at a DC and two stores, ``days`` days of sales up to ``run_date - 1``.

    Demand is Poisson around a per product-location level with a weekly pattern; a few store days
    have customer returns. Stock is unbalanced on purpose: HZ01 holds about a day of cover, NJ01
    months of it, so the run has stock-out alerts, excess and transfer candidates.
    """
    rng = np.random.default_rng(seed)
    n_p, n_l = len(_PRODUCTS), len(_WAREHOUSES)
    dates = pd.date_range(end=pd.Timestamp(run_date - timedelta(days=1)), periods=days, freq="D")
    level = rng.uniform(3.0, 12.0, (n_p, n_l))
    level[:, 0] *= 0.4  # the DC sells a little itself
    weekly = np.array([0.9, 0.9, 1.0, 1.0, 1.1, 1.3, 1.2])[dates.dayofweek.to_numpy()]
    qty = rng.poisson(level[:, :, None] * weekly[None, None, :]).astype(float)
    returns = (rng.random(qty.shape) < 0.03).astype(float)
    returns[:, 0, :] = 0.0
    p, loc, d = np.meshgrid(np.arange(n_p), np.arange(n_l), np.arange(days), indexing="ij")
    price = _PRODUCTS["unit_price"].to_numpy()[p]
    sales = pd.DataFrame(
        {
            "sku": _PRODUCTS["sku"].to_numpy()[p].ravel(),
            "location": _WAREHOUSES["location"].to_numpy()[loc].ravel(),
            "date": dates.to_numpy()[d].ravel(),
            "quantity": qty.ravel(),
            "returns": returns.ravel(),
            "revenue": np.round((qty - returns) * price, 2).ravel(),
        }
    )
    sales = sales[(sales["quantity"] > 0) | (sales["returns"] > 0)].reset_index(drop=True)
    cover = np.array([25.0, 1.0, 90.0])  # days of cover at SHDC, HZ01, NJ01
    on_hand = np.round(level * cover[None, :])
    stock = pd.DataFrame(
        {
            "sku": np.repeat(_PRODUCTS["sku"].to_numpy(), n_l),
            "location": np.tile(_WAREHOUSES["location"].to_numpy(), n_p),
            "on_hand": on_hand.ravel(),
            "reserved": np.minimum(on_hand, rng.integers(0, 3, (n_p, n_l))).ravel().astype(float),
        }
    )
    lanes = pd.DataFrame(
        {
            "from_location": ["SHDC", "SHDC", "HZ01", "NJ01"],
            "to_location": ["HZ01", "NJ01", "NJ01", "HZ01"],
            "cost_per_unit": [0.05, 0.06, 0.08, 0.08],
            "fixed_cost_per_shipment": [20.0, 25.0, 30.0, 30.0],
            "transit_days": [1, 1, 2, 2],
            "min_units": [0, 0, 0, 0],
        }
    )
    lead_times = stock[["sku", "location"]].iloc[1:].reset_index(drop=True)  # GT500 at SHDC: the default applies
    lead_times = lead_times.assign(lead_time_days=2.0, lead_time_std_days=0.5, review_period_days=7.0)
    return Erp(run_date, _PRODUCTS.copy(), _WAREHOUSES.copy(), sales, stock, lanes, lead_times)


def load_odoo(url: str, erp: Erp) -> None:
    """Create the Odoo schema at ``url`` and write ``erp`` into it the way Odoo records it.

    Products with jsonb translated names (``zh_CN`` when the fixture has one), warehouses with an
    internal stock location each (the DC's stock split over two of them) and SHDC resupplying the
    stores; a product whose fixture SKU is ``odoo:<id>`` has no internal reference (``default_code``); one done ``stock_move`` per sold day (internal -> customer, linked to a sale order line
    that values it) and per returned day (customer -> internal), timestamped in UTC: most at 02:00
    UTC, every third one at 17:30 UTC the evening before (01:30 on the business date in Shanghai).
    Moves that must not count: a cancelled sale per product, and internal transfers DC -> store.
    """
    it, wh = erp.items, erp.locations
    n_p, n_l = len(it), len(wh)
    pid = {s: i + 1 for i, s in enumerate(it["sku"])}
    wid = {c: i + 1 for i, c in enumerate(wh["location"])}
    customer, extra_dc = n_l + 1, n_l + 2
    cats = sorted(set(it["category"]))
    names = [
        pd.Series({"en_US": en} if zh is None else {"en_US": en, "zh_CN": zh}).to_json(force_ascii=False)
        for zh, en in zip(it["name"], it["name_en"], strict=True)
    ]
    tables: dict[str, pd.DataFrame] = {
        "product_category": pd.DataFrame(
            {"id": range(1, len(cats) + 1), "name": cats, "complete_name": [f"全部 / {c}" for c in cats]}
        ),
        "product_template": pd.DataFrame(
            {
                "id": range(1, n_p + 1),
                "name": names,
                "categ_id": [cats.index(c) + 1 for c in it["category"]],
                "list_price": it["unit_price"],
            }
        ),
        "product_product": pd.DataFrame(
            {
                "id": range(1, n_p + 1),
                "default_code": it["sku"].where(it["sku"] != [f"odoo:{i}" for i in range(1, n_p + 1)]),
                "product_tmpl_id": range(1, n_p + 1),
            }
        ),
        "ir_property": pd.DataFrame(
            {
                "name": "standard_price",
                "res_id": [f"product.product,{i}" for i in range(1, n_p + 1)],
                "value_float": it["unit_cost"],
                "type": "float",
            }
        ),
        "res_country_state": pd.DataFrame({"id": range(1, n_l + 1), "name": wh["region"]}),
        "res_partner": pd.DataFrame(
            {"id": range(1, n_l + 1), "name": wh["name"], "city": "", "state_id": range(1, n_l + 1)}
        ),
        "stock_warehouse": pd.DataFrame(
            {"id": range(1, n_l + 1), "name": wh["name"], "code": wh["location"], "partner_id": range(1, n_l + 1)}
        ),
        "stock_wh_resupply_table": pd.DataFrame(
            {
                "supplied_wh_id": [wid[c] for c in wh.loc[wh["type"] == "store", "location"]],
                "supplier_wh_id": wid["SHDC"],
            }
        ),
        "stock_location": pd.DataFrame(
            {
                "id": range(1, n_l + 3),
                "name": [f"{c}/Stock" for c in wh["location"]] + ["Customers", "SHDC/Stock/Shelf 1"],
                "usage": ["internal"] * n_l + ["customer", "internal"],
                "warehouse_id": [*range(1, n_l + 1), None, wid["SHDC"]],
            }
        ),
        "sale_order": pd.DataFrame({"id": [1], "name": ["S-ALL"], "warehouse_id": [1], "state": ["sale"]}),
    }
    st = erp.stock
    at_dc = st["location"].eq("SHDC")
    shelf = np.floor(st["on_hand"] / 3)  # part of the DC's stock sits on a shelf sub-location
    tables["stock_quant"] = pd.concat(
        [
            pd.DataFrame(
                {
                    "product_id": st["sku"].map(pid),
                    "location_id": st["location"].map(wid),
                    "quantity": st["on_hand"] - shelf.where(at_dc, 0.0),
                    "reserved_quantity": st["reserved"],
                }
            ),
            pd.DataFrame(
                {
                    "product_id": st.loc[at_dc, "sku"].map(pid),
                    "location_id": extra_dc,
                    "quantity": shelf[at_dc],
                    "reserved_quantity": 0.0,
                }
            ),
        ],
        ignore_index=True,
    )
    sold = erp.sales[erp.sales["quantity"] > 0].reset_index(drop=True)
    ret = erp.sales[erp.sales["returns"] > 0].reset_index(drop=True)
    price = it.set_index("sku")["unit_price"]
    tables["sale_order_line"] = pd.DataFrame(
        {
            "id": range(1, len(sold) + 1),
            "order_id": 1,
            "product_id": sold["sku"].map(pid),
            "product_uom_qty": sold["quantity"],
            "product_uom": 1,
            "price_subtotal": np.round(sold["quantity"] * sold["sku"].map(price), 2),
        }
    )

    def utc(days: pd.Series) -> pd.Series:
        evening = (np.arange(len(days)) % 3) == 0
        at = np.where(evening, pd.Timedelta(hours=-6, minutes=-30), pd.Timedelta(hours=2))
        return (days + pd.to_timedelta(at)).dt.strftime("%Y-%m-%d %H:%M:%S")

    first_day = erp.sales["date"].min()
    moves = [
        pd.DataFrame(
            {
                "product_id": sold["sku"].map(pid),
                "product_qty": sold["quantity"],
                "product_uom_qty": sold["quantity"],
                "location_id": sold["location"].map(wid),
                "location_dest_id": customer,
                "state": "done",
                "date": utc(sold["date"]),
                "sale_line_id": range(1, len(sold) + 1),
            }
        ),
        pd.DataFrame(
            {
                "product_id": ret["sku"].map(pid),
                "product_qty": ret["returns"],
                "product_uom_qty": ret["returns"],
                "location_id": customer,
                "location_dest_id": ret["location"].map(wid),
                "state": "done",
                "date": utc(ret["date"]),
                "sale_line_id": None,
            }
        ),
        pd.DataFrame(  # must not count: cancelled sales, internal replenishment DC -> store
            {
                "product_id": list(pid.values()) * 2,
                "product_qty": 500.0,
                "product_uom_qty": 500.0,
                "location_id": [wid["HZ01"]] * n_p + [wid["SHDC"]] * n_p,
                "location_dest_id": [customer] * n_p + [wid["HZ01"]] * n_p,
                "state": ["cancel"] * n_p + ["done"] * n_p,
                "date": (first_day + pd.Timedelta(days=20, hours=3)).strftime("%Y-%m-%d %H:%M:%S"),
                "sale_line_id": None,
            }
        ),
    ]
    tables["stock_move"] = pd.concat(moves, ignore_index=True)
    exec_sql(url, ODOO_SCHEMA)
    eng = sa.create_engine(url)
    try:
        with eng.begin() as conn:
            conn.exec_driver_sql("""insert into uom_uom (id, name, factor) values (1, '{"en_US": "Units"}', 1)""")
            for name, frame in tables.items():
                if name == "product_template":
                    conn.execute(
                        sa.text(
                            "insert into product_template (id, name, categ_id, list_price)"
                            " values (:id, cast(:name as jsonb), :categ_id, :list_price)"
                        ),
                        frame.to_dict("records"),
                    )
                else:
                    _insert(conn, name, "", frame)
    finally:
        eng.dispose()


def load_generic(url: str, erp: Erp) -> None:
    """Create the generic-profile schema at ``url`` (MariaDB) and write ``erp`` into it.

    Sales as document lines: each day's quantity of a product at a location is split over a morning
    and an evening line (the profile sums them per day); returns are not held (net quantities).
    """
    exec_statements(url, GENERIC_SCHEMA)
    it, s = erp.items, erp.sales[erp.sales["quantity"] > 0].reset_index(drop=True)
    price = s["sku"].map(it.set_index("sku")["unit_price"])
    morning = np.floor(s["quantity"] / 2)
    lines = pd.concat(
        [
            pd.DataFrame(
                {
                    "ItemCode": s["sku"],
                    "WhsCode": s["location"],
                    "DocDate": s["date"] + pd.Timedelta(hours=9),
                    "Qty": morning,
                    "LineTotal": np.round(morning * price, 2),
                }
            ),
            pd.DataFrame(
                {
                    "ItemCode": s["sku"],
                    "WhsCode": s["location"],
                    "DocDate": s["date"] + pd.Timedelta(hours=18),
                    "Qty": s["quantity"] - morning,
                    "LineTotal": np.round((s["quantity"] - morning) * price, 2),
                }
            ),
        ],
        ignore_index=True,
    )
    lines = lines[lines["Qty"] > 0].assign(DocDate=lambda f: f["DocDate"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    tables = {
        "Item Master": pd.DataFrame(
            {
                "ItemCode": it["sku"],
                "Description": it["name"].fillna(it["name_en"]),
                "Grp": it["category"],
                "Cost": it["unit_cost"],
                "Price": it["unit_price"],
                "Active": "Y",
            }
        ),
        "Warehouses": erp.locations.rename(
            columns={"location": "WhsCode", "name": "WhsName", "type": "Kind", "region": "Region"}
        ),
        "Routes": erp.lanes.rename(
            columns={
                "from_location": "From",
                "to_location": "To",
                "cost_per_unit": "Cost",
                "fixed_cost_per_shipment": "Trip",
                "transit_days": "Days",
                "min_units": "MinQ",
            }
        ),
        "Sales Lines": lines,
        "OnHand": erp.stock.rename(
            columns={"sku": "ItemCode", "location": "WhsCode", "on_hand": "Qty", "reserved": "Committed"}
        ),
        "LeadTimes": pd.DataFrame(
            {
                "ItemCode": erp.lead_times["sku"],
                "WhsCode": erp.lead_times["location"],
                "Days": erp.lead_times["lead_time_days"].map("{:g}".format),
            }
        ),
    }
    eng = sa.create_engine(url)
    try:
        with eng.begin() as conn:
            for name, frame in tables.items():
                _insert(conn, name, "`", frame)
    finally:
        eng.dispose()
