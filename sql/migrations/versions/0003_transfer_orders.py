"""The order book: transfer orders, their lines, export attempts and events (pipelines.orderbook).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("approved", "exported", "shipped", "received", "partly_received", "cancelled", "expired")


def upgrade() -> None:
    op.create_table(
        "transfer_orders",
        sa.Column("order_no", sa.Text(), nullable=False),
        sa.Column("rec_run_date", sa.Date(), nullable=False),
        sa.Column("from_location", sa.Text(), nullable=False),
        sa.Column("to_location", sa.Text(), nullable=False),
        sa.Column("departure_date", sa.Date(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("exported_revision", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_no", name="pk_transfer_orders"),
        sa.CheckConstraint("state in (" + ", ".join(f"'{s}'" for s in STATES) + ")", name="ck_transfer_orders_state"),
    )
    op.create_index("ix_transfer_orders_state", "transfer_orders", ["state"])
    op.create_table(
        "transfer_order_lines",
        sa.Column("order_no", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("approved_qty", sa.Double(), nullable=False),
        sa.Column("rec_run_id", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=False),
        sa.Column("shipped_qty", sa.Double(), nullable=True),
        sa.Column("shipped_date", sa.Date(), nullable=True),
        sa.Column("received_qty", sa.Double(), nullable=True),
        sa.Column("received_date", sa.Date(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("order_no", "sku", name="pk_transfer_order_lines"),
        sa.ForeignKeyConstraint(["order_no"], ["transfer_orders.order_no"], name="fk_transfer_order_lines_order"),
    )
    op.create_table(
        "order_exports",
        sa.Column("order_no", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_no", "target", "revision", name="pk_order_exports"),
    )
    op.create_table(
        "order_events",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("order_no", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=True),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_order_events"),
    )
    op.create_index("ix_order_events_order_no", "order_events", ["order_no"])


def downgrade() -> None:
    op.drop_index("ix_order_events_order_no", table_name="order_events")
    op.drop_table("order_events")
    op.drop_table("order_exports")
    op.drop_table("transfer_order_lines")
    op.drop_index("ix_transfer_orders_state", table_name="transfer_orders")
    op.drop_table("transfer_orders")
