"""The transfers stage: read the staged policy, forecasts, stock and decisions; write ``transfers``."""

from __future__ import annotations

import pandas as pd

from pipelines.context import RunContext, StageResult
from pipelines.decisions import excluded_lanes
from pipelines.frames import KEY
from pipelines.transfers.greedy import greedy_transfers
from pipelines.transfers.milp import optimal_transfers


def transfers_stage(ctx: RunContext) -> StageResult:
    """Read inventory_policy (stock on the way already counted), forecasts, stock, items, locations,
    lanes, policies and the planners' decisions; write ``transfers``. The notes say which method was
    used and the gap."""
    tc = ctx.cfg.transfers
    # the spread of lead-time demand each reorder point protects, from the policy's detail (donor risk)
    sigma = ctx.read("policy_detail")[[*KEY, "ss_sigma"]]
    policy_df = ctx.read("inventory_policy").merge(sigma, on=KEY, how="left")
    lanes = ctx.read("lanes")
    policies = ctx.read("policies")
    rejected = excluded_lanes(ctx.read("decisions"), ctx.run_date, tc.reject_cooldown_days)
    # a lane with an open order is not proposed again until the order closes
    open_lanes = ctx.read("open_transfers")[["sku", "from_location", "to_location"]].drop_duplicates()
    exclude = pd.concat([rejected, open_lanes], ignore_index=True).drop_duplicates().reset_index(drop=True)
    notes = []
    if len(rejected):
        notes.append(
            f"{len(rejected)} rejected transfer(s) not proposed again (cooldown {tc.reject_cooldown_days} days)"
        )
    if len(open_lanes):
        notes.append(f"{len(open_lanes)} SKU-lane(s) with an open order not proposed again")
    if tc.method == "greedy":
        out = greedy_transfers(
            policy_df,
            ctx.read("items"),
            ctx.read("locations"),
            lanes,
            ctx.run_date,
            tc.coverage_days,
            tc.margin_floor,
            policies=policies,
            planner_categories=tc.planner_categories,
            exclude=exclude,
        )
        notes.insert(
            0, f"greedy: {len(out)} transfer(s), {out['quantity'].sum():g} units, cost {out['transfer_cost'].sum():.2f}"
        )
    else:
        plan = optimal_transfers(
            policy_df,
            ctx.read("items"),
            ctx.read("locations"),
            lanes,
            ctx.run_date,
            tc.coverage_days,
            tc.margin_floor,
            policies=policies,
            forecasts=ctx.read("forecasts"),
            stock=ctx.read("stock"),
            exclude=exclude,
            holding_cost_rate=tc.holding_cost_rate,
            time_limit_seconds=tc.time_limit_seconds,
            mip_rel_gap=tc.mip_rel_gap,
            batch_candidates=tc.batch_candidates,
            planner_categories=tc.planner_categories,
            donor_keep=tc.donor_keep,
        )
        out = plan.transfers
        notes = plan.notes + notes
    n = ctx.write("transfers", out.assign(run_id=ctx.run_id))
    return StageResult(
        stage="transfers",
        paths={"transfers": str(ctx.path("transfers"))},
        counts={"transfers": n},
        notes=notes,
    )
