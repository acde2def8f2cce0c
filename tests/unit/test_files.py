"""File drops (pipelines/files.py): encodings, formats, column mapping, and a whole extract from files."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipelines import files
from pipelines.config import FileTable, load_config
from pipelines.context import RunContext
from pipelines.extract import ExtractError, extract_stage

NAMES = ["绿茶 500ml", "鲜牛奶 1L", "矿泉水"]
CSV_TEXT = "物料编码,物料名称,数量\nM1,绿茶 500ml,3\nM2,鲜牛奶 1L,4.5\nM3,矿泉水,\n"


def _read(folder: Path, pattern: str, **kw) -> pd.DataFrame:
    spec = FileTable(
        pattern=pattern,
        columns={"sku": "物料编码", "name": "物料名称"},
        defaults={"category": "X", "unit_cost": 1, "unit_price": 2, "pack_size": 1, "active": True},
        **kw,
    )
    frames = [f for _, f in files.read_chunks("items", spec, str(folder), chunk_rows=2)]
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_in_each_encoding_keeps_chinese_names(tmp_path, encoding):
    (tmp_path / "items.csv").write_bytes(CSV_TEXT.encode(encoding))
    df = _read(tmp_path, "items*.csv")
    assert df["name"].tolist() == NAMES
    assert df["sku"].tolist() == ["M1", "M2", "M3"]
    assert df["category"].tolist() == ["X"] * 3
    detected = files.detect_encoding(files.filesystem(str(tmp_path))[0], str(tmp_path / "items.csv"))
    assert detected == ("gb18030" if encoding in ("gbk", "gb18030") else "utf-8-sig")


def test_bom_is_not_part_of_the_first_column_name(tmp_path):
    (tmp_path / "items.csv").write_bytes(CSV_TEXT.encode("utf-8-sig"))
    assert _read(tmp_path, "*.csv")["sku"].tolist() == ["M1", "M2", "M3"]


def test_undecodable_file_names_file_and_byte_offset(tmp_path):
    good = "物料编码,物料名称\nM1,绿茶\n".encode()
    bad = good + b"M2,\xff\xfe\n"
    (tmp_path / "items.csv").write_bytes(bad)
    with pytest.raises(files.FileDropError) as err:
        _read(tmp_path, "*.csv")
    msg = str(err.value)
    assert "items.csv" in msg and f"utf-8-sig fails at byte {len(good) + 3}" in msg and "gb18030 fails at byte" in msg


def test_configured_encoding_is_checked_strictly(tmp_path):
    (tmp_path / "items.csv").write_bytes(CSV_TEXT.encode("gbk"))
    with pytest.raises(files.FileDropError, match="utf-8 fails at byte"):
        _read(tmp_path, "*.csv", encoding="utf-8")
    assert _read(tmp_path, "*.csv", encoding="gbk")["name"].tolist() == NAMES


def test_offset_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_BLOCK", 7)  # multi-byte characters straddle block boundaries
    data = ("名" * 20).encode() + b"\xff"
    (tmp_path / "x.csv").write_bytes(data)
    fs = files.filesystem(str(tmp_path))[0]
    assert files.try_decode(fs, str(tmp_path / "x.csv"), "utf-8-sig") == 60
    (tmp_path / "y.csv").write_bytes(("名" * 20).encode("gb18030"))
    assert files.try_decode(fs, str(tmp_path / "y.csv"), "gb18030") is None


def test_xlsx_and_parquet(tmp_path):
    df = pd.DataFrame({"物料编码": ["M1", "M2", "M3"], "物料名称": NAMES, "数量": [3, 4.5, None]})
    df.to_excel(tmp_path / "items.xlsx", index=False, sheet_name="物料")
    df.to_parquet(tmp_path / "items.parquet", index=False)
    assert _read(tmp_path, "*.xlsx", sheet="物料")["name"].tolist() == NAMES
    assert _read(tmp_path, "*.parquet")["name"].tolist() == NAMES
    with pytest.raises(files.FileDropError, match="no sheet 'nope'"):
        _read(tmp_path, "*.xlsx", sheet="nope")


def test_missing_mapped_column_names_file_and_column(tmp_path):
    (tmp_path / "items.csv").write_text("code,title\nM1,a\n", encoding="utf-8")
    with pytest.raises(files.FileDropError) as err:
        _read(tmp_path, "*.csv")
    assert "items.csv" in str(err.value) and "sku (column '物料编码')" in str(err.value)


def test_no_matching_file(tmp_path):
    with pytest.raises(files.FileDropError, match="no file matches"):
        _read(tmp_path, "*.csv")


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
