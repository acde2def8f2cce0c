"""docker-compose.yml cannot run here (no Docker engine): check that it parses and matches the code."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipelines.airflow_support import CONFIG_ENV
from pipelines.config import load_config

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


def test_services_present():
    services = compose()["services"]
    assert {
        "postgres",
        "mailcatcher",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
    } <= set(services)


def test_airflow_version_matches_the_lock():
    lock = (REPO / "requirements.lock").read_text()
    image = compose()["x-airflow"]["image"]
    version = image.split(":")[1].split("-")[0]
    assert f"apache-airflow=={version}\n" in lock


def test_settings_match_the_tiaobo_config():
    env = compose()["x-airflow"]["environment"]
    cfg_path = env[CONFIG_ENV]
    assert cfg_path.startswith("/opt/tiaobo/")
    local = REPO / cfg_path.removeprefix("/opt/tiaobo/")
    cfg = load_config(local)  # the mounted config is valid
    assert cfg.reporting.url_env in env  # the secret URL it names is provided by compose
    assert cfg.email.smtp_host in compose()["services"]
    mail_ports = {p.split(":")[1] for p in compose()["services"]["mailcatcher"]["ports"]}
    assert str(cfg.email.smtp_port) in mail_ports
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/tiaobo/dags"
    init = (REPO / "deploy" / "postgres-init.sh").read_text()
    assert "tiaobo_loader" in init and "tiaobo_loader" in env[cfg.reporting.url_env]
