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
- Severity of ``slow_mover`` and ``excess`` by value at cost: high from the policy row's
  ``alert_high_value`` (5,000), medium from ``alert_medium_value`` (1,000), else low.

Severity of ``stockout_risk`` and ``near_expiry`` needs money as well as a date: "high" only with at
least the row's ``alert_urgent_value`` (500) at risk, "medium" from ``alert_material_value`` (50),
else "low", however close. An alert with less than ``alert_materiality`` (10) at risk is counted
per type (``alert_noise.json``, the report and the digest say how many and their value), not listed. A stock-out of less than half a unit over the lead time, or less than half a unit expiring, is
not raised.

**Alerts and the transfer plan.** The nightly stage runs after the transfers stage and checks every
alert against the night's plan (:class:`Plan`), so the alerts and the plan say the same thing:
``plan_units`` (units the plan moves for the alert), ``plan_locations`` (the other ends, largest
first) and ``plan_reason``; the action and the explanation follow from them:

- stock-out: ``covered`` (planned inbound >= units short - 0.5: ``approve_transfer``),
  ``partly_covered`` (``approve_transfer_and_expedite``), else ``expedite_purchase`` because of
  ``no_donor`` (no other location above its own reorder point), ``no_lane`` (none of those has a
  lane here), ``lane_too_slow`` (the fastest such lane takes at least the lead time of a purchase)
  or ``not_worth_it`` (the optimiser found the move costs more than it saves, or the donors need
  their stock);
- excess: ``covered`` / ``partly_covered`` (``approve_transfer``), else ``stop_ordering`` because of
  ``no_receiver`` (no other location below its order-up-to level), ``no_lane`` or ``not_worth_it``;
- near-expiry: planned outbound units that arrive before a lot's expiry go to the lots
  first-expiry-first-out: ``covered`` (``approve_transfer``, ship the lot first), ``partly_covered``
  (``approve_transfer_and_promote``); ``expired`` (``write_off``); else, over the lanes out of the
  location to locations that sell the SKU, what each could sell before the expiry
  (rate x (days to expiry - transit)): ``receiver_possible`` (the best could sell at least one unit
  and those units are worth more at cost than the freight of a shipment of their own, units x cost
  per unit + the lane's fixed cost: ``consider_transfer``, naming it, how many and both amounts; the
  plan only moves stock to cover stock-outs), ``not_worth_it`` (the freight is not less than their
  value), ``lane_too_slow``, ``no_lane`` or ``no_receiver_before_expiry`` (``promote``, write off the
  rest).

Without a plan (``transfers=None``, e.g. the benchmarks) the actions are the plan-free ones above.

Limits: a flat forecast rate; reserved units are not tied to lots; no seasonality in the slow-mover
rule; values in the company currency without conversion.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from pipelines import contract, explain
from pipelines.context import RunContext, StageResult
from pipelines.frames import EXTRA_PARAMS, KEY, history_start, latest_snapshot, lookup_policy, policies_with_extras

#: the defaults of the policy rows' alert thresholds (pipelines.config.PolicyRow): slow movers and
#: excess are "high" from HIGH_VALUE at cost, "medium" from MEDIUM_VALUE; an urgent stock-out or
#: expiry is "high" only with at least URGENT_VALUE at risk, "medium" from MATERIAL_VALUE, below
#: that "low", however close (so "high" means money, not just a date); an alert with less than
#: MATERIALITY at risk is counted, not listed
HIGH_VALUE = EXTRA_PARAMS["alert_high_value"]
MEDIUM_VALUE = EXTRA_PARAMS["alert_medium_value"]
URGENT_VALUE = EXTRA_PARAMS["alert_urgent_value"]
MATERIAL_VALUE = EXTRA_PARAMS["alert_material_value"]
MATERIALITY = EXTRA_PARAMS["alert_materiality"]
#: a stock-out (or an expiry) of less than half a unit is not raised
MIN_UNITS = 0.5
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


def _value_severity(a: pd.DataFrame) -> np.ndarray:
    """By value at cost against the row's ``alert_high_value`` / ``alert_medium_value``."""
    v = a["value_at_risk"].to_numpy(float)
    high, medium = a["alert_high_value"].to_numpy(float), a["alert_medium_value"].to_numpy(float)
    return np.where(v >= high, "high", np.where(v >= medium, "medium", "low"))


def _days_severity(days: np.ndarray, high_days: int, medium_days: int) -> np.ndarray:
    return np.where(days <= high_days, "high", np.where(days <= medium_days, "medium", "low"))


def _finish(df: pd.DataFrame, alert_type: str, action: pd.Series | str, run_date: pd.Timestamp) -> pd.DataFrame:
    out = df.assign(alert_type=alert_type, action=action, run_date=run_date)
    if "lot" not in out.columns:
        out["lot"] = ""
    if "event_date" not in out.columns:
        out["event_date"] = pd.NaT
    for col, default in (("plan_units", 0.0), ("plan_locations", ""), ("plan_reason", "")):
        if col not in out.columns:
            out[col] = default
    return out[OUTPUT_COLUMNS]


def _top_names(df: pd.DataFrame, keys: list[str], name: str, weight: str, top: int = 3) -> pd.DataFrame:
    """Per ``keys``: the ``name`` values with the largest ``weight`` (ties by name), at most ``top``,
    joined as "A, B, C" in column ``names``."""
    if df.empty:
        return pd.DataFrame(columns=[*keys, "names"])
    r = df.sort_values([*keys, weight, name], ascending=[True] * len(keys) + [False, True], kind="mergesort")
    r = r.drop_duplicates([*keys, name])
    r = r.assign(_rank=r.groupby(keys, sort=False).cumcount())
    r = r[r["_rank"] < top]
    wide = r.pivot(index=keys, columns="_rank", values=name)
    out = wide[0].astype("str")
    for k in range(1, wide.shape[1]):
        nxt = wide[k]
        out = out.where(nxt.isna(), out + ", " + nxt.fillna("").astype("str"))
    return out.rename("names").reset_index()


class Plan:
    """The night's transfer plan and lanes, to check every alert against (see the module doc,
    "Alerts and the transfer plan")."""

    def __init__(self, transfers: pd.DataFrame, lanes: pd.DataFrame, p: pd.DataFrame) -> None:
        self.t = transfers[["sku", "from_location", "to_location", "quantity", "arrival_date"]].copy()
        self.t["arrival_date"] = pd.to_datetime(self.t["arrival_date"])
        self.lanes = lanes[["from_location", "to_location", "transit_days", "cost_per_unit", "fixed_cost_per_shipment"]]
        self.p = p

    def _flow(self, own: str, other: str) -> pd.DataFrame:
        """Planned units per (sku, ``own`` location): total, first arrival, counterparts by size."""
        t = self.t.rename(columns={own: "location"})
        g = t.groupby(KEY, as_index=False, sort=False).agg(
            plan_units=("quantity", "sum"), plan_arrival=("arrival_date", "min")
        )
        names = _top_names(t, KEY, other, "quantity").rename(columns={"names": "plan_locations"})
        return g.merge(names, on=KEY, how="left")

    def _attach(self, a: pd.DataFrame, flow: pd.DataFrame) -> pd.DataFrame:
        a = a.merge(flow, on=KEY, how="left")
        a["plan_units"] = a["plan_units"].fillna(0.0)
        a["plan_locations"] = a["plan_locations"].fillna("").astype("str")
        return a

    def _candidates(self, a: pd.DataFrame, cand: pd.DataFrame, outbound: bool) -> pd.DataFrame:
        """Pairs (alert row, other location of the SKU) with the lane between them (transit NaN when
        there is none): from the candidate to the alert's location, or the other way when ``outbound``."""
        pairs = a[["_row", "sku", "location"]].merge(cand, on="sku")
        pairs = pairs[pairs["other"] != pairs["location"]]
        src, dst = ("location", "other") if outbound else ("other", "location")
        lanes = self.lanes.rename(columns={"from_location": src, "to_location": dst})
        return pairs.merge(lanes, on=[src, dst], how="left")

    def stockouts(self, a: pd.DataFrame) -> pd.DataFrame:
        a = self._attach(a.assign(_row=np.arange(len(a))), self._flow("to_location", "from_location"))
        spare = self.p["available"] - self.p["reorder_point"]
        cand = self.p.loc[spare > 0.5, ["sku", "location"]].assign(spare=spare[spare > 0.5])
        pairs = self._candidates(a, cand.rename(columns={"location": "other"}), outbound=False)
        n_donor = pairs.groupby("_row").size().reindex(a["_row"], fill_value=0).to_numpy()
        laned = pairs[pairs["transit_days"].notna()]
        n_lane = laned.groupby("_row").size().reindex(a["_row"], fill_value=0).to_numpy()
        fastest = laned.groupby("_row")["transit_days"].min().reindex(a["_row"]).to_numpy(float)
        names = _top_names(pairs, ["_row"], "other", "spare").set_index("_row")["names"]
        a["candidates"] = a["_row"].map(names).fillna("").astype("str")
        a["candidate_transit"] = fastest
        a["candidate_units"] = 0.0
        units, planned = a["units"].to_numpy(float), a["plan_units"].to_numpy(float)
        reason = np.select(
            [
                (planned > 0) & (planned >= units - 0.5),
                planned > 0,
                n_donor == 0,
                n_lane == 0,
                fastest >= np.ceil(a["lead_time_days"].to_numpy(float)),
            ],
            ["covered", "partly_covered", "no_donor", "no_lane", "lane_too_slow"],
            "not_worth_it",
        )
        a["plan_reason"] = reason
        a["_action"] = np.select(
            [reason == "covered", reason == "partly_covered"],
            ["approve_transfer", "approve_transfer_and_expedite"],
            "expedite_purchase",
        )
        return a.drop(columns="_row")

    def excess(self, a: pd.DataFrame) -> pd.DataFrame:
        a = self._attach(a.assign(_row=np.arange(len(a))), self._flow("from_location", "to_location"))
        need = self.p["order_up_to"] - self.p["available"]
        mask = (self.p["demand_mean"] > 0) & (need > 0.5)
        cand = self.p.loc[mask, ["sku", "location"]].assign(need=need[mask]).rename(columns={"location": "other"})
        pairs = self._candidates(a, cand, outbound=True)
        n_recv = pairs.groupby("_row").size().reindex(a["_row"], fill_value=0).to_numpy()
        n_lane = pairs[pairs["transit_days"].notna()].groupby("_row").size().reindex(a["_row"], fill_value=0).to_numpy()
        pairs = pairs.assign(txt=pairs["other"].astype("str") + " (" + explain.num(pairs["need"], 0) + ")")
        names = _top_names(pairs, ["_row"], "txt", "need").set_index("_row")["names"]
        a["candidates"] = a["_row"].map(names).fillna("").astype("str")
        a["candidate_transit"] = np.nan
        a["candidate_units"] = 0.0
        units, planned = a["units"].to_numpy(float), a["plan_units"].to_numpy(float)
        reason = np.select(
            [(planned > 0) & (planned >= units - 0.5), planned > 0, n_recv == 0, n_lane == 0],
            ["covered", "partly_covered", "no_receiver", "no_lane"],
            "not_worth_it",
        )
        a["plan_reason"] = reason
        a["_action"] = np.where(planned > 0, "approve_transfer", "stop_ordering")
        return a.drop(columns="_row")

    def near_expiry(self, a: pd.DataFrame) -> pd.DataFrame:
        """``a``: expiring lots (sorted by sku, location, expiry, lot, as expiring_units leaves them)."""
        a = a.reset_index(drop=True).assign(_row=np.arange(len(a)))
        out = self.t.rename(columns={"from_location": "location"})
        # the units planned out of the location that arrive before each lot's expiry ...
        m = a[["_row", *KEY, "expiry_date"]].merge(out, on=KEY)
        m = m[m["arrival_date"] < m["expiry_date"]]
        before = m.groupby("_row")["quantity"].sum().reindex(a["_row"], fill_value=0.0).to_numpy(float)
        # ... go to the lots first-expiry-first-out: with U the running total of expiring units and
        # B the units arriving before a lot's expiry (both growing with the expiry), the lots up to
        # i take T_i = U_i + min(0, min over k <= i of B_k - U_k), and lot i takes T_i - T_(i-1)
        units = a["units"].to_numpy(float)
        run = a.groupby(KEY, sort=False)["units"].cumsum().to_numpy(float)
        slack = pd.Series(before - run).groupby([a[k] for k in KEY], sort=False).cummin().to_numpy(float)
        taken = run + np.minimum(0.0, slack)
        prev = pd.Series(taken).groupby([a[k] for k in KEY], sort=False).shift(1).fillna(0.0).to_numpy(float)
        planned = np.clip(taken - prev, 0.0, units)
        firsts = m.groupby("_row")["arrival_date"].min().reindex(a["_row"])
        names = _top_names(m, ["_row"], "to_location", "quantity").set_index("_row")["names"]
        a["plan_units"] = planned
        a["plan_arrival"] = firsts.to_numpy()
        a["plan_locations"] = a["_row"].map(names).fillna("").astype("str")
        # where else it could sell before the expiry, over which lane
        rate = self.p.loc[self.p["demand_mean"] > 0, ["sku", "location", "demand_mean"]]
        pairs = self._candidates(a, rate.rename(columns={"location": "other", "demand_mean": "rate"}), outbound=True)
        n_sell = pairs.groupby("_row").size().reindex(a["_row"], fill_value=0).to_numpy()
        laned = pairs[pairs["transit_days"].notna()].copy()
        days = laned["_row"].map(a.set_index("_row")["days_to_expiry"]).to_numpy(float)
        laned["can_sell"] = laned["rate"].to_numpy(float) * np.maximum(days - laned["transit_days"].to_numpy(float), 0)
        n_lane = laned.groupby("_row").size().reindex(a["_row"], fill_value=0).to_numpy()
        fastest = laned.groupby("_row")["transit_days"].min().reindex(a["_row"]).to_numpy(float)
        best = laned.sort_values(["_row", "can_sell", "other"], ascending=[True, False, True], kind="mergesort")
        best = best.drop_duplicates("_row").set_index("_row").reindex(a["_row"])
        best_units = best["can_sell"].fillna(0.0).to_numpy(float)
        d = a["days_to_expiry"].to_numpy(float)
        a["candidates"] = best["other"].fillna("").astype("str").to_numpy()
        a["candidate_transit"] = np.where(best_units >= 1, best["transit_days"].to_numpy(float), fastest)
        movable = np.minimum(best_units, units - planned)
        a["candidate_units"] = movable
        # worth moving: their value at cost against the freight of a shipment of their own
        freight = movable * best["cost_per_unit"].fillna(0.0).to_numpy(float)
        freight += best["fixed_cost_per_shipment"].fillna(0.0).to_numpy(float)
        worth = movable * a["unit_cost"].fillna(0.0).to_numpy(float)
        a["candidate_freight"] = freight
        a["candidate_value"] = worth
        expired = a["expired"].astype(bool).to_numpy()
        reason = np.select(
            [
                expired,
                (planned > 0) & (planned >= units - 0.5),
                planned > 0,
                n_sell == 0,
                n_lane == 0,
                (best_units < 1) & (fastest >= d),
                best_units < 1,
                worth <= freight,
            ],
            [
                "expired",
                "covered",
                "partly_covered",
                "no_receiver_before_expiry",
                "no_lane",
                "lane_too_slow",
                "no_receiver_before_expiry",
                "not_worth_it",
            ],
            "receiver_possible",
        )
        a["plan_reason"] = reason
        a["_action"] = np.select(
            [reason == "expired", reason == "covered", reason == "partly_covered", reason == "receiver_possible"],
            ["write_off", "approve_transfer", "approve_transfer_and_promote", "consider_transfer"],
            "promote",
        )
        return a.drop(columns="_row")


def _materiality(
    severity: np.ndarray, value: pd.Series, urgent_value: np.ndarray | float, material_value: np.ndarray | float
) -> np.ndarray:
    """Cap a date-based severity by the money at risk: "high" needs ``urgent_value``, "medium"
    ``material_value``."""
    v = value.to_numpy(float)
    cap = np.where(v >= urgent_value, 0, np.where(v >= material_value, 1, 2))
    rank = np.select([severity == "high", severity == "medium"], [0, 1], 2)
    return np.array(["high", "medium", "low"], dtype=object)[np.maximum(rank, cap)].astype(str)


def stockout_alerts(p: pd.DataFrame, run_date: date, plan: Plan | None = None) -> pd.DataFrame:
    """``p``: policy rows with unit_price. See the module doc."""
    rd = pd.Timestamp(run_date)
    mu = p["demand_mean"].to_numpy(float)
    avail = p["available"].to_numpy(float)
    lead = p["lead_time_days"].to_numpy(float)
    has = mu > 0
    days_out = np.where(has, np.floor(np.maximum(avail, 0.0) / np.where(has, mu, 1.0)), np.inf)
    hit = has & (avail < p["reorder_point"].to_numpy(float)) & (days_out < lead)
    hit &= mu * lead - np.maximum(avail, 0.0) >= MIN_UNITS
    a = p.loc[hit].copy()
    d = days_out[hit].astype(np.int64)
    receipt_days = np.ceil(lead[hit]).astype(np.int64)
    a["event_date"] = rd + pd.to_timedelta(d, unit="D")
    a["receipt_date"] = rd + pd.to_timedelta(receipt_days, unit="D")
    a["days_before_receipt"] = receipt_days - d
    a["units"] = mu[hit] * lead[hit] - np.maximum(avail[hit], 0.0)
    a["value_at_risk"] = a["units"] * a["unit_price"]
    a["severity"] = _days_severity(d, 3, 7)
    if plan is None:
        a["explanation_en"], a["explanation_zh"] = explain.stockout_sentences(a)
        return _finish(a, "stockout_risk", "expedite_or_transfer", rd)
    a = plan.stockouts(a)
    a["explanation_en"], a["explanation_zh"] = explain.stockout_sentences(a)
    return _finish(a, "stockout_risk", a["_action"].astype("str"), rd)


def slow_mover_alerts(p: pd.DataFrame, sales: pd.DataFrame, run_date: date) -> pd.DataFrame:
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
    a["severity"] = _value_severity(a)
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


def excess_alerts(p: pd.DataFrame, run_date: date, plan: Plan | None = None) -> pd.DataFrame:
    """``p``: policy rows with unit_cost and max_cover_days. See the module doc."""
    rd = pd.Timestamp(run_date)
    ceiling = np.maximum(p["order_up_to"], p["max_cover_days"] * p["demand_mean"])
    units = p["available"] - ceiling
    hit = (p["demand_mean"] > 0) & (units >= MIN_UNITS)
    a = p.loc[hit].copy()
    a["ceiling"] = ceiling[hit]
    a["units"] = units[hit]
    a["value_at_risk"] = a["units"] * a["unit_cost"]
    a["severity"] = _value_severity(a)
    a["receivers"] = a["sku"].map(_receivers(p)).fillna("").astype("str")
    if plan is None:
        a["explanation_en"], a["explanation_zh"] = explain.excess_sentences(a)
        return _finish(a, "excess", "transfer_out", rd)
    a = plan.excess(a)
    a["explanation_en"], a["explanation_zh"] = explain.excess_sentences(a)
    return _finish(a, "excess", a["_action"].astype("str"), rd)


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


def near_expiry_alerts(
    stock: pd.DataFrame, p: pd.DataFrame, items: pd.DataFrame, run_date: date, plan: Plan | None = None
) -> pd.DataFrame:
    """Lots of the latest snapshot with an expiry date that will not sell in time."""
    rd = pd.Timestamp(run_date)
    snap = latest_snapshot(stock, run_date)
    lots = snap.loc[snap["expiry_date"].notna() & (snap["on_hand"] > 0), KEY + ["lot", "expiry_date", "on_hand"]]
    lots = lots.merge(p[KEY + ["demand_mean"]], on=KEY, how="left")
    lots["demand_mean"] = lots["demand_mean"].fillna(0.0)
    lots = lots.merge(items[["sku", "unit_cost"]], on="sku", how="left")
    a = expiring_units(lots, run_date)
    a = a.loc[a["units_expiring"] >= MIN_UNITS].copy()
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
    if plan is None:
        a["explanation_en"], a["explanation_zh"] = explain.near_expiry_sentences(a)
        return _finish(a, "near_expiry", pd.Series(action, index=a.index, dtype="str"), rd)
    a = plan.near_expiry(a)
    a["explanation_en"], a["explanation_zh"] = explain.near_expiry_sentences(a)
    return _finish(a, "near_expiry", a["_action"].astype("str"), rd)


#: the policy-row thresholds of the alerts (pipelines.config.PolicyRow), and the compute_alerts
#: keyword that overrides each for every row
THRESHOLDS = {
    "high_value": "alert_high_value",
    "medium_value": "alert_medium_value",
    "urgent_value": "alert_urgent_value",
    "material_value": "alert_material_value",
    "materiality": "alert_materiality",
}


def compute_alerts(
    policy_df: pd.DataFrame,
    stock: pd.DataFrame,
    sales: pd.DataFrame,
    items: pd.DataFrame,
    policies: pd.DataFrame,
    run_date: date,
    *,
    transfers: pd.DataFrame | None = None,
    lanes: pd.DataFrame | None = None,
    **thresholds: float,
) -> pd.DataFrame:
    """The alerts listed for the run date (``alerts`` columns without run_id); see
    :func:`compute_alerts_and_noise` (this drops the count of those below materiality)."""
    return compute_alerts_and_noise(
        policy_df, stock, sales, items, policies, run_date, transfers=transfers, lanes=lanes, **thresholds
    )[0]


def compute_alerts_and_noise(
    policy_df: pd.DataFrame,
    stock: pd.DataFrame,
    sales: pd.DataFrame,
    items: pd.DataFrame,
    policies: pd.DataFrame,
    run_date: date,
    *,
    transfers: pd.DataFrame | None = None,
    lanes: pd.DataFrame | None = None,
    **thresholds: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All alerts for the run date, split by materiality: (listed alerts, ``alerts`` columns without
    run_id; per alert type, the count and value at risk of those below their row's
    ``alert_materiality``, counted and not listed). With the night's ``transfers`` and ``lanes``
    (the nightly stage), every alert says what the plan does about it. ``thresholds``: keywords of
    :data:`THRESHOLDS`, overriding the policy rows' values for every row."""
    unknown = set(thresholds) - set(THRESHOLDS)
    if unknown:
        raise TypeError(f"compute_alerts: unknown threshold(s) {', '.join(sorted(unknown))}")
    p = policy_df[POLICY_COLUMNS].reset_index(drop=True)
    p = pd.concat([p, lookup_policy(p, policies)], axis=1)
    for kw, col in THRESHOLDS.items():
        if kw in thresholds:
            p[col] = float(thresholds[kw])
    p = p.merge(items[["sku", "unit_cost", "unit_price"]], on="sku", how="left")
    plan = None
    if transfers is not None:
        plan = Plan(transfers, lanes if lanes is not None else contract.empty("lanes"), p)
    parts = [
        stockout_alerts(p, run_date, plan),
        slow_mover_alerts(p, sales, run_date),
        excess_alerts(p, run_date, plan=plan),
        near_expiry_alerts(stock, p, items, run_date, plan),
    ]
    parts = [x for x in parts if len(x)]
    noise_cols = {
        "alert_type": pd.Series(dtype="str"),
        "alerts": pd.Series(dtype="int64"),
        "value_at_risk": pd.Series(dtype=float),
    }
    if not parts:
        return contract.empty("alerts")[OUTPUT_COLUMNS], pd.DataFrame(noise_cols)
    out = pd.concat(parts, ignore_index=True)
    # each alert's thresholds from its policy row (a lot of a SKU without one: the defaults)
    cols = list(THRESHOLDS.values())
    rows = out[KEY].merge(p[KEY + cols].drop_duplicates(KEY), on=KEY, how="left")
    for col in cols:
        fallback = float(thresholds.get(next(k for k, v in THRESHOLDS.items() if v == col), EXTRA_PARAMS[col]))
        rows[col] = rows[col].fillna(fallback)
    value = out["value_at_risk"].fillna(0.0)
    dated = out["alert_type"].isin(["stockout_risk", "near_expiry"]).to_numpy()
    sev = out["severity"].to_numpy(str)
    capped = _materiality(
        sev, value, rows["alert_urgent_value"].to_numpy(float), rows["alert_material_value"].to_numpy(float)
    )
    out["severity"] = np.where(dated, capped, sev)
    small = (value < rows["alert_materiality"]).to_numpy()
    noise = (
        out.loc[small]
        .groupby("alert_type", as_index=False, sort=True)
        .agg(alerts=("sku", "size"), value_at_risk=("value_at_risk", "sum"))
    )
    return out.loc[~small].reset_index(drop=True), noise


def plan_disagreements(alerts: pd.DataFrame, transfers: pd.DataFrame) -> pd.DataFrame:
    """Alerts that do not agree with the transfer plan (none when the stage works): an action to
    approve a transfer with no planned units, or planned units the plan does not hold (inbound to a
    stock-out's location, outbound from the others' location), or a location named that sends or
    receives nothing of the SKU there. Columns: the alert's key, action, plan_units, planned (what
    the plan holds), problem."""
    cols = ["alert_type", "sku", "location", "lot", "action", "plan_units", "planned", "problem"]
    a = alerts.reset_index(drop=True)
    if a.empty:
        return pd.DataFrame(columns=cols)
    t = transfers[["sku", "from_location", "to_location", "quantity"]]
    inbound = t.groupby(["sku", "to_location"])["quantity"].sum()
    outbound = t.groupby(["sku", "from_location"])["quantity"].sum()
    key = pd.MultiIndex.from_frame(a[["sku", "location"]])
    stockout = (a["alert_type"] == "stockout_risk").to_numpy()
    held = np.where(
        stockout,
        inbound.reindex(key).fillna(0.0).to_numpy(float),
        outbound.reindex(key).fillna(0.0).to_numpy(float),
    )
    a = a.assign(planned=held)
    approve = a["action"].astype("str").str.startswith("approve_transfer").to_numpy()
    units = a["plan_units"].to_numpy(float)
    # every named location is a real other end of a planned transfer of the SKU
    pairs = a.assign(_row=np.arange(len(a)), other=a["plan_locations"].astype("str").str.split(", ")).explode("other")
    pairs = pairs[pairs["other"].fillna("") != ""]
    ends = pd.concat(
        [
            t.rename(columns={"to_location": "location", "from_location": "other"}).assign(_in=True),
            t.rename(columns={"from_location": "location", "to_location": "other"}).assign(_in=False),
        ]
    )[["sku", "location", "other", "_in"]].drop_duplicates()
    pairs = pairs.assign(_in=pairs["alert_type"] == "stockout_risk")
    found = pairs.merge(ends, on=["sku", "location", "other", "_in"], how="left", indicator=True)
    unknown = np.zeros(len(a), dtype=bool)
    unknown[found.loc[found["_merge"] == "left_only", "_row"].to_numpy(np.int64)] = True
    problem = np.select(
        [approve & (units <= 0), units > held + 1e-6, unknown],
        [
            "approve a transfer the plan does not hold",
            "more planned units than the plan moves",
            "names a location no planned transfer of the SKU goes to or comes from",
        ],
        "",
    )
    out = a.assign(problem=problem)
    return out.loc[out["problem"] != "", cols].reset_index(drop=True)


def alerts_stage(ctx: RunContext) -> StageResult:
    """Read inventory_policy, stock, sales, items, policies (with the configured optional
    parameters), the night's transfers and the lanes; write ``alerts``."""
    out, noise = compute_alerts_and_noise(
        ctx.read("inventory_policy"),
        ctx.read("stock"),
        ctx.read("sales"),
        ctx.read("items"),
        policies_with_extras(ctx.read("policies"), ctx.cfg.policies),
        ctx.run_date,
        transfers=ctx.read("transfers"),
        lanes=ctx.read("lanes"),
    )
    n = ctx.write("alerts", out.assign(run_id=ctx.run_id))
    below: dict[str, dict[str, Any]] = {
        str(r.alert_type): {"alerts": int(r.alerts), "value_at_risk": round(float(r.value_at_risk), 2)}
        for r in noise.itertuples()
    }
    noise_path = ctx.write_json("alert_noise", {"below_materiality": below})
    by_type = out["alert_type"].value_counts().sort_index()
    notes = [", ".join(f"{k}: {v}" for k, v in by_type.items())] if n else []
    if below:
        notes.append(
            "below materiality, counted not listed: " + ", ".join(f"{k}: {v['alerts']}" for k, v in below.items())
        )
    return StageResult(
        stage="alerts",
        paths={"alerts": str(ctx.path("alerts")), "alert_noise": str(noise_path)},
        counts={"alerts": n, "alerts_below_materiality": int(sum(int(v["alerts"]) for v in below.values()))},
        notes=notes,
    )
