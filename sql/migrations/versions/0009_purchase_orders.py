"""The purchase order book: approved purchase proposals as purchase orders (one per night, supplier
and delivery location), their lines, exported to the ERP like transfer orders
(pipelines.purchase_orders; attempts and events in order_exports / order_events); and the
proposals' approval tier (``purchase_proposals.approval_tier``: auto ones approved with the publish).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("approved", "exported", "confirmed", "cancelled")


def upgrade() -> None:
    # the proposals' approval tier (rows published before it: a planner decides); the view over
    # purchase_proposals goes first (SQLite rebuilds the table), pipelines.reporting.migrate re-creates it
    op.execute("drop view if exists v_purchase_proposals_today")
    with op.batch_alter_table("purchase_proposals") as batch:
        batch.add_column(sa.Column("approval_tier", sa.Text(), nullable=False, server_default="planner"))
    op.create_table(
        "purchase_order_book",
        sa.Column("order_no", sa.Text(), nullable=False),
        sa.Column("rec_run_date", sa.Date(), nullable=False),
        sa.Column("supplier", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("expected_receipt", sa.Date(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("exported_revision", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_no", name="pk_purchase_order_book"),
        sa.CheckConstraint(
            "state in (" + ", ".join(f"'{s}'" for s in STATES) + ")", name="ck_purchase_order_book_state"
        ),
    )
    op.create_index("ix_purchase_order_book_rec_run_date", "purchase_order_book", ["rec_run_date"])
    op.create_table(
        "purchase_order_book_lines",
        sa.Column("order_no", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("expected_receipt", sa.Date(), nullable=False),
        sa.Column("rec_run_id", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("order_no", "sku", name="pk_purchase_order_book_lines"),
        sa.ForeignKeyConstraint(
            ["order_no"], ["purchase_order_book.order_no"], name="fk_purchase_order_book_lines_order"
        ),
    )


def downgrade() -> None:
    op.execute("drop view if exists v_purchase_proposals_today")
    with op.batch_alter_table("purchase_proposals") as batch:
        batch.drop_column("approval_tier")
    op.drop_table("purchase_order_book_lines")
    op.drop_index("ix_purchase_order_book_rec_run_date", table_name="purchase_order_book")
    op.drop_table("purchase_order_book")
