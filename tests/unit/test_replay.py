"""The replay on a tiny network whose every number is computed by hand."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.replay import (
    DEFAULT_DATA_DIR,
    HOLDING_RATE,
    Network,
    _items,
    _lanes,
    _locations,
    load_vn1,
    policy_frame,
    replay,
    simulate,
    starting_stock,
)


def tiny() -> Network:
    # one SKU at S1 (sells 2 a day) and S2 (sells nothing); daily periods, a 4-day horizon
    keys = pd.DataFrame({"sku": ["A", "A"], "location": ["S1", "S2"]})
    lanes = _lanes(
        pd.DataFrame(
            {
                "from_location": ["S2"],
                "to_location": ["S1"],
                "cost_per_unit": [0.5],
                "fixed_cost_per_shipment": [1.0],
                "transit_days": [1],
            }
        )
    )
    return Network(
        "tiny",
        keys,
        np.array([[2.0] * 4, [0.0] * 4]),
        np.array([[2.0] * 4, [0.0] * 4]),
        1,
        date(2026, 3, 1),
        _items(np.array(["A"]), np.array([10.0]), np.array(["c"])),
        _locations(["S1", "S2"], ["r", "r"]),
        lanes,
    )


def test_simulate_by_hand() -> None:
    net = tiny()
    stock = np.array([0.0, 10.0])
    none = simulate(net, stock, pd.DataFrame())
    # S1 loses 8 units (price 10, margin 3); S2 holds 10 units x 4 days at 7 x 25% / 365
    assert none["lost_units"] == 8 and none["lost_value"] == 80 and none["lost_margin"] == pytest.approx(24.0)
    assert none["holding_cost"] == pytest.approx(40 * 7 * HOLDING_RATE / 365)
    moved = pd.DataFrame({"sku": ["A"], "from_location": ["S2"], "to_location": ["S1"], "quantity": [6.0]})
    one = simulate(net, stock, moved)
    # leaves S2 on day 0, reaches S1 on day 1: day 0 lost (2), days 1-3 sold (6)
    assert one["lost_units"] == 2 and one["transfer_cost"] == pytest.approx(6 * 0.5 + 1.0)
    # S1 holds 4, 2, 0 at the end of days 1..3; S2 holds 4 units x 4 days
    assert one["holding_cost"] == pytest.approx((6 + 16) * 7 * HOLDING_RATE / 365)
    with pytest.raises(ValueError, match="ships more than the donor has"):
        simulate(net, stock, moved.assign(quantity=11.0))


def test_replay_tiny_known_case() -> None:
    net = tiny()
    table, notes = replay(net, stock=np.array([0.0, 10.0]))
    t = table.set_index("method")
    # with foresight: S2 needs nothing, S1 sells 6 after the day-1 arrival -> ship exactly 6
    assert t.loc["perfect", "transfer_units"] == 6 and t.loc["perfect", "lost_units"] == 2
    base = t.loc["none", "total_cost"]
    assert t.loc["perfect", "saving"] == pytest.approx(base - t.loc["perfect", "total_cost"])
    assert t.loc["perfect", "captured"] == pytest.approx(1.0) and t.loc["none", "captured"] == 0.0
    # no plan beats foresight here, and the MILP saves something
    assert (t["total_cost"] >= t.loc["perfect", "total_cost"] - 1e-9).all()
    assert t.loc["milp", "saving"] > 0 and "milp:" in notes["milp"]


def test_scenario_is_seeded_and_policy_keeps_the_horizon() -> None:
    net = tiny()
    a, b = starting_stock(net, 3), starting_stock(net, 3)
    assert (a == b).all() and a[1] == 0.0 and 0.3 * 8 - 1 <= a[0] <= 3.0 * 8
    pol = policy_frame(net, np.array([0.0, 10.0]))
    # mu 2/day, horizon 4 days: reorder point = 8 + 1.65 sqrt(8)
    assert pol["reorder_point"].iloc[0] == pytest.approx(8 + 1.65 * np.sqrt(8))


def test_vn1_network_loads() -> None:
    data = Path(os.environ.get("TIAOBO_DATA_DIR", DEFAULT_DATA_DIR))
    if not (data / "vn1").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{data / 'vn1'} is missing under CI")
        pytest.skip(f"real demand data not found at {data / 'vn1'} (../shared/data)")
    net = load_vn1(data)
    assert net.history.shape[1] == 8 and net.future.shape[1] == 4 and net.period_days == 7
    assert (net.keys.groupby("sku")["location"].nunique() >= 2).all()
    assert set(net.lanes["from_location"]) <= set(net.locations["location"])
    assert (net.items["unit_price"] > 0).all()
