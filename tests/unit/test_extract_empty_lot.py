"""A stock row whose lot cell is empty (blank CSV / xlsx cell, SQL NULL) is a row without a lot.

The contract writes "not lot-managed" as ``''``; without the normalisation at extraction, file drops
and SQL sources that leave the cell empty sent a null key to validation, which quarantined the stock
rows (and stopped the run when they were more than the bad-row limit).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from pipelines import contract, files
from pipelines.config import FileTable
from pipelines.extract import arrow_schema, conform_batch

STOCK = contract.TABLES["stock"]


def _stock_rows(lots: list[str | None]) -> dict[str, list]:
    n = len(lots)
    return {
        "sku": [f"A{i}" for i in range(n)],
        "location": ["S1"] * n,
        "snapshot_date": ["2026-11-25"] * n,
        "lot": lots,
        "expiry_date": [None] * n,
        "on_hand": ["5"] * n,
        "in_transit": ["0"] * n,
        "reserved": ["0"] * n,
    }


@pytest.mark.parametrize("as_arrow", [True, False], ids=["sql-fast-path", "lenient-path"])
def test_empty_lot_is_the_contracts_empty_string(as_arrow):
    rows = _stock_rows(["LOT-7", None, ""])
    batch = pa.table(rows, schema=pa.schema([(k, pa.string()) for k in rows])) if as_arrow else pd.DataFrame(rows)
    typed, fails = conform_batch(batch, STOCK, arrow_schema(STOCK), 0)
    assert typed.column("lot").to_pylist() == ["LOT-7", "", ""]
    assert typed.column("sku").null_count == 0 and len(fails) == 0


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_stock_file_with_blank_lot_cells(tmp_path, fmt):
    df = pd.DataFrame(_stock_rows(["LOT-7", None, None])).drop(columns="expiry_date")
    if fmt == "csv":
        df.to_csv(tmp_path / "stock.csv", index=False, encoding="utf-8")
    else:
        df.to_excel(tmp_path / "stock.xlsx", index=False)
    spec = FileTable(pattern=f"stock.{fmt}")
    frames = [f for _, f in files.read_chunks("stock", spec, str(tmp_path), chunk_rows=2)]
    typed = [conform_batch(f, STOCK, arrow_schema(STOCK), 0)[0] for f in frames]
    lots = [v for t in typed for v in t.column("lot").to_pylist()]
    assert lots == ["LOT-7", "", ""]


def test_other_required_text_stays_null_for_validation():
    rows = _stock_rows(["LOT-7"])
    rows["sku"] = [None]
    typed, _ = conform_batch(pd.DataFrame(rows), STOCK, arrow_schema(STOCK), 0)
    assert typed.column("sku").to_pylist() == [None]  # an empty SKU is an error, not a value
