"""Alerts against the night's transfer plan: every alert carries the units the plan moves for it,
the other ends of those transfers and, when the plan does not cover it, why (pipelines.alerts).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


#: views over alerts (re-created from sql/views by pipelines.reporting.migrate); SQLite cannot
#: rebuild the table under them
ALERT_VIEWS = ("v_alerts_today", "v_alert_summary_today")


def _drop_views() -> None:
    for name in ALERT_VIEWS:
        op.execute(f"drop view if exists {name}")


def upgrade() -> None:
    _drop_views()
    # rows published before this revision were not checked against a plan: 0 units, no reason
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("plan_units", sa.Double(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("plan_locations", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("plan_reason", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    _drop_views()
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("plan_reason")
        batch.drop_column("plan_locations")
        batch.drop_column("plan_units")
