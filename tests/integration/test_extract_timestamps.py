"""Dates that carry a time of day on SQL sources (issue 20): kept on their day, never dropped by the
window filter, and a filter that drops them is caught by the reconciliation. The generic profile on
SQLite reads date text (it extracted nothing before) and refuses a column that holds no dates."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipelines import extract
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.demo.source import DEMO_END_DATE, generate
from pipelines.extract import ExtractError, extract_stage
from tests.factories import add_demo_sale
from tests.fixtures_erp import GENERIC_DDL, GENERIC_TABLES, exec_statements

pytestmark = pytest.mark.integration  # extracts from SQLite demo and generic ERPs

END = DEMO_END_DATE
RUN = END + timedelta(days=1)  # sales through END


@pytest.fixture(scope="module")
def demo_erp(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("erp") / "erp.sqlite"
    generate(f"sqlite:///{path}", n_skus=10, n_locations=2, days=60)
    return path


def _cfg(tmp: Path, url: str, **source):
    return load_config(
        overrides={
            "source": {"url": url, "retries": 0, "full_refresh": True, **source},
            "reporting": {"url": f"sqlite:///{tmp / 'reporting.sqlite'}"},
            "staging_dir": str(tmp / "staging"),
            "output_dir": str(tmp / "out"),
            "forecast": {"history_days": 30},
        }
    )


def _sales(ctx: RunContext) -> pd.DataFrame:
    return pd.read_parquet(ctx.run_dir / "extract_sales.parquet")


def _qty(df: pd.DataFrame, sku: str, wh: str, day: date) -> float:
    hit = df[(df["sku"] == sku) & (df["location"] == wh) & (df["date"] == pd.Timestamp(day))]
    return float(hit["quantity"].sum())


def test_documents_with_a_time_of_day_land_on_their_day(tmp_path, demo_erp):
    erp = tmp_path / "erp.sqlite"
    shutil.copy(demo_erp, erp)
    before = RunContext(_cfg(tmp_path / "a", f"sqlite:///{erp}"), RUN)
    extract_stage(before)
    base = _sales(before)
    # two documents of one SKU-location on the window's last day, and one mid-window, with times
    sku, wh = add_demo_sale(f"sqlite:///{erp}", "T-1", f"{END.isoformat()} 10:15:00", 7)
    add_demo_sale(f"sqlite:///{erp}", "T-2", f"{END.isoformat()}T18:40:00+08:00", 5, sku=sku)
    mid = END - timedelta(days=10)
    add_demo_sale(f"sqlite:///{erp}", "T-3", f"{mid.isoformat()} 23:59:59", 3, sku=sku)
    after = RunContext(_cfg(tmp_path / "b", f"sqlite:///{erp}"), RUN)
    extract_stage(after)
    sales = _sales(after)
    assert _qty(sales, sku, wh, END) == _qty(base, sku, wh, END) + 12
    assert _qty(sales, sku, wh, mid) == _qty(base, sku, wh, mid) + 3
    assert not sales.duplicated(["sku", "location", "date"]).any()
    assert (sales["date"] == sales["date"].dt.normalize()).all()
    rec = {r["table"]: r for r in after.read_json("reconciliation")}["sales"]
    assert rec["ok"] and rec["source_quantity"] == pytest.approx(float(base["quantity"].sum()) + 15)


def test_reconciliation_catches_a_filter_that_drops_timestamps(tmp_path, demo_erp, monkeypatch):
    """A profile with the old inclusive text filter drops the 10:15 document; the reconciliation,
    which windows on the day written in doc_date, no longer agrees with it."""
    erp = tmp_path / "erp.sqlite"
    shutil.copy(demo_erp, erp)
    add_demo_sale(f"sqlite:///{erp}", "T-1", f"{END.isoformat()} 10:15:00", 7)
    sql_dir = tmp_path / "sql"
    shutil.copytree(extract.SQL_DIR / "sources" / "demo", sql_dir / "sources" / "demo")
    sales_sql = sql_dir / "sources" / "demo" / "sales.sql"
    sales_sql.write_text(
        sales_sql.read_text(encoding="utf-8").replace("doc_date < :end_before", "doc_date <= :end_date"),
        encoding="utf-8",
    )
    manifest = sql_dir / "sources" / "demo" / "manifest.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace(
            "params: [start_date, end_before]", "params: [start_date, end_date]"
        ),
        encoding="utf-8",
    )
    monkeypatch.setattr(extract, "SQL_DIR", sql_dir)
    ctx = RunContext(_cfg(tmp_path, f"sqlite:///{erp}"), RUN)
    with pytest.raises(ExtractError, match=r"reconciliation failed for sales .*quantity"):
        extract_stage(ctx)
    rec = {r["table"]: r for r in ctx.read_json("reconciliation")}["sales"]
    assert rec["source_quantity"] == pytest.approx(rec["staged_quantity"] + 7)


GENERIC_RUN = date(2025, 3, 12)


def _generic(tmp_path: Path, extra: str = "") -> RunContext:
    url = f"sqlite:///{tmp_path / 'generic.sqlite'}"
    exec_statements(url, GENERIC_DDL + extra)
    return RunContext(_cfg(tmp_path, url, profile="generic", tables=GENERIC_TABLES), GENERIC_RUN)


def test_generic_profile_on_sqlite_reads_date_text_with_a_time(tmp_path):
    ctx = _generic(tmp_path)
    res = extract_stage(ctx)
    sales = _sales(ctx).sort_values(["sku", "date"])
    # the two A1 lines of 2025-03-10 (09:00 and 18:00) sum into the day; 2025-01-01 is outside the window
    assert sales[["sku", "location", "date", "quantity", "revenue"]].values.tolist() == [
        ["A1", "S1", pd.Timestamp("2025-03-10"), 5.0, 17.5],
        ["B2", "S1", pd.Timestamp("2025-03-11"), 1.0, 6.0],
    ]
    assert res.counts["sales"] == 2


def test_generic_profile_on_sqlite_refuses_a_date_column_without_dates(tmp_path):
    ctx = _generic(tmp_path, "insert into `Sales Lines` values ('A1', 'S1', '10/03/2025', 4, 8);\n")
    with pytest.raises(ExtractError) as err:
        extract_stage(ctx)
    msg = str(err.value)
    assert "table 'Sales Lines', column 'DocDate'" in msg and "1 row(s)" in msg and "'10/03/2025'" in msg
