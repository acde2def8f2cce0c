"""Run log: the ``skipped`` status — an Airflow run for a business date the source cannot cover yet
(no sales for the day before it) is skipped without a failure email, at most
``source.max_skipped_days`` dates in a row (pipelines.airflow_support.skip_uncovered_date).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "status in ('running', 'published', 'failed', 'stopped', 'email_failed', 'abandoned')"
AFTER = "status in ('running', 'published', 'failed', 'stopped', 'email_failed', 'abandoned', 'skipped')"


def _check(sql: str) -> None:
    # SQLite cannot alter a constraint: batch mode copies the table
    with op.batch_alter_table("run_log", recreate="auto") as batch:
        batch.drop_constraint("ck_run_log_status", type_="check")
        batch.create_check_constraint("ck_run_log_status", sql)


def upgrade() -> None:
    _check(AFTER)


def downgrade() -> None:
    op.execute("update run_log set status = 'stopped' where status = 'skipped'")
    _check(BEFORE)
