"""The demo ERP on real PostgreSQL and MariaDB: generated there, every profile query gives the rows
it gives on SQLite for the same seed (after conforming to the contract and sorting)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from pipelines import contract
from pipelines.demo.source import DEMO_END_DATE, ERP_TABLES, PROFILE_DIR, generate
from pipelines.extract import window_params

pytestmark = pytest.mark.integration

SMALL = {"seed": 11, "n_skus": 24, "n_locations": 5, "days": 90}
END = DEMO_END_DATE
WINDOWS = {
    "whole": window_params(END - dt.timedelta(days=SMALL["days"] - 1), END),
    "week": window_params(END - dt.timedelta(days=20), END - dt.timedelta(days=14)),
}
SNAPSHOT = END + dt.timedelta(days=1)
MANIFEST = yaml.safe_load((PROFILE_DIR / "manifest.yaml").read_text(encoding="utf-8"))


def profile_results(url: str) -> dict[str, pd.DataFrame]:
    """Every profile query (both sales windows) and the reconciliation, as contract-typed sorted frames."""
    out: dict[str, pd.DataFrame] = {}
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:

            def run(file: str, params: dict[str, Any]) -> pd.DataFrame:
                result = conn.execute(sa.text((PROFILE_DIR / file).read_text(encoding="utf-8")), params)
                return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

            for table, entry in MANIFEST["tables"].items():
                for wname, window in WINDOWS.items() if table == "sales" else [("", WINDOWS["whole"])]:
                    params = {**window, "snapshot_date": SNAPSHOT}
                    df = run(entry["query"], {k: params[k] for k in entry["params"]})
                    df = contract.canonical_order(contract.conform(df, table, extra="error"), table)
                    out[f"{table} {wname}".strip()] = df
            for wname, window in WINDOWS.items():
                rec = run("reconcile_sales.sql", {k: window[k] for k in MANIFEST["reconcile"]["sales"]["params"]})
                out[f"reconcile {wname}"] = rec.astype("float64")
    finally:
        engine.dispose()
    return out


@pytest.fixture(scope="module")
def sqlite_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, int], dict[str, pd.DataFrame]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'erp.sqlite'}"
    return generate(url, **SMALL), profile_results(url)


def assert_same_as_sqlite(url: str, reference: tuple[dict[str, int], dict[str, pd.DataFrame]]) -> None:
    counts, expected = reference
    assert generate(url, **SMALL) == counts
    got = profile_results(url)
    assert set(got) == set(expected)
    for name, want in expected.items():
        # no order was exported to a fresh ERP: its transfer status is empty, on every server
        assert len(want) > 0 or name.startswith("reconcile") or name == "transfer_status", name
        pd.testing.assert_frame_equal(got[name], want, check_exact=False, rtol=1e-9, atol=1e-6, obj=name)
    # the reconciliation agrees with the staged sales on the server too
    for wname in WINDOWS:
        rec = got[f"reconcile {wname}"].iloc[0]
        assert rec["row_count"] == len(got[f"sales {wname}"])
        assert rec["quantity_sum"] == pytest.approx(got[f"sales {wname}"]["quantity"].sum())
    # UTF-8 names survive the round trip
    assert got["items"]["name"].str.contains(r"[\u4e00-\u9fff]").all()
    engine = sa.create_engine(url)
    try:
        assert set(ERP_TABLES) <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_demo_on_postgresql_matches_sqlite(pg_url, sqlite_reference):
    assert_same_as_sqlite(pg_url, sqlite_reference)


def test_demo_on_mariadb_matches_sqlite(mysql_url, sqlite_reference):
    assert_same_as_sqlite(mysql_url, sqlite_reference)


def test_regenerating_on_a_server_replaces_the_tables(pg_url):
    small = {**SMALL, "n_skus": 12, "days": 60}
    first = generate(pg_url, **small)
    second = generate(pg_url, **{**small, "seed": 99})
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            n = conn.execute(sa.text("select count(*) from so_line")).scalar_one()
    finally:
        engine.dispose()
    assert n == second["so_line"] != first["so_line"]
