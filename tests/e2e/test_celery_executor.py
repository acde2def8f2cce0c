"""The sharded nightly DAG on Airflow's Celery executor, as a deployment runs it: a real
``redis-server`` broker, a PostgreSQL metadata database, the API server (the workers' execution
API), the DAG processor, the scheduler and two Celery workers, each its own process. The scheduler
maps the sharded stages over the night's shards and the two workers share the tasks; what the
night publishes is identical, table by table, to the same night run by ``tiaobo run`` in one shard.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.config import load_config
from pipelines.demo.source import DEMO_END_DATE, generate
from pipelines.runner import run_pipeline
from tests.conftest import fresh_pg_url
from tests.factories import published_hashes

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
RUN = DEMO_END_DATE + timedelta(days=1)
SHARDS = 3
WORKERS = ("w1", "w2")
DAG_ID = "tiaobo_nightly"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, ok, timeout: float, logs: Path | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if ok():
                return
        except Exception:  # not up yet
            pass
        time.sleep(1.0)
    pytest.fail(f"{what}: not within {timeout:.0f} s\n{_tails(logs) if logs else ''}")


def _tails(logs: Path, lines: int = 40) -> str:
    out = []
    for f in sorted(logs.glob("*.log")):
        text = f.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"--- {f.name} ---\n" + "\n".join(text))
    return "\n".join(out)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port (``make redis`` installs Debian's package)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is missing: `make redis` installs Debian's redis-server")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    _wait("redis-server", client.ping, 20)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=20)


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


class Deployment:
    """The Airflow processes of a Celery deployment on this machine, logs under ``logs``."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.procs = env, logs, []

    def airflow(self, *args: str, timeout: float = 300) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            cwd=self.env["AIRFLOW_HOME"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            pytest.fail(f"airflow {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return out.stdout

    def start(self, name: str, *args: str, **env: str) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env={**self.env, **env},
                cwd=self.env["AIRFLOW_HOME"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the whole process group is stopped at the end
            )
        )

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


def test_sharded_night_on_celery_workers_publishes_what_one_shard_does(tmp_path, redis_url, pg_url):  # noqa: PLR0915
    from cryptography.fernet import Fernet

    erp = tmp_path / "erp.sqlite"
    generate(f"sqlite:///{erp}", n_skus=30, days=150)
    meta_gen = fresh_pg_url()
    meta_url = next(meta_gen).replace("postgresql://", "postgresql+psycopg://", 1)
    home, logs = tmp_path / "airflow", tmp_path / "logs"
    home.mkdir()
    logs.mkdir()
    # the workers' hostnames: both run on this machine, so each reports the name it is given
    (tmp_path / "hostpatch").mkdir()
    (tmp_path / "hostpatch" / "tiaobo_test_host.py").write_text(
        "import os\n\ndef name():\n    return os.environ.get('TIAOBO_TEST_WORKER', 'scheduler')\n"
    )
    api_port = _free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tiaobo_test_host.name",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": meta_url,  # psycopg 3 is async too (default: asyncpg)
        "AIRFLOW__CELERY__BROKER_URL": redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + meta_url,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__SECRET_KEY": "celery-test-secret-key",
        "AIRFLOW__API_AUTH__JWT_SECRET": "celery-test-jwt-secret-shared-by-every-process",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "hostpatch"), str(REPO)]),
        "TIAOBO_CONFIG": str(_config(tmp_path, erp)),
        "TIAOBO_TEST_REPORTING_URL": pg_url,
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    af = Deployment(env, logs)
    try:
        af.airflow("db", "migrate")
        af.start("api-server", "api-server", "--port", str(api_port), "--host", "127.0.0.1")
        af.start("dag-processor", "dag-processor")
        af.start("scheduler", "scheduler")
        for w in WORKERS:
            af.start(
                f"worker-{w}",
                "celery",
                "worker",
                "--celery-hostname",
                f"{w}@%h",
                "--concurrency",
                "1",
                "--skip-serve-logs",
                "--without-gossip",
                TIAOBO_TEST_WORKER=w,
            )
        meta = sa.create_engine(meta_url, poolclass=sa.pool.NullPool)

        def parsed() -> bool:
            with meta.connect() as c:
                return bool(c.execute(sa.text("select 1 from serialized_dag where dag_id = :d"), {"d": DAG_ID}).first())

        _wait("the DAG processor serialising tiaobo_nightly", parsed, 180, logs)
        _wait(
            "the API server",
            lambda: (
                __import__("urllib.request")
                .request.urlopen(f"http://127.0.0.1:{api_port}/api/v2/monitor/health", timeout=5)
                .status
                == 200
            ),
            120,
            logs,
        )
        af.airflow("dags", "unpause", DAG_ID)
        logical = f"{RUN.isoformat()}T02:00:00+08:00"  # 02:00 Asia/Shanghai on the business date
        run_id = f"manual__business-{RUN.isoformat()}"
        af.airflow("dags", "trigger", DAG_ID, "--logical-date", logical, "--run-id", run_id)

        def state() -> str:
            with meta.connect() as c:
                row = c.execute(
                    sa.text("select state from dag_run where dag_id = :d and run_id = :r"), {"d": DAG_ID, "r": run_id}
                ).first()
            return row[0] if row else "missing"

        _wait("the DAG run to finish", lambda: state() in ("success", "failed"), 600, logs)
        with meta.connect() as c:
            tis = c.execute(
                sa.text(
                    "select task_id, map_index, state, hostname from task_instance where dag_id = :d and run_id = :r"
                ),
                {"d": DAG_ID, "r": run_id},
            ).all()
        assert state() == "success", "\n".join(f"{t} {m} {s}" for t, m, s, _ in tis) + "\n" + _tails(logs)
    finally:
        af.stop()
        meta_gen.close()  # drops the metadata database

    # every task ran on a Celery worker, and both workers took part
    assert all(s in ("success", "skipped") for _t, _m, s, _h in tis), tis
    hosts = {h for _t, _m, s, h in tis if s == "success"}
    assert hosts == set(WORKERS), hosts
    # the sharded stages ran as mapped tasks, one instance per shard of the night's plan
    plan = json.loads((tmp_path / "staging" / RUN.isoformat() / "shards.json").read_text())
    mapped = {}
    for t, m, _s, _h in tis:
        if m >= 0:
            mapped.setdefault(t, set()).add(m)
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
        assert published_hashes(pg_url) == published_hashes(one_url)
