"""Master data published per run (items, locations) and the planners' transfer decisions.

``item_master`` and ``location_master`` are output tables like the others (one row per SKU /
location and run date, replaced by the publish of that date): the workbench filters and labels
recommendations by name, category and region with them.

``transfer_decisions`` is append-only: one row per decision (approve, reject, changed quantity)
by a planner, a manager or the auto tier (``decided_by = 'system'``). The unique key
(rec_run_date, sku, from_location, to_location, version) is the version check: two planners
deciding the same recommendation both try to write the next version and the second insert fails.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _run_cols() -> list[sa.Column]:
    return [sa.Column("run_date", sa.Date(), nullable=False), sa.Column("run_id", sa.Text(), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "item_master",
        *_run_cols(),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("unit_cost", sa.Double(), nullable=False),
        sa.Column("unit_price", sa.Double(), nullable=False),
        sa.Column("pack_size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_date", "sku", name="pk_item_master"),
    )
    op.create_index("ix_item_master_run_date", "item_master", ["run_date"])
    op.create_table(
        "location_master",
        *_run_cols(),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("can_ship", sa.Boolean(), nullable=False),
        sa.Column("can_receive", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("run_date", "location", name="pk_location_master"),
    )
    op.create_index("ix_location_master_run_date", "location_master", ["run_date"])
    op.create_table(
        "transfer_decisions",
        sa.Column("decision_id", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=False),
        sa.Column("actor_role", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("rec_run_date", sa.Date(), nullable=False),
        sa.Column("rec_run_id", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("from_location", sa.Text(), nullable=False),
        sa.Column("to_location", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("old_quantity", sa.Double(), nullable=False),
        sa.Column("new_quantity", sa.Double(), nullable=False),
        sa.Column("reason_code", sa.Text(), nullable=True),
        sa.Column("reason_text", sa.Text(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name="pk_transfer_decisions"),
        sa.UniqueConstraint(
            "rec_run_date", "sku", "from_location", "to_location", "version", name="uq_transfer_decisions_version"
        ),
        sa.CheckConstraint("decision in ('approve', 'reject')", name="ck_transfer_decisions_decision"),
        sa.CheckConstraint("new_quantity >= 0", name="ck_transfer_decisions_quantity"),
    )
    op.create_index("ix_transfer_decisions_rec_run_date", "transfer_decisions", ["rec_run_date"])


def downgrade() -> None:
    op.drop_index("ix_transfer_decisions_rec_run_date", table_name="transfer_decisions")
    op.drop_table("transfer_decisions")
    for name in ("location_master", "item_master"):
        op.drop_index(f"ix_{name}_run_date", table_name=name)
        op.drop_table(name)
