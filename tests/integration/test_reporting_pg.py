"""Reporting database on a real PostgreSQL: migrations, COPY publish, idempotency, atomicity, killed backend.

Each module run creates its own database ``tiaobo_t_<uuid8>`` and drops it afterwards. Skips with a
visible reason when the server is unreachable, except with CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from datetime import date, timedelta

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
from pandas.testing import assert_frame_equal

from pipelines import contract, reporting
from pipelines.urls import redact_url
from tests.factories import check_summary_views, expected, make_frames, published_tables

pytestmark = pytest.mark.integration

PG_SERVER = os.environ.get("TIAOBO_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")  # as tests/conftest.py
ADMIN_URL = f"{PG_SERVER}/postgres"
D1 = date(2025, 3, 10)
D2 = date(2025, 3, 11)


@pytest.fixture(scope="module")
def pg_module_url():
    """One fresh database for this module (the migrations run once), dropped at the end."""
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        reason = f"PostgreSQL is unreachable at {redact_url(ADMIN_URL)}: {type(exc.orig).__name__}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"tiaobo_t_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"create database {name} encoding 'UTF8' template template0"))
    url = sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        reporting.migrate(url)
        yield url
    finally:
        reporting.dispose_engine(url)
        with admin.connect() as conn:
            conn.execute(sa.text(f"drop database if exists {name} with (force)"))
        admin.dispose()


@pytest.fixture
def url(pg_module_url):
    """The module database, emptied before each test."""
    with reporting.engine_for(pg_module_url).begin() as conn:
        tables = [*contract.OUTPUT_TABLES, "published_runs", "run_log", "watermarks"]
        conn.execute(sa.text("truncate " + ", ".join(tables)))
    return pg_module_url


def test_migrated_schema_matches_the_contract_and_migrate_again_is_a_noop(url):
    types = {"str": sa.Text, "int": sa.BigInteger, "float": sa.Double, "bool": sa.Boolean, "date": sa.Date}
    reporting.publish(url, D1, "r1", make_frames(D1, "r1"))
    reporting.migrate(url)
    assert reporting.schema_revision(url) == "0009"
    insp = sa.inspect(reporting.engine_for(url))
    for name, t in contract.OUTPUT_TABLES.items():
        cols = insp.get_columns(name)
        assert [c["name"] for c in cols] == t.names
        for col, c in zip(cols, t.columns, strict=True):
            assert isinstance(col["type"], types[c.type]), (name, c.name, col["type"])
            assert col["nullable"] == c.nullable
        assert insp.get_pk_constraint(name)["constrained_columns"] == list(t.key)
        assert any(ix["column_names"] == ["run_date"] for ix in insp.get_indexes(name))
    assert sorted(insp.get_view_names()) == reporting.view_names()
    assert len(reporting.read_table(url, "forecasts", D1)) == 3


def test_publish_round_trip_idempotency_and_other_dates(url):
    f1 = make_frames(D1, "r1", n=4)
    assert reporting.publish(url, D1, "r1", f1) == {name: 4 for name in contract.OUTPUT_TABLES}
    for name, df in f1.items():
        assert_frame_equal(reporting.read_table(url, name, D1), expected(df, name))
    first = published_tables(url)
    reporting.publish(url, D1, "r1", f1)
    for name, df in published_tables(url).items():
        assert_frame_equal(first[name], df)
    reporting.publish(url, D2, "r2", make_frames(D2, "r2", n=2, shift=2.0))
    for name, df in f1.items():
        assert_frame_equal(reporting.read_table(url, name, D1), expected(df, name))
        assert len(reporting.read_table(url, name)) == 6
    assert reporting.published_run_dates(url) == [D1, D2]


def test_twenty_thousand_forecast_rows_go_through_copy(url, monkeypatch):
    n = 20_000
    fc = pd.DataFrame(
        {
            "run_date": D1,
            "run_id": "r1",
            "sku": [f"SKU{i // 28:04d}" for i in range(n)],
            "location": "DC1",
            "target_date": [D1 + timedelta(days=i % 28) for i in range(n)],
            "horizon": [i % 28 + 1 for i in range(n)],
            "mean": [i / 7 for i in range(n)],
            "p50": [i / 7 for i in range(n)],
            "p90": [i / 3 for i in range(n)],
            "p95": [i / 2 for i in range(n)],
            "p99": [float(i) for i in range(n)],
            "model": "ets",
        }
    )
    copies: list[str] = []
    real_copy = psycopg.Cursor.copy

    def spy(self, statement, *args, **kwargs):
        copies.append(str(statement))
        return real_copy(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", spy)
    counts = reporting.publish(url, D1, "r1", {"forecasts": fc})
    assert counts["forecasts"] == n
    assert len(copies) == 1 and copies[0].startswith("copy forecasts (") and copies[0].endswith("(format binary)")
    assert_frame_equal(reporting.read_table(url, "forecasts", D1), expected(fc, "forecasts"))


def test_binary_copy_round_trips_nulls_text_and_special_floats(url):
    """Every column type through the binary COPY: NULLs (NaN, NaT), empty and Chinese text with tabs,
    newlines and backslashes, inf, -0.0, tiny floats, negative ints, dates around 2000-01-01."""
    tr = make_frames(D1, "r1", n=4)["transfers"].assign(
        sku=["a", "中文\t\n\\", "", "x'y\"z"],
        quantity=[1.5, float("inf"), -0.0, 1e-300],
        packs=[1, 2, 3, -4],
        receiver_stockout_date=[
            pd.NaT,
            pd.Timestamp("1999-12-31"),
            pd.Timestamp("2000-01-01"),
            pd.Timestamp("2099-06-30"),
        ],
        donor_days_of_cover=[float("nan"), 1.0, 2.0, float("nan")],
        explanation_en=["", "é", "x" * 5000, "q"],
    )
    reporting.publish(url, D1, "r1", {"transfers": tr})
    assert_frame_equal(reporting.read_table(url, "transfers", D1), expected(tr, "transfers"))
    # more rows than one COPY chunk: chunks follow one another in the same COPY stream
    fc = make_frames(D1, "r1", n=1)["forecasts"]
    many = pd.concat([fc.assign(sku=f"S{i:05d}") for i in range(2_500)], ignore_index=True)
    old = reporting.COPY_CHUNK_ROWS
    try:
        reporting.COPY_CHUNK_ROWS = 1_000
        assert reporting.publish(url, D1, "r1", {"forecasts": many})["forecasts"] == 2_500
    finally:
        reporting.COPY_CHUNK_ROWS = old
    assert_frame_equal(reporting.read_table(url, "forecasts", D1), expected(many, "forecasts"))


def test_exception_in_before_commit_leaves_previous_rows(url):
    reporting.publish(url, D1, "r1", make_frames(D1, "r1"))
    before, pub = published_tables(url), reporting.read_published_runs(url)

    def crash(conn: sa.Connection) -> None:
        reporting.set_watermark(conn, "erp", "sales", "x", D1)
        raise RuntimeError("simulated crash mid-publish")

    with pytest.raises(RuntimeError, match="simulated crash"):
        reporting.publish(url, D1, "r2", make_frames(D1, "r2", n=5, shift=1.0), before_commit=crash)
    for name, df in published_tables(url).items():
        assert_frame_equal(before[name], df)
    assert_frame_equal(pub, reporting.read_published_runs(url))
    with reporting.engine_for(url).connect() as conn:
        assert reporting.get_watermark(conn, "erp", "sales") is None


def test_publishing_backend_killed_mid_transaction(url):
    reporting.publish(url, D1, "r1", make_frames(D1, "r1"))
    before, pub = published_tables(url), reporting.read_published_runs(url)
    killed: list[int] = []

    def kill_me(conn: sa.Connection) -> None:
        pid = conn.execute(sa.text("select pg_backend_pid()")).scalar_one()
        with psycopg.connect(sa.make_url(url).set(drivername="postgresql").render_as_string(False)) as other:
            ok = other.execute("select pg_terminate_backend(%s, 5000)", (pid,)).fetchone()
        assert ok == (True,)
        killed.append(pid)

    with pytest.raises(reporting.PublishError) as err:
        reporting.publish(url, D1, "r2", make_frames(D1, "r2", n=5, shift=1.0), before_commit=kill_me)
    assert killed and "rolled back" in str(err.value)
    for name, df in published_tables(url).items():
        assert_frame_equal(before[name], df)
    assert_frame_equal(pub, reporting.read_published_runs(url))
    # the pool recovers: the next publish works on a fresh connection
    reporting.publish(url, D1, "r3", make_frames(D1, "r3", n=2))
    assert set(reporting.read_table(url, "forecasts", D1)["run_id"]) == {"r3"}


def test_run_log_and_views_on_postgresql(url):
    attempt = reporting.log_attempt_start(url, D1)
    for d, rid in ((D1, "r1"), (D2, "r2")):
        f = make_frames(d, rid, n=3)
        f["alerts"]["severity"] = ["low", "high", "medium"]
        f["transfers"]["approval_tier"] = ["planner", "auto", "auto"]
        f["transfers"]["expected_benefit"] = [1.0, 2.0, 3.0]
        f["kpis"]["location"] = "*"
        f["kpis"]["category"] = "*"
        reporting.publish(url, d, rid, f)
    reporting.log_attempt_end(url, attempt, "published", run_id="r2", counts={"forecasts": 3})
    log_ = reporting.read_run_log(url)
    assert log_["status"].tolist() == ["published"] and log_["run_id"].tolist() == ["r2"]
    assert log_["finished_at"].iloc[0] >= log_["started_at"].iloc[0]
    with reporting.engine_for(url).connect() as conn:
        alerts = conn.execute(sa.text("select run_id, severity from v_alerts_today")).all()
        transfers = conn.execute(sa.text("select approval_tier, expected_benefit from v_transfers_today")).all()
        health = conn.execute(sa.text("select run_id, forecast_28d_units from v_sku_health")).all()
        trend = conn.execute(sa.text("select run_date, metric from v_kpi_trend")).all()
    assert alerts == [("r2", "high"), ("r2", "medium"), ("r2", "low")]
    assert transfers == [("auto", 3.0), ("auto", 2.0), ("planner", 1.0)]
    # forecasts and policy rows share (sku-i, location-i); horizons 1..3 with means 0.1, 1.6, 3.1
    assert sorted(health) == [("r2", 0.1), ("r2", 1.6), ("r2", 3.1)]
    assert trend == [(d, f"metric-{i}") for d in (D1, D2) for i in range(3)]


def _as_role(url: str, role: str) -> str:
    return sa.make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


def test_planner_role_reads_views_and_cannot_write_loader_publishes(pg_url, monkeypatch):
    suffix = uuid.uuid4().hex[:6]
    planner, loader = f"tiaobo_planner_{suffix}", f"tiaobo_loader_{suffix}"
    monkeypatch.delenv("TIAOBO_PLANNER_PASSWORD", raising=False)
    monkeypatch.setenv("TIAOBO_LOADER_PASSWORD", "s3cret-loader")
    planner_url, loader_url = _as_role(pg_url, planner), _as_role(pg_url, loader)
    admin = psycopg.connect(sa.make_url(pg_url).set(drivername="postgresql").render_as_string(False), autocommit=True)
    try:
        reporting.publish(pg_url, D1, "r1", make_frames(D1, "r1"))
        done = reporting.create_roles(pg_url, planner, loader)
        assert done["created"] == [planner, loader] and done["passwords_set"] == [loader]
        assert {"forecasts", "run_log", "v_transfers_today"} <= set(done["objects"])
        assert reporting.create_roles(pg_url, planner, loader)["created"] == []  # idempotent
        # the loader publishes a new date and re-runs the migrations (it owns the views it re-creates)
        reporting.publish(loader_url, D2, "r2", make_frames(D2, "r2"))
        reporting.dispose_engine(loader_url)
        reporting.migrate(loader_url)
        with reporting.engine_for(loader_url).begin() as conn:  # a table the loader adds later
            conn.exec_driver_sql("create table later_table (x int)")
            conn.exec_driver_sql("insert into later_table values (1)")
        # the planner reads every view and table, including the one created after the grants
        with sa.create_engine(planner_url).connect() as conn:
            for view in reporting.view_names():
                conn.exec_driver_sql(f"select * from {view}").all()
            assert conn.exec_driver_sql("select count(*) from v_transfers_today").scalar_one() == 3
            assert conn.exec_driver_sql("select x from later_table").scalar_one() == 1
            conn.rollback()
            for stmt in (
                "insert into kpis (run_date, run_id, location, category, metric, value)"
                " values ('2025-03-12', 'x', '*', '*', 'm', 1)",
                "delete from forecasts",
                "update alerts set severity = 'low'",
                "truncate transfers",
                "create table planner_table (x int)",
            ):
                with pytest.raises(sa.exc.DBAPIError) as err:
                    conn.exec_driver_sql(stmt)
                assert isinstance(
                    err.value.orig, psycopg.errors.InsufficientPrivilege | psycopg.errors.ReadOnlySqlTransaction
                )
                conn.rollback()
        # ... and cannot escape the read-only default either
        with sa.create_engine(planner_url).connect() as conn:
            conn.exec_driver_sql("set transaction read write")
            with pytest.raises(sa.exc.DBAPIError) as err:
                conn.exec_driver_sql("delete from forecasts")
            assert isinstance(err.value.orig, psycopg.errors.InsufficientPrivilege)
        assert len(reporting.read_table(pg_url, "forecasts")) == 6
    finally:
        for u in (planner_url, loader_url):
            reporting.dispose_engine(u)
        for role in (planner, loader):
            if admin.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
                admin.execute(f'reassign owned by "{role}" to current_user')
                admin.execute(f'drop owned by "{role}"')
                admin.execute(f'drop role "{role}"')
        admin.close()


def test_roles_are_refused_on_sqlite(tmp_path):
    with pytest.raises(ValueError, match="PostgreSQL only"):
        reporting.create_roles(f"sqlite:///{tmp_path / 'r.sqlite'}")


def test_summary_views_on_postgresql(url):
    check_summary_views(url)


def test_load_stage_killed_mid_publish_keeps_rows_and_watermarks(url, tmp_path):
    from pipelines.config import load_config
    from pipelines.context import RunContext
    from pipelines.load import load_stage

    cfg = load_config(overrides={"staging_dir": str(tmp_path / "staging"), "reporting": {"url": url}})
    ctx = RunContext(cfg, D1)
    ctx.write_json("run", {"run_id": "r1"})
    for name, df in make_frames(D1, "r1").items():
        ctx.write(name, df)
    ctx.write_json("watermarks", [{"source": "erp", "table_name": "sales", "watermark": "w1"}])
    load_stage(ctx)
    before, pub = published_tables(url), reporting.read_published_runs(url)

    ctx.write_json("run", {"run_id": "r2"})
    for name, df in make_frames(D1, "r2", n=5, shift=1.0).items():
        ctx.write(name, df)
    ctx.write_json("watermarks", [{"source": "erp", "table_name": "sales", "watermark": "w2"}])

    def kill_me(conn: sa.Connection) -> None:
        assert reporting.get_watermark(conn, "erp", "sales") == "w2"  # written, not committed
        pid = conn.execute(sa.text("select pg_backend_pid()")).scalar_one()
        with psycopg.connect(sa.make_url(url).set(drivername="postgresql").render_as_string(False)) as other:
            assert other.execute("select pg_terminate_backend(%s, 5000)", (pid,)).fetchone() == (True,)

    with pytest.raises(reporting.PublishError, match="rolled back"):
        load_stage(ctx, before_commit=kill_me)
    for name, df in published_tables(url).items():
        assert_frame_equal(before[name], df)
    assert_frame_equal(pub, reporting.read_published_runs(url))
    with reporting.engine_for(url).connect() as conn:
        assert reporting.get_watermark(conn, "erp", "sales") == "w1"
