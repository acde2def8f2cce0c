"""The product's planner inside the replay (pipelines/eval/planner.py): the inputs it builds for
the product functions at weekly grain, the nightly forecaster at the data's grain, the perfect
forecast, and that a plan goes through the product's policy and transfers code."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines.eval.planner import (
    Epoch,
    PlannerSettings,
    daily_sales,
    nightly_forecasts,
    product_planner,
    realised_forecasts,
    stock_snapshot,
)
from pipelines.eval.replay import Network, _items, _lanes, _locations


def weekly(history: list, future: list) -> Network:
    keys = pd.DataFrame({"sku": ["A", "A"], "location": ["W1", "W2"]})
    lanes = _lanes(
        pd.DataFrame(
            {
                "from_location": ["W1", "W2"],
                "to_location": ["W2", "W1"],
                "cost_per_unit": 1.0,
                "fixed_cost_per_shipment": 5.0,
                "transit_days": 7,
            }
        )
    )
    return Network(
        "w",
        keys,
        np.array(history, float),
        np.array(future, float),
        7,
        date(2023, 12, 4),
        _items(np.array(["A"]), np.array([20.0]), np.array(["c"])),
        _locations(["W1", "W2"], ["r", "r"]),
        lanes,
    )


def epoch(net: Network, on_hand: list[float], period: int = 0) -> Epoch:
    hist = np.concatenate([net.history, net.future[:, :period]], axis=1)
    return Epoch(period, date(2023, 12, 4), np.array(on_hand), np.zeros(2), hist, net.future.shape[1] - period)


def test_weekly_sales_are_spread_over_the_days_of_their_week() -> None:
    net = weekly([[7.0, 14.0], [0.0, 7.0]], [[7.0] * 4, [0.0] * 4])
    s = daily_sales(net, net.history, date(2023, 12, 4))
    w1 = s[s["location"] == "W1"].sort_values("date")
    assert len(w1) == 14 and w1["quantity"].tolist() == [1.0] * 7 + [2.0] * 7
    assert w1["date"].min() == pd.Timestamp("2023-11-20") and w1["date"].max() == pd.Timestamp("2023-12-03")
    assert (w1["revenue"] == 20.0 * w1["quantity"]).all()
    # W2 sold nothing in its first week: no rows there
    assert s[s["location"] == "W2"]["date"].min() == pd.Timestamp("2023-11-27")


def test_nightly_forecaster_at_weekly_grain_and_the_perfect_forecast() -> None:
    rng = np.random.default_rng(0)
    hist = rng.poisson(14.0, (2, 9)).astype(float)
    net = weekly(hist.tolist(), [[14.0, 0.0, 7.0, 21.0], [7.0, 7.0, 7.0, 7.0]])
    ep = epoch(net, [10.0, 10.0])
    f = nightly_forecasts(
        net, ep, daily_sales(net, ep.history, ep.run_date), stock_snapshot(net, ep), PlannerSettings().forecast
    )
    # 4 weeks ahead, one row per day: each week's mean spread evenly, a level near 2 a day
    w1 = f[f["location"] == "W1"].sort_values("horizon")
    assert w1["horizon"].tolist() == list(range(1, 29)) and w1["run_date"].iloc[0] == pd.Timestamp("2023-12-04")
    week = w1["mean"].to_numpy().reshape(4, 7)
    assert np.allclose(week, week[:, :1]) and 1.0 < week.mean() < 3.0
    assert w1["model"].iloc[0] not in ("", "realised")
    # the perfect forecast on week 1: the realised demand of weeks 1-3, per day
    r = realised_forecasts(net, epoch(net, [10.0, 10.0], period=1))
    r1 = r[r["location"] == "W1"].sort_values("horizon")["mean"].to_numpy()
    assert len(r1) == 21 and r1[:7].tolist() == [0.0] * 7 and r1[7:14].tolist() == pytest.approx([1.0] * 7)


def test_the_product_planner_moves_stock_to_a_short_warehouse() -> None:
    # W1 has no stock and sells 14 a week; W2 holds 80 and sells 1 a week
    net = weekly([[14.0] * 6, [1.0] * 6], [[14.0] * 4, [1.0] * 4])
    for forecast in ("nightly", "realised"):
        for method in ("milp", "greedy"):
            plan = product_planner(net, method, PlannerSettings(time_limit_seconds=10), forecast)
            step = plan(epoch(net, [0.0, 80.0]))
            t = step.transfers
            assert t[["from_location", "to_location"]].values.tolist() == [["W2", "W1"]], (method, forecast)
            # W1 can be served from week 1 on (7-day lane): 3 weeks of demand, not much more
            assert 30 <= t["quantity"].sum() <= 60, (method, forecast, t["quantity"].sum())
    with pytest.raises(ValueError, match="unknown planner"):
        product_planner(net, "lp", PlannerSettings())
