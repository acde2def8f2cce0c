"""Stockout risk, slow movers, excess and FEFO near-expiry alerts on hand-made frames."""

from __future__ import annotations

from functools import partial

import pandas as pd
import pytest

from pipelines import contract
from pipelines.alerts import alerts_stage, expiring_units
from pipelines.alerts import compute_alerts as compute_listed
from pipelines.config import load_config
from pipelines.context import RunContext
from tests.factories import HAND_RUN, items, lanes, policies, policy_rows, sales, stock

RUN = HAND_RUN
D = pd.Timestamp

# items cost 2.0 and sell at 5.0 unless a test says otherwise; stock rows carry lots and expiry dates
alert_items = partial(items, unit_cost=2.0, unit_price=5.0)
lot_stock = partial(stock, columns=("sku", "location", "lot", "expiry_date", "on_hand"), snapshot=RUN)
# the hand-made values are small: list every alert, however little is at risk
compute_alerts = partial(compute_listed, materiality=0.0)


# a sale long ago, so the history reaches back more than the slow-mover threshold
OLD = ("Z", "X", "2025-01-01", 1.0)


def test_stockout_risk_hand_computed() -> None:
    p = policy_rows(
        {"sku": "A", "location": "S1", "demand_mean": 2.0, "reorder_point": 16.0, "on_hand": 5.0, "available": 5.0},
        {"sku": "A", "location": "S2", "demand_mean": 2.0, "reorder_point": 16.0, "on_hand": 15.0, "available": 15.0},
    )
    out = compute_alerts(
        p,
        lot_stock(),
        sales(OLD, ("A", "S1", "2026-02-28", 1), ("A", "S2", "2026-02-28", 1)),
        alert_items(["A"]),
        policies(),
        RUN,
    )
    a = out[out["alert_type"] == "stockout_risk"]
    assert a["location"].tolist() == ["S1"]  # S2: 15 / 2 = 7 days, not before the 7-day lead time
    r = a.iloc[0]
    assert r["event_date"] == D("2026-03-03")  # floor(5 / 2) = 2 days
    assert r["units"] == pytest.approx(2.0 * 7 - 5)
    assert r["value_at_risk"] == pytest.approx(9 * 5.0)
    # 2 days away ("high" by date), but only 45 at risk: below MATERIAL_VALUE, so "low"
    assert (r["severity"], r["action"], r["lot"]) == ("low", "expedite_or_transfer", "")
    assert r["explanation_en"] == (
        "On hand 5 (available 5), forecast 2/day, lead time 7 days: stockout expected on 2026-03-03,"
        " 5 days before the next receipt (2026-03-08); 9 units short over the lead time."
    )
    assert "预计 2026年3月3日 断货" in r["explanation_zh"] and "早 5 天" in r["explanation_zh"]


def test_slow_mover_threshold_and_never_sold() -> None:
    p = policy_rows(
        {"sku": "A", "location": "S1", "on_hand": 10.0, "available": 10.0},
        {"sku": "A", "location": "S2", "on_hand": 10.0, "available": 10.0},
        {"sku": "A", "location": "S3", "on_hand": 4.0, "available": 4.0},
        {"sku": "A", "location": "S4", "on_hand": 0.0, "available": 0.0},
    )
    s = sales(OLD, ("A", "S1", "2025-12-30", 3), ("A", "S2", "2025-12-31", 3), ("A", "S4", "2025-01-01", 1))
    out = compute_alerts(p, lot_stock(), s, alert_items(["A"], unit_cost=2.0), policies(slow_mover_days=60), RUN)
    slow = out[out["alert_type"] == "slow_mover"].set_index("location")
    # S1: last sale 61 days ago (> 60); S2: 60 days ago, still inside the window; S3 never sold;
    # S4 has nothing on hand
    assert sorted(slow.index) == ["S1", "S3"]
    assert (slow.loc["S1", "units"], slow.loc["S1", "value_at_risk"]) == (10.0, 20.0)
    assert slow.loc["S1", "action"] == "promote_or_transfer" and pd.isna(slow.loc["S1", "event_date"])
    assert "last sale on 2025-12-30, 61 days ago" in slow.loc["S1", "explanation_en"]
    # S3 never sold in 424 days of history (> 3 x 60 days): dead stock
    assert slow.loc["S3", "action"] == "clear_dead_stock"
    assert slow.loc["S3", "explanation_en"].startswith("Dead stock: on hand 4 (8.00 at cost tied up)")
    assert "no sale recorded in 424 days of history" in slow.loc["S3", "explanation_en"]
    assert (
        "呆滞库存" in slow.loc["S3", "explanation_zh"] and "424 天销售记录内无销售" in slow.loc["S3", "explanation_zh"]
    )


def test_never_sold_is_not_flagged_when_history_is_too_short() -> None:
    p = policy_rows({"sku": "A", "location": "S1", "on_hand": 10.0, "available": 10.0})
    s = sales(("B", "S1", "2026-02-01", 1))  # history reaches back 28 days only
    out = compute_alerts(p, lot_stock(), s, alert_items(["A", "B"]), policies(slow_mover_days=60), RUN)
    assert out[out["alert_type"] == "slow_mover"].empty


def test_excess_units_above_max_cover_and_value_severity() -> None:
    p = policy_rows(
        {"sku": "A", "location": "S1", "demand_mean": 1.0, "on_hand": 100.0, "available": 100.0},
        {"sku": "A", "location": "S2", "demand_mean": 1.0, "on_hand": 60.0, "available": 60.0},
        {"sku": "A", "location": "S3", "demand_mean": 1.0, "on_hand": 600.0, "available": 600.0},
        {"sku": "A", "location": "S4", "demand_mean": 0.0, "on_hand": 600.0, "available": 600.0},
    )
    s = sales(*[("A", loc, "2026-02-28", 1) for loc in ("S1", "S2", "S3", "S4")])
    out = compute_alerts(p, lot_stock(), s, alert_items(["A"], unit_cost=10.0), policies(max_cover_days=60), RUN)
    ex = out[out["alert_type"] == "excess"].set_index("location")
    assert sorted(ex.index) == ["S1", "S3"]  # S2 exactly at the maximum; S4 has no demand
    assert (ex.loc["S1", "units"], ex.loc["S1", "value_at_risk"], ex.loc["S1", "severity"]) == (40.0, 400.0, "low")
    assert (ex.loc["S3", "units"], ex.loc["S3", "value_at_risk"], ex.loc["S3", "severity"]) == (540.0, 5400.0, "high")
    assert set(ex["action"]) == {"transfer_out"}
    assert "40 units in excess" in ex.loc["S1", "explanation_en"]


def test_fefo_expiring_units_hand_computed() -> None:
    lots = pd.DataFrame(
        {
            "sku": "A",
            "location": "S1",
            "lot": ["L2", "L0", "L3", "L1"],
            "expiry_date": [D("2026-03-06"), D("2026-02-28"), D("2026-03-21"), D("2026-03-04")],
            "on_hand": [10.0, 7.0, 5.0, 4.0],
            "demand_mean": 2.0,
        }
    )
    got = expiring_units(lots, RUN).set_index("lot")
    # FEFO at 2/day: L0 expired (all 7); L1 sells 4 of 6 possible in 3 days -> 0; L2 gets 10 - 4 = 6
    # of its 10 in 5 days -> 4 expire; L3 gets 40 - 14 = 26 >= 5 -> 0
    assert got["units_expiring"].to_dict() == {"L0": 7.0, "L1": 0.0, "L2": 4.0, "L3": 0.0}
    assert got["days_to_expiry"].to_dict() == {"L0": -1, "L1": 3, "L2": 5, "L3": 20}
    assert got["expired"].to_dict() == {"L0": True, "L1": False, "L2": False, "L3": False}


def test_near_expiry_alerts_per_lot() -> None:
    p = policy_rows(
        {"sku": "A", "location": "S1", "demand_mean": 2.0, "on_hand": 26.0, "available": 26.0, "reorder_point": 1.0}
    )
    st = lot_stock(
        ("A", "S1", "L0", "2026-02-28", 7.0),
        ("A", "S1", "L1", "2026-03-04", 4.0),
        ("A", "S1", "L2", "2026-03-06", 10.0),
        ("A", "S1", "L3", "2026-03-21", 5.0),
        ("B", "S1", "", None, 3.0),  # not perishable
        ("C", "S2", "K1", "2026-05-30", 8.0),  # no policy row (e.g. discontinued): nothing sells
    )
    out = compute_alerts(
        p, st, sales(OLD, ("A", "S1", "2026-02-28", 2)), alert_items(["A", "B", "C"], unit_cost=300.0), policies(), RUN
    )
    ne = out[out["alert_type"] == "near_expiry"].set_index("lot")
    assert sorted(ne.index) == ["K1", "L0", "L2"]
    assert (ne.loc["L0", "units"], ne.loc["L0", "value_at_risk"]) == (7.0, 2100.0)
    assert (ne.loc["L0", "action"], ne.loc["L0", "severity"]) == ("write_off", "high")
    assert (ne.loc["L2", "units"], ne.loc["L2", "action"], ne.loc["L2", "severity"]) == (4.0, "promote", "high")
    assert ne.loc["L2", "event_date"] == D("2026-03-06")
    assert (ne.loc["K1", "units"], ne.loc["K1", "severity"]) == (8.0, "low")  # 90 days away
    assert "4 units will not sell in time" in ne.loc["L2", "explanation_en"]
    assert "已于 2026年2月28日 过期" in ne.loc["L0", "explanation_zh"]
    contract.conform(out.assign(run_id="t"), "alerts")
    assert not contract.duplicated_keys(out.assign(run_id="t"), "alerts").any()


def test_alerts_stage_on_tiny_staging(tmp_path) -> None:
    cfg = load_config(overrides={"staging_dir": str(tmp_path / "s"), "output_dir": str(tmp_path / "o")})
    ctx = RunContext(cfg, RUN)
    ctx.write_json("run", {"run_id": "test"})
    ctx.write(
        "inventory_policy",
        policy_rows(
            {"sku": "A", "location": "S1", "demand_mean": 2.0, "reorder_point": 16.0, "on_hand": 5.0, "available": 5.0},
        ),
    )
    ctx.write("stock", lot_stock(("A", "S1", "L1", "2026-02-27", 5.0)))
    ctx.write("sales", sales(("A", "S1", "2026-02-28", 2)))
    ctx.write("items", alert_items(["A"]))
    ctx.write("policies", policies())
    ctx.write("transfers", contract.empty("transfers"))
    ctx.write("lanes", lanes(("S2", "S1", 0.5, 10.0, 2, 0, None)))
    res = alerts_stage(ctx)
    # the stock-out's 45 at risk is listed; nothing falls below the default materiality of 10
    assert res.stage == "alerts" and res.counts == {"alerts": 2, "alerts_below_materiality": 0}
    assert ctx.read_json("alert_noise") == {"below_materiality": {}}
    out = ctx.read("alerts")
    assert out["alert_type"].tolist() == ["near_expiry", "stockout_risk"]
    assert set(out["run_id"]) == {"test"} and set(out["run_date"]) == {D(RUN)}


def policies_with(**extra: float) -> pd.DataFrame:
    return policies().assign(**extra)


def test_dead_stock_threshold_from_policy_row() -> None:
    p = policy_rows(
        {"sku": "A", "location": "S1", "on_hand": 5.0, "available": 5.0},
        {"sku": "A", "location": "S2", "on_hand": 5.0, "available": 5.0},
        {"sku": "A", "location": "S3", "on_hand": 5.0, "available": 5.0},
    )
    # S1 last sold 61 days ago (slow, not dead at 100 days); S2 101 days ago (dead); S3 never sold,
    # history 424 days (dead)
    s = sales(OLD, ("A", "S1", "2025-12-30", 1), ("A", "S2", "2025-11-20", 1))
    out = compute_alerts(p, lot_stock(), s, alert_items(["A"]), policies_with(dead_stock_days=100.0), RUN)
    slow = out[out["alert_type"] == "slow_mover"].set_index("location")
    assert slow["action"].to_dict() == {"S1": "promote_or_transfer", "S2": "clear_dead_stock", "S3": "clear_dead_stock"}
    assert "no sale in the last 100 days: last sale on 2025-11-20, 101 days ago" in slow.loc["S2", "explanation_en"]


def test_excess_above_order_up_to_names_receivers() -> None:
    p = policy_rows(
        # band top 60 x 1 = 60, order-up-to 80: ceiling 80 -> 20 in excess
        {"sku": "A", "location": "S1", "demand_mean": 1.0, "order_up_to": 80.0, "available": 100.0, "on_hand": 100.0},
        {"sku": "A", "location": "S2", "demand_mean": 1.0, "order_up_to": 30.0, "available": 18.0, "on_hand": 18.0},
        {"sku": "A", "location": "S3", "demand_mean": 2.0, "order_up_to": 30.0, "available": 5.0, "on_hand": 5.0},
        {"sku": "A", "location": "S4", "demand_mean": 0.0, "order_up_to": 30.0, "available": 0.0},  # no demand
        {"sku": "B", "location": "S2", "demand_mean": 1.0, "order_up_to": 10.0, "available": 0.0},  # other SKU
    )
    s = sales(*[("A", loc, "2026-02-28", 1) for loc in ("S1", "S2", "S3", "S4")])
    out = compute_alerts(p, lot_stock(), s, alert_items(["A", "B"], unit_cost=10.0), policies(max_cover_days=60), RUN)
    ex = out[out["alert_type"] == "excess"]
    assert ex["location"].tolist() == ["S1"]
    r = ex.iloc[0]
    assert (r["units"], r["value_at_risk"], r["severity"]) == (20.0, 200.0, "low")
    assert r["explanation_en"].endswith("could use it (units needed): S3 (25), S2 (12).")
    assert "可接收地点（所需件数）：S3 (25), S2 (12)" in r["explanation_zh"]


def test_near_expiry_suggests_faster_location() -> None:
    p = policy_rows(
        {"sku": "A", "location": "S1", "demand_mean": 1.0, "on_hand": 10.0, "available": 10.0},
        {"sku": "A", "location": "S2", "demand_mean": 4.0, "on_hand": 0.0, "available": 0.0},
        {"sku": "B", "location": "S1", "demand_mean": 1.0, "on_hand": 10.0, "available": 10.0},
    )
    st = lot_stock(("A", "S1", "L1", "2026-03-06", 10.0), ("B", "S1", "M1", "2026-03-06", 10.0))
    out = compute_alerts(p, st, sales(OLD), alert_items(["A", "B"]), policies(), RUN)
    ne = out[out["alert_type"] == "near_expiry"].set_index("sku")
    # 5 days at 1/day: 5 of 10 expire in both cases
    assert ne["units"].to_dict() == {"A": 5.0, "B": 5.0}
    assert ne.loc["A", "action"] == "transfer_to_faster_location"
    assert "Transfer to S2, which sells 4/day" in ne.loc["A", "explanation_en"]
    assert "调拨至 S2（日销 4）" in ne.loc["A", "explanation_zh"]
    assert ne.loc["B", "action"] == "promote" and "no other location sells it faster" in ne.loc["B", "explanation_en"]


def test_lots_expired_and_future_with_zero_demand() -> None:
    p = policy_rows({"sku": "A", "location": "S1", "demand_mean": 0.0, "on_hand": 9.0, "available": 9.0})
    st = lot_stock(("A", "S1", "OLD", "2026-01-15", 4.0), ("A", "S1", "NEW", "2026-09-01", 5.0))
    out = compute_alerts(p, st, sales(OLD), alert_items(["A"], unit_cost=200.0), policies(), RUN)
    ne = out[out["alert_type"] == "near_expiry"].set_index("lot")
    assert ne["units"].to_dict() == {"NEW": 5.0, "OLD": 4.0}  # nothing sells at 0/day
    assert ne.loc["OLD", "action"] == "write_off" and ne.loc["OLD", "severity"] == "high"
    assert ne.loc["NEW", "action"] == "promote" and ne.loc["NEW", "severity"] == "low"
    assert ne.loc["NEW", "value_at_risk"] == 1000.0
