"""Leftovers and disk-full errors (issue 20): a write that runs out of space names the path and
the free space, the sales store's temporary folders are removed on any failure, and stale failure
emails kept as .eml are pruned after email.failure_eml_retention_days."""

from __future__ import annotations

import errno
import shutil
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pipelines import notify
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.demo.source import DEMO_END_DATE, generate
from pipelines.extract import extract_stage
from pipelines.housekeeping import DiskFullError, prune_failure_emails, writing

pytestmark = pytest.mark.integration  # extracts from a SQLite demo ERP, writes email files

RUN = DEMO_END_DATE + timedelta(days=1)


@pytest.fixture(scope="module")
def demo_erp(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("erp") / "erp.sqlite"
    generate(f"sqlite:///{path}", n_skus=10, n_locations=2, days=60)
    return path


def _ctx(tmp: Path, erp: Path) -> RunContext:
    shutil.copy(erp, tmp / "erp.sqlite")
    cfg = load_config(
        overrides={
            "source": {"url": f"sqlite:///{tmp / 'erp.sqlite'}", "retries": 0},
            "reporting": {"url": f"sqlite:///{tmp / 'reporting.sqlite'}"},
            "staging_dir": str(tmp / "staging"),
            "output_dir": str(tmp / "out"),
            "forecast": {"history_days": 30},
        }
    )
    return RunContext(cfg, RUN)


def _no_space(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_in_the_store_refresh_names_the_path_and_leaves_no_incoming_folder(tmp_path, demo_erp, monkeypatch):
    ctx = _ctx(tmp_path, demo_erp)
    real = ds.write_dataset

    def half_written(data, base_dir, **kw):  # some day folders reach the disk, then it is full
        real(data, base_dir, **kw)
        _no_space()

    monkeypatch.setattr(ds, "write_dataset", half_written)
    with pytest.raises(DiskFullError) as err:
        extract_stage(ctx)
    assert err.value.errno == errno.ENOSPC
    assert "no space left writing " in str(err.value) and ".incoming-" in str(err.value)
    assert " free of " in str(err.value)
    staging = Path(ctx.cfg.staging_dir)
    assert not list(staging.rglob(".incoming-*")) and not list(staging.rglob(".trash-*"))
    assert not (ctx.run_dir / "extract_sales_delta.parquet").exists() and not list(ctx.run_dir.glob("*.tmp"))
    monkeypatch.undo()
    extract_stage(ctx)  # space back: the next attempt completes
    assert (ctx.run_dir / "extract_sales.parquet").exists()


def test_disk_full_writing_a_staged_table_names_the_file(tmp_path, demo_erp, monkeypatch):
    ctx = _ctx(tmp_path, demo_erp)
    monkeypatch.setattr(pq.ParquetWriter, "write_table", _no_space)
    with pytest.raises(DiskFullError, match=r"no space left writing .*extract_items\.parquet\.tmp: .* free of .* on "):
        extract_stage(ctx)
    assert not list(ctx.run_dir.glob("*.tmp"))


def test_writing_passes_other_errors_unchanged(tmp_path):
    with pytest.raises(PermissionError), writing(tmp_path / "x"):
        raise PermissionError(errno.EACCES, "denied")
    with pytest.raises(DiskFullError, match="no space left writing .*/missing/dir/f: .* free of .* on "):
        with writing(tmp_path / "missing" / "dir" / "f"):  # free space of the nearest existing folder
            raise OSError(errno.ENOSPC, "No space left on device")


def _digest(out: Path, day: date) -> Path:
    msg = EmailMessage()
    msg["Subject"] = f"[Tiaobo] {day.isoformat()}: 3 transfers for approval, 1 high alert"
    msg["To"] = "planners@example.com"
    msg.set_content("digest")
    return notify.write_eml(msg, out / day.isoformat())


def test_stale_failure_emails_are_pruned_after_the_retention(tmp_path):
    cfg = load_config(overrides={"output_dir": str(tmp_path / "out"), "email": {"failure_eml_retention_days": 7}})
    out = Path(cfg.output_dir)
    today = date(2026, 11, 25)
    kept_days = [today, today - timedelta(days=7)]
    old_days = [today - timedelta(days=8), today - timedelta(days=40)]
    written = {}
    for day in kept_days + old_days:
        msg = notify.build_failure_email(
            cfg, day, dag_id="tiaobo_nightly", task_id="extract", error="x", where_to_look="y"
        )
        written[day] = notify.write_eml(msg, out / day.isoformat())
    (out / old_days[0].isoformat() / "data-team__half.eml.tmp").write_bytes(b"partial")
    digest = _digest(out, old_days[1])
    (out / "notes").mkdir()
    (out / "notes" / "x.eml").write_bytes(b"Subject: [Tiaobo] FAILED 2020-01-01: a.b\n\nnot a run-date folder\n")
    removed = prune_failure_emails(out, today, cfg.email.failure_eml_retention_days)
    assert sorted(removed) == sorted(
        [written[d] for d in old_days] + [out / old_days[0].isoformat() / "data-team__half.eml.tmp"]
    )
    assert all(written[d].exists() for d in kept_days) and digest.exists() and (out / "notes" / "x.eml").exists()
    assert prune_failure_emails(out, today, 7) == []  # nothing left to prune
    assert prune_failure_emails(tmp_path / "none", today, 7) == []


def test_every_failure_email_sent_prunes_the_stale_ones(tmp_path):
    cfg = load_config(overrides={"output_dir": str(tmp_path / "out"), "email": {"failure_eml_retention_days": 7}})
    today = date(2026, 11, 25)
    old = notify.send_failure(
        cfg, today - timedelta(days=30), dag_id="tiaobo_nightly", task_id="extract", error="x", where_to_look="y"
    )
    assert Path(old["path"]).exists()
    new = notify.send_failure(cfg, today, dag_id="tiaobo_nightly", task_id="extract", error="x", where_to_look="y")
    assert Path(new["path"]).exists() and not Path(old["path"]).exists()
