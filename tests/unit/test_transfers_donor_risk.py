"""Donor keep ``risk`` (the MILP's default): a donor may give units below its reorder point, down
to its median need, each such unit charged the sales it is expected to lose there.

Checked against the exact expected values (scipy's Poisson, not the solver's piecewise-linear
curves) by brute force over every quantity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import poisson

from pipelines.transfers import Demand, optimal_transfers
from tests.factories import HAND_LOCATIONS, HAND_RUN, lanes, milp_run, policies, policy_rows, priced_items

RUN = HAND_RUN
LOCS = HAND_LOCATIONS

# DC sells 1/day, lead time 7 days (the policy rows'), service level 95%: reorder point = 7 +
# 1.645 sqrt(7) (Poisson); with the 1-day transit its need is Poisson(8), and the spread its
# safety stock implies is the same
ROP = 7.0 + 1.6448536269514722 * np.sqrt(7.0)
NEED = 8.0


def poisson_demand(pol, horizon=14):
    keys = pol[["sku", "location"]].reset_index(drop=True)
    mu = pol["demand_mean"].to_numpy(float)
    return Demand(keys, np.arange(horizon + 1)[None, :] * mu[:, None], deterministic=False, dispersion=np.ones(len(mu)))


def solve(pol, ln, keep, it=None):
    return optimal_transfers(
        pol,
        priced_items(("A", 2.0, 5.0, 1)) if it is None else it,
        LOCS,
        ln,
        RUN,
        14,
        0.0,
        policies=policies(),
        demand=poisson_demand(pol),
        holding_cost_rate=0.0,
        donor_keep=keep,
    ).transfers


def lost(mean: float, stock: float) -> float:
    """E[(X - stock)^+], X ~ Poisson(mean), exactly."""
    k = np.arange(0, int(mean * 10 + 50))
    return float((np.maximum(k - stock, 0) * poisson.pmf(k, mean)).sum())


def exact_value(
    q: float, donor_stock: float, donor_need: float, recv_stock: float, recv_post: float, margin: float, unit: float
) -> float:
    gain = lost(recv_post, recv_stock) - lost(recv_post, recv_stock + q)
    loss = lost(donor_need, donor_stock - q) - lost(donor_need, donor_stock)
    return margin * (gain - loss) - unit * q


def test_a_donor_dips_into_its_safety_stock_for_a_receiver_sure_to_sell() -> None:
    # DC: 16 on hand, reorder point 11.35; S1: 2/day, nothing on hand: 26 units expected after
    # the 1-day transit, so every unit it gets sells
    pol = policy_rows(("A", "S1", 2.0, 0.0, 40.0, 40.0), ("A", "DC", 1.0, 16.0, ROP, ROP))
    ln = lanes(("DC", "S1", 0.1, 0.0, 1, 0, None))
    rule = solve(pol, ln, "reorder_point")
    risk = solve(pol, ln, "risk")
    assert rule["quantity"].tolist() == [3.0]  # 16 - 11.35 - 1 day of transit, whole units
    q = float(risk["quantity"].iloc[0])
    assert 3.0 < q <= 8.0  # below the reorder point, never below the median need (8)
    values = [exact_value(x, 16.0, NEED, 0.0, 26.0, 3.0, 0.1) for x in range(0, 9)]
    best = int(np.argmax(values))
    # the solver's curves are piecewise linear between quantiles: its choice is worth within 1%
    # of the exact optimum, and more than the reorder-point rule's
    assert values[int(q)] >= values[best] - 0.01 * abs(values[best])
    assert values[int(q)] > values[3]
    # the published benefit is net of the donor's expected lost margin (before the lane cost)
    assert risk["expected_benefit"].iloc[0] == pytest.approx(values[int(q)] + 0.1 * q, rel=0.05)
    # the planner reads that the donor goes below its reorder point, and what it may lose
    donor_lost = lost(NEED, 16.0 - q) - lost(NEED, 16.0)
    assert f"DC then keeps {16 - q:g} units, below its reorder point of 11" in risk["explanation_en"].iloc[0]
    assert f"expected to lose {donor_lost:.1f} sales there" in risk["explanation_en"].iloc[0]
    assert "低于其再订货点 11 件" in risk["explanation_zh"].iloc[0]
    assert "reorder point" not in rule["explanation_en"].iloc[0]


def test_a_donor_keeps_its_units_when_the_receiver_would_probably_not_sell_them() -> None:
    # S1 sells 0.05/day: 0.65 expected after arrival, nothing on hand; DC as above with 12 on
    # hand (0.65 above its reorder point: the hard rule gives nothing)
    pol = policy_rows(("A", "S1", 0.05, 0.0, 3.0, 3.0), ("A", "DC", 1.0, 12.0, ROP, ROP))
    ln = lanes(("DC", "S1", 0.1, 0.0, 1, 0, None))
    assert solve(pol, ln, "reorder_point").empty
    risk = solve(pol, ln, "risk")
    values = [exact_value(x, 12.0, NEED, 0.0, 0.65, 3.0, 0.1) for x in range(0, 5)]
    q = float(risk["quantity"].sum())
    assert values[int(q)] >= max(values) - 0.05
    assert q <= 1.0  # S1's first unit sells with p = 0.48, its second with p = 0.14


def test_deterministic_demand_ignores_the_risk_mode() -> None:
    pol = policy_rows(("A", "S1", 2.0, 0.0, 40.0, 40.0), ("A", "DC", 1.0, 16.0, ROP, ROP))
    ln = lanes(("DC", "S1", 0.1, 0.0, 1, 0, None))
    a = milp_run(pol, priced_items(("A", 2.0, 5.0, 1)), ln, donor_keep="risk").transfers
    b = milp_run(pol, priced_items(("A", 2.0, 5.0, 1)), ln, donor_keep="reorder_point").transfers
    assert a["quantity"].tolist() == b["quantity"].tolist() == [3.0]


def test_unknown_donor_keep_is_refused() -> None:
    pol = policy_rows(("A", "S1", 2.0, 0.0, 40.0, 40.0), ("A", "DC", 1.0, 16.0, ROP, ROP))
    with pytest.raises(ValueError, match="donor_keep"):
        solve(pol, lanes(("DC", "S1", 0.1, 0.0, 1, 0, None)), "median")
