"""A whole extract (and, for duplicated drops, validation) from file drops: GBK, UTF-8-BOM, xlsx and
parquet files, file-drop errors (split from tests/unit/test_files.py)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.extract import ExtractError, extract_stage

# runs whole stages from file drops (the duplicated drop through Great Expectations)
pytestmark = pytest.mark.integration

RUN = date(2025, 3, 11)


def _drop_folder(folder: Path) -> dict:
    """A complete file drop: GBK items, UTF-8-BOM locations, xlsx sales, parquet stock, UTF-8 lanes/lead times."""
    folder.mkdir()
    (folder / "items.csv").write_bytes("sku,品名,cat,cost,price\nA1,绿茶,TEA,1.5,3\nB2,乌龙茶,TEA,2,4\n".encode("gbk"))
    (folder / "locations.csv").write_bytes(
        "location,name,type,region,can_ship,can_receive,active\nW1,上海仓,dc,华东,1,1,1\nS1,杭州店,store,华东,0,1,1\n".encode(
            "utf-8-sig"
        )
    )
    days = pd.date_range(RUN - timedelta(days=30), RUN - timedelta(days=1))
    sales = pd.DataFrame({"sku": "A1", "location": "S1", "date": days, "qty": [2.0] * len(days), "rev": 6.0}).astype(
        {"qty": object}
    )
    sales.loc[3, "qty"] = "lots"  # unreadable: kept for quarantine, not dropped
    sales.to_excel(folder / "sales_2025.xlsx", index=False)
    pd.DataFrame({"sku": ["A1", "B2"], "location": ["S1", "W1"], "on_hand": [5.0, 7.0]}).to_parquet(
        folder / "stock.parquet"
    )
    (folder / "lanes.csv").write_text(
        "from_location,to_location,cost_per_unit,fixed_cost_per_shipment,transit_days,min_units\nW1,S1,0.1,20,1,0\n",
        encoding="utf-8",
    )
    (folder / "lead_times.csv").write_text(
        "sku,location,lead_time_days,lead_time_std_days,review_period_days\nA1,S1,3,1,7\n", encoding="utf-8"
    )
    return {
        "items": {
            "pattern": "items.csv",
            "columns": {"name": "品名", "category": "cat", "unit_cost": "cost", "unit_price": "price"},
            "defaults": {"pack_size": 1, "active": True},
        },
        "locations": {"pattern": "locations.csv"},
        "sales": {
            "pattern": "sales_*.xlsx",
            "columns": {"quantity": "qty", "revenue": "rev"},
            "defaults": {"returns": 0},
        },
        "stock": {
            "pattern": "stock.parquet",
            "defaults": {"snapshot_date": RUN.isoformat(), "lot": "", "in_transit": 0, "reserved": 0},
        },
        "lanes": {"pattern": "lanes.csv"},
        "lead_times": {"pattern": "lead_times.csv"},
    }


def test_extract_stage_from_files(tmp_path):
    mapping = _drop_folder(tmp_path / "drop")
    cfg = load_config(
        overrides={
            "source": {"kind": "files", "folder": str(tmp_path / "drop"), "files": mapping},
            "staging_dir": str(tmp_path / "staging"),
            "output_dir": str(tmp_path / "out"),
        }
    )
    ctx = RunContext(cfg, RUN)
    res = extract_stage(ctx)
    assert res.counts == {
        "items": 2,
        "locations": 2,
        "lanes": 1,
        "sales": 30,
        "stock": 2,
        "lead_times": 1,
        "policies": len(cfg.policies),
        "transfer_status": 0,  # the drop has no status file: staged empty
        "sourcing": 0,
        "purchase_orders": 0,
    }
    items = pd.read_parquet(ctx.run_dir / "extract_items.parquet")
    assert items["name"].tolist() == ["绿茶", "乌龙茶"]
    sales = pd.read_parquet(ctx.run_dir / "extract_sales.parquet")
    assert sales["quantity"].isna().sum() == 1 and sales["quantity"].sum() == 58
    fails = pd.read_parquet(ctx.run_dir / "castfail_sales.parquet")
    assert fails[["row_number", "column_name", "value"]].values.tolist() == [[3, "quantity", "lots"]]
    rec = {r["table"]: r for r in json.loads((ctx.run_dir / "reconciliation.json").read_text(encoding="utf-8"))}
    assert set(rec) == {"items", "locations", "lanes", "sales", "stock", "lead_times"}
    assert all(r["ok"] for r in rec.values())
    assert rec["stock"]["source_quantity"] == 12 and rec["stock"]["staged_quantity"] == 12
    assert rec["sales"]["quantity_checked"] is False  # a quantity cell was unreadable: rows only
    assert not (ctx.run_dir / "watermarks.json").exists()  # files are re-read in full: no watermark


def test_file_drop_error_stops_extract(tmp_path):
    mapping = _drop_folder(tmp_path / "drop")
    (tmp_path / "drop" / "items.csv").write_bytes(b"sku,\xff\n")
    cfg = load_config(
        overrides={
            "source": {"kind": "files", "folder": str(tmp_path / "drop"), "files": mapping},
            "staging_dir": str(tmp_path / "staging"),
            "output_dir": str(tmp_path / "out"),
        }
    )
    with pytest.raises(ExtractError, match=r"file drop for items: .*items.csv.*fails at byte 4"):
        extract_stage(RunContext(cfg, RUN))


def test_duplicated_file_drop_is_set_aside_not_double_counted(tmp_path):
    """The same sales export dropped twice: the copies are quarantined as duplicate rows, never summed."""
    import shutil

    from pipelines.validate import ValidationStop, validate_stage

    mapping = _drop_folder(tmp_path / "drop")
    shutil.copy(tmp_path / "drop" / "sales_2025.xlsx", tmp_path / "drop" / "sales_2025_again.xlsx")
    cfg = load_config(
        overrides={
            "source": {"kind": "files", "folder": str(tmp_path / "drop"), "files": mapping},
            "staging_dir": str(tmp_path / "staging"),
            "output_dir": str(tmp_path / "out"),
        }
    )
    ctx = RunContext(cfg, RUN)
    assert extract_stage(ctx).counts["sales"] == 60
    with pytest.raises(ValidationStop) as err:  # half the rows are copies: far above the 5% bad-row limit
        validate_stage(ctx)
    assert "sales" in str(err.value) and "bad_row_share" in str(err.value)
    q = pd.read_parquet(ctx.run_dir / "quarantine.parquet")
    dup = q[(q["table_name"] == "sales") & (q["rule"] == "duplicate_row")]
    assert sorted(dup["row_number"]) == list(range(30, 60))  # every row of the second copy, first copy kept


def test_time_zoned_dates_take_their_day_in_the_configured_zone(tmp_path):
    """Issue 20: ISO timestamps with an offset used to stop the run with a raw pandas error
    ("Mixed timezones detected") naming neither file nor column. Now a value with an offset is
    converted to `timezone` and gives the local day; one that is no date is a cast failure
    (quarantined with its row), like any other unreadable value."""
    mapping = _drop_folder(tmp_path / "drop")
    (tmp_path / "drop" / "sales_2025.xlsx").unlink()
    (tmp_path / "drop" / "sales_2025.csv").write_text(
        "sku,location,date,qty,rev\n"
        "A1,S1,2025-03-09T23:30:00+08:00,1,1\n"  # Shanghai already: 2025-03-09
        "A1,S1,2025-03-09T20:00:00-05:00,2,2\n"  # 2025-03-10 09:00 in Shanghai
        "A1,S1,2025-03-08T18:00:00Z,4,4\n"  # 2025-03-09 02:00 in Shanghai
        "A1,S1,2025-03-08 10:15:00,8,8\n"  # no zone: a local time, its own day
        "A1,S1,2025-02-30T10:00:00+08:00,16,16\n",  # no such day: a cast failure
        encoding="utf-8",
    )
    mapping["sales"]["pattern"] = "sales_*.csv"
    cfg = load_config(
        overrides={
            "source": {"kind": "files", "folder": str(tmp_path / "drop"), "files": mapping},
            "staging_dir": str(tmp_path / "staging"),
            "output_dir": str(tmp_path / "out"),
            "timezone": "Asia/Shanghai",
        }
    )
    ctx = RunContext(cfg, RUN)
    extract_stage(ctx)
    sales = pd.read_parquet(ctx.run_dir / "extract_sales.parquet")
    assert sales["date"].tolist()[:4] == [
        pd.Timestamp("2025-03-09"),
        pd.Timestamp("2025-03-10"),
        pd.Timestamp("2025-03-09"),
        pd.Timestamp("2025-03-08"),
    ]
    assert pd.isna(sales["date"].iloc[4]) and sales["quantity"].sum() == 31  # the row is kept, not dropped
    fails = pd.read_parquet(ctx.run_dir / "castfail_sales.parquet")
    assert fails[["row_number", "column_name", "value"]].values.tolist() == [[4, "date", "2025-02-30T10:00:00+08:00"]]
