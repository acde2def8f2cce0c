"""DAG integrity: every DAG file imports cleanly, fast, without heavy imports, and follows house policy."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # Airflow DagBag and one subprocess per DAG file

DAGS = sorted((Path(__file__).resolve().parents[2] / "dags").glob("*.py"))
HEAVY = ("pandas", "sklearn", "great_expectations", "scipy", "pyarrow", "matplotlib")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS[0].parent))


def test_there_are_dag_files():
    assert any(p.name == "tiaobo_nightly.py" for p in DAGS)


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "tiaobo_nightly" in dagbag.dag_ids


@pytest.mark.parametrize("path", DAGS, ids=lambda p: p.name)
def test_dag_file_imports_nothing_heavy_and_parses_fast(path):
    code = (
        "import sys, time, runpy, json\n"
        "import airflow.sdk\n"  # Airflow's own import time is not the DAG file's
        "t = time.perf_counter()\n"
        f"runpy.run_path({str(path)!r})\n"
        "took = time.perf_counter() - t\n"
        f"print(json.dumps({{'took': took, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["heavy"] == [], f"{path.name} imports {info['heavy']} at parse time"
    assert info["took"] < 1.0, f"{path.name} took {info['took']:.2f}s to parse"


def test_every_dag_follows_policy(dagbag):
    from pipelines.airflow_support import TiaoboFailureNotifier

    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no documentation"
        assert dag.max_active_runs == 1
        assert dag.catchup is False
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", f"{dag_id}.{t.task_id} has no owner"
            assert t.execution_timeout is not None and t.execution_timeout <= timedelta(hours=2), t.task_id
            callbacks = t.on_failure_callback if isinstance(t.on_failure_callback, list) else [t.on_failure_callback]
            assert any(isinstance(cb, TiaoboFailureNotifier) for cb in callbacks), (
                f"{dag_id}.{t.task_id} has no failure notifier"
            )
            assert t.retries is not None


def test_dags_are_the_declared_stage_graph(dagbag):
    """Every DAG has one task per declared stage, the declared dependencies, retries and timeouts."""
    from pipelines import stages

    for dag_id, pipeline in (("tiaobo_nightly", "nightly"), ("tiaobo_retrain", "retrain")):
        dag = dagbag.dags[dag_id]
        g = stages.graph(stages.PIPELINES[pipeline])
        sharded = {s.name for s in g.stages if s.sharded}
        # a sharded stage is three tasks: its split (the shard list), the mapped task, its gather
        last = {s.name: f"{s.name}_gather" if s.name in sharded else s.name for s in g.stages}
        expected = {s.name for s in g.stages} | {f"{n}_{x}" for n in sharded for x in ("split", "gather")}
        assert set(dag.task_dict) == expected
        for s in g.stages:
            first = dag.task_dict[f"{s.name}_split" if s.name in sharded else s.name]
            assert first.upstream_task_ids == {last[u] for u in g.upstream[s.name]}, s.name
            t = dag.task_dict[s.name]
            assert t.retries == s.retries and t.execution_timeout == s.timeout, s.name
            if s.name in sharded:
                assert type(t).__name__.endswith("MappedOperator"), s.name
                assert t.upstream_task_ids == {f"{s.name}_split"}
                assert dag.task_dict[f"{s.name}_gather"].upstream_task_ids == {s.name}
    nightly = dagbag.dags["tiaobo_nightly"]
    assert {s.name for s in stages.NIGHTLY if s.sharded} == {"forecast", "policy", "transfers", "alerts"}
    assert nightly.task_dict["validate"].retries == 0
    assert nightly.task_dict["load"].downstream_task_ids == {"notify"}
    assert "transfers_split" in nightly.task_dict["policy_gather"].downstream_task_ids
    assert "alerts_split" in nightly.task_dict["transfers_gather"].downstream_task_ids  # alerts check the plan


def test_failure_notifier_reports_even_when_the_config_itself_is_broken(tmp_path, monkeypatch):
    """A typo in the time zone fails every task; the notifier must still email (with the defaults,
    naming the broken config) and never raise."""
    from datetime import UTC, datetime

    from pipelines.airflow_support import CONFIG_ENV, TiaoboFailureNotifier

    bad = tmp_path / "tiaobo.yaml"
    bad.write_text("timezone: Asia/Shanghia\n", encoding="utf-8")
    monkeypatch.setenv(CONFIG_ENV, str(bad))
    monkeypatch.chdir(tmp_path)  # the defaults write under ./var

    class TI:
        task_id, dag_id = "extract", "tiaobo_nightly"

    context = {
        "ti": TI(),
        "logical_date": datetime(2026, 11, 24, 18, 0, tzinfo=UTC),
        "exception": RuntimeError("boom"),
    }
    TiaoboFailureNotifier().notify(context)  # never raises
    emails = list((tmp_path / "var" / "output" / "2026-11-25").glob("*.eml"))  # 02:00 in Shanghai
    assert len(emails) == 1
    text = emails[0].read_bytes().decode("utf-8", "replace")
    assert "Asia/Shanghia" in text and "boom" in text


def test_task_logs_keep_our_lines_and_quiet_the_libraries():
    import logging

    from pipelines.airflow_support import quiet_libraries

    logging.getLogger("great_expectations").setLevel(logging.NOTSET)
    logging.getLogger().setLevel(logging.INFO)
    # as Great Expectations does to its own module logger once a data context is built
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.INFO)
    assert logging.getLogger("great_expectations.data_context.types.base").isEnabledFor(logging.INFO)
    quiet_libraries()
    for noisy in ("great_expectations.data_context.types.base", "alembic.runtime.migration", "matplotlib.font_manager"):
        assert not logging.getLogger(noisy).isEnabledFor(logging.INFO), noisy
        assert logging.getLogger(noisy).isEnabledFor(logging.WARNING), noisy
    assert logging.getLogger("pipelines.validate").isEnabledFor(logging.INFO)


def test_scheduled_runs_are_named_by_their_business_date(dagbag):
    """The UI shows the logical time in UTC (2026-11-24 18:00 for the night of the 25th); the run id
    names the business date. The timetable survives the serialisation the scheduler reads."""
    import pendulum
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.types import DagRunType

    from pipelines.timetable import BusinessDateTimetable

    for dag_id in ("tiaobo_nightly", "tiaobo_retrain"):
        back = DagSerialization.from_dict(DagSerialization.to_dict(dagbag.dags[dag_id]))
        assert isinstance(back.timetable, BusinessDateTimetable), dag_id
    tt = DagSerialization.from_dict(DagSerialization.to_dict(dagbag.dags["tiaobo_nightly"])).timetable
    nxt = tt.next_dagrun_info_v2(
        last_dagrun_info=None,
        restriction=__import__("airflow.timetables.base", fromlist=["TimeRestriction"]).TimeRestriction(
            earliest=pendulum.datetime(2026, 11, 24, 12, tz="UTC"), latest=None, catchup=True
        ),
    )
    assert nxt is not None and nxt.run_after == pendulum.datetime(2026, 11, 24, 18, tz="UTC")  # 02:00 Shanghai
    run_id = tt.generate_run_id(run_type=DagRunType.SCHEDULED, run_after=nxt.run_after, data_interval=None)
    assert run_id == "scheduled__business-2026-11-25__2026-11-24T18:00:00+00:00"
    backfill = tt.generate_run_id(run_type=DagRunType.BACKFILL_JOB, run_after=nxt.run_after, data_interval=None)
    assert backfill.startswith("backfill__business-2026-11-25__")
    assert tt.generate_run_id(run_type=DagRunType.MANUAL, run_after=nxt.run_after, data_interval=None).startswith(
        "manual__2026-11-24T18:00:00"
    )
