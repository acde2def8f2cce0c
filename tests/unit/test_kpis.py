"""KPIs per location x category, per location, per category and for the network (hand-computed;
the feedback stage that stages their inputs from the reporting database:
tests/integration/test_feedback_stage.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines import contract
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.kpis import METRICS, compute_kpis, kpis_stage
from tests.factories import (
    KPI_PAST_RUN,
    KPI_RUN,
    kpi_accuracy,
    kpi_alerts,
    kpi_decisions,
    kpi_items,
    kpi_lanes,
    kpi_locations,
    kpi_past_forecasts,
    kpi_policy,
    kpi_sales,
    kpi_stock,
    kpi_transfers,
    transfer_review_rows,
    write_stage_inputs,
)

RUN = KPI_RUN
R = KPI_PAST_RUN  # the run whose 28-day horizon has just passed
D = pd.Timestamp


def _kpis(**extra) -> dict[tuple[str, str, str], float]:
    """compute_kpis on the hand-computed case (with ``extra`` inputs), by (location, category, metric);
    the rows are checked against the contract on the way."""
    out = compute_kpis(
        kpi_policy(),
        kpi_alerts(),
        kpi_transfers(),
        kpi_accuracy(),
        kpi_stock(),
        kpi_items(),
        kpi_locations(),
        RUN,
        **extra,
    )
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
        kpi_items(),
        kpi_locations(),
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
        ("inventory_policy", kpi_policy()),
        ("alerts", kpi_alerts()),
        ("transfers", kpi_transfers()),
        ("forecast_accuracy", kpi_accuracy()),
        ("stock", kpi_stock()),
        ("items", kpi_items()),
        ("locations", kpi_locations()),
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


def test_turnover_approved_transfers_and_last_horizon_accuracy_hand_computed() -> None:
    k = _kpis(sales=kpi_sales(), decisions=kpi_decisions(), lanes=kpi_lanes(), past_forecasts=kpi_past_forecasts())
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


def _person_decisions() -> pd.DataFrame:
    published = D("2026-02-28 06:00")
    return kpi_decisions().assign(
        decided_by=["ann", "ann", "bob", "ann"],
        decided_at=[pd.NaT, published + pd.Timedelta(hours=2), published + pd.Timedelta(hours=4), pd.NaT],
        published_at=[pd.NaT, published, published, pd.NaT],
    )


def test_transfer_loop_kpis_hand_computed() -> None:
    k = _kpis(sales=kpi_sales(), decisions=_person_decisions(), lanes=kpi_lanes(), review=transfer_review_rows(RUN))
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
    k = _kpis(decisions=_person_decisions().assign(decided_by="system"))
    assert np.isnan(k[("*", "*", "decision_acceptance_rate")]) and np.isnan(k[("*", "*", "decision_hours")])
    assert k[("*", "*", "transfers_approved_count")] == 1.0  # the system's approvals still count as approved


def test_purchases_proposed_and_on_order_value_hand_computed() -> None:
    pol = kpi_policy()
    pol.loc[(pol["sku"] == "A") & (pol["location"] == "S1"), ["on_order", "on_order_later"]] = [3.0, 2.0]
    props = pd.DataFrame({"sku": ["A", "B"], "location": ["S1", "S1"], "quantity": [12.0, 6.0], "cost": [30.0, 11.0]})
    out = compute_kpis(
        pol, kpi_alerts(), kpi_transfers(), kpi_accuracy(), kpi_stock(), kpi_items(), kpi_locations(), RUN,
        purchases=props,
    )  # fmt: skip
    k = {(r.location, r.category, r.metric): r.value for r in out.itertuples()}
    assert k[("S1", "fruit", "on_order_value")] == pytest.approx(5 * 2.0)  # (3 + 2) units x cost 2
    assert k[("S1", "*", "purchases_proposed_count")] == 2.0
    assert k[("S1", "*", "purchases_proposed_units")] == 18.0 and k[("*", "*", "purchases_proposed_value")] == 41.0
    assert k[("S2", "*", "purchases_proposed_count")] == 0.0
    without = compute_kpis(
        kpi_policy(), kpi_alerts(), kpi_transfers(), kpi_accuracy(), kpi_stock(), kpi_items(), kpi_locations(), RUN
    )
    w = {(r.location, r.category, r.metric): r.value for r in without.itertuples()}
    assert w[("*", "*", "purchases_proposed_count")] == 0.0 and w[("*", "*", "on_order_value")] == 0.0
