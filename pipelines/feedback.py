"""Feedback stage: what the reporting database knows that tonight's plan must take into account.

The only stage before the publish that reads the reporting database, so that every later stage
works on staging files alone:

- ``decisions``: the latest decision on each recommendation of an earlier run date, from the
  ``transfer_decisions`` table (the workbench, uploads and the auto tier) and, when configured,
  the planners' decisions file ``transfers.decisions_csv``
  (:func:`pipelines.decisions.read_decisions`; a row of the file wins over the table for the same
  recommendation);
- ``open_transfers``: approved transfers still on the way (:func:`pipelines.decisions.open_transfers`):
  the policy stage counts their units as in transit at the receiver and reserved at the donor, so
  alerts, transfers and KPIs all see them;
- ``past_forecasts``: the forecasts published by the latest run whose whole horizon has passed
  (:func:`pipelines.reporting.read_last_horizon_forecasts`), for the KPIs' last-horizon accuracy.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from pipelines import decision_store, reporting
from pipelines import decisions as dec
from pipelines.context import RunContext, StageResult


def read_decision_table(url: str, run_date: date) -> pd.DataFrame:
    """The latest version of every decision on a recommendation of a run date before ``run_date``,
    as :data:`pipelines.decisions.STAGED_COLUMNS`."""
    d = decision_store.read_latest(url, run_date)
    d = d.rename(columns={"rec_run_date": "run_date", "new_quantity": "quantity"})
    return dec.staged_decisions(d)


def feedback_stage(ctx: RunContext) -> StageResult:
    """Read the reporting database (decisions, past forecasts) and the lanes; write ``decisions``,
    ``open_transfers`` and ``past_forecasts``."""
    tc = ctx.cfg.transfers
    url = ctx.cfg.reporting_url()
    reporting.migrate(url)
    notes: list[str] = []
    known = read_decision_table(url, ctx.run_date)
    if tc.decisions_csv is not None:
        if tc.decisions_csv.exists():
            from_file = dec.read_decisions(tc.decisions_csv)
            known = dec.staged_decisions(pd.concat([known, from_file.assign(source="csv")], ignore_index=True))
            notes.append(f"{len(from_file)} decision(s) read from {tc.decisions_csv}")
        else:
            notes.append(f"no planner decisions file at {tc.decisions_csv}: none read from a file")
    on_the_way = dec.open_transfers(known, ctx.read("lanes"), ctx.run_date)
    if len(on_the_way):
        notes.append(
            f"{len(on_the_way)} approved transfer(s) still on the way ({on_the_way['quantity'].sum():g} units):"
            " in transit at the receiver, reserved at the donor"
        )
    horizon = ctx.cfg.forecast.horizon_days
    past = reporting.read_last_horizon_forecasts(url, ctx.run_date, horizon)
    if past.empty:
        notes.append(
            f"forecast accuracy of the last horizon: no run published on or before"
            f" {ctx.run_date - timedelta(days=horizon)} (run date - {horizon} days): null"
        )
    else:
        notes.append(
            f"forecast accuracy of the last horizon: forecasts of the run of {past['run_date'].max():%Y-%m-%d}"
        )
    counts = {
        "decisions": ctx.write("decisions", known),
        "open_transfers": ctx.write("open_transfers", on_the_way),
        "past_forecasts": ctx.write("past_forecasts", past),
    }
    return StageResult(stage="feedback", paths={n: str(ctx.path(n)) for n in counts}, counts=counts, notes=notes)
