"""docker-compose.yml's Airflow settings match the Tiaobo config: the config file it mounts, the
secret URL, the SMTP service, the DAG folder (it imports pipelines.airflow_support, hence Airflow;
split from tests/unit/test_compose.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.airflow_support import CONFIG_ENV
from pipelines.config import load_config
from tests.factories import docker_compose

# imports Airflow (pipelines.airflow_support)
pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_settings_match_the_tiaobo_config():
    env = docker_compose()["x-airflow-common"]["environment"]
    cfg_path = env[CONFIG_ENV]
    assert cfg_path.startswith("/opt/tiaobo/")
    local = REPO / cfg_path.removeprefix("/opt/tiaobo/")
    cfg = load_config(local)  # the mounted config is valid
    assert cfg.reporting.url_env in env  # the secret URL it names is provided by compose
    assert cfg.email.smtp_host in docker_compose()["services"]
    mail_ports = {p.split(":")[1] for p in docker_compose()["services"]["mailcatcher"]["ports"]}
    assert str(cfg.email.smtp_port) in mail_ports
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/tiaobo/dags"
    init = (REPO / "deploy" / "postgres-init.sh").read_text()
    assert "tiaobo_loader" in init and "tiaobo_loader" in env[cfg.reporting.url_env]
