"""docker-compose.yml cannot run here (no Docker engine): check that it parses and matches the code
(its Airflow settings against the config: tests/integration/test_compose_airflow.py)."""

from __future__ import annotations

from pathlib import Path

from tests.factories import docker_compose

REPO = Path(__file__).resolve().parents[2]


def test_services_present():
    services = docker_compose()["services"]
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
    image = docker_compose()["x-airflow"]["image"]
    version = image.split(":")[1].split("-")[0]
    assert f"apache-airflow=={version}\n" in lock
