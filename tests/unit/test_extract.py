"""Extraction (pipelines/extract.py) without a database: casting, generated SQL, the incremental
read plan, reconciliation entries (the extract stage on SQLite sources:
tests/integration/test_extract_stage.py)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy.dialects import mysql, postgresql

from pipelines import contract, extract
from pipelines.config import GenericTable, load_config
from pipelines.extract import plan_sales_read

# ---------------------------------------------------------------------------------- casting


def test_fast_cast_matches_lenient_cast_and_falls_back_on_bad_values():
    t = contract.SALES
    schema = extract.arrow_schema(t)
    good = pa.table(
        {
            "sku": ["A", "B"],
            "location": ["L", "L"],
            "date": ["2025-01-02", "2025-01-03 10:00:00"],
            "quantity": ["1.5", "2"],
            "returns": ["0", None],
            "revenue": ["3", "4.25"],
        }
    )
    typed, fails = extract.conform_batch(good, t, schema, 0)
    assert len(fails) == 0
    assert typed.column("date").to_pylist() == [datetime(2025, 1, 2), datetime(2025, 1, 3)]
    assert typed.column("quantity").to_pylist() == [1.5, 2.0] and typed.column("returns").to_pylist() == [0.0, None]
    bad = good.set_column(3, "quantity", pa.array(["1.5", "inf"]))
    typed, fails = extract.conform_batch(bad, t, schema, 10)
    assert typed.column("quantity").to_pylist() == [1.5, None]
    assert fails[["row_number", "column_name", "value"]].values.tolist() == [[11, "quantity", "inf"]]
    assert json.loads(fails["row_json"].iloc[0])["sku"] == "B"


def test_failures_survive_the_sales_store_round_trip():
    fails = pd.DataFrame(
        {
            "row_number": [5, 5, 7],
            "column_name": ["quantity", "date", "revenue"],
            "value": ["x", "y", "z"],
            "row_json": ['{"a": "中"}', '{"a": "中"}', '{"b": 1}'],
        }
    )
    col = extract._failures_column(fails, 4, 4)
    assert col.null_count == 2
    back = extract._failures_from_column(col, 100)
    assert back.values.tolist() == [
        [101, "quantity", "x", '{"a": "中"}'],
        [101, "date", "y", '{"a": "中"}'],
        [103, "revenue", "z", '{"b": 1}'],
    ]


# ---------------------------------------------------------------------------------- generic SQL


def test_generic_query_quotes_identifiers_and_aggregates_sales():
    gt = GenericTable(
        table="erp.Sales Lines",
        columns={"sku": "ItemCode", "location": "Whs", "date": "DocDate", "quantity": "Qty", "revenue": "LineTotal"},
        defaults={"returns": 0},
    )
    q = extract.generic_query("sales", gt)
    pg = str(q.stmt.compile(dialect=postgresql.dialect()))
    my = str(q.stmt.compile(dialect=mysql.dialect()))
    assert '"erp"."Sales Lines"."ItemCode" AS sku' in pg and 'sum("erp"."Sales Lines"."Qty") AS quantity' in pg
    assert "GROUP BY" in pg and "`erp`.`Sales Lines`.`Whs` AS location" in my
    assert q.params == ["start_date", "end_before"] and q.reads == {
        "erp.Sales Lines": ["DocDate", "ItemCode", "LineTotal", "Qty", "Whs"]
    }
    daily = extract.generic_query("sales", gt.model_copy(update={"aggregate": False}))
    assert "GROUP BY" not in str(daily.stmt.compile(dialect=postgresql.dialect()))
    stock = extract.generic_query(
        "stock",
        GenericTable(
            table="inv", columns={"on_hand": "Qty On Hand"}, defaults={"lot": "", "in_transit": 0, "reserved": 0}
        ),
    )
    text = str(stock.stmt.compile(dialect=postgresql.dialect()))
    assert '"inv"."Qty On Hand" AS on_hand' in text and "%(snapshot_date)s::DATE AS snapshot_date" in text
    assert "NULL AS expiry_date" in text and stock.params == ["snapshot_date"]


def test_generic_profile_needs_every_table():
    with pytest.raises(Exception, match="profile 'generic' needs a tables"):
        load_config(overrides={"source": {"profile": "generic", "tables": {"items": {"table": "x"}}}})


# ---------------------------------------------------------------------------------- read plan

D = date(2025, 3, 10)


@pytest.mark.parametrize(
    ("wm", "cov", "look", "full", "expected"),
    [
        (None, None, 7, False, date(2025, 1, 1)),  # first run
        (D, (date(2024, 12, 1), D), 7, False, D - timedelta(days=6)),  # normal night
        (D, (date(2024, 12, 1), D), 0, False, D + timedelta(days=1)),  # no look-back
        (D, (date(2024, 12, 1), D), 7, True, date(2025, 1, 1)),  # full refresh
        (D, (date(2025, 2, 1), D), 7, False, date(2025, 1, 1)),  # store starts too late
        (D, (date(2024, 12, 1), D - timedelta(days=30)), 7, False, date(2025, 1, 1)),  # store has a gap
        (
            D + timedelta(days=40),
            (date(2024, 12, 1), D + timedelta(days=40)),
            7,
            False,
            D + timedelta(days=5) - timedelta(days=6),
        ),  # backfill
    ],
)
def test_plan_sales_read(wm, cov, look, full, expected):
    start, why = plan_sales_read(date(2025, 1, 1), D + timedelta(days=5), wm, cov, look, full)
    assert start == expected, why


# ---------------------------------------------------------------------------------- reconciliation


def test_reconciliation_never_passes_a_non_finite_sum():
    from pipelines.extract import Staged, _reconcile_entry

    assert _reconcile_entry("sales", "t", 2, 5.0, Staged(rows=2, quantity_sum=5.0))["ok"]
    assert not _reconcile_entry("sales", "t", 2, float("inf"), Staged(rows=2, quantity_sum=5.0))["ok"]
    assert not _reconcile_entry("sales", "t", 2, float("inf"), Staged(rows=2, quantity_sum=float("inf")))["ok"]
    assert not _reconcile_entry("sales", "t", 2, 5.0, Staged(rows=3, quantity_sum=5.0))["ok"]


# ---------------------------------------------------------------------------------- dates with a zone


def test_parse_days_takes_zoned_values_to_their_local_day_and_plain_ones_as_written():
    s = pd.Series(
        [
            "2025-03-10",  # ends in "-10" but has no time: no zone, its own day
            "2025-03-10T20:00:00-05:00",  # 2025-03-10 21:00 in New York, 2025-03-11 09:00 in Shanghai
            "2025-03-10 16:30:00Z",
            "2025-03-10 23:59:59",
            "2025-02-30T10:00:00+08:00",  # no such day
            None,
        ],
        dtype=object,
    )
    ny = extract.parse_days(s, "America/New_York")
    sh = extract.parse_days(s, "Asia/Shanghai")
    assert ny.tolist()[:4] == [pd.Timestamp("2025-03-10")] * 4
    assert sh.tolist()[:4] == [pd.Timestamp(d) for d in ("2025-03-10", "2025-03-11", "2025-03-11", "2025-03-10")]
    assert ny.isna().tolist() == [False] * 4 + [True, True]
    aware = pd.Series(pd.to_datetime(["2025-03-10T20:00:00-05:00"], utc=True))
    assert extract.parse_days(aware, "Asia/Shanghai").tolist() == [pd.Timestamp("2025-03-11")]


def test_fast_cast_converts_zone_aware_timestamps_to_the_configured_zone():
    t = contract.SALES
    batch = pa.table(
        {
            "sku": ["A"],
            "location": ["S"],
            "date": pa.array(pd.to_datetime(["2025-03-10T20:00:00-05:00"], utc=True)),
            "quantity": [1.0],
            "returns": [0.0],
            "revenue": [1.0],
        }
    )
    typed, fails = extract.conform_batch(batch, t, extract.arrow_schema(t), 0, "Asia/Shanghai")
    assert typed.column("date").to_pylist() == [pd.Timestamp("2025-03-11").to_pydatetime()] and not len(fails)
