"""
### Tiaobo nightly

Every night, for the business date of the run (the logical date in the company's time zone):
extract sales, stock and master data from the source → validate them (bad rows quarantined, bad
tables stop the run) → read back planners' decisions → forecast demand → inventory policy (safety
stock, reorder point, health band) → alerts and transfer recommendations → KPIs → publish
everything to the reporting database in one transaction → planner report and digest email.

The tasks, their dependencies, retries and timeouts come from the stage graph declared in
`pipelines/stages.py` (see docs/architecture.md). Each task calls one `pipelines` function and
passes staging paths and row counts through XCom, never data. Configuration: the YAML file named
by `$TIAOBO_CONFIG` (embedded defaults without it). A failed task records the failure in the run
log and emails the data team; the previously published results stay untouched.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import dag

from pipelines.airflow_support import build_tasks, default_args
from pipelines.timetable import BusinessDateTimetable


@dag(
    dag_id="tiaobo_nightly",
    schedule=BusinessDateTimetable("0 2 * * *", timezone="Asia/Shanghai"),
    # TIAOBO_DAG_START_DATE: an earlier first date, to run (backfill) business dates before it
    start_date=pendulum.datetime(
        *map(int, os.environ.get("TIAOBO_DAG_START_DATE", "2026-01-01").split("-")), tz="Asia/Shanghai"
    ),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2, execution_timeout=timedelta(minutes=30), retry_delay=timedelta(minutes=5)),
    dagrun_timeout=timedelta(hours=3),
    tags=["tiaobo", "nightly", "inventory"],
    doc_md=__doc__,
)
def tiaobo_nightly():
    build_tasks("nightly")


dag_object = tiaobo_nightly()
