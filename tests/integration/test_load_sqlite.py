"""Reporting database on SQLite: migrations, atomic idempotent publish, run log, views, load stage."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from pandas.testing import assert_frame_equal

from pipelines import contract, reporting
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.load import load_stage
from tests.factories import check_summary_views, expected, make_frames, published_tables

pytestmark = pytest.mark.integration  # SQLite reporting database with alembic migrations

D1 = date(2025, 3, 10)
D2 = date(2025, 3, 11)


@pytest.fixture
def url(tmp_path):
    u = f"sqlite:///{tmp_path / 'reporting.sqlite'}"
    reporting.migrate(u)
    yield u
    reporting.dispose_engine(u)


def _published(u: str) -> pd.DataFrame:
    return reporting.read_published_runs(u)


# ---------------------------------------------------------------------------------------------
# schema
# ---------------------------------------------------------------------------------------------

_TYPES = {"str": sa.Text, "int": sa.BigInteger, "float": sa.Double, "bool": sa.Boolean, "date": sa.Date}


def test_migrated_schema_matches_the_contract(url):
    insp = sa.inspect(reporting.engine_for(url))
    for name, t in contract.OUTPUT_TABLES.items():
        cols = insp.get_columns(name)
        assert [c["name"] for c in cols] == t.names, name
        for col, c in zip(cols, t.columns, strict=True):
            assert isinstance(col["type"], _TYPES[c.type]), (name, c.name, col["type"])
            assert col["nullable"] == c.nullable, (name, c.name)
        assert insp.get_pk_constraint(name)["constrained_columns"] == list(t.key), name
        assert any(ix["column_names"] == ["run_date"] for ix in insp.get_indexes(name)), name
    assert [c["name"] for c in insp.get_columns("run_log")] == [
        "attempt_id",
        "run_date",
        "run_id",
        "status",
        "stage",
        "started_at",
        "finished_at",
        "counts_json",
        "message",
        "method_notes",
    ]
    assert insp.get_pk_constraint("watermarks")["constrained_columns"] == ["source", "table_name"]
    assert insp.get_pk_constraint("published_runs")["constrained_columns"] == ["run_date"]
    assert (
        sorted(insp.get_view_names())
        == sorted(reporting.view_names())
        == [
            "v_alert_summary_today",
            "v_alerts_today",
            "v_kpi_trend",
            "v_kpi_trend_location",
            "v_purchase_proposals_today",
            "v_sku_health",
            "v_transfer_tiers_today",
            "v_transfers_today",
        ]
    )


def test_migrate_twice_is_a_noop(url):
    frames = make_frames(D1, "r1")
    reporting.publish(url, D1, "r1", frames)
    insp = sa.inspect(reporting.engine_for(url))
    before = {n: insp.get_columns(n) for n in insp.get_table_names()}
    rev = reporting.schema_revision(url)
    reporting.migrate(url)
    reporting.migrate(url)
    insp = sa.inspect(reporting.engine_for(url))
    assert rev == "0009" == reporting.schema_revision(url)
    assert {n: insp.get_columns(n) for n in insp.get_table_names()}.keys() == before.keys()
    assert str({n: insp.get_columns(n) for n in insp.get_table_names()}) == str(before)
    assert_frame_equal(reporting.read_table(url, "forecasts"), expected(frames["forecasts"], "forecasts"))


def test_sqlite_engine_uses_wal_and_foreign_keys(url):
    with reporting.engine_for(url).connect() as conn:
        assert conn.exec_driver_sql("pragma journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("pragma foreign_keys").scalar() == 1
    assert reporting.engine_for(url) is reporting.engine_for(url)


def test_sqlite_writers_take_the_write_lock_when_their_transaction_begins(url):
    path = sa.make_url(url).database
    with reporting._write_engine(url).begin() as conn:
        assert conn.in_transaction()
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    with reporting.engine_for(url).begin():  # readers: deferred, no lock taken yet
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()


def test_downgrade_to_base_then_migrate_again(url):
    from alembic import command

    reporting.publish(url, D1, "r1", make_frames(D1, "r1"))
    with reporting.engine_for(url).begin() as conn:
        command.downgrade(reporting.alembic_config(connection=conn), "base")
    insp = sa.inspect(reporting.engine_for(url))
    assert insp.get_table_names() == ["alembic_version"] and insp.get_view_names() == []
    reporting.migrate(url)
    assert reporting.schema_revision(url) == "0009"
    assert reporting.published_run_dates(url) == []


# ---------------------------------------------------------------------------------------------
# publish
# ---------------------------------------------------------------------------------------------


def test_publish_then_read_back_equals_the_input(url):
    frames = make_frames(D1, "r1", n=4)
    counts = reporting.publish(url, D1, "r1", frames)
    assert counts == {name: 4 for name in contract.OUTPUT_TABLES}
    for name, df in frames.items():
        got = reporting.read_table(url, name, D1)
        assert_frame_equal(got, expected(df, name))
        assert got.isna().any().any() == any(c.nullable for c in contract.OUTPUT_TABLES[name].columns)
    assert reporting.published_run_dates(url) == [D1]


def test_publishing_the_same_date_twice_gives_identical_rows(url):
    frames = make_frames(D1, "r1")
    reporting.publish(url, D1, "r1", frames)
    first = published_tables(url)
    reporting.publish(url, D1, "r1", frames)
    second = published_tables(url)
    for name in contract.OUTPUT_TABLES:
        assert len(second[name]) == 3
        assert_frame_equal(first[name], second[name])


def test_republish_replaces_rows_and_missing_tables_count_as_empty(url):
    reporting.publish(url, D1, "r1", make_frames(D1, "r1", n=5))
    new = make_frames(D1, "r2", n=2, shift=10.0)
    counts = reporting.publish(url, D1, "r2", {"forecasts": new["forecasts"]})
    assert counts["forecasts"] == 2 and counts["alerts"] == 0
    assert_frame_equal(reporting.read_table(url, "forecasts", D1), expected(new["forecasts"], "forecasts"))
    assert reporting.read_table(url, "alerts", D1).empty
    pub = _published(url)
    assert pub["run_id"].tolist() == ["r2"]


def test_publishing_d2_leaves_d1_untouched(url):
    f1 = make_frames(D1, "r1")
    reporting.publish(url, D1, "r1", f1)
    reporting.publish(url, D2, "r2", make_frames(D2, "r2", n=2, shift=3.0))
    for name, df in f1.items():
        assert_frame_equal(reporting.read_table(url, name, D1), expected(df, name))
        assert len(reporting.read_table(url, name)) == 5
    assert reporting.published_run_dates(url) == [D1, D2]


def test_crash_in_before_commit_leaves_the_previous_state_exactly(url):
    reporting.publish(url, D1, "r1", make_frames(D1, "r1"), counts={"note": "first"})
    before, pub_before = published_tables(url), _published(url)

    def crash(conn: sa.Connection) -> None:
        # the new rows are visible inside the transaction when the crash happens
        assert conn.execute(sa.text("select count(*) from forecasts where run_id = 'r2'")).scalar() == 4
        raise RuntimeError("simulated crash mid-publish")

    with pytest.raises(RuntimeError, match="simulated crash"):
        reporting.publish(url, D1, "r2", make_frames(D1, "r2", n=4, shift=1.0), before_commit=crash)
    after = published_tables(url)
    for name in contract.OUTPUT_TABLES:
        assert_frame_equal(before[name], after[name])
    assert_frame_equal(pub_before, _published(url))
    assert pub_before["counts_json"].iloc[0] == '{"note": "first"}'


def test_database_error_inside_the_transaction_is_a_publish_error(url):
    reporting.publish(url, D1, "r1", make_frames(D1, "r1"))
    before = published_tables(url)
    with pytest.raises(reporting.PublishError, match="before_commit") as err:
        reporting.publish(
            url, D1, "r2", make_frames(D1, "r2"), before_commit=lambda c: c.execute(sa.text("select * from nope"))
        )
    assert "rolled back" in str(err.value)
    for name, df in published_tables(url).items():
        assert_frame_equal(before[name], df)


def test_frames_of_another_run_or_with_duplicate_keys_are_refused_before_touching_the_db(url):
    reporting.publish(url, D1, "r1", make_frames(D1, "r1"))
    before = published_tables(url)
    with pytest.raises(ValueError, match="table forecasts has 3 row.s. of another run id"):
        reporting.publish(url, D1, "r2", {"forecasts": make_frames(D1, "r1")["forecasts"]})
    with pytest.raises(ValueError, match="another run date"):
        reporting.publish(url, D2, "r1", {"kpis": make_frames(D1, "r1")["kpis"]})
    dup = make_frames(D1, "r3")["kpis"]
    with pytest.raises(contract.ContractError, match="kpis has 2 row.s. sharing a key"):
        reporting.publish(url, D1, "r3", {"kpis": pd.concat([dup, dup.iloc[:1]], ignore_index=True)})
    with pytest.raises(ValueError, match="not output tables"):
        reporting.publish(url, D1, "r3", {"sales": dup})
    for name, df in published_tables(url).items():
        assert_frame_equal(before[name], df)


def test_watermarks_advance_only_with_a_committed_publish(url):
    frames = make_frames(D1, "r1")

    def advance(value: str):
        def hook(conn: sa.Connection) -> None:
            reporting.set_watermark(conn, "erp", "sales", value, D1)

        return hook

    reporting.publish(url, D1, "r1", frames, before_commit=advance("2025-03-09"))
    reporting.publish(url, D1, "r1", frames, before_commit=advance("2025-03-10"))  # upsert, not a duplicate

    def advance_then_crash(conn: sa.Connection) -> None:
        advance("2099-01-01")(conn)
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        reporting.publish(url, D1, "r1", frames, before_commit=advance_then_crash)
    with reporting.engine_for(url).connect() as conn:
        assert reporting.get_watermark(conn, "erp", "sales") == "2025-03-10"
        assert reporting.get_watermark(conn, "erp", "stock") is None
        assert conn.execute(sa.text("select count(*) from watermarks")).scalar() == 1


# ---------------------------------------------------------------------------------------------
# run log
# ---------------------------------------------------------------------------------------------


def test_run_log_start_and_end(url):
    a1 = reporting.log_attempt_start(url, D1)
    a2 = reporting.log_attempt_start(url, D1)
    a3 = reporting.log_attempt_start(url, D2)
    running = reporting.read_run_log(url, D1)
    assert running["status"].tolist() == ["running", "running"]
    assert running["finished_at"].isna().all()
    reporting.log_attempt_end(
        url,
        a1,
        "failed",
        stage="extract",
        message="cannot connect to postgresql+psycopg://planner:s3cret@db:5432/erp",
        counts={"sales": 0},
    )
    reporting.log_attempt_end(url, a2, "published", run_id="r1", counts={"forecasts": 3}, method_notes="greedy")
    log_ = reporting.read_run_log(url).set_index("attempt_id")
    assert log_.loc[a1, "status"] == "failed" and log_.loc[a1, "stage"] == "extract"
    assert "s3cret" not in log_.loc[a1, "message"] and "planner:***@db" in log_.loc[a1, "message"]
    assert log_.loc[a2, "run_id"] == "r1" and log_.loc[a2, "counts_json"] == '{"forecasts": 3}'
    assert log_.loc[a2, "method_notes"] == "greedy"
    assert log_.loc[a3, "status"] == "running" and pd.isna(log_.loc[a3, "run_id"])
    assert str(log_["started_at"].dtype) == "datetime64[ns, UTC]"
    assert (log_.loc[[a1, a2], "finished_at"] >= log_.loc[[a1, a2], "started_at"]).all()
    assert log_["run_date"].tolist() == [pd.Timestamp(D1), pd.Timestamp(D1), pd.Timestamp(D2)]
    with pytest.raises(ValueError, match="status"):
        reporting.log_attempt_end(url, a3, "done")
    with pytest.raises(LookupError):
        reporting.log_attempt_end(url, "nope", "failed")


def test_run_log_survives_a_failed_publish_and_migrates_on_first_use(tmp_path):
    u = f"sqlite:///{tmp_path / 'sub' / 'fresh.sqlite'}"
    attempt = reporting.log_attempt_start(u, D1)  # no explicit migrate: the first writer migrates

    def crash(conn: sa.Connection) -> None:
        raise KeyboardInterrupt  # not even an Exception: the transaction still rolls back

    with pytest.raises(KeyboardInterrupt):
        reporting.publish(u, D1, "r1", make_frames(D1, "r1"), before_commit=crash)
    reporting.log_attempt_end(u, attempt, "stopped", stage="load", message="interrupted")
    assert reporting.read_run_log(u)["status"].tolist() == ["stopped"]
    assert reporting.published_run_dates(u) == []
    reporting.dispose_engine(u)


# ---------------------------------------------------------------------------------------------
# views
# ---------------------------------------------------------------------------------------------


def _view(u: str, name: str) -> pd.DataFrame:
    with reporting.engine_for(u).connect() as conn:
        return pd.DataFrame(conn.execute(sa.text(f"select * from {name}")).mappings().all())


def test_views_show_the_latest_run_only(url):
    for d, rid in ((D1, "r1"), (D2, "r2")):
        f = make_frames(d, rid, n=4)
        f["transfers"]["approval_tier"] = ["planner", "auto", "planner", "auto"]
        f["transfers"]["expected_benefit"] = [5.0, 1.0, 9.0, 7.0]
        f["alerts"]["severity"] = ["low", "high", "medium", "high"]
        f["alerts"]["value_at_risk"] = [100.0, 10.0, 50.0, 20.0]
        fc = f["forecasts"]
        fc = pd.concat(
            [fc.assign(sku="A", horizon=h, target_date=d + timedelta(days=h - 1), mean=1.0) for h in range(1, 31)],
            ignore_index=True,
        )
        f["forecasts"] = fc.drop_duplicates(["sku", "location", "target_date"])
        f["inventory_policy"]["sku"] = ["A", "A", "B", "B"]
        f["inventory_policy"]["location"] = [f"location-{i}" for i in range(4)]
        f["kpis"]["location"] = ["*", "*", "S1", "*"]
        f["kpis"]["category"] = ["*", "*", "*", "C1"]
        reporting.publish(url, d, rid, f)

    tr = _view(url, "v_transfers_today")
    assert set(tr["run_id"]) == {"r2"}
    assert list(zip(tr["approval_tier"], tr["expected_benefit"], strict=True)) == [
        ("auto", 7.0),
        ("auto", 1.0),
        ("planner", 9.0),
        ("planner", 5.0),
    ]
    al = _view(url, "v_alerts_today")
    assert set(al["run_id"]) == {"r2"}
    assert list(zip(al["severity"], al["value_at_risk"], strict=True)) == [
        ("high", 20.0),
        ("high", 10.0),
        ("medium", 50.0),
        ("low", 100.0),
    ]
    health = _view(url, "v_sku_health")
    assert set(health["run_id"]) == {"r2"} and len(health) == 4
    # sku A has 30 daily forecasts of 1 unit at each of locations 0..3 of the forecasts frame:
    # the view sums horizons 1..28 only; B has no forecast -> null
    by_key = health.set_index(["sku", "location"])["forecast_28d_units"]
    assert by_key[("A", "location-0")] == 28.0 and by_key[("A", "location-1")] == 28.0
    assert by_key[("B", "location-2")] is None or np.isnan(by_key[("B", "location-2")])
    trend = _view(url, "v_kpi_trend")
    assert trend["run_id"].tolist() == ["r1", "r1", "r2", "r2"]
    assert trend["metric"].tolist() == ["metric-0", "metric-1"] * 2


def test_views_are_empty_before_anything_is_published(url):
    for name in reporting.view_names():
        assert _view(url, name).empty


# ---------------------------------------------------------------------------------------------
# load stage
# ---------------------------------------------------------------------------------------------


def test_load_stage_publishes_the_staged_outputs(tmp_path):
    u = f"sqlite:///{tmp_path / 'rep.sqlite'}"
    cfg = load_config(overrides={"staging_dir": str(tmp_path / "staging"), "reporting": {"url": u}})
    ctx = RunContext(cfg, D1)
    with pytest.raises(FileNotFoundError, match="no output file"):
        load_stage(ctx)
    frames = make_frames(D1, "20250310-abc")
    staged = ("forecasts", "lead_time_demand", "alerts", "kpis")
    ctx.write_json("run", {"run_id": "20250310-abc"})
    for name in staged:
        ctx.write(name, frames[name])
    result = load_stage(ctx)
    assert result.stage == "load"
    assert result.counts == {
        **{name: (3 if name in staged else 0) for name in contract.OUTPUT_TABLES},
        "watermarks": 0,
        "auto_approved": 0,
        "auto_approved_purchases": 0,
    }
    assert set(result.paths) == set(staged)
    assert any("no file for forecast_accuracy" in n for n in result.notes)
    for name in staged:
        assert_frame_equal(reporting.read_table(u, name, D1), expected(frames[name], name))
    assert reporting.published_run_dates(u) == [D1]
    assert load_stage(ctx).counts == result.counts  # idempotent
    assert len(reporting.read_table(u, "forecasts")) == 3
    reporting.dispose_engine(u)


def _staged(tmp_path, run_id: str = "20250310-abc"):
    u = f"sqlite:///{tmp_path / 'rep.sqlite'}"
    cfg = load_config(overrides={"staging_dir": str(tmp_path / "staging"), "reporting": {"url": u}})
    ctx = RunContext(cfg, D1)
    ctx.write_json("run", {"run_id": run_id})
    for name, df in make_frames(D1, run_id).items():
        ctx.write(name, df)
    return ctx, u


def _watermarks(u: str) -> dict[tuple[str, str], str]:
    with reporting.engine_for(u).connect() as conn:
        rows = conn.execute(sa.select(reporting.WATERMARKS)).all()
    return {(r.source, r.table_name): r.watermark for r in rows}


def test_load_stage_applies_proposed_watermarks_only_when_the_publish_commits(tmp_path):
    ctx, u = _staged(tmp_path)
    ctx.write_json("watermarks", [{"source": "erp", "table_name": "sales", "watermark": "2025-03-09T23:00:00"}])
    result = load_stage(ctx)
    assert result.counts["watermarks"] == 1 and "watermarks" in result.paths
    assert _watermarks(u) == {("erp", "sales"): "2025-03-09T23:00:00"}
    assert any("erp.sales=2025-03-09T23:00:00" in n for n in result.notes)

    # the next proposal: the publish fails inside its transaction -> rows and watermarks unchanged
    before = published_tables(u)
    ctx.write_json(
        "watermarks",
        [
            {"source": "erp", "table_name": "sales", "watermark": "2025-03-10T23:00:00"},
            {"source": "erp", "table_name": "stock", "watermark": "42"},
        ],
    )

    def fail(conn: sa.Connection) -> None:
        # the watermarks were already written on this connection, inside the transaction
        assert reporting.get_watermark(conn, "erp", "stock") == "42"
        raise RuntimeError("simulated failure after the watermarks")

    with pytest.raises(RuntimeError, match="simulated failure"):
        load_stage(ctx, before_commit=fail)
    assert _watermarks(u) == {("erp", "sales"): "2025-03-09T23:00:00"}
    for name, df in published_tables(u).items():
        assert_frame_equal(before[name], df)
    load_stage(ctx)
    assert _watermarks(u) == {("erp", "sales"): "2025-03-10T23:00:00", ("erp", "stock"): "42"}
    reporting.dispose_engine(u)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"source": "erp"}, "expected a list"),
        ([{"source": "erp", "table_name": "sales"}], "entry 0 has no 'watermark'"),
        ([{"source": "erp", "table_name": "s", "watermark": "1"}] * 2, "entry 1 repeats source 'erp', table 's'"),
    ],
)
def test_malformed_watermarks_file_is_refused_before_publishing(tmp_path, content, message):
    ctx, u = _staged(tmp_path)
    ctx.write_json("watermarks", content)
    with pytest.raises(ValueError, match=message):
        load_stage(ctx)
    reporting.migrate(u)
    assert reporting.published_run_dates(u) == []
    reporting.dispose_engine(u)


def test_summary_views_on_sqlite(url):
    check_summary_views(url)


def test_alert_plan_columns_migrate_over_published_alerts(url):
    from alembic import command

    frames = make_frames(D1, "r1")
    assert len(frames["alerts"])
    reporting.publish(url, D1, "r1", frames)
    with reporting.engine_for(url).begin() as conn:
        command.downgrade(reporting.alembic_config(connection=conn), "0005")
    cols = [c["name"] for c in sa.inspect(reporting.engine_for(url)).get_columns("alerts")]
    assert "plan_reason" not in cols
    reporting.migrate(url)
    got = reporting.read_table(url, "alerts")
    assert len(got) == len(frames["alerts"])
    # rows published before the plan check: no units, no reason
    assert set(got["plan_units"]) == {0.0} and set(got["plan_reason"]) == {""}
