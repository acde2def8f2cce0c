"""
### Tiaobo weekly retrain

Every Sunday, for the business date of the run: extract and validate the sales history → backtest
every candidate forecast model (seasonal naive, moving average, SES, SBA, TSB and the global
gradient-boosting model) on rolling origins, select the best model per SKU-location, and save a
new versioned model artifact (model + metadata: training window, features, backtest scores) under
`forecast.model_dir`. The new version becomes the current one only if its backtest score is not
worse than the current version's; otherwise the current model stays and the reason is logged.

The nightly DAG predicts with the current version (and trains one itself when none exists).
The tasks come from the stage graph declared in `pipelines/stages.py`; only paths and counts go
through XCom.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import dag

from pipelines.airflow_support import build_tasks, default_args
from pipelines.timetable import BusinessDateTimetable


@dag(
    dag_id="tiaobo_retrain",
    schedule=BusinessDateTimetable("0 4 * * 0", timezone="Asia/Shanghai"),
    # TIAOBO_DAG_START_DATE: an earlier first date, to run (backfill) business dates before it
    start_date=pendulum.datetime(
        *map(int, os.environ.get("TIAOBO_DAG_START_DATE", "2026-01-04").split("-")), tz="Asia/Shanghai"
    ),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1, execution_timeout=timedelta(hours=1), retry_delay=timedelta(minutes=10)),
    dagrun_timeout=timedelta(hours=3),
    tags=["tiaobo", "weekly", "forecast"],
    doc_md=__doc__,
)
def tiaobo_retrain():
    build_tasks("retrain")


dag_object = tiaobo_retrain()
