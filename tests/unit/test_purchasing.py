"""Purchasing (issue 18): open purchase orders in the inventory position, and the purchasing stage's
proposals after the night's transfers, on hand-computed tiny cases."""

from __future__ import annotations

from datetime import date
from functools import partial

import numpy as np
import pandas as pd
import pytest

from pipelines import contract, validate
from pipelines.config import load_config
from pipelines.context import RunContext, policies_frame
from pipelines.frames import on_order
from pipelines.policy import compute_policy
from pipelines.purchasing import planned_net, purchasing_stage
from tests.factories import items, lead_times, policy_rows, sales, stock, write_stage_inputs

RUN = date(2026, 1, 10)
D = pd.Timestamp
# stock rows: (sku, location, lot, on_hand, in_transit, reserved) on the run date
stock_positions = partial(stock, columns=("sku", "location", "lot", "on_hand", "in_transit", "reserved"), snapshot=RUN)


def forecasts(*rows: tuple[str, str, float]) -> pd.DataFrame:
    """Daily forecast means (the policy reads sku, location, mean)."""
    return pd.DataFrame(rows, columns=["sku", "location", "mean"])


def run_policy(fc, s, it, st, lt, pol, **kw):
    return compute_policy(
        fc, s, it, st, lt, pol, RUN, default_lead_time_days=7.0, default_lead_time_std_days=2.0,
        default_review_period_days=7.0, **kw,
    )  # fmt: skip


def _orders(*rows: tuple[str, str, str, float, str]) -> pd.DataFrame:
    """purchase_orders rows: (po_no, sku, location, open_qty, expected_date)."""
    df = pd.DataFrame(rows, columns=["po_no", "sku", "location", "open_qty", "expected_date"])
    return contract.conform(
        df.assign(supplier="V1", order_date=D("2026-01-02"), expected_date=pd.to_datetime(df["expected_date"])),
        "purchase_orders",
    )


def test_on_order_splits_by_the_lead_time_and_review_horizon() -> None:
    keys = pd.DataFrame({"sku": ["A", "A", "B"], "location": ["S1", "S2", "S1"], "horizon_days": [7.0, 3.0, 7.0]})
    po = _orders(
        ("P1", "A", "S1", 10, "2026-01-08"),  # overdue: still coming, counted
        ("P2", "A", "S1", 5, "2026-01-17"),  # run date + 7: within
        ("P3", "A", "S1", 4, "2026-01-18"),  # one day after: later
        ("P4", "A", "S2", 6, "2026-01-14"),  # S2's horizon is 3 days: later
        ("P5", "C", "S1", 99, "2026-01-11"),  # no policy row: not counted anywhere
    )
    near, far = on_order(keys, po, RUN)
    assert near.tolist() == [15.0, 0.0, 0.0] and far.tolist() == [4.0, 6.0, 0.0]
    none_near, none_far = on_order(keys, po.iloc[:0], RUN)
    assert none_near.tolist() == [0.0] * 3 and none_far.tolist() == [0.0] * 3


def test_policy_counts_purchase_orders_due_in_the_position_and_says_so() -> None:
    fc = forecasts(("A", "S1", 2.0))
    st = stock_positions(("A", "S1", "", 4, 0, 1))
    lt = lead_times(("A", "S1", 3.0, 0.0, 4.0))  # horizon 3 + 4 = 7 days
    pol = policies_frame(load_config())
    po = _orders(("P1", "A", "S1", 20, "2026-01-12"), ("P2", "A", "S1", 30, "2026-01-30"))
    base = run_policy(fc, sales(("A", "S1", "2026-01-09", 2)), items(["A"]), st, lt, pol).iloc[0]
    out = run_policy(fc, sales(("A", "S1", "2026-01-09", 2)), items(["A"]), st, lt, pol, purchase_orders=po)
    a = out.iloc[0]
    assert base["available"] == 3.0 and base["on_order"] == 0.0  # 4 on hand - 1 reserved
    assert a["on_order"] == 20.0 and a["on_order_later"] == 30.0 and a["available"] == 23.0
    assert a["days_of_cover"] == pytest.approx(23.0 / 2.0)
    assert a["reorder_point"] == base["reorder_point"]  # what is on order never changes the target
    assert (
        "including 20 on purchase orders" in a["explanation_en"] and "30 more on purchase orders" in a["explanation_en"]
    )
    assert "采购订单 20" in a["explanation_zh"] and "另有采购订单 30" in a["explanation_zh"]
    assert "on purchase orders" not in base["explanation_en"]


def test_policy_takes_the_suppliers_lead_time_where_none_is_recorded() -> None:
    fc = forecasts(("A", "S1", 1.0), ("B", "S1", 1.0))
    st = stock_positions(("A", "S1", "", 4, 0, 0), ("B", "S1", "", 4, 0, 0))
    lt = lead_times(("A", "S1", 3.0, 1.0, 7.0))  # B has no lead-time row
    src = pd.DataFrame(
        {
            "sku": ["A", "B"],
            "location": ["*", "*"],
            "supplier": ["V1", "V2"],
            "lead_time_days": [9.0, 12.0],
            "lead_time_std_days": [np.nan, 2.0],
        }
    )
    out = run_policy(fc, sales(), items(["A", "B"]), st, lt, policies_frame(load_config()), sourcing=src).set_index(
        "sku"
    )
    assert out.loc["A", "lead_time_days"] == 3.0  # the recorded lead time wins
    assert out.loc["B", "lead_time_days"] == 12.0 and out.loc["B", "lead_time_std_days"] == 2.0
    assert not out.loc["B", "lead_time_defaulted"]


def test_planned_net_counts_transfers_in_and_out() -> None:
    tr = pd.DataFrame(
        {
            "sku": ["A", "A", "B"],
            "from_location": ["DC", "DC", "S1"],
            "to_location": ["S1", "S2", "S2"],
            "quantity": [5.0, 3.0, 2.0],
        }
    )
    net = planned_net(tr).set_index(["sku", "location"])["planned_transfers"].to_dict()
    assert net == {("A", "DC"): -8.0, ("A", "S1"): 5.0, ("A", "S2"): 3.0, ("B", "S1"): -2.0, ("B", "S2"): 2.0}


def _stage(tmp_path, policy: pd.DataFrame, transfers: pd.DataFrame, sourcing: pd.DataFrame) -> RunContext:
    cfg = load_config(overrides={"staging_dir": str(tmp_path / "s"), "output_dir": str(tmp_path / "o")})
    ctx = RunContext(cfg, RUN)
    locs = contract.conform(
        pd.DataFrame(
            {
                "location": ["DC", "S1", "S2"],
                "name": ["仓", "店一", "店二"],
                "type": ["dc", "store", "store"],
                "region": "华东",
                "can_ship": True,
                "can_receive": True,
                "active": [True, True, False],
            }
        ),
        "locations",
    )
    write_stage_inputs(
        ctx,
        "purchasing",
        inventory_policy=policy,
        transfers=transfers,
        sourcing=contract.conform(sourcing, "sourcing"),
        items=items(["A", "B", "C"]).assign(unit_cost=[2.0, 3.0, 4.0], active=[True, True, False]),
        locations=locs,
        policies=policies_frame(cfg),
    )
    return ctx


def test_purchasing_stage_proposes_after_the_nights_transfers(tmp_path) -> None:
    # (sku, location, demand/day, available, reorder point, order-up-to); lead 7 days, review 7 days
    pol = policy_rows(
        ("A", "S1", 1.0, 3.0, 6.0, 20.0),  # at its reorder point, but tonight's transfer brings 12: 15, not due
        ("A", "DC", 1.0, 20.0, 10.0, 40.0),  # gives those 12 away: 8 <= 10, due now
        ("B", "S1", 1.0, 5.0, 7.0, 20.0),  # 5 + 4 on order later = 9: reaches 7 in 2 days, due
        ("B", "DC", 0.0, 0.0, 0.0, 0.0),  # no demand: never bought
        ("B", "S2", 3.0, 0.0, 21.0, 42.0),  # inactive location
        ("C", "S1", 3.0, 0.0, 21.0, 42.0),  # inactive item
    ).assign(on_order_later=[0.0, 0.0, 4.0, 0.0, 0.0, 0.0])
    tr = contract.conform(
        pd.DataFrame(
            {
                "run_date": D(RUN),
                "run_id": "t",
                "sku": ["A"],
                "from_location": ["DC"],
                "to_location": ["S1"],
                "quantity": [12.0],
                "packs": [12],
                "transfer_cost": [5.0],
                "expected_benefit": [50.0],
                "receiver_stockout_date": [D(RUN)],
                "receiver_units_short": [11.0],
                "donor_days_of_cover": [30.0],
                "donor_excess_units": [20.0],
                "arrival_date": [D(RUN) + pd.Timedelta(days=1)],
                "approval_tier": ["planner"],
                "method": ["milp"],
                "explanation_en": ["x"],
                "explanation_zh": ["x"],
            }
        ),
        "transfers",
    )
    src = pd.DataFrame(
        {
            "sku": ["B"],
            "location": ["*"],
            "supplier": ["供应商甲"],
            "lead_time_days": [4.0],
            "lead_time_std_days": [np.nan],
            "moq": [24.0],
            "order_multiple": [6.0],
            "unit_cost": [np.nan],  # the item master's cost applies
            "fixed_order_cost": [30.0],
        }
    )
    ctx = _stage(tmp_path, pol.assign(lead_time_days=7.0, review_period_days=7.0), tr, src)
    res = purchasing_stage(ctx)
    out = ctx.read("purchase_proposals").set_index(["sku", "location"])
    assert res.counts == {"purchase_proposals": 2} and sorted(out.index) == [("A", "DC"), ("B", "S1")]
    a = out.loc[("A", "DC")]  # 20 - 12 = 8 now: up to 40 -> 32; no sourcing row: any quantity, no supplier
    assert a["inventory_position"] == 8.0 and a["planned_transfers"] == -12.0 and a["quantity"] == 32.0
    assert a["order_by"] == D(RUN) and pd.isna(a["supplier"]) and a["unit_cost"] == 2.0 and a["cost"] == 64.0
    assert (
        "12 out in tonight's recommended transfers" in a["explanation_en"] and "今晚建议调出 12" in a["explanation_zh"]
    )
    assert "none recorded" in a["explanation_en"] and "未记录" in a["explanation_zh"]
    b = out.loc[("B", "S1")]  # order in 2 days at 9 - 2 = 7: 20 - 7 = 13 -> MOQ 24 (multiple 6)
    assert b["inventory_position"] == 9.0 and b["on_order"] == 4.0 and b["planned_transfers"] == 0.0
    assert b["order_by"] == D(RUN) + pd.Timedelta(days=2) and b["expected_receipt"] == D(RUN) + pd.Timedelta(days=6)
    assert b["quantity"] == 24.0 and b["supplier"] == "供应商甲" and b["unit_cost"] == 3.0  # the item master's cost
    assert b["cost"] == pytest.approx(24 * 3.0 + 30.0)
    assert "供应商甲" in b["explanation_zh"] and "supplier 供应商甲" in b["explanation_en"]
    assert set(out["run_id"]) == {"test"}
    # the default policies' auto-approve limits (50 units, 2,000): A's 32 units for 64 would be within
    # them, but no supplier is recorded (a planner names one); B's are too, but B is due in two days
    assert out["approval_tier"].to_dict() == {("A", "DC"): "planner", ("B", "S1"): "planner"}


def test_sourcing_and_purchase_order_rules_quarantine_bad_rows() -> None:
    refs = {"items": ["A"], "locations": ["S1"]}
    rules = {(r.rule, r.column) for r in validate.row_rules("sourcing", refs, D(RUN))}
    assert {("known_sku", "sku"), ("known_location", "location"), ("at_least_one", "order_multiple")} <= rules
    assert {("non_negative", "moq"), ("within_bounds", "lead_time_days")} <= rules
    known = next(r for r in validate.row_rules("sourcing", refs, D(RUN)) if r.rule == "known_location")
    assert "*" in known.kwargs["value_set"]  # a row for every location is allowed
    po_rules = {(r.rule, r.column) for r in validate.row_rules("purchase_orders", refs, D(RUN))}
    assert {("known_sku", "sku"), ("known_location", "location"), ("non_negative", "open_qty")} <= po_rules
    assert ("not_in_future", "order_date") in po_rules


def test_tiers_auto_within_the_policy_limits_with_a_supplier_else_planner() -> None:
    from pipelines.purchasing import tiers

    props = pd.DataFrame(
        {
            "sku": ["A", "B", "C", "D", "E"],
            "location": "S1",
            "supplier": ["V1", None, "V1", "V1", "V1"],
            "quantity": [10.0, 10.0, 10.0, 500.0, 10.0],
            "cost": [90.0, 90.0, 2000.0, 900.0, 90.0],
            "order_by": [D(RUN)] * 4 + [D(RUN) + pd.Timedelta(days=2)],
        }
    )
    pos = pd.DataFrame({"sku": ["A", "B", "C", "D", "E"], "location": "S1", "category": "x", "abc_class": "B"})
    pol = pd.DataFrame(
        {"category": ["*"], "abc_class": ["*"], "auto_approve_max_units": [100.0], "auto_approve_max_value": [1000.0]}
    )
    # A within both limits; B has no supplier; C above the value (the order value, not units x cost);
    # D above the units; E within them but due in two days: proposed again then, not bought early
    assert tiers(props, pos, pol, [], RUN).tolist() == ["auto", "planner", "planner", "planner", "planner"]
    assert tiers(props, pos, pol, ["x"], RUN).tolist() == ["planner"] * 5  # a planner category is never automatic
