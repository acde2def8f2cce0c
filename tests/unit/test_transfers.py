"""The greedy transfer matcher on hand-made networks (numbers computed by hand in the comments)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines import contract
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.decisions import DecisionsError, excluded_lanes, parse_decisions, read_decisions, staged_decisions
from pipelines.frames import add_open_transfers
from pipelines.transfers import (
    batches,
    benefit_curves,
    greedy_transfers,
    loss,
    optimal_transfers,
    poisson_loss,
    transfers_stage,
)
from tests.factories import (
    HAND_LOCATIONS,
    HAND_RUN,
    empty_staging,
    lanes,
    locations,
    milp_run,
    policies,
    policy_rows,
    priced_items,
    write_stage_inputs,
)

RUN = HAND_RUN
D = pd.Timestamp


LOCS = HAND_LOCATIONS


def run(pol, it, ln, *, locs=LOCS, coverage=14, floor=0.0, policies_df=None):
    return greedy_transfers(
        pol, it, locs, ln, RUN, coverage, floor, policies=policies() if policies_df is None else policies_df
    )


def test_single_transfer_rounded_down_to_packs_hand_computed() -> None:
    pol = policy_rows(("A", "S1", 2.0, 5.0, 16.0, 30.0), ("A", "DC", 1.0, 200.0, 10.0, 20.0))
    out = run(pol, priced_items(("A", 2.0, 5.0, 6)), lanes(("DC", "S1", 0.5, 6.0, 2, 1, None)))
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
    it = priced_items(("A", 2.0, 10.0, 5))
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
    assert run(pol, priced_items(("A", 2.0, 10.0, 1)), lanes(("S2", "S1", 0.1, 0.0, 1, 1, None))).empty


def test_lane_below_min_units_is_dropped() -> None:
    pol = policy_rows(
        ("A", "S1", 2.0, 5.0, 16.0, 30.0), ("A", "S2", 2.0, 5.0, 16.0, 30.0), ("A", "DC", 0.0, 500.0, 0.0, 0.0)
    )
    ln = lanes(("DC", "S1", 0.1, 0.0, 1, 30, None), ("DC", "S2", 0.1, 0.0, 1, 20, None))
    out = run(pol, priced_items(("A", 2.0, 5.0, 1)), ln)
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
    it = priced_items(("A", 2.0, 10.0, 1), ("B", 2.0, 8.0, 1))
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
    out = run(pol, priced_items(("A", 2.0, 5.0, 1)), ln).set_index("from_location")
    # need 30: DC (cheaper) gives all its 10, S2 the other 20
    assert out["quantity"].to_dict() == {"DC": 10.0, "S2": 20.0}
    # 23 units avoid lost sales in all (28 - 5), counted once: 10 via DC, 13 via S2
    assert out["expected_benefit"].to_dict() == pytest.approx({"DC": 10 * 3.0, "S2": 13 * 3.0})


def test_benefit_below_cost_plus_margin_floor_is_dropped() -> None:
    pol = policy_rows(("A", "S1", 2.0, 5.0, 16.0, 30.0), ("A", "DC", 1.0, 200.0, 10.0, 20.0))
    it, ln = priced_items(("A", 2.0, 5.0, 6)), lanes(("DC", "S1", 0.5, 6.0, 2, 1, None))
    # benefit 69, cost 18
    assert len(run(pol, it, ln, floor=50.0)) == 1
    assert run(pol, it, ln, floor=52.0).empty
    # a lane costing more per unit than the unit margin never helps
    assert run(pol, it, lanes(("DC", "S1", 3.0, 0.0, 2, 1, None))).empty


def test_receiver_already_at_zero_still_gains_from_arrival() -> None:
    pol = policy_rows(("A", "S1", 2.0, 0.0, 16.0, 30.0), ("A", "DC", 0.0, 100.0, 0.0, 0.0))
    it = priced_items(("A", 2.0, 5.0, 1))
    r = run(pol, it, lanes(("DC", "S1", 0.1, 0.0, 3, 1, None))).iloc[0]
    assert r["quantity"] == 30.0 and r["receiver_units_short"] == 28.0
    assert r["receiver_stockout_date"] == D(RUN)
    assert r["expected_benefit"] == pytest.approx((28 - 2 * 3) * 3.0)  # demand from arrival to day 14
    # arriving after the coverage horizon saves nothing
    assert run(pol, it, lanes(("DC", "S1", 0.1, 0.0, 15, 1, None))).empty


def test_approval_tier_by_units_and_value() -> None:
    pol = policy_rows(("A", "S1", 2.0, 5.0, 16.0, 30.0), ("A", "DC", 1.0, 200.0, 10.0, 20.0))
    it, ln = priced_items(("A", 2.0, 5.0, 6)), lanes(("DC", "S1", 0.5, 6.0, 2, 1, None))
    assert run(pol, it, ln, policies_df=policies(max_units=24, max_value=48))["approval_tier"].tolist() == ["auto"]
    assert run(pol, it, ln, policies_df=policies(max_units=23))["approval_tier"].tolist() == ["planner"]
    assert run(pol, it, ln, policies_df=policies(max_value=47.9))["approval_tier"].tolist() == ["planner"]


def test_only_configured_lanes_and_capable_locations() -> None:
    pol = policy_rows(("A", "S1", 2.0, 5.0, 16.0, 30.0), ("A", "DC", 0.0, 100.0, 0.0, 0.0))
    it = priced_items(("A", 2.0, 5.0, 1))
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
    ctx.write("items", priced_items(("A", 2.0, 5.0, 6)))
    ctx.write("locations", LOCS)
    ctx.write("lanes", lanes(("DC", "S1", 0.5, 6.0, 2, 1, None)))
    ctx.write("policies", policies())
    write_stage_inputs(ctx, "transfers")
    res = transfers_stage(ctx)
    assert res.stage == "transfers" and res.counts == {"transfers": 1}
    out = ctx.read("transfers")
    assert out["quantity"].tolist() == [24.0] and set(out["run_id"]) == {"test"}
    assert set(out["run_date"]) == {D(RUN)}


# --------------------------------------------------------------------------------------------
# The MILP (hand-checked optima; deterministic demand makes the benefit exact: margin 3 per unit
# sold after arrival)
# --------------------------------------------------------------------------------------------


CONSOLIDATION_LANES = (("DC", "S1", 0.1, 20.0, 1, 1, None), ("S2", "S1", 0.5, 0.0, 1, 1, None))


def test_milp_consolidation_changes_the_lane() -> None:
    rows = [("A", "S1", 2.0, 0.0, 16.0, 20.0), ("A", "DC", 0.0, 100.0, 0.0, 0.0), ("A", "S2", 0.0, 100.0, 0.0, 0.0)]
    # S1 sells 2/day, has nothing; arrival on day 1 -> 26 units sell before day 14 (benefit 78)
    one = milp_run(policy_rows(*rows), priced_items(("A", 2.0, 5.0, 1)), lanes(*CONSOLIDATION_LANES))
    # alone: DC costs 26 x 0.1 + 20 = 22.6, S2 costs 26 x 0.5 = 13 -> S2
    t = one.transfers
    assert one.method == "milp" and t[["from_location", "quantity"]].values.tolist() == [["S2", 26.0]]
    assert t["transfer_cost"].tolist() == pytest.approx([13.0]) and t["expected_benefit"].tolist() == pytest.approx(
        [78.0]
    )
    assert "gap" in one.notes[0] and t["method"].tolist() == ["milp"]
    both_rows = rows + [(b, *r[1:]) for b in ["B"] for r in rows]
    both = milp_run(
        policy_rows(*both_rows), priced_items(("A", 2.0, 5.0, 1), ("B", 2.0, 5.0, 1)), lanes(*CONSOLIDATION_LANES)
    )
    # together: DC 52 x 0.1 + 20 = 25.2 < S2 52 x 0.5 = 26 (mixing: 20 + 2.6 + 13 = 35.6) -> DC for both
    t2 = both.transfers
    assert t2[["sku", "from_location", "quantity"]].values.tolist() == [["A", "DC", 26.0], ["B", "DC", 26.0]]
    assert t2["transfer_cost"].tolist() == pytest.approx([12.6, 12.6])
    # the greedy takes the lowest cost per unit whatever the fixed cost: DC even for A alone
    g = greedy_transfers(
        policy_rows(*rows), priced_items(("A", 2.0, 5.0, 1)), LOCS, lanes(*CONSOLIDATION_LANES), RUN, 14, 0.0
    )
    assert g["from_location"].tolist() == ["DC"]


def test_milp_slow_lane_counts_only_demand_after_arrival_and_too_late_is_no_candidate() -> None:
    pol = policy_rows(("A", "S1", 2.0, 4.0, 16.0, 20.0), ("A", "DC", 0.0, 100.0, 0.0, 0.0))
    it = priced_items(("A", 2.0, 5.0, 1))
    # arrives on day 10: S1's 4 units ran out on day 2; only days 10..13 (8 units) can be saved
    t = milp_run(pol, it, lanes(("DC", "S1", 0.1, 0.0, 10, 1, None))).transfers
    assert t["quantity"].tolist() == [8.0] and t["expected_benefit"].tolist() == pytest.approx([24.0])
    assert t["receiver_stockout_date"].tolist() == [D("2026-03-03")] and t["arrival_date"].tolist() == [D("2026-03-11")]
    assert t["receiver_units_short"].tolist() == [24.0]
    late = milp_run(pol, it, lanes(("DC", "S1", 0.1, 0.0, 14, 1, None)))
    assert late.transfers.empty and late.method == "none"
    assert "no configured lane from a donor reaches a short receiver within the coverage horizon" in late.notes[0]


def test_milp_whole_packs_round_up_only_when_the_partial_pack_pays() -> None:
    pol = policy_rows(("A", "S1", 2.0, 0.0, 16.0, 40.0), ("A", "DC", 0.0, 100.0, 0.0, 0.0))
    it = priced_items(("A", 2.0, 5.0, 6))
    # 26 units sell. 5 packs (30 units): 78 - 30 x 0.1 = 75 > 4 packs (24): 72 - 2.4 = 69.6
    cheap = milp_run(pol, it, lanes(("DC", "S1", 0.1, 0.0, 1, 1, None))).transfers
    assert cheap[["quantity", "packs"]].values.tolist() == [[30.0, 5]]
    assert cheap["expected_benefit"].tolist() == pytest.approx([78.0])
    # at 1.5 per unit: 5 packs 78 - 45 = 33 < 4 packs 72 - 36 = 36
    dear = milp_run(pol, it, lanes(("DC", "S1", 1.5, 0.0, 1, 1, None))).transfers
    assert dear[["quantity", "packs"]].values.tolist() == [[24.0, 4]]
    # the receiver's need (order-up-to 20 - 0, units short 28) caps it at 4 packs whatever the cost
    capped = policy_rows(("A", "S1", 2.0, 0.0, 16.0, 20.0), ("A", "DC", 0.0, 100.0, 0.0, 0.0))
    assert milp_run(capped, it, lanes(("DC", "S1", 0.1, 0.0, 1, 1, None))).transfers["packs"].tolist() == [4]


def test_milp_lane_minimum_and_capacity() -> None:
    pol = policy_rows(("A", "S1", 2.0, 0.0, 16.0, 20.0), ("A", "DC", 0.0, 100.0, 0.0, 0.0))
    it = priced_items(("A", 2.0, 5.0, 1))
    assert milp_run(pol, it, lanes(("DC", "S1", 0.1, 0.0, 1, 30, None))).transfers.empty  # 26 < minimum 30
    t = milp_run(pol, it, lanes(("DC", "S1", 0.1, 0.0, 1, 1, 10))).transfers
    assert t["quantity"].tolist() == [10.0]


def test_milp_empty_cases_publish_nothing_and_say_why() -> None:
    it = priced_items(("A", 2.0, 5.0, 1))
    pol = policy_rows(("A", "S1", 2.0, 0.0, 16.0, 20.0), ("A", "DC", 2.0, 10.0, 30.0, 40.0))
    short_donor = milp_run(pol, it, lanes(("DC", "S1", 0.1, 0.0, 1, 1, None)))
    assert short_donor.transfers.empty and "no donor has a whole pack to spare" in short_donor.notes[0]
    nobody_short = milp_run(
        policy_rows(("A", "S1", 2.0, 100.0, 16.0, 20.0)), it, lanes(("DC", "S1", 0.1, 0.0, 1, 1, None))
    )
    assert "no receiver is short" in nobody_short.notes[0]
    assert list(nobody_short.transfers.columns) == [c for c in contract.TRANSFERS.names if c != "run_id"]
    # a lane whose fixed cost exceeds everything it could earn: the solver keeps it closed
    closed = milp_run(
        policy_rows(("A", "S1", 2.0, 0.0, 16.0, 20.0), ("A", "DC", 0.0, 100.0, 0.0, 0.0)),
        it,
        lanes(("DC", "S1", 0.1, 500.0, 1, 1, None)),
    )
    assert closed.transfers.empty and closed.method == "milp" and "none pays" in closed.notes[-1]


def test_milp_near_expiry_units_only_where_they_sell_before_expiry() -> None:
    # DC: 30 units in a lot expiring in 5 days, sells 1/day -> 25 will expire; its own need (reorder
    # point 10 + 1 day) leaves 19, all of them expiring: no fresh units to spare.
    pol = policy_rows(("A", "S1", 2.0, 0.0, 16.0, 40.0), ("A", "DC", 1.0, 30.0, 10.0, 20.0))
    stock = contract.conform(
        pd.DataFrame(
            {
                "sku": ["A"],
                "location": ["DC"],
                "snapshot_date": [D(RUN)],
                "lot": ["L1"],
                "expiry_date": [D("2026-03-06")],
                "on_hand": [30.0],
                "in_transit": [0.0],
                "reserved": [0.0],
            }
        ),
        "stock",
    )
    t = milp_run(
        pol, priced_items(("A", 2.0, 5.0, 1)), lanes(("DC", "S1", 0.1, 0.0, 1, 1, None)), stock=stock
    ).transfers
    # S1 sells 2/day from its arrival on day 1 to the expiry on day 5: 8 units
    assert t["quantity"].tolist() == [8.0]
    assert t["expected_benefit"].tolist() == pytest.approx([8 * 3.0 + 8 * 2.0])  # lost sales + write-off avoided
    no_lot = milp_run(pol, priced_items(("A", 2.0, 5.0, 1)), lanes(("DC", "S1", 0.1, 0.0, 1, 1, None))).transfers
    assert no_lot["quantity"].tolist() == [19.0]  # without the lot: its excess 30 - 10 - 1


def test_poisson_benefit_curve_is_concave_and_exact_at_breakpoints() -> None:
    u, slope = benefit_curves(np.array([10.0, 0.5]), np.array([3.0, 0.0]), False)
    assert (np.diff(u, axis=1) >= 0).all()
    for r in range(2):  # slopes decrease over the segments of positive width
        assert (np.diff(slope[r][np.diff(u[r]) > 0]) <= 1e-12).all()
    assert slope.max() <= 1.0 and slope.min() >= 0.0
    from scipy.stats import poisson

    x = np.arange(0, 200)
    for k in range(u.shape[1]):
        exact = (np.maximum(x - 3.0 - u[0, k], 0) * poisson.pmf(x, 10.0)).sum()
        assert poisson_loss(np.array([10.0]), np.array([3.0 + u[0, k]]))[0] == pytest.approx(exact, abs=1e-9)


def test_overdispersed_demand_uses_gamma_loss() -> None:
    from scipy.stats import gamma

    # mean 10, variance 40 (dispersion 4): gamma shape 2.5, scale 4
    x = np.linspace(0, 400, 400_001)
    dens = gamma.pdf(x, 2.5, scale=4.0)
    for c in (0.0, 3.0, 10.0, 25.0):
        exact = np.trapezoid(np.maximum(x - c, 0) * dens, x)
        assert loss(np.array([10.0]), np.array([c]), np.array([4.0]))[0] == pytest.approx(exact, rel=1e-4)
    # dispersion 1: the Poisson loss
    assert (
        loss(np.array([10.0]), np.array([3.0]), np.array([1.0]))[0]
        == poisson_loss(np.array([10.0]), np.array([3.0]))[0]
    )
    # a wider distribution: fewer units are worth their full margin on the first segment
    u1, s1 = benefit_curves(np.array([10.0]), np.array([0.0]), False, np.array([1.0]))
    u4, s4 = benefit_curves(np.array([10.0]), np.array([0.0]), False, np.array([4.0]))
    assert u4[0, -1] > u1[0, -1]  # the p99.5 reaches further


def test_milp_with_poisson_demand_and_approval_by_category() -> None:
    pol = policy_rows(("A", "S1", 2.0, 5.0, 16.0, 30.0), ("A", "DC", 1.0, 200.0, 10.0, 20.0))
    plan = optimal_transfers(
        pol,
        priced_items(("A", 2.0, 5.0, 6)),
        LOCS,
        lanes(("DC", "S1", 0.5, 6.0, 2, 1, None)),
        RUN,
        14,
        0.0,
        policies=policies(),
    )
    t = plan.transfers
    assert len(t) == 1 and t["quantity"].iloc[0] % 6 == 0 and t["approval_tier"].tolist() == ["auto"]
    assert t["receiver_units_short"].iloc[0] == pytest.approx(poisson_loss(np.array([28.0]), np.array([5.0]))[0])
    assert "Lane DC→S1" in t["explanation_en"].iloc[0] and "线路 DC→S1" in t["explanation_zh"].iloc[0]
    ordinary = optimal_transfers(
        pol,
        priced_items(("A", 2.0, 5.0, 6)),
        LOCS,
        lanes(("DC", "S1", 0.5, 6.0, 2, 1, None)),
        RUN,
        14,
        0.0,
        policies=policies(),
        planner_categories=["c1"],
    )
    assert ordinary.transfers["approval_tier"].tolist() == ["planner"]


def _one_short_receiver():
    pol = policy_rows(("A", "S1", 2.0, 5.0, 16.0, 30.0), ("A", "DC", 1.0, 200.0, 10.0, 20.0))
    return pol, priced_items(("A", 2.0, 5.0, 6)), lanes(("DC", "S1", 0.5, 6.0, 2, 1, None))


def test_milp_falls_back_to_greedy_when_no_solution_in_time(monkeypatch) -> None:
    """HiGHS returning no solution (status 1 without one) sends the batch's SKUs to the greedy."""
    from pipelines.transfers import milp

    def no_solution(cand, *a, **k):
        n = len(cand)
        return milp.BlockSolution(np.zeros(n), np.zeros(n), np.zeros(n), None, 1, "Time limit reached")

    monkeypatch.setattr(milp, "solve_block", no_solution)
    pol, it, ln = _one_short_receiver()
    plan = milp.optimal_transfers(pol, it, LOCS, ln, RUN, 14, 0.0, policies=policies())
    assert plan.method == "greedy" and plan.transfers["method"].tolist() == ["greedy"]
    assert plan.notes[0].startswith("greedy: 1 transfer(s) (0 by the MILP)")
    assert "greedy fallback used for their 1 SKU(s)" in plan.notes[1] and "Time limit reached" in plan.notes[1]


def test_milp_fallback_paths_time_up_before_a_batch_gap_too_wide_and_no_fallback() -> None:
    pol, it, ln = _one_short_receiver()
    base = optimal_transfers(pol, it, LOCS, ln, RUN, 14, 0.0, policies=policies())
    assert base.method == "milp" and len(base.transfers) == 1
    # the shared time limit is used up before the first batch starts: the greedy plans its SKUs
    late = optimal_transfers(pol, it, LOCS, ln, RUN, 14, 0.0, policies=policies(), time_limit_seconds=1e-9)
    assert late.method == "greedy" and late.transfers["method"].tolist() == ["greedy"]
    assert "reached before it" in late.notes[1] and "greedy fallback used for their 1 SKU(s)" in late.notes[1]
    # a solution whose gap is above the accepted one is not used (any gap counts as too wide at -1)
    wide = optimal_transfers(pol, it, LOCS, ln, RUN, 14, 0.0, policies=policies(), max_gap=-1.0)
    assert wide.method == "greedy" and "time limit with a gap of" in wide.notes[1]
    # without the fallback those SKUs get nothing, and the notes say so
    none = optimal_transfers(
        pol, it, LOCS, ln, RUN, 14, 0.0, policies=policies(), time_limit_seconds=1e-9, fallback=False
    )
    assert none.transfers.empty and any("no fallback: those SKUs get no transfer" in n for n in none.notes)


def test_batches_split_a_coupled_component_by_sku_and_share_the_lane() -> None:
    rows = [("A", "S1", 2.0, 0.0, 16.0, 20.0), ("A", "DC", 0.0, 100.0, 0.0, 0.0), ("A", "S2", 0.0, 100.0, 0.0, 0.0)]
    both_rows = rows + [("B", *r[1:]) for r in rows]
    it = priced_items(("A", 2.0, 5.0, 1), ("B", 2.0, 5.0, 1))
    whole = milp_run(policy_rows(*both_rows), it, lanes(*CONSOLIDATION_LANES))
    # two candidates per batch cut the component (coupled by DC's fixed cost) into one batch per SKU,
    # each charged half of DC's fixed cost: 26 x 0.1 + 10 = 12.6 < S2's 13, so both still use DC
    split = milp_run(policy_rows(*both_rows), it, lanes(*CONSOLIDATION_LANES), batch_candidates=2)
    assert whole.batches == 1 and split.batches == 2
    cols = ["sku", "from_location", "quantity", "transfer_cost"]
    assert split.transfers[cols].values.tolist() == whole.transfers[cols].values.tolist()
    assert whole.transfers[["sku", "from_location"]].values.tolist() == [["A", "DC"], ["B", "DC"]]


def test_a_lane_below_its_minimum_across_batches_is_dropped() -> None:
    # DC -> S1 needs 30 units a shipment. Together A (26 units) and B (13, margin 0.5) reach it;
    # cut into one batch per SKU, B does not pay for its share alone, and A's 26 stay below 30
    rows = [
        ("A", "S1", 2.0, 0.0, 16.0, 20.0),
        ("B", "S1", 1.0, 0.0, 8.0, 10.0),
        *[(s, loc, 0.0, 100.0, 0.0, 0.0) for s in "AB" for loc in ("DC", "S2")],
    ]
    it = priced_items(("A", 2.0, 5.0, 1), ("B", 2.0, 2.5, 1))
    ln = lanes(("DC", "S1", 0.1, 20.0, 1, 30, None), ("S2", "S1", 0.9, 0.0, 1, 1, None))
    whole = milp_run(policy_rows(*rows), it, ln)
    assert whole.transfers[["sku", "from_location", "quantity"]].values.tolist() == [
        ["A", "DC", 26.0],
        ["B", "DC", 13.0],
    ]
    split = milp_run(policy_rows(*rows), it, ln, batch_candidates=2)
    assert split.batches == 2 and split.transfers.empty
    assert any("dropped: their lane's total stayed below its minimum across batches" in n for n in split.notes)


def test_batch_ids_and_lane_scales() -> None:
    c = pd.DataFrame(
        {
            "sku": ["A", "A", "B"],
            "from_location": ["DC", "S2", "DC"],
            "to_location": "S1",
            "fixed_cost_per_shipment": [10.0, 0.0, 10.0],
            "min_units": 0,
            "capacity": np.inf,
            "pack_size": 1,
            "ub_packs": [5.0, 5.0, 15.0],
        }
    )
    batch, scale = batches(c, 2)  # one component (DC's fixed cost) of 3 rows, cut by SKU
    assert batch.tolist() == [0, 0, 1] and scale.tolist() == pytest.approx([0.25, 1.0, 0.75])
    b2, _ = batches(c.assign(fixed_cost_per_shipment=0.0), 2)
    assert b2.tolist() == [0, 0, 1]  # independent SKUs, packed by size


# --------------------------------------------------------------------------------------------
# Planner decisions read by the next run
# --------------------------------------------------------------------------------------------


def write_decisions(path, rows) -> None:
    pd.DataFrame(rows, columns=["run_date", "sku", "from_location", "to_location", "decision", "quantity"]).to_csv(
        path, index=False
    )


def test_decisions_approved_in_transit_rejected_cooled_down(tmp_path) -> None:
    pol = policy_rows(("A", "S1", 2.0, 0.0, 16.0, 20.0), ("A", "DC", 0.0, 100.0, 0.0, 0.0))
    ln = lanes(("DC", "S1", 0.1, 0.0, 3, 1, None))
    f = tmp_path / "decisions.csv"
    totals = pol[["sku", "location", "on_hand", "in_transit"]].assign(reserved=0.0, available=pol["available"])
    # an open order of 20 units, not shipped yet: in transit at S1, reserved at DC
    on_way = pd.DataFrame({"sku": ["A"], "from_location": ["DC"], "to_location": ["S1"], "quantity": [20.0]})
    got = add_open_transfers(totals, on_way).set_index("location")
    assert got.loc["S1", ["in_transit", "available"]].tolist() == [20.0, 20.0]
    assert got.loc["DC", ["on_hand", "reserved", "available"]].tolist() == [100.0, 20.0, 80.0]
    # rejected 13 days ago with a 14-day cooldown: excluded; 14 days ago: proposed again
    write_decisions(f, [["2026-02-16", "A", "DC", "S1", "reject", ""]])
    excl = excluded_lanes(staged_decisions(read_decisions(f)), RUN, 14)
    assert excl.values.tolist() == [["A", "DC", "S1"]]
    plan = milp_run(pol, priced_items(("A", 2.0, 5.0, 1)), ln, exclude=excl)
    assert plan.transfers.empty
    write_decisions(f, [["2026-02-15", "A", "DC", "S1", "reject", ""]])
    excl = excluded_lanes(staged_decisions(read_decisions(f)), RUN, 14)
    assert excl.empty and len(milp_run(pol, priced_items(("A", 2.0, 5.0, 1)), ln, exclude=excl).transfers) == 1


def test_decisions_file_errors_name_column_rule_and_line(tmp_path) -> None:
    f = tmp_path / "d.csv"
    write_decisions(f, [["2026-02-27", "A", "DC", "S1", "approve", "5"], ["2026-02-27", "B", "DC", "S1", "maybe", "5"]])
    parsed = parse_decisions(f)
    assert parsed.rows["sku"].tolist() == ["A"]  # the good row is kept
    assert [str(p) for p in parsed.problems] == [
        "line 3: column 'decision' rule 'approve or reject (批准 / 拒绝)' fails (value 'maybe')"
    ]
    write_decisions(f, [["2026-02-27", "A", "DC", "S1", "approve", ""]])
    assert [(p.column, p.rule) for p in parse_decisions(f).problems] == [("quantity", "a number > 0 for approve")]
    write_decisions(f, [["27/02/2026", "A", "DC", "S1", "reject", ""]])
    assert read_decisions(f).empty
    assert parse_decisions(f).problems[0].column == "run_date"
    pd.DataFrame({"sku": ["A"]}).to_csv(f, index=False)
    with pytest.raises(DecisionsError, match="missing column"):
        read_decisions(f)


def test_transfers_stage_reads_decisions_and_says_why_nothing(tmp_path) -> None:
    f = tmp_path / "decisions.csv"
    write_decisions(f, [["2026-02-25", "A", "DC", "S1", "reject", ""]])
    cfg = load_config(
        overrides={
            "staging_dir": str(tmp_path / "s"),
            "output_dir": str(tmp_path / "o"),
            "transfers": {"reject_cooldown_days": 7},
        }
    )
    ctx = RunContext(cfg, RUN)
    ctx.write_json("run", {"run_id": "test"})
    ctx.write("inventory_policy", policy_rows(("A", "S1", 2.0, 5.0, 16.0, 30.0), ("A", "DC", 1.0, 200.0, 10.0, 20.0)))
    ctx.write("items", priced_items(("A", 2.0, 5.0, 6)))
    ctx.write("locations", LOCS)
    ctx.write("lanes", lanes(("DC", "S1", 0.5, 6.0, 2, 1, None)))
    ctx.write("policies", policies())
    write_stage_inputs(ctx, "transfers", decisions=staged_decisions(read_decisions(f)))
    res = transfers_stage(ctx)
    assert res.counts == {"transfers": 0} and ctx.read("transfers").empty
    assert any("no transfer: no configured lane" in n for n in res.notes)
    assert any("1 rejected transfer(s) not proposed again (cooldown 7 days)" in n for n in res.notes)
    greedy_cfg = load_config(
        overrides={
            "staging_dir": str(tmp_path / "s"),
            "output_dir": str(tmp_path / "o"),
            "transfers": {"method": "greedy"},
        }
    )
    greedy_ctx = RunContext(greedy_cfg, RUN)
    res2 = transfers_stage(greedy_ctx)  # the rejection holds for the greedy too, before allocation
    assert res2.counts == {"transfers": 0} and res2.notes[0].startswith("greedy: 0 transfer(s)")
    greedy_ctx.write("decisions", empty_staging("decisions"))
    res3 = transfers_stage(greedy_ctx)
    assert res3.counts == {"transfers": 1} and res3.notes[0].startswith("greedy: 1 transfer(s)")


def test_decisions_file_with_the_attachments_translated_headers(tmp_path) -> None:
    """A planner fills in a decision column on the digest's attachment: its Chinese (or English)
    headers are read as the column codes."""
    f = tmp_path / "d.csv"
    header = "运行日期,商品编码,调出地点,调入地点,决定,调拨数量(件),说明\n"
    f.write_text(header + "2026-02-27,A,DC,S1,批准,5,x\n", encoding="utf-8-sig")
    got = read_decisions(f)
    assert got[["sku", "from_location", "to_location", "decision", "quantity"]].values.tolist() == [
        ["A", "DC", "S1", "approve", 5.0]
    ]
    f.write_text("Run date,SKU,From,To,Decision,Units to move\n2026-02-27,A,DC,S1,reject,\n", encoding="utf-8")
    assert read_decisions(f)["decision"].tolist() == ["reject"]


def test_a_line_costing_more_than_it_brings_names_the_shipment_it_rides_in() -> None:
    from pipelines import explain

    base = {
        "sku": "A", "from_location": "DC", "to_location": "S1", "pack_size": 1, "receiver_stockout_date": pd.NaT,
        "receiver_units_short": 10.0, "donor_days_of_cover": 30.0, "donor_excess_units": 50.0, "transit_days": 2,
        "arrival_date": pd.Timestamp("2026-03-03"), "cost_per_unit": 0.5, "fixed_cost_per_shipment": 100.0,
    }  # fmt: skip
    # the lane's 100 shared by units: 80 units carry 80, 20 units carry 20
    df = pd.DataFrame(
        [
            {**base, "quantity": 80.0, "packs": 80, "transfer_cost": 120.0, "expected_benefit": 400.0},
            {**base, "sku": "B", "quantity": 20.0, "packs": 20, "transfer_cost": 30.0, "expected_benefit": 25.0},
        ]
    )
    en, zh = explain.transfer_sentences(df, 14)
    assert "rides in" not in en[0]
    assert en[1].endswith(
        "On its own this line costs more than it brings (30.00 against 25.00: freight 10.00 plus 20.00, its share by"
        " units of the lane's 100.00 shipment cost); it rides in the DC→S1 shipment with 1 other line(s), which all"
        " together bring 425.00 against 150.00."
    )
    assert "整车合计收益 425.00，成本 150.00" in zh[1]
