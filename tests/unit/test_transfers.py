"""The greedy transfer matcher on hand-made networks (numbers computed by hand in the comments)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines import contract
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.transfers import greedy_transfers, transfers_stage

RUN = date(2026, 3, 1)
D = pd.Timestamp


def policy_rows(*rows: tuple) -> pd.DataFrame:
    """(sku, location, mu, available, reorder_point, order_up_to[, in_transit])"""
    recs = []
    for r in rows:
        sku, loc, mu, avail, rop, out = r[:6]
        transit = r[6] if len(r) > 6 else 0.0
        recs.append(
            {
                "run_date": D(RUN),
                "run_id": "t",
                "sku": sku,
                "location": loc,
                "category": "c1",
                "abc_class": "B",
                "demand_mean": mu,
                "demand_std": 0.0,
                "lead_time_days": 7.0,
                "review_period_days": 7.0,
                "service_level": 0.95,
                "safety_stock": 0.0,
                "reorder_point": rop,
                "order_up_to": out,
                "on_hand": avail - transit,
                "in_transit": transit,
                "available": avail,
                "days_of_cover": avail / mu if mu else np.nan,
                "health_band": "healthy",
                "lead_time_defaulted": False,
                "explanation_en": "",
                "explanation_zh": "",
            }
        )
    return contract.conform(pd.DataFrame(recs), "inventory_policy")


def items(*rows: tuple[str, float, float, int]) -> pd.DataFrame:
    """(sku, unit_cost, unit_price, pack_size)"""
    df = pd.DataFrame(rows, columns=["sku", "unit_cost", "unit_price", "pack_size"])
    return contract.conform(
        df.assign(name=df["sku"], name_en=None, category="c1", shelf_life_days=None, abc_override=None, active=True),
        "items",
    )


def locations(**flags: tuple[bool, bool]) -> pd.DataFrame:
    """location=(can_ship, can_receive)"""
    return contract.conform(
        pd.DataFrame(
            {
                "location": list(flags),
                "name": list(flags),
                "type": "store",
                "region": "east",
                "can_ship": [f[0] for f in flags.values()],
                "can_receive": [f[1] for f in flags.values()],
                "active": True,
            }
        ),
        "locations",
    )


def lanes(*rows: tuple) -> pd.DataFrame:
    """(from, to, cost_per_unit, fixed_cost, transit_days, min_units, capacity)"""
    cols = [
        "from_location",
        "to_location",
        "cost_per_unit",
        "fixed_cost_per_shipment",
        "transit_days",
        "min_units",
        "capacity",
    ]
    return contract.conform(pd.DataFrame(rows, columns=cols), "lanes")


def policies(max_units: float = 50.0, max_value: float = 2000.0) -> pd.DataFrame:
    return contract.conform(
        pd.DataFrame(
            {
                "category": ["*"],
                "abc_class": ["*"],
                "service_level": [0.95],
                "min_cover_days": [7.0],
                "max_cover_days": [60.0],
                "slow_mover_days": [60],
                "auto_approve_max_units": [max_units],
                "auto_approve_max_value": [max_value],
            }
        ),
        "policies",
    )


LOCS = locations(DC=(True, False), S1=(True, True), S2=(True, True))


def run(pol, it, ln, *, locs=LOCS, coverage=14, floor=0.0, policies_df=None):
    return greedy_transfers(
        pol, it, locs, ln, RUN, coverage, floor, policies=policies() if policies_df is None else policies_df
    )


def test_single_transfer_rounded_down_to_packs_hand_computed() -> None:
    pol = policy_rows(("A", "S1", 2.0, 5.0, 16.0, 30.0), ("A", "DC", 1.0, 200.0, 10.0, 20.0))
    out = run(pol, items(("A", 2.0, 5.0, 6)), lanes(("DC", "S1", 0.5, 6.0, 2, 1, None)))
    assert len(out) == 1
    r = out.iloc[0]
    # need = 30 - 5 = 25 -> 4 packs of 6 = 24 units
    assert (r["from_location"], r["to_location"], r["quantity"], r["packs"]) == ("DC", "S1", 24.0, 4)
    assert r["transfer_cost"] == pytest.approx(24 * 0.5 + 6.0)
    # units short over 14 days: 28 - 5 = 23 (arrives day 2, before the day-2 stockout); margin 3
    assert r["receiver_units_short"] == pytest.approx(23.0)
    assert r["expected_benefit"] == pytest.approx(23 * 3.0)
    assert r["receiver_stockout_date"] == D("2026-03-03")  # floor(5 / 2)
    assert r["arrival_date"] == D("2026-03-03")
    assert r["donor_days_of_cover"] == pytest.approx(200.0)
    assert r["donor_excess_units"] == pytest.approx(200 - 10 - 1 * 2)
    assert (r["approval_tier"], r["method"]) == ("auto", "greedy")
    assert r["explanation_en"] == (
        "Move 24 units (4 packs of 6) of A from DC to S1: S1 runs out on 2026-03-03 and is 23 units short over"
        " the next 14 days; DC has 200 days of cover and 188 units above its own need. Lane DC→S1, 2-day transit,"
        " arrives 2026-03-03; cost 18.00, expected benefit 69.00."
    )
    assert "从 DC 调拨 24 件 A（4 箱，每箱 6 件）至 S1" in r["explanation_zh"]
    contract.conform(out.assign(run_id="t"), "transfers")


def test_donor_never_goes_below_its_own_need() -> None:
    # donor S2: 40 available, reorder point 20, 2/day over a 2-day transit -> keeps 24, excess 16
    pol = policy_rows(("A", "S1", 2.0, 2.0, 16.0, 32.0), ("A", "S2", 2.0, 40.0, 20.0, 30.0))
    it = items(("A", 2.0, 10.0, 5))
    out = run(pol, it, lanes(("S2", "S1", 0.1, 0.0, 2, 1, None)))
    assert out["quantity"].tolist() == [15.0]  # 16 rounded down to packs of 5
    assert out["donor_excess_units"].tolist() == [16.0]
    assert 40 - out["quantity"].sum() >= 20 + 2 * 2
    # stock still in transit to the donor cannot be shipped: 40 available of which 30 in transit
    pol2 = policy_rows(("A", "S1", 2.0, 2.0, 16.0, 32.0), ("A", "S2", 2.0, 40.0, 20.0, 30.0, 30.0))
    out2 = run(pol2, it, lanes(("S2", "S1", 0.1, 0.0, 2, 1, None)))
    assert out2["quantity"].tolist() == [10.0] and out2["donor_excess_units"].tolist() == [10.0]


def test_short_donor_gives_nothing() -> None:
    pol = policy_rows(("A", "S1", 2.0, 2.0, 16.0, 32.0), ("A", "S2", 2.0, 10.0, 20.0, 30.0))
    assert run(pol, items(("A", 2.0, 10.0, 1)), lanes(("S2", "S1", 0.1, 0.0, 1, 1, None))).empty


def test_lane_below_min_units_is_dropped() -> None:
    pol = policy_rows(
        ("A", "S1", 2.0, 5.0, 16.0, 30.0), ("A", "S2", 2.0, 5.0, 16.0, 30.0), ("A", "DC", 0.0, 500.0, 0.0, 0.0)
    )
    ln = lanes(("DC", "S1", 0.1, 0.0, 1, 30, None), ("DC", "S2", 0.1, 0.0, 1, 20, None))
    out = run(pol, items(("A", 2.0, 5.0, 1)), ln)
    # both receivers get 25 units; only DC->S2 reaches its minimum
    assert out[["to_location", "quantity"]].values.tolist() == [["S2", 25.0]]
    assert np.isnan(out["donor_days_of_cover"].iloc[0])  # a donor with no demand: unlimited cover
    assert "unlimited days of cover" in out["explanation_en"].iloc[0]


def test_lane_capacity_shared_across_skus_and_fixed_cost_pro_rata() -> None:
    pol = policy_rows(
        ("A", "S1", 2.0, 1.0, 16.0, 16.0),
        ("B", "S1", 2.0, 1.0, 16.0, 16.0),
        ("A", "DC", 0.0, 100.0, 0.0, 0.0),
        ("B", "DC", 0.0, 100.0, 0.0, 0.0),
    )
    it = items(("A", 2.0, 10.0, 1), ("B", 2.0, 8.0, 1))
    out = run(pol, it, lanes(("DC", "S1", 0.2, 10.0, 1, 1, 20)))
    got = out.set_index("sku")
    # need 15 each; A (need value 150) before B (120); capacity 20 leaves 5 for B
    assert got["quantity"].to_dict() == {"A": 15.0, "B": 5.0}
    assert got["transfer_cost"].to_dict() == pytest.approx({"A": 15 * 0.2 + 7.5, "B": 5 * 0.2 + 2.5})
    # avoidable: 28 - max(1, 2 * 1) = 26; benefit min(qty, 26) x margin
    assert got["expected_benefit"].to_dict() == pytest.approx({"A": 15 * 8.0, "B": 5 * 6.0})


def test_cheapest_lane_first_then_next_donor() -> None:
    pol = policy_rows(
        ("A", "S1", 2.0, 5.0, 16.0, 35.0), ("A", "DC", 0.0, 10.0, 0.0, 0.0), ("A", "S2", 0.0, 100.0, 0.0, 0.0)
    )
    ln = lanes(("DC", "S1", 0.1, 0.0, 1, 1, None), ("S2", "S1", 0.3, 0.0, 1, 1, None))
    out = run(pol, items(("A", 2.0, 5.0, 1)), ln).set_index("from_location")
    # need 30: DC (cheaper) gives all its 10, S2 the other 20
    assert out["quantity"].to_dict() == {"DC": 10.0, "S2": 20.0}
    # 23 units avoid lost sales in all (28 - 5), counted once: 10 via DC, 13 via S2
    assert out["expected_benefit"].to_dict() == pytest.approx({"DC": 10 * 3.0, "S2": 13 * 3.0})


def test_benefit_below_cost_plus_margin_floor_is_dropped() -> None:
    pol = policy_rows(("A", "S1", 2.0, 5.0, 16.0, 30.0), ("A", "DC", 1.0, 200.0, 10.0, 20.0))
    it, ln = items(("A", 2.0, 5.0, 6)), lanes(("DC", "S1", 0.5, 6.0, 2, 1, None))
    # benefit 69, cost 18
    assert len(run(pol, it, ln, floor=50.0)) == 1
    assert run(pol, it, ln, floor=52.0).empty
    # a lane costing more per unit than the unit margin never helps
    assert run(pol, it, lanes(("DC", "S1", 3.0, 0.0, 2, 1, None))).empty


def test_receiver_already_at_zero_still_gains_from_arrival() -> None:
    pol = policy_rows(("A", "S1", 2.0, 0.0, 16.0, 30.0), ("A", "DC", 0.0, 100.0, 0.0, 0.0))
    it = items(("A", 2.0, 5.0, 1))
    r = run(pol, it, lanes(("DC", "S1", 0.1, 0.0, 3, 1, None))).iloc[0]
    assert r["quantity"] == 30.0 and r["receiver_units_short"] == 28.0
    assert r["receiver_stockout_date"] == D(RUN)
    assert r["expected_benefit"] == pytest.approx((28 - 2 * 3) * 3.0)  # demand from arrival to day 14
    # arriving after the coverage horizon saves nothing
    assert run(pol, it, lanes(("DC", "S1", 0.1, 0.0, 15, 1, None))).empty


def test_approval_tier_by_units_and_value() -> None:
    pol = policy_rows(("A", "S1", 2.0, 5.0, 16.0, 30.0), ("A", "DC", 1.0, 200.0, 10.0, 20.0))
    it, ln = items(("A", 2.0, 5.0, 6)), lanes(("DC", "S1", 0.5, 6.0, 2, 1, None))
    assert run(pol, it, ln, policies_df=policies(max_units=24, max_value=48))["approval_tier"].tolist() == ["auto"]
    assert run(pol, it, ln, policies_df=policies(max_units=23))["approval_tier"].tolist() == ["planner"]
    assert run(pol, it, ln, policies_df=policies(max_value=47.9))["approval_tier"].tolist() == ["planner"]


def test_only_configured_lanes_and_capable_locations() -> None:
    pol = policy_rows(("A", "S1", 2.0, 5.0, 16.0, 30.0), ("A", "DC", 0.0, 100.0, 0.0, 0.0))
    it = items(("A", 2.0, 5.0, 1))
    assert run(pol, it, lanes(("S2", "S1", 0.1, 0.0, 1, 1, None))).empty  # no lane from DC
    no_ship = locations(DC=(False, False), S1=(True, True))
    assert run(pol, it, lanes(("DC", "S1", 0.1, 0.0, 1, 1, None)), locs=no_ship).empty
    empty = run(pol, it, lanes())
    assert empty.empty and list(empty.columns) == [c for c in contract.TRANSFERS.names if c != "run_id"]


def test_transfers_stage_on_tiny_staging(tmp_path) -> None:
    cfg = load_config(overrides={"staging_dir": str(tmp_path / "s"), "output_dir": str(tmp_path / "o")})
    ctx = RunContext(cfg, RUN)
    ctx.write_json("run", {"run_id": "test"})
    ctx.write("inventory_policy", policy_rows(("A", "S1", 2.0, 5.0, 16.0, 30.0), ("A", "DC", 1.0, 200.0, 10.0, 20.0)))
    ctx.write("items", items(("A", 2.0, 5.0, 6)))
    ctx.write("locations", LOCS)
    ctx.write("lanes", lanes(("DC", "S1", 0.5, 6.0, 2, 1, None)))
    ctx.write("policies", policies())
    res = transfers_stage(ctx)
    assert res.stage == "transfers" and res.counts == {"transfers": 1}
    out = ctx.read("transfers")
    assert out["quantity"].tolist() == [24.0] and set(out["run_id"]) == {"test"}
    assert set(out["run_date"]) == {D(RUN)}
