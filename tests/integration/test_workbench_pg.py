"""The workbench on a real PostgreSQL: its own role (reads all, INSERT on transfer_decisions and
purchase_decisions only, its accounts and sessions), the planner role still read-only, decisions
through the app."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest
import sqlalchemy as sa

from pipelines import reporting
from pipelines.config import load_config
from pipelines.workbench import purchases, service, users
from pipelines.workbench.service import Conflict, RecKey
from tests.factories import WB_DATE, WB_RUN_ID, add_workbench_users, publish_workbench_night

pytestmark = pytest.mark.integration


def _as_role(url: str, role: str) -> str:
    return sa.make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


@pytest.fixture
def roles(pg_url):
    suffix = uuid.uuid4().hex[:6]
    names = {k: f"tiaobo_{k}_{suffix}" for k in ("planner", "loader", "workbench")}
    admin = psycopg.connect(sa.make_url(pg_url).set(drivername="postgresql").render_as_string(False), autocommit=True)
    publish_workbench_night(pg_url)
    add_workbench_users(pg_url)
    done = reporting.create_roles(pg_url, names["planner"], names["loader"], workbench_role=names["workbench"])
    assert done["created"] == [names["planner"], names["loader"], names["workbench"]]
    assert {"workbench_users", "lane_master", "transfer_decisions"} <= set(done["objects"])
    urls = {k: _as_role(pg_url, v) for k, v in names.items()}
    try:
        yield urls
    finally:
        for u in (*urls.values(), pg_url):
            reporting.dispose_engine(u)
        for role in names.values():
            if admin.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
                admin.execute(f'reassign owned by "{role}" to current_user')
                admin.execute(f'drop owned by "{role}"')
                admin.execute(f'drop role "{role}"')
        admin.close()


def _refused(conn: sa.Connection, stmt: str) -> None:
    with pytest.raises(sa.exc.DBAPIError) as err:
        with conn.begin_nested():
            conn.exec_driver_sql(stmt)
    assert isinstance(err.value.orig, psycopg.errors.InsufficientPrivilege | psycopg.errors.ReadOnlySqlTransaction), err


def test_workbench_role_appends_decisions_and_nothing_else(roles):
    eng = sa.create_engine(roles["workbench"])
    try:
        with eng.begin() as conn:
            east = users.get_user(conn, "east")
            assert east is not None
            d = service.decide(conn, east, RecKey(WB_DATE, "A", "DC1", "S1"), "approve", expected_version=0)
            assert d.version == 1
            res = service.bulk_approve(
                conn, east, [(RecKey(WB_DATE, "A", "DC1", "S2"), 0), (RecKey(WB_DATE, "A", "DC1", "S1"), 0)]
            )
            assert [x.key.to_location for x in res.decided] == ["S2"]
            assert [type(x) for x in res.refused] == [Conflict]  # version 1 exists: ON CONFLICT DO NOTHING
            p = purchases.decide(conn, east, purchases.PurchaseKey(WB_DATE, "A", "S1"), "approve", quantity=36)
            assert (p.version, p.new_quantity, p.supplier) == (1, 36.0, "华东日化")
            users.add_user(conn, "later", "planner", ["华东"], "en", "another-password")
            users.set_language(conn, "later", "zh")
        with eng.connect() as conn:
            assert conn.exec_driver_sql("select count(*) from transfer_decisions").scalar_one() == 2
            assert conn.exec_driver_sql("select count(*) from purchase_decisions").scalar_one() == 1
            for stmt in (
                "update purchase_decisions set new_quantity = 0",
                "delete from purchase_decisions",
                "delete from purchase_proposals",
                "update transfer_decisions set new_quantity = 0",
                "delete from transfer_decisions",
                "insert into transfers (run_date, run_id) values ('2026-01-01', 'x')",
                "delete from transfers",
                "truncate kpis",
                "create table wb_table (x int)",
            ):
                _refused(conn, stmt)
    finally:
        eng.dispose()
    planner = sa.create_engine(roles["planner"])
    try:
        with planner.connect() as conn:
            assert conn.exec_driver_sql("select count(*) from transfers").scalar_one() == 4
            for stmt in (
                "select * from workbench_users",
                "select * from workbench_sessions",
                "insert into transfer_decisions (decision_id) values ('x')",
                "insert into purchase_decisions (decision_id) values ('x')",
            ):
                _refused(conn, stmt)
    finally:
        planner.dispose()


def test_the_app_runs_as_the_workbench_role(roles):
    from fastapi.testclient import TestClient

    from pipelines.workbench.app import create_app

    cfg = load_config(overrides={"reporting": {"url": roles["workbench"]}})
    client = TestClient(create_app(cfg, secret="p" * 40))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    r = client.post(
        "/login", data={"username": "boss", "password": "correct-horse-9", "csrf_token": token.group(1), "next": "/"}
    )
    assert r.status_code == 200 and 'id="me">boss<' in r.text
    page = client.get("/transfers?region=华东&status=undecided")
    assert page.status_code == 200 and page.text.count('name="line"') == 3
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    form = {"csrf_token": csrf.group(1), "date": WB_DATE.isoformat(), "sku": "B", "from": "DC1", "to": "S1"}
    r = client.post("/transfers/decide", data={**form, "run_id": WB_RUN_ID, "version": "0", "action": "approve"})
    assert r.status_code == 200 and "(version 1)" in r.text
    r = client.post("/transfers/decide", data={**form, "version": "0", "action": "reject", "reason_code": "too_costly"})
    assert r.status_code == 409 and "already decided by boss" in r.text
