"""Purchasing stage: what to buy tonight, after the transfer plan.

For every SKU-location of the night's ``inventory_policy`` (active item, active location, some
demand), the inventory position is on hand + in transit + on order (every open purchase order,
also those due after the lead time) - reserved, plus the net units the night's recommended
transfers bring in or take out: a shortage the plan covers from another location is not bought
again, and a donor's gift counts against it. Where that position reaches the reorder point within
the review period, :func:`pipelines.replenishment.purchase_proposals` proposes an order: up to the
order-up-to level, rounded to the supplier's MOQ and order multiple (``sourcing``: the
SKU-location's own row, else the SKU's row for every location), ordered on the day the position
reaches the reorder point, received after the supplier's lead time (else the policy's), at the
supplier's price (else the item master's cost) plus the order cost, with the numbers behind it in
English and Chinese. Without a sourcing row the proposal names no supplier and orders any quantity.

Approval tier as transfers have it (:func:`tiers`): ``auto`` within the policy row's auto-approve
units and value (here the order value) with a supplier recorded, due on the run date — approved by
the system with the publish — else ``planner`` (the workbench's Purchases page).

Current method and its limits: the transfer plan is taken as given (transfers first, purchases for
what is left), not decided together with the purchases; every location buys from its supplier
directly (no distribution requirements from the stores a DC serves); the reorder point and
order-up-to level are the policy stage's.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from pipelines.context import RunContext, StageResult
from pipelines.frames import KEY, approval_tier

#: the inventory_policy columns a proposal is computed from
POSITION_COLUMNS = [
    *KEY,
    "category",
    "abc_class",
    "demand_mean",
    "reorder_point",
    "order_up_to",
    "on_hand",
    "in_transit",
    "on_order",
    "on_order_later",
    "available",
    "review_period_days",
    "lead_time_days",
]


def planned_net(transfers: pd.DataFrame) -> pd.DataFrame:
    """Net units of the night's recommended transfers per SKU-location: + received, - sent."""
    inbound = transfers.groupby(["sku", "to_location"], as_index=False)["quantity"].sum()
    outbound = transfers.groupby(["sku", "from_location"], as_index=False)["quantity"].sum()
    both = pd.concat(
        [
            inbound.rename(columns={"to_location": "location"}),
            outbound.rename(columns={"from_location": "location"}).assign(quantity=lambda d: -d["quantity"]),
        ],
        ignore_index=True,
    )
    return both.groupby(KEY, as_index=False)["quantity"].sum().rename(columns={"quantity": "planned_transfers"})


def positions(
    policy: pd.DataFrame, transfers: pd.DataFrame, items: pd.DataFrame, locations: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The :func:`pipelines.replenishment.purchase_proposals` inputs from the night's frames:
    ``(positions, open_orders)``. Reserved units are what ``available`` leaves out of on hand +
    in transit + on order; open orders are every open purchase order unit (``on_order`` +
    ``on_order_later``)."""
    active_items = items.loc[items["active"].astype(bool), ["sku", "unit_cost"]]
    active_locs = locations.loc[locations["active"].astype(bool), ["location"]]
    p = policy[POSITION_COLUMNS].merge(active_items, on="sku", how="inner").merge(active_locs, on="location")
    p = p[p["demand_mean"].to_numpy(float) > 0]
    p = p.merge(planned_net(transfers), on=KEY, how="left")
    p["planned_transfers"] = p["planned_transfers"].fillna(0.0)
    p["reserved"] = np.maximum(p["on_hand"] + p["in_transit"] + p["on_order"] - p["available"], 0.0)
    opened = p[KEY].assign(quantity=(p["on_order"] + p["on_order_later"]).to_numpy(float))
    cols = [*KEY, "category", "abc_class", "demand_mean", "reorder_point", "order_up_to", "on_hand", "in_transit"]
    cols += ["reserved", "review_period_days", "lead_time_days", "unit_cost", "planned_transfers"]
    return p[cols].sort_values(KEY, kind="mergesort").reset_index(drop=True), opened[opened["quantity"] > 0]


def tiers(
    proposals: pd.DataFrame,
    pos: pd.DataFrame,
    policies: pd.DataFrame,
    planner_categories: list[str],
    run_date: date,
) -> np.ndarray:
    """The approval tier of each proposal, as transfers have it (:func:`pipelines.frames.approval_tier`):
    ``auto`` within the policy row's auto-approve units and value (the order value: quantity x unit
    cost + order cost), the category not one of ``planner_categories``, a supplier recorded (an
    order needs someone to go to) and the order due now (order-by on the run date: one due later is
    proposed again on its day, from the position then, and ordering it now would only buy early);
    else ``planner``."""
    keyed = proposals[KEY].merge(pos[[*KEY, "category", "abc_class"]], on=KEY, how="left")
    t = keyed.assign(quantity=proposals["quantity"].to_numpy(float), value=proposals["cost"].to_numpy(float))
    tier = approval_tier(t, policies, planner_categories)
    now = (proposals["order_by"] <= pd.Timestamp(run_date)).to_numpy()
    return np.where(proposals["supplier"].notna().to_numpy() & now, tier, "planner").astype(object)


def purchasing_stage(ctx: RunContext) -> StageResult:
    """Read ``inventory_policy``, the night's ``transfers``, ``sourcing``, ``items``, ``locations``
    and ``policies``; write ``purchase_proposals``."""
    from pipelines import replenishment  # scipy-heavy module, imported where it is used

    pos, opened = positions(
        ctx.read("inventory_policy"), ctx.read("transfers"), ctx.read("items"), ctx.read("locations")
    )
    sourcing = ctx.read("sourcing")
    out = replenishment.purchase_proposals(pos, sourcing, ctx.run_date, opened)
    out["approval_tier"] = tiers(out, pos, ctx.read("policies"), ctx.cfg.transfers.planner_categories, ctx.run_date)
    n = ctx.write("purchase_proposals", out.assign(run_id=ctx.run_id))
    notes = []
    if n:
        no_supplier = int(out["supplier"].isna().sum())
        late = int(out["runs_out_before_receipt"].sum())
        auto = int((out["approval_tier"] == "auto").sum())
        notes.append(
            f"{n} purchase proposal(s) worth {out['cost'].sum():,.0f}; {late} run out before the receipt;"
            f" {no_supplier} without a recorded supplier; {auto} within the auto-approve limits"
        )
    return StageResult(
        stage="purchasing",
        paths={"purchase_proposals": str(ctx.path("purchase_proposals"))},
        counts={"purchase_proposals": n},
        notes=notes,
    )
