"""The replay on tiny networks whose numbers are computed by hand: the simulation, the one-shot
plans, re-planning after an unexpected spike, what a re-planner sees, and the exact-optimum
bound check."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.eval.planner import Epoch, daily_sales, lead_times, stock_snapshot
from pipelines.eval.replay import (
    DEFAULT_DATA_DIR,
    HOLDING_RATE,
    METHODS,
    Network,
    Step,
    _items,
    _lanes,
    _locations,
    bound_violations,
    load_m5,
    load_vn1,
    replay,
    run,
    simulate,
    starting_stock,
)


def two_stores(name: str, history: list, future: list, lanes_from: list[str]) -> Network:
    """One SKU ``A`` at S1 and S2 (rows of ``history`` / ``future``), daily periods, lanes from
    each of ``lanes_from`` to the other store (0.5 per unit, 1 per shipment, 1 day)."""
    keys = pd.DataFrame({"sku": ["A", "A"], "location": ["S1", "S2"]})
    other = {"S1": "S2", "S2": "S1"}
    lanes = _lanes(
        pd.DataFrame(
            {
                "from_location": lanes_from,
                "to_location": [other[f] for f in lanes_from],
                "cost_per_unit": 0.5,
                "fixed_cost_per_shipment": 1.0,
                "transit_days": 1,
            }
        )
    )
    return Network(
        name,
        keys,
        np.array(history, dtype=float),
        np.array(future, dtype=float),
        1,
        date(2026, 3, 1),
        _items(np.array(["A"]), np.array([10.0]), np.array(["c"])),
        _locations(["S1", "S2"], ["r", "r"]),
        lanes,
    )


def tiny() -> Network:
    # one SKU at S1 (sells 2 a day) and S2 (sells nothing); daily periods, a 4-day horizon
    return two_stores("tiny", [[2.0] * 4, [0.0] * 4], [[2.0] * 4, [0.0] * 4], ["S2"])


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
    # the 6 units are on their way at the end of day 0, S1 holds 4, 2, 0 at the end of days 1..3;
    # S2 holds 4 units x 4 days
    assert one["holding_cost"] == pytest.approx((6 + 6 + 16) * 7 * HOLDING_RATE / 365)
    with pytest.raises(ValueError, match="ships more than the donor has"):
        simulate(net, stock, moved.assign(quantity=11.0))


def test_replay_tiny_known_case() -> None:
    net = tiny()
    table, notes = replay(net, stock=np.array([0.0, 10.0]))
    t = table.set_index("method")
    # with foresight: S2 needs nothing, S1 sells 6 after the day-1 arrival -> ship exactly 6
    assert t.loc["optimum", "transfer_units"] == 6 and t.loc["optimum", "lost_units"] == 2
    base = t.loc["none", "total_cost"]
    assert t.loc["optimum", "saving"] == pytest.approx(base - t.loc["optimum", "total_cost"])
    assert t.loc["optimum", "captured"] == pytest.approx(1.0) and t.loc["none", "captured"] == 0.0
    # no plan beats the exact optimum, and the MILP saves something, once or re-planning
    assert list(t.index) == list(METHODS)
    assert (t["total_cost"] >= t.loc["optimum", "total_cost"] - 1e-9).all()
    assert t.loc["milp_once", "saving"] > 0 and t.loc["milp", "saving"] > 0 and "milp:" in notes["milp"]
    assert bound_violations(table, table.attrs["optimum_cost_bound"]) == []


def test_scenario_is_seeded() -> None:
    net = tiny()
    a, b = starting_stock(net, 3), starting_stock(net, 3)
    assert (a == b).all() and a[1] == 0.0 and 0.3 * 8 - 1 <= a[0] <= 3.0 * 8
    assert not (starting_stock(net, 4) == a).all()


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
    # the validation window: 5 weeks of history and 4 replayed weeks ending on 2023-12-04
    val = load_vn1(data, 5, 4, "2023-12-04")
    assert val.decision_date == date(2023, 11, 13) and val.history.shape[1] == 5 and val.future.shape[1] == 4
    with pytest.raises(ValueError, match="fewer than 8 of history"):
        load_vn1(data, 8, 4, "2023-12-04")


def spike() -> Network:
    # one SKU at S1 and S2, both selling 1 a day for 4 days of history; then S1 sells 10 on day 0
    # (a spike nobody forecast) and 3 a day after; S2 keeps selling 1 a day
    return two_stores("spike", [[1.0] * 4, [1.0] * 4], [[10.0, 3.0, 3.0, 3.0], [1.0] * 4], ["S2", "S1"])


def test_a_spike_nobody_forecast_and_the_two_references() -> None:
    net = spike()
    table, notes = replay(net, stock=np.array([10.0, 30.0]), replan_every_days=1)
    t = table.set_index("method")
    # on day 0 the nightly forecaster has seen 1 a day: S1's 10 units look ample, so no plan moves
    # anything once, and the spike costs 9 lost units (days 1-3) like doing nothing
    for m in ("greedy_once", "milp_once"):
        assert t.loc[m, "transfer_units"] == 0 and t.loc[m, "lost_units"] == 9 and t.loc[m, "saving"] == 0
    # the exact optimum ships S1's 9 missing units from S2 on day 0 (S2 needs 4 of its 30), they
    # arrive on day 1: nothing lost; cost 9 x 0.5 + 1
    assert t.loc["optimum", "transfer_units"] == 9 and t.loc["optimum", "lost_units"] == 0
    assert t.loc["optimum", "transfer_cost"] == pytest.approx(5.5)
    # the same MILP planner with the realised demand as its forecast sees the spike on day 0 and
    # loses nothing either; it pays more than the optimum (its policy keeps safety stock)
    assert notes["perfect_forecast"].startswith("day 0: milp: 1 transfer(s)")
    assert t.loc["perfect_forecast", "lost_units"] == 0
    assert t.loc["optimum", "saving"] >= t.loc["perfect_forecast", "saving"] > t.loc["milp_once", "saving"]
    assert bound_violations(table, table.attrs["optimum_cost_bound"]) == []


def test_a_replanner_sees_censored_sales_stock_in_transit_and_the_days_left() -> None:
    net = spike()
    seen: list[Epoch] = []
    first = pd.DataFrame({"sku": ["A"], "from_location": ["S2"], "to_location": ["S1"], "quantity": [2.0]})

    def planner(ep: Epoch) -> Step:
        seen.append(ep)
        return Step(0, first if len(seen) == 1 else first.iloc[:0], "test")

    # lane S2 -> S1 takes 2 days here: day 0's transfer is still on its way on day 1
    net.lanes.loc[net.lanes["from_location"] == "S2", "transit_days"] = 2
    out = run(net, np.array([10.0, 30.0]), planner, replan_every_days=1)
    assert [(e.periods_left, e.run_date) for e in seen] == [
        (4, date(2026, 3, 1)),
        (3, date(2026, 3, 2)),
        (2, date(2026, 3, 3)),
        (1, date(2026, 3, 4)),
    ]
    day1 = seen[1]
    # S1 sold its 10 on day 0 (demand 10): on hand 0, 2 in transit; S2 gave 2 and sold 1
    assert day1.on_hand.tolist() == [0.0, 27.0] and day1.in_transit.tolist() == [2.0, 0.0]
    # the history it sees: the 4 days before, then day 0's sales
    assert day1.history.tolist() == [[1.0, 1.0, 1.0, 1.0, 10.0], [1.0, 1.0, 1.0, 1.0, 1.0]]
    # day 2: the 2 units arrived before the planner looks; S1 sold 0 of day 1's 3 (stock 0): censored
    day2 = seen[2]
    assert day2.on_hand[0] == 2 and day2.in_transit[0] == 0 and day2.history[0, -1] == 0.0
    assert out.transfers["period"].tolist() == [0] and out.metrics["transfer_cost"] == pytest.approx(2 * 0.5 + 1)
    # S1 sells 10 on day 0, nothing on day 1, the 2 arrivals on day 2, nothing on day 3: 7 lost
    assert out.metrics["lost_units"] == 3 + 1 + 3
    # what the product planner makes of that day: the policy's lead time is the days left, the
    # stock snapshot holds on hand and in transit, the sales rows are the observed ones
    stock = stock_snapshot(net, day1)
    assert stock["on_hand"].tolist() == [0.0, 27.0] and stock["in_transit"].tolist() == [2.0, 0.0]
    assert lead_times(net, day1)["lead_time_days"].tolist() == [3.0, 3.0]
    sales = daily_sales(net, day1.history, day1.run_date)
    assert sales["date"].max() == pd.Timestamp("2026-03-01") and sales["quantity"].sum() == 19.0


def test_fixed_cost_is_paid_per_lane_and_per_departure() -> None:
    net = spike()
    moved = pd.DataFrame(
        {"sku": ["A", "A"], "from_location": ["S2", "S2"], "to_location": ["S1", "S1"], "quantity": [3.0, 3.0]}
    )
    same_day = simulate(net, np.array([10.0, 30.0]), moved)
    two_days = simulate(net, np.array([10.0, 30.0]), moved.assign(period=[0, 1]))
    assert same_day["transfer_cost"] == pytest.approx(6 * 0.5 + 1.0)
    assert two_days["transfer_cost"] == pytest.approx(6 * 0.5 + 2.0)


def test_vn1_prices_and_the_price_filter_come_from_before_the_decision_date(tmp_path: Path) -> None:
    # 3 weeks of history, 1 replayed; product 1 has a price in the history, a far higher one in the
    # replayed week (ignored); product 2 has a price only in the replayed week: dropped
    weeks = ["2023-10-09", "2023-10-16", "2023-10-23", "2023-10-30"]
    rows = [(0, w, p) for p in (1, 2) for w in (1, 2)]
    sales = pd.DataFrame(rows, columns=["Client", "Warehouse", "Product"]).assign(**{w: 1.0 for w in weeks})
    price = sales[["Client", "Warehouse", "Product"]].copy()
    price["2023-10-09"] = [10.0, 12.0, np.nan, np.nan]
    price["2023-10-16"] = np.nan
    price["2023-10-23"] = np.nan
    price["2023-10-30"] = [99.0, 99.0, 5.0, 5.0]
    (tmp_path / "vn1").mkdir()
    sales.to_csv(tmp_path / "vn1" / "phase1_sales.csv", index=False)
    price.to_csv(tmp_path / "vn1" / "phase1_price.csv", index=False)
    net = load_vn1(tmp_path, history_weeks=3, horizon_weeks=1)
    assert net.decision_date == date(2023, 10, 30)
    assert net.items["sku"].tolist() == ["0-1"] and net.items["unit_price"].tolist() == [pytest.approx(11.0)]


def test_m5_keeps_the_series_listed_before_the_decision_date(tmp_path: Path) -> None:
    days = pd.date_range("2016-04-01", "2016-04-06", freq="D")
    old = pd.DataFrame({"id": "FOODS_1_001_CA_1_evaluation", "date": days, "quantity_sold": 1.0})
    other = old.assign(id="FOODS_1_001_CA_2_evaluation")
    new = pd.DataFrame({"id": "FOODS_1_002_CA_1_evaluation", "date": days[4:], "quantity_sold": 3.0})
    df = pd.concat([old, other, new], ignore_index=True).assign(date=lambda d: d["date"].dt.strftime("%Y-%m-%d"))
    folder = tmp_path / "m5" / "sales_train.parquet"
    df.to_parquet(folder, partition_cols=["date"])
    net = load_m5(tmp_path, history_days=4, horizon_days=2, last_day="2016-04-06")
    # FOODS_1_002 first sells on the first replayed day: not known before the decision date
    assert net.decision_date == date(2016, 4, 5)
    assert net.keys.to_dict("list") == {"sku": ["FOODS_1_001", "FOODS_1_001"], "location": ["CA_1", "CA_2"]}
