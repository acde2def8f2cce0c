"""SQLAlchemy Core tables of the workbench's own data (created by migration ``0004``)."""

from __future__ import annotations

import sqlalchemy as sa

METADATA = sa.MetaData()

USERS = sa.Table(
    "workbench_users",
    METADATA,
    sa.Column("name", sa.Text(), primary_key=True),
    sa.Column("role", sa.Text(), nullable=False),
    sa.Column("regions_json", sa.Text(), nullable=False),
    sa.Column("lang", sa.Text(), nullable=False),
    sa.Column("password_hash", sa.Text()),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

SESSIONS = sa.Table(
    "workbench_sessions",
    METADATA,
    sa.Column("session_id", sa.Text(), primary_key=True),
    sa.Column("user_name", sa.Text(), nullable=False),
    sa.Column("csrf_token", sa.Text(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("client_ip", sa.Text(), nullable=False),
)

LOGIN_ATTEMPTS = sa.Table(
    "workbench_login_attempts",
    METADATA,
    sa.Column("attempt_id", sa.Text(), primary_key=True),
    sa.Column("user_name", sa.Text(), nullable=False),
    sa.Column("client_ip", sa.Text(), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("success", sa.Boolean(), nullable=False),
)

#: the workbench's own tables (PostgreSQL role tiaobo_workbench reads and writes them)
OWN_TABLES = (USERS.name, SESSIONS.name, LOGIN_ATTEMPTS.name)
