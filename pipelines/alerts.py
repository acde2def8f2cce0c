"""Alerts stage: stockout risk, slow movers and dead stock, excess stock and near-expiry lots.

Each alert has a severity, units, a value at risk, an action code and an explanation in English
and Chinese built from the numbers. Method, per SKU x location of the inventory policy (mu = demand_mean,
L = lead_time_days, the policy row found as in :func:`pipelines.frames.lookup_policy`):

- ``stockout_risk``: mu > 0, available < reorder point, and the projected stockout day
  ``run_date + floor(max(available, 0) / mu)`` falls before the next receipt of an order placed
  today, ``run_date + ceil(L)``. units = shortfall over the lead time ``mu * L - max(available, 0)``;
  value = units x unit_price (sales at risk). Action ``expedite_or_transfer``.
  Severity by urgency: high when the stockout is at most 3 days away (or already happened),
  medium at most 7 days, else low.
- ``slow_mover``: on hand > 0 and no sale (quantity > 0) in the last ``slow_mover_days`` of the
  policy row, i.e. the last sale is more than that many days before the run date. A series never
  sold counts ("no sale recorded in N days of history") only when the sales history reaches back
  that far (otherwise we cannot tell). **Dead stock** is the same test with ``dead_stock_days``
  (policy row; default 3 x slow_mover_days): action ``clear_dead_stock`` (return, sell off or
  write off), else ``promote_or_transfer``. units = on hand; value = on hand x unit cost (value
  tied up). The alert type stays ``slow_mover`` for both, so KPIs of slow stock include dead stock.
- ``excess``: mu > 0 and available above both the order-up-to level and the top of the health
  band (``max_cover_days`` x mu): units = available - max(order_up_to, max_cover_days x mu); value
  at cost. Action ``transfer_out``; the explanation names up to three locations of the same SKU
  that are below their own order-up-to level (largest need first) and how many units each needs.
  Stock above the band is reported here, once (not again as a slow mover); stock with no forecast
  demand is left to the slow-mover alert.
- ``near_expiry``: per lot with an expiry date (first-expiry-first-out): at the forecast rate mu a
  location sells its lots in expiry order; a lot is sellable on the days before its expiry date,
  so what sells from it is ``clip(mu * days_to_expiry - units of earlier-expiring lots, 0, on_hand)``
  and the rest expires. A lot already expired (expiry date on or before the run date) expires in
  full and does not absorb demand. Lots without expiry are sold last and never expire. Value at
  cost. Action ``write_off`` when expired; else ``transfer_to_faster_location`` when another
  location of the SKU has a higher forecast rate (named in the explanation with its rate), else
  ``promote``. Severity: high when expired or expiring within 7 days, medium within 30 days, else low. SKUs without a policy row
  (e.g. discontinued) count with mu = 0.
- Severity of ``slow_mover`` and ``excess`` by value at cost: high from ``high_value`` (5,000),
  medium from ``medium_value`` (1,000), else low.

Limits: a flat forecast rate; reserved units are not tied to lots; no seasonality in the slow-mover
rule; values in the company currency without conversion.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from pipelines import contract, explain
from pipelines.context import RunContext, StageResult
from pipelines.frames import KEY, history_start, latest_snapshot, lookup_policy, policies_with_extras

HIGH_VALUE = 5000.0
MEDIUM_VALUE = 1000.0
OUTPUT_COLUMNS = [c for c in contract.ALERTS.names if c != "run_id"]
POLICY_COLUMNS = KEY + [
    "category",
    "abc_class",
    "demand_mean",
    "lead_time_days",
    "reorder_point",
    "order_up_to",
    "safety_stock",
    "on_hand",
    "available",
    "days_of_cover",
]


def _value_severity(value: pd.Series, high_value: float, medium_value: float) -> np.ndarray:
    v = value.to_numpy(float)
    return np.where(v >= high_value, "high", np.where(v >= medium_value, "medium", "low"))


def _days_severity(days: np.ndarray, high_days: int, medium_days: int) -> np.ndarray:
    return np.where(days <= high_days, "high", np.where(days <= medium_days, "medium", "low"))


def _finish(df: pd.DataFrame, alert_type: str, action: pd.Series | str, run_date: pd.Timestamp) -> pd.DataFrame:
    out = df.assign(alert_type=alert_type, action=action, run_date=run_date)
    if "lot" not in out.columns:
        out["lot"] = ""
    if "event_date" not in out.columns:
        out["event_date"] = pd.NaT
    return out[OUTPUT_COLUMNS]


def stockout_alerts(p: pd.DataFrame, run_date: date) -> pd.DataFrame:
    """``p``: policy rows with unit_price. See the module doc."""
    rd = pd.Timestamp(run_date)
    mu = p["demand_mean"].to_numpy(float)
    avail = p["available"].to_numpy(float)
    lead = p["lead_time_days"].to_numpy(float)
    has = mu > 0
    days_out = np.where(has, np.floor(np.maximum(avail, 0.0) / np.where(has, mu, 1.0)), np.inf)
    hit = has & (avail < p["reorder_point"].to_numpy(float)) & (days_out < lead)
    a = p.loc[hit].copy()
    d = days_out[hit].astype(np.int64)
    receipt_days = np.ceil(lead[hit]).astype(np.int64)
    a["event_date"] = rd + pd.to_timedelta(d, unit="D")
    a["receipt_date"] = rd + pd.to_timedelta(receipt_days, unit="D")
    a["days_before_receipt"] = receipt_days - d
    a["units"] = mu[hit] * lead[hit] - np.maximum(avail[hit], 0.0)
    a["value_at_risk"] = a["units"] * a["unit_price"]
    a["severity"] = _days_severity(d, 3, 7)
    a["explanation_en"], a["explanation_zh"] = explain.stockout_sentences(a)
    return _finish(a, "stockout_risk", "expedite_or_transfer", rd)


def slow_mover_alerts(
    p: pd.DataFrame, sales: pd.DataFrame, run_date: date, high_value: float, medium_value: float
) -> pd.DataFrame:
    """``p``: policy rows with unit_cost, slow_mover_days and dead_stock_days. See the module doc."""
    rd = pd.Timestamp(run_date)
    sold = sales.loc[(sales["quantity"] > 0) & (sales["date"] < rd), KEY + ["date"]]
    last = sold.groupby(KEY, as_index=False, sort=False)["date"].max().rename(columns={"date": "last_sale_date"})
    a = p.merge(last, on=KEY, how="left")
    days_since = (rd - a["last_sale_date"]).dt.days
    first = history_start(sales)
    history = -1 if first is None else (rd - first).days
    n = a["slow_mover_days"].astype("int64")
    dead_n = a["dead_stock_days"].fillna(3 * n).astype("int64")
    never = a["last_sale_date"].isna()
    slow = (~never & (days_since > n)) | (never & (history >= n))
    dead = (~never & (days_since > dead_n)) | (never & (history >= dead_n))
    hit = (a["on_hand"] > 0) & slow
    a = a.loc[hit].copy()
    a["dead"] = dead[hit]
    a["history_days"] = history
    a["days_since_sale"] = days_since[hit]
    a["dead_stock_days"] = dead_n[hit]
    a["units"] = a["on_hand"]
    a["value_at_risk"] = a["on_hand"] * a["unit_cost"]
    a["severity"] = _value_severity(a["value_at_risk"], high_value, medium_value)
    a["explanation_en"], a["explanation_zh"] = explain.slow_mover_sentences(a)
    action = pd.Series(np.where(a["dead"], "clear_dead_stock", "promote_or_transfer"), index=a.index, dtype="str")
    return _finish(a, "slow_mover", action, rd)


def _receivers(p: pd.DataFrame, top: int = 3) -> pd.Series:
    """Per SKU: the locations below their order-up-to level (with demand), largest need first, as
    text "S2 (12), S3 (4)" (units needed); at most ``top`` names."""
    need = p["order_up_to"] - p["available"]
    mask = (p["demand_mean"] > 0) & (need > 0.5)
    if not mask.any():
        return pd.Series(dtype="str")
    r = p.loc[mask, ["sku", "location"]].assign(need=need[mask])
    if r.empty:
        return pd.Series(dtype="str")
    r = r.sort_values(["sku", "need", "location"], ascending=[True, False, True], kind="mergesort")
    r["_rank"] = r.groupby("sku", sort=False).cumcount()
    r = r[r["_rank"] < top]
    r["txt"] = r["location"].astype("str") + " (" + explain.num(r["need"], 0) + ")"
    wide = r.pivot(index="sku", columns="_rank", values="txt")
    out = wide[0].astype("str")
    for k in range(1, wide.shape[1]):
        nxt = wide[k]
        out = out.where(nxt.isna(), out + ", " + nxt.fillna("").astype("str"))
    return out


def excess_alerts(p: pd.DataFrame, run_date: date, high_value: float, medium_value: float) -> pd.DataFrame:
    """``p``: policy rows with unit_cost and max_cover_days. See the module doc."""
    rd = pd.Timestamp(run_date)
    ceiling = np.maximum(p["order_up_to"], p["max_cover_days"] * p["demand_mean"])
    units = p["available"] - ceiling
    hit = (p["demand_mean"] > 0) & (units > 1e-9)
    a = p.loc[hit].copy()
    a["ceiling"] = ceiling[hit]
    a["units"] = units[hit]
    a["value_at_risk"] = a["units"] * a["unit_cost"]
    a["severity"] = _value_severity(a["value_at_risk"], high_value, medium_value)
    a["receivers"] = a["sku"].map(_receivers(p)).fillna("").astype("str")
    a["explanation_en"], a["explanation_zh"] = explain.excess_sentences(a)
    return _finish(a, "excess", "transfer_out", rd)


def expiring_units(lots: pd.DataFrame, run_date: date) -> pd.DataFrame:
    """FEFO projection per lot. ``lots``: sku, location, lot, expiry_date, on_hand, demand_mean.

    Adds days_to_expiry, expired, units_sold_before_expiry and units_expiring (see module doc);
    rows sorted by sku, location, expiry_date, lot.
    """
    rd = pd.Timestamp(run_date)
    df = lots.sort_values(KEY + ["expiry_date", "lot"], kind="mergesort").reset_index(drop=True)
    d = (df["expiry_date"] - rd).dt.days.to_numpy(np.int64)
    on_hand = df["on_hand"].to_numpy(float)
    expired = d <= 0
    sellable = np.where(expired, 0.0, on_hand)
    df["_sellable"] = sellable
    before = df.groupby(KEY, sort=False)["_sellable"].cumsum().to_numpy(float) - sellable
    demand = df["demand_mean"].to_numpy(float) * np.maximum(d, 0)
    sold = np.clip(demand - before, 0.0, sellable)
    df["days_to_expiry"] = d
    df["expired"] = expired
    df["units_sold_before_expiry"] = sold
    df["units_expiring"] = on_hand - sold
    return df.drop(columns="_sellable")


def near_expiry_alerts(stock: pd.DataFrame, p: pd.DataFrame, items: pd.DataFrame, run_date: date) -> pd.DataFrame:
    """Lots of the latest snapshot with an expiry date that will not sell in time."""
    rd = pd.Timestamp(run_date)
    snap = latest_snapshot(stock, run_date)
    lots = snap.loc[snap["expiry_date"].notna() & (snap["on_hand"] > 0), KEY + ["lot", "expiry_date", "on_hand"]]
    lots = lots.merge(p[KEY + ["demand_mean"]], on=KEY, how="left")
    lots["demand_mean"] = lots["demand_mean"].fillna(0.0)
    lots = lots.merge(items[["sku", "unit_cost"]], on="sku", how="left")
    a = expiring_units(lots, run_date)
    a = a.loc[a["units_expiring"] > 1e-9].copy()
    a["units"] = a["units_expiring"]
    a["value_at_risk"] = a["units"] * a["unit_cost"].fillna(0.0)
    a["event_date"] = a["expiry_date"]
    a["severity"] = _days_severity(a["days_to_expiry"].to_numpy(np.int64), 7, 30)
    # the location of the same SKU with the highest forecast rate (ties: first by code)
    fast = p.loc[p["demand_mean"] > 0, KEY + ["demand_mean"]].sort_values(
        ["sku", "demand_mean", "location"], ascending=[True, False, True], kind="mergesort"
    )
    fast = fast.drop_duplicates("sku").rename(columns={"location": "best_location", "demand_mean": "best_rate"})
    a = a.merge(fast, on="sku", how="left")
    faster = a["best_location"].notna() & (a["best_location"] != a["location"])
    faster &= a["best_rate"].fillna(0.0) > a["demand_mean"]
    a["best_location"] = a["best_location"].where(faster, "").astype("str")
    a["best_rate"] = a["best_rate"].where(faster, 0.0)
    expired = a["expired"].astype(bool)
    action = np.where(expired, "write_off", np.where(faster, "transfer_to_faster_location", "promote"))
    a["action_code"] = action
    a["explanation_en"], a["explanation_zh"] = explain.near_expiry_sentences(a)
    return _finish(a, "near_expiry", pd.Series(action, index=a.index, dtype="str"), rd)


def compute_alerts(
    policy_df: pd.DataFrame,
    stock: pd.DataFrame,
    sales: pd.DataFrame,
    items: pd.DataFrame,
    policies: pd.DataFrame,
    run_date: date,
    *,
    high_value: float = HIGH_VALUE,
    medium_value: float = MEDIUM_VALUE,
) -> pd.DataFrame:
    """All alerts (``alerts`` columns without run_id) for the run date."""
    p = policy_df[POLICY_COLUMNS].reset_index(drop=True)
    p = pd.concat([p, lookup_policy(p, policies)], axis=1)
    p = p.merge(items[["sku", "unit_cost", "unit_price"]], on="sku", how="left")
    parts = [
        stockout_alerts(p, run_date),
        slow_mover_alerts(p, sales, run_date, high_value, medium_value),
        excess_alerts(p, run_date, high_value, medium_value),
        near_expiry_alerts(stock, p, items, run_date),
    ]
    parts = [x for x in parts if len(x)]
    if not parts:
        return contract.empty("alerts")[OUTPUT_COLUMNS]
    return pd.concat(parts, ignore_index=True)


def alerts_stage(ctx: RunContext) -> StageResult:
    """Read inventory_policy, stock, sales, items, policies (with the configured optional
    parameters); write ``alerts``."""
    out = compute_alerts(
        ctx.read("inventory_policy"),
        ctx.read("stock"),
        ctx.read("sales"),
        ctx.read("items"),
        policies_with_extras(ctx.read("policies"), ctx.cfg.policies),
        ctx.run_date,
    )
    n = ctx.write("alerts", out.assign(run_id=ctx.run_id))
    by_type = out["alert_type"].value_counts().sort_index()
    return StageResult(
        stage="alerts",
        paths={"alerts": str(ctx.path("alerts"))},
        counts={"alerts": n},
        notes=[", ".join(f"{k}: {v}" for k, v in by_type.items())] if n else [],
    )
