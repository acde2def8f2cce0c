"""KPIs stage: the day's inventory indicators in long format.

One value per (location, category, metric) at four levels: each location x category, each
location over all categories (category ``*``), each category over the network (location ``*``)
and the whole network (``*``, ``*``). Every active location gets its ``(location, *)`` rows even
without stock. Current metrics and how they are computed:

- ``inventory_value``: on hand x unit cost, stock summed over lots (latest snapshot).
- ``days_of_inventory``: inventory_value / (sum of demand_mean x unit cost), the days the stock
  lasts at the forecast rate, valued at cost; null when there is no forecast demand.
- ``stockout_rate``: among SKU-locations with demand_mean > 0, the share with available <= 0;
  null when none has demand.
- ``slow_mover_value_share`` / ``near_expiry_value_share``: value at risk of the ``slow_mover`` /
  ``near_expiry`` alerts divided by inventory_value; null when there is no inventory value.
- ``band_compliance``: among SKU-locations with demand, the share in the ``healthy`` band.
- ``transfers_recommended_count`` / ``_units`` / ``_cost``: transfers counted at the *receiving*
  location (to_location).
- ``purchases_proposed_count`` / ``_units`` / ``_value``: the night's purchase proposals at their
  delivery location; value = their cost (quantity x unit cost + order cost).
- ``on_order_value``: units on open purchase orders (``on_order`` + ``on_order_later`` of the
  policy) x unit cost.
- ``forecast_wape``: sum of absolute daily errors / sum of actual units of the backtest; the
  absolute error of a series is wape x actual, or its forecast total when nothing sold (then every
  daily error is the forecast). Null when nothing sold.
- ``turnover``: cost of the units sold (net of returns) over the last :data:`TURNOVER_WINDOW_DAYS`
  days before the run date, annualised (x 365 / window), divided by inventory_value; null when
  there is no inventory value.
- ``fill_rate``: always null for now, on purpose. A fill rate needs the demand *asked for*
  (order lines or lost-sale records); the contract has only sales, which are censored by stock:
  units sold / units sold would be 100 % by construction, and sales / forecast measures the
  forecast, not the service. It becomes a real value when an orders table joins the contract.
- ``transfers_approved_count`` / ``_units`` / ``_cost``: planners' approvals known at this run
  (the ``decisions`` staging file of the feedback stage: run_date, sku, from_location,
  to_location, decision, quantity) on the recommendations of the latest earlier run
  date present in it, counted at the receiving location; units = approved quantity, cost =
  quantity x the lane's cost per unit (the shared fixed shipment cost is not included). 0 without
  decisions.
- ``forecast_wape_last_horizon`` / ``forecast_bias_last_horizon``: the forecasts *published* by
  the latest earlier run R whose whole horizon has passed (R <= run date - horizon_days; staged
  from the reporting database by the feedback stage as ``past_forecasts``) against the units sold since (net of returns, 0 on days without a sale
  row): WAPE = sum |forecast - actual| / sum actual over every SKU-location-day, bias = (sum
  forecast - sum actual) / sum actual. ``forecast_last_horizon_lag_days`` = run date - R. Null
  when no such run is published or nothing sold.

The loop around the transfers (复盘), from the ``transfer_review`` rows of the review stage (the
order lines departed in its window) and the ``decisions`` staging file, at the receiving location:

- ``transfer_lead_time_days`` (调拨时效): mean days from approval (the departure date) to receipt
  over the received order lines; ``transfer_on_time_rate``: the share of them received by the
  planned arrival (departure + the lane's transit days); ``transfer_receipt_rate``: units
  received / units approved over them. Null before the first receipt.
- ``transfer_cost_share_of_sales``: the recommended cost of the order lines departed in the last
  :data:`TURNOVER_WINDOW_DAYS` days and not cancelled or expired, over the sales value (units sold
  net of returns x unit price) of the same days; null without sales.
- ``transfer_expected_benefit`` / ``transfer_realised_benefit``: sums over the lines whose window
  closed with a realised figure (:mod:`pipelines.review`); ``transfer_benefit_realisation`` =
  realised / expected (null when nothing is expected).
- ``review_receiver_stockout_rate`` / ``review_donor_stockout_rate``: among the reviewed lines whose
  window closed and whose receiver's (donor's) nights are known, the share that stocked out in the
  window the transfer was meant to cover.
- ``decision_acceptance_rate``: among the recommendations decided by a person (not the auto tier's
  ``system`` user) of the latest earlier run date with such a decision, the share approved; ``decision_hours``: their
  mean time from the run's publication to the decision, in hours (null when not known, e.g. a
  file's rows).

Limits: one snapshot (no averages over time), values at cost in the company currency; a SKU
missing from the item master is not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd

from pipelines import contract
from pipelines.context import RunContext, StageResult
from pipelines.frames import stock_totals

ALL = "*"
METRICS = (
    "inventory_value",
    "days_of_inventory",
    "stockout_rate",
    "slow_mover_value_share",
    "near_expiry_value_share",
    "band_compliance",
    "transfers_recommended_count",
    "transfers_recommended_units",
    "transfers_recommended_cost",
    "purchases_proposed_count",
    "purchases_proposed_units",
    "purchases_proposed_value",
    "on_order_value",
    "forecast_wape",
    "turnover",
    "fill_rate",
    "transfers_approved_count",
    "transfers_approved_units",
    "transfers_approved_cost",
    "forecast_wape_last_horizon",
    "forecast_bias_last_horizon",
    "forecast_last_horizon_lag_days",
    "transfer_lead_time_days",
    "transfer_on_time_rate",
    "transfer_receipt_rate",
    "transfer_cost_share_of_sales",
    "transfer_expected_benefit",
    "transfer_realised_benefit",
    "transfer_benefit_realisation",
    "review_receiver_stockout_rate",
    "review_donor_stockout_rate",
    "decision_acceptance_rate",
    "decision_hours",
)
TURNOVER_WINDOW_DAYS = 28
_SUMS = (
    "inventory_value",
    "cogs_per_day",
    "n_demand",
    "n_out",
    "n_healthy",
    "slow_value",
    "expiry_value",
    "transfer_count",
    "transfer_units",
    "transfer_cost",
    "purchase_count",
    "purchase_units",
    "purchase_value",
    "on_order_value",
    "abs_error",
    "actual",
    "cogs_window",
    "approved_count",
    "approved_units",
    "approved_cost",
    "lh_abs_error",
    "lh_forecast",
    "lh_actual",
    "sales_value_window",
    "rv_received",
    "rv_lead_days",
    "rv_on_time",
    "rv_received_units",
    "rv_approved_units",
    "rv_cost_window",
    "rv_expected",
    "rv_realised",
    "rv_recv_known",
    "rv_recv_out",
    "rv_donor_known",
    "rv_donor_out",
    "dc_decided",
    "dc_approved",
    "dc_timed",
    "dc_hours",
)


def _facts(
    frame: pd.DataFrame, location: str, items: pd.DataFrame, **measures: Callable[[pd.DataFrame], pd.Series] | float
) -> pd.DataFrame:
    """One row per row of ``frame`` with its location, the SKU's category and the measures
    (a function of the frame joined to the item master, or a constant)."""
    f = frame.drop(columns=[c for c in ("category",) if c in frame.columns]).merge(
        items[["sku", "category"]], on="sku", how="inner"
    )
    out = pd.DataFrame({"location": f[location].astype("str"), "category": f["category"].astype("str")})
    for name, values in measures.items():
        out[name] = np.asarray(values(f), dtype=float) if callable(values) else float(values)
    return out


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    ok = den > 0
    return (num / den.where(ok, 1.0)).where(ok)


def _net_sales(sales: pd.DataFrame) -> pd.DataFrame:
    return sales.assign(_units=sales["quantity"].astype(float) - sales["returns"].astype(float))


def _sales_facts(sales: pd.DataFrame | None, items: pd.DataFrame, rd: pd.Timestamp) -> list[pd.DataFrame]:
    """Cost of the units sold in the turnover window, per location and category."""
    if sales is None or sales.empty:
        return []
    start = rd - pd.Timedelta(days=TURNOVER_WINDOW_DAYS)
    win = _net_sales(sales[(sales["date"] >= start) & (sales["date"] < rd)]).merge(
        items[["sku", "unit_cost"]], on="sku"
    )
    return [
        _facts(
            win.merge(items[["sku", "unit_price"]], on="sku"),
            "location",
            items,
            cogs_window=lambda f: f["_units"] * f["unit_cost"],
            sales_value_window=lambda f: f["_units"] * f["unit_price"].astype(float),
        )
    ]


def _flag(s: pd.Series) -> np.ndarray:
    """A nullable boolean column as 1.0 / 0.0 with NaN where unknown."""
    b = s.astype("boolean")
    return np.where(b.isna(), np.nan, b.fillna(False).astype(float))


def _review_facts(review: pd.DataFrame | None, items: pd.DataFrame, rd: pd.Timestamp) -> list[pd.DataFrame]:
    """Lead time, receipt, cost in the window, benefit and outcome of the reviewed order lines."""
    if review is None or review.empty:
        return []
    r = review
    got = r["lead_time_days"].notna()
    closed = r["window_closed"].astype("boolean").fillna(False) & r["realised_benefit"].notna()
    live = ~r["state"].isin(["cancelled", "expired"])
    recent = pd.to_datetime(r["rec_run_date"]) >= rd - pd.Timedelta(days=TURNOVER_WINDOW_DAYS)
    wc = r["window_closed"].astype("boolean").fillna(False)
    rout, dout = _flag(r["receiver_stocked_out"]), _flag(r["donor_stocked_out"])
    return [
        _facts(
            r.assign(
                _got=got.astype(float),
                _lead=r["lead_time_days"].where(got, 0.0),
                _ot=_flag(r["on_time"]),
                _rq=r["received_qty"].where(got, 0.0).fillna(0.0),
                _aq=r["approved_qty"].where(got, 0.0),
                _cw=r["transfer_cost"].fillna(0.0).where(live & recent, 0.0),
                _ex=r["expected_benefit"].fillna(0.0).where(closed, 0.0),
                _re=r["realised_benefit"].where(closed, 0.0),
                _rk=(wc & ~np.isnan(rout)).astype(float),
                _ro=np.where(wc & ~np.isnan(rout), np.nan_to_num(rout), 0.0),
                _dk=(wc & ~np.isnan(dout)).astype(float),
                _do=np.where(wc & ~np.isnan(dout), np.nan_to_num(dout), 0.0),
            ),
            "to_location",
            items,
            rv_received=lambda f: f["_got"],
            rv_lead_days=lambda f: f["_lead"],
            rv_on_time=lambda f: np.nan_to_num(f["_ot"].to_numpy(float)),
            rv_received_units=lambda f: f["_rq"],
            rv_approved_units=lambda f: f["_aq"],
            rv_cost_window=lambda f: f["_cw"],
            rv_expected=lambda f: f["_ex"],
            rv_realised=lambda f: f["_re"],
            rv_recv_known=lambda f: f["_rk"],
            rv_recv_out=lambda f: f["_ro"],
            rv_donor_known=lambda f: f["_dk"],
            rv_donor_out=lambda f: f["_do"],
        )
    ]


def _decision_facts(decisions: pd.DataFrame | None, items: pd.DataFrame, rd: pd.Timestamp) -> list[pd.DataFrame]:
    """People's decisions on the recommendations of the latest earlier run date: approved, timed."""
    if decisions is None or decisions.empty or "decided_by" not in decisions.columns:
        return []
    d = decisions.assign(run_date=pd.to_datetime(decisions["run_date"]).dt.normalize())
    d = d[(d["run_date"] < rd) & (d["decided_by"] != "system")]
    if d.empty:
        return []
    d = d[d["run_date"] == d["run_date"].max()]
    if "decided_at" in d.columns and "published_at" in d.columns:
        hours = (pd.to_datetime(d["decided_at"]) - pd.to_datetime(d["published_at"])).dt.total_seconds() / 3600.0
    else:
        hours = pd.Series(np.nan, index=d.index)
    timed = hours.notna()
    return [
        _facts(
            d.assign(_a=(d["decision"] == "approve").astype(float), _t=timed.astype(float), _h=hours.where(timed, 0.0)),
            "to_location",
            items,
            dc_decided=1.0,
            dc_approved=lambda f: f["_a"],
            dc_timed=lambda f: f["_t"],
            dc_hours=lambda f: f["_h"],
        )
    ]


def _approved_facts(
    decisions: pd.DataFrame | None, lanes: pd.DataFrame | None, items: pd.DataFrame, rd: pd.Timestamp
) -> list[pd.DataFrame]:
    """Approved transfers of the latest earlier run date in the decisions, at the receiver."""
    if decisions is None or decisions.empty:
        return []
    d = decisions.assign(run_date=pd.to_datetime(decisions["run_date"]).dt.normalize())
    d = d[(d["run_date"] < rd) & (d["decision"].astype("str").str.lower().isin(["approve", "approved"]))]
    if d.empty:
        return []
    d = d[d["run_date"] == d["run_date"].max()]
    if lanes is not None and len(lanes):
        lane = lanes[["from_location", "to_location", "cost_per_unit"]]
        d = d.merge(lane, on=["from_location", "to_location"], how="left")
    else:
        d = d.assign(cost_per_unit=np.nan)
    qty = pd.to_numeric(d["quantity"], errors="coerce").fillna(0.0).astype(float)
    d = d.assign(_q=qty, _c=qty * d["cost_per_unit"].astype(float).fillna(0.0))
    return [
        _facts(
            d,
            "to_location",
            items,
            approved_count=1.0,
            approved_units=lambda f: f["_q"],
            approved_cost=lambda f: f["_c"],
        )
    ]


def _last_horizon_facts(
    past_forecasts: pd.DataFrame | None, sales: pd.DataFrame | None, items: pd.DataFrame
) -> list[pd.DataFrame]:
    """Absolute error, forecast and actual units per SKU-location-day of a past run's whole horizon."""
    if past_forecasts is None or past_forecasts.empty or sales is None:
        return []
    fc = past_forecasts[["sku", "location", "target_date", "mean"]].rename(columns={"target_date": "date"})
    actual = _net_sales(sales)[["sku", "location", "date", "_units"]]
    m = fc.merge(actual, on=["sku", "location", "date"], how="left")
    m["_units"] = m["_units"].fillna(0.0)
    return [
        _facts(
            m,
            "location",
            items,
            lh_abs_error=lambda f: (f["mean"] - f["_units"]).abs(),
            lh_forecast=lambda f: f["mean"],
            lh_actual=lambda f: f["_units"],
        )
    ]


def compute_kpis(
    policy_df: pd.DataFrame,
    alerts: pd.DataFrame,
    transfers: pd.DataFrame,
    accuracy: pd.DataFrame,
    stock: pd.DataFrame,
    items: pd.DataFrame,
    locations: pd.DataFrame,
    run_date: date,
    *,
    sales: pd.DataFrame | None = None,
    decisions: pd.DataFrame | None = None,
    lanes: pd.DataFrame | None = None,
    past_forecasts: pd.DataFrame | None = None,
    review: pd.DataFrame | None = None,
    purchases: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The ``kpis`` rows (without run_id) for the run date (see module doc).

    ``sales`` feeds turnover and the last-horizon accuracy, ``decisions`` (+ ``lanes`` for the
    cost) the approved transfers, ``past_forecasts`` (the forecasts of one earlier published run,
    see :func:`pipelines.reporting.read_last_horizon_forecasts`) the last-horizon accuracy,
    ``review`` (the ``transfer_review`` rows) the transfer loop's metrics, ``purchases`` (the
    night's ``purchase_proposals``) the proposed purchases.
    """
    rd = pd.Timestamp(run_date)
    items = items.assign(unit_cost=items["unit_cost"].astype(float))
    tot = stock_totals(stock, run_date).merge(items[["sku", "unit_cost"]], on="sku", how="inner")
    pol = policy_df.merge(items[["sku", "unit_cost"]], on="sku", how="inner", suffixes=("", "_item"))
    slow = alerts[alerts["alert_type"] == "slow_mover"]
    expiring = alerts[alerts["alert_type"] == "near_expiry"]
    acc = accuracy.assign(
        _abs=np.where(accuracy["actual"] > 0, accuracy["wape"].fillna(0.0) * accuracy["actual"], accuracy["forecast"])
    )
    demand = pol["demand_mean"] > 0
    parts = [
        _facts(tot, "location", items, inventory_value=lambda f: f["on_hand"] * f["unit_cost"]),
        _facts(
            pol.assign(
                _cogs=pol["demand_mean"] * pol["unit_cost"],
                _d=demand.astype(float),
                _o=(demand & (pol["available"] <= 0)).astype(float),
                _h=(demand & (pol["health_band"] == "healthy")).astype(float),
                _oo=(pol["on_order"] + pol["on_order_later"]) * pol["unit_cost"],
            ),
            "location",
            items,
            on_order_value=lambda f: f["_oo"],
            cogs_per_day=lambda f: f["_cogs"],
            n_demand=lambda f: f["_d"],
            n_out=lambda f: f["_o"],
            n_healthy=lambda f: f["_h"],
        ),
        _facts(slow, "location", items, slow_value=lambda f: f["value_at_risk"]),
        _facts(expiring, "location", items, expiry_value=lambda f: f["value_at_risk"]),
        _facts(
            transfers,
            "to_location",
            items,
            transfer_count=1.0,
            transfer_units=lambda f: f["quantity"],
            transfer_cost=lambda f: f["transfer_cost"],
        ),
        _facts(acc, "location", items, abs_error=lambda f: f["_abs"], actual=lambda f: f["actual"]),
        *(
            [
                _facts(
                    purchases,
                    "location",
                    items,
                    purchase_count=1.0,
                    purchase_units=lambda f: f["quantity"],
                    purchase_value=lambda f: f["cost"],
                )
            ]
            if purchases is not None
            else []
        ),
        *_sales_facts(sales, items, rd),
        *_approved_facts(decisions, lanes, items, rd),
        *_last_horizon_facts(past_forecasts, sales, items),
        *_review_facts(review, items, rd),
        *_decision_facts(decisions, items, rd),
    ]
    facts = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else None
    cols = ["location", "category", *_SUMS]
    if facts is None:
        facts = pd.DataFrame({c: pd.Series(dtype="str" if c in ("location", "category") else "float64") for c in cols})
    facts = facts.reindex(columns=cols).fillna({c: 0.0 for c in _SUMS})
    levels = [
        facts,
        facts.assign(category=ALL),
        facts.assign(location=ALL),
        facts.assign(location=ALL, category=ALL),
    ]
    agg = pd.concat(levels, ignore_index=True).groupby(["location", "category"], as_index=False)[list(_SUMS)].sum()
    active = locations.loc[locations["active"].astype(bool), ["location"]].astype("str")
    missing = active[~active["location"].isin(agg.loc[agg["category"] == ALL, "location"])]
    network = pd.DataFrame({"location": [ALL], "category": [ALL]})
    fill = pd.concat([missing.assign(category=ALL), network], ignore_index=True)
    fill = fill[~fill.set_index(["location", "category"]).index.isin(agg.set_index(["location", "category"]).index)]
    agg = pd.concat([agg, fill.assign(**{c: 0.0 for c in _SUMS})], ignore_index=True)

    lag = (
        float((rd - past_forecasts["run_date"].max()).days)
        if past_forecasts is not None and len(past_forecasts)
        else np.nan
    )
    wide = pd.DataFrame(
        {
            "location": agg["location"],
            "category": agg["category"],
            "inventory_value": agg["inventory_value"],
            "days_of_inventory": _ratio(agg["inventory_value"], agg["cogs_per_day"]),
            "stockout_rate": _ratio(agg["n_out"], agg["n_demand"]),
            "slow_mover_value_share": _ratio(agg["slow_value"], agg["inventory_value"]),
            "near_expiry_value_share": _ratio(agg["expiry_value"], agg["inventory_value"]),
            "band_compliance": _ratio(agg["n_healthy"], agg["n_demand"]),
            "transfers_recommended_count": agg["transfer_count"],
            "transfers_recommended_units": agg["transfer_units"],
            "transfers_recommended_cost": agg["transfer_cost"],
            "purchases_proposed_count": agg["purchase_count"],
            "purchases_proposed_units": agg["purchase_units"],
            "purchases_proposed_value": agg["purchase_value"],
            "on_order_value": agg["on_order_value"],
            "forecast_wape": _ratio(agg["abs_error"], agg["actual"]),
            "turnover": _ratio(agg["cogs_window"] * (365.0 / TURNOVER_WINDOW_DAYS), agg["inventory_value"]),
            "fill_rate": np.nan,
            "transfers_approved_count": agg["approved_count"],
            "transfers_approved_units": agg["approved_units"],
            "transfers_approved_cost": agg["approved_cost"],
            "forecast_wape_last_horizon": _ratio(agg["lh_abs_error"], agg["lh_actual"]),
            "forecast_bias_last_horizon": _ratio(agg["lh_forecast"] - agg["lh_actual"], agg["lh_actual"]),
            "forecast_last_horizon_lag_days": lag,
            "transfer_lead_time_days": _ratio(agg["rv_lead_days"], agg["rv_received"]),
            "transfer_on_time_rate": _ratio(agg["rv_on_time"], agg["rv_received"]),
            "transfer_receipt_rate": _ratio(agg["rv_received_units"], agg["rv_approved_units"]),
            "transfer_cost_share_of_sales": _ratio(agg["rv_cost_window"], agg["sales_value_window"]),
            "transfer_expected_benefit": agg["rv_expected"],
            "transfer_realised_benefit": agg["rv_realised"],
            "transfer_benefit_realisation": _ratio(agg["rv_realised"], agg["rv_expected"]),
            "review_receiver_stockout_rate": _ratio(agg["rv_recv_out"], agg["rv_recv_known"]),
            "review_donor_stockout_rate": _ratio(agg["rv_donor_out"], agg["rv_donor_known"]),
            "decision_acceptance_rate": _ratio(agg["dc_approved"], agg["dc_decided"]),
            "decision_hours": _ratio(agg["dc_hours"], agg["dc_timed"]),
        }
    )
    long = wide.melt(id_vars=["location", "category"], value_vars=list(METRICS), var_name="metric", value_name="value")
    long["run_date"] = rd
    return long[[c for c in contract.KPIS.names if c != "run_id"]].reset_index(drop=True)


def kpis_stage(ctx: RunContext) -> StageResult:
    """Read inventory_policy, alerts, transfers, purchase_proposals, forecast_accuracy, stock, items,
    locations, sales, lanes, the planners' ``decisions`` and the ``past_forecasts`` of the last full
    horizon (both staged by the feedback stage) and the ``transfer_review``; write ``kpis``."""
    decisions = ctx.read("decisions")
    past = ctx.read("past_forecasts", table="forecasts")
    out = compute_kpis(
        ctx.read("inventory_policy"),
        ctx.read("alerts"),
        ctx.read("transfers"),
        ctx.read("forecast_accuracy"),
        ctx.read("stock"),
        ctx.read("items"),
        ctx.read("locations"),
        ctx.run_date,
        sales=ctx.read("sales"),
        decisions=decisions,
        lanes=ctx.read("lanes"),
        past_forecasts=past,
        review=ctx.read("transfer_review"),
        purchases=ctx.read("purchase_proposals"),
    )
    n = ctx.write("kpis", out.assign(run_id=ctx.run_id))
    return StageResult(
        stage="kpis",
        paths={"kpis": str(ctx.path("kpis"))},
        counts={"kpis": n, "decisions": len(decisions), "past_forecasts": len(past)},
    )
