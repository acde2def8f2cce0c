"""Validation on tiny hand-made frames: which rows are quarantined with which reason, which tables stop the run."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from pipelines import contract
from pipelines.config import ValidationConfig
from pipelines.context import RunContext
from pipelines.extract import _empty_failures, cast_lenient
from pipelines.validate import (
    ValidationStop,
    _Validator,
    read_history,
    row_rules,
    rule_mask,
    schema_checks,
    table_checks,
    validate_stage,
    validate_table,
    volume_checks,
)

RUN = pd.Timestamp("2026-11-25")


@pytest.fixture(scope="module")
def validator():
    return _Validator()


def frames() -> dict[str, pd.DataFrame]:
    items = pd.DataFrame(
        {
            "sku": ["A", "B"],
            "name": ["纯牛奶 250ml", "Soap"],
            "name_en": ["Milk", None],
            "category": ["dairy", "home"],
            "unit_cost": [2.0, 1.0],
            "unit_price": [3.5, 2.0],
            "pack_size": [12, 1],
            "shelf_life_days": [21, None],
            "abc_override": [None, "A"],
            "active": [True, True],
        }
    )
    locations = pd.DataFrame(
        {
            "location": ["L1", "L2"],
            "name": ["上海仓", "北京店"],
            "type": ["dc", "store"],
            "region": ["华东", "华北"],
            "can_ship": [True, True],
            "can_receive": [True, True],
            "active": [True, True],
        }
    )
    lanes = pd.DataFrame(
        {
            "from_location": ["L1"],
            "to_location": ["L2"],
            "cost_per_unit": [0.2],
            "fixed_cost_per_shipment": [30.0],
            "transit_days": [2],
            "min_units": [10],
            "capacity": [None],
        }
    )
    sales = pd.DataFrame(
        {
            "sku": ["A", "A", "B", "B"],
            "location": ["L1", "L2", "L1", "L2"],
            "date": pd.to_datetime(["2026-11-23", "2026-11-24", "2026-11-24", "2026-11-24"]),
            "quantity": [3.0, 4.0, 1.0, 0.0],
            "returns": [0.0, 0.0, 0.0, 1.0],
            "revenue": [10.5, 14.0, 2.0, -2.0],
        }
    )
    stock = pd.DataFrame(
        {
            "sku": ["A", "A", "B"],
            "location": ["L1", "L2", "L2"],
            "snapshot_date": [RUN] * 3,
            "lot": ["", "", ""],
            "expiry_date": [None, None, None],
            "on_hand": [10.0, 2.0, 5.0],
            "in_transit": [0.0, 0.0, 0.0],
            "reserved": [0.0, 0.0, 0.0],
        }
    )
    return {"items": items, "locations": locations, "lanes": lanes, "sales": sales, "stock": stock}


def typed(name: str, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return cast_lenient(df, contract.TABLES[name])


REFS = {"items": ["A", "B"], "locations": ["L1", "L2"]}


def test_clean_sales_pass(validator):
    df, fails = typed("sales", frames()["sales"])
    clean, q, results = validate_table("sales", df, fails, REFS, RUN, validator)
    assert len(clean) == 4 and len(q) == 0
    assert all(r["passed"] for r in results)


def test_bad_sales_rows_are_quarantined_with_reason(validator):
    s = frames()["sales"]
    bad = pd.DataFrame(
        {
            "sku": ["A", "ZZ", "B", "A", "B"],
            "location": ["L1", "L1", "L9", "L1", "L2"],
            "date": ["2026-11-20", "2026-11-20", "2026-11-20", "2026-11-26", "2026-11-21"],
            "quantity": ["-2", "1", "1", "1", "abc"],
            "returns": [0, 0, 0, 0, 0],
            "revenue": [0, 1, 1, 1, 1],
        }
    )
    raw = pd.concat([s.astype({"date": "str"}), bad], ignore_index=True)
    df, fails = typed("sales", raw)
    clean, q, _ = validate_table("sales", df, fails, REFS, RUN, validator)
    reasons = {(int(r.row_number), r.rule, r.column_name) for r in q.itertuples()}
    assert (4, "non_negative", "quantity") in reasons
    assert (5, "known_sku", "sku") in reasons
    assert (6, "known_location", "location") in reasons
    assert (7, "not_in_future", "date") in reasons
    assert (8, "type", "quantity") in reasons  # text where a number is expected
    assert sorted(clean.index) == [0, 1, 2, 3]
    row = json.loads(q[q["rule"] == "type"].iloc[0]["row_json"])
    assert row["quantity"] == "abc"  # nothing lost: the original value is kept


def test_nan_and_inf_quantities(validator):
    s = frames()["sales"].copy()
    s.loc[0, "quantity"] = float("nan")
    s.loc[1, "quantity"] = float("inf")
    df, fails = typed("sales", s)
    clean, q, _ = validate_table("sales", df, fails, REFS, RUN, validator)
    rules = dict(zip(q["row_number"], q["rule"], strict=False))
    assert rules[0] == "not_null"
    assert rules[1] == "type"  # inf is not a quantity: kept in quarantine with its value
    assert 1 not in clean.index and 0 not in clean.index


def test_duplicated_file_drop_keeps_one_copy_and_conflicts_keep_none(validator):
    s = frames()["sales"]
    conflict = s.iloc[[0]].assign(quantity=99.0)
    raw = pd.concat([s, s, conflict], ignore_index=True)
    df, fails = typed("sales", raw)
    clean, q, _ = validate_table("sales", df, fails, REFS, RUN, validator)
    assert set(q.loc[q["rule"] == "duplicate_row", "row_number"]) == {4, 5, 6, 7}
    assert set(q.loc[q["rule"] == "duplicate_key", "row_number"]) == {0, 8}
    assert sorted(clean.index) == [1, 2, 3]


def test_chinese_names_survive(validator):
    df, fails = typed("items", frames()["items"])
    clean, q, _ = validate_table("items", df, fails, {}, RUN, validator)
    assert clean["name"].tolist() == ["纯牛奶 250ml", "Soap"] and len(q) == 0


def test_table_checks_missing_snapshot_and_stale_sales():
    f = frames()
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
    f = {k: cast_lenient(v, contract.TABLES[k])[0] for k, v in frames().items()}
    out = table_checks(f, {"sales": 0, "stock": 3, "items": 2, "locations": 2}, {"stock": 1}, RUN, 0.05)
    failed = {(r["table_name"], r["rule"]) for r, _ in out if not r["passed"]}
    assert ("sales", "not_empty") in failed
    assert ("stock", "bad_row_share") in failed


def _stage_folder(tmp_config, f: dict[str, pd.DataFrame]) -> RunContext:
    from pipelines.context import policies_frame

    ctx = RunContext(tmp_config, date(2026, 11, 25))
    ctx.run_dir.mkdir(parents=True)
    f = {
        "transfer_status": contract.empty("transfer_status"),
        **f,
        "lead_times": contract.empty("lead_times"),
        "policies": policies_frame(tmp_config),
    }
    for name, df in f.items():
        t, fails = cast_lenient(df.reset_index(drop=True), contract.TABLES[name])
        t.to_parquet(ctx.run_dir / f"extract_{name}.parquet")
        (fails if len(fails) else _empty_failures()).to_parquet(ctx.run_dir / f"castfail_{name}.parquet")
    return ctx


def test_stage_writes_clean_tables_and_run_id(tmp_config):
    ctx = _stage_folder(tmp_config, frames())
    res = validate_stage(ctx)
    assert res.counts["sales"] == 4 and res.counts["quarantined"] == 0
    first = ctx.run_id
    assert first.startswith("20261125-")
    validate_stage(ctx)
    assert ctx.run_id == first  # same inputs, same fingerprint


def test_stage_stops_when_too_many_bad_rows(tmp_config):
    f = frames()
    f["sales"] = f["sales"].assign(quantity=[-1.0, 4.0, 1.0, 0.0])  # 25% bad
    ctx = _stage_folder(tmp_config, f)
    with pytest.raises(ValidationStop) as err:
        validate_stage(ctx)
    assert err.value.table == "sales" and err.value.rule == "bad_row_share"
    assert "non_negative" in str(err.value)  # the examples name the rule of the failing rows
    assert not ctx.exists("sales")  # nothing clean was staged for later stages


def test_lead_times_and_transit_days_out_of_sane_bounds_are_quarantined(validator):
    lt = pd.DataFrame(
        {
            "sku": ["A", "B", "A"],
            "location": ["L1", "L1", "L2"],
            "lead_time_days": [7.0, 400.0, 20.0],
            "lead_time_std_days": [1.0, 1.0, -1.0],
            "review_period_days": [7.0, 7.0, 7.0],
        }
    )
    df, fails = typed("lead_times", lt)
    clean, q, _ = validate_table("lead_times", df, fails, REFS, RUN, validator)
    assert {(int(r.row_number), r.rule, r.column_name) for r in q.itertuples()} == {
        (1, "within_bounds", "lead_time_days"),
        (2, "within_bounds", "lead_time_std_days"),
    }
    tight = ValidationConfig(max_lead_time_days=10, max_transit_days=1)
    clean, q, _ = validate_table("lead_times", df, fails, REFS, RUN, validator, tight)
    assert set(q.loc[q["column_name"] == "lead_time_days", "row_number"]) == {1, 2}  # the bound is configurable
    lanes, lfails = typed("lanes", frames()["lanes"])
    _, lq, _ = validate_table("lanes", lanes, lfails, REFS, RUN, validator, tight)
    assert lq[["rule", "column_name"]].values.tolist() == [["within_bounds", "transit_days"]]


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
    sales, _ = typed("sales", frames()["sales"])
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
    f = {k: cast_lenient(v, contract.TABLES[k])[0] for k, v in frames().items()}
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


def test_stage_builds_data_docs_and_keeps_history(tmp_config):
    ctx = _stage_folder(tmp_config, frames())
    res = validate_stage(ctx)
    index = ctx.output_dir / "data_docs" / "index.html"
    assert res.paths["data_docs"] == str(index) and index.exists()
    assert "sales" in index.read_text(encoding="utf-8")
    hist = read_history(tmp_config.reporting_url(), ctx.run_date)
    assert set(hist["attempt"]) == {1} and set(hist["status"]) == {"validated"}
    dq = ctx.read("dq_results")
    assert dq.loc[(dq["table_name"] == "sales") & (dq["rule"] == "row_count"), "observed_value"].tolist() == [4.0]
    assert (
        "no published history yet"
        in dq.loc[(dq["table_name"] == "sales") & (dq["rule"] == "volume"), "observed"].iloc[0]
    )


def test_stopped_run_is_kept_in_history_with_docs_in_staging(tmp_config):
    ctx = _stage_folder(tmp_config, frames())  # then the sales extract loses a required column
    pd.read_parquet(ctx.run_dir / "extract_sales.parquet").drop(columns=["returns"]).to_parquet(
        ctx.run_dir / "extract_sales.parquet", index=False
    )
    with pytest.raises(ValidationStop) as err:
        validate_stage(ctx)
    assert err.value.table == "sales" and err.value.rule == "schema_columns"
    assert "missing required column(s) returns" in str(err.value)
    assert (ctx.run_dir / "data_docs" / "index.html").exists()
    assert not (ctx.output_dir / "data_docs").exists()  # nothing next to the published outputs
    hist = read_history(tmp_config.reporting_url(), ctx.run_date)
    stop = hist[(hist["rule"] == "schema_columns") & (hist["table_name"] == "sales")]
    assert stop[["status", "passed", "attempt"]].values.tolist() == [["stopped", False, 1]]
