# The image every Airflow container of docker-compose.yml runs: Airflow's own image at the version
# requirements.lock pins, with the lock and Tiaobo installed, so the scheduler, the DAG processor,
# the triggerer and the API server all have the same libraries (Great Expectations, pandas 3, ...).
# tests/unit/test_compose.py checks that the tag matches the lock and that the lock is installed.
FROM apache/airflow:3.3.2-python3.11

USER airflow
WORKDIR /opt/tiaobo
COPY --chown=airflow:0 requirements.lock pyproject.toml README.md ./
# the exact pins first (one layer that changes only with the lock), then the project without deps
RUN pip install --no-cache-dir -r requirements.lock
COPY --chown=airflow:0 pipelines ./pipelines
COPY --chown=airflow:0 models ./models
COPY --chown=airflow:0 dags ./dags
COPY --chown=airflow:0 sql ./sql
COPY --chown=airflow:0 deploy ./deploy
RUN pip install --no-cache-dir --no-deps -e .
ENV TIAOBO_CONFIG=/opt/tiaobo/deploy/tiaobo.compose.yaml
