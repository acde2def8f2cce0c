"""Alerts checked against the night's transfer plan: each names the transfer that resolves it, or
says why none does and what to do instead; severity needs money at risk as well as a date."""

from __future__ import annotations

from functools import partial

import pandas as pd
import pytest

from pipelines import contract
from pipelines.alerts import MATERIAL_VALUE, URGENT_VALUE, compute_alerts
from tests.factories import HAND_RUN, items, lanes, policies, policy_rows, sales, stock, transfer

RUN = HAND_RUN
D = pd.Timestamp
OLD = ("Z", "X", "2025-01-01", 1.0)
alert_items = partial(items, unit_cost=20.0, unit_price=50.0)
lot_stock = partial(stock, columns=("sku", "location", "lot", "expiry_date", "on_hand"), snapshot=RUN)


def plan(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows)) if rows else contract.empty("transfers")


def move(sku: str, frm: str, to: str, qty: float, arrives: str) -> dict:
    return transfer(sku, frm, to, qty, "planner", 100.0, arrival_date=D(arrives))


# S1 runs out of A: 2/day, 5 available, reorder point 16, lead time 7 -> 9 units short, 450 at risk
SHORT = {"sku": "A", "location": "S1", "demand_mean": 2.0, "reorder_point": 16.0, "on_hand": 5.0, "available": 5.0}
# DC holds 60 of A, 44 above its reorder point of 16
DONOR = {"sku": "A", "location": "DC", "demand_mean": 2.0, "reorder_point": 16.0, "on_hand": 60.0, "available": 60.0}


def stockout(p: pd.DataFrame, transfers: pd.DataFrame, lane_rows: pd.DataFrame) -> pd.Series:
    s = sales(OLD, ("A", "S1", "2026-02-28", 1), ("A", "DC", "2026-02-28", 1))
    out = compute_alerts(p, lot_stock(), s, alert_items(["A"]), policies(), RUN, transfers=transfers, lanes=lane_rows)
    contract.conform(out.assign(run_id="t"), "alerts")
    a = out[(out["alert_type"] == "stockout_risk") & (out["location"] == "S1")]
    assert len(a) == 1
    return a.iloc[0]


def test_a_covered_stockout_names_the_transfer_to_approve() -> None:
    r = stockout(
        policy_rows(SHORT, DONOR),
        plan(move("A", "DC", "S1", 10.0, "2026-03-02")),
        lanes(("DC", "S1", 1, 0, 1, 0, None)),
    )
    assert (r["action"], r["plan_reason"], r["plan_units"], r["plan_locations"]) == (
        "approve_transfer",
        "covered",
        10.0,
        "DC",
    )
    assert "covers it: 10 units from DC, first arriving 2026-03-02. Approve the transfer." in r["explanation_en"]
    assert "从 DC 调入 10 件，最早 2026年3月2日 到货。请批准该调拨。" in r["explanation_zh"]


def test_a_partly_covered_stockout_says_expedite_the_rest() -> None:
    r = stockout(
        policy_rows(SHORT, DONOR), plan(move("A", "DC", "S1", 4.0, "2026-03-02")), lanes(("DC", "S1", 1, 0, 1, 0, None))
    )
    assert (r["action"], r["plan_reason"]) == ("approve_transfer_and_expedite", "partly_covered")
    assert "brings 4 of the 9 units short from DC" in r["explanation_en"]


@pytest.mark.parametrize(
    ("donor", "lane_rows", "reason", "words"),
    [
        (
            {**DONOR, "available": 10.0, "on_hand": 10.0},
            [("DC", "S1", 1, 0, 1, 0, None)],
            "no_donor",
            "no other location",
        ),
        (
            DONOR,
            [("S1", "DC", 1, 0, 1, 0, None)],
            "no_lane",
            "no lane reaches this location from one with stock to spare (DC)",
        ),
        (
            DONOR,
            [("DC", "S1", 1, 0, 7, 0, None)],
            "lane_too_slow",
            "takes 7 days, no sooner than a purchase order (7 days)",
        ),
        (DONOR, [("DC", "S1", 1, 0, 2, 0, None)], "not_worth_it", "from DC would cost more than the margin it saves"),
    ],
)
def test_an_uncovered_stockout_says_why_and_to_expedite_the_purchase(donor, lane_rows, reason, words) -> None:
    r = stockout(policy_rows(SHORT, donor), plan(), lanes(*lane_rows))
    assert (r["action"], r["plan_reason"], r["plan_units"], r["plan_locations"]) == (
        "expedite_purchase",
        reason,
        0.0,
        "",
    )
    assert words in r["explanation_en"] and r["explanation_en"].endswith("Expedite the purchase order.")
    assert r["explanation_zh"].endswith("请加急采购。")


def excess(transfers: pd.DataFrame, lane_rows: pd.DataFrame, need: float = 30.0) -> pd.Series:
    p = policy_rows(
        {"sku": "A", "location": "DC", "demand_mean": 1.0, "order_up_to": 30.0, "available": 100.0, "on_hand": 100.0},
        {"sku": "A", "location": "S2", "demand_mean": 1.0, "order_up_to": need, "available": 18.0, "on_hand": 18.0},
    )
    s = sales(*[("A", loc, "2026-02-28", 1) for loc in ("DC", "S2")])
    out = compute_alerts(
        p, lot_stock(), s, alert_items(["A"]), policies(max_cover_days=60), RUN, transfers=transfers, lanes=lane_rows
    )
    ex = out[out["alert_type"] == "excess"]
    assert ex["location"].tolist() == ["DC"]
    return ex.iloc[0]


def test_excess_moved_by_the_plan_or_held_with_the_reason() -> None:
    lane = lanes(("DC", "S2", 1, 0, 1, 0, None))
    r = excess(plan(move("A", "DC", "S2", 12.0, "2026-03-02")), lane)
    # 40 excess (100 - max(30, 60 x 1)); 12 go out
    assert (r["action"], r["plan_reason"], r["plan_units"], r["plan_locations"]) == (
        "approve_transfer",
        "partly_covered",
        12.0,
        "S2",
    )
    assert "moves 12 of the 40 excess units out to S2" in r["explanation_en"]
    assert excess(plan(move("A", "DC", "S2", 40.0, "2026-03-02")), lane)["plan_reason"] == "covered"
    held = excess(plan(), lane)
    assert (held["action"], held["plan_reason"]) == ("stop_ordering", "not_worth_it")
    assert "(S2 (12))" in held["explanation_en"] and "可接收" not in held["explanation_zh"]
    nobody = excess(plan(), lane, need=10.0)
    assert (nobody["action"], nobody["plan_reason"]) == ("stop_ordering", "no_receiver")
    assert excess(plan(), lanes(("S2", "DC", 1, 0, 1, 0, None)))["plan_reason"] == "no_lane"


def expiring(transfers: pd.DataFrame, lane_rows: pd.DataFrame, s2_rate: float = 4.0) -> pd.DataFrame:
    # S1 sells 1/day: of lot L1 (10, expires in 5 days) 5 expire, of L2 (10, in 15 days) 10 - (15 - 10) = 5
    p = policy_rows(
        {"sku": "A", "location": "S1", "demand_mean": 1.0, "on_hand": 20.0, "available": 20.0},
        {"sku": "A", "location": "S2", "demand_mean": s2_rate, "on_hand": 0.0, "available": 0.0},
    )
    st = lot_stock(("A", "S1", "L1", "2026-03-06", 10.0), ("A", "S1", "L2", "2026-03-16", 10.0))
    out = compute_alerts(p, st, sales(OLD), alert_items(["A"]), policies(), RUN, transfers=transfers, lanes=lane_rows)
    return out[out["alert_type"] == "near_expiry"].set_index("lot")


def test_near_expiry_takes_planned_units_first_expiry_first_and_only_if_they_arrive_in_time() -> None:
    lane = lanes(("S1", "S2", 1, 0, 2, 0, None))
    ne = expiring(plan(move("A", "S1", "S2", 7.0, "2026-03-03")), lane)
    assert ne["units"].to_dict() == {"L1": 5.0, "L2": 5.0}
    assert (ne.loc["L1", "plan_units"], ne.loc["L1", "plan_reason"], ne.loc["L1", "action"]) == (
        5.0,
        "covered",
        "approve_transfer",
    )
    assert (ne.loc["L2", "plan_units"], ne.loc["L2", "plan_reason"]) == (2.0, "partly_covered")
    assert ne.loc["L2", "action"] == "approve_transfer_and_promote"
    assert "ship lot L1 first and approve the transfer" in ne.loc["L1", "explanation_en"]
    assert "优先发出批次 L1" in ne.loc["L1", "explanation_zh"]
    # arriving on the expiry day of L1 helps L2 only
    late = expiring(plan(move("A", "S1", "S2", 7.0, "2026-03-06")), lane)
    assert late["plan_units"].to_dict() == {"L1": 0.0, "L2": 5.0}


def test_near_expiry_without_a_plan_says_where_it_could_sell_or_why_nowhere() -> None:
    # S2 sells 4/day over a 2-day lane: of L1 (5 days left) it could sell 4 x 3 = 12 >= 5
    ne = expiring(plan(), lanes(("S1", "S2", 1, 0, 2, 0, None)))
    r = ne.loc["L1"]
    assert (r["action"], r["plan_reason"]) == ("consider_transfer", "receiver_possible")
    assert (
        "S2 could sell about 5 of them before 2026-03-06 over a 2-day lane, worth 100.00 at cost against a freight"
        " of 5.00" in r["explanation_en"]
    )
    # a shipment of its own costing 500 is not worth 100 of stock
    dear = expiring(plan(), lanes(("S1", "S2", 1, 495, 2, 0, None))).loc["L1"]
    assert (dear["action"], dear["plan_reason"]) == ("promote", "not_worth_it")
    assert "the freight (500.00) is not less than their value at cost (100.00)" in dear["explanation_en"]
    slow = expiring(plan(), lanes(("S1", "S2", 1, 0, 6, 0, None))).loc["L1"]
    assert (slow["action"], slow["plan_reason"]) == ("promote", "lane_too_slow")
    assert "takes 6 days or more" in slow["explanation_en"]
    assert expiring(plan(), lanes(("S2", "S1", 1, 0, 2, 0, None))).loc["L1", "plan_reason"] == "no_lane"
    nowhere = expiring(plan(), lanes(("S1", "S2", 1, 0, 2, 0, None)), s2_rate=0.0).loc["L1"]
    assert (nowhere["action"], nowhere["plan_reason"]) == ("promote", "no_receiver_before_expiry")
    assert "no other location sells it fast enough" in nowhere["explanation_en"]


def test_severity_needs_money_as_well_as_a_date() -> None:
    p = policy_rows(SHORT, {**SHORT, "sku": "B"}, {**SHORT, "sku": "C"})
    # 9 units short, 2 days away: by price 100 -> 900 (high), 10 -> 90 (medium), 1 -> 9 (low)
    it = items(["A", "B", "C"], unit_cost=1.0, unit_price=[100.0, 10.0, 1.0])
    s = sales(OLD, *[(k, "S1", "2026-02-28", 1) for k in "ABC"])
    out = compute_alerts(p, lot_stock(), s, it, policies(), RUN, transfers=plan(), lanes=lanes(), materiality=0.0)
    sev = out.set_index("sku")["severity"].to_dict()
    assert (URGENT_VALUE, MATERIAL_VALUE) == (500.0, 50.0)
    assert sev == {"A": "high", "B": "medium", "C": "low"}


def test_a_fraction_of_a_unit_short_is_not_an_alert() -> None:
    # 1/day, 6.6 available, lead time 7: 0.4 units short over the lead time
    p = policy_rows({**SHORT, "demand_mean": 1.0, "available": 6.6, "on_hand": 6.6, "reorder_point": 10.0})
    out = compute_alerts(
        p, lot_stock(), sales(OLD), alert_items(["A"]), policies(), RUN, transfers=plan(), lanes=lanes()
    )
    assert "stockout_risk" not in set(out["alert_type"])


def test_plan_disagreements_finds_an_alert_that_contradicts_the_plan() -> None:
    from pipelines.alerts import plan_disagreements

    transfers = plan(move("A", "DC", "S1", 10.0, "2026-03-02"))
    r = stockout(policy_rows(SHORT, DONOR), transfers, lanes(("DC", "S1", 1, 0, 1, 0, None)))
    good = pd.DataFrame([r])
    assert plan_disagreements(good, transfers).empty
    bad = pd.concat(
        [
            good.assign(plan_units=0.0),  # says approve, names nothing
            good.assign(plan_units=30.0),  # more than the plan moves
            good.assign(plan_locations="S9"),  # a location the plan does not use
            good.assign(alert_type="excess"),  # outbound from S1: the plan has none
        ],
        ignore_index=True,
    )
    got = plan_disagreements(bad, transfers)
    assert got["problem"].tolist() == [
        "approve a transfer the plan does not hold",
        "more planned units than the plan moves",
        "names a location no planned transfer of the SKU goes to or comes from",
        "more planned units than the plan moves",
    ]


def test_alerts_below_materiality_are_counted_not_listed_and_thresholds_come_from_the_policy_row() -> None:
    from pipelines.alerts import compute_alerts_and_noise

    p = policy_rows(SHORT, {**SHORT, "sku": "B"}, {**SHORT, "sku": "C"})
    it = items(["A", "B", "C"], unit_cost=0.5, unit_price=[100.0, 10.0, 1.0])  # 900, 90, 9 at risk
    s = sales(OLD, *[(k, "S1", "2026-02-28", 1) for k in "ABC"])
    listed, noise = compute_alerts_and_noise(p, lot_stock(), s, it, policies(), RUN, transfers=plan(), lanes=lanes())
    assert sorted(listed["sku"]) == ["A", "B"]
    assert noise.to_dict("records") == [{"alert_type": "stockout_risk", "alerts": 1, "value_at_risk": 9.0}]
    # a policy row raising the bar: "high" from 1,000 and nothing listed under 100
    strict = policies().assign(alert_urgent_value=1000.0, alert_materiality=100.0)
    listed, noise = compute_alerts_and_noise(p, lot_stock(), s, it, strict, RUN, transfers=plan(), lanes=lanes())
    assert listed.set_index("sku")["severity"].to_dict() == {"A": "medium"}
    assert noise["alerts"].tolist() == [2]
    with pytest.raises(TypeError, match="unknown threshold"):
        compute_alerts_and_noise(p, lot_stock(), s, it, policies(), RUN, high=1.0)
