"""Bad input at the level a user meets it: the CLI and the runner.

An invalid config, an unreachable source and a missing source table each give a clear message and
publish nothing: what was published before stays exactly as it was.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines import contract, reporting
from pipelines.cli import app
from pipelines.config import load_config
from pipelines.demo.source import DEMO_END_DATE, generate
from pipelines.runner import run_pipeline
from tests.factories import published_tables

pytestmark = pytest.mark.integration  # runs the pipeline through the CLI and the runner on a demo ERP

RUN = DEMO_END_DATE + timedelta(days=1)


@pytest.fixture(scope="module")
def demo_erp(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("erp") / "erp.sqlite"
    generate(f"sqlite:///{path}", n_skus=20, days=120)
    return path


def _cfg(tmp_path: Path, source_url: str):
    return load_config(
        overrides={
            "source": {"url": source_url, "retries": 1, "retry_backoff_seconds": 0.01},
            "reporting": {"url": f"sqlite:///{tmp_path / 'reporting.sqlite'}"},
            "staging_dir": str(tmp_path / "staging"),
            "output_dir": str(tmp_path / "output"),
            "forecast": {
                "history_days": 120,
                "method": "moving_average",
            },  # runner failures, not forecasting: the fast method
        }
    )


@pytest.fixture
def published(tmp_path, demo_erp):
    """A reporting database with one good run published, and its rows."""
    erp = tmp_path / "erp.sqlite"
    shutil.copy(demo_erp, erp)
    cfg = _cfg(tmp_path, f"sqlite:///{erp}")
    run_pipeline(cfg, RUN)
    before = published_tables(cfg.reporting_url())
    assert len(before["forecasts"]) > 0
    return cfg, erp, before


def test_unreachable_source_names_host_not_password(tmp_path, published, monkeypatch):
    cfg, _, before = published
    bad = cfg.model_copy(update={"source": cfg.source.model_copy(update={"url": None, "url_env": "TIAOBO_T_SRC"})})
    monkeypatch.setenv("TIAOBO_T_SRC", "postgresql+psycopg://reader:hunter2@127.0.0.1:1/erp")  # nothing listens on 1
    with pytest.raises(Exception) as err:
        run_pipeline(bad, RUN + timedelta(days=1))
    msg = str(err.value)
    assert "127.0.0.1:1" in msg and "database erp" in msg and "after 2 attempt(s)" in msg
    assert "hunter2" not in msg
    after = published_tables(cfg.reporting_url())
    for name in contract.OUTPUT_TABLES:
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)
    log = reporting.read_run_log(cfg.reporting_url())
    failed = log[log["status"] == "failed"]
    assert failed["stage"].tolist() == ["extract"] and "hunter2" not in failed["message"].iloc[0]


def test_missing_source_column_names_profile_query_and_column(tmp_path, published):
    cfg, erp, before = published
    eng = sa.create_engine(f"sqlite:///{erp}")
    with eng.begin() as conn:
        conn.execute(sa.text("alter table md_material drop column pack_qty"))
    eng.dispose()
    with pytest.raises(Exception) as err:
        run_pipeline(cfg, RUN)  # the same date again: the published rows must survive the failure
    assert "source profile 'demo', query items.sql (table items)" in str(err.value)
    assert "pack_qty" in str(err.value)
    after = published_tables(cfg.reporting_url())
    for name in contract.OUTPUT_TABLES:
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)


def test_notify_failing_after_the_publish_is_reported_as_published(tmp_path, published, monkeypatch):
    """Disk full while writing the report: the night's results are published (the publish had
    committed), so neither the run log nor the CLI may say otherwise."""
    import yaml

    from pipelines import notify
    from pipelines.runner import FailedAfterPublish

    cfg, _, _ = published
    with reporting.engine_for(cfg.reporting_url()).begin() as conn:  # as if RUN had never been published
        for name in ("published_runs", *contract.OUTPUT_TABLES):
            conn.execute(sa.text(f"delete from {name}"))

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(cfg.output_dir))

    monkeypatch.setattr(notify, "notify_stage", disk_full)
    nxt = RUN
    with pytest.raises(FailedAfterPublish) as err:
        run_pipeline(cfg, nxt)
    assert err.value.stage == "notify" and "No space left on device" in str(err.value)
    assert pd.Timestamp(nxt) in set(reporting.read_published_runs(cfg.reporting_url())["run_date"])
    last = reporting.read_run_log(cfg.reporting_url(), nxt).iloc[-1]
    assert (last["status"], last["stage"], last["run_id"]) == ("published", "notify", err.value.run_id)
    assert "the results are published" in last["message"]
    # the CLI says the same
    config = tmp_path / "tiaobo.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
    res = CliRunner().invoke(app, ["run", "--date", nxt.isoformat(), "--config", str(config)])
    assert res.exit_code == 1
    assert "published its results, then failed" in res.output and "nothing was published" not in res.output


def test_cli_invalid_config_exits_with_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("forecast:\n  horizon_days: -3\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--date", "2026-11-25", "--config", str(bad)])
    assert result.exit_code == 2
    assert "forecast.horizon_days" in result.output and "greater than or equal to 1" in result.output
    assert not (tmp_path / "var").exists()  # nothing was staged or published


def test_cli_bad_date(tmp_path):
    result = CliRunner().invoke(app, ["run", "--date", "25/11/2026"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output


def _config_file(tmp_path: Path, cfg) -> Path:
    import yaml

    path = tmp_path / "tiaobo.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
    return path


def test_status_lists_the_runs_and_what_waits_for_planners(tmp_path, published, capsys):
    from pipelines.cli import main

    cfg, _, before = published
    config = _config_file(tmp_path, cfg)
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    need = before["transfers"][before["transfers"]["approval_tier"] != "auto"]
    assert f"{RUN.isoformat()}  published" in out and f"last published: {RUN.isoformat()}" in out
    if len(need):
        assert f"waiting for planners on {RUN.isoformat()}: {len(need)} transfer(s) to decide" in out
    else:
        assert f"nothing waits for planners on {RUN.isoformat()}" in out
    assert main(["status", "--config", str(config), "--lang", "zh"]) == 0
    zh = capsys.readouterr().out
    assert "最近的运行" in zh and "已发布" in zh and "最近发布" in zh


@pytest.mark.parametrize(
    "args, says",
    [
        (["replay", "--dataset", "nope"], "unknown dataset 'nope'"),
        (["retrain", "--date", "2020-01-01"], "has not run for 2020-01-01"),
        (["report", "--date", "2020-01-01"], "2020-01-01"),
        (["status", "--lang", "fr"], "--lang must be en or zh"),
    ],
)
def test_user_mistakes_get_one_line_not_a_traceback(tmp_path, monkeypatch, capsys, args, says):
    from pipelines.cli import main

    monkeypatch.chdir(tmp_path)  # the embedded defaults: nothing staged or published here
    assert main(args) != 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and says in lines[0], err
    assert "Traceback" not in err
