"""The planner web workbench: accounts, server-side sessions, login attempts (throttling), the
published lane master, and indexes for the workbench's reads.

- ``workbench_users``: one row per account (role planner | manager | admin, regions as a JSON
  list, UI language, argon2 password hash, active flag). Disabling keeps the row: decisions name
  their user for ever.
- ``workbench_sessions``: one row per signed-in browser; the cookie carries the signed session id
  only. The per-session CSRF token lives here; logout and disabling a user revoke it.
- ``workbench_login_attempts``: every login attempt (user name as typed, client IP, success);
  failures within the window throttle that user from that IP.
- ``lane_master``: the lanes the run planned with (an output table, published per run date).
- Indexes: transfers by run date and lane (the lane's other lines), by receiver and donor;
  transfer_decisions by rec key (the latest version per recommendation) and by lane.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = ("planner", "manager", "admin")


def upgrade() -> None:
    op.create_table(
        "workbench_users",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("regions_json", sa.Text(), nullable=False),
        sa.Column("lang", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_workbench_users"),
        sa.CheckConstraint("role in (" + ", ".join(f"'{r}'" for r in ROLES) + ")", name="ck_workbench_users_role"),
        sa.CheckConstraint("lang in ('zh', 'en')", name="ck_workbench_users_lang"),
    )
    op.create_table(
        "workbench_sessions",
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("csrf_token", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("client_ip", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name="pk_workbench_sessions"),
        sa.ForeignKeyConstraint(["user_name"], ["workbench_users.name"], name="fk_workbench_sessions_user"),
    )
    op.create_index("ix_workbench_sessions_user_name", "workbench_sessions", ["user_name"])
    op.create_table(
        "workbench_login_attempts",
        sa.Column("attempt_id", sa.Text(), nullable=False),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("client_ip", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("attempt_id", name="pk_workbench_login_attempts"),
    )
    op.create_index(
        "ix_workbench_login_attempts_user_ip_at", "workbench_login_attempts", ["user_name", "client_ip", "at"]
    )
    op.create_table(
        "lane_master",
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("from_location", sa.Text(), nullable=False),
        sa.Column("to_location", sa.Text(), nullable=False),
        sa.Column("cost_per_unit", sa.Double(), nullable=False),
        sa.Column("fixed_cost_per_shipment", sa.Double(), nullable=False),
        sa.Column("transit_days", sa.BigInteger(), nullable=False),
        sa.Column("min_units", sa.BigInteger(), nullable=False),
        sa.Column("capacity", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("run_date", "from_location", "to_location", name="pk_lane_master"),
    )
    op.create_index("ix_lane_master_run_date", "lane_master", ["run_date"])
    op.create_index("ix_transfers_run_date_lane", "transfers", ["run_date", "from_location", "to_location"])
    op.create_index("ix_transfers_run_date_to", "transfers", ["run_date", "to_location"])
    op.create_index("ix_transfers_run_date_value", "transfers", ["run_date", "expected_benefit"])
    op.create_index(
        "ix_transfer_decisions_lane", "transfer_decisions", ["rec_run_date", "from_location", "to_location"]
    )
    op.create_index(
        "ix_transfer_decisions_rec_key",
        "transfer_decisions",
        ["rec_run_date", "sku", "from_location", "to_location", "version"],
    )


def downgrade() -> None:
    op.drop_index("ix_transfer_decisions_rec_key", table_name="transfer_decisions")
    op.drop_index("ix_transfer_decisions_lane", table_name="transfer_decisions")
    op.drop_index("ix_transfers_run_date_value", table_name="transfers")
    op.drop_index("ix_transfers_run_date_to", table_name="transfers")
    op.drop_index("ix_transfers_run_date_lane", table_name="transfers")
    op.drop_index("ix_lane_master_run_date", table_name="lane_master")
    op.drop_table("lane_master")
    op.drop_index("ix_workbench_login_attempts_user_ip_at", table_name="workbench_login_attempts")
    op.drop_table("workbench_login_attempts")
    op.drop_index("ix_workbench_sessions_user_name", table_name="workbench_sessions")
    op.drop_table("workbench_sessions")
    op.drop_table("workbench_users")
