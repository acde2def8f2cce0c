"""The extract stage on small SQLite demo ERPs: incremental sales with watermarks (a failed run never
makes a later one skip late rows), the look-back window, reconciliation, tables from files, and
password-free connection errors (split from tests/unit/test_extract.py)."""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import contract, extract, reporting
from pipelines.config import load_config
from pipelines.connections import SourceUnavailable
from pipelines.context import RunContext
from pipelines.demo.source import DEMO_END_DATE, generate
from pipelines.extract import ExtractError, extract_stage
from tests.factories import add_demo_sale

# runs the extract stage on SQLite demo ERPs (and tries unreachable servers)
pytestmark = pytest.mark.integration

END = DEMO_END_DATE


# ---------------------------------------------------------------------------------- incremental, end to end


@pytest.fixture(scope="module")
def demo_erp(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("erp") / "erp.sqlite"
    generate(f"sqlite:///{path}", n_skus=12, n_locations=3, days=90)
    return path


def _cfg(tmp: Path, erp: Path, **source):
    return load_config(
        overrides={
            "source": {"url": f"sqlite:///{erp}", "retries": 0, **source},
            "reporting": {"url": f"sqlite:///{tmp / 'reporting.sqlite'}"},
            "staging_dir": str(tmp / "staging"),
            "output_dir": str(tmp / "out"),
            "forecast": {"history_days": 60},
        }
    )


def _publish_watermarks(ctx: RunContext) -> None:
    """What the load stage does inside the publish transaction."""
    url = ctx.cfg.reporting_url()
    reporting.migrate(url)
    with reporting.engine_for(url).begin() as conn:
        for w in ctx.read_json("watermarks"):
            reporting.set_watermark(conn, w["source"], w["table_name"], w["watermark"], ctx.run_date)


def _late_document(erp: Path, doc_no: str, day: date, qty: float) -> tuple[str, str]:
    return add_demo_sale(f"sqlite:///{erp}", doc_no, day, qty)


def _staged_sales(ctx: RunContext) -> pd.DataFrame:
    df = pd.read_parquet(ctx.run_dir / "extract_sales.parquet")
    return contract.canonical_order(df, "sales").reset_index(drop=True)


def _full_refresh(tmp: Path, erp: Path, run: date) -> pd.DataFrame:
    ctx = RunContext(_cfg(tmp / "full", erp, full_refresh=True), run)
    extract_stage(ctx)
    return _staged_sales(ctx)


@pytest.mark.parametrize("advance_failed_run", [False, True])
def test_failed_run_never_makes_a_later_run_skip_late_rows(tmp_path, demo_erp, advance_failed_run):
    erp = tmp_path / "erp.sqlite"
    shutil.copy(demo_erp, erp)
    cfg = _cfg(tmp_path, erp, lookback_days=0)
    r1, r2, r3 = END - timedelta(days=1), END, END + timedelta(days=1)
    ctx1 = RunContext(cfg, r1)
    extract_stage(ctx1)
    assert ctx1.read_json("watermarks")[0]["watermark"] == (r1 - timedelta(days=1)).isoformat()
    _publish_watermarks(ctx1)  # run 1 published
    ctx2 = RunContext(cfg, r2)
    extract_stage(ctx2)  # run 2 extracts, then fails before publishing: its watermark is not applied
    rec2 = {r["table"]: r for r in ctx2.read_json("reconciliation")}["sales"]
    assert rec2["window"] == [(r2 - timedelta(days=1)).isoformat()] * 2 and rec2["ok"]
    if advance_failed_run:  # the unsafe design, as a control: advancing at extract time loses the late row
        _publish_watermarks(ctx2)
    sku, wh = _late_document(erp, "LATE-1", r2 - timedelta(days=1), 77)  # a day run 2 already read
    ctx3 = RunContext(cfg, r3)
    extract_stage(ctx3)
    staged = _staged_sales(ctx3)
    full = _full_refresh(tmp_path, erp, r3)
    late_day = pd.Timestamp(r2 - timedelta(days=1))
    row = staged[(staged["sku"] == sku) & (staged["location"] == wh) & (staged["date"] == late_day)]
    full_row = full[(full["sku"] == sku) & (full["location"] == wh) & (full["date"] == late_day)]
    assert float(full_row["quantity"].iloc[0]) >= 77
    if advance_failed_run:
        assert row.empty or float(row["quantity"].iloc[0]) == float(full_row["quantity"].iloc[0]) - 77
    else:
        pd.testing.assert_frame_equal(staged, full)
        assert ctx3.read_json("watermarks")[0]["watermark"] == (r3 - timedelta(days=1)).isoformat()


def test_lookback_window_catches_corrections_after_a_published_run(tmp_path, demo_erp):
    erp = tmp_path / "erp.sqlite"
    shutil.copy(demo_erp, erp)
    cfg = _cfg(tmp_path, erp, lookback_days=3)
    ctx1 = RunContext(cfg, END)
    extract_stage(ctx1)
    _publish_watermarks(ctx1)
    _late_document(erp, "LATE-2", END - timedelta(days=3), 5)  # within the look-back of the next run
    ctx2 = RunContext(cfg, END + timedelta(days=1))
    extract_stage(ctx2)
    rec = {r["table"]: r for r in ctx2.read_json("reconciliation")}["sales"]
    assert rec["window"] == [(END - timedelta(days=3)).isoformat(), END.isoformat()]
    assert rec["staged_window_rows"] == len(_staged_sales(ctx2))
    pd.testing.assert_frame_equal(_staged_sales(ctx2), _full_refresh(tmp_path, erp, END + timedelta(days=1)))


def test_reconciliation_covers_every_table_and_a_mismatch_fails(tmp_path, demo_erp, monkeypatch):
    erp = tmp_path / "erp.sqlite"
    shutil.copy(demo_erp, erp)
    ctx = RunContext(_cfg(tmp_path, erp), END + timedelta(days=1))
    extract_stage(ctx)
    rec = {r["table"]: r for r in ctx.read_json("reconciliation")}
    assert set(rec) == {*extract.SOURCE_TABLES, *extract.OPTIONAL_TABLES} and all(r["ok"] for r in rec.values())
    assert rec["stock"]["quantity_checked"] and rec["stock"]["source_quantity"] == rec["stock"]["staged_quantity"] > 0
    assert rec["sales"]["source"] == "reconcile_sales.sql"
    # a profile whose reconciliation query disagrees with its staging query
    sql_dir = tmp_path / "sql"
    shutil.copytree(extract.SQL_DIR / "sources" / "demo", sql_dir / "sources" / "demo")
    rec_file = sql_dir / "sources" / "demo" / "reconcile_sales.sql"
    rec_file.write_text(
        rec_file.read_text(encoding="utf-8").replace("count(*) as row_count", "count(*) + 1 as row_count"),
        encoding="utf-8",
    )
    monkeypatch.setattr(extract, "SQL_DIR", sql_dir)
    ctx2 = RunContext(_cfg(tmp_path / "b", erp), END + timedelta(days=1))
    with pytest.raises(ExtractError, match=r"reconciliation failed for sales from SQLite file .*: source has \d+ rows"):
        extract_stage(ctx2)
    assert not (ctx2.run_dir / "watermarks.json").exists()
    assert any(not r["ok"] for r in ctx2.read_json("reconciliation"))


def test_profile_may_take_tables_from_files(tmp_path, demo_erp):
    erp = tmp_path / "erp.sqlite"
    shutil.copy(demo_erp, erp)
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "lanes.csv").write_bytes("起点,终点,单价,每车,天数,起运量\nWH-SH01,ST-SH01,0.1,30,1,10\n".encode("gbk"))
    cfg = _cfg(
        tmp_path,
        erp,
        folder=str(drop),
        files={
            "lanes": {
                "pattern": "lanes.csv",
                "columns": {
                    "from_location": "起点",
                    "to_location": "终点",
                    "cost_per_unit": "单价",
                    "fixed_cost_per_shipment": "每车",
                    "transit_days": "天数",
                    "min_units": "起运量",
                },
            }
        },
    )
    ctx = RunContext(cfg, END + timedelta(days=1))
    res = extract_stage(ctx)
    assert res.counts["lanes"] == 1 and res.counts["items"] == 12
    assert pd.read_parquet(ctx.run_dir / "extract_lanes.parquet")["capacity"].isna().all()


def test_missing_column_names_profile_query_and_column(tmp_path, demo_erp):
    erp = tmp_path / "erp.sqlite"
    shutil.copy(demo_erp, erp)
    eng = sa.create_engine(f"sqlite:///{erp}")
    with eng.begin() as conn:
        conn.execute(sa.text("alter table so_line drop column amount"))
    eng.dispose()
    with pytest.raises(ExtractError) as err:
        extract_stage(RunContext(_cfg(tmp_path, erp), END + timedelta(days=1)))
    assert (
        str(err.value)
        == "source profile 'demo', query sales.sql (table sales): source table 'so_line' has no column 'amount'"
    )


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("postgresql+psycopg://reader:s3cr3t-pw@127.0.0.1:9/erp", "postgresql at 127.0.0.1:9, database erp"),
        ("mysql+pymysql://reader:s3cr3t-pw@127.0.0.1:9/erp?charset=utf8mb4", "mysql at 127.0.0.1:9, database erp"),
    ],
)
def test_unreachable_source_message_has_host_not_password(tmp_path, caplog, url, where):
    os.environ["TIAOBO_T_EXTRACT_URL"] = url
    try:
        cfg = load_config(
            overrides={
                "source": {"url_env": "TIAOBO_T_EXTRACT_URL", "retries": 1, "retry_backoff_seconds": 0},
                "staging_dir": str(tmp_path / "staging"),
                "reporting": {"url": f"sqlite:///{tmp_path / 'r.sqlite'}"},
            }
        )
        with caplog.at_level("DEBUG"), pytest.raises(SourceUnavailable) as err:
            extract_stage(RunContext(cfg, END))
    finally:
        del os.environ["TIAOBO_T_EXTRACT_URL"]
    msg = str(err.value)
    assert where in msg and "after 2 attempt(s)" in msg
    assert "s3cr3t-pw" not in msg and "s3cr3t-pw" not in caplog.text
    assert "127.0.0.1:9" in caplog.text  # the retry was logged, without the password
