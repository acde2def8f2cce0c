"""A Celery deployment of Airflow on this machine, every component its own process: a real
``redis-server`` broker on a free loopback port, a PostgreSQL metadata database, the API server
(the workers' execution API), the DAG processor, the scheduler and N Celery workers. Used by
``tests/e2e/test_celery_executor.py`` and ``benchmarks/night.py --celery``.

Both workers run on this host, so each reports the name it is given as its hostname (Airflow's
``core.hostname_callable``, pointed at a one-line module written into the deployment's folder):
the task instances then show which worker ran them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]


class DeploymentError(RuntimeError):
    """A component did not start, or a command failed (the message carries the logs' tails)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, ok: Callable[[], Any], timeout: float, logs: Path | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if ok():
                return
        except Exception:  # not up yet
            pass
        time.sleep(1.0)
    raise DeploymentError(f"{what}: not within {timeout:.0f} s\n{tails(logs) if logs else ''}")


def tails(logs: Path, lines: int = 40) -> str:
    out = []
    for f in sorted(logs.glob("*.log")):
        text = f.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"--- {f.name} ---\n" + "\n".join(text))
    return "\n".join(out)


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port (``make redis`` installs Debian's package)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise DeploymentError("redis-server is missing: `make redis` installs Debian's redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        wait_for("redis-server", client.ping, 20)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


class CeleryDeployment:
    """Airflow on the Celery executor in ``folder`` (AIRFLOW_HOME, logs), metadata at ``meta_url``
    (``postgresql+psycopg://``), tasks queued on ``broker_url``; ``env`` adds the pipeline's own
    variables (``TIAOBO_CONFIG``, ...)."""

    def __init__(self, folder: Path, meta_url: str, broker_url: str, env: dict[str, str] | None = None) -> None:
        from cryptography.fernet import Fernet

        self.home, self.logs = folder / "airflow", folder / "logs"
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        (folder / "hostpatch").mkdir(exist_ok=True)
        (folder / "hostpatch" / "tiaobo_test_host.py").write_text(
            "import os\n\ndef name():\n    return os.environ.get('TIAOBO_TEST_WORKER', 'scheduler')\n"
        )
        self.api_port = free_port()
        self.meta_url = meta_url
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tiaobo_test_host.name",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": meta_url,  # psycopg 3 is async too (default: asyncpg)
            "AIRFLOW__CELERY__BROKER_URL": broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + meta_url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__SECRET_KEY": "celery-test-secret-key",
            "AIRFLOW__API_AUTH__JWT_SECRET": "celery-test-jwt-secret-shared-by-every-process",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "PYTHONPATH": os.pathsep.join([str(folder / "hostpatch"), str(REPO)]),
            **(env or {}),
        }
        self.env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.meta = sa.create_engine(meta_url, poolclass=sa.pool.NullPool)

    def airflow(self, *args: str, timeout: float = 300) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise DeploymentError(f"airflow {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return out.stdout

    def _start(self, name: str, *args: str, **env: str) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env={**self.env, **env},
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the whole process group is stopped at the end
            )
        )

    def start(self, workers: tuple[str, ...], dag_id: str) -> None:
        """Migrate the metadata database, start every component, wait until ``dag_id`` is parsed
        and the API server answers, and unpause the DAG."""
        self.airflow("db", "migrate")
        self._start("api-server", "api-server", "--port", str(self.api_port), "--host", "127.0.0.1")
        self._start("dag-processor", "dag-processor")
        self._start("scheduler", "scheduler")
        for w in workers:
            self._start(
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

        def parsed() -> bool:
            with self.meta.connect() as c:
                q = sa.text("select 1 from serialized_dag where dag_id = :d")
                return bool(c.execute(q, {"d": dag_id}).first())

        wait_for(f"the DAG processor serialising {dag_id}", parsed, 180, self.logs)
        import urllib.request

        health = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"
        wait_for("the API server", lambda: urllib.request.urlopen(health, timeout=5).status == 200, 120, self.logs)
        self.airflow("dags", "unpause", dag_id)

    def run(self, dag_id: str, logical: str, run_id: str, timeout: float) -> str:
        """Trigger ``dag_id`` for ``logical`` as ``run_id`` and wait until it ends: its state."""
        self.airflow("dags", "trigger", dag_id, "--logical-date", logical, "--run-id", run_id)
        wait_for(
            "the DAG run to finish", lambda: self.state(dag_id, run_id) in ("success", "failed"), timeout, self.logs
        )
        return self.state(dag_id, run_id)

    def rerun(self, dag_id: str, run_id: str, logical: str, timeout: float) -> str:
        """Clear every task of the run (Airflow keeps one run per logical date) and wait until the
        scheduler has run them all again: the run's state."""
        with self.meta.connect() as c:
            before = c.execute(sa.text("select now()")).scalar_one()
        self.airflow("tasks", "clear", dag_id, "--start-date", logical, "--end-date", logical, "--yes")

        def again() -> bool:
            tis = self.task_instances(dag_id, run_id)
            done = all(t["end_date"] is not None and t["end_date"] > before for t in tis if t["state"] != "skipped")
            return bool(tis) and done and self.state(dag_id, run_id) in ("success", "failed")

        wait_for("the cleared DAG run to finish again", again, timeout, self.logs)
        return self.state(dag_id, run_id)

    def state(self, dag_id: str, run_id: str) -> str:
        with self.meta.connect() as c:
            q = sa.text("select state from dag_run where dag_id = :d and run_id = :r")
            row = c.execute(q, {"d": dag_id, "r": run_id}).first()
        return str(row[0]) if row else "missing"

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's task instances: task_id, map_index, state, hostname, start_date, end_date."""
        with self.meta.connect() as c:
            q = sa.text(
                "select task_id, map_index, state, hostname, start_date, end_date from task_instance"
                " where dag_id = :d and run_id = :r order by start_date"
            )
            return [dict(r) for r in c.execute(q, {"d": dag_id, "r": run_id}).mappings()]

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
        self.meta.dispose()
