"""
### Tiaobo nightly

Every night, for the business date of the run (the logical date in the company's time zone):
extract sales, stock and master data from the source → validate them (bad rows quarantined, bad
tables stop the run) → forecast demand → inventory policy (safety stock, reorder point, health
band) → alerts and transfer recommendations → KPIs → publish everything to the reporting database
in one transaction → planner report and digest email.

Each task calls one `pipelines` function and passes staging paths and row counts through XCom,
never data. Configuration: the YAML file named by `$TIAOBO_CONFIG` (embedded defaults without it).
A failed task records the failure in the run log and emails the data team; the previously
published results stay untouched.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from pipelines.airflow_support import default_args, run_stage

DEFAULT_ARGS = default_args(retries=2, execution_timeout=timedelta(minutes=30), retry_delay=timedelta(minutes=5))


@dag(
    dag_id="tiaobo_nightly",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=3),
    tags=["tiaobo", "nightly", "inventory"],
    doc_md=__doc__,
)
def tiaobo_nightly():
    @task(retries=3, retry_exponential_backoff=True)
    def extract(**context):
        return run_stage("extract", context)

    @task(retries=0)  # a validation stop is a verdict on the data: retrying cannot change it
    def validate(upstream: dict, **context):
        return run_stage("validate", context)

    @task
    def masters(upstream: dict, **context):
        return run_stage("masters", context)

    @task
    def forecast(upstream: dict, **context):
        return run_stage("forecast", context)

    @task
    def policy(upstream: dict, **context):
        return run_stage("policy", context)

    @task
    def alerts(upstream: dict, **context):
        return run_stage("alerts", context)

    @task
    def transfers(upstream: dict, **context):
        return run_stage("transfers", context)

    @task
    def kpis(alerts_out: dict, transfers_out: dict, **context):
        return run_stage("kpis", context)

    @task
    def summary(upstream: dict, **context):
        return run_stage("summary", context)

    @task
    def load(upstream: dict, **context):
        return run_stage("load", context)

    @task(retries=1)
    def notify(upstream: dict, **context):
        return run_stage("notify", context)

    pol = policy(forecast(masters(validate(extract()))))
    notify(load(summary(kpis(alerts(pol), transfers(pol)))))


dag_object = tiaobo_nightly()
