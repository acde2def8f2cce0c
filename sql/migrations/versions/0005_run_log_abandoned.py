"""Run log: the ``abandoned`` status — an attempt whose process died (``kill -9``, a lost machine)
before it could close its row is closed as ``abandoned`` by the next attempt of the same date,
which holds the date's run lock (pipelines/runlock.py) and so knows no other run of it is alive.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "status in ('running', 'published', 'failed', 'stopped', 'email_failed')"
AFTER = "status in ('running', 'published', 'failed', 'stopped', 'email_failed', 'abandoned')"


def _check(sql: str) -> None:
    # SQLite cannot alter a constraint: batch mode copies the table (recreate="always" there)
    with op.batch_alter_table("run_log", recreate="auto") as batch:
        batch.drop_constraint("ck_run_log_status", type_="check")
        batch.create_check_constraint("ck_run_log_status", sql)


def upgrade() -> None:
    _check(AFTER)


def downgrade() -> None:
    op.execute("update run_log set status = 'failed' where status = 'abandoned'")
    _check(BEFORE)
