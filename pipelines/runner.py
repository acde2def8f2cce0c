"""The nightly pipeline without an Airflow server: the same stage functions the DAG calls, in order.

The stages and their order come from the declaration in :mod:`pipelines.stages`, which the DAGs
are built from too; after each stage the runner checks that it kept its declaration. A failure in
any stage is recorded in the run log with the stage and the message, the data team gets the
failure email (or its ``.eml``), and nothing is published: publishing is the single transaction
of the load stage, so the previously published state stays exactly as it was.
"""

from __future__ import annotations

import importlib
import json
import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

import pandas as pd

from pipelines import runlock, stages
from pipelines.config import Config
from pipelines.context import RunContext, StageResult, promote_attempt, remove_leftovers

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


STAGES = tuple(s.name for s in stages.NIGHTLY)  # the nightly run, in order


def stage_function(stage: stages.Stage) -> Callable[..., StageResult]:
    """The function a stage declares (``module:function``), imported here, lazily: the DAG stays light."""
    module, func = stage.func.split(":")
    return cast(Callable[..., StageResult], getattr(importlib.import_module(module), func))


def check_contract(stage: stages.Stage, ctx: RunContext) -> None:
    """Hold a stage to its declaration: every file it read (or looked for) is declared among its reads
    or writes, and every required write exists. Raises :class:`~pipelines.stages.StageContractError`."""
    declared = set(stage.all_reads) | set(stage.all_writes)
    undeclared = sorted(ctx.accessed - declared)
    if undeclared:
        raise stages.StageContractError(
            f"stage {stage.name!r} read {', '.join(map(repr, undeclared))}, which it does not declare"
            " (pipelines/stages.py)"
        )
    missing = [w for w in stage.required_writes if not (ctx.write_dir(w) / _file(w)).exists()]
    if missing:
        raise stages.StageContractError(
            f"stage {stage.name!r} did not write {', '.join(map(repr, missing))}, which it declares"
            " (pipelines/stages.py)"
        )


def _file(name: str) -> str:
    return name if name.endswith(".json") else f"{name}.parquet"


def run_stage(name: str, ctx: RunContext, progress: Progress | None = None) -> StageResult:
    """Run one declared stage by name and check it kept its declaration (:func:`check_contract`).
    A sharded stage runs shard after shard (:func:`run_shard`), then its gather (:func:`gather_stage`):
    the same steps Airflow runs as mapped tasks."""
    stage = stages.BY_NAME[name]
    if stage.sharded and shard_count(name, ctx):
        n = shard_count(name, ctx)
        notes: list[str] = []
        for k in range(n):
            say = (lambda msg, k=k: progress(f"shard {k + 1}/{n}: {msg}")) if progress and n > 1 else progress
            r = run_shard(name, k, ctx, progress=say)
            notes += [f"shard {k + 1}/{n}: {x}" for x in r.notes] if n > 1 else r.notes
        g = gather_stage(name, ctx)
        return StageResult(stage=name, paths=g.paths, counts=g.counts, notes=notes)
    fn = stage_function(stage)
    ctx.accessed.clear()
    ctx.written.clear()
    result = fn(ctx, progress=progress) if stage.progress else fn(ctx)
    check_contract(stage, ctx)
    return result


def shard_count(name: str, ctx: RunContext) -> int:
    """How many shards sharded stage ``name`` has tonight (the shards stage's plan; 0 without a plan:
    the stage then runs on the whole night, as when it is called on its own)."""
    from pipelines import shards

    kind = stages.BY_NAME[name].sharded
    if kind is None or not (ctx.run_dir / shards.PLAN).exists():
        return 0
    return len(shards.read_plan(ctx.run_dir)[kind])


def run_shard(name: str, index: int, ctx: RunContext, progress: Progress | None = None) -> StageResult:
    """Run shard ``index`` of sharded stage ``name``: its reads filtered to the shard, its writes in
    the shard's folder (:mod:`pipelines.shards`), held to the stage's declaration."""
    from dataclasses import replace

    from pipelines import shards

    stage = stages.BY_NAME[name]
    scope = shards.scope(shards.read_plan(ctx.run_dir), stage, index)
    sctx = replace(ctx, shard=scope, accessed=set(), written=set())
    fn = stage_function(stage)
    result = fn(sctx, progress=progress) if stage.progress else fn(sctx)
    check_contract(stage, sctx)
    return result


def gather_stage(name: str, ctx: RunContext) -> StageResult:
    """Join the shards' files of sharded stage ``name`` into the run's staging files."""
    from pipelines import shards

    stage = stages.BY_NAME[name]
    counts = shards.gather(ctx, stage, shard_count(name, ctx))
    missing = [w for w in stage.required_writes if not (ctx.run_dir / _file(w)).exists()]
    if missing:
        raise stages.StageContractError(f"stage {name!r}: no shard wrote {', '.join(map(repr, missing))}")
    paths = {
        w.removesuffix(".json"): str(ctx.run_dir / _file(w))
        for w in stage.all_writes
        if (ctx.run_dir / _file(w)).exists()
    }
    return StageResult(stage=f"{name}_gather", paths=paths, counts=counts)


def summary_stage(ctx: RunContext) -> StageResult:
    """Collect the counts of every stage and the top recommendations into ``summary.json``."""
    from pipelines import contract

    counts: dict[str, Any] = {}
    for name in ("items", "locations", "lanes", "sales", "stock", "lead_times"):
        if ctx.exists(name):
            counts.setdefault("validated", {})[name] = len(
                pd.read_parquet(ctx.path(name), columns=[contract.TABLES[name].key[0]])
            )
    for name in contract.OUTPUT_TABLES:
        if ctx.exists(name):
            counts.setdefault("outputs", {})[name] = len(pd.read_parquet(ctx.path(name), columns=["run_id"]))
    q = ctx.read("quarantine") if ctx.exists("quarantine") else contract.empty("quarantine")
    summary = {
        "run_date": ctx.run_date.isoformat(),
        "run_id": ctx.run_id,
        "counts": counts,
        "quarantined": int(q[["table_name", "row_number"]].drop_duplicates().shape[0]),
        "reconciliation": ctx.read_json("reconciliation") if ctx.exists("reconciliation.json") else [],
        "currency": ctx.cfg.currency,
        "alerts_below_materiality": (
            ctx.read_json("alert_noise").get("below_materiality", {}) if ctx.exists("alert_noise.json") else {}
        ),
    }
    path = ctx.write_json("summary", summary)
    return StageResult(stage="summary", paths={"summary": str(path)}, counts={"quarantined": summary["quarantined"]})


def record_failure(
    cfg: Config,
    run_date: date,
    stage: str,
    error: BaseException | str,
    *,
    dag_id: str = "tiaobo_nightly",
    attempt_id: str | None = None,
    published: str | None = None,
) -> None:
    """Log a failed (or validation-stopped) run and tell the data team. Never raises.

    ``published``: the run id when the failure came after the publish committed — the attempt is
    then logged ``published`` (with the failed stage and the error as its message), never
    ``failed``, because its results are the published ones. When the reporting database cannot be
    reached the email still goes out and the row waits in ``<staging_dir>/_pending_run_log.jsonl``
    until the next run that reaches the database writes it (:func:`flush_pending`)."""
    try:
        from pipelines.validate import ValidationStop

        status = "stopped" if isinstance(error, ValidationStop) else "failed"
    except Exception:  # an import failing must not keep the email from going out
        status = "failed"
    if published is not None:
        status = "published"
    text = str(error)
    try:
        from pipelines import reporting

        url = cfg.reporting_url()
        reporting.migrate(url)
        aid = attempt_id or reporting.log_attempt_start(url, run_date)
        reporting.log_attempt_end(url, aid, status, run_id=published, stage=stage, message=text[:4000])
    except Exception as exc:  # the failure email must still go out
        log.exception("could not write the failure to the run log")
        _keep_pending(cfg, run_date, stage, status, text, attempt_id, published, exc)
    try:
        from pipelines import notify

        examples = getattr(error, "examples", None)
        notify.send_failure(
            cfg,
            run_date,
            dag_id=dag_id,
            task_id=stage,
            error=text,
            where_to_look=f"run log in the reporting database; staging files in {RunContext(cfg, run_date).date_dir}",
            examples=examples,
        )
    except Exception:
        log.exception("could not send the failure email")


PENDING_FILE = "_pending_run_log.jsonl"


def _keep_pending(
    cfg: Config,
    run_date: date,
    stage: str,
    status: str,
    text: str,
    attempt_id: str | None,
    published: str | None,
    cause: BaseException,
) -> None:
    """Append the run-log row that could not be written to the pending file. Never raises."""
    try:
        from pipelines.urls import scrub_urls

        entry = {
            "run_date": run_date.isoformat(),
            "attempt_id": attempt_id,
            "stage": stage,
            "status": status,
            "run_id": published,
            "message": text[:4000],
            "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "why_late": scrub_urls(str(cause).splitlines()[0] if str(cause) else type(cause).__name__)[:500],
        }
        path = Path(cfg.staging_dir) / PENDING_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
    except Exception:
        log.exception("could not keep the run-log row for later either")


def flush_pending(cfg: Config, url: str) -> int:
    """Write the run-log rows kept while the reporting database was unreachable; returns how many."""
    from pipelines import reporting

    path = Path(cfg.staging_dir) / PENDING_FILE
    if not path.exists():
        return 0
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    for ln in lines:
        e = json.loads(ln)
        note = f" (recorded late: at {e['failed_at']} the reporting database could not be reached: {e['why_late']})"
        aid = e.get("attempt_id")
        known = aid and not reporting.read_run_log(url).query("attempt_id == @aid").empty
        if not known:
            aid = reporting.log_attempt_start(url, date.fromisoformat(e["run_date"]))
        reporting.log_attempt_end(
            url, aid, e["status"], run_id=e.get("run_id"), stage=e["stage"], message=(e["message"] + note)[:4000]
        )
    path.unlink()
    return len(lines)


class FailedAfterPublish(RuntimeError):
    """A stage after the load failed (the report or the digests): the night's results *are*
    published under ``run_id``; what did not happen is named by ``stage`` and the cause."""

    def __init__(self, stage: str, run_id: str, cause: BaseException) -> None:
        super().__init__(
            f"the results are published (run {run_id}); the {stage} stage failed after the publish: {cause}"
        )
        self.stage, self.run_id = stage, run_id


class Terminated(BaseException):
    """SIGTERM arrived (Airflow's or a supervisor's stop): the attempt is closed as failed and the
    data team hears of it, as for any failure, instead of the row staying ``running``."""


@contextmanager
def _terminate_as_exception() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated(f"stopped by signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _start_attempt(cfg: Config, run_date: date, held: runlock.Held, progress: Progress | None) -> str:
    """Migrate, write pending rows, open the attempt and close the dead ones (reported)."""
    from pipelines import reporting

    url = cfg.reporting_url()
    reporting.configure_timeouts(cfg.reporting.lock_timeout_s, cfg.reporting.statement_timeout_s)
    reporting.migrate(url)
    late = flush_pending(cfg, url)
    if late and progress:
        progress(f"run log: {late} row(s) written late (the reporting database was unreachable then)")
    attempt = reporting.log_attempt_start(url, run_date, message=f"running: {held.text}")
    runlock.set_attempt(held, attempt)
    for p in remove_leftovers(cfg, run_date):
        log.info("removed %s, left by an attempt that did not finish", p)
    for row in reporting.abandon_running(url, run_date, by=attempt).itertuples(index=False):
        text = f"attempt {row.attempt_id} of {run_date} was abandoned: {row.message or 'holder unknown'}"
        log.warning(text)
        if progress:
            progress(f"! {text}")
        try:
            from pipelines import notify

            notify.send_failure(
                cfg,
                run_date,
                dag_id="tiaobo_nightly",
                task_id=str(row.stage or "unknown"),
                error=text + f"; it never finished (killed?), noticed by attempt {attempt}",
                where_to_look="run log in the reporting database (status abandoned)",
            )
        except Exception:
            log.exception("could not send the email about the abandoned attempt")
    return attempt


def run_pipeline(cfg: Config, run_date: date, progress: Progress | None = None) -> dict[str, Any]:
    """Run every stage for ``run_date``; returns {stage: StageResult.to_xcom()} plus timings.

    One run per date at a time (:mod:`pipelines.runlock`, waiting up to ``run_lock_timeout_s``),
    each attempt in its own staging folder, made the date's folder when it ends."""
    try:
        with runlock.run_lock(cfg.staging_dir, run_date, cfg.run_lock_timeout_s) as held, _terminate_as_exception():
            try:
                attempt = _start_attempt(cfg, run_date, held, progress)
            except Exception as exc:
                record_failure(cfg, run_date, "start", exc)
                raise
            ctx = RunContext(cfg, run_date, attempt=attempt)
            try:
                return _run_stages(ctx, attempt, progress)
            finally:
                promote_attempt(ctx)
    except runlock.RunLocked as exc:  # only the lock raises it: the run log and the data team hear who holds it
        record_failure(cfg, run_date, "start", exc)
        raise


def _run_stages(ctx: RunContext, attempt: str, progress: Progress | None) -> dict[str, Any]:
    from pipelines import reporting

    cfg, run_date, url = ctx.cfg, ctx.run_date, ctx.cfg.reporting_url()
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    stage = "start"
    try:
        for stage in STAGES:
            if progress:
                progress(f"[{stage}]")
            t0 = time.perf_counter()
            res = run_stage(stage, ctx, progress)
            timings[stage] = round(time.perf_counter() - t0, 2)
            results[stage] = res.to_xcom()
    except BaseException as exc:
        log.error("stage %s failed: %s", stage, exc)
        if not isinstance(exc, KeyboardInterrupt | Terminated):
            log.debug(traceback.format_exc())
        if "load" not in results or isinstance(exc, KeyboardInterrupt | Terminated):
            record_failure(cfg, run_date, stage, exc, attempt_id=attempt)
            raise
        # the publish committed: the run log says so, and the data team hears what failed after it
        after = FailedAfterPublish(stage, ctx.run_id, exc)
        record_failure(cfg, run_date, stage, after, attempt_id=attempt, published=ctx.run_id)
        raise after from exc
    reporting.log_attempt_end(
        url,
        attempt,
        "published",
        run_id=ctx.run_id,
        counts={k: v["counts"] for k, v in results.items()},
        message="ok",
    )
    results["timings"] = timings
    return results
