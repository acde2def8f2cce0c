"""Validation with Great Expectations on tiny hand-made frames: quarantined rows and their reasons,
the stage's clean tables, stops, Data Docs and history (split from tests/unit/test_validate.py)."""

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
    validate_stage,
    validate_table,
)
from tests.factories import VALIDATION_RUN, raw_frames, typed

RUN = VALIDATION_RUN

# starts Great Expectations; the stage tests also migrate a SQLite reporting database
pytestmark = pytest.mark.integration

REFS = {"items": ["A", "B"], "locations": ["L1", "L2"]}


@pytest.fixture(scope="module")
def validator():
    return _Validator()


def test_clean_sales_pass(validator):
    df, fails = typed("sales", raw_frames()["sales"])
    clean, q, results = validate_table("sales", df, fails, REFS, RUN, validator)
    assert len(clean) == 4 and len(q) == 0
    assert all(r["passed"] for r in results)


def test_bad_sales_rows_are_quarantined_with_reason(validator):
    s = raw_frames()["sales"]
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
    s = raw_frames()["sales"].copy()
    s.loc[0, "quantity"] = float("nan")
    s.loc[1, "quantity"] = float("inf")
    df, fails = typed("sales", s)
    clean, q, _ = validate_table("sales", df, fails, REFS, RUN, validator)
    rules = dict(zip(q["row_number"], q["rule"], strict=False))
    assert rules[0] == "not_null"
    assert rules[1] == "type"  # inf is not a quantity: kept in quarantine with its value
    assert 1 not in clean.index and 0 not in clean.index


def test_duplicated_file_drop_keeps_one_copy_and_conflicts_keep_none(validator):
    s = raw_frames()["sales"]
    conflict = s.iloc[[0]].assign(quantity=99.0)
    raw = pd.concat([s, s, conflict], ignore_index=True)
    df, fails = typed("sales", raw)
    clean, q, _ = validate_table("sales", df, fails, REFS, RUN, validator)
    assert set(q.loc[q["rule"] == "duplicate_row", "row_number"]) == {4, 5, 6, 7}
    assert set(q.loc[q["rule"] == "duplicate_key", "row_number"]) == {0, 8}
    assert sorted(clean.index) == [1, 2, 3]


def test_chinese_names_survive(validator):
    df, fails = typed("items", raw_frames()["items"])
    clean, q, _ = validate_table("items", df, fails, {}, RUN, validator)
    assert clean["name"].tolist() == ["纯牛奶 250ml", "Soap"] and len(q) == 0


def _stage_folder(tmp_config, f: dict[str, pd.DataFrame]) -> RunContext:
    from pipelines.context import policies_frame

    ctx = RunContext(tmp_config, date(2026, 11, 25))
    ctx.run_dir.mkdir(parents=True)
    f = {
        "transfer_status": contract.empty("transfer_status"),
        "sourcing": contract.empty("sourcing"),
        "purchase_orders": contract.empty("purchase_orders"),
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
    ctx = _stage_folder(tmp_config, raw_frames())
    res = validate_stage(ctx)
    assert res.counts["sales"] == 4 and res.counts["quarantined"] == 0
    first = ctx.run_id
    assert first.startswith("20261125-")
    validate_stage(ctx)
    assert ctx.run_id == first  # same inputs, same fingerprint


def test_stage_stops_when_too_many_bad_rows(tmp_config):
    f = raw_frames()
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
    lanes, lfails = typed("lanes", raw_frames()["lanes"])
    _, lq, _ = validate_table("lanes", lanes, lfails, REFS, RUN, validator, tight)
    assert lq[["rule", "column_name"]].values.tolist() == [["within_bounds", "transit_days"]]


def test_stage_builds_data_docs_and_keeps_history(tmp_config):
    ctx = _stage_folder(tmp_config, raw_frames())
    res = validate_stage(ctx)
    index = ctx.run_dir / "data_docs" / "index.html"  # the attempt's own; the publish copies them out
    assert res.paths["data_docs"] == str(index) and index.exists()
    assert "sales" in index.read_text(encoding="utf-8")
    assert not (ctx.output_dir / "data_docs").exists()  # nothing published yet, so nothing replaced
    from pipelines.datadocs import remote_assets

    assert remote_assets(ctx.run_dir / "data_docs") == []  # renders offline: no CDN, no S3 logo
    pages = list((ctx.run_dir / "data_docs").rglob("*.html"))
    assert len(pages) > 1 and all("Validation passed" in p.read_text(encoding="utf-8") for p in pages)
    from pipelines.load import publish_data_docs

    published = publish_data_docs(ctx)
    assert published == ctx.output_dir / "data_docs" and (published / "index.html").read_text(
        encoding="utf-8"
    ) == index.read_text(encoding="utf-8")
    hist = read_history(tmp_config.reporting_url(), ctx.run_date)
    assert set(hist["attempt"]) == {1} and set(hist["status"]) == {"validated"}
    dq = ctx.read("dq_results")
    assert dq.loc[(dq["table_name"] == "sales") & (dq["rule"] == "row_count"), "observed_value"].tolist() == [4.0]
    assert (
        "no published history yet"
        in dq.loc[(dq["table_name"] == "sales") & (dq["rule"] == "volume"), "observed"].iloc[0]
    )


def test_stopped_run_is_kept_in_history_with_docs_in_staging(tmp_config):
    ctx = _stage_folder(tmp_config, raw_frames())  # then the sales extract loses a required column
    pd.read_parquet(ctx.run_dir / "extract_sales.parquet").drop(columns=["returns"]).to_parquet(
        ctx.run_dir / "extract_sales.parquet", index=False
    )
    with pytest.raises(ValidationStop) as err:
        validate_stage(ctx)
    assert err.value.table == "sales" and err.value.rule == "schema_columns"
    assert "missing required column(s) returns" in str(err.value)
    assert (ctx.run_dir / "data_docs" / "index.html").exists()
    pages = list((ctx.run_dir / "data_docs").rglob("*.html"))
    stopped = "Validation STOPPED this run: 2026-11-25, table sales, rule schema_columns. Nothing was published"
    assert pages and all(stopped in p.read_text(encoding="utf-8") for p in pages)  # never a bare "Succeeded"
    assert not (ctx.output_dir / "data_docs").exists()  # nothing next to the published outputs
    hist = read_history(tmp_config.reporting_url(), ctx.run_date)
    stop = hist[(hist["rule"] == "schema_columns") & (hist["table_name"] == "sales")]
    assert stop[["status", "passed", "attempt"]].values.tolist() == [["stopped", False, 1]]
