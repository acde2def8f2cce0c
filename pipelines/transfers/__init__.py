"""Transfers stage: recommend stock moves between locations (MILP, with the greedy as baseline).

Method (``transfers.method: milp``, the default): a mixed-integer programme solved by HiGHS
(``scipy.optimize.milp``), per run.

- **Demand**: per SKU x location, the daily means of ``forecasts`` (horizons 1..H, H =
  ``coverage_days``; the flat ``demand_mean`` of ``inventory_policy`` where a day is missing).
  Demand over any window has that mean and variance d x mean, d = demand_std^2 / demand_mean
  (between 1 and 50): Poisson when d <= :data:`OVERDISPERSED`, else gamma (lumpy demand).
- **Receivers**: active, can receive, expected units short over the horizon
  E[(D_H - available)^+] > 0.5; they take at most max(order_up_to - available, units short).
- **Donors**: active, can ship; never stock still on its way to them (at most available -
  in_transit). ``donor_keep="risk"`` (the default, ``transfers.donor_keep``): with X_d the
  donor's own demand over its lead time (the window its reorder point protects) + the longest
  transit it ships on, its spread the wider of its demand dispersion and the one its safety
  stock stands for (``ss_sigma`` of the policy stage's ``policy_detail``: SS = z(service level) x
  sigma, so its service-level quantile is the hard rule's keep level), the donor gives freely what lies above its p99.5 and
  may give more, down to its median need, each such unit charged margin x the expected lost
  sales it causes there: E[(X_d - (available - g))^+] - E[(X_d - available)^+], convex and
  piecewise linear in the units given g, breakpoints at the quantiles :data:`DONOR_PROBS`. So a
  donor goes below its reorder point only when a receiver gains more than the donor is expected
  to lose (the explanation then says so, with the numbers). ``donor_keep="reorder_point"``: the
  hard rule, the donor keeps its reorder point plus its expected demand over that transit:
  excess = min(available - reorder_point - demand over that transit, available - in_transit).
  With deterministic demand (the replay's perfect foresight) the hard rule applies. Near-expiry units (lots that will
  not sell before expiry, first-expiry-first-out at the forecast rate, from the ``stock`` lots)
  may be shipped beyond that excess, but only to receivers that sell them before the expiry
  date: mu_r x (days to expiry - transit) minus the stock the receiver still has on arrival.
- **Candidates**: receiver x configured lane into it x donor at its origin, with transit < H and
  a unit margin (unit_price - unit_cost) plus donor holding cost avoided above the lane's cost per unit.
- **Benefit** (maximised, minus costs): expected lost sales avoided at the receiver x unit margin,
  piecewise linear and concave in the units received: with X the demand from arrival to the
  horizon end and a the receiver's stock projected at arrival (available minus the expected
  demand until arrival, so a transfer arriving after the projected stockout only counts the
  demand after its arrival), lost units L(u) = E[(X - a - u)^+]; breakpoints at the Poisson
  quantiles of X (:data:`CURVE_PROBS`) minus a, slope = the expected lost units avoided per unit
  on the segment (the k-th unit is worth P(X - a >= k) x margin). Plus, per unit that sells at
  the receiver, the donor's holding cost avoided: unit_cost x ``holding_cost_rate`` / 365 x
  (donor days of cover - H, between 0 and 365); plus unit_cost per near-expiry unit rescued.
  A receiver's curve is that of its fastest lane; units on a slower lane are capped at what still
  sells after their own arrival (the p99.5 of their post-arrival demand minus a).
- **Costs and constraints**: lane cost per unit; a binary per lane used with its
  ``fixed_cost_per_shipment`` (+ ``margin_floor``, the least a shipment must earn), and
  min_units x used <= units on the lane <= capacity x used (consolidation across SKUs);
  quantities are whole packs (integer pack counts); the donor's excess, the receiver's need.
- **Decomposition**: SKUs are coupled only by lanes with a fixed cost, a minimum or a capacity;
  the connected components of the SKU-lane graph are independent and are packed into batches of
  at most ``batch_candidates`` candidates, one MILP each. A component larger than that is cut by
  SKU, each part charged its share (pro rata to its potential volume) of the lanes' fixed cost,
  minimum and capacity; afterwards a lane whose total stays below its minimum is dropped (said in
  the notes). The solver's time limit is shared by the batches; the optimality gap reported is
  the largest of the batches'. If a batch finds no solution in time (or one with a gap above
  20%), its SKUs get the greedy's transfers (below) and the run says so (``method`` column and
  the stage notes).
- **Reported**: transfer_cost = units x cost per unit + the lane's fixed cost shared pro rata to
  units; expected_benefit = the receiver's segment value spread over its benefit units + holding
  and expiry cost avoided; receiver_units_short = E[(D_H - available)^+]; stockout date = the
  first day the cumulative expected demand exceeds the available stock.
- **Approval tier**: ``auto`` when quantity <= auto_approve_max_units and quantity x unit_cost <=
  auto_approve_max_value of the SKU's policy row and the category is not in
  ``transfers.planner_categories``; else ``planner``.
- **Planner decisions** (the ``decisions`` staging file of the feedback stage): approved
  transfers still on the way are already counted by the policy stage (in transit at the receiver,
  reserved at the donor); rejected ones are left out of the candidates, before allocation, by
  every method (MILP, greedy and the fallback) for ``reject_cooldown_days``.

Limits: independent demand per location, its spread from the sales (not the forecast errors); one
shipment per lane per run; the receiver's curve is built on its fastest lane; runs that hit the
time limit depend on the machine's speed (the only place where elapsed time matters).

Greedy baseline: :mod:`pipelines.transfers.greedy` (``transfers.method: greedy``, and the fallback).

Code: :mod:`~pipelines.transfers.demand` (demand distributions, benefit curves),
:mod:`~pipelines.transfers.candidates` (the typed candidates), :mod:`~pipelines.transfers.lp`
(named variable and constraint blocks), :mod:`~pipelines.transfers.milp` (batches, one MILP each,
fallback), :mod:`~pipelines.transfers.greedy`, :mod:`~pipelines.transfers.common` (packs, tiers,
near-expiry units, the published rows), :mod:`~pipelines.transfers.stage`.
"""

from pipelines.transfers.common import approval_tier, expiring_units
from pipelines.transfers.demand import (
    CURVE_PROBS,
    DONOR_PROBS,
    OVERDISPERSED,
    Demand,
    benefit_curves,
    cum_demand_from,
    default_dispersion,
    loss,
    poisson_loss,
    ppf,
)
from pipelines.transfers.greedy import greedy_transfers
from pipelines.transfers.milp import TransferPlan, batches, optimal_transfers
from pipelines.transfers.stage import transfers_stage

__all__ = [
    "CURVE_PROBS",
    "DONOR_PROBS",
    "OVERDISPERSED",
    "Demand",
    "TransferPlan",
    "approval_tier",
    "batches",
    "benefit_curves",
    "cum_demand_from",
    "default_dispersion",
    "expiring_units",
    "greedy_transfers",
    "loss",
    "optimal_transfers",
    "poisson_loss",
    "ppf",
    "transfers_stage",
]
