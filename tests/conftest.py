"""Shared fixtures: fresh databases on the real local servers, and a temporary Tiaobo config.

Integration tests ask for ``pg_url`` or ``mysql_url``: each gives a brand-new database (unique
name) on the local server and drops it afterwards. When a server is unreachable the test is
skipped with the reason, except under ``CI=true`` where it fails: CI must exercise the servers.
Server addresses can be overridden with ``TIAOBO_TEST_PG`` / ``TIAOBO_TEST_MYSQL`` (server-level
URLs, without a database).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]

# Airflow reads its configuration when first imported: point it at a throwaway home before that.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="tiaobo-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ.pop("TIAOBO_CONFIG", None)
os.environ["TIAOBO_RETRY_DELAY_SECONDS"] = "0.5"  # dag.test() waits out retry delays in real time

PG_SERVER = os.environ.get("TIAOBO_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
MYSQL_SERVER = os.environ.get("TIAOBO_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unreachable(what: str, exc: Exception) -> None:
    msg = f"{what} is unreachable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    if IN_CI:
        pytest.fail(f"{msg}; under CI=true the integration tests must run (.ci/run starts the servers)")
    pytest.skip(msg)


def _fresh_database(server: str, admin_db: str, what: str, create_sql: str, drop_sql: str) -> Iterator[str]:
    name = f"tiaobo_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(f"{server}/{admin_db}", isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(create_sql.format(name=name)))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unreachable(what, exc)
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(drop_sql.format(name=name)))
        admin.dispose()


def fresh_pg_url() -> Iterator[str]:
    """Yield the URL of a fresh, empty PostgreSQL database and drop it afterwards."""
    for name in _fresh_database(
        PG_SERVER,
        "postgres",
        f"PostgreSQL at {PG_SERVER}",
        "create database {name} encoding 'UTF8' template template0",
        "drop database if exists {name} with (force)",
    ):
        yield f"{PG_SERVER}/{name}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database (dropped after the test)."""
    yield from fresh_pg_url()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """URL of a fresh, empty MariaDB/MySQL database (utf8mb4; dropped after the test)."""
    for name in _fresh_database(
        MYSQL_SERVER,
        "",
        f"MariaDB at {MYSQL_SERVER}",
        "create database {name} character set utf8mb4 collate utf8mb4_unicode_ci",
        "drop database if exists {name}",
    ):
        yield f"{MYSQL_SERVER}/{name}?charset=utf8mb4"


@pytest.fixture
def tmp_config(tmp_path: Path):
    """A Config whose staging, outputs and embedded databases live under tmp_path."""
    from pipelines.config import load_config

    return load_config(
        overrides={"staging_dir": str(tmp_path / "var" / "staging"), "output_dir": str(tmp_path / "var" / "output")}
    )


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An initialised Airflow metadata database (SQLite) in the session's throwaway AIRFLOW_HOME."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=dict(os.environ),
        cwd=REPO,
    )
    return _AIRFLOW_HOME


@pytest.fixture(scope="module")
def workbench_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite reporting database with the workbench night published and its users,
    built once per test module; :func:`workbench_url` hands each test a copy."""
    from pipelines import reporting
    from tests.factories import add_workbench_users, publish_workbench_night

    path = tmp_path_factory.mktemp("wb") / "template.sqlite"
    u = f"sqlite:///{path}"
    publish_workbench_night(u)
    add_workbench_users(u)
    reporting.dispose_engine(u)  # closes the WAL: the file alone holds everything
    return path


@pytest.fixture
def workbench_url(tmp_path: Path, workbench_template: Path) -> Iterator[str]:
    """A copy of :func:`workbench_template` for one test."""
    import shutil

    from pipelines import reporting

    target = tmp_path / "reporting.sqlite"
    shutil.copyfile(workbench_template, target)
    u = f"sqlite:///{target}"
    yield u
    reporting.dispose_engine(u)
