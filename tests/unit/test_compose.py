"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine): check what can be
checked without one — they parse, the services are those of Airflow's official 3.x compose, every
Airflow container runs the image built from the Dockerfile on the lock's Airflow, every long-running
service has a healthcheck and a restart policy and waits for airflow-init to complete, images are
pinned, and no secret has a default (the config it mounts: tests/integration/test_compose_airflow.py)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.factories import docker_compose

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


def _lock_airflow() -> str:
    return re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.lock").read_text(), re.M).group(1)


def test_services_are_those_of_the_official_compose():
    services = docker_compose()["services"]
    assert {"postgres", "mailcatcher", "airflow-init", *AIRFLOW} <= set(services)
    commands = {name: services[name]["command"] for name in AIRFLOW}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
    }


def test_every_airflow_container_runs_the_image_built_on_the_locked_airflow():
    dockerfile = (REPO / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)$", dockerfile, re.M).group(1)
    assert base == f"apache/airflow:{_lock_airflow()}-python3.11"
    assert "pip install --no-cache-dir -r requirements.lock" in dockerfile
    assert "pip install --no-cache-dir --no-deps -e ." in dockerfile
    services = docker_compose()["services"]
    for name in ("airflow-init", *AIRFLOW):
        assert services[name]["build"] == "." and services[name]["image"].endswith(f":{_lock_airflow()}-python3.11")
        assert "pip install" not in str(services[name].get("command", "")), name  # installed once, in the image


def test_long_running_services_have_healthchecks_restart_and_wait_for_init():
    services = docker_compose()["services"]
    for name in ("postgres", "mailcatcher", *AIRFLOW):
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["restart"] == "always", name
    for name in AIRFLOW:
        deps = services[name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert services[name]["user"] == "${AIRFLOW_UID:-50000}:0"
        assert "airflow-logs:/opt/airflow/logs" in services[name]["volumes"]
    assert "restart" not in services["airflow-init"]  # it runs once and exits


def test_shared_secrets_come_from_env_without_defaults_and_are_listed_in_env_example():
    text = (REPO / "docker-compose.yml").read_text()
    env = docker_compose()["x-airflow-common"]["environment"]
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", env[key]), key  # one value for every container, no default
    secrets = set(re.findall(r"\$\{([A-Z_]*(?:PASSWORD|SECRET|KEY)[A-Z_]*)", text))
    assert secrets and not re.search(r"\$\{[A-Z_]*(PASSWORD|SECRET|KEY)[A-Z_]*:-", text)  # no published default
    example = (REPO / ".env.example").read_text()
    for name in {*secrets, "AIRFLOW_UID"}:
        assert re.search(rf"^{name}=", example, re.M), f"{name} missing from .env.example"


def test_images_are_pinned():
    for name, svc in docker_compose()["services"].items():
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), name
        assert re.search(r":v?\d+\.\d+", image), f"{name}: {image} is not an exact version"


def _celery_compose() -> dict:
    import yaml

    return yaml.safe_load((REPO / "docker-compose.celery.yml").read_text(encoding="utf-8"))


def test_celery_override_switches_every_airflow_container_to_one_celery_env():
    base, celery = docker_compose()["services"], _celery_compose()["services"]
    assert base["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    envs = [celery[name]["environment"] for name in ("airflow-init", *AIRFLOW, "airflow-worker")]
    assert all(env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor" for env in envs)
    assert len({env["AIRFLOW__CELERY__BROKER_URL"] for env in envs}) == 1


def test_celery_worker_and_redis_are_pinned_healthchecked_and_wired():
    celery = _celery_compose()["services"]
    redis, worker = celery["redis"], celery["airflow-worker"]
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+\S*", redis["image"])
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    broker = worker["environment"]["AIRFLOW__CELERY__BROKER_URL"]
    assert re.fullmatch(r"redis://(:@)?redis:6379/\d+", broker), broker
    assert worker["command"] == "celery worker"
    assert worker["extends"] == {"file": "docker-compose.yml", "service": "airflow-scheduler"}
    assert 'inspect ping -d "celery@$${HOSTNAME}"' in worker["healthcheck"]["test"][1]
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert celery["flower"]["profiles"] == ["flower"]
