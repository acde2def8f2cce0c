"""Glue between Airflow and the pipeline package: business date, config, failure notifier.

Imported by the DAG files at parse time, so it imports only Airflow's SDK and the standard library
at module level; the pipeline (pandas, scikit-learn, Great Expectations) loads inside tasks.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import Any

from airflow.sdk import BaseNotifier

CONFIG_ENV = "TIAOBO_CONFIG"


def load_cfg() -> Any:
    """The pipeline configuration: the YAML file named by $TIAOBO_CONFIG, else the embedded defaults."""
    from pipelines.config import load_config

    return load_config(os.environ.get(CONFIG_ENV) or None)


def business_date(context: Any, timezone: str) -> date:
    """The run's business date: the logical date in the company's time zone, never the wall clock."""
    from pipelines.timetable import business_day

    logical = context.get("logical_date") or context["dag_run"].logical_date
    return business_day(logical, timezone)  # a plain date: DB drivers do not know pendulum's


def run_stage(name: str, context: Any, *, shard: int | None = None, gather: bool = False) -> dict[str, Any]:
    """Run one pipeline stage for the task's business date; returns paths and counts for XCom.
    ``shard``: run that shard of a sharded stage (a mapped task); ``gather``: join its shards' files."""
    import logging

    from pipelines import reporting
    from pipelines.context import RunContext
    from pipelines.runner import run_stage as _run

    quiet_libraries()
    cfg = load_cfg()
    reporting.configure_timeouts(cfg.reporting.lock_timeout_s, cfg.reporting.statement_timeout_s)
    ctx = RunContext(cfg, business_date(context, cfg.timezone))
    log = logging.getLogger("tiaobo")
    log.info("business date %s: stage %s", ctx.run_date, name)
    nightly = _nightly_bounds()
    attempt = airflow_attempt_id(context)
    if name == nightly[0]:  # the DAG run is the attempt: its row opens with the first stage
        reporting.migrate(cfg.reporting_url())
        reporting.log_attempt_start(
            cfg.reporting_url(), ctx.run_date, message=f"running: Airflow DAG run {attempt}", attempt_id=attempt
        )
    say = lambda msg: log.info("business date %s: %s", ctx.run_date, msg)  # noqa: E731
    if shard is not None:
        from pipelines.runner import run_shard

        log.info("business date %s: stage %s, shard %d", ctx.run_date, name, shard)
        result = run_shard(name, shard, ctx, progress=say)
    elif gather:
        from pipelines.runner import gather_stage

        result = gather_stage(name, ctx)
    else:
        result = _run(name, ctx, progress=say)
    log.info("business date %s: stage %s done: %s", ctx.run_date, result.stage, result.counts)

    if name == nightly[0]:
        reason = skip_uncovered_date(cfg, ctx)
        if reason:
            from airflow.sdk.exceptions import AirflowSkipException

            reporting.log_attempt_end(cfg.reporting_url(), attempt, "skipped", stage=name, message=reason)
            log.warning("business date %s: %s", ctx.run_date, reason)
            raise AirflowSkipException(reason)
    if name == nightly[1]:
        reporting.log_attempt_end(
            cfg.reporting_url(), attempt, "published", run_id=ctx.run_id, counts=result.counts, message="ok"
        )
    # the business date in every task's XCom: the Airflow UI shows the logical time in UTC, not the date
    return {**result.to_xcom(), "business_date": ctx.run_date.isoformat()}


def shard_indexes(name: str, context: Any) -> list[int]:
    """``[0, .., n-1]`` for the n shards of sharded stage ``name`` in tonight's plan (the shards stage's)."""
    from pipelines.context import RunContext
    from pipelines.runner import shard_count

    cfg = load_cfg()
    return list(range(max(1, shard_count(name, RunContext(cfg, business_date(context, cfg.timezone))))))


def skip_uncovered_date(cfg: Any, ctx: Any) -> str | None:
    """Why an Airflow run of ``ctx.run_date`` should be skipped, or None to go on.

    A business date needs the source's sales of the day before it. When the extracted sales end
    earlier, the source cannot cover the date yet (a DAG just unpaused on today's date, a feed
    arriving late): the run is skipped — no failure email, nothing published, a ``skipped`` row in
    the run log — unless the ``source.max_skipped_days`` dates before it were all skipped already,
    in which case it goes on and validation's freshness rule stops it with the failure email (a
    feed that stays away is a failure, not a wait)."""
    import pandas as pd

    from pipelines import reporting

    limit = int(cfg.source.max_skipped_days)
    if limit <= 0 or not ctx.exists("extract_sales"):
        return None
    dates = pd.read_parquet(ctx.path("extract_sales"), columns=["date"])["date"]
    last = pd.to_datetime(dates, errors="coerce").max() if len(dates) else pd.NaT
    want = pd.Timestamp(ctx.run_date) - pd.Timedelta(days=1)
    if not pd.isna(last) and last >= want:
        return None
    if len(reporting.skipped_dates(cfg.reporting_url(), ctx.run_date, limit)) >= limit:
        return None
    have = "no sales at all" if pd.isna(last) else f"sales up to {last:%Y-%m-%d}"
    return (
        f"skipped: the source holds {have}, so it cannot cover business date {ctx.run_date} (it needs"
        f" {want:%Y-%m-%d}); nothing was run or published. After {limit} skipped date(s) in a row the run"
        " goes on and validation reports the stale source."
    )


#: libraries whose INFO lines bury ours in a task log (Great Expectations alone wrote 214 of 240)
NOISY = ("great_expectations", "alembic", "matplotlib", "fontTools", "PIL", "urllib3", "numexpr", "httpx", "asyncio")


def quiet_libraries() -> None:
    """Our own lines at INFO, the libraries' at WARNING."""
    import logging

    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    # A library may have set a level on one of its own module loggers (Great Expectations does,
    # once its data context is built): those would still print INFO under a quiet parent.
    for existing, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and any(existing.startswith(n + ".") for n in NOISY):
            if logger.level and logger.level < logging.WARNING:
                logger.setLevel(logging.WARNING)
    for name in ("tiaobo", "pipelines", "models"):
        logging.getLogger(name).setLevel(logging.INFO)


def _nightly_bounds() -> tuple[str, str]:
    from pipelines import stages

    return stages.NIGHTLY[0].name, stages.NIGHTLY[-1].name


def airflow_attempt_id(context: Any) -> str:
    """The run-log attempt of an Airflow DAG run: its DAG and run id (every task of the run, and
    every retry, writes to the same row)."""
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", "dag")
    run_id = getattr(dag_run, "run_id", None) or getattr(ti, "run_id", "run")
    return f"airflow:{dag_id}:{run_id}"


class TiaoboFailureNotifier(BaseNotifier):
    """Failure notifier: records the failed stage in the run log and emails the data team.

    The email goes through the SMTP server of the configuration (or is written as an ``.eml``
    file when none is set), with the task, the error or validation rule, example rows and where
    to look. It never raises: a notifier failure must not hide the original failure.
    """

    def notify(self, context: Any) -> None:
        import logging

        try:
            self._notify(context)
        except Exception:  # the last resort: the task's own failure stays what Airflow reports
            logging.getLogger("tiaobo").exception("the failure notifier could not report the failure")

    @staticmethod
    def _notify(context: Any) -> None:
        from pipelines.config import Config
        from pipelines.runner import record_failure

        ti = context.get("ti") or context.get("task_instance")
        task_id = getattr(ti, "task_id", "unknown")
        dag_id = getattr(ti, "dag_id", "tiaobo_nightly")
        error: Any = context.get("exception") or "the task failed (no exception recorded)"
        try:
            cfg = load_cfg()
        except Exception as exc:  # a broken config is itself the failure to report: with the defaults
            cfg, error = Config(), f"{error}\n\nthe configuration could not be loaded either: {exc}"
        try:
            run_date = business_date(context, cfg.timezone)
        except Exception:  # no usable time zone or logical date: the logical date in UTC
            logical = context.get("logical_date") or getattr(context.get("dag_run"), "logical_date", None)
            run_date = logical.date() if logical is not None else date.today()
        from pipelines import reporting, stages

        attempt = airflow_attempt_id(context)
        try:
            known = not reporting.read_run_log(cfg.reporting_url(), run_date).query("attempt_id == @attempt").empty
        except Exception:  # the database down: record_failure keeps the row for later
            known = False
        order = [s.name for s in stages.NIGHTLY]
        published = None
        if known and task_id in order and order.index(task_id) > order.index("load"):
            from pipelines.context import RunContext

            published = RunContext(cfg, run_date).run_id  # the load committed before this task failed
        record_failure(
            cfg, run_date, task_id, error, dag_id=dag_id, attempt_id=attempt if known else None, published=published
        )


def build_tasks(pipeline: str) -> dict[str, Any]:
    """One Airflow task per stage of ``pipeline`` (:data:`pipelines.stages.PIPELINES`), wired as the
    declared graph says, with each stage's retries and timeout. Call inside a ``@dag`` function.

    Every task calls :func:`run_stage` with its own name; what flows between tasks is only the
    stage results (paths and counts) of the upstream tasks, never data.
    """
    from airflow.sdk import task

    from pipelines import stages

    g = stages.graph(stages.PIPELINES[pipeline])
    out: dict[str, Any] = {}
    for stage in g.stages:
        settings: dict[str, Any] = {
            "retries": stage.retries,
            "retry_exponential_backoff": stage.retry_exponential_backoff,
            "execution_timeout": stage.timeout,
            "doc_md": f"{stage.doc}\n\nReads: {', '.join(stage.all_reads) or 'the source'};"
            f" writes: {', '.join(stage.all_writes) or 'the reporting database'}.",
        }
        if stage.sharded:
            # one mapped task instance per shard of tonight's plan, then one gather task
            def _shard(shard: int, name: str = stage.name, **context: Any) -> dict[str, Any]:
                return run_stage(name, context, shard=shard)

            def _gather(name: str = stage.name, **context: Any) -> dict[str, Any]:
                return run_stage(name, context, gather=True)

            _shard.__doc__, _gather.__doc__ = stage.doc, f"join the shards' files of {stage.name}"

            def _split(name: str = stage.name, **context: Any) -> list[int]:
                return shard_indexes(name, context)

            _split.__doc__ = f"the shards of {stage.name} tonight (what its mapped task expands over)"
            split = task(task_id=f"{stage.name}_split", retries=1)(_split)()
            mapped = task(task_id=stage.name, **settings)(_shard).expand(shard=split)
            joined = task(task_id=f"{stage.name}_gather", **settings)(_gather)()
            for up in g.upstream[stage.name]:
                out[up] >> split
            mapped >> joined
            out[stage.name] = joined
            continue

        def _body(name: str = stage.name, **context: Any) -> dict[str, Any]:
            return run_stage(name, context)

        _body.__doc__ = stage.doc
        fn = task(task_id=stage.name, **settings)(_body)
        out[stage.name] = fn()
        for up in g.upstream[stage.name]:
            out[up] >> out[stage.name]
    return out


def default_args(*, retries: int, execution_timeout: timedelta, retry_delay: timedelta) -> dict[str, Any]:
    """The house task defaults of every Tiaobo DAG: owner, retries, timeout, failure notifier.

    ``TIAOBO_RETRY_DELAY_SECONDS`` overrides the wait between attempts (the end-to-end tests
    shorten it: ``dag.test()`` waits out retry delays in real time).
    """
    delay = os.environ.get("TIAOBO_RETRY_DELAY_SECONDS")
    return {
        "owner": "data-team",
        "retries": retries,
        "retry_delay": timedelta(seconds=float(delay)) if delay else retry_delay,
        "execution_timeout": execution_timeout,
        "on_failure_callback": [TiaoboFailureNotifier()],
    }
