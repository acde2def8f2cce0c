"""The demo ERP generator and its extraction profile (sql/sources/demo), on small SQLite databases."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from pipelines import contract
from pipelines.demo.source import DEMO_END_DATE, ERP_TABLES, PROFILE_DIR, erp_metadata, generate
from pipelines.extract import window_params

pytestmark = pytest.mark.integration  # generates demo ERPs in SQLite

SMALL = {"seed": 7, "n_skus": 30, "n_locations": 6, "days": 120}
END = DEMO_END_DATE
START = END - dt.timedelta(days=SMALL["days"] - 1)
SNAPSHOT = END + dt.timedelta(days=1)
PARAMS = {**window_params(START, END), "snapshot_date": SNAPSHOT}
MANIFEST = yaml.safe_load((PROFILE_DIR / "manifest.yaml").read_text(encoding="utf-8"))
PRIMARY_KEYS = {t.name: [c.name for c in t.primary_key.columns] for t in erp_metadata().sorted_tables}


def _reconcile_params(start: dt.date, end: dt.date) -> dict[str, Any]:
    return {k: v for k, v in window_params(start, end).items() if k in MANIFEST["reconcile"]["sales"]["params"]}


def run_query(engine: sa.Engine, file: str, params: dict[str, Any]) -> pd.DataFrame:
    """Run one profile query the way the extractor does (text() with plain Python dates)."""
    with engine.connect() as conn:
        result = conn.execute(sa.text((PROFILE_DIR / file).read_text(encoding="utf-8")), params)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def staged(engine: sa.Engine, table: str, **override: Any) -> pd.DataFrame:
    entry = MANIFEST["tables"][table]
    params = {k: override.get(k, PARAMS[k]) for k in entry["params"]}
    return contract.canonical_order(contract.conform(run_query(engine, entry["query"], params), table), table)


def erp_table(engine: sa.Engine, name: str) -> pd.DataFrame:
    with engine.connect() as conn:
        df = pd.read_sql(sa.text(f"select * from {name}"), conn)
    return df.sort_values(PRIMARY_KEYS[name], kind="mergesort").reset_index(drop=True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[sa.Engine, dict[str, int]]:
    path = tmp_path_factory.mktemp("demo") / "sub" / "erp.sqlite"  # parent folder created by generate
    messages: list[str] = []
    counts = generate(f"sqlite:///{path}", progress=messages.append, **SMALL)
    assert any("so_line" in m for m in messages) and len(messages) >= len(ERP_TABLES)
    engine = sa.create_engine(f"sqlite:///{path}")
    yield engine, counts
    engine.dispose()


@pytest.fixture(scope="module", name="sales")
def staged_sales(demo: tuple[sa.Engine, dict[str, int]]) -> pd.DataFrame:
    return staged(demo[0], "sales")


def test_counts_are_the_rows_written_and_keys_are_unique(demo):
    engine, counts = demo
    assert set(counts) == set(ERP_TABLES)
    for name in ERP_TABLES:
        df = erp_table(engine, name)
        assert len(df) == counts[name] > 0, name
        assert not df.duplicated(PRIMARY_KEYS[name]).any(), name
    assert counts["md_material"] == SMALL["n_skus"]
    assert counts["md_warehouse"] == SMALL["n_locations"] + 1  # plus the closed store


def test_same_seed_same_tables_other_seed_other_tables(demo, tmp_path):
    engine, _ = demo
    again = sa.create_engine(f"sqlite:///{tmp_path / 'again.sqlite'}")
    other = sa.create_engine(f"sqlite:///{tmp_path / 'other.sqlite'}")
    generate(str(again.url), **SMALL)
    generate(str(other.url), **{**SMALL, "seed": SMALL["seed"] + 1})
    for name in ERP_TABLES:
        pd.testing.assert_frame_equal(erp_table(engine, name), erp_table(again, name), check_exact=True)
    for name in ("md_material", "so_line", "inv_balance"):
        assert not erp_table(engine, name).equals(erp_table(other, name)), name
    again.dispose()
    other.dispose()


def test_generate_drops_and_recreates(tmp_path):
    url = f"sqlite:///{tmp_path / 'erp.sqlite'}"
    first = generate(url, **{**SMALL, "n_skus": 12, "days": 60})
    second = generate(url, **{**SMALL, "n_skus": 12, "days": 60})
    assert first == second
    engine = sa.create_engine(url)
    assert len(erp_table(engine, "so_line")) == second["so_line"]
    engine.dispose()


@pytest.mark.parametrize(
    "table", ["items", "locations", "lanes", "sales", "stock", "lead_times", "sourcing", "purchase_orders"]
)
def test_profile_query_returns_the_contract_columns(demo, table):
    engine, _ = demo
    raw = run_query(
        engine, MANIFEST["tables"][table]["query"], {k: PARAMS[k] for k in MANIFEST["tables"][table]["params"]}
    )
    assert list(raw.columns) == contract.TABLES[table].names
    df = contract.conform(raw, table, extra="error")
    assert list(df.columns) == contract.TABLES[table].names
    assert len(df) > 0
    assert not contract.duplicated_keys(df, table).any()


def test_transfer_status_query_returns_the_contract_columns_before_any_order(demo):
    engine, _ = demo
    entry = MANIFEST["tables"]["transfer_status"]
    raw = run_query(engine, entry["query"], {k: PARAMS[k] for k in entry["params"]})
    assert list(raw.columns) == contract.TABLES["transfer_status"].names
    assert raw.empty  # no order has been exported to a freshly generated ERP


def test_manifest_names_existing_sources_and_the_query_parameters(demo):
    engine, _ = demo
    insp = sa.inspect(engine)
    assert MANIFEST["profile"] == "demo" and MANIFEST["description"]
    entries = {**MANIFEST["tables"], **{f"reconcile_{k}": v for k, v in MANIFEST["reconcile"].items()}}
    assert set(MANIFEST["tables"]) == {
        *("items", "locations", "lanes", "sales", "stock", "lead_times"),
        *("transfer_status", "sourcing", "purchase_orders"),
    }
    for name, entry in entries.items():
        sql = (PROFILE_DIR / entry["query"]).read_text(encoding="utf-8")
        assert set(sa.text(sql).compile().params) == set(entry["params"]), name
        assert "::" not in sql, name  # portable casts only
        assert not re.search(r"\b(SELECT|FROM|WHERE|JOIN|GROUP BY|WITH|AS)\b", sql), name  # lowercase SQL
        assert sql.rstrip().endswith("select * from final"), name
        for src, cols in entry["reads"].items():
            present = {c["name"] for c in insp.get_columns(src)}
            assert set(cols) <= present, (name, src, set(cols) - present)
            assert re.search(rf"\bfrom {src}\b", sql), (name, src)
            for col in cols:
                assert re.search(rf"\b{col}\b", sql), (name, col)


def test_sales_only_posted_documents_returns_in_their_own_column(demo, sales):
    engine, _ = demo
    header, line = erp_table(engine, "so_header"), erp_table(engine, "so_line")
    lines = line.merge(header, on="doc_no")
    cancelled = lines[lines["status"] == "CANCELLED"]
    assert len(cancelled) > 0 and (cancelled["doc_type"] == "SALE").any()
    posted = lines[lines["status"] == "POSTED"]
    sale = posted[posted["doc_type"] == "SALE"]
    ret = posted[posted["doc_type"] == "RETURN"]
    assert sales["quantity"].sum() == pytest.approx(sale["qty"].sum())
    assert sales["quantity"].sum() < lines.loc[lines["doc_type"] == "SALE", "qty"].sum()
    assert sales["returns"].sum() == pytest.approx(ret["qty"].sum()) and sales["returns"].sum() > 0
    assert sales["revenue"].sum() == pytest.approx(sale["amount"].sum() - ret["amount"].sum())
    assert (sales["quantity"] >= 0).all() and (sales["returns"] >= 0).all()
    # per cell, against pandas on the raw documents
    key = ["mat_code", "wh_code", "doc_date"]
    expect = sale.groupby(key)["qty"].sum().rename("q").reset_index()
    expect["doc_date"] = pd.to_datetime(expect["doc_date"])
    got = sales.merge(expect, left_on=["sku", "location", "date"], right_on=key, how="outer")
    assert np.allclose(got["quantity"].fillna(0), got["q"].fillna(0))
    # a day with both a sale and a return of the same SKU nets the revenue
    both = sales[(sales["returns"] > 0) & (sales["quantity"] > 0)]
    assert len(both) > 0


def test_sales_window_is_inclusive_and_reconciles(demo):
    engine, _ = demo
    start, end = END - dt.timedelta(days=13), END - dt.timedelta(days=6)
    window = staged(engine, "sales", **window_params(start, end))
    assert window["date"].min() == pd.Timestamp(start) and window["date"].max() == pd.Timestamp(end)
    rec = run_query(engine, "reconcile_sales.sql", _reconcile_params(start, end))
    assert list(rec.columns) == ["row_count", "quantity_sum"] and len(rec) == 1
    assert int(rec["row_count"][0]) == len(window)
    assert float(rec["quantity_sum"][0]) == pytest.approx(window["quantity"].sum())
    empty = run_query(
        engine,
        "reconcile_sales.sql",
        _reconcile_params(END + dt.timedelta(days=5), END + dt.timedelta(days=9)),
    )
    assert int(empty["row_count"][0]) == 0 and float(empty["quantity_sum"][0]) == 0


def test_stock_is_deliberately_unbalanced(demo, sales):
    engine, _ = demo
    stock = staged(engine, "stock")
    assert (stock["snapshot_date"] == pd.Timestamp(SNAPSHOT)).all()
    recent = sales[sales["date"] > pd.Timestamp(END - dt.timedelta(days=28))]
    rate = recent.groupby(["sku", "location"])["quantity"].sum() / 28.0
    on_hand = stock.groupby(["sku", "location"])["on_hand"].sum()
    cover = (on_hand.reindex(rate.index).fillna(0.0) / rate).unstack()
    both = (cover.min(axis=1) < 3) & (cover.max(axis=1) > 60)
    assert both.sum() >= 3, cover.describe()
    assert (on_hand.reindex(rate.index).fillna(0.0) == 0).any()  # some locations hold nothing


def test_perishable_lots_have_expiry_dates(demo):
    engine, _ = demo
    stock = staged(engine, "stock").merge(staged(engine, "items"), on="sku")
    perishable = stock["shelf_life_days"].notna()
    assert perishable.any() and (~perishable).any()
    assert (stock.loc[perishable, "lot"] != "").all() and stock.loc[perishable, "expiry_date"].notna().all()
    assert (stock.loc[~perishable, "lot"] == "").all() and stock.loc[~perishable, "expiry_date"].isna().all()
    left = (stock.loc[perishable, "expiry_date"] - pd.Timestamp(SNAPSHOT)).dt.days
    assert (left <= 7).any()  # near or past expiry
    assert (left <= stock.loc[perishable, "shelf_life_days"]).all()
    assert (stock[["on_hand", "in_transit", "reserved"]] >= 0).all().all()
    assert (stock["in_transit"] > 0).any() and (stock["reserved"] > 0).any()


def test_demand_is_intermittent_for_some_series_and_some_never_sell(demo, sales):
    engine, _ = demo
    items = staged(engine, "items")
    locations = staged(engine, "locations")
    days_with_sales = sales[sales["quantity"] > 0].groupby(["sku", "location"]).size()
    assert (days_with_sales < 0.5 * SMALL["days"]).any()  # many zero days
    assert (days_with_sales > 0.9 * SMALL["days"]).any()  # and fast movers
    open_locs = locations.loc[locations["active"], "location"]
    old = erp_table(engine, "md_material")
    old = old.loc[(pd.to_datetime(old["created_on"]) < pd.Timestamp(START)) & (old["status"] == "A"), "mat_code"]
    pairs = pd.MultiIndex.from_product([old, open_locs], names=["sku", "location"])
    sold = sales.groupby(["sku", "location"])["quantity"].sum()
    assert (sold.reindex(pairs).fillna(0) == 0).any()
    assert set(items["sku"]) >= set(sales["sku"])


def test_life_cycle_new_and_discontinued_items(demo, sales):
    engine, _ = demo
    material = erp_table(engine, "md_material")
    created = pd.to_datetime(material.set_index("mat_code")["created_on"])
    first = sales[sales["quantity"] > 0].groupby("sku")["date"].min()
    last = sales[sales["quantity"] > 0].groupby("sku")["date"].max()
    new = created[created >= pd.Timestamp(START)].index
    assert len(new) > 0
    assert (first.reindex(new).dropna() > created[new].reindex(first.reindex(new).dropna().index)).all()
    assert (first.reindex(new).dropna() > pd.Timestamp(START) + pd.Timedelta(days=10)).all()
    gone = material.loc[material["status"] == "D", "mat_code"]
    assert len(gone) > 0
    assert (last.reindex(gone).dropna() < pd.Timestamp(END) - pd.Timedelta(days=14)).all()
    items = staged(engine, "items").set_index("sku")
    assert not items.loc[gone, "active"].any() and items["active"].sum() == len(items) - len(gone)
    assert items["abc_override"].dropna().isin(["A", "B", "C"]).all() and items["abc_override"].notna().any()


def test_prices_promotions_and_weekly_pattern(demo, sales):
    engine, _ = demo
    items = staged(engine, "items").set_index("sku")
    sold = sales[(sales["quantity"] > 0) & (sales["returns"] == 0)]
    unit = sold["revenue"] / sold["quantity"]
    list_price = items.loc[sold["sku"], "unit_price"].to_numpy()
    assert (unit <= list_price + 0.01).all()
    assert (unit < 0.89 * list_price).any()  # price cuts on promotion days
    assert (items["unit_price"] > items["unit_cost"]).all()
    stores = staged(engine, "locations").query("type == 'store'")["location"]
    store_sales = sales[sales["location"].isin(stores)]
    by_day = store_sales.groupby(store_sales["date"].dt.day_of_week)["quantity"].sum()
    assert by_day[5] > by_day[1]  # Saturday beats Tuesday in stores


def test_locations_lanes_and_names(demo):
    engine, _ = demo
    locations = staged(engine, "locations")
    assert set(locations["type"]) == {"dc", "store"}
    assert locations["region"].nunique() >= 4
    assert locations["name"].str.contains(r"[\u4e00-\u9fff]").all()  # UTF-8 Chinese names survive
    closed = locations.loc[~locations["active"], "location"]
    assert len(closed) == 1
    assert not staged(engine, "stock")["location"].isin(closed).any()
    assert not staged(engine, "lead_times")["location"].isin(closed).any()
    lanes = staged(engine, "lanes")
    assert not lanes["from_location"].isin(closed).any() and not lanes["to_location"].isin(closed).any()
    region = locations.set_index("location")["region"]
    same = region[lanes["from_location"]].to_numpy() == region[lanes["to_location"]].to_numpy()
    assert same.any() and (~same).any()
    assert lanes.loc[same, "cost_per_unit"].mean() < lanes.loc[~same, "cost_per_unit"].mean()
    assert lanes.loc[same, "transit_days"].mean() < lanes.loc[~same, "transit_days"].mean()
    assert lanes["capacity"].isna().any() and lanes["capacity"].notna().any()
    shippers = set(locations.loc[locations["can_ship"], "location"])
    assert set(lanes["from_location"]) <= shippers
    items = staged(engine, "items")
    assert items["name"].str.contains(r"[\u4e00-\u9fff]").all() and items["name_en"].notna().all()
    assert items["category"].nunique() == 7


def test_some_sku_locations_have_no_lead_time(demo):
    engine, _ = demo
    lead = staged(engine, "lead_times")
    locations = staged(engine, "locations")
    items = staged(engine, "items")
    pairs = pd.MultiIndex.from_product([items["sku"], locations.loc[locations["active"], "location"]])
    have = pd.MultiIndex.from_frame(lead[["sku", "location"]])
    assert len(pairs.difference(have)) > 0
    assert have.isin(pairs).all()
    assert (lead["lead_time_days"] > 0).all() and (lead["lead_time_std_days"] >= 0).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [({"n_skus": 5}, "n_skus"), ({"n_locations": 1}, "n_locations"), ({"days": 20}, "days")],
)
def test_bad_sizes_are_refused(tmp_path: Path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate(f"sqlite:///{tmp_path / 'x.sqlite'}", **kwargs)


def test_purchasing_queries_map_info_records_and_keep_only_what_is_still_to_come(demo):
    engine, _ = demo
    info, head, line = (erp_table(engine, n) for n in ("md_purch_info", "po_header", "po_line"))
    src = staged(engine, "sourcing")
    # a central contract is written for every location ('*'); a DC's own record keeps its code
    assert len(src) == len(info) and (src["location"] == "*").sum() == info["wh_code"].isna().sum()
    assert set(src.loc[src["location"] != "*", "location"]) <= set(info["wh_code"].dropna())
    quoted = info["lt_days"].notna()
    assert src["lead_time_days"].notna().sum() == quoted.sum() and 0 < quoted.sum() < len(info)
    assert (src["moq"] >= src["order_multiple"]).all() and (src["order_multiple"] >= 1).all()
    po = staged(engine, "purchase_orders")
    lines = line.merge(head, on="po_no")
    assert set(lines["status"]) == {"OPEN", "PARTIAL", "CLOSED", "CANCELLED"}
    still = lines[lines["status"].isin(["OPEN", "PARTIAL"]) & (lines["qty_ordered"] > lines["qty_received"])]
    assert sorted(po["po_no"]) == sorted(still["po_no"])  # closed and cancelled orders are not on order
    want = still.set_index("po_no")
    got = po.set_index("po_no")
    assert (got["open_qty"] == (want["qty_ordered"] - want["qty_received"]).loc[got.index]).all()
    partial = want.index[want["status"] == "PARTIAL"]
    assert len(partial) and (got.loc[partial, "open_qty"] < want.loc[partial, "qty_ordered"]).all()
    assert (got["expected_date"] < pd.Timestamp(SNAPSHOT)).any()  # some are overdue: still on order
