"""The data contract: every table a stage reads or writes, defined once.

Canonical input tables (after extraction) and the output tables published to the reporting
database. Each column has a logical type; :func:`conform` casts a frame to the contract (and says
exactly which column is missing or cannot be cast), :func:`sort_key` gives the deterministic row
order used whenever a table is written, so that re-running a date gives identical files and rows.

Logical types and their pandas dtypes:

- ``str``    -> pandas ``str`` (UTF-8 text; Chinese names allowed)
- ``int``    -> ``int64``
- ``float``  -> ``float64``
- ``bool``   -> ``bool``
- ``date``   -> ``datetime64[ns]`` normalised to midnight (a business date, no time zone)
- ``ts``     -> ``datetime64[ns, UTC]`` (a point in time; only in the run log)

A nullable ``int`` column uses ``Int64``; a nullable ``bool`` uses ``boolean``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd


class ContractError(ValueError):
    """A frame does not satisfy the data contract (names the table, column and rows)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # str | int | float | bool | date | ts
    nullable: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    doc: str = ""
    kind: str = "input"  # input | output | history | decision
    order: tuple[str, ...] = field(default=())  # extra sort columns after the key

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


def _c(name: str, type_: str, doc: str = "", nullable: bool = False) -> Column:
    return Column(name, type_, nullable, doc)


# --------------------------------------------------------------------------------------------
# Canonical input tables
# --------------------------------------------------------------------------------------------

ITEMS = Table(
    "items",
    (
        _c("sku", "str", "stock-keeping unit code"),
        _c("name", "str", "item name as the source has it (UTF-8, Chinese allowed)"),
        _c("name_en", "str", "English name, when the source has one", nullable=True),
        _c("category", "str", "category code; policies are set per category"),
        _c("unit_cost", "float", "cost of one unit (currency of the company)"),
        _c("unit_price", "float", "list selling price of one unit"),
        _c("pack_size", "int", "units per transfer pack (1 = loose units)"),
        _c("shelf_life_days", "int", "shelf life in days; null = not perishable", nullable=True),
        _c("abc_override", "str", "manual ABC class (A/B/C) that wins over the computed one", nullable=True),
        _c("active", "bool", "false = discontinued: no forecast, no replenishment"),
    ),
    key=("sku",),
    doc="Item master: one row per SKU.",
)

LOCATIONS = Table(
    "locations",
    (
        _c("location", "str", "warehouse or store code"),
        _c("name", "str", "location name (UTF-8)"),
        _c("type", "str", "dc (distribution centre) or store"),
        _c("region", "str", "region; planner emails can be routed by it"),
        _c("can_ship", "bool", "may send transfers"),
        _c("can_receive", "bool", "may receive transfers"),
        _c("active", "bool", "false = closed; no stock snapshot expected"),
    ),
    key=("location",),
    doc="Warehouses and stores.",
)

LANES = Table(
    "lanes",
    (
        _c("from_location", "str"),
        _c("to_location", "str"),
        _c("cost_per_unit", "float", "variable freight cost per unit moved"),
        _c("fixed_cost_per_shipment", "float", "cost of one shipment on the lane, whatever it carries"),
        _c("transit_days", "int", "days from dispatch to availability at the receiver"),
        _c("min_units", "int", "smallest shipment accepted on the lane (units, all SKUs together)"),
        _c("capacity", "int", "largest shipment on the lane (units); null = unlimited", nullable=True),
    ),
    key=("from_location", "to_location"),
    doc="Transfer lanes between locations (directed).",
)

SALES = Table(
    "sales",
    (
        _c("sku", "str"),
        _c("location", "str"),
        _c("date", "date", "business date of the sale"),
        _c("quantity", "float", "units sold (gross, >= 0)"),
        _c("returns", "float", "units returned by customers that day (>= 0)"),
        _c("revenue", "float", "net sales value of the units sold"),
    ),
    key=("sku", "location", "date"),
    doc="Daily sales per SKU and location. Returns are a separate column, never negative sales.",
)

STOCK = Table(
    "stock",
    (
        _c("sku", "str"),
        _c("location", "str"),
        _c("snapshot_date", "date", "business date the snapshot is valid for (start of day)"),
        _c("lot", "str", "lot / batch code; empty string when the item is not lot-managed"),
        _c("expiry_date", "date", "lot expiry date; null when not perishable", nullable=True),
        _c("on_hand", "float", "units physically on hand"),
        _c("in_transit", "float", "units on the way to this location"),
        _c("reserved", "float", "units promised to orders, not available"),
    ),
    key=("sku", "location", "snapshot_date", "lot"),
    doc="Stock snapshot per SKU, location and lot for the run date.",
)

LEAD_TIMES = Table(
    "lead_times",
    (
        _c("sku", "str"),
        _c("location", "str"),
        _c("lead_time_days", "float", "mean replenishment lead time (days)"),
        _c("lead_time_std_days", "float", "standard deviation of the lead time (days)"),
        _c("review_period_days", "float", "days between two replenishment reviews"),
    ),
    key=("sku", "location"),
    doc="Replenishment lead time per SKU and location.",
)

TRANSFER_STATUS = Table(
    "transfer_status",
    (
        _c("order_no", "str", "the transfer order number Tiaobo exported"),
        _c("sku", "str"),
        _c("status", "str", "approved | shipped | received | cancelled (the ERP's state of the order)"),
        _c("shipped_qty", "float", "units shipped; null = not shipped yet", nullable=True),
        _c("shipped_date", "date", nullable=True),
        _c("received_qty", "float", "units received; null = not received yet", nullable=True),
        _c("received_date", "date", nullable=True),
    ),
    key=("order_no", "sku"),
    doc="The ERP's execution of the exported transfer orders (optional: empty when the source does not"
    " report it): shipped and received quantities and dates, or cancelled.",
)

SOURCING = Table(
    "sourcing",
    (
        _c("sku", "str"),
        _c("location", "str", "the location the row applies to, or * for every location (a location's own row wins)"),
        _c("supplier", "str", "supplier code (UTF-8 names allowed)"),
        _c(
            "lead_time_days",
            "float",
            "supplier lead time from order to receipt (days); null = the lead_times row of the SKU-location",
            nullable=True,
        ),
        _c("lead_time_std_days", "float", "standard deviation of that lead time (days)", nullable=True),
        _c("moq", "float", "minimum order quantity (units); 0 or 1 = none"),
        _c("order_multiple", "float", "orders are a multiple of this many units above the MOQ (1 = any quantity)"),
        _c("unit_cost", "float", "purchase price of one unit; null = the item master's unit_cost", nullable=True),
        _c("fixed_order_cost", "float", "cost of placing one order with the supplier, whatever it holds"),
    ),
    key=("sku", "location"),
    doc="Where each SKU is bought (optional: without it purchase proposals name no supplier and order any"
    " quantity): the primary supplier per SKU, or per SKU and location where it differs.",
)

PURCHASE_ORDERS = Table(
    "purchase_orders",
    (
        _c("po_no", "str", "purchase order number in the ERP"),
        _c("sku", "str"),
        _c("location", "str", "the location the order is delivered to"),
        _c("supplier", "str", "supplier code", nullable=True),
        _c("open_qty", "float", "units ordered and not received yet (ordered - received)"),
        _c("order_date", "date", "date the order was placed", nullable=True),
        _c("expected_date", "date", "expected receipt date (an overdue order keeps counting as on order)"),
    ),
    key=("po_no", "sku", "location"),
    doc="Open purchase orders (optional: empty when the source has none): what is on order, counted in"
    " the inventory position so that stock already bought is never reported short or bought twice.",
)

POLICIES = Table(
    "policies",
    (
        _c("category", "str", "category code, or * for every category"),
        _c("abc_class", "str", "A, B, C, or * for every class"),
        _c("service_level", "float", "target cycle service level (0.5 .. 0.9999)"),
        _c("min_cover_days", "float", "health band: below this many days of cover is under-stocked"),
        _c("max_cover_days", "float", "health band: above this many days of cover is over-stocked"),
        _c("slow_mover_days", "int", "no sale in this many days = slow mover"),
        _c("auto_approve_max_units", "float", "transfers up to this many units may be auto-approved"),
        _c("auto_approve_max_value", "float", "... and up to this value at cost"),
    ),
    key=("category", "abc_class"),
    doc="Inventory policy parameters; the most specific row (category, then class) wins.",
)

# --------------------------------------------------------------------------------------------
# Output tables (published to the reporting database, each row carrying run_date and run_id)
# --------------------------------------------------------------------------------------------

_RUN = (_c("run_date", "date", "business date the run is for"), _c("run_id", "str", "run fingerprint"))

FORECASTS = Table(
    "forecasts",
    _RUN
    + (
        _c("sku", "str"),
        _c("location", "str"),
        _c("target_date", "date", "the day forecast"),
        _c("horizon", "int", "days ahead of the run date (1 = the run date itself)"),
        _c("mean", "float", "expected units"),
        _c("p50", "float"),
        _c("p90", "float"),
        _c("p95", "float"),
        _c("p99", "float"),
        _c("model", "str", "model that produced the forecast"),
    ),
    key=("run_date", "sku", "location", "target_date"),
    kind="output",
    doc="Daily demand forecast with quantiles.",
)

FORECAST_ACCURACY = Table(
    "forecast_accuracy",
    _RUN
    + (
        _c("sku", "str"),
        _c("location", "str"),
        _c("model", "str"),
        _c("window_days", "int", "length of the holdout the scores are measured on"),
        _c("actual", "float", "units sold in the holdout"),
        _c("forecast", "float", "units forecast for the holdout"),
        _c("wape", "float", "sum |error| / sum actual; null when nothing sold", nullable=True),
        _c("bias", "float", "(forecast - actual) / actual; null when nothing sold", nullable=True),
        _c("mase", "float", "mean absolute scaled error; null when the scale is zero", nullable=True),
    ),
    key=("run_date", "sku", "location", "model"),
    kind="output",
    doc="Per-series accuracy of the forecast method on the most recent holdout.",
)

LEAD_TIME_DEMAND = Table(
    "lead_time_demand",
    _RUN
    + (
        _c("sku", "str"),
        _c("location", "str"),
        _c(
            "lead_time_days",
            "int",
            "the series' replenishment lead time (lead_times, else policy.default_lead_time_days),"
            " rounded up to whole days",
        ),
        _c("lead_time_defaulted", "bool", "true when no lead time was recorded and the default was used"),
        _c(
            "mean",
            "float",
            "expected units over the lead time: the daily forecast means summed from the run date"
            " (beyond the forecast horizon, its last day's rate held flat)",
        ),
        _c("p50", "float", "median of lead-time demand (whole units)"),
        _c("p90", "float", "90% one-sided quantile of lead-time demand (whole units)"),
        _c("p95", "float", "95% one-sided quantile of lead-time demand (whole units)"),
        _c("p99", "float", "99% one-sided quantile of lead-time demand (whole units)"),
        _c(
            "dispersion",
            "float",
            "variance-to-mean ratio of lead-time demand behind the negative-binomial quantiles (1 = Poisson)",
        ),
        _c("model", "str", "model of the daily forecasts summed (zero_no_sales: never sold, all zero)"),
        _c("explanation_en", "str"),
        _c("explanation_zh", "str"),
    ),
    key=("run_date", "sku", "location"),
    kind="output",
    doc="Demand summed over each series' own lead time, with quantiles: what safety stock is set against.",
)

INVENTORY_POLICY = Table(
    "inventory_policy",
    _RUN
    + (
        _c("sku", "str"),
        _c("location", "str"),
        _c("category", "str"),
        _c("abc_class", "str", "ABC class that picks the policy row (network or per location: policy.abc_scope)"),
        _c("abc_class_network", "str", "ABC class of the SKU by value across the network"),
        _c("abc_class_location", "str", "ABC class of the SKU by value at this location"),
        _c("xyz_class", "str", "X, Y or Z by the coefficient of variation of weekly demand"),
        _c(
            "demand_pattern",
            "str",
            "smooth | erratic | intermittent | lumpy | no_demand (ADI / CV²)",
        ),
        _c("ss_method", "str", "how safety stock was set: normal | poisson | negbin | zero"),
        _c("demand_mean", "float", "forecast units per day"),
        _c("demand_std", "float", "standard deviation of daily demand"),
        _c("lead_time_days", "float"),
        _c("review_period_days", "float"),
        _c("service_level", "float", "target cycle service level of the policy row"),
        _c("safety_stock", "float", "units; normal, Poisson or negative-binomial lead-time demand (see policy)"),
        _c("reorder_point", "float"),
        _c("order_up_to", "float"),
        _c("on_hand", "float"),
        _c("in_transit", "float"),
        _c("available", "float", "inventory position: on hand + in transit + on order - reserved"),
        _c("days_of_cover", "float", "available / demand_mean; null when no demand", nullable=True),
        _c("health_band", "str", "under | healthy | over | no_demand"),
        _c("lead_time_defaulted", "bool", "true when no lead time was recorded and the default was used"),
        _c("explanation_en", "str"),
        _c("explanation_zh", "str"),
        _c(
            "on_order",
            "float",
            "units on open purchase orders expected within the lead time + review period (overdue included)",
        ),
        _c("on_order_later", "float", "units on open purchase orders expected after that (not in available)"),
    ),
    key=("run_date", "sku", "location"),
    kind="output",
    doc="Safety stock, reorder point, order-up-to level and health band per SKU and location.",
)

ALERTS = Table(
    "alerts",
    _RUN
    + (
        _c("alert_type", "str", "stockout_risk | slow_mover | excess | near_expiry"),
        _c("sku", "str"),
        _c("location", "str"),
        _c("lot", "str", "lot code for near-expiry alerts, else empty"),
        _c("severity", "str", "high | medium | low"),
        _c("units", "float", "units concerned (short, slow, excess or expiring)"),
        _c("value_at_risk", "float", "money at risk (sales value for stockouts, cost otherwise)"),
        _c("event_date", "date", "projected stockout or expiry date, when there is one", nullable=True),
        _c("action", "str", "recommended action, short code"),
        _c("explanation_en", "str"),
        _c("explanation_zh", "str"),
        _c(
            "plan_units",
            "float",
            "units the night's transfer plan moves for this alert (in for a stock-out, out otherwise)",
        ),
        _c("plan_locations", "str", "the other ends of those transfers, largest first (at most three)"),
        _c(
            "plan_reason",
            "str",
            "covered | partly_covered | no_donor | no_receiver | no_lane | lane_too_slow | not_worth_it"
            " | no_receiver_before_expiry | receiver_possible | expired; empty for slow movers (see pipelines.alerts)",
        ),
    ),
    key=("run_date", "alert_type", "sku", "location", "lot"),
    kind="output",
    doc="Alerts with severity, value at risk, action and a plain explanation.",
)

TRANSFERS = Table(
    "transfers",
    _RUN
    + (
        _c("sku", "str"),
        _c("from_location", "str"),
        _c("to_location", "str"),
        _c("quantity", "float", "units to move (whole packs)"),
        _c("packs", "int"),
        _c("transfer_cost", "float", "variable cost plus this transfer's share of the shipment cost"),
        _c("expected_benefit", "float", "expected margin of lost sales avoided, plus donor cost avoided"),
        _c("receiver_stockout_date", "date", "projected stockout date at the receiver", nullable=True),
        _c("receiver_units_short", "float", "units the receiver is short over its coverage horizon"),
        _c(
            "donor_days_of_cover", "float", "donor's days of cover before the transfer; null = no demand", nullable=True
        ),
        _c("donor_excess_units", "float", "donor's units above its own need"),
        _c("arrival_date", "date"),
        _c("approval_tier", "str", "auto | planner"),
        _c("method", "str", "greedy | milp"),
        _c("explanation_en", "str"),
        _c("explanation_zh", "str"),
    ),
    key=("run_date", "sku", "from_location", "to_location"),
    kind="output",
    doc="Recommended transfers between locations.",
)

PURCHASE_PROPOSALS = Table(
    "purchase_proposals",
    _RUN
    + (
        _c("sku", "str"),
        _c("location", "str", "the location the order is delivered to"),
        _c("supplier", "str", "the sourcing row's supplier; null = none recorded (the planner chooses)", nullable=True),
        _c(
            "order_by",
            "date",
            "the day the projected position reaches the reorder point (the run date when it is there)",
        ),
        _c("expected_receipt", "date", "order-by date + the supplier's lead time"),
        _c("quantity", "float", "units to order: up to the order-up-to level, rounded up to the MOQ and multiple"),
        _c("unit_cost", "float", "purchase price (sourcing, else the item master)"),
        _c("fixed_order_cost", "float"),
        _c("cost", "float", "quantity x unit cost + fixed order cost"),
        _c(
            "inventory_position",
            "float",
            "on hand + in transit + on order - reserved, after the night's recommended transfers",
        ),
        _c("on_order", "float", "units already on open purchase orders (all of them)"),
        _c("planned_transfers", "float", "net units the night's recommended transfers bring (+) or take (-)"),
        _c("reorder_point", "float"),
        _c("order_up_to", "float"),
        _c("moq", "float", "minimum order quantity applied (1 = none)"),
        _c("order_multiple", "float", "order multiple applied (1 = any quantity)"),
        _c("lead_time_days", "float", "supplier lead time used (whole days)"),
        _c("runs_out_before_receipt", "bool", "the projected position falls below zero before the receipt"),
        _c("explanation_en", "str"),
        _c("explanation_zh", "str"),
        _c(
            "approval_tier",
            "str",
            "auto (within the policy row's auto-approve units and value, a supplier recorded, the category not"
            " in transfers.planner_categories: approved with the publish) | planner",
        ),
    ),
    key=("run_date", "sku", "location"),
    kind="output",
    doc="Purchase orders to place: where the inventory position reaches the reorder point within the review period.",
)

KPIS = Table(
    "kpis",
    _RUN
    + (
        _c("location", "str", "location code, or * for the network"),
        _c("category", "str", "category code, or * for every category"),
        _c("metric", "str"),
        _c("value", "float", nullable=True),
    ),
    key=("run_date", "location", "category", "metric"),
    kind="output",
    doc="KPI values per day, location and category (long format).",
)

DQ_RESULTS = Table(
    "dq_results",
    _RUN
    + (
        _c("table_name", "str"),
        _c("rule", "str"),
        _c("column_name", "str", "column the rule checks, or empty for table rules"),
        _c("level", "str", "row (bad rows quarantined) | table (stops the run)"),
        _c("passed", "bool"),
        _c("observed", "str", "observed value, in words"),
        _c("observed_value", "float", "observed number (row count for rule row_count, share, days ...)", nullable=True),
        _c("failing_rows", "int"),
    ),
    key=("run_date", "table_name", "rule", "column_name"),
    kind="output",
    doc="Data-quality results of the run's validation (level row, table, or warn: reported, does not stop).",
)

QUARANTINE = Table(
    "quarantine",
    _RUN
    + (
        _c("table_name", "str"),
        _c("row_number", "int", "0-based row position in the extracted table"),
        _c("rule", "str"),
        _c("column_name", "str"),
        _c("value", "str", "the offending value as text", nullable=True),
        _c("row_json", "str", "the whole row as JSON, nothing lost"),
    ),
    key=("run_date", "table_name", "row_number", "rule", "column_name"),
    kind="output",
    doc="Rows set aside by validation, with their reason.",
)

ITEM_MASTER = Table(
    "item_master",
    _RUN
    + (
        _c("sku", "str"),
        _c("name", "str", "item name as the source has it (UTF-8, Chinese allowed)"),
        _c("name_en", "str", "English name, when the source has one", nullable=True),
        _c("category", "str"),
        _c("unit_cost", "float"),
        _c("unit_price", "float"),
        _c("pack_size", "int"),
    ),
    key=("run_date", "sku"),
    kind="output",
    doc="The item master the run used (names, category, prices, packs): what the workbench filters"
    " and shows next to each recommendation.",
)

LOCATION_MASTER = Table(
    "location_master",
    _RUN
    + (
        _c("location", "str"),
        _c("name", "str"),
        _c("type", "str", "dc or store"),
        _c("region", "str", "region; planners are assigned regions"),
        _c("can_ship", "bool"),
        _c("can_receive", "bool"),
        _c("active", "bool"),
    ),
    key=("run_date", "location"),
    kind="output",
    doc="The locations the run used, with their region.",
)

LANE_MASTER = Table(
    "lane_master",
    _RUN
    + (
        _c("from_location", "str"),
        _c("to_location", "str"),
        _c("cost_per_unit", "float", "variable freight cost per unit moved"),
        _c("fixed_cost_per_shipment", "float", "cost of one shipment on the lane, whatever it carries"),
        _c("transit_days", "int"),
        _c("min_units", "int", "smallest shipment accepted on the lane (units, all SKUs together)"),
        _c("capacity", "int", "largest shipment on the lane (units); null = unlimited", nullable=True),
    ),
    key=("run_date", "from_location", "to_location"),
    kind="output",
    doc="The lanes the run planned with: the workbench shows and checks a shipment's fixed cost, minimum"
    " and capacity when a planner changes or rejects its lines.",
)

TRANSFER_REVIEW = Table(
    "transfer_review",
    _RUN
    + (
        _c("order_no", "str", "the transfer order"),
        _c("sku", "str"),
        _c("from_location", "str"),
        _c("to_location", "str"),
        _c("rec_run_date", "date", "run date of the recommendation (the departure date)"),
        _c("state", "str", "the order's state: shipped | received | partly_received | cancelled | expired"),
        _c("approved_qty", "float"),
        _c("shipped_qty", "float", nullable=True),
        _c("received_qty", "float", nullable=True),
        _c("shipped_date", "date", nullable=True),
        _c("received_date", "date", nullable=True),
        _c("planned_transit_days", "float", "the lane's configured transit"),
        _c("lead_time_days", "float", "approval (the departure date) to receipt, days", nullable=True),
        _c("transit_days", "float", "shipment to receipt, days", nullable=True),
        _c("on_time", "bool", "received by the planned arrival", nullable=True),
        _c("window_end", "date", "last day the transfer was meant to cover (run date + coverage days)"),
        _c("window_closed", "bool", "the window has passed: the outcome is final"),
        _c(
            "receiver_stocked_out",
            "bool",
            "the receiver had nothing on hand on a night after arrival, in the window",
            nullable=True,
        ),
        _c("donor_stocked_out", "bool", "the donor had nothing on hand on a night in the window", nullable=True),
        _c("expected_benefit", "float", "as recommended", nullable=True),
        _c("transfer_cost", "float", "as recommended", nullable=True),
        _c(
            "units_sold_thanks",
            "float",
            "received units the receiver sold in the window beyond its own stock",
            nullable=True,
        ),
        _c("realised_benefit", "float", "units_sold_thanks x unit margin - transfer cost", nullable=True),
        _c("explanation_en", "str"),
        _c("explanation_zh", "str"),
    ),
    key=("run_date", "order_no", "sku"),
    kind="output",
    doc="The review (复盘) of every executed or closed transfer order line of the last review window:"
    " lead time against the lane's transit, received against ordered, whether the receiver and the"
    " donor stocked out in the window the transfer was meant to cover, realised against expected benefit.",
)

LANE_REVIEW = Table(
    "lane_review",
    _RUN
    + (
        _c("from_location", "str"),
        _c("to_location", "str"),
        _c("configured_transit_days", "float"),
        _c("observed_transit_days", "float", "mean of the received orders' shipment-to-receipt days"),
        _c("orders", "int", "received orders observed"),
        _c("flagged", "bool", "observed differs from configured by a day or more (offered to the data team)"),
        _c("explanation_en", "str"),
        _c("explanation_zh", "str"),
    ),
    key=("run_date", "from_location", "to_location"),
    kind="output",
    doc="Observed transit per lane against the configured one; flagged lanes are offered to the data"
    " team, never changed silently.",
)

TRANSFER_DECISIONS = Table(
    "transfer_decisions",
    (
        _c("decision_id", "str", "unique id of the decision row"),
        _c("decided_at", "ts", "when it was decided (UTC)"),
        _c("decided_by", "str", "user name; 'system' for the auto tier"),
        _c("actor_role", "str", "planner | manager | admin | system"),
        _c("source", "str", "workbench | upload | cli | system"),
        _c("rec_run_date", "date", "run date of the recommendation decided on"),
        _c("rec_run_id", "str", "run id of the recommendation decided on"),
        _c("sku", "str"),
        _c("from_location", "str"),
        _c("to_location", "str"),
        _c("decision", "str", "approve | reject"),
        _c("old_quantity", "float", "units recommended"),
        _c("new_quantity", "float", "units approved (0 for a rejection)"),
        _c(
            "reason_code",
            "str",
            "reject: data_wrong | already_handled | donor_needs_it | too_costly | other",
            nullable=True,
        ),
        _c("reason_text", "str", "free text (required with reason other)", nullable=True),
        _c("version", "int", "1 for the first decision on a recommendation, +1 for each later one"),
    ),
    key=("rec_run_date", "sku", "from_location", "to_location", "version"),
    kind="decision",
    doc="Planners' (and the auto tier's) decisions on recommended transfers: append-only, one row per"
    " decision, never touched by the nightly publish except the auto tier's own rows. The latest"
    " version of a recommendation is its state; the next run reads them.",
)

DQ_HISTORY = Table(
    "dq_history",
    (
        _c("run_date", "date", "business date the validation was for"),
        _c("attempt", "int", "1, 2, ... per run date: every validation of the date is kept"),
        _c("status", "str", "validated (the run went on) | stopped (a table-level rule failed)"),
        _c("table_name", "str"),
        _c("rule", "str"),
        _c("column_name", "str"),
        _c("level", "str"),
        _c("passed", "bool"),
        _c("observed", "str"),
        _c("observed_value", "float", nullable=True),
        _c("failing_rows", "int"),
    ),
    key=("run_date", "attempt", "table_name", "rule", "column_name"),
    kind="history",
    doc="Validation results of every run, stopped ones included; written by validation in its own"
    " transaction, never by the publish of a run date.",
)

HISTORY_TABLES: dict[str, Table] = {DQ_HISTORY.name: DQ_HISTORY}
PURCHASE_DECISIONS = Table(
    "purchase_decisions",
    (
        _c("decision_id", "str", "unique id of the decision row"),
        _c("decided_at", "ts", "when it was decided (UTC)"),
        _c("decided_by", "str", "user name"),
        _c("actor_role", "str", "planner | manager | admin"),
        _c("source", "str", "workbench | cli"),
        _c("rec_run_date", "date", "run date of the purchase proposal decided on"),
        _c("rec_run_id", "str", "run id of the proposal decided on"),
        _c("sku", "str"),
        _c("location", "str", "the location the order is delivered to"),
        _c("decision", "str", "approve | reject"),
        _c("old_quantity", "float", "units proposed"),
        _c("new_quantity", "float", "units approved (0 for a rejection)"),
        _c("supplier", "str", "the supplier approved (the proposal's, or the one the planner named)", nullable=True),
        _c(
            "reason_code",
            "str",
            "reject: already_ordered | data_wrong | not_needed | too_costly | other",
            nullable=True,
        ),
        _c("reason_text", "str", "free text (required with reason other)", nullable=True),
        _c("version", "int", "1 for the first decision on a proposal, +1 for each later one"),
    ),
    key=("rec_run_date", "sku", "location", "version"),
    kind="decision",
    doc="Planners' decisions on purchase proposals: append-only, one row per decision; the latest version"
    " of a proposal is its state.",
)

DECISION_TABLES: dict[str, Table] = {t.name: t for t in (TRANSFER_DECISIONS, PURCHASE_DECISIONS)}

INPUT_TABLES: dict[str, Table] = {
    t.name: t
    for t in (ITEMS, LOCATIONS, LANES, SALES, STOCK, LEAD_TIMES, POLICIES, TRANSFER_STATUS, SOURCING, PURCHASE_ORDERS)
}
OUTPUT_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        FORECASTS,
        FORECAST_ACCURACY,
        LEAD_TIME_DEMAND,
        INVENTORY_POLICY,
        ALERTS,
        TRANSFERS,
        PURCHASE_PROPOSALS,
        KPIS,
        DQ_RESULTS,
        QUARANTINE,
        ITEM_MASTER,
        LOCATION_MASTER,
        LANE_MASTER,
        TRANSFER_REVIEW,
        LANE_REVIEW,
    )
}
TABLES: dict[str, Table] = {**INPUT_TABLES, **OUTPUT_TABLES, **HISTORY_TABLES, **DECISION_TABLES}

_PANDAS = {"str": "str", "int": "int64", "float": "float64", "bool": "bool"}
_PANDAS_NULLABLE = {"str": "str", "int": "Int64", "float": "float64", "bool": "boolean"}


def pandas_dtype(col: Column) -> str:
    if col.type == "date":
        return "datetime64[ns]"
    if col.type == "ts":
        return "datetime64[ns, UTC]"
    return (_PANDAS_NULLABLE if col.nullable else _PANDAS)[col.type]


def _rows(mask: pd.Series, limit: int = 5) -> str:
    idx = list(mask[mask].index[:limit])
    more = int(mask.sum()) - len(idx)
    return ", ".join(str(i) for i in idx) + (f" and {more} more" if more > 0 else "")


def _cast_number(s: pd.Series, col: Column, t: Table) -> pd.Series:
    """``s`` as a number column: refuses text that is not a number, and fractions in an int column."""
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() & s.notna()
    if bad.any():
        raise ContractError(
            f"table {t.name}, column {col.name}: not a number in row(s) {_rows(bad)} (e.g. {s[bad].iloc[0]!r})"
        )
    if col.type == "int":
        frac = num.notna() & (num != num.round())
        if frac.any():
            raise ContractError(f"table {t.name}, column {col.name}: not a whole number in row(s) {_rows(frac)}")
    return num.astype(pandas_dtype(col) if col.nullable or col.type == "float" else "float64")


def _cast_values(s: pd.Series, col: Column, t: Table) -> pd.Series:
    if col.type == "date":
        return pd.to_datetime(s, errors="raise").astype("datetime64[ns]").dt.normalize()
    if col.type == "ts":
        return pd.to_datetime(s, utc=True, errors="raise").astype("datetime64[ns, UTC]")
    if col.type in ("int", "float"):
        return _cast_number(s, col, t)
    if col.type == "bool":
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            s = s.map(_to_bool)
        return s.astype("boolean")
    if col.type == "str":
        s = s.astype("str").where(s.notna(), None)
        return s.astype("str")
    return s


def _cast_column(s: pd.Series, col: Column, t: Table) -> pd.Series:
    """``s`` cast to the type of ``col``; a value that cannot be read raises :class:`ContractError`."""
    try:
        return _cast_values(s, col, t)
    except ContractError:
        raise
    except (TypeError, ValueError) as exc:
        raise ContractError(f"table {t.name}, column {col.name}: cannot read as {col.type}: {exc}") from exc


def conform(df: pd.DataFrame, table: Table | str, *, extra: str = "drop") -> pd.DataFrame:
    """Cast ``df`` to the contract of ``table`` and return the columns in contract order.

    Raises :class:`ContractError` naming the table and column when a required column is missing,
    a value cannot be cast, or a non-nullable column holds nulls (with the first rows).
    ``extra``: ``"drop"`` silently drops columns the contract does not know, ``"error"`` refuses.
    """
    t = TABLES[table] if isinstance(table, str) else table
    missing = [c for c in t.names if c not in df.columns]
    if missing:
        raise ContractError(f"table {t.name}: missing column(s) {', '.join(missing)}; expected {', '.join(t.names)}")
    unknown = [c for c in df.columns if c not in t.names]
    if unknown and extra == "error":
        raise ContractError(f"table {t.name}: unexpected column(s) {', '.join(map(str, unknown))}")
    out = {}
    for col in t.columns:
        s = _cast_column(df[col.name], col, t)
        null = s.isna()
        if not col.nullable and null.any():
            raise ContractError(
                f"table {t.name}, column {col.name}: {int(null.sum())} null value(s) in a required column,"
                f" row(s) {_rows(null)}"
            )
        if not col.nullable and col.type in ("int", "bool"):
            s = s.astype(_PANDAS[col.type])
        out[col.name] = s
    return pd.DataFrame(out, index=df.index)


_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


def _to_bool(v: object) -> object:
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, bool):
        return v
    text = str(v).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a yes/no value: {v!r}")


def sort_key(table: Table | str) -> list[str]:
    t = TABLES[table] if isinstance(table, str) else table
    return list(t.key) + [c for c in t.order if c not in t.key]


def canonical_order(df: pd.DataFrame, table: Table | str) -> pd.DataFrame:
    """Rows in the table's deterministic order (key, then ``order``), index reset."""
    return df.sort_values(sort_key(table), kind="mergesort").reset_index(drop=True)


def empty(table: Table | str) -> pd.DataFrame:
    t = TABLES[table] if isinstance(table, str) else table
    return pd.DataFrame({c.name: pd.Series(dtype=pandas_dtype(c)) for c in t.columns})


def markdown(tables: Iterable[Table] | None = None) -> str:
    """The contract as Markdown (docs/data-contract.md is generated from this)."""
    lines: list[str] = []
    for t in tables or TABLES.values():
        lines += [f"### `{t.name}` ({t.kind})", "", t.doc, "", f"Key: `{', '.join(t.key)}`", ""]
        lines += ["| column | type | nullable | meaning |", "|---|---|---|---|"]
        for c in t.columns:
            lines.append(f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | {c.doc} |")
        lines.append("")
    return "\n".join(lines)


def duplicated_keys(df: pd.DataFrame, table: Table | str) -> pd.Series:
    """Boolean mask of rows whose key appears more than once (all copies marked)."""
    t = TABLES[table] if isinstance(table, str) else table
    return df.duplicated(list(t.key), keep=False)


def check_columns(columns: Iterable[str], table: Table | str) -> Mapping[str, list[str]]:
    """Missing and unexpected column names of a table (schema drift report)."""
    t = TABLES[table] if isinstance(table, str) else table
    cols = list(columns)
    return {
        "missing": [c for c in t.names if c not in cols],
        "unexpected": [c for c in cols if c not in t.names],
    }
