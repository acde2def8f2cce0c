"""The DAGs' schedule: a cron whose run ids name the business date.

Airflow's UI shows a run by its logical time in UTC: the nightly run at 02:00 Asia/Shanghai on
25 November appears as 2026-11-24 18:00, and nothing on the run said which business date it
computes. With :class:`BusinessDateTimetable` the scheduler names that run
``scheduled__business-2026-11-25__2026-11-24T18:00:00+00:00``: the grid, the run list and every
log path carry the business date. It is Airflow's ``CronTriggerTimetable`` otherwise (same cron,
same time zone, same serialisation), registered through the ``tiaobo`` plugin (the package's
``airflow.plugins`` entry point), which is how Airflow finds a custom timetable in the DAG
processor, the scheduler and the API server.

The business date is the run's logical date in the timetable's time zone, as
``pipelines.airflow_support.business_date`` computes it in the configured one; the DAG files give
both the same zone. A manual trigger keeps Airflow's own id: Airflow names it before the run
exists, from the time of the click, not from the logical date chosen in the form (type a run id
there, or read the business date in the task logs and XCom).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pendulum
from airflow.plugins_manager import AirflowPlugin
from airflow.timetables.trigger import CronTriggerTimetable
from airflow.utils.types import DagRunType


def business_day(logical: datetime, timezone: Any) -> date:
    """The business date of a logical date: its calendar day in the company's time zone."""
    local = pendulum.instance(logical).in_timezone(timezone)
    return date(local.year, local.month, local.day)


class BusinessDateTimetable(CronTriggerTimetable):
    """``CronTriggerTimetable`` whose scheduled and backfill run ids start with the business date."""

    @property
    def summary(self) -> str:
        return f"{self._expression} ({self._timezone}), run id = business date"

    def generate_run_id(self, *, run_type: DagRunType, run_after: Any, data_interval: Any, **extra: Any) -> str:
        if run_type not in (DagRunType.SCHEDULED, DagRunType.BACKFILL_JOB):
            # a manual run's run_after is the moment of the click, not its logical date
            return super().generate_run_id(run_type=run_type, run_after=run_after, data_interval=data_interval, **extra)
        day = business_day(run_after, self._timezone)
        return run_type.generate_run_id(suffix=f"business-{day.isoformat()}__{run_after.isoformat()}")


class TiaoboPlugin(AirflowPlugin):
    """Registers the timetable (entry point ``airflow.plugins: tiaobo``)."""

    name = "tiaobo"
    timetables = [BusinessDateTimetable]
