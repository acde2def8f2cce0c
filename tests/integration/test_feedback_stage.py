"""The feedback stage reads the decisions and the last full horizon's forecasts from a SQLite
reporting database, and the KPI stage counts them (split from tests/unit/test_kpis.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines import contract
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.kpis import kpis_stage
from tests.factories import (
    KPI_PAST_RUN,
    KPI_RUN,
    insert_decision_rows,
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
    write_stage_inputs,
)

# publishes to and reads from a SQLite reporting database (migrations included)
pytestmark = pytest.mark.integration

RUN = KPI_RUN
R = KPI_PAST_RUN  # the run whose 28-day horizon has just passed
D = pd.Timestamp


def test_feedback_stages_decisions_and_past_forecasts_and_kpis_count_them(tmp_path) -> None:
    """The decisions in the reporting database and its last full horizon's forecasts reach the KPIs
    through the feedback stage's staging files (no stage writes a file by hand)."""
    from pipelines import reporting
    from pipelines.feedback import feedback_stage

    cfg = load_config(overrides={"staging_dir": str(tmp_path / "s"), "output_dir": str(tmp_path / "o")})
    url = cfg.reporting_url()
    reporting.publish(url, R.date(), "old", {"forecasts": kpi_past_forecasts()})
    # a later run (R + 1) is too recent: its horizon has not passed
    reporting.publish(
        url,
        (R + pd.Timedelta(days=1)).date(),
        "newer",
        {"forecasts": kpi_past_forecasts().assign(run_date=R + pd.Timedelta(days=1), run_id="newer", mean=100.0)},
    )
    insert_decision_rows(url, kpi_decisions())
    ctx = RunContext(cfg, RUN)
    write_stage_inputs(ctx, "feedback", lanes=kpi_lanes().assign(transit_days=2))
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
        ("inventory_policy", kpi_policy()),
        ("alerts", kpi_alerts()),
        ("transfers", kpi_transfers()),
        ("forecast_accuracy", kpi_accuracy()),
        ("stock", kpi_stock()),
        ("items", kpi_items()),
        ("locations", kpi_locations()),
        ("sales", kpi_sales()),
        ("purchase_proposals", contract.empty("purchase_proposals")),
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
