"""The sharded nightly DAG on Airflow's Celery executor, as a deployment runs it: a real
``redis-server`` broker, a PostgreSQL metadata database, the API server (the workers' execution
API), the DAG processor, the scheduler and two Celery workers, each its own process
(``tests/celery_deployment.py``). The scheduler maps the sharded stages over the night's shards and
the two workers share the tasks; what the night publishes is identical, table by table, to the same
night run by ``tiaobo run`` in one shard.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.config import load_config
from pipelines.demo.source import DEMO_END_DATE, generate
from pipelines.reporting import publication_digest
from pipelines.runner import run_pipeline
from tests.celery_deployment import CeleryDeployment, DeploymentError, redis_server, tails
from tests.conftest import fresh_pg_url

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

RUN = DEMO_END_DATE + timedelta(days=1)
SHARDS = 3
WORKERS = ("w1", "w2")
DAG_ID = "tiaobo_nightly"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    try:
        with redis_server(tmp_path) as url:
            yield url
    except DeploymentError as exc:
        pytest.fail(str(exc))


def _config(tmp_path: Path, source: Path) -> Path:
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
  history_days: 120
  method: moving_average
shards:
  by: location
  count: {SHARDS}
""",
        encoding="utf-8",
    )
    return cfg


def test_sharded_night_on_celery_workers_publishes_what_one_shard_does(tmp_path, redis_url, pg_url):
    erp = tmp_path / "erp.sqlite"
    generate(f"sqlite:///{erp}", n_skus=30, days=150)
    meta_gen = fresh_pg_url()
    meta_url = next(meta_gen)
    env = {"TIAOBO_CONFIG": str(_config(tmp_path, erp)), "TIAOBO_TEST_REPORTING_URL": pg_url}
    af = CeleryDeployment(tmp_path, meta_url, redis_url, env)
    run_id = f"manual__business-{RUN.isoformat()}"
    try:
        af.start(WORKERS, DAG_ID)
        state = af.run(DAG_ID, f"{RUN.isoformat()}T02:00:00+08:00", run_id, timeout=600)  # 02:00 Shanghai
        tis = af.task_instances(DAG_ID, run_id)
        assert state == "success", "\n".join(str(t) for t in tis) + "\n" + tails(af.logs)
    except DeploymentError as exc:
        pytest.fail(str(exc))
    finally:
        af.stop()
        meta_gen.close()  # drops the metadata database

    # every task ran on a Celery worker, and both workers took part
    assert all(t["state"] in ("success", "skipped") for t in tis), tis
    assert {t["hostname"] for t in tis if t["state"] == "success"} == set(WORKERS)
    # the sharded stages ran as mapped tasks, one instance per shard of the night's plan
    plan = json.loads((tmp_path / "staging" / RUN.isoformat() / "shards.json").read_text())
    mapped: dict[str, set[int]] = {}
    for t in tis:
        if t["map_index"] >= 0:
            mapped.setdefault(t["task_id"], set()).add(t["map_index"])
    assert set(mapped) == {"forecast", "policy", "alerts", "transfers"}, mapped
    assert len(mapped["policy"]) == len(plan["series"]) == SHARDS
    for kind, stage in (("forecast", "forecast"), ("items", "alerts"), ("lanes", "transfers")):
        assert mapped[stage] == set(range(len(plan[kind]))), (stage, mapped[stage], plan[kind])

    # the same night by `tiaobo run` in one shard publishes the same rows
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(erp, one / "erp.sqlite")
    for one_url in fresh_pg_url():
        cfg = load_config(
            overrides={
                "source": {"url": f"sqlite:///{one / 'erp.sqlite'}"},
                "reporting": {"url": one_url},
                "staging_dir": str(one / "staging"),
                "output_dir": str(one / "output"),
                "forecast": {"history_days": 120, "method": "moving_average"},
                "shards": {"count": 1},
            }
        )
        run_pipeline(cfg, RUN)
        assert publication_digest(pg_url) == publication_digest(one_url)
