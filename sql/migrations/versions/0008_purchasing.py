"""Purchasing: the inventory position counts open purchase orders (``inventory_policy.on_order``,
due within the lead time + review period and counted in ``available``; ``on_order_later``, due
after it), the night's purchase proposals (``purchase_proposals``, pipelines.purchasing) and the
planners' decisions on them (``purchase_decisions``, append-only like ``transfer_decisions``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: views over inventory_policy (re-created from sql/views by pipelines.reporting.migrate); SQLite
#: cannot rebuild the table under them, PostgreSQL refuses to alter a table a ``select *`` view reads
POLICY_VIEWS = ("v_sku_health",)


def _drop_views() -> None:
    for name in (*POLICY_VIEWS, "v_purchase_proposals_today"):
        op.execute(f"drop view if exists {name}")


def upgrade() -> None:
    _drop_views()
    # rows published before this revision knew no purchase orders: nothing on order
    with op.batch_alter_table("inventory_policy") as batch:
        batch.add_column(sa.Column("on_order", sa.Double(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("on_order_later", sa.Double(), nullable=False, server_default="0"))
    op.create_table(
        "purchase_proposals",
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("supplier", sa.Text(), nullable=True),
        sa.Column("order_by", sa.Date(), nullable=False),
        sa.Column("expected_receipt", sa.Date(), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("unit_cost", sa.Double(), nullable=False),
        sa.Column("fixed_order_cost", sa.Double(), nullable=False),
        sa.Column("cost", sa.Double(), nullable=False),
        sa.Column("inventory_position", sa.Double(), nullable=False),
        sa.Column("on_order", sa.Double(), nullable=False),
        sa.Column("planned_transfers", sa.Double(), nullable=False),
        sa.Column("reorder_point", sa.Double(), nullable=False),
        sa.Column("order_up_to", sa.Double(), nullable=False),
        sa.Column("moq", sa.Double(), nullable=False),
        sa.Column("order_multiple", sa.Double(), nullable=False),
        sa.Column("lead_time_days", sa.Double(), nullable=False),
        sa.Column("runs_out_before_receipt", sa.Boolean(), nullable=False),
        sa.Column("explanation_en", sa.Text(), nullable=False),
        sa.Column("explanation_zh", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_date", "sku", "location", name="pk_purchase_proposals"),
    )
    op.create_index("ix_purchase_proposals_run_date", "purchase_proposals", ["run_date"])
    op.create_table(
        "purchase_decisions",
        sa.Column("decision_id", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=False),
        sa.Column("actor_role", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("rec_run_date", sa.Date(), nullable=False),
        sa.Column("rec_run_id", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("old_quantity", sa.Double(), nullable=False),
        sa.Column("new_quantity", sa.Double(), nullable=False),
        sa.Column("supplier", sa.Text(), nullable=True),
        sa.Column("reason_code", sa.Text(), nullable=True),
        sa.Column("reason_text", sa.Text(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name="pk_purchase_decisions"),
        sa.UniqueConstraint("rec_run_date", "sku", "location", "version", name="uq_purchase_decisions_version"),
        sa.CheckConstraint("decision in ('approve', 'reject')", name="ck_purchase_decisions_decision"),
        sa.CheckConstraint("new_quantity >= 0", name="ck_purchase_decisions_quantity"),
    )
    op.create_index("ix_purchase_decisions_rec_run_date", "purchase_decisions", ["rec_run_date"])


def downgrade() -> None:
    _drop_views()
    op.drop_index("ix_purchase_decisions_rec_run_date", table_name="purchase_decisions")
    op.drop_table("purchase_decisions")
    op.drop_index("ix_purchase_proposals_run_date", table_name="purchase_proposals")
    op.drop_table("purchase_proposals")
    with op.batch_alter_table("inventory_policy") as batch:
        batch.drop_column("on_order_later")
        batch.drop_column("on_order")
