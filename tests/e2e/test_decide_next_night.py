"""Decide in the workbench, then the next night: a planner approves one transfer and rejects another; the next run
counts the approved units on the way (stock position, alerts, KPIs) and leaves the rejected lane out
*before* allocating, so its receiver is served by the other donor — with the MILP, the greedy, and
the MILP's greedy fallback.

The source is a file drop with one store short of two SKUs and two warehouses holding plenty of
both; the lane from DC1 is the cheaper one.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines import reporting, runner
from pipelines.config import Config, load_config
from pipelines.context import RunContext
from pipelines.workbench.service import RecKey, decide
from pipelines.workbench.users import User

pytestmark = pytest.mark.e2e

NIGHT1 = date(2026, 3, 2)
NIGHT2 = NIGHT1 + timedelta(days=1)
DAYS = 120
FILES = {t: {"pattern": f"{t}.parquet"} for t in ("items", "locations", "lanes", "sales", "stock", "lead_times")}


def _frames(run_date: date) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    items = pd.DataFrame(
        {
            "sku": ["A", "B"],
            "name": ["<script>绿茶</script>", "乌龙茶"],
            "name_en": ["green tea", "oolong"],
            "category": "tea",
            "unit_cost": 10.0,
            "unit_price": 20.0,
            "pack_size": 1,
            "shelf_life_days": None,
            "abc_override": None,
            "active": True,
        }
    )
    locations = pd.DataFrame(
        {
            "location": ["S1", "DC1", "DC2"],
            "name": ["上海一店", "上海仓", "杭州仓"],
            "type": ["store", "dc", "dc"],
            "region": "east",
            "can_ship": True,
            "can_receive": True,
            "active": True,
        }
    )
    lanes = pd.DataFrame(
        {
            "from_location": ["DC1", "DC2"],
            "to_location": ["S1", "S1"],
            "cost_per_unit": [0.5, 1.0],
            "fixed_cost_per_shipment": 5.0,
            "transit_days": 1.0,
            "min_units": 0.0,
            "capacity": None,
        }
    )
    days = pd.date_range(end=pd.Timestamp(NIGHT2) - pd.Timedelta(days=1), periods=DAYS + 1)  # the same draws each night
    rows = [
        (sku, loc, d, float(q))
        for sku in ("A", "B")
        for loc, rate in (("S1", 6.0), ("DC1", 1.0), ("DC2", 1.0))
        for d, q in zip(days, rng.poisson(rate, len(days)), strict=True)
    ]
    sales = pd.DataFrame(rows, columns=["sku", "location", "date", "quantity"]).assign(returns=0.0)
    sales = sales[sales["date"] < pd.Timestamp(run_date)]
    sales["revenue"] = sales["quantity"] * 20.0
    stock = pd.DataFrame(
        {
            "snapshot_date": pd.Timestamp(run_date),
            "sku": ["A", "B"] * 3,
            "location": ["S1", "S1", "DC1", "DC1", "DC2", "DC2"],
            "lot": None,
            "expiry_date": pd.NaT,
            "on_hand": [0.0, 0.0, 400.0, 400.0, 400.0, 400.0],
            "in_transit": 0.0,
            "reserved": 0.0,
        }
    )
    lead_times = pd.DataFrame(
        {
            "sku": ["A", "B"] * 3,
            "location": ["S1", "S1", "DC1", "DC1", "DC2", "DC2"],
            "lead_time_days": 7.0,
            "lead_time_std_days": 1.0,
            "review_period_days": 7.0,
        }
    )
    return {
        "items": items,
        "locations": locations,
        "lanes": lanes,
        "sales": sales,
        "stock": stock,
        "lead_times": lead_times,
    }


def _drop(folder: Path, run_date: date) -> None:
    folder.mkdir(exist_ok=True)
    for name, df in _frames(run_date).items():
        df.to_parquet(folder / f"{name}.parquet", index=False)


def _cfg(tmp: Path, transfers: dict[str, Any]) -> Config:
    return load_config(
        overrides={
            "source": {"kind": "files", "folder": str(tmp / "drop"), "files": FILES},
            "staging_dir": str(tmp / "staging"),
            "output_dir": str(tmp / "out"),
            "forecast": {"history_days": DAYS, "use_gbm": False, "backtest_folds": 1},
            "transfers": {"planner_categories": ["tea"], **transfers},
        }
    )


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Night 1 run; the planner rejects A's DC1 -> S1 and approves B's DC1 -> S1 (one pack less)."""
    tmp = tmp_path_factory.mktemp("decide")
    _drop(tmp / "drop", NIGHT1)
    cfg = _cfg(tmp, {})
    runner.run_pipeline(cfg, NIGHT1)
    recs = reporting.read_table(cfg.reporting_url(), "transfers", NIGHT1).set_index(["sku", "from_location"])
    # the cheaper lane carries most of each SKU (the MILP may top up from DC2)
    assert recs.loc[("A", "DC1"), "quantity"] > 50 and recs.loc[("B", "DC1"), "quantity"] > 50
    assert (recs["approval_tier"] == "planner").all()  # the category needs a person: nothing auto-approved
    # decided through the workbench's service (what its pages and uploads call), as a planner of the region
    ann = User("ann", "planner", ("east",))
    limit = cfg.workbench.planner_approval_limit
    with reporting.engine_for(cfg.reporting_url()).execution_options(tiaobo_write=True).begin() as conn:
        decide(
            conn, ann, RecKey(NIGHT1, "A", "DC1", "S1"), "reject", reason_code="donor_needs_it", approval_limit=limit
        )
        less = float(recs.loc[("B", "DC1"), "quantity"]) - 1.0  # one pack less (packs of 1)
        decide(conn, ann, RecKey(NIGHT1, "B", "DC1", "S1"), "approve", less, approval_limit=limit)
    _drop(tmp / "drop", NIGHT2)  # the next night's drop: one more day of sales, the new snapshot
    return tmp


@pytest.mark.parametrize(
    ("transfers", "method"),
    [
        ({"method": "milp"}, "milp"),
        ({"method": "greedy"}, "greedy"),
        ({"method": "milp", "time_limit_seconds": 1e-9}, "greedy"),  # no time to solve: the fallback
    ],
    ids=["milp", "greedy", "fallback"],
)
def test_next_night_counts_the_approval_and_serves_the_rejected_receiver_elsewhere(decided, transfers, method):
    cfg = _cfg(decided, transfers)
    runner.run_pipeline(cfg, NIGHT2)
    url = cfg.reporting_url()
    recs = reporting.read_table(url, "transfers", NIGHT2)
    assert set(recs["method"]) == {method}
    # A: the rejected lane is not proposed; S1 gets all of A from the other warehouse instead
    a = recs[recs["sku"] == "A"]
    assert a[["from_location", "to_location"]].values.tolist() == [["DC2", "S1"]] and a["quantity"].iloc[0] > 50
    # B: the approved units are on the way (an open order): counted in S1's position, not proposed again
    ctx = RunContext(cfg, NIGHT2)
    d = ctx.read("decisions")
    approved = float(d.loc[(d["sku"] == "B") & (d["decision"] == "approve"), "quantity"].iloc[0])
    assert recs[(recs["sku"] == "B") & (recs["from_location"] == "DC1")].empty
    pol = reporting.read_table(url, "inventory_policy", NIGHT2).set_index(["sku", "location"])
    assert pol.loc[("B", "S1"), "available"] == approved and pol.loc[("B", "DC1"), "available"] == 400.0 - approved
    alerts = reporting.read_table(url, "alerts", NIGHT2)
    b_out = alerts[(alerts["sku"] == "B") & (alerts["location"] == "S1") & (alerts["alert_type"] == "stockout_risk")]
    assert not b_out["explanation_en"].str.contains("available 0").any()
    kpis = reporting.read_table(url, "kpis", NIGHT2)
    net = kpis[(kpis["location"] == "*") & (kpis["category"] == "*")].set_index("metric")["value"]
    assert net["transfers_approved_count"] == 1.0 and net["transfers_approved_units"] == approved
    assert net["decision_acceptance_rate"] == 0.5  # one of the planner's two decisions approved
    reporting.dispose_engine(url)
