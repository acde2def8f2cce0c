"""Validation rules without Great Expectations, on tiny hand-made frames: the row rules and their
pandas semantics, schema drift, table and volume rules (the GX checks: tests/integration/test_validate_stage.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines import contract
from pipelines.extract import cast_lenient
from pipelines.validate import (
    row_rules,
    rule_mask,
    schema_checks,
    table_checks,
    volume_checks,
)
from tests.factories import VALIDATION_RUN, raw_frames, typed

RUN = VALIDATION_RUN
REFS = {"items": ["A", "B"], "locations": ["L1", "L2"]}


def test_table_checks_missing_snapshot_and_stale_sales():
    f = raw_frames()
    f["stock"] = f["stock"][f["stock"]["location"] == "L2"]
    f["sales"] = f["sales"][f["sales"]["date"] < "2026-11-24"]
    out = table_checks(
        {k: cast_lenient(v, contract.TABLES[k])[0] for k, v in f.items()},
        {"sales": 1, "stock": 2, "items": 2, "locations": 2},
        {},
        RUN,
        0.05,
    )
    failed = {r["rule"]: r for r, _ in out if not r["passed"]}
    assert "L1" in failed["snapshot_for_every_active_location"]["observed"]
    assert "2026-11-23" in failed["fresh"]["observed"]


def test_empty_table_and_bad_share_fail():
    f = {k: cast_lenient(v, contract.TABLES[k])[0] for k, v in raw_frames().items()}
    out = table_checks(f, {"sales": 0, "stock": 3, "items": 2, "locations": 2}, {"stock": 1}, RUN, 0.05)
    failed = {(r["table_name"], r["rule"]) for r, _ in out if not r["passed"]}
    assert ("sales", "not_empty") in failed
    assert ("stock", "bad_row_share") in failed


def test_rule_mask_has_the_expectation_semantics():
    df = pd.DataFrame(
        {"q": [1.0, -1.0, None], "s": ["A", "Z", None], "d": pd.to_datetime(["2026-11-24", "2026-11-25", None])}
    )
    rules = {r.column + r.rule: r for r in row_rules("sales", REFS, RUN)}
    between = rules["quantitynon_negative"].__class__(
        "non_negative", "q", "ExpectColumnValuesToBeBetween", {"column": "q", "min_value": 0, "max_value": None}
    )
    assert rule_mask(between, df).tolist() == [False, True, False]  # a null is not out of range
    in_set = between.__class__("known_sku", "s", "ExpectColumnValuesToBeInSet", {"column": "s", "value_set": ["A"]})
    assert rule_mask(in_set, df).tolist() == [False, True, False]
    future = rules["datenot_in_future"].__class__(
        "not_in_future", "d", "ExpectColumnValuesToBeBetween", {**rules["datenot_in_future"].kwargs, "column": "d"}
    )
    assert rule_mask(future, df).tolist() == [False, True, False]
    not_null = between.__class__("not_null", "q", "ExpectColumnValuesToNotBeNull", {"column": "q"})
    assert rule_mask(not_null, df).tolist() == [False, False, True]


def _parquet(tmp_path, name: str, df: pd.DataFrame):
    path = tmp_path / f"extract_{name}.parquet"
    df.to_parquet(path, index=False)
    return path


def test_schema_drift_missing_renamed_new_and_wrong_type(tmp_path):
    sales, _ = typed("sales", raw_frames()["sales"])
    ok = {r["rule"]: r for r, _ in schema_checks("sales", _parquet(tmp_path, "sales", sales), None)}
    assert ok["schema_columns"]["passed"] and ok["schema_types"]["passed"] and "schema_new_columns" not in ok

    out = {
        r["rule"]: (r, ex)
        for r, ex in schema_checks("sales", _parquet(tmp_path, "sales", sales.drop(columns=["returns"])), None)
    }
    r, ex = out["schema_columns"]
    assert not r["passed"] and r["level"] == "table" and "missing required column(s) returns" in r["observed"]
    assert ex.to_dict("records") == [{"column": "returns", "problem": "missing"}]

    src = ["sku", "location", "date", "qty_sold", "returns", "revenue", "channel"]  # quantity renamed, channel new
    out = {r["rule"]: (r, ex) for r, ex in schema_checks("sales", _parquet(tmp_path, "sales", sales), src)}
    r, ex = out["schema_columns"]
    assert not r["passed"] and "missing required column(s) quantity" in r["observed"]
    assert "qty_sold, channel (renamed?)" in r["observed"]
    new = out["schema_new_columns"][0]
    assert not new["passed"] and new["level"] == "warn" and new["failing_rows"] == 2

    out = {
        r["rule"]: r
        for r, _ in schema_checks("sales", _parquet(tmp_path, "sales", sales.astype({"quantity": "str"})), None)
    }
    assert not out["schema_types"]["passed"] and "quantity: type" in out["schema_types"]["observed"]


def test_volume_rule_band_and_no_history():
    hist = pd.DataFrame(
        {
            "table_name": ["sales"] * 3,
            "run_date": pd.to_datetime(["2026-11-22", "2026-11-23", "2026-11-24"]),
            "rows": [100.0, 110.0, 90.0],
        }
    )

    def res(n, band=0.5, h=hist):
        return {(r["table_name"], r["rule"]): r for r, _ in volume_checks({"sales": n, "items": 2}, h, band)}

    assert res(60)[("sales", "volume")]["passed"] and res(150)[("sales", "volume")]["passed"]
    low = res(40)[("sales", "volume")]
    assert not low["passed"] and "trailing median 100 over 3 published run(s)" in low["observed"]
    assert low["observed_value"] == pytest.approx(0.4)
    assert not res(60, band=0.2)[("sales", "volume")]["passed"]  # the band is configurable
    first = res(40, h=hist.iloc[:0])[("sales", "volume")]
    assert first["passed"] and "no published history yet" in first["observed"]
    assert res(40)[("sales", "row_count")]["observed_value"] == 40.0


def test_company_wide_missing_day_stops_but_a_quiet_store_does_not():
    f = {k: cast_lenient(v, contract.TABLES[k])[0] for k, v in raw_frames().items()}
    extra = pd.DataFrame(
        {
            "sku": ["A"],
            "location": ["L1"],
            "date": [pd.Timestamp("2026-11-21")],
            "quantity": [1.0],
            "returns": [0.0],
            "revenue": [1.0],
        }
    )
    f["sales"] = pd.concat([f["sales"], extra], ignore_index=True)  # 21, 23, 24: the 22nd has no sale anywhere
    counts = {"sales": 5, "stock": 3, "items": 2, "locations": 2}
    out = {r["rule"]: (r, ex) for r, ex in table_checks(f, counts, {}, RUN, 0.05)}
    r, ex = out["no_missing_days"]
    assert not r["passed"] and "2026-11-22" in r["observed"] and ex["missing_date"].tolist() == ["2026-11-22"]
    tolerated = {r["rule"]: r for r, _ in table_checks(f, counts, {}, RUN, 0.05, max_missing_days=1)}
    assert tolerated["no_missing_days"]["passed"]
    # L2 sells nothing on the 23rd (only L1 does): normal, not a missing day
    assert out["fresh"][0]["passed"]


def test_control_characters_in_any_text_column_fail_their_row():
    rules = {(r.column, r.rule): r for r in row_rules("items", REFS, RUN)}
    for col in ("sku", "name", "category"):
        assert rules[(col, "no_control_characters")].expectation == "ExpectColumnValuesToNotMatchRegex"
    assert ("unit_cost", "no_control_characters") not in rules  # numbers have no such rule
    df = pd.DataFrame({"name": ["绿茶", "Tea\x00", "bell\x07", "tab\there", "line\nbreak", None, "del\x7f"]})
    rule = rules[("name", "no_control_characters")]
    assert rule_mask(rule, df).tolist() == [False, True, True, False, False, False, True]
