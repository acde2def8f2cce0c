"""The demo ERP: a generated source database that looks like a real (Chinese-market) ERP.

``tiaobo demo-source`` fills a database with an ERP's own tables and column names (``md_material``,
``md_warehouse``, ``so_header`` / ``so_line``, ``inv_balance``, ``tr_route``, ``md_replenish``), not
with our canonical tables, so that the extraction profile in ``sql/sources/demo/`` and the rest of
the pipeline are exercised on data that has to be renamed, cast and aggregated.

What the data contains (all of it deterministic for a seed, drawn from one ``numpy`` Generator):

- items in seven categories (dairy and fresh with short shelf lives, beverages and snacks with
  long ones, household, personal care, small appliances), Chinese and English names, cost, list
  price, pack size, a few manual ABC overrides, new items launched inside the window (no sales
  before launch) and discontinued ones (status ``D``, a clearance markdown, no sales afterwards);
- locations in different regions (distribution centres and stores; one store that cannot ship),
  plus one store that closed during the window (history up to its closing day, no stock, no lanes);
- daily sales over ``days`` days: per-SKU level and trend, weekly and yearly seasonality by
  category, Chinese retail events (Spring Festival run-up and shutdown, 618, Golden Week,
  Double 11), promotions (price cut with an uplift from a per-SKU elasticity), over-dispersed
  noise, intermittent slow movers, a few SKUs never sold at some locations, short stock-out spells,
  occasional bulk orders at distribution centres, customer returns (separate RETURN documents) and
  a few CANCELLED documents the extraction must ignore;
- a stock snapshot dated ``end_date + 1`` that is deliberately unbalanced: for a good share of SKUs
  one or two locations are short (under three days of cover or nothing) while others hold 60 to
  200 days of cover; lots with expiry dates for perishable items (some near or past expiry);
- transfer lanes with per-unit and per-shipment freight and transit days from the distance
  between locations (cheaper inside a region), and lead times per SKU and location with some
  SKU-locations left out on purpose.

Limits: Spring Festival dates are tabulated for 2018-2035 (outside that range the festival has no
effect); the generator holds ``n_skus x locations x days`` arrays in memory (about 25 MB per array
at the default size), so it is meant for demo and test sizes, not for benchmarks of millions of SKUs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

DEMO_END_DATE = dt.date(2026, 11, 24)
"""Last day of sales of the default demo; the stock snapshot is dated the day after."""

PROFILE_DIR = Path(__file__).resolve().parents[2] / "sql" / "sources" / "demo"
"""The extraction profile that reads this ERP."""

RECENT_DAYS = 28
"""Window of recent sales the stock targets are set against (days of cover)."""

_CHUNK_ROWS = 20_000


# ------------------------------------------------------------------------------------------------
# Catalogue: categories, products, brands, locations
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Product:
    zh: str
    en: str
    uom: str
    shelf_days: int | None  # None = not perishable, not lot-managed
    cost: float  # cost of the first size
    sizes: tuple[tuple[str, str, float], ...]  # (zh, en, cost multiplier)


@dataclass(frozen=True)
class _Category:
    code: str
    zh: str
    en: str
    share: float  # share of the SKUs
    rate: float  # median units per day of one SKU at a store of scale 1
    markup: float  # list price / cost
    season_amp: float  # yearly seasonality amplitude (relative)
    season_peak: int  # day of year of the seasonal peak
    return_rate: float  # share of units returned by customers
    spring: float  # uplift in the three weeks before Spring Festival
    e618: float  # uplift on 618 (full at distribution centres / online)
    d11: float  # uplift on Double 11
    golden_week: float  # store uplift in the National Day week
    packs: tuple[int, ...]  # transfer pack sizes to pick from
    products: tuple[_Product, ...]


_S = tuple[tuple[str, str, float], ...]


def _sizes(*items: tuple[str, str, float]) -> _S:
    return tuple(items)


# fmt: off
CATEGORIES: tuple[_Category, ...] = (
    _Category("DAIRY", "乳制品", "Dairy", 0.16, 5.0, 1.30, 0.10, 20, 0.004, 1.5, 1.2, 1.3, 1.1, (6, 12, 24), (
        _Product("鲜牛奶", "Fresh milk", "瓶", 7, 6.5, _sizes(("950ml", "950ml", 1.0), ("450ml", "450ml", 0.55), ("250ml", "250ml", 0.35))),
        _Product("纯牛奶", "UHT whole milk", "盒", 180, 2.2, _sizes(("250ml", "250ml", 1.0), ("1L", "1L", 3.2), ("250ml×12", "250ml x12", 10.5))),
        _Product("酸奶", "Yogurt", "杯", 21, 3.5, _sizes(("200g", "200g", 1.0), ("100g×8", "100g x8", 3.6), ("1kg", "1kg", 4.2))),
        _Product("低脂牛奶", "Low-fat milk", "盒", 180, 2.6, _sizes(("250ml", "250ml", 1.0), ("1L", "1L", 3.3))),
        _Product("奶酪棒", "Cheese sticks", "袋", 150, 14.0, _sizes(("90g", "90g", 1.0), ("500g", "500g", 4.8))),
        _Product("黄油", "Butter", "块", 180, 12.0, _sizes(("227g", "227g", 1.0), ("454g", "454g", 1.9))),
        _Product("乳酸菌饮品", "Probiotic drink", "排", 30, 4.0, _sizes(("100ml×5", "100ml x5", 1.0), ("340ml", "340ml", 0.8))),
    )),
    _Category("FRESH", "生鲜烘焙", "Fresh & bakery", 0.10, 6.0, 1.35, 0.08, 200, 0.003, 1.3, 1.0, 1.0, 1.2, (6, 10, 12), (
        _Product("吐司面包", "Toast bread", "袋", 5, 5.0, _sizes(("400g", "400g", 1.0), ("800g", "800g", 1.8))),
        _Product("鲜鸡蛋", "Fresh eggs", "盒", 30, 9.0, _sizes(("10枚", "10 pcs", 1.0), ("30枚", "30 pcs", 2.8))),
        _Product("嫩豆腐", "Silken tofu", "盒", 3, 2.0, _sizes(("400g", "400g", 1.0),)),
        _Product("全麦面包", "Whole-wheat bread", "袋", 5, 6.0, _sizes(("380g", "380g", 1.0),)),
        _Product("蛋糕卷", "Swiss roll", "盒", 10, 7.0, _sizes(("240g", "240g", 1.0), ("480g", "480g", 1.9))),
        _Product("鲜面条", "Fresh noodles", "袋", 4, 2.5, _sizes(("500g", "500g", 1.0),)),
    )),
    _Category("BEV", "饮料", "Beverages", 0.18, 6.0, 1.45, 0.45, 200, 0.003, 1.6, 1.3, 1.3, 1.3, (12, 24), (
        _Product("矿泉水", "Mineral water", "瓶", 365, 0.8, _sizes(("550ml", "550ml", 1.0), ("1.5L", "1.5L", 2.1), ("550ml×24", "550ml x24", 22.0))),
        _Product("绿茶饮料", "Green tea drink", "瓶", 270, 1.9, _sizes(("500ml", "500ml", 1.0), ("500ml×15", "500ml x15", 14.0))),
        _Product("橙汁", "Orange juice", "瓶", 240, 5.5, _sizes(("1L", "1L", 1.0), ("300ml", "300ml", 0.4))),
        _Product("可乐", "Cola", "罐", 365, 1.6, _sizes(("330ml", "330ml", 1.0), ("2L", "2L", 2.8), ("330ml×24", "330ml x24", 22.0))),
        _Product("苏打水", "Soda water", "瓶", 365, 1.9, _sizes(("410ml", "410ml", 1.0), ("410ml×24", "410ml x24", 22.5))),
        _Product("咖啡饮料", "Coffee drink", "瓶", 270, 3.6, _sizes(("268ml", "268ml", 1.0), ("268ml×15", "268ml x15", 14.0))),
        _Product("运动饮料", "Sports drink", "瓶", 365, 2.8, _sizes(("600ml", "600ml", 1.0),)),
    )),
    _Category("SNACK", "休闲零食", "Snacks", 0.18, 3.5, 1.60, 0.15, 30, 0.003, 2.0, 1.3, 1.5, 1.4, (10, 20, 24), (
        _Product("薯片", "Potato chips", "袋", 270, 3.5, _sizes(("70g", "70g", 1.0), ("135g", "135g", 1.7))),
        _Product("坚果礼盒", "Mixed nuts gift box", "盒", 240, 42.0, _sizes(("750g", "750g", 1.0), ("1.2kg", "1.2kg", 1.5))),
        _Product("黑巧克力", "Dark chocolate", "块", 365, 9.0, _sizes(("100g", "100g", 1.0), ("252g", "252g", 2.2))),
        _Product("苏打饼干", "Soda crackers", "袋", 300, 4.5, _sizes(("200g", "200g", 1.0), ("400g", "400g", 1.8))),
        _Product("牛肉干", "Beef jerky", "袋", 240, 16.0, _sizes(("100g", "100g", 1.0), ("250g", "250g", 2.3))),
        _Product("海苔", "Seaweed snack", "盒", 300, 4.5, _sizes(("40g", "40g", 1.0),)),
        _Product("五香瓜子", "Spiced sunflower seeds", "袋", 240, 5.5, _sizes(("260g", "260g", 1.0), ("500g", "500g", 1.8))),
    )),
    _Category("HOME", "家居日用", "Household", 0.14, 1.8, 1.40, 0.05, 300, 0.008, 1.2, 1.5, 1.8, 1.0, (4, 6, 12), (
        _Product("洗衣液", "Laundry detergent", "瓶", None, 18.0, _sizes(("2kg", "2kg", 1.0), ("3kg", "3kg", 1.4))),
        _Product("抽纸", "Facial tissues", "提", None, 11.0, _sizes(("100抽×6包", "100 sheets x6", 1.0), ("130抽×10包", "130 sheets x10", 2.1))),
        _Product("洗洁精", "Dish soap", "瓶", None, 7.5, _sizes(("1.1kg", "1.1kg", 1.0),)),
        _Product("垃圾袋", "Garbage bags", "卷", None, 5.5, _sizes(("50只", "50 pcs", 1.0), ("100只", "100 pcs", 1.8))),
        _Product("保鲜膜", "Cling film", "卷", None, 6.5, _sizes(("30m", "30m", 1.0),)),
        _Product("厨房纸巾", "Kitchen towels", "提", None, 8.5, _sizes(("2卷", "2 rolls", 1.0), ("6卷", "6 rolls", 2.7))),
    )),
    _Category("CARE", "个人护理", "Personal care", 0.14, 1.3, 1.80, 0.15, 180, 0.010, 1.1, 1.8, 2.2, 1.0, (6, 12), (
        _Product("洗发水", "Shampoo", "瓶", None, 24.0, _sizes(("400ml", "400ml", 1.0), ("750ml", "750ml", 1.6))),
        _Product("沐浴露", "Body wash", "瓶", None, 19.0, _sizes(("500ml", "500ml", 1.0), ("1L", "1L", 1.7))),
        _Product("牙膏", "Toothpaste", "支", None, 7.5, _sizes(("120g", "120g", 1.0), ("180g", "180g", 1.4))),
        _Product("防晒霜", "Sunscreen", "支", None, 42.0, _sizes(("50ml", "50ml", 1.0),)),
        _Product("牙刷头", "Toothbrush heads", "盒", None, 28.0, _sizes(("2支装", "2-pack", 1.0), ("4支装", "4-pack", 1.8))),
        _Product("补水面膜", "Hydrating face masks", "盒", None, 38.0, _sizes(("10片", "10 sheets", 1.0),)),
    )),
    _Category("APPL", "小家电", "Small appliances", 0.10, 0.25, 1.45, 0.20, 190, 0.040, 1.2, 2.5, 3.0, 1.1, (1, 2), (
        _Product("电热水壶", "Electric kettle", "台", None, 58.0, _sizes(("1.7L", "1.7L", 1.0), ("1.5L", "1.5L", 0.85))),
        _Product("电风扇", "Electric fan", "台", None, 115.0, _sizes(("落地式", "floor-standing", 1.0), ("台式", "desktop", 0.6))),
        _Product("空气炸锅", "Air fryer", "台", None, 175.0, _sizes(("4L", "4L", 1.0), ("5.5L", "5.5L", 1.3))),
        _Product("电饭煲", "Rice cooker", "台", None, 145.0, _sizes(("3L", "3L", 1.0), ("4L", "4L", 1.2))),
        _Product("吹风机", "Hair dryer", "台", None, 78.0, _sizes(("1800W", "1800W", 1.0),)),
        _Product("电动牙刷", "Electric toothbrush", "支", None, 88.0, _sizes(("声波款", "sonic", 1.0),)),
    )),
)

_BRANDS: tuple[tuple[str, str], ...] = (
    ("鲜森", "Xiansen"), ("禾悦", "Heyue"), ("云朵", "Yunduo"), ("山语", "Shanyu"),
    ("金谷", "Jingu"), ("海蓝", "Hailan"), ("青禾", "Qinghe"), ("百味", "Baiwei"),
)  # fictional brands


@dataclass(frozen=True)
class _Location:
    code: str
    zh: str
    kind: str  # DC | STORE
    region: str
    lon: float
    lat: float
    ship: int = 1
    recv: int = 1


_LOCATIONS: tuple[_Location, ...] = (
    _Location("WH-SH01", "上海嘉定配送中心", "DC", "华东", 121.25, 31.38),
    _Location("WH-GZ01", "广州南沙配送中心", "DC", "华南", 113.53, 22.80),
    _Location("ST-SH02", "上海徐汇店", "STORE", "华东", 121.44, 31.19),
    _Location("ST-BJ01", "北京朝阳店", "STORE", "华北", 116.44, 39.92),
    _Location("ST-GZ02", "广州天河店", "STORE", "华南", 113.36, 23.13),
    _Location("ST-CD01", "成都春熙路店", "STORE", "西南", 104.08, 30.66, ship=0),
    _Location("ST-HZ01", "杭州西湖店", "STORE", "华东", 120.16, 30.25),
    _Location("ST-WH01", "武汉光谷店", "STORE", "华中", 114.40, 30.51),
    _Location("WH-BJ02", "北京大兴配送中心", "DC", "华北", 116.34, 39.73),
    _Location("ST-XA01", "西安钟楼店", "STORE", "西北", 108.95, 34.26),
    _Location("ST-SZ01", "深圳南山店", "STORE", "华南", 113.93, 22.53),
    _Location("ST-CQ01", "重庆解放碑店", "STORE", "西南", 106.58, 29.56),
    _Location("ST-SY01", "沈阳中街店", "STORE", "东北", 123.46, 41.80),
    _Location("ST-NJ01", "南京新街口店", "STORE", "华东", 118.78, 32.04),
)
_CLOSED_STORE = _Location("ST-TJ01", "天津滨海店", "STORE", "华北", 117.70, 39.03, ship=0, recv=0)
# fmt: on

# Spring Festival (lunar new year's day); outside this table the festival has no effect.
_SPRING_FESTIVAL = {
    2018: "2018-02-16",
    2019: "2019-02-05",
    2020: "2020-01-25",
    2021: "2021-02-12",
    2022: "2022-02-01",
    2023: "2023-01-22",
    2024: "2024-02-10",
    2025: "2025-01-29",
    2026: "2026-02-17",
    2027: "2027-02-06",
    2028: "2028-01-26",
    2029: "2029-02-13",
    2030: "2030-02-03",
    2031: "2031-01-23",
    2032: "2032-02-11",
    2033: "2033-01-31",
    2034: "2034-02-19",
    2035: "2035-02-08",
}

# weekly profile Monday..Sunday; stores sell at weekends, DCs (online and B2B) on weekdays
_WEEKLY_STORE = np.array([0.90, 0.88, 0.92, 0.95, 1.08, 1.35, 1.30])
_WEEKLY_DC = np.array([1.15, 1.10, 1.05, 1.00, 1.00, 0.87, 0.83])


# ------------------------------------------------------------------------------------------------
# ERP schema
# ------------------------------------------------------------------------------------------------


def _table(name: str, md: sa.MetaData, *columns: sa.Column[Any]) -> sa.Table:
    """A table in utf8mb4 on MariaDB/MySQL (Chinese names), plain elsewhere."""
    return sa.Table(name, md, *columns, mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci")


def erp_metadata() -> sa.MetaData:
    """The demo ERP's tables (its own names, not the canonical ones) as SQLAlchemy Core metadata."""
    md = sa.MetaData()

    def num(precision: int, scale: int) -> sa.Numeric:
        return sa.Numeric(precision, scale, asdecimal=False)

    _table(
        "md_material",
        md,
        sa.Column("mat_code", sa.String(20), primary_key=True),
        sa.Column("mat_name", sa.String(100), nullable=False),
        sa.Column("mat_name_en", sa.String(120)),
        sa.Column("cat_code", sa.String(10), nullable=False),
        sa.Column("uom", sa.String(8)),
        sa.Column("barcode", sa.String(13)),
        sa.Column("std_cost", num(12, 4), nullable=False),
        sa.Column("list_price", num(12, 2), nullable=False),
        sa.Column("pack_qty", sa.Integer, nullable=False),
        sa.Column("shelf_days", sa.Integer),
        sa.Column("abc_fixed", sa.String(1)),
        sa.Column("status", sa.String(1), nullable=False),
        sa.Column("created_on", sa.Date, nullable=False),
    )
    _table(
        "md_warehouse",
        md,
        sa.Column("wh_code", sa.String(20), primary_key=True),
        sa.Column("wh_name", sa.String(60), nullable=False),
        sa.Column("wh_kind", sa.String(10), nullable=False),
        sa.Column("region_name", sa.String(20), nullable=False),
        sa.Column("ship_flag", sa.SmallInteger, nullable=False),
        sa.Column("recv_flag", sa.SmallInteger, nullable=False),
        sa.Column("is_closed", sa.SmallInteger, nullable=False),
    )
    _table(
        "so_header",
        md,
        sa.Column("doc_no", sa.String(24), primary_key=True),
        sa.Column("wh_code", sa.String(20), nullable=False),
        sa.Column("doc_date", sa.Date, nullable=False, index=True),
        sa.Column("doc_type", sa.String(10), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("remark", sa.String(60)),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    _table(
        "so_line",
        md,
        sa.Column("doc_no", sa.String(24), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("mat_code", sa.String(20), nullable=False),
        sa.Column("qty", num(14, 3), nullable=False),
        sa.Column("price", num(12, 2), nullable=False),
        sa.Column("amount", num(14, 2), nullable=False),
    )
    _table(
        "inv_balance",
        md,
        sa.Column("snap_date", sa.Date, primary_key=True),
        sa.Column("wh_code", sa.String(20), primary_key=True),
        sa.Column("mat_code", sa.String(20), primary_key=True),
        sa.Column("batch_no", sa.String(20), primary_key=True),
        sa.Column("exp_date", sa.Date),
        sa.Column("qty_onhand", num(14, 3), nullable=False),
        sa.Column("qty_transit", num(14, 3), nullable=False),
        sa.Column("qty_reserved", num(14, 3), nullable=False),
    )
    _table(
        "tr_route",
        md,
        sa.Column("from_wh", sa.String(20), primary_key=True),
        sa.Column("to_wh", sa.String(20), primary_key=True),
        sa.Column("distance_km", sa.Integer),
        sa.Column("freight_unit", num(10, 4), nullable=False),
        sa.Column("freight_trip", num(10, 2), nullable=False),
        sa.Column("lead_days", sa.Integer, nullable=False),
        sa.Column("min_qty", sa.Integer, nullable=False),
        sa.Column("max_qty", sa.Integer),
    )
    _table(
        "md_replenish",
        md,
        sa.Column("wh_code", sa.String(20), primary_key=True),
        sa.Column("mat_code", sa.String(20), primary_key=True),
        sa.Column("lt_avg_days", num(6, 2), nullable=False),
        sa.Column("lt_sd_days", num(6, 2), nullable=False),
        sa.Column("review_days", sa.Integer, nullable=False),
    )
    _table(
        "md_purch_info",  # purchasing info records: a central contract (wh_code NULL) or a DC's own
        md,
        sa.Column("info_id", sa.Integer, primary_key=True),
        sa.Column("mat_code", sa.String(20), nullable=False),
        sa.Column("wh_code", sa.String(20)),
        sa.Column("vendor_code", sa.String(20), nullable=False),
        sa.Column("vendor_name", sa.String(60), nullable=False),
        sa.Column("lt_days", num(6, 2)),
        sa.Column("lt_sd_days", num(6, 2)),
        sa.Column("moq", num(14, 3), nullable=False),
        sa.Column("lot_qty", num(14, 3), nullable=False),
        sa.Column("purch_price", num(12, 4)),
        sa.Column("order_fee", num(10, 2), nullable=False),
    )
    _table(
        "po_header",
        md,
        sa.Column("po_no", sa.String(24), primary_key=True),
        sa.Column("vendor_code", sa.String(20), nullable=False),
        sa.Column("wh_code", sa.String(20), nullable=False),
        sa.Column("po_date", sa.Date, nullable=False),
        sa.Column("promise_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
    )
    _table(
        "po_line",
        md,
        sa.Column("po_no", sa.String(24), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("mat_code", sa.String(20), nullable=False),
        sa.Column("qty_ordered", num(14, 3), nullable=False),
        sa.Column("qty_received", num(14, 3), nullable=False),
    )
    return md


ERP_TABLES = (
    "md_material",
    "md_warehouse",
    "tr_route",
    "md_replenish",
    "so_header",
    "so_line",
    "inv_balance",
    "md_purch_info",
    "po_header",
    "po_line",
)
"""The ERP tables in the order they are written."""


# ------------------------------------------------------------------------------------------------
# Generation
# ------------------------------------------------------------------------------------------------

Frame = dict[str, np.ndarray]
"""A table as column arrays (string columns as numpy unicode or object arrays, None = NULL)."""


@dataclass
class _Items:
    frame: Frame
    cat: np.ndarray  # (S,) category index
    price: np.ndarray  # (S,)
    shelf: np.ndarray  # (S,) shelf days, -1 = not perishable
    pack: np.ndarray  # (S,)
    rate: np.ndarray  # (S,) level at the end of the window, units/day at scale 1
    growth: np.ndarray  # (S,) yearly log growth
    season_jitter: np.ndarray  # (S,)
    elasticity: np.ndarray  # (S,)
    dispersion: np.ndarray  # (S,) gamma shape of the demand noise
    launch: np.ndarray  # (S,) first day index with sales (0 = sold before the window)
    stop: np.ndarray  # (S,) first day index without sales (T = still sold)
    discontinued: np.ndarray  # (S,) bool


@dataclass
class _Locs:
    frame: Frame
    codes: np.ndarray  # (L,) open locations first, the closed store last
    is_dc: np.ndarray  # (L,)
    scale: np.ndarray  # (L,)
    open_until: np.ndarray  # (L,) first day index the location is closed (T = open)
    n_open: int
    lon: np.ndarray
    lat: np.ndarray
    region: np.ndarray
    ship: np.ndarray
    recv: np.ndarray


def _null_where(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Object array of ``values`` (as Python objects) with None (SQL NULL) where ``mask`` is true."""
    out = values.astype(object)
    out[mask] = None
    return out


def _allocate(shares: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` into integer counts proportional to ``shares`` (largest remainder, at least 1 each)."""
    raw = shares / shares.sum() * n
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    if n >= len(shares):
        while (counts == 0).any():
            counts[np.argmax(counts)] -= 1
            counts[np.argmin(counts)] += 1
    return counts


def _ean13(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random EAN-13 barcodes with the Chinese GS1 prefix 690-695 and a valid check digit."""
    body = np.concatenate(
        [np.full((n, 1), 6), np.full((n, 1), 9), rng.integers(0, 6, (n, 1)), rng.integers(0, 10, (n, 9))], axis=1
    )
    weights = np.tile([1, 3], 6)
    check = (10 - (body * weights).sum(axis=1) % 10) % 10
    digits = np.concatenate([body, check[:, None]], axis=1).astype(str)
    return np.array(["".join(r) for r in digits])


def _items(rng: np.random.Generator, n_skus: int, start: np.datetime64, days: int) -> _Items:
    cats = CATEGORIES
    counts = _allocate(np.array([c.share for c in cats]), n_skus)
    cat = np.repeat(np.arange(len(cats)), counts)
    zh, en, uom, shelf, cost, size_mult, rel_cost = [], [], [], [], [], [], []
    for ci, c in enumerate(cats):  # 7 categories: build the name combinations of each
        combos = [(p, s, b) for p in c.products for s in p.sizes for b in _BRANDS]
        median_cost = float(np.median([p.cost for p in c.products]))
        pick = rng.permutation(len(combos))
        for k in range(int(counts[ci])):
            p, s, b = combos[pick[k % len(combos)]]
            suffix = "" if k < len(combos) else f" {k // len(combos) + 1}"
            zh.append(f"{b[0]}{p.zh} {s[0]}{suffix}")
            en.append(f"{b[1]} {p.en} {s[1]}{suffix}")
            uom.append(p.uom)
            shelf.append(-1 if p.shelf_days is None else p.shelf_days)
            cost.append(p.cost * s[2])
            size_mult.append(s[2])
            rel_cost.append(p.cost / median_cost)
    n = n_skus
    cost_arr = np.round(np.array(cost) * rng.lognormal(0.0, 0.12, n), 2)
    markup = np.array([c.markup for c in cats])[cat] * rng.uniform(0.92, 1.15, n)
    price = np.maximum(np.round(cost_arr * markup, 1), np.round(cost_arr + 0.1, 1))
    shelf_arr = np.array(shelf)
    # bigger packs and dearer products sell fewer units
    rate = (
        np.array([c.rate for c in cats])[cat]
        / np.sqrt(np.array(size_mult))
        * np.array(rel_cost) ** -0.4
        * rng.lognormal(0.0, 0.6, n)
    )
    slow = rng.choice(n, max(1, round(0.2 * n)), replace=False)
    rate[slow] *= rng.uniform(0.02, 0.12, slow.size)  # intermittent slow movers
    pack_table = np.array([list(c.packs) + [c.packs[-1]] * (3 - len(c.packs)) for c in cats])
    n_packs = np.array([len(c.packs) for c in cats])
    pack = pack_table[cat, np.floor(rng.random(n) * n_packs[cat]).astype(int)]

    # life cycle: a few new items launched inside the window, a few discontinued inside it
    n_new = max(1, round(0.08 * n))
    n_disc = max(1, round(0.05 * n))
    chosen = rng.choice(n, n_new + n_disc, replace=False)
    new, disc = chosen[:n_new], chosen[n_new:]
    launch = np.zeros(n, dtype=int)
    stop = np.full(n, days, dtype=int)
    launch[new] = rng.integers(int(days * 0.15), max(int(days * 0.15) + 1, days - max(30, int(days * 0.08))), n_new)
    stop[disc] = rng.integers(int(days * 0.35), max(int(days * 0.35) + 1, days - max(21, int(days * 0.05))), n_disc)
    discontinued = np.zeros(n, dtype=bool)
    discontinued[disc] = True

    created = np.where(
        launch > 0,
        start + launch.astype("timedelta64[D]") - rng.integers(3, 30, n).astype("timedelta64[D]"),
        start - rng.integers(60, 1500, n).astype("timedelta64[D]"),
    )
    abc = np.full(n, None, dtype=object)
    fixed = rng.choice(n, max(1, round(0.03 * n)), replace=False)
    abc[fixed] = rng.choice(np.array(["A", "B", "C"], dtype=object), fixed.size)

    perm = rng.permutation(n)  # codes are not sorted by category
    codes = np.sort(rng.choice(900_000, n, replace=False) + 100_000)
    mat_code = np.empty(n, dtype=object)
    mat_code[perm] = np.char.add("M", codes.astype(str))
    frame: Frame = {
        "mat_code": mat_code,
        "mat_name": np.array(zh, dtype=object),
        "mat_name_en": np.array(en, dtype=object),
        "cat_code": np.array([c.code for c in cats], dtype=object)[cat],
        "uom": np.array(uom, dtype=object),
        "barcode": _ean13(rng, n),
        "std_cost": cost_arr,
        "list_price": price,
        "pack_qty": pack,
        "shelf_days": _null_where(shelf_arr < 0, shelf_arr),
        "abc_fixed": abc,
        "status": np.where(discontinued, "D", "A").astype(object),
        "created_on": created.astype("datetime64[D]"),
    }
    return _Items(
        frame=frame,
        cat=cat,
        price=price,
        shelf=shelf_arr,
        pack=pack,
        rate=rate,
        growth=np.clip(rng.normal(0.05, 0.25, n), -0.6, 0.8),
        season_jitter=rng.uniform(0.5, 1.5, n),
        elasticity=rng.uniform(1.2, 3.0, n),
        dispersion=rng.uniform(2.0, 10.0, n),
        launch=launch,
        stop=stop,
        discontinued=discontinued,
    )


def _locations(rng: np.random.Generator, n_locations: int, days: int) -> _Locs:
    chosen = list(_LOCATIONS[:n_locations]) + [_CLOSED_STORE]
    n = len(chosen)
    is_dc = np.array([loc.kind == "DC" for loc in chosen])
    scale = np.where(is_dc, rng.uniform(1.4, 1.9, n), rng.uniform(0.6, 1.3, n))
    open_until = np.full(n, days, dtype=int)
    open_until[-1] = int(days * 0.7)  # the closed store stopped trading 30 % before the end
    frame: Frame = {
        "wh_code": np.array([loc.code for loc in chosen], dtype=object),
        "wh_name": np.array([loc.zh for loc in chosen], dtype=object),
        "wh_kind": np.array([loc.kind for loc in chosen], dtype=object),
        "region_name": np.array([loc.region for loc in chosen], dtype=object),
        "ship_flag": np.array([loc.ship for loc in chosen]),
        "recv_flag": np.array([loc.recv for loc in chosen]),
        "is_closed": np.array([0] * (n - 1) + [1]),
    }
    return _Locs(
        frame=frame,
        codes=frame["wh_code"],
        is_dc=is_dc,
        scale=scale,
        open_until=open_until,
        n_open=n - 1,
        lon=np.array([loc.lon for loc in chosen]),
        lat=np.array([loc.lat for loc in chosen]),
        region=frame["region_name"],
        ship=frame["ship_flag"],
        recv=frame["recv_flag"],
    )


def _ramp(offset: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """0..1 linear ramp over offsets lo..hi (1 at hi), 0 outside."""
    inside = (offset >= lo) & (offset <= hi)
    return np.where(inside, (offset - lo + 1) / (hi - lo + 1), 0.0)


def _calendar(dates: np.ndarray) -> np.ndarray:
    """Event multipliers, shape (2, C, T): index 0 for stores, 1 for distribution centres."""
    cats = CATEGORIES
    t = len(dates)
    out = np.ones((2, len(cats), t))
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    spring = np.array([c.spring for c in cats])[:, None]
    e618 = np.array([c.e618 for c in cats])[:, None]
    d11 = np.array([c.d11 for c in cats])[:, None]
    golden = np.array([c.golden_week for c in cats])[:, None]
    for year in range(int(years.min()) - 1, int(years.max()) + 2):
        if year in _SPRING_FESTIVAL:
            off = (dates - np.datetime64(_SPRING_FESTIVAL[year])).astype(int)
            run_up = _ramp(off, -21, -2)[None, :]
            out *= 1 + (spring - 1) * run_up  # people stock up before the festival
            shut = (off >= 0) & (off <= 6)
            out[0, :, shut] *= 0.55  # stores: families travel, many shops close
            out[1, :, shut] *= 0.35  # logistics stop
            after = (off >= 7) & (off <= 14)
            out[:, :, after] *= 0.85
        off618 = (dates - np.datetime64(f"{year}-06-18")).astype(int)
        w618 = 0.3 * _ramp(off618, -17, -1) + (off618 == 0)
        off11 = (dates - np.datetime64(f"{year}-11-11")).astype(int)
        w11 = 0.3 * _ramp(off11, -10, -1) + (off11 == 0)
        post11 = (off11 >= 1) & (off11 <= 4)
        for k, share in ((0, 0.35), (1, 1.0)):  # online (DC) gets the full event, stores a part
            out[k] *= 1 + (e618 - 1) * share * w618[None, :] + (d11 - 1) * share * w11[None, :]
        out[1, :, post11] *= 0.85
        offgw = (dates - np.datetime64(f"{year}-10-01")).astype(int)
        gw = (offgw >= 0) & (offgw <= 6)
        out[0][:, gw] *= golden
        out[1][:, gw] *= 0.8
    return out


def _expand(start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Episode index and day index of every day of episodes (start, length), vectorised."""
    rep = np.repeat(np.arange(start.size), length)
    within = np.arange(rep.size) - np.repeat(np.cumsum(length) - length, length)
    return rep, start[rep] + within


def _demand_profile(it: _Items, lc: _Locs, dates: np.ndarray) -> dict[str, np.ndarray]:
    """The deterministic demand factors: season and trend and life cycle (S, T), weekday pattern
    and opening (L, T), calendar events (S, L, T)."""
    cats = CATEGORIES
    t_n = dates.size
    t_idx = np.arange(t_n)
    doy = (dates - dates.astype("datetime64[Y]")).astype(int)
    dow = (dates.astype(int) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday

    amp = np.array([c.season_amp for c in cats])[it.cat] * it.season_jitter
    peak = np.array([c.season_peak for c in cats])[it.cat]
    season = 1 + amp[:, None] * np.cos(2 * np.pi * (doy[None, :] - peak[:, None]) / 365.25)  # (S, T)
    trend = np.exp(it.growth[:, None] * (t_idx[None, :] - (t_n - 1)) / 365.0)  # level at the end = rate
    ramp = np.clip((t_idx[None, :] - it.launch[:, None] + 1) / 30.0, 0, 1) ** 0.5
    alive = (t_idx[None, :] >= it.launch[:, None]) & (t_idx[None, :] < it.stop[:, None])
    life = np.where(alive, np.where(it.launch[:, None] > 0, ramp, 1.0), 0.0)  # (S, T)
    weekly = np.where(lc.is_dc[:, None], _WEEKLY_DC[dow][None, :], _WEEKLY_STORE[dow][None, :])  # (L, T)
    is_open = t_idx[None, :] < lc.open_until[:, None]  # (L, T)
    events = _calendar(dates)[lc.is_dc.astype(int)][:, it.cat, :].transpose(1, 0, 2)  # (S, L, T)
    return {"season": season, "trend": trend, "life": life, "weekly": weekly, "is_open": is_open, "events": events}


def _promotions(rng: np.random.Generator, s_n: int, l_n: int, t_n: int) -> np.ndarray:
    """Chain-wide or single-location price cuts of 3 to 10 days, shape (S, L, T)."""
    disc = np.zeros((s_n, l_n, t_n))
    n_ep = rng.poisson(t_n / 110.0, s_n)
    ep_sku = np.repeat(np.arange(s_n), n_ep)
    ep_start = rng.integers(0, t_n, ep_sku.size)
    ep_len = rng.integers(3, 11, ep_sku.size)
    ep_cut = rng.choice(np.array([0.10, 0.15, 0.20, 0.25, 0.30]), ep_sku.size)
    ep_chain = rng.random(ep_sku.size) < 0.6
    ep_loc = rng.integers(0, l_n, ep_sku.size)
    rep, day = _expand(ep_start, ep_len)
    ok = day < t_n
    rep, day = rep[ok], day[ok]
    chain = ep_chain[rep]
    s_all = np.repeat(ep_sku[rep][chain], l_n)
    l_all = np.tile(np.arange(l_n), int(chain.sum()))
    d_all = np.repeat(day[chain], l_n)
    np.maximum.at(disc, (s_all, l_all, d_all), np.repeat(ep_cut[rep][chain], l_n))
    single = ~chain
    np.maximum.at(disc, (ep_sku[rep][single], ep_loc[rep][single], day[single]), ep_cut[rep][single])
    return disc


def _markdowns(disc: np.ndarray, it: _Items, lc: _Locs, dates: np.ndarray) -> np.ndarray:
    """``disc`` with clearance before a discontinuation and the online shopping festivals."""
    t_idx = np.arange(dates.size)
    # clearance markdown in the last two weeks of a discontinued item
    clear = (t_idx[None, :] >= it.stop[:, None] - 14) & (t_idx[None, :] < it.stop[:, None]) & it.discontinued[:, None]
    disc = np.maximum(disc, np.where(clear, 0.3, 0.0)[:, None, :])
    # online price cuts at 618 and Double 11 for household, care and appliances (DC channel)
    month = dates.astype("datetime64[M]").astype(int) % 12 + 1
    dom = (dates - dates.astype("datetime64[M]")).astype(int) + 1
    event_day = ((month == 6) & (dom >= 16) & (dom <= 18)) | ((month == 11) & (dom >= 9) & (dom <= 11))
    online_cut = np.isin(np.array([c.code for c in CATEGORIES])[it.cat], ["HOME", "CARE", "APPL"])
    mask = online_cut[:, None, None] & lc.is_dc[None, :, None] & event_day[None, None, :]
    return np.where(mask, np.maximum(disc, 0.15), disc)


def _stockout_spells(rng: np.random.Generator, lam: np.ndarray, lc: _Locs, t_n: int) -> None:
    """Short stock-out spells at stores (lost sales: nothing sold those days), in place."""
    store_cell = np.broadcast_to(~lc.is_dc[None, :, None], lam.shape).ravel()
    starts = np.flatnonzero((rng.random(lam.size) < 0.0015) & store_cell)
    if starts.size:
        rep, day = _expand(starts % t_n, rng.integers(2, 7, starts.size))
        flat = (starts // t_n)[rep] * t_n + np.minimum(day, t_n - 1)
        lam.ravel()[flat] = 0.0


def _sold_and_returned(
    rng: np.random.Generator, it: _Items, lc: _Locs, lam: np.ndarray, is_open: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Units sold (over-dispersed, with bulk orders at DCs) and units returned three days later."""
    noise = rng.gamma(it.dispersion[:, None, None], 1.0 / it.dispersion[:, None, None], lam.shape)
    qty = rng.poisson(lam * noise)
    # occasional bulk (B2B) orders at distribution centres
    bulk = (rng.random(lam.shape) < 0.003) & lc.is_dc[None, :, None] & (lam > 0)
    qty = qty + np.where(bulk, rng.poisson(lam * rng.uniform(8, 25, lam.shape)), 0)
    # customer returns three days after the sale
    lagged = np.zeros_like(qty)
    lagged[:, :, 3:] = qty[:, :, :-3]
    rr = np.array([c.return_rate for c in CATEGORIES])[it.cat]
    returns = rng.binomial(lagged, rr[:, None, None]) * is_open[None, :, :]
    return qty, returns


def _demand(rng: np.random.Generator, it: _Items, lc: _Locs, dates: np.ndarray) -> dict[str, np.ndarray]:
    """Daily sales, returns and discount arrays, shape (S, L, T)."""
    s_n, l_n, t_n = it.rate.size, lc.codes.size, dates.size
    f = _demand_profile(it, lc, dates)

    # a few SKUs are never sold at some locations (not in the assortment there)
    assort = rng.random((s_n, l_n)) >= 0.04

    disc = _markdowns(_promotions(rng, s_n, l_n, t_n), it, lc, dates)
    uplift = (1.0 - disc) ** (-it.elasticity[:, None, None])

    lam = (
        it.rate[:, None, None]
        * lc.scale[None, :, None]
        * f["weekly"][None, :, :]
        * f["season"][:, None, :]
        * f["trend"][:, None, :]
        * f["life"][:, None, :]
        * f["events"]
        * uplift
        * assort[:, :, None]
        * f["is_open"][None, :, :]
    )
    _stockout_spells(rng, lam, lc, t_n)
    qty, returns = _sold_and_returned(rng, it, lc, lam, f["is_open"])
    return {"qty": qty, "returns": returns, "disc": disc, "assort": assort}


def _doc_strings(prefix: str, dates: np.ndarray, seq: np.ndarray) -> np.ndarray:
    day = np.char.replace(np.datetime_as_string(dates, unit="D"), "-", "")
    return np.char.add(np.char.add(prefix, day), np.char.zfill(seq.astype(str), 3)).astype(object)


def _documents(
    rng: np.random.Generator,
    cells: np.ndarray,
    amount: np.ndarray,
    doc_type: str,
    it: _Items,
    lc: _Locs,
    dates: np.ndarray,
) -> tuple[Frame, Frame]:
    """One POSTED header per (location, day) with any units, one line per SKU (some split in two)."""
    t_n = dates.size
    loc, t, s = np.nonzero(cells.transpose(1, 2, 0))  # ordered by location, day, SKU
    q = cells[s, loc, t].astype(float)
    a = amount[s, loc, t]
    key = loc * t_n + t
    ukey, doc_of_line = np.unique(key, return_inverse=True)
    hl, ht = ukey // t_n, ukey % t_n
    prefix = "XSCK" if doc_type == "SALE" else "XSTH"
    doc_no = _doc_strings(prefix, dates[ht], hl + 1)
    seconds = 20 * 3600 + rng.integers(0, 4 * 3600, ukey.size)
    header: Frame = {
        "doc_no": doc_no,
        "wh_code": lc.codes[hl],
        "doc_date": dates[ht],
        "doc_type": np.full(ukey.size, doc_type, dtype=object),
        "status": np.full(ukey.size, "POSTED", dtype=object),
        "remark": np.full(ukey.size, None if doc_type == "SALE" else "顾客退货", dtype=object),
        "updated_at": dates[ht].astype("datetime64[s]") + seconds.astype("timedelta64[s]"),
    }
    # split ~8 % of the lines with two or more units into two lines (several tickets that day)
    split = (q >= 2) & (rng.random(q.size) < 0.08)
    rep = np.repeat(np.arange(q.size), 1 + split)
    first = np.cumsum(1 + split) - (1 + split)
    new_q, new_a = q[rep].copy(), a[rep].copy()
    part = np.floor(q[split] * rng.uniform(0.2, 0.8, int(split.sum())))
    part = np.clip(part, 1, q[split] - 1)
    part_a = np.round(a[split] * part / q[split], 2)
    new_q[first[split]], new_q[first[split] + 1] = part, q[split] - part
    new_a[first[split]], new_a[first[split] + 1] = part_a, np.round(a[split] - part_a, 2)
    doc_idx = doc_of_line[rep]
    starts = np.r_[0, np.flatnonzero(np.diff(doc_idx)) + 1]
    line_no = np.arange(doc_idx.size) - np.repeat(starts, np.diff(np.r_[starts, doc_idx.size])) + 1
    line: Frame = {
        "doc_no": doc_no[doc_idx],
        "line_no": line_no,
        "mat_code": it.frame["mat_code"][s[rep]],
        "qty": new_q,
        "price": np.round(new_a / new_q, 2),
        "amount": new_a,
    }
    return header, line


def _cancelled(
    rng: np.random.Generator, it: _Items, lc: _Locs, dates: np.ndarray, n_headers: int
) -> tuple[Frame, Frame]:
    """A few documents entered by mistake and cancelled the next day (extraction must skip them)."""
    t_n = dates.size
    n_docs = max(3, round(0.002 * n_headers))
    open_cells = np.flatnonzero((np.arange(t_n)[None, :] < lc.open_until[:, None]).ravel())
    cell = np.sort(rng.choice(open_cells, min(n_docs, open_cells.size), replace=False))
    hl, ht = cell // t_n, cell % t_n
    kind = np.where(rng.random(cell.size) < 0.8, "SALE", "RETURN")
    kind[0] = "SALE"
    prefix = np.where(kind == "SALE", "XSCK", "XSTH")
    day = np.char.replace(np.datetime_as_string(dates[ht], unit="D"), "-", "")
    doc_no = np.char.add(np.char.add(prefix, day), (hl + 901).astype(str)).astype(object)
    seconds = 24 * 3600 + rng.integers(8 * 3600, 12 * 3600, cell.size)
    header: Frame = {
        "doc_no": doc_no,
        "wh_code": lc.codes[hl],
        "doc_date": dates[ht],
        "doc_type": kind.astype(object),
        "status": np.full(cell.size, "CANCELLED", dtype=object),
        "remark": np.full(cell.size, "重复录入，已作废", dtype=object),
        "updated_at": dates[ht].astype("datetime64[s]") + seconds.astype("timedelta64[s]"),
    }
    n_lines = rng.integers(1, 7, cell.size)
    doc_idx = np.repeat(np.arange(cell.size), n_lines)
    sku = rng.integers(0, it.rate.size, doc_idx.size)
    qty = rng.integers(1, 21, doc_idx.size).astype(float)
    line: Frame = {
        "doc_no": doc_no[doc_idx],
        "line_no": np.arange(doc_idx.size) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines) + 1,
        "mat_code": it.frame["mat_code"][sku],
        "qty": qty,
        "price": it.price[sku],
        "amount": np.round(qty * it.price[sku], 2),
    }
    return header, line


def _concat(frames: Sequence[Frame]) -> Frame:
    return {k: np.concatenate([f[k] for f in frames]) for k in frames[0]}


def _stock_on_hand(
    rng: np.random.Generator,
    it: _Items,
    lc: _Locs,
    recent: np.ndarray,
    active: np.ndarray,
    assort: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Units on hand (S, L open) and the short and overstocked cells: unbalanced on purpose."""
    s_n, l_n = it.rate.size, lc.n_open
    sells = recent > 0
    # healthy cover by default; DCs hold more
    cover = np.where(lc.is_dc[None, :l_n], rng.uniform(14, 45, (s_n, l_n)), rng.uniform(7, 30, (s_n, l_n)))
    # unbalanced SKUs: 1-2 short locations and 1-2 overstocked ones
    n_sell = (sells & active).sum(axis=1)
    unbalanced = (n_sell >= 2) & (rng.random(s_n) < 0.45)
    order = np.argsort(np.where(sells & active, rng.random((s_n, l_n)), 2.0), axis=1)  # selling locations first
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(l_n)[None, :].repeat(s_n, 0), axis=1)
    n_short = np.where(n_sell >= 4, rng.integers(1, 3, s_n), 1)
    n_over = np.where(n_sell >= 4, rng.integers(1, 3, s_n), 1)
    short = unbalanced[:, None] & (rank < n_short[:, None])
    over = unbalanced[:, None] & (rank >= n_short[:, None]) & (rank < (n_short + n_over)[:, None])
    # some noise on the balanced ones too
    noise = rng.random((s_n, l_n))
    short |= ~unbalanced[:, None] & sells & active & (noise < 0.05)
    over |= ~unbalanced[:, None] & sells & active & (noise > 0.95)
    cover = np.where(short, np.where(rng.random((s_n, l_n)) < 0.3, 0.0, rng.uniform(0.0, 2.9, (s_n, l_n))), cover)
    cover = np.where(over, rng.uniform(60, 200, (s_n, l_n)), cover)
    on_hand = np.where(
        short, np.floor(cover * recent), np.where(over, np.ceil(cover * recent), np.round(cover * recent))
    )
    # no recent sale (slow movers, fresh launches): a few units
    idle = active & ~sells
    on_hand = np.where(idle, rng.integers(0, 6, (s_n, l_n)), on_hand)
    # not in the assortment: mostly nothing, sometimes dead stock
    dead = ~assort[:, :l_n] & (rng.random((s_n, l_n)) < 0.3)
    on_hand = np.where(~assort[:, :l_n], np.where(dead, rng.integers(1, 21, (s_n, l_n)), 0), on_hand)
    # discontinued: leftovers at about half of the locations
    left = it.discontinued[:, None] & (rng.random((s_n, l_n)) < 0.5)
    on_hand = np.where(it.discontinued[:, None], np.where(left, rng.integers(1, 41, (s_n, l_n)), 0), on_hand)
    return on_hand, short, over


def _split_lots(
    rng: np.random.Generator, it: _Items, cs: np.ndarray, oh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Perishable items hold 1-3 lots, split at random; others one row with an empty lot.
    Returns (stock row of each lot, lot index, lot quantity)."""
    perishable = it.shelf[cs] > 0
    n_lots = np.where(perishable, 1 + rng.binomial(2, 0.4, cs.size), 1)
    n_lots = np.maximum(np.minimum(n_lots, oh.astype(int)), 1)
    w = rng.gamma(1.0, 1.0, (cs.size, 3)) * (np.arange(3)[None, :] < n_lots[:, None])
    alloc = np.floor(oh[:, None] * w / w.sum(axis=1, keepdims=True))
    alloc[:, 0] += oh - alloc.sum(axis=1)
    cell_of, lot_ix = np.nonzero(np.arange(3)[None, :] < n_lots[:, None])
    lot_qty = alloc[cell_of, lot_ix]
    keep = (lot_qty > 0) | (lot_ix == 0)
    return cell_of[keep], lot_ix[keep], lot_qty[keep]


def _lot_numbers(
    rng: np.random.Generator, shelf: np.ndarray, lot_ix: np.ndarray, snap: np.datetime64
) -> tuple[np.ndarray, np.ndarray]:
    """Batch numbers (from the production date) and expiry dates of the lots; empty when not perishable."""
    lot_perishable = shelf > 0
    # newest lot young, older lots older; about one lot in ten near or past its expiry date
    frac = np.where(lot_ix == 0, rng.uniform(0.0, 0.25, lot_ix.size), rng.uniform(0.25, 0.8, lot_ix.size))
    age = np.floor(frac * shelf)
    near = rng.random(lot_ix.size) < 0.10
    remaining = rng.integers(-3, 8, lot_ix.size)
    age = np.where(near, np.clip(shelf - remaining, 0, None), age)
    produced = snap - age.astype("timedelta64[D]")
    expiry = produced + np.where(lot_perishable, shelf, 0).astype("timedelta64[D]")
    year = produced.astype("datetime64[Y]").astype(int) + 1970
    month = produced.astype("datetime64[M]").astype(int) % 12 + 1
    dom = (produced - produced.astype("datetime64[M]")).astype(int) + 1
    yymmdd = np.char.zfill(((year % 100) * 10000 + month * 100 + dom).astype(str), 6)
    batch = np.char.add(np.char.add("L", yymmdd), np.char.add("-", (lot_ix + 1).astype(str))).astype(object)
    batch = np.where(lot_perishable, batch, "").astype(object)
    return batch, _null_where(~lot_perishable, expiry)


def _stock(
    rng: np.random.Generator, it: _Items, lc: _Locs, qty: np.ndarray, assort: np.ndarray, snap: np.datetime64
) -> Frame:
    """The stock snapshot: unbalanced on purpose, lots with expiry dates for perishable items."""
    s_n, l_n = it.rate.size, lc.n_open
    recent = qty[:, :l_n, -RECENT_DAYS:].mean(axis=2)  # (S, L) open locations only
    sells = recent > 0
    active = ~it.discontinued[:, None] & assort[:, :l_n]
    on_hand, short, over = _stock_on_hand(rng, it, lc, recent, active, assort)

    healthy = active & sells & ~short & ~over
    transit = np.where(
        healthy & (rng.random((s_n, l_n)) < 0.12),
        np.ceil(recent * rng.uniform(3, 10, (s_n, l_n)) / it.pack[:, None]) * it.pack[:, None],
        0.0,
    )
    keep_zero = active & (rng.random((s_n, l_n)) < 0.5)  # ERPs keep some zero balance rows
    has_row = (on_hand > 0) | (transit > 0) | keep_zero
    cs, cl = np.nonzero(has_row)
    oh, tr = on_hand[cs, cl], transit[cs, cl]

    cell_of, lot_ix, lot_qty = _split_lots(rng, it, cs, oh)
    batch, exp_obj = _lot_numbers(rng, it.shelf[cs[cell_of]], lot_ix, snap)

    first_row = lot_ix == 0
    reserved = np.where(
        first_row & (rng.random(lot_ix.size) < 0.10), np.floor(lot_qty * rng.uniform(0.05, 0.25, lot_ix.size)), 0.0
    )
    return {
        "snap_date": np.full(lot_ix.size, snap, dtype="datetime64[D]"),
        "wh_code": lc.codes[cl[cell_of]],
        "mat_code": it.frame["mat_code"][cs[cell_of]],
        "batch_no": batch,
        "exp_date": exp_obj,
        "qty_onhand": lot_qty,
        "qty_transit": np.where(first_row, tr[cell_of], 0.0),
        "qty_reserved": reserved,
    }


def _lanes(rng: np.random.Generator, lc: _Locs) -> Frame:
    """Directed lanes between open locations; freight and transit days from the distance."""
    n = lc.n_open
    f, t = np.nonzero(~np.eye(n, dtype=bool))
    lon, lat = np.radians(lc.lon[:n]), np.radians(lc.lat[:n])
    h = np.sin((lat[t] - lat[f]) / 2) ** 2 + np.cos(lat[f]) * np.cos(lat[t]) * np.sin((lon[t] - lon[f]) / 2) ** 2
    km = np.maximum(2 * 6371 * np.arcsin(np.sqrt(h)) * 1.25, 25.0)  # road distance ~ 1.25 x great circle
    same_region = lc.region[f] == lc.region[t]
    from_dc = lc.is_dc[f]
    allowed = (lc.ship[f] == 1) & (lc.recv[t] == 1)
    # stores only ship to other regions on some lanes
    allowed &= from_dc | lc.is_dc[t] | same_region | (rng.random(f.size) < 0.65)
    unit = np.round((0.06 + 0.00035 * km) * np.where(from_dc, 1.0, 1.3), 4)
    trip = np.round(80 + 0.9 * km + np.where(same_region, 0, 120), 2)
    lead = np.where(km < 300, 1, np.ceil(km / 700) + 1).astype(int)
    min_qty = np.where(from_dc, 50, 20)
    cap = _null_where(from_dc, rng.integers(5, 16, f.size) * 100)
    f, t = f[allowed], t[allowed]
    return {
        "from_wh": lc.codes[f],
        "to_wh": lc.codes[t],
        "distance_km": np.round(km[allowed]).astype(int),
        "freight_unit": unit[allowed],
        "freight_trip": trip[allowed],
        "lead_days": lead[allowed],
        "min_qty": min_qty[allowed],
        "max_qty": cap[allowed],
    }


def _replenish(rng: np.random.Generator, it: _Items, lc: _Locs) -> Frame:
    """Lead times per SKU and open location; about 5 % of the pairs are missing on purpose."""
    s_n, l_n = it.rate.size, lc.n_open
    s, loc = np.nonzero(np.ones((s_n, l_n), dtype=bool))
    keep = rng.random(s.size) >= 0.05
    keep[rng.integers(0, s.size)] = False  # at least one gap, whatever the size
    s, loc = s[keep], loc[keep]
    dc = lc.is_dc[loc]
    avg = np.where(dc, rng.uniform(5, 15, s.size), rng.uniform(1.5, 4.5, s.size))
    return {
        "wh_code": lc.codes[loc],
        "mat_code": it.frame["mat_code"][s],
        "lt_avg_days": np.round(avg, 1),
        "lt_sd_days": np.round(avg * rng.uniform(0.1, 0.4, s.size), 2),
        "review_days": np.where(dc, 7, rng.choice(np.array([1, 3, 7]), s.size)),
    }


def _positions(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each of ``values`` in ``codes`` (every value is one of the codes)."""
    order = np.argsort(codes)
    return order[np.searchsorted(codes[order], values)]


#: the demo's suppliers (fictional), one per category in CATEGORIES order, the last a second source
_VENDORS: tuple[tuple[str, str], ...] = (
    ("V-RY01", "华东乳业供应链有限公司"),
    ("V-SX02", "江南生鲜农产品有限公司"),
    ("V-YL03", "南方饮料集团有限公司"),
    ("V-XS04", "百味食品股份有限公司"),
    ("V-RH05", "洁家日化用品有限公司"),
    ("V-HL06", "悦颜个人护理用品有限公司"),
    ("V-DQ07", "智享小家电制造有限公司"),
    ("V-ZH08", "联华综合贸易有限公司"),
)


def _purchasing(
    rng: np.random.Generator, it: _Items, lc: _Locs, stock: Frame, qty: np.ndarray, snap: np.datetime64
) -> dict[str, Frame]:
    """Purchasing info records and purchase orders (open, partly received, closed and cancelled).

    Info records: one central contract per item still sold (about 4 % have none: the planner picks
    a supplier), its supplier by category, a MOQ of 1 to 10 packs ordered in whole packs, a purchase
    price a little under the standard cost, an order fee; for about 30 % of the contracts the
    supplier's own lead time (else the lead-time table's applies); for about 10 % of the items a
    distribution centre's own record (another supplier, a longer lead time, a larger MOQ).
    Purchase orders: about 8 % of the SKU-locations still sold have one open (some promised for a
    day already past: overdue; some partly received), and among the short ones (under a week of
    cover) about a quarter, so that stock already ordered is seen; plus closed and cancelled orders
    the extraction must skip. Drawn from its own generator: the other tables do not change."""
    s_n, l_n = it.rate.size, lc.n_open
    sold = ~it.discontinued
    has_info = sold & (rng.random(s_n) >= 0.04)
    si = np.nonzero(has_info)[0]
    vendor = np.minimum(it.cat[si], len(_VENDORS) - 2)
    codes, names = np.array([v for v, _ in _VENDORS], dtype=object), np.array([n for _, n in _VENDORS], dtype=object)
    pack = it.pack[si].astype(float)
    cost = np.asarray(it.frame["std_cost"], dtype=float)[si]
    own_lt = rng.random(si.size) < 0.30
    lt = np.round(rng.uniform(3, 12, si.size), 1)
    central = {
        "mat_code": it.frame["mat_code"][si],
        "wh_code": np.full(si.size, None, dtype=object),
        "vendor_code": codes[vendor],
        "vendor_name": names[vendor],
        "lt_days": _null_where(~own_lt, lt),
        "lt_sd_days": _null_where(~own_lt, np.round(lt * rng.uniform(0.1, 0.3, si.size), 2)),
        "moq": pack * rng.choice(np.array([1, 2, 5, 10]), si.size),
        "lot_qty": pack,
        "purch_price": np.round(cost * rng.uniform(0.92, 1.0, si.size), 4),
        "order_fee": np.round(rng.uniform(50, 300, si.size), 0),
    }
    dcs = np.nonzero(lc.is_dc[:l_n])[0]
    own = si[rng.random(si.size) < 0.10] if dcs.size else si[:0]
    dc = dcs[rng.integers(0, max(dcs.size, 1), own.size)] if dcs.size else own
    o_lt = np.round(rng.uniform(10, 20, own.size), 1)
    o_pack = it.pack[own].astype(float)
    local = {
        "mat_code": it.frame["mat_code"][own],
        "wh_code": lc.codes[dc].astype(object),
        "vendor_code": np.full(own.size, _VENDORS[-1][0], dtype=object),
        "vendor_name": np.full(own.size, _VENDORS[-1][1], dtype=object),
        "lt_days": o_lt,
        "lt_sd_days": np.round(o_lt * 0.25, 2),
        "moq": o_pack * 20,
        "lot_qty": o_pack,
        "purch_price": np.round(np.asarray(it.frame["std_cost"], dtype=float)[own] * 0.9, 4),
        "order_fee": np.full(own.size, 120.0),
    }
    info = _concat([central, local])
    info["info_id"] = np.arange(1, len(info["mat_code"]) + 1)

    # on hand per open cell, from the snapshot's lots
    cs = _positions(np.asarray(it.frame["mat_code"]), np.asarray(stock["mat_code"]))
    cl = _positions(np.asarray(lc.codes[:l_n]), np.asarray(stock["wh_code"]))
    oh = np.zeros((s_n, l_n))
    np.add.at(oh, (cs, cl), np.asarray(stock["qty_onhand"], dtype=float))
    recent = qty[:, :l_n, -RECENT_DAYS:].mean(axis=2)
    cells = sold[:, None] & (recent > 0) & (lc.recv[:l_n].astype(bool))[None, :]
    short = cells & (oh < recent * 7)
    pick = (cells & (rng.random((s_n, l_n)) < 0.08)) | (short & (rng.random((s_n, l_n)) < 0.25))
    ps, pl = np.nonzero(pick)
    n = ps.size
    p_pack = it.pack[ps].astype(float)
    ordered = np.maximum(np.ceil(recent[ps, pl] * rng.uniform(7, 30, n) / p_pack), 1) * p_pack
    state = rng.choice(np.array(["OPEN", "PARTIAL", "CLOSED", "CANCELLED"]), n, p=[0.62, 0.13, 0.17, 0.08])
    part = np.clip(np.floor(ordered * rng.uniform(0.2, 0.7, n) / p_pack) * p_pack, p_pack, ordered - p_pack)
    state = np.where((state == "PARTIAL") & (ordered < 2 * p_pack), "OPEN", state)  # one pack cannot be split
    received = np.where(state == "PARTIAL", part, np.where(state == "CLOSED", ordered, 0.0))
    promise = snap + rng.integers(-3, 15, n).astype("timedelta64[D]")
    promise = np.where(state == "CLOSED", snap - rng.integers(1, 30, n).astype("timedelta64[D]"), promise)
    placed = promise - rng.integers(5, 20, n).astype("timedelta64[D]")
    placed = np.minimum(placed, snap - np.timedelta64(1, "D"))
    seq = np.arange(1, n + 1)
    po_no = _doc_strings("PO", placed.astype("datetime64[D]"), seq)
    vend = np.array([v for v, _ in _VENDORS], dtype=object)[np.minimum(it.cat[ps], len(_VENDORS) - 2)]
    return {
        "md_purch_info": info,
        "po_header": {
            "po_no": po_no,
            "vendor_code": vend,
            "wh_code": lc.codes[pl].astype(object),
            "po_date": placed.astype("datetime64[D]"),
            "promise_date": promise.astype("datetime64[D]"),
            "status": state.astype(object),
        },
        "po_line": {
            "po_no": po_no,
            "line_no": np.ones(n, dtype=int),
            "mat_code": it.frame["mat_code"][ps],
            "qty_ordered": ordered,
            "qty_received": received,
        },
    }


def build(
    *, seed: int = 42, n_skus: int = 300, n_locations: int = 6, end_date: dt.date = DEMO_END_DATE, days: int = 730
) -> dict[str, Frame]:
    """Generate the demo ERP tables in memory (column arrays per ERP table), without writing them."""
    if n_skus < 10:
        raise ValueError(f"n_skus must be at least 10, got {n_skus}")
    if not 2 <= n_locations <= len(_LOCATIONS):
        raise ValueError(f"n_locations must be between 2 and {len(_LOCATIONS)}, got {n_locations}")
    if days < 60:
        raise ValueError(f"days must be at least 60, got {days}")
    rng = np.random.default_rng(seed)
    end = np.datetime64(end_date, "D")
    start = end - np.timedelta64(days - 1, "D")
    dates = start + np.arange(days).astype("timedelta64[D]")
    it = _items(rng, n_skus, start, days)
    lc = _locations(rng, n_locations, days)
    dem = _demand(rng, it, lc, dates)
    qty, ret, disc = dem["qty"], dem["returns"], dem["disc"]
    price = it.price[:, None, None]
    sale_amount = np.round(qty * price * (1.0 - disc), 2)
    ret_amount = np.round(ret * price, 2)
    sh, sl = _documents(rng, qty, sale_amount, "SALE", it, lc, dates)
    rh, rl = _documents(rng, ret, ret_amount, "RETURN", it, lc, dates)
    ch, cl = _cancelled(rng, it, lc, dates, sh["doc_no"].size)
    frames = {
        "md_material": it.frame,
        "md_warehouse": lc.frame,
        "tr_route": _lanes(rng, lc),
        "md_replenish": _replenish(rng, it, lc),
        "so_header": _concat([sh, rh, ch]),
        "so_line": _concat([sl, rl, cl]),
        "inv_balance": _stock(rng, it, lc, qty, dem["assort"], end + np.timedelta64(1, "D")),
    }
    snap = end + np.timedelta64(1, "D")
    return {**frames, **_purchasing(np.random.default_rng([seed, 7]), it, lc, frames["inv_balance"], qty, snap)}


def panel_erp_frames(
    *,
    qty: np.ndarray,
    listed: np.ndarray,
    end_date: dt.date,
    items: Frame,
    locations: Frame,
    lon: np.ndarray,
    lat: np.ndarray,
    seed: int = 42,
) -> dict[str, Frame]:
    """The demo ERP tables around a given daily sales panel (a real one, such as M5's), in memory.

    ``qty`` (S items, L locations, T days to ``end_date``) holds the units sold; ``listed`` (S, L) is
    true where the item is in the location's assortment. ``items`` gives ``md_material``'s columns
    (``mat_code``, ``mat_name``, ``mat_name_en``, ``cat_code``, ``uom``, ``std_cost``,
    ``list_price``, ``pack_qty``; ``shelf_days`` may be absent: not perishable); ``locations``
    ``md_warehouse``'s (``wh_code``, ``wh_name``, ``wh_kind``, ``region_name``), every location open
    and shipping. The rest is generated as :func:`build` does for its own demand: one sales document
    per location and day (lines at the list price), the lanes from the coordinates, lead times, and
    an unbalanced stock snapshot on the day after ``end_date``. The same arguments give the same rows."""
    rng = np.random.default_rng(seed)
    s_n, l_n, t_n = qty.shape
    end = np.datetime64(end_date, "D")
    dates = end - np.timedelta64(t_n - 1, "D") + np.arange(t_n).astype("timedelta64[D]")
    shelf = np.asarray(items.get("shelf_days", np.full(s_n, -1)), dtype=float)
    shelf = np.where(np.isnan(shelf), -1, shelf).astype(int)
    price = np.asarray(items["list_price"], dtype=float)
    frame: Frame = {
        **{k: np.asarray(v) for k, v in items.items() if k != "shelf_days"},
        "barcode": _ean13(rng, s_n),
        "shelf_days": _null_where(shelf < 0, shelf),
        "abc_fixed": np.full(s_n, None, dtype=object),
        "status": np.full(s_n, "A", dtype=object),
        "created_on": np.full(s_n, dates[0] - np.timedelta64(365, "D")),
    }
    zeros = np.zeros(s_n)
    it = _Items(
        frame=frame, cat=zeros.astype(int), price=price, shelf=shelf, pack=np.asarray(items["pack_qty"]),
        rate=zeros, growth=zeros, season_jitter=zeros, elasticity=zeros, dispersion=zeros,
        launch=zeros.astype(int), stop=np.full(s_n, t_n), discontinued=np.zeros(s_n, dtype=bool),
    )  # fmt: skip
    kind = np.asarray(locations["wh_kind"], dtype=object)
    lframe: Frame = {
        **{k: np.asarray(v, dtype=object) for k, v in locations.items()},
        "ship_flag": np.ones(l_n, dtype=int),
        "recv_flag": np.ones(l_n, dtype=int),
        "is_closed": np.zeros(l_n, dtype=int),
    }
    lc = _Locs(
        frame=lframe, codes=lframe["wh_code"], is_dc=kind == "DC", scale=np.ones(l_n),
        open_until=np.full(l_n, t_n), n_open=l_n, lon=np.asarray(lon, dtype=float), lat=np.asarray(lat, dtype=float),
        region=lframe["region_name"], ship=lframe["ship_flag"], recv=lframe["recv_flag"],
    )  # fmt: skip
    cells = np.asarray(qty, dtype=float)
    sh, sl = _documents(rng, cells, np.round(cells * price[:, None, None], 2), "SALE", it, lc, dates)
    frames = {
        "md_material": frame,
        "md_warehouse": lframe,
        "tr_route": _lanes(rng, lc),
        "md_replenish": _replenish(rng, it, lc),
        "so_header": sh,
        "so_line": sl,
        "inv_balance": _stock(rng, it, lc, cells, np.asarray(listed, dtype=bool), end + np.timedelta64(1, "D")),
    }
    snap = end + np.timedelta64(1, "D")
    return {**frames, **_purchasing(np.random.default_rng([seed, 7]), it, lc, frames["inv_balance"], cells, snap)}


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------


def _pylist(arr: np.ndarray) -> list[Any]:
    """Column values as Python objects for the DBAPI (dates as datetime.date, None for NULL)."""
    if arr.dtype.kind == "M":
        return arr.astype(object).tolist()
    if arr.dtype == object:
        return [v.item() if isinstance(v, np.generic) else v for v in arr.tolist()]
    return arr.tolist()


def _records(frame: Frame, chunk: int) -> Iterator[list[dict[str, Any]]]:
    names = list(frame)
    cols = [_pylist(frame[c]) for c in names]
    n = len(cols[0]) if cols else 0
    for lo in range(0, n, chunk):
        yield [dict(zip(names, row, strict=True)) for row in zip(*(c[lo : lo + chunk] for c in cols), strict=True)]


def _copy_postgres(conn: sa.Connection, table: sa.Table, frame: Frame) -> None:
    """Bulk load with PostgreSQL COPY (psycopg 3)."""
    names = list(frame)
    cols = [_pylist(frame[c]) for c in names]
    raw = conn.connection.driver_connection
    cur = raw.cursor()  # type: ignore[union-attr]
    with cur.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as cp:
        for row in zip(*cols, strict=True):
            cp.write_row(row)


def generate(
    url: str,
    *,
    seed: int = 42,
    n_skus: int = 300,
    n_locations: int = 6,
    end_date: dt.date = DEMO_END_DATE,
    days: int = 730,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Drop and recreate the demo ERP tables at `url`, fill them; return rows per ERP table.

    ``url`` is any SQLAlchemy URL (SQLite file, PostgreSQL, MariaDB/MySQL); for a SQLite file the
    parent folder is created. ``md_warehouse`` gets ``n_locations`` open locations (2 to 14, the
    first ones of a fixed list) plus one store that closed during the window (``is_closed = 1``:
    sales history up to its closing day, no stock, lanes or lead times). Sales cover ``days`` days up to ``end_date``; the stock snapshot is
    dated ``end_date + 1``. Rows are inserted in bulk (PostgreSQL: COPY; others: executemany in
    chunks) inside one transaction per table. The same arguments always give the same rows.
    """
    say = progress or (lambda _msg: None)
    say(f"generating demo ERP: {n_skus} SKUs, {n_locations} locations, {days} days to {end_date} (seed {seed})")
    frames = build(seed=seed, n_skus=n_skus, n_locations=n_locations, end_date=end_date, days=days)
    return write_erp(url, frames, seed=seed, progress=progress)


def write_erp(
    url: str, frames: dict[str, Frame], *, seed: int = 42, progress: Callable[[str], None] | None = None
) -> dict[str, int]:
    """Drop and recreate the demo ERP tables at ``url`` and write ``frames`` (:func:`build`,
    :func:`panel_erp_frames`) into them, one transaction per table (PostgreSQL: COPY); return rows
    per table. ``seed`` seeds the warehouse's own tables (the transfer requests Tiaobo exports)."""
    say = progress or (lambda _msg: None)
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    md = erp_metadata()
    engine = sa.create_engine(url)
    counts: dict[str, int] = {}
    try:
        from pipelines.demo.warehouse import ensure_tables, request_metadata

        with engine.begin() as conn:
            md.drop_all(conn, checkfirst=True)
            request_metadata().drop_all(conn, checkfirst=True)
            md.create_all(conn)
        ensure_tables(engine, seed)  # the transfer requests Tiaobo exports, and the warehouse's state
        for name in ERP_TABLES:
            frame = frames[name]
            n = len(next(iter(frame.values())))
            say(f"writing {name}: {n:,} rows")
            table = md.tables[name]
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
                    _copy_postgres(conn, table, frame)
                else:
                    for batch in _records(frame, _CHUNK_ROWS):
                        conn.execute(table.insert(), batch)
            counts[name] = n
    finally:
        engine.dispose()
    say("demo ERP ready: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return counts
