"""File drops (pipelines/files.py): encodings, formats, column mapping (a whole extract from files:
tests/integration/test_files_stage.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines import files
from pipelines.config import FileTable

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
