"""The replay's exact optimum (the true bound) on networks small enough to try every plan: it equals
a brute force over all plans the simulation can execute, transfers on any date included, and no
replayed method costs less; and the in-transit holding charge of the simulation, by hand."""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines.eval.optimum import executable, forced_sales, forwarded_units, optimum_plan, unit_values
from pipelines.eval.planner import PlannerSettings
from pipelines.eval.replay import (
    HOLDING_RATE,
    METHODS,
    BoundViolation,
    Network,
    _items,
    _lanes,
    _locations,
    bound_violations,
    replay,
    simulate,
)


def network(
    history: list,
    future: list,
    locations: list[str],
    lanes: list[tuple],
    skus: list[str] | None = None,
    period_days: int = 1,
    prices: dict[str, float] | None = None,
) -> Network:
    """Series = every SKU of ``skus`` (default one, ``A``) at every location; ``lanes`` as
    (from, to, cost per unit, fixed cost, transit days)."""
    skus = skus or ["A"]
    keys = pd.DataFrame([(s, loc) for s in skus for loc in locations], columns=["sku", "location"])
    ln = _lanes(
        pd.DataFrame(
            lanes, columns=["from_location", "to_location", "cost_per_unit", "fixed_cost_per_shipment", "transit_days"]
        )
    )
    price = np.array([(prices or {}).get(s, 10.0) for s in skus])
    return Network(
        "t",
        keys,
        np.array(history, float),
        np.array(future, float),
        period_days,
        date(2026, 3, 2),
        _items(np.array(skus), price, np.array(["c"] * len(skus))),
        _locations(locations, ["r"] * len(locations)),
        ln,
    )


def brute_force(
    net: Network, stock: np.ndarray, periods: list[int], quantities: range, skus: list[str] | None = None
) -> tuple[float, pd.DataFrame]:
    """The cheapest total cost over every plan shipping ``quantities`` units of each SKU on each
    lane in each of ``periods`` (plans that ship more than a donor has are skipped; a location
    with no stock at the start ships nothing on day 0, as the simulation would refuse it)."""
    skus = skus or ["A"]
    start = dict(zip(zip(net.keys["sku"], net.keys["location"], strict=True), stock, strict=True))
    slots = [
        (s, r.from_location, r.to_location, p)
        for s in skus
        for r in net.lanes.itertuples()
        for p in periods
        if p > 0 or start[(s, r.from_location)] > 0
    ]
    best, plan = np.inf, None
    for q in itertools.product(quantities, repeat=len(slots)):
        t = pd.DataFrame(
            [(*sl, float(x)) for sl, x in zip(slots, q, strict=True) if x > 0],
            columns=["sku", "from_location", "to_location", "period", "quantity"],
        )
        try:
            cost = simulate(net, stock, t)["total_cost"]
        except ValueError:  # ships more than the donor has then
            continue
        if cost < best - 1e-12:
            best, plan = cost, t
    return best, plan


def solve(net: Network, stock: np.ndarray, departures: tuple[int, ...] = (0,)):
    return optimum_plan(
        net.keys, stock, net.future, net.period_days, net.items, net.lanes, HOLDING_RATE, 30.0, departures=departures
    )


def three_stores() -> tuple[Network, np.ndarray]:
    # S1 has 6 and sells 1 a day (3 to spare); S2 has none and sells 2 from day 1; S3 has 1 and
    # sells 1, 2, 2: more is short than S1 spares, so who gets what and when matters; S2 -> S3 is
    # cheaper than S1 -> S3 per unit, so forwarding through S2 is a plan to beat
    net = network(
        [[1.0] * 3, [1.0] * 3, [1.0] * 3],
        [[1.0, 1.0, 1.0], [0.0, 2.0, 2.0], [1.0, 2.0, 2.0]],
        ["S1", "S2", "S3"],
        [("S1", "S2", 0.5, 1.0, 1), ("S1", "S3", 0.5, 1.0, 1), ("S2", "S3", 0.2, 0.5, 1)],
    )
    return net, np.array([6.0, 0.0, 1.0])


def test_exact_optimum_equals_a_brute_force_over_every_dated_plan() -> None:
    net, stock = three_stores()
    opt = solve(net, stock, (0, 1))
    # every plan shipping 0-3 units on each of the 3 lanes on day 0 or day 1 (S2 has nothing to
    # ship on day 0): 4^5 plans, forwarding S1 -> S2 -> S3 included
    best, _ = brute_force(net, stock, [0, 1], range(4))
    assert opt.cost == pytest.approx(best, abs=1e-9)
    assert opt.cost_bound <= opt.cost + 1e-9 and opt.cost_bound == pytest.approx(best, abs=1e-6)
    # the optimum's plan, simulated, costs what the model says; here shipping on day 0 is as good
    # as any dated plan (nothing is replenished): the one-shot optimum is the same
    assert simulate(net, stock, opt.transfers)["total_cost"] == pytest.approx(opt.cost, abs=1e-9)
    assert opt.transfers["quantity"].sum() > 0
    assert solve(net, stock).cost == pytest.approx(best, abs=1e-9)


def test_exact_optimum_forwards_when_that_is_cheapest() -> None:
    # S1 has 4 to spare, S3 runs short from day 2; S1 -> S3 does not exist, S1 -> S2 -> S3 does:
    # only a forwarded unit can save S3's sales, and the optimum over two departure days finds it
    net = network(
        [[1.0] * 3] * 3,
        [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 2.0]],
        ["S1", "S2", "S3"],
        [("S1", "S2", 0.2, 0.5, 1), ("S2", "S3", 0.2, 0.5, 1)],
    )
    stock = np.array([6.0, 0.0, 0.0])
    opt = solve(net, stock, (0, 1))
    best, _ = brute_force(net, stock, [0, 1], range(4))
    assert opt.cost == pytest.approx(best, abs=1e-9)
    assert forwarded_units(opt.transfers) == 2 and sorted(opt.transfers["period"]) == [0, 1]
    assert simulate(net, stock, opt.transfers)["total_cost"] == pytest.approx(opt.cost, abs=1e-9)
    # shipping on day 0 only, nothing reaches S3
    assert solve(net, stock, (0,)).transfers.empty


def test_exact_optimum_weekly_and_holding_decides_between_equal_margins() -> None:
    # weekly periods, 7-day lanes: S2 can be served from week 1 by S1 or S3, who both have spare;
    # S1's lane is dearer per unit but its shipment fixed cost is lower: the trade-off is exact
    net = network(
        [[0.0] * 2] * 3,
        [[1.0, 0.0, 1.0], [0.0, 3.0, 4.0], [0.0, 1.0, 0.0]],
        ["S1", "S2", "S3"],
        [("S1", "S2", 0.9, 0.5, 7), ("S3", "S2", 0.2, 3.0, 7)],
        period_days=7,
    )
    stock = np.array([5.0, 0.0, 5.0])
    best, _ = brute_force(net, stock, [0, 1], range(4))
    one_shot, _ = brute_force(net, stock, [0], range(8))
    assert solve(net, stock, (0, 1)).cost == pytest.approx(min(best, one_shot), abs=1e-9)
    assert solve(net, stock).cost == pytest.approx(one_shot, abs=1e-9)


def test_exact_optimum_shares_a_lane_fixed_cost_between_skus() -> None:
    # two SKUs short at S1, spare at S2; one lane with a fixed cost that neither SKU's shortage
    # pays alone (margin 3 x 2 units = 6 < 7.5) but both together do
    net = network(
        [[0.0] * 3] * 4,
        [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]],
        ["S1", "S2"],
        [("S2", "S1", 0.1, 7.5, 1)],
        skus=["A", "B"],
    )
    stock = np.array([0.0, 4.0, 0.0, 4.0])
    opt = solve(net, stock, (0, 1))
    best, plan = brute_force(net, stock, [0, 1], range(4), skus=["A", "B"])
    assert opt.cost == pytest.approx(best, abs=1e-9)
    assert sorted(opt.transfers["sku"]) == ["A", "B"] and (opt.transfers["quantity"] == 2).all()
    # alone, one SKU does not pay the shipment
    alone = network([[0.0] * 3] * 2, [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], ["S1", "S2"], [("S2", "S1", 0.1, 7.5, 1)])
    assert solve(alone, np.array([0.0, 4.0])).transfers.empty


def test_no_method_beats_the_optimum_and_the_check_catches_one_that_would() -> None:
    net, stock = three_stores()
    table, notes = replay(net, stock=stock, settings=PlannerSettings(time_limit_seconds=10), replan_every_days=1)
    t = table.set_index("method")
    assert list(t.index) == list(METHODS) and "exact optimum" in notes["optimum"]
    assert (t["total_cost"] >= table.attrs["optimum_cost_bound"] - 1e-9).all()
    assert t.loc["optimum", "captured"] == pytest.approx(1.0)
    assert bound_violations(table, table.attrs["optimum_cost_bound"]) == []
    fake = table.copy()
    fake.loc[fake["method"] == "milp", "total_cost"] = table.attrs["optimum_cost_bound"] - 0.01
    (msg,) = bound_violations(fake, table.attrs["optimum_cost_bound"])
    assert msg.startswith("milp: total cost") and isinstance(BoundViolation("x", fake), AssertionError)


def test_forwarded_units_are_counted() -> None:
    t = pd.DataFrame(
        {
            "sku": ["A", "A", "A"],
            "from_location": ["S1", "S2", "S3"],
            "to_location": ["S2", "S3", "S1"],
            "quantity": [3.0, 2.0, 5.0],
            "period": [0, 1, 0],
        }
    )
    # S2 received 3 on day 0 and shipped 2 on day 1: 2 forwarded; S3 shipped 5 on day 0 before
    # receiving on day 1: not forwarded; S1 shipped on day 0 and received on day 0: counted (3)
    assert forwarded_units(t) == 2 + 3
    assert forwarded_units(t.iloc[:1]) == 0 and forwarded_units(pd.DataFrame()) == 0


def test_unit_values_and_forced_sales() -> None:
    v = unit_values(np.array([3.0]), np.array([0.01]), 3, 7)
    assert v.tolist() == [[pytest.approx(3.21), pytest.approx(3.14), pytest.approx(3.07)]]
    sold = forced_sales(np.array([2.0, 0.0]), np.array([[1.0, 3.0], [1.0, 1.0]]), np.array([[0.0, 1.0], [0.0, 0.0]]))
    assert sold.tolist() == [[1.0, 2.0], [0.0, 0.0]]


def test_units_in_transit_pay_holding() -> None:
    # S2 holds 10 and sells nothing, S1 sells 2 a day from 0; lane S2 -> S1 takes 2 days, 4 days
    net = network([[2.0] * 4, [0.0] * 4], [[2.0] * 4, [0.0] * 4], ["S1", "S2"], [("S2", "S1", 0.5, 1.0, 2)])
    stock = np.array([0.0, 10.0])
    day = 7 * HOLDING_RATE / 365  # holding per unit-day (unit cost 7)
    none = simulate(net, stock, pd.DataFrame())
    assert none["holding_cost"] == pytest.approx(10 * 4 * day)
    moved = pd.DataFrame({"sku": ["A"], "from_location": ["S2"], "to_location": ["S1"], "quantity": [4.0]})
    one = simulate(net, stock, moved)
    # the 4 units leave on day 0, are on the way at the end of days 0 and 1, arrive on day 2 and
    # sell on days 2-3 (2 left at the end of day 2); S2 holds 6 for 4 days
    assert one["holding_cost"] == pytest.approx((4 + 4 + 2 + 0 + 6 * 4) * day)
    # units that arrive after the horizon are held to its end (and never sold)
    late = simulate(net, stock, moved.assign(period=3))
    assert late["holding_cost"] == pytest.approx(10 * 4 * day) and late["lost_units"] == 8
    # the exact optimum prices holding the same way: its model cost is the simulated one
    opt = solve(net, stock)
    assert simulate(net, stock, opt.transfers)["total_cost"] == pytest.approx(opt.cost, abs=1e-9)


def test_a_plan_that_keeps_a_sale_to_ship_later_is_cut_to_what_runs() -> None:
    # S1 holds 2 and sells 1 on day 0; a plan shipping both units on day 1 cannot run: the
    # simulation sells one first, so one unit is left to ship
    net = network([[1.0] * 3] * 2, [[1.0, 0.0, 0.0], [0.0, 0.0, 3.0]], ["S1", "S2"], [("S1", "S2", 0.1, 0.5, 1)])
    plan = pd.DataFrame(
        {"sku": ["A"], "from_location": ["S1"], "to_location": ["S2"], "quantity": [2.0], "period": [1]}
    )
    stock = np.array([2.0, 0.0])
    with pytest.raises(ValueError, match="ships more than the donor has"):
        simulate(net, stock, plan)
    ok, cut = executable(net.keys, stock, net.future, 1, net.lanes, plan)
    assert cut == 1.0 and ok["quantity"].tolist() == [1.0]
    assert simulate(net, stock, ok)["lost_units"] == 2.0
    same, none_cut = executable(net.keys, stock, net.future, 1, net.lanes, plan.assign(quantity=1.0))
    assert none_cut == 0.0 and same["quantity"].tolist() == [1.0]
