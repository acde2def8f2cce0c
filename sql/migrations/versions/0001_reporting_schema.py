"""Reporting schema: the output tables of the data contract, run log, published runs, watermarks.

Written by hand as the schema stood when it was created (never generated from the contract at
runtime, so that this history stays stable). Types: contract ``str`` -> Text, ``int`` ->
BigInteger, ``float`` -> Double, ``bool`` -> Boolean, ``date`` -> Date; ``ts`` -> timestamp with
time zone. Primary key = the contract key; every output table has an index on ``run_date``.

The planner views (``sql/views/*.sql``) are not created here: they are derived objects, rebuilt
from their files by :func:`pipelines.reporting.migrate` at the end of every upgrade, in the same
transaction. ``downgrade`` drops them first because PostgreSQL refuses to drop a table a view reads.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VIEWS_DIR = Path(__file__).resolve().parents[2] / "views"


def _run_cols() -> list[sa.Column]:
    return [
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
    ]


def _output_table(name: str, key: list[str], *columns: sa.Column) -> None:
    op.create_table(name, *_run_cols(), *columns, sa.PrimaryKeyConstraint(*key, name=f"pk_{name}"))
    op.create_index(f"ix_{name}_run_date", name, ["run_date"])


def upgrade() -> None:
    _output_table(
        "forecasts",
        ["run_date", "sku", "location", "target_date"],
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("target_date", sa.Date(), nullable=False),
        sa.Column("horizon", sa.BigInteger(), nullable=False),
        sa.Column("mean", sa.Double(), nullable=False),
        sa.Column("p50", sa.Double(), nullable=False),
        sa.Column("p90", sa.Double(), nullable=False),
        sa.Column("p95", sa.Double(), nullable=False),
        sa.Column("p99", sa.Double(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
    )
    _output_table(
        "forecast_accuracy",
        ["run_date", "sku", "location", "model"],
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("window_days", sa.BigInteger(), nullable=False),
        sa.Column("actual", sa.Double(), nullable=False),
        sa.Column("forecast", sa.Double(), nullable=False),
        sa.Column("wape", sa.Double(), nullable=True),
        sa.Column("bias", sa.Double(), nullable=True),
        sa.Column("mase", sa.Double(), nullable=True),
    )
    _output_table(
        "lead_time_demand",
        ["run_date", "sku", "location"],
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("lead_time_days", sa.BigInteger(), nullable=False),
        sa.Column("lead_time_defaulted", sa.Boolean(), nullable=False),
        sa.Column("mean", sa.Double(), nullable=False),
        sa.Column("p50", sa.Double(), nullable=False),
        sa.Column("p90", sa.Double(), nullable=False),
        sa.Column("p95", sa.Double(), nullable=False),
        sa.Column("p99", sa.Double(), nullable=False),
        sa.Column("dispersion", sa.Double(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("explanation_en", sa.Text(), nullable=False),
        sa.Column("explanation_zh", sa.Text(), nullable=False),
    )
    _output_table(
        "inventory_policy",
        ["run_date", "sku", "location"],
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("abc_class", sa.Text(), nullable=False),
        sa.Column("abc_class_network", sa.Text(), nullable=False),
        sa.Column("abc_class_location", sa.Text(), nullable=False),
        sa.Column("xyz_class", sa.Text(), nullable=False),
        sa.Column("demand_pattern", sa.Text(), nullable=False),
        sa.Column("ss_method", sa.Text(), nullable=False),
        sa.Column("demand_mean", sa.Double(), nullable=False),
        sa.Column("demand_std", sa.Double(), nullable=False),
        sa.Column("lead_time_days", sa.Double(), nullable=False),
        sa.Column("review_period_days", sa.Double(), nullable=False),
        sa.Column("service_level", sa.Double(), nullable=False),
        sa.Column("safety_stock", sa.Double(), nullable=False),
        sa.Column("reorder_point", sa.Double(), nullable=False),
        sa.Column("order_up_to", sa.Double(), nullable=False),
        sa.Column("on_hand", sa.Double(), nullable=False),
        sa.Column("in_transit", sa.Double(), nullable=False),
        sa.Column("available", sa.Double(), nullable=False),
        sa.Column("days_of_cover", sa.Double(), nullable=True),
        sa.Column("health_band", sa.Text(), nullable=False),
        sa.Column("lead_time_defaulted", sa.Boolean(), nullable=False),
        sa.Column("explanation_en", sa.Text(), nullable=False),
        sa.Column("explanation_zh", sa.Text(), nullable=False),
    )
    _output_table(
        "alerts",
        ["run_date", "alert_type", "sku", "location", "lot"],
        sa.Column("alert_type", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("lot", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("units", sa.Double(), nullable=False),
        sa.Column("value_at_risk", sa.Double(), nullable=False),
        sa.Column("event_date", sa.Date(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("explanation_en", sa.Text(), nullable=False),
        sa.Column("explanation_zh", sa.Text(), nullable=False),
    )
    _output_table(
        "transfers",
        ["run_date", "sku", "from_location", "to_location"],
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("from_location", sa.Text(), nullable=False),
        sa.Column("to_location", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("packs", sa.BigInteger(), nullable=False),
        sa.Column("transfer_cost", sa.Double(), nullable=False),
        sa.Column("expected_benefit", sa.Double(), nullable=False),
        sa.Column("receiver_stockout_date", sa.Date(), nullable=True),
        sa.Column("receiver_units_short", sa.Double(), nullable=False),
        sa.Column("donor_days_of_cover", sa.Double(), nullable=True),
        sa.Column("donor_excess_units", sa.Double(), nullable=False),
        sa.Column("arrival_date", sa.Date(), nullable=False),
        sa.Column("approval_tier", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("explanation_en", sa.Text(), nullable=False),
        sa.Column("explanation_zh", sa.Text(), nullable=False),
    )
    _output_table(
        "kpis",
        ["run_date", "location", "category", "metric"],
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
    )
    _output_table(
        "dq_results",
        ["run_date", "table_name", "rule", "column_name"],
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("column_name", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("observed", sa.Text(), nullable=False),
        sa.Column("observed_value", sa.Double(), nullable=True),
        sa.Column("failing_rows", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "dq_history",
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("attempt", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("column_name", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("observed", sa.Text(), nullable=False),
        sa.Column("observed_value", sa.Double(), nullable=True),
        sa.Column("failing_rows", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_date", "attempt", "table_name", "rule", "column_name", name="pk_dq_history"),
    )
    _output_table(
        "quarantine",
        ["run_date", "table_name", "row_number", "rule", "column_name"],
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("row_number", sa.BigInteger(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("column_name", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("row_json", sa.Text(), nullable=False),
    )

    op.create_table(
        "run_log",
        sa.Column("attempt_id", sa.Text(), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counts_json", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("message", sa.Text(), nullable=False, server_default=""),
        sa.Column("method_notes", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("attempt_id", name="pk_run_log"),
        sa.CheckConstraint(
            "status in ('running', 'published', 'failed', 'stopped', 'email_failed')", name="ck_run_log_status"
        ),
    )
    op.create_index("ix_run_log_run_date", "run_log", ["run_date"])

    op.create_table(
        "published_runs",
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counts_json", sa.Text(), nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("run_date", name="pk_published_runs"),
    )

    op.create_table(
        "watermarks",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("watermark", sa.Text(), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("source", "table_name", name="pk_watermarks"),
    )


def downgrade() -> None:
    for view in sorted(_VIEWS_DIR.glob("*.sql")):
        op.execute(f"drop view if exists {view.stem}")
    op.drop_table("watermarks")
    op.drop_table("dq_history")
    op.drop_table("published_runs")
    op.drop_index("ix_run_log_run_date", table_name="run_log")
    op.drop_table("run_log")
    for name in (
        "quarantine",
        "dq_results",
        "kpis",
        "transfers",
        "alerts",
        "inventory_policy",
        "lead_time_demand",
        "forecast_accuracy",
        "forecasts",
    ):
        op.drop_index(f"ix_{name}_run_date", table_name=name)
        op.drop_table(name)
