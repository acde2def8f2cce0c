"""KPIs per location x category, per location, per category and for the network (hand-computed)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines import contract
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.kpis import METRICS, compute_kpis, kpis_stage
from tests.factories import insert_decision_rows, transfer_review_rows, write_stage_inputs

RUN = date(2026, 3, 1)
D = pd.Timestamp


def _items() -> pd.DataFrame:
    return contract.conform(
        pd.DataFrame(
            {
                "sku": ["A", "B"],
                "name": ["苹果", "扳手"],
                "name_en": None,
                "category": ["fruit", "tools"],
                "unit_cost": [2.0, 10.0],
                "unit_price": [4.0, 20.0],
                "pack_size": 1,
                "shelf_life_days": None,
                "abc_override": None,
                "active": True,
            }
        ),
        "items",
    )


def _locations() -> pd.DataFrame:
    locs = ["S1", "S2", "S3", "S4"]
    return contract.conform(
        pd.DataFrame(
            {
                "location": locs,
                "name": locs,
                "type": "store",
                "region": "east",
                "can_ship": True,
                "can_receive": True,
                "active": [True, True, True, False],
            }
        ),
        "locations",
    )


def _stock() -> pd.DataFrame:
    return contract.conform(
        pd.DataFrame(
            {
                "sku": ["A", "A", "B", "A"],
                "location": ["S1", "S1", "S1", "S2"],
                "snapshot_date": D(RUN),
                "lot": ["L1", "L2", "", ""],
                "expiry_date": [D("2026-03-05"), None, None, None],
                "on_hand": [6.0, 4.0, 5.0, 20.0],
                "in_transit": 0.0,
                "reserved": 0.0,
            }
        ),
        "stock",
    )


def _policy() -> pd.DataFrame:
    rows = [("A", "S1", 1.0, 10.0, "healthy"), ("B", "S1", 0.5, 0.0, "under"), ("A", "S2", 0.0, 20.0, "no_demand")]
    df = pd.DataFrame(rows, columns=["sku", "location", "demand_mean", "available", "health_band"])
    return contract.conform(
        df.assign(
            run_date=D(RUN),
            run_id="t",
            category="x",
            abc_class="B",
            abc_class_network="B",
            abc_class_location="B",
            xyz_class="X",
            demand_pattern="smooth",
            ss_method="normal",
            demand_std=0.0,
            lead_time_days=7.0,
            review_period_days=7.0,
            service_level=0.95,
            safety_stock=0.0,
            reorder_point=0.0,
            order_up_to=0.0,
            on_hand=df["available"],
            in_transit=0.0,
            days_of_cover=np.nan,
            lead_time_defaulted=False,
            explanation_en="",
            explanation_zh="",
        ),
        "inventory_policy",
    )


def _alerts() -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "alert_type": ["slow_mover", "near_expiry", "stockout_risk"],
            "sku": ["A", "A", "B"],
            "location": ["S2", "S1", "S1"],
            "lot": ["", "L1", ""],
            "value_at_risk": [40.0, 8.0, 99.0],
        }
    )
    return contract.conform(
        df.assign(
            run_date=D(RUN),
            run_id="t",
            severity="low",
            units=1.0,
            event_date=None,
            action="x",
            explanation_en="",
            explanation_zh="",
        ),
        "alerts",
    )


def _transfers() -> pd.DataFrame:
    df = pd.DataFrame(
        {"sku": ["A"], "from_location": ["S2"], "to_location": ["S1"], "quantity": [6.0], "transfer_cost": [3.0]}
    )
    return contract.conform(
        df.assign(
            run_date=D(RUN),
            run_id="t",
            packs=6,
            expected_benefit=12.0,
            receiver_stockout_date=None,
            receiver_units_short=6.0,
            donor_days_of_cover=np.nan,
            donor_excess_units=10.0,
            arrival_date=D(RUN),
            approval_tier="auto",
            method="greedy",
            explanation_en="",
            explanation_zh="",
        ),
        "transfers",
    )


def _accuracy() -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "sku": ["A", "B", "A"],
            "location": ["S1", "S1", "S2"],
            "actual": [10.0, 0.0, 5.0],
            "forecast": [9.0, 4.0, 6.0],
            "wape": [0.2, np.nan, 1.0],
        }
    )
    return contract.conform(
        df.assign(run_date=D(RUN), run_id="t", model="moving_average", window_days=28, bias=np.nan, mase=np.nan),
        "forecast_accuracy",
    )


def _kpis() -> dict[tuple[str, str, str], float]:
    out = compute_kpis(_policy(), _alerts(), _transfers(), _accuracy(), _stock(), _items(), _locations(), RUN)
    contract.conform(out.assign(run_id="t"), "kpis")
    assert not contract.duplicated_keys(out.assign(run_id="t"), "kpis").any()
    return {(r.location, r.category, r.metric): r.value for r in out.itertuples()}


def test_location_category_rows_hand_computed() -> None:
    k = _kpis()
    assert k[("S1", "fruit", "inventory_value")] == 20.0  # (6 + 4) x 2, lots summed
    assert k[("S1", "fruit", "days_of_inventory")] == pytest.approx(20.0 / (1.0 * 2.0))
    assert k[("S1", "fruit", "stockout_rate")] == 0.0
    assert k[("S1", "fruit", "near_expiry_value_share")] == pytest.approx(8.0 / 20.0)
    assert k[("S1", "fruit", "slow_mover_value_share")] == 0.0
    assert k[("S1", "fruit", "band_compliance")] == 1.0
    assert (
        k[("S1", "fruit", "transfers_recommended_count")],
        k[("S1", "fruit", "transfers_recommended_units")],
        k[("S1", "fruit", "transfers_recommended_cost")],
    ) == (1.0, 6.0, 3.0)  # counted at the receiver
    assert k[("S1", "fruit", "forecast_wape")] == pytest.approx(0.2)
    assert k[("S1", "tools", "inventory_value")] == 50.0
    assert k[("S1", "tools", "stockout_rate")] == 1.0  # demand and nothing available
    assert k[("S1", "tools", "band_compliance")] == 0.0
    assert np.isnan(k[("S1", "tools", "forecast_wape")])  # nothing sold
    assert k[("S2", "fruit", "slow_mover_value_share")] == 1.0
    assert np.isnan(k[("S2", "fruit", "days_of_inventory")])  # no forecast demand
    assert np.isnan(k[("S2", "fruit", "stockout_rate")]) and np.isnan(k[("S2", "fruit", "band_compliance")])
    assert k[("S2", "fruit", "transfers_recommended_count")] == 0.0  # the donor


def test_location_and_network_rows_hand_computed() -> None:
    k = _kpis()
    assert k[("S1", "*", "inventory_value")] == 70.0
    assert k[("S1", "*", "days_of_inventory")] == pytest.approx(70.0 / 7.0)
    assert k[("S1", "*", "stockout_rate")] == 0.5
    # S1: |errors| 2 (A) + 4 (B sold nothing: every daily error is the forecast) over 10 sold
    assert k[("S1", "*", "forecast_wape")] == pytest.approx(0.6)
    assert k[("*", "*", "inventory_value")] == 110.0
    assert k[("*", "*", "slow_mover_value_share")] == pytest.approx(40.0 / 110.0)
    assert k[("*", "*", "near_expiry_value_share")] == pytest.approx(8.0 / 110.0)
    assert k[("*", "*", "band_compliance")] == 0.5
    assert k[("*", "*", "forecast_wape")] == pytest.approx(11.0 / 15.0)
    assert k[("*", "*", "transfers_recommended_units")] == 6.0
    assert k[("*", "fruit", "inventory_value")] == 60.0 and k[("*", "tools", "inventory_value")] == 50.0
    # an active location without stock still has its rows; the closed one has none
    assert k[("S3", "*", "inventory_value")] == 0.0 and np.isnan(k[("S3", "*", "slow_mover_value_share")])
    assert not any(key[0] == "S4" for key in k)
    groups = {(loc, cat) for loc, cat, _ in k}
    assert groups == {
        ("S1", "fruit"),
        ("S1", "tools"),
        ("S2", "fruit"),
        ("S1", "*"),
        ("S2", "*"),
        ("S3", "*"),
        ("*", "fruit"),
        ("*", "tools"),
        ("*", "*"),
    }
    assert len(k) == len(groups) * len(METRICS)


def test_kpis_with_nothing_to_report() -> None:
    empty = {t: contract.empty(t) for t in ("inventory_policy", "alerts", "transfers", "forecast_accuracy", "stock")}
    out = compute_kpis(
        empty["inventory_policy"],
        empty["alerts"],
        empty["transfers"],
        empty["forecast_accuracy"],
        empty["stock"],
        _items(),
        _locations(),
        RUN,
    )
    k = {(r.location, r.category, r.metric): r.value for r in out.itertuples()}
    assert k[("*", "*", "inventory_value")] == 0.0 and k[("S1", "*", "transfers_recommended_count")] == 0.0
    assert {loc for loc, _, _ in k} == {"*", "S1", "S2", "S3"}


def test_kpis_stage_on_tiny_staging(tmp_path) -> None:
    cfg = load_config(overrides={"staging_dir": str(tmp_path / "s"), "output_dir": str(tmp_path / "o")})
    ctx = RunContext(cfg, RUN)
    ctx.write_json("run", {"run_id": "test"})
    for name, df in (
        ("inventory_policy", _policy()),
        ("alerts", _alerts()),
        ("transfers", _transfers()),
        ("forecast_accuracy", _accuracy()),
        ("stock", _stock()),
        ("items", _items()),
        ("locations", _locations()),
    ):
        ctx.write(name, df)
    write_stage_inputs(ctx, "kpis")
    res = kpis_stage(ctx)
    assert res.stage == "kpis" and res.counts == {"kpis": 9 * len(METRICS), "decisions": 0, "past_forecasts": 0}
    out = ctx.read("kpis")
    assert set(out["run_id"]) == {"test"} and set(out["run_date"]) == {D(RUN)}
    net = out[(out["location"] == "*") & (out["category"] == "*") & (out["metric"] == "inventory_value")]
    assert net["value"].tolist() == [110.0]


# ---------------------------------------------------------------------------------------------
# turnover, approved transfers, accuracy of the last horizon (published forecasts vs sales)
# ---------------------------------------------------------------------------------------------

R = D(RUN) - pd.Timedelta(days=28)  # the run whose 28-day horizon has just passed


def _sales() -> pd.DataFrame:
    rows = [
        ("A", "S1", R, 14.0, 0.0),  # in the turnover window and day 1 of the past horizon
        ("A", "S1", D(RUN) - pd.Timedelta(days=1), 14.0, 0.0),
        ("A", "S1", R - pd.Timedelta(days=1), 100.0, 0.0),  # before the window: not counted
        ("B", "S1", D(RUN) - pd.Timedelta(days=2), 3.0, 1.0),  # net 2 units
        ("B", "S1", D(RUN), 50.0, 0.0),  # the run date itself: not known yet, not counted
    ]
    df = pd.DataFrame(rows, columns=["sku", "location", "date", "quantity", "returns"])
    return contract.conform(df.assign(revenue=0.0), "sales")


def _decisions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_date": [
                D(RUN) - pd.Timedelta(days=2),
                D(RUN) - pd.Timedelta(days=1),
                D(RUN) - pd.Timedelta(days=1),
                D(RUN),
            ],
            "sku": ["A", "B", "A", "B"],
            "from_location": ["S2", "S2", "S1", "S2"],
            "to_location": ["S1", "S1", "S2", "S1"],
            "decision": ["approve", "approve", "reject", "approve"],
            "quantity": [5.0, 4.0, 0.0, 9.0],
        }
    )


def _lanes() -> pd.DataFrame:
    lanes = pd.DataFrame({"from_location": ["S2", "S1"], "to_location": ["S1", "S2"], "cost_per_unit": [0.5, 0.7]})
    return contract.conform(
        lanes.assign(fixed_cost_per_shipment=0.0, transit_days=1.0, min_units=0.0, capacity=None), "lanes"
    )


def _past_forecasts() -> pd.DataFrame:
    return contract.conform(
        pd.DataFrame(
            {
                "run_date": R,
                "run_id": "old",
                "sku": "A",
                "location": "S1",
                "target_date": [R, R + pd.Timedelta(days=1)],
                "horizon": [1, 2],
                "mean": 2.0,
                "p50": 2.0,
                "p90": 3.0,
                "p95": 4.0,
                "p99": 5.0,
                "model": "ma",
            }
        ),
        "forecasts",
    )


def test_turnover_approved_transfers_and_last_horizon_accuracy_hand_computed() -> None:
    out = compute_kpis(
        _policy(),
        _alerts(),
        _transfers(),
        _accuracy(),
        _stock(),
        _items(),
        _locations(),
        RUN,
        sales=_sales(),
        decisions=_decisions(),
        lanes=_lanes(),
        past_forecasts=_past_forecasts(),
    )
    k = {(r.location, r.category, r.metric): r.value for r in out.itertuples()}
    # A at S1: 28 units x cost 2 sold in the window, annualised 730, over 20 of stock value
    assert k[("S1", "fruit", "turnover")] == pytest.approx(36.5)
    # B at S1: net 2 units x 10 = 20, annualised 260.71, over 50
    assert k[("S1", "tools", "turnover")] == pytest.approx(20 * 365 / 28 / 50)
    assert k[("*", "*", "turnover")] == pytest.approx((56 + 20) * 365 / 28 / 110)
    assert np.isnan(k[("S3", "*", "turnover")])  # no inventory value
    assert all(np.isnan(v) for (_, _, m), v in k.items() if m == "fill_rate")
    # decisions of the latest earlier run (RUN-1): B S2->S1 approved 4 units at 0.5 per unit
    assert k[("S1", "tools", "transfers_approved_count")] == 1.0
    assert k[("S1", "tools", "transfers_approved_units")] == 4.0
    assert k[("S1", "tools", "transfers_approved_cost")] == 2.0
    assert k[("*", "*", "transfers_approved_count")] == 1.0 and k[("S2", "*", "transfers_approved_count")] == 0.0
    # past horizon: forecast 2 + 2, actual 14 + 0 -> |err| 12 + 2
    assert k[("S1", "fruit", "forecast_wape_last_horizon")] == pytest.approx(14 / 14)
    assert k[("*", "*", "forecast_bias_last_horizon")] == pytest.approx((4 - 14) / 14)
    assert k[("*", "*", "forecast_last_horizon_lag_days")] == 28.0
    assert np.isnan(k[("S2", "*", "forecast_wape_last_horizon")])


def test_feedback_stages_decisions_and_past_forecasts_and_kpis_count_them(tmp_path) -> None:
    """The decisions in the reporting database and its last full horizon's forecasts reach the KPIs
    through the feedback stage's staging files (no stage writes a file by hand)."""
    from pipelines import reporting
    from pipelines.feedback import feedback_stage

    cfg = load_config(overrides={"staging_dir": str(tmp_path / "s"), "output_dir": str(tmp_path / "o")})
    url = cfg.reporting_url()
    reporting.publish(url, R.date(), "old", {"forecasts": _past_forecasts()})
    # a later run (R + 1) is too recent: its horizon has not passed
    reporting.publish(
        url,
        (R + pd.Timedelta(days=1)).date(),
        "newer",
        {"forecasts": _past_forecasts().assign(run_date=R + pd.Timedelta(days=1), run_id="newer", mean=100.0)},
    )
    insert_decision_rows(url, _decisions())
    ctx = RunContext(cfg, RUN)
    write_stage_inputs(ctx, "feedback", lanes=_lanes().assign(transit_days=2))
    fb = feedback_stage(ctx)
    # the decision of the run date itself is not known yet; the two earlier approvals became orders
    # (one per run date and lane) that nobody shipped yet: both still to come
    assert {k: fb.counts[k] for k in ("decisions", "open_transfers", "past_forecasts", "orders_created")} == {
        "decisions": 3,
        "open_transfers": 2,
        "past_forecasts": 2,
        "orders_created": 2,
    }
    assert ctx.read("open_transfers")[["sku", "quantity", "status"]].values.tolist() == [
        ["A", 5.0, "approved"],
        ["B", 4.0, "approved"],
    ]
    for name, df in (
        ("inventory_policy", _policy()),
        ("alerts", _alerts()),
        ("transfers", _transfers()),
        ("forecast_accuracy", _accuracy()),
        ("stock", _stock()),
        ("items", _items()),
        ("locations", _locations()),
        ("sales", _sales()),
    ):
        ctx.write(name, df)
    from pipelines.review import review_stage

    assert review_stage(ctx).counts["transfer_review"] == 0  # nothing shipped yet: nothing to review
    res = kpis_stage(ctx)
    assert res.counts["decisions"] == 3 and res.counts["past_forecasts"] == 2
    out = ctx.read("kpis")
    k = {(r.location, r.category, r.metric): r.value for r in out.itertuples()}
    assert k[("*", "*", "forecast_wape_last_horizon")] == pytest.approx(1.0)
    assert k[("*", "*", "transfers_approved_units")] == 4.0  # the latest earlier run date's approvals
    assert k[("*", "*", "decision_acceptance_rate")] == 0.5  # planner1 approved one of RUN-1's two
    assert np.isnan(k[("*", "*", "decision_hours")])  # the run decided on was never published here
    reporting.dispose_engine(url)


def _person_decisions() -> pd.DataFrame:
    published = D("2026-02-28 06:00")
    return _decisions().assign(
        decided_by=["ann", "ann", "bob", "ann"],
        decided_at=[pd.NaT, published + pd.Timedelta(hours=2), published + pd.Timedelta(hours=4), pd.NaT],
        published_at=[pd.NaT, published, published, pd.NaT],
    )


def test_transfer_loop_kpis_hand_computed() -> None:
    out = compute_kpis(
        _policy(),
        _alerts(),
        _transfers(),
        _accuracy(),
        _stock(),
        _items(),
        _locations(),
        RUN,
        sales=_sales(),
        decisions=_person_decisions(),
        lanes=_lanes(),
        review=transfer_review_rows(RUN),
    )
    k = {(r.location, r.category, r.metric): r.value for r in out.itertuples()}
    # received lines O1 (2 days, on time, 10 of 10) and O2 (4 days, late, 6 of 10), both fruit into S1
    assert k[("S1", "fruit", "transfer_lead_time_days")] == pytest.approx(3.0)
    assert k[("S1", "fruit", "transfer_on_time_rate")] == pytest.approx(0.5)
    assert k[("S1", "fruit", "transfer_receipt_rate")] == pytest.approx(16 / 20)
    assert np.isnan(k[("S1", "tools", "transfer_lead_time_days")])  # O3 not received yet
    # cost of live lines departed in the last 28 days (O1, O2, O3; O4 cancelled) over the sales value
    # of those days at S1: A 28 units x 4 + B 2 units x 20 = 152
    assert k[("S1", "*", "transfer_cost_share_of_sales")] == pytest.approx(12 / 152)
    assert np.isnan(k[("S2", "*", "transfer_cost_share_of_sales")])  # no sales at S2
    # only O1's window closed with a realised figure
    assert k[("*", "*", "transfer_expected_benefit")] == 30.0
    assert k[("*", "*", "transfer_realised_benefit")] == 11.0
    assert k[("*", "*", "transfer_benefit_realisation")] == pytest.approx(11 / 30)
    assert k[("*", "*", "review_receiver_stockout_rate")] == 0.0
    assert k[("*", "*", "review_donor_stockout_rate")] == 1.0
    # people's decisions on RUN-1: ann approved B S2->S1 after 2 h, bob rejected A S1->S2 after 4 h
    assert k[("S1", "*", "decision_acceptance_rate")] == 1.0
    assert k[("S2", "*", "decision_acceptance_rate")] == 0.0
    assert k[("*", "*", "decision_acceptance_rate")] == 0.5
    assert k[("*", "*", "decision_hours")] == pytest.approx(3.0)


def test_the_auto_tier_is_not_a_person_deciding() -> None:
    d = _person_decisions().assign(decided_by="system")
    out = compute_kpis(
        _policy(), _alerts(), _transfers(), _accuracy(), _stock(), _items(), _locations(), RUN, decisions=d
    )
    k = {(r.location, r.category, r.metric): r.value for r in out.itertuples()}
    assert np.isnan(k[("*", "*", "decision_acceptance_rate")]) and np.isnan(k[("*", "*", "decision_hours")])
    assert k[("*", "*", "transfers_approved_count")] == 1.0  # the system's approvals still count as approved
