"""The order book: transfer orders, their lines, export attempts and events (pipelines.orderbook),
and the review output tables transfer_review and lane_review.

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
    _review_tables()


def _run_cols() -> list[sa.Column]:
    return [sa.Column("run_date", sa.Date(), nullable=False), sa.Column("run_id", sa.Text(), nullable=False)]


def _review_tables() -> None:
    op.create_table(
        "transfer_review",
        *_run_cols(),
        sa.Column("order_no", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("from_location", sa.Text(), nullable=False),
        sa.Column("to_location", sa.Text(), nullable=False),
        sa.Column("rec_run_date", sa.Date(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("approved_qty", sa.Double(), nullable=False),
        sa.Column("shipped_qty", sa.Double(), nullable=True),
        sa.Column("received_qty", sa.Double(), nullable=True),
        sa.Column("shipped_date", sa.Date(), nullable=True),
        sa.Column("received_date", sa.Date(), nullable=True),
        sa.Column("planned_transit_days", sa.Double(), nullable=False),
        sa.Column("lead_time_days", sa.Double(), nullable=True),
        sa.Column("transit_days", sa.Double(), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("window_closed", sa.Boolean(), nullable=False),
        sa.Column("receiver_stocked_out", sa.Boolean(), nullable=True),
        sa.Column("donor_stocked_out", sa.Boolean(), nullable=True),
        sa.Column("expected_benefit", sa.Double(), nullable=True),
        sa.Column("transfer_cost", sa.Double(), nullable=True),
        sa.Column("units_sold_thanks", sa.Double(), nullable=True),
        sa.Column("realised_benefit", sa.Double(), nullable=True),
        sa.Column("explanation_en", sa.Text(), nullable=False),
        sa.Column("explanation_zh", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_date", "order_no", "sku", name="pk_transfer_review"),
    )
    op.create_index("ix_transfer_review_run_date", "transfer_review", ["run_date"])
    op.create_table(
        "lane_review",
        *_run_cols(),
        sa.Column("from_location", sa.Text(), nullable=False),
        sa.Column("to_location", sa.Text(), nullable=False),
        sa.Column("configured_transit_days", sa.Double(), nullable=False),
        sa.Column("observed_transit_days", sa.Double(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("explanation_en", sa.Text(), nullable=False),
        sa.Column("explanation_zh", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_date", "from_location", "to_location", name="pk_lane_review"),
    )
    op.create_index("ix_lane_review_run_date", "lane_review", ["run_date"])


def downgrade() -> None:
    for name in ("lane_review", "transfer_review"):
        op.drop_index(f"ix_{name}_run_date", table_name=name)
        op.drop_table(name)
    op.drop_index("ix_order_events_order_no", table_name="order_events")
    op.drop_table("order_events")
    op.drop_table("order_exports")
    op.drop_table("transfer_order_lines")
    op.drop_index("ix_transfer_orders_state", table_name="transfer_orders")
    op.drop_table("transfer_orders")
