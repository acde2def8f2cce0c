"""Test data factories shared by the unit and integration tests."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from pipelines import contract


def make_frames(run_date: date, run_id: str, n: int = 3, shift: float = 0.0) -> dict[str, pd.DataFrame]:
    """Contract-valid rows for every output table: unique keys, nulls in every other nullable cell,
    awkward text (Chinese, tab, newline, backslash, quotes) in the non-key text columns."""
    frames = {}
    for name, t in contract.OUTPUT_TABLES.items():
        data: dict[str, list] = {}
        for c in t.columns:
            vals: list
            if c.name == "run_date":
                vals = [run_date] * n
            elif c.name == "run_id":
                vals = [run_id] * n
            elif c.type == "str":
                vals = [f"{c.name}-{i}" if c.name in t.key else f'值 {i}\t"q"\\ {c.name}\n{shift}' for i in range(n)]
            elif c.type == "int":
                vals = [i + 1 for i in range(n)]
            elif c.type == "float":
                vals = [i * 1.5 + 0.1 + shift for i in range(n)]
            elif c.type == "bool":
                vals = [i % 2 == 0 for i in range(n)]
            else:  # date
                vals = [run_date + timedelta(days=i) for i in range(n)]
            if c.nullable:
                vals = [None if i % 2 else v for i, v in enumerate(vals)]
            data[c.name] = vals
        frames[name] = pd.DataFrame(data)
    return frames


def expected(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    return contract.canonical_order(contract.conform(frame, name), name)
