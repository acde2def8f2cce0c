"""End to end: the nightly DAG under Airflow's dag.test() on a small demo ERP, publishing to a real PostgreSQL.

The same date is run twice and the published rows must be identical; then a run whose source lost
a table fails, emails the data team, and leaves the published rows untouched.
"""

from __future__ import annotations

import email
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pendulum
import pytest
import sqlalchemy as sa

from pipelines import contract, reporting
from pipelines.demo.source import DEMO_END_DATE, generate
from tests.factories import published_tables, run_nightly_dag

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

RUN_DATE = DEMO_END_DATE + timedelta(days=1)


def _write_config(tmp_path: Path, source: Path) -> Path:
    cfg = tmp_path / "tiaobo.yaml"
    cfg.write_text(
        f"""
source:
  url: sqlite:///{source}
  retries: 0
reporting:
  url_env: TIAOBO_TEST_REPORTING_URL
staging_dir: {tmp_path / "staging"}
output_dir: {tmp_path / "output"}
forecast:
  history_days: 180
email:
  planners:
    - {{name: 华东计划组, recipients: [east@example.com], language: zh-CN}}
    - {{name: north, recipients: [north@example.com], language: en}}
  data_team: [data@example.com]
""",
        encoding="utf-8",
    )
    return cfg


def test_nightly_dag_end_to_end_twice_then_failure(tmp_path, pg_url, airflow_db, monkeypatch):
    source = tmp_path / "erp.sqlite"
    generate(f"sqlite:///{source}", n_skus=40, days=200)
    monkeypatch.setenv("TIAOBO_CONFIG", str(_write_config(tmp_path, source)))
    monkeypatch.setenv("TIAOBO_TEST_REPORTING_URL", pg_url)

    # 02:00 in Shanghai on the run date: the business date comes from the logical date, not the clock
    logical = pendulum.datetime(RUN_DATE.year, RUN_DATE.month, RUN_DATE.day, 2, tz="Asia/Shanghai")
    run = run_nightly_dag(logical)
    assert run.state == "success", run.state
    # the DAG run is an attempt in the run log, closed as published like a CLI run
    log = reporting.read_run_log(pg_url, RUN_DATE)
    assert log[["attempt_id", "status"]].values.tolist() == [[f"airflow:tiaobo_nightly:{run.run_id}", "published"]]
    assert log["run_id"].iloc[0] == reporting.read_published_runs(pg_url)["run_id"].iloc[-1]
    assert _xcom(run.run_id, "notify")["business_date"] == RUN_DATE.isoformat()  # shown in the UI's XCom tab

    first = published_tables(pg_url)
    assert len(first["forecasts"]) > 0 and len(first["inventory_policy"]) > 0
    assert len(first["alerts"]) > 0 and len(first["kpis"]) > 0
    # one source of truth: every alert that says "approve the transfer" names one the plan holds
    from pipelines.alerts import plan_disagreements

    assert plan_disagreements(first["alerts"], first["transfers"]).empty
    assert set(first["alerts"].loc[first["alerts"]["alert_type"] != "slow_mover", "plan_reason"]) - {""}
    assert set(first["forecasts"]["run_date"].dt.date) == {RUN_DATE}
    assert reporting.published_run_dates(pg_url) == [RUN_DATE]
    report = tmp_path / "output" / RUN_DATE.isoformat() / f"report_{RUN_DATE.isoformat()}.html"
    assert report.exists()
    emls = sorted((tmp_path / "output" / RUN_DATE.isoformat()).glob("*.eml"))
    assert len(emls) == 2  # one digest per planner group, written as files: no SMTP configured
    msgs = [email.message_from_bytes(p.read_bytes()) for p in emls]
    assert {m["To"] for m in msgs} == {"east@example.com", "north@example.com"}

    # the same date again: identical rows, nothing doubled
    run = run_nightly_dag(logical.add(minutes=1))
    assert run.state == "success"
    second = published_tables(pg_url)
    for name in contract.OUTPUT_TABLES:
        pd.testing.assert_frame_equal(first[name], second[name], check_like=False, obj=name)

    _uncovered_dates_skip_then_stop(tmp_path, pg_url, logical, first)

    # the source loses a table: the run fails, says which, and the published rows stay as they were
    eng = sa.create_engine(f"sqlite:///{source}")
    with eng.begin() as conn:
        conn.execute(sa.text("drop table inv_balance"))
    eng.dispose()
    run = run_nightly_dag(logical.add(minutes=2))
    assert run.state == "failed"
    after = published_tables(pg_url)
    for name in contract.OUTPUT_TABLES:
        pd.testing.assert_frame_equal(first[name], after[name], obj=name)
    log = reporting.read_run_log(pg_url, RUN_DATE)
    failed = log[log["status"] == "failed"]
    assert len(failed) >= 1
    assert failed["stage"].iloc[-1] == "extract"
    assert "inv_balance" in failed["message"].iloc[-1]
    assert failed["attempt_id"].iloc[-1] == f"airflow:tiaobo_nightly:{run.run_id}"  # the run's own row, closed
    failure_mails = [
        email.message_from_bytes(p.read_bytes()) for p in (tmp_path / "output" / RUN_DATE.isoformat()).glob("*.eml")
    ]
    assert any("data@example.com" in (m["To"] or "") and "extract" in m.as_string() for m in failure_mails)


def _xcom(run_id: str, task_id: str) -> dict:
    import json

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id="tiaobo_nightly", run_id=run_id, task_id=task_id, key="return_value")
            .one()
        )
        value = row.value
    return json.loads(value) if isinstance(value, str) else value


def _uncovered_dates_skip_then_stop(tmp_path: Path, pg_url: str, logical, first: dict) -> None:
    # dates the source cannot cover yet (no sales for the day before): skipped, no email, nothing
    # published, a "skipped" row; after source.max_skipped_days (2) skipped dates in a row the run
    # goes on and validation's freshness rule stops it with the failure email
    for ahead in (2, 3, 4):
        day = RUN_DATE + timedelta(days=ahead)
        run = run_nightly_dag(logical.add(days=ahead))
        log = reporting.read_run_log(pg_url, day)
        mails = list((tmp_path / "output" / day.isoformat()).glob("*.eml"))
        if ahead < 4:
            assert run.state == "success", run.state
            assert log["status"].tolist() == ["skipped"] and log["stage"].tolist() == ["extract"]
            assert f"sales up to {RUN_DATE - timedelta(days=1)}" in log["message"].iloc[0]
            assert not mails
        else:
            assert run.state == "failed"
            assert log["status"].tolist() == ["stopped"] and any("data@example.com" in p.read_text() for p in mails)
    assert reporting.published_run_dates(pg_url) == [RUN_DATE]
    for name in contract.OUTPUT_TABLES:
        pd.testing.assert_frame_equal(first[name], published_tables(pg_url)[name], obj=name)


def test_business_date_is_the_logical_date_in_the_company_time_zone():
    from pipelines.airflow_support import business_date

    # 02:00 on 25 Nov in Shanghai is still 24 Nov in UTC
    ld = pendulum.datetime(2026, 11, 24, 18, tz="UTC")
    d = business_date({"logical_date": ld}, "Asia/Shanghai")
    assert d == date(2026, 11, 25)
    assert type(d) is date  # not pendulum.Date, which database drivers cannot bind
    assert business_date({"logical_date": ld}, "UTC") == date(2026, 11, 24)
