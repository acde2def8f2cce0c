"""The data contract: casting, clear errors, deterministic order, and docs in sync."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines import contract
from pipelines.docs import render


def test_docs_are_in_sync_with_the_contract():
    doc = Path(__file__).resolve().parents[2] / "docs" / "data-contract.md"
    assert doc.read_text(encoding="utf-8") == render(), "run `make docs`"


def test_conform_casts_and_orders_columns():
    df = pd.DataFrame(
        {
            "revenue": ["1.5"],
            "sku": ["甲"],
            "location": ["L1"],
            "date": ["2026-11-24"],
            "quantity": [2],
            "returns": [0],
            "extra": [1],
        }
    )
    out = contract.conform(df, "sales")
    assert list(out.columns) == contract.SALES.names
    assert out["quantity"].dtype == "float64" and out["date"].dtype == "datetime64[ns]"
    assert out["sku"].iloc[0] == "甲"


def test_conform_names_table_column_and_rows():
    df = pd.DataFrame(
        {
            "sku": ["a", "b"],
            "location": ["x", "y"],
            "date": ["2026-01-01"] * 2,
            "quantity": ["1", "lots"],
            "returns": [0, 0],
            "revenue": [1, 1],
        }
    )
    with pytest.raises(contract.ContractError, match=r"table sales, column quantity: not a number in row\(s\) 1"):
        contract.conform(df, "sales")
    with pytest.raises(contract.ContractError, match="missing column"):
        contract.conform(df.drop(columns=["revenue"]), "sales")
    with pytest.raises(contract.ContractError, match="null value"):
        contract.conform(df.assign(quantity=[1, None]), "sales")


def test_canonical_order_is_deterministic():
    df = pd.DataFrame(
        {
            "sku": ["b", "a", "a"],
            "location": ["x", "y", "x"],
            "date": ["2026-01-01"] * 3,
            "quantity": [1, 2, 3],
            "returns": [0] * 3,
            "revenue": [0] * 3,
        }
    )
    out = contract.canonical_order(contract.conform(df, "sales"), "sales")
    assert out[["sku", "location"]].values.tolist() == [["a", "x"], ["a", "y"], ["b", "x"]]


def test_every_output_table_carries_run_date_and_run_id():
    for t in contract.OUTPUT_TABLES.values():
        assert t.names[:2] == ["run_date", "run_id"]
        assert t.key[0] == "run_date"
