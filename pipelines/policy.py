"""Policy stage: ABC/XYZ classes, demand pattern, safety stock, reorder point, order-up-to, health band.

Method, per SKU x location of the forecast, all series at once (numpy / pandas, no row loop):

- **Demand rate** ``mu`` (units/day): the mean daily forecast ``mean`` over the forecast horizon
  (the ``forecasts`` contract columns only). ``demand_std`` (sigma_d): sample standard deviation
  (ddof=1) of daily units sold over the last ``std_days`` (56) observed days before the run date,
  days without a sale counting as 0 (0 with fewer than two observed days).
- **Lead time** L, its standard deviation sigma_L and the review period R come from
  ``lead_times``; when a SKU x location has none, the configured defaults are used and
  ``lead_time_defaulted`` is true (the explanation says so).
- **ABC by value** = units sold over the last ``abc_days`` (365) x unit cost, ranked; a row is A
  while the cumulative share of the rows ranked *before* it is below the first cut-off (default
  0.80), B below the second (0.95), else C (the largest is always A; no value = C). Computed twice:
  **network-wide** per SKU (``abc_class_network``) and **per location** among that location's
  SKUs (``abc_class_location``). ``items.abc_override`` wins in both. ``abc_class`` is the one
  named by ``policy.abc_scope`` (default ``network``) and picks the policy row.
- **XYZ** per SKU x location: coefficient of variation (std / mean, ddof=0) of weekly units over
  the last ``xyz_weeks`` (26) observed whole weeks; X up to the first cut-off (0.5), Y up to the
  second (1.0), else Z; a series with no sale in the window is Z.
- **Demand pattern** (Syntetos-Boylan-Croston on the same weekly buckets): ADI = observed weeks /
  weeks with a sale, CV^2 = squared CV of the non-zero weeks; ``smooth`` (ADI < 1.32, CV^2 < 0.49),
  ``erratic`` (ADI < 1.32), ``intermittent`` (CV^2 < 0.49), else ``lumpy``; ``no_demand`` without
  any sale in the window.
- **Policy row**: the most specific row of ``policies`` for (category, class):
  (category, class) > (category, *) > (*, class) > (*, *).
- **Lead-time demand** over the protection interval L + R: mean ``m = mu (L + R)``, variance
  ``V = (L + R) sigma_d^2 + mu^2 sigma_L^2`` (the standard formula with both variances).
- **Safety stock for the cycle service level** (CSL, the policy's ``service_level``):
  * smooth / erratic demand (normal approximation, ``ss_method = normal``):
    ``SS = z sqrt(V)``, ``z = Phi^-1(CSL)``;
  * intermittent / lumpy demand, and every series of a category listed in
    ``policy.special_categories`` (discrete, whole units): the lead-time demand is **negative
    binomial** fitted by moments (``n = m^2 / (V - m)``, ``p = m / V``) when V > m, else
    **Poisson(m)**; the order-up-to level is its CSL quantile ``S`` and ``SS = S - m``
    (``ss_method`` = ``negbin`` / ``poisson``).
  * Optional **fill-rate** (beta) target of the policy row (``fill_rate``): expected units short
    per review cycle must not exceed ``(1 - beta) mu R``. Normal: ``sqrt(V) G(z_beta)`` with the
    standard normal loss ``G``; discrete: ``E[(X - S)^+]`` of the fitted distribution (exact
    recursions). The larger of the CSL and the fill-rate safety stock is kept.
  * **Caps** in days of demand from the policy row: ``SS`` between ``safety_stock_min_days x mu``
    and ``safety_stock_max_days x mu``; ``ss_capped`` says when a cap bound; SS is never negative.
  * ``mu = 0``: ``ss_method = zero``, SS = 0 (nothing to protect).
- ``reorder_point = mu L + SS``; ``order_up_to = mu (L + R) + SS``.
- **Inventory position**: ``available = on_hand + in_transit + on_order - reserved`` (summed over
  lots; approved transfers on the way count in transit at the receiver and reserved at the donor;
  ``on_order`` = open purchase orders expected within the lead time + review period, overdue ones
  included; orders expected later are ``on_order_later``, left out of the position the stock-out
  and transfer decisions read, counted by the purchase proposals so nothing is bought twice);
  ``days_of_cover = available / mu`` (projected position, including what is in transit) and
  ``days_of_cover_on_hand = (on_hand - reserved) / mu``; null when mu = 0.
- **Health band** (库存健康线) per category / class from the policy row: ``no_demand`` when mu = 0,
  ``under`` below ``min_cover_days`` of (projected) cover, ``over`` above ``max_cover_days``, else
  ``healthy``. The band-compliance KPI (kpis stage) reads ``health_band``.

**Optimised method** (``policy.method: optimised``, opt-in; :func:`optimised_policy`): after the
above, each series' reorder point and order-up-to level are replaced by the plan of
:func:`pipelines.replenishment.optimise_policy`: one group per ABC class, the least average stock
value whose model fill rate (or cycle service) reaches the class's target (``policy.optimiser_target``,
else the policy rows' own), from the forecast stage's calibrated ``lead_time_demand`` (read as an
optional input) and the item master's MOQ / order multiple when it has them (else 1). Then
``safety_stock = reorder_point - mu L`` (never negative), ``ss_method`` = the distribution used,
no days-of-demand cap; the explanation says which plan chose the reorder point. Series without
demand keep the values above. Without an order cost the plan orders the smallest quantity.

The ``inventory_policy`` table keeps its contract columns; the full frame (classes, pattern,
method, caps, on-hand cover, policy parameters) is written to the staging file
``policy_detail.parquet`` for the alerts stage and for analysis.

Limits: sigma_d from sales, not from the errors of the forecast in use; the demand rate is flat
over the protection interval; forecast quantiles are not used (they are daily; lead-time
quantiles would be better); the lead time is independent of the source's load.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pac
import pyarrow.parquet as pq
from scipy.stats import nbinom, norm, poisson

from pipelines import explain, stages
from pipelines.classify import ABC_DAYS, abc_classes, location_abc
from pipelines.context import RunContext, StageResult
from pipelines.frames import (
    KEY,
    add_open_transfers,
    history_start,
    lookup_policy,
    on_order,
    policies_with_extras,
    reorder_point_sigma,
    stock_totals,
)

STD_DAYS = 56
XYZ_WEEKS = 26
DETAIL = "policy_detail"
CURVE = "policy_curve.json"


# --------------------------------------------------------------------------------------------
# Kernels (pure numpy, tested on hand-made arrays)
# --------------------------------------------------------------------------------------------


def weekly_stats(w: np.ndarray) -> dict[str, np.ndarray]:
    """Per row of a weekly matrix ``[n, weeks]``: mean, CV (ddof=0), ADI and CV^2 of non-zero weeks."""
    w = np.asarray(w, float)
    n, k = w.shape
    if k == 0:
        z = np.zeros(n)
        return {"mean": z, "cv": np.full(n, np.nan), "adi": np.full(n, np.inf), "cv2": np.full(n, np.nan)}
    mean = w.mean(axis=1)
    sd = w.std(axis=1)
    nz = w > 0
    cnt = nz.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = np.where(mean > 0, sd / mean, np.nan)
        adi = np.where(cnt > 0, k / cnt, np.inf)
        nz_mean = np.where(cnt > 0, w.sum(axis=1) / cnt, np.nan)
        nz_var = np.where(cnt > 0, (np.where(nz, w, 0.0) ** 2).sum(axis=1) / cnt - nz_mean**2, np.nan)
        cv2 = np.where(cnt > 0, np.clip(nz_var, 0.0, None) / nz_mean**2, np.nan)
    return {"mean": mean, "cv": cv, "adi": adi, "cv2": cv2}


def xyz_class(cv: np.ndarray, cutoffs: Sequence[float] = (0.5, 1.0)) -> np.ndarray:
    """X / Y / Z from the CV of weekly demand (NaN = no demand = Z)."""
    cv = np.asarray(cv, float)
    return np.where(np.isnan(cv), "Z", np.where(cv <= cutoffs[0], "X", np.where(cv <= cutoffs[1], "Y", "Z")))


def demand_pattern(adi: np.ndarray, cv2: np.ndarray, adi_cut: float = 1.32, cv2_cut: float = 0.49) -> np.ndarray:
    """Syntetos-Boylan classes: smooth / erratic / intermittent / lumpy, or no_demand."""
    adi, cv2 = np.asarray(adi, float), np.asarray(cv2, float)
    none = ~np.isfinite(adi)
    frequent = adi < adi_cut
    steady = np.nan_to_num(cv2, nan=0.0) < cv2_cut
    return np.select(
        [none, frequent & steady, frequent, steady], ["no_demand", "smooth", "erratic", "intermittent"], "lumpy"
    )


def _normal_loss(z: np.ndarray) -> np.ndarray:
    """Standard normal loss G(z) = E[(Z - z)^+]."""
    return norm.pdf(z) - z * norm.sf(z)


_Z_GRID = np.linspace(-5.0, 8.0, 26001)
_G_GRID = _normal_loss(_Z_GRID)  # decreasing in z


def normal_loss_inverse(target: np.ndarray) -> np.ndarray:
    """z with G(z) = target (G decreasing; clipped to the grid -5 .. 8)."""
    t = np.asarray(target, float)
    return np.interp(t, _G_GRID[::-1], _Z_GRID[::-1])


def negbin_params(m: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moment fit of scipy's nbinom(n, p): n = m^2 / (v - m), p = m / v (needs v > m > 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return m**2 / (v - m), m / v


def discrete_loss(s: np.ndarray, m: np.ndarray, n: np.ndarray, p: np.ndarray, is_nb: np.ndarray) -> np.ndarray:
    """E[(X - s)^+] for integer s >= 0, X ~ nbinom(n, p) where ``is_nb`` else Poisson(m).

    Poisson: m P(X >= s) - s P(X > s). Negative binomial: sum_{k>s} k f(k) =
    (1-p)/p (s f(s) + n P(X >= s)), minus s P(X > s).
    """
    s = np.asarray(s, float)
    m, n, p, is_nb = (np.asarray(a) for a in (m, n, p, is_nb))
    out = np.zeros(len(s))
    b, q = is_nb.astype(bool), ~is_nb.astype(bool)
    sp, mp = s[q], m[q]
    out[q] = mp * poisson.sf(sp - 1, mp) - sp * poisson.sf(sp, mp)
    sn, nn, pn = s[b], n[b], p[b]
    out[b] = (1 - pn) / pn * (sn * nbinom.pmf(sn, nn, pn) + nn * nbinom.sf(sn - 1, nn, pn)) - sn * nbinom.sf(sn, nn, pn)
    return np.clip(out, 0.0, None)


def safety_stock_kernel(
    mu: np.ndarray,
    sd: np.ndarray,
    lead: np.ndarray,
    lead_sd: np.ndarray,
    review: np.ndarray,
    csl: np.ndarray,
    fill_rate: np.ndarray,
    discrete: np.ndarray,
    ss_min_days: np.ndarray,
    ss_max_days: np.ndarray,
) -> dict[str, np.ndarray]:
    """Safety stock per series (see the module doc). All inputs are arrays of the same length;
    ``fill_rate`` / ``ss_max_days`` NaN = none. Returns safety_stock, ss_method, ss_capped,
    lt_mean (m) and lt_std (sqrt V)."""
    mu, sd, lead, lead_sd, review = (np.asarray(a, float) for a in (mu, sd, lead, lead_sd, review))
    csl, fill_rate = np.asarray(csl, float), np.asarray(fill_rate, float)
    discrete = np.asarray(discrete, bool)
    prot = lead + review
    m = mu * prot
    v = prot * sd**2 + mu**2 * lead_sd**2
    s_x = np.sqrt(v)
    has = mu > 0
    # normal
    z = norm.ppf(csl)
    ss_norm = z * s_x
    want_fr = has & ~np.isnan(fill_rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.where(want_fr, (1 - np.nan_to_num(fill_rate, nan=1.0)) * mu * review, 0.0)
        z_fr = normal_loss_inverse(np.where(s_x > 0, target / np.where(s_x > 0, s_x, 1.0), np.inf))
    ss_norm = np.where(want_fr & (s_x > 0), np.maximum(ss_norm, z_fr * s_x), ss_norm)
    # discrete (each distribution evaluated on its own rows only)
    is_nb = discrete & has & (v > m * (1 + 1e-9))
    is_po = discrete & has & ~is_nb
    n, p = negbin_params(np.where(is_nb, m, 1.0), np.where(is_nb, v, 2.0))
    s_csl = np.zeros(len(m))
    s_csl[is_nb] = nbinom.ppf(csl[is_nb], n[is_nb], p[is_nb])
    s_csl[is_po] = poisson.ppf(csl[is_po], m[is_po])
    rows = np.flatnonzero(discrete & want_fr)
    if len(rows):
        # smallest integer S >= S_csl with E[(X - S)^+] <= target: bisection on all rows at once;
        # upper bound m + 12 sd + 12 (the loss there is far below any practical target)
        lo = s_csl[rows].copy()
        hi = np.maximum(np.ceil(m[rows] + 12 * s_x[rows] + 12), lo)
        args = (m[rows], n[rows], p[rows], is_nb[rows])
        ok_lo = discrete_loss(lo, *args) <= target[rows]
        hi_cur = np.where(ok_lo, lo, hi)  # invariant: hi_cur meets the target, lo_cur does not
        lo_cur = lo.copy()
        for _ in range(64):
            active = hi_cur - lo_cur > 1
            if not active.any():
                break
            mid = np.floor((lo_cur + hi_cur) / 2)
            good = discrete_loss(mid, *args) <= target[rows]
            hi_cur = np.where(active & good, mid, hi_cur)
            lo_cur = np.where(active & ~good, mid, lo_cur)
        s_csl[rows] = np.where(ok_lo, lo, hi_cur)
    ss_disc = s_csl - m
    ss = np.where(has, np.where(discrete, ss_disc, ss_norm), 0.0)
    lo_cap = np.asarray(ss_min_days, float) * mu
    hi_cap = np.where(np.isnan(np.asarray(ss_max_days, float)), np.inf, np.asarray(ss_max_days, float) * mu)
    capped = has & ((ss < lo_cap - 1e-12) | (ss > hi_cap + 1e-12))
    ss = np.clip(np.clip(ss, lo_cap, hi_cap), 0.0, None)
    method = np.where(~has, "zero", np.where(discrete, np.where(is_nb, "negbin", "poisson"), "normal"))
    return {"safety_stock": ss, "ss_method": method, "ss_capped": capped, "lt_mean": m, "lt_std": s_x}


# --------------------------------------------------------------------------------------------
# Frame helpers
# --------------------------------------------------------------------------------------------


def _window_rows(
    sales: pd.DataFrame, keys: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, day offset, quantity) of the sales in ``[start, end)`` that belong to ``keys``."""
    w = sales.loc[(sales["date"] >= start) & (sales["date"] < end), KEY + ["date", "quantity"]]
    if w.empty or keys.empty:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0)
    idx = pd.MultiIndex.from_frame(keys[KEY].astype("str")).get_indexer(
        pd.MultiIndex.from_arrays([w["sku"].astype("str"), w["location"].astype("str")])
    )
    keep = idx >= 0
    days = (w["date"] - start).dt.days.to_numpy(np.int64)
    return idx[keep].astype(np.int64), days[keep], w["quantity"].to_numpy(float)[keep]


def sales_matrices(
    sales: pd.DataFrame, keys: pd.DataFrame, run_date: date, std_days: int, xyz_weeks: int
) -> tuple[np.ndarray, np.ndarray]:
    """Daily matrix of the last ``std_days`` observed days and weekly matrix of the last
    ``xyz_weeks`` observed whole weeks (7-day buckets ending the day before the run date)."""
    rd = pd.Timestamp(run_date)
    first = history_start(sales)
    avail_days = 0 if first is None else max(0, (rd - first).days)
    n_days = min(int(std_days), avail_days)
    n_weeks = min(int(xyz_weeks), avail_days // 7)
    span = max(n_days, 7 * n_weeks)
    start = rd - pd.Timedelta(days=span)
    r, d, q = _window_rows(sales, keys, start, rd)
    daily = np.zeros((len(keys), n_days))
    weekly = np.zeros((len(keys), n_weeks))
    off = span - d  # days before the run date, 1 = yesterday
    sel = off <= n_days
    np.add.at(daily, (r[sel], n_days - off[sel]), q[sel])
    sel = off <= 7 * n_weeks
    np.add.at(weekly, (r[sel], n_weeks - 1 - (off[sel] - 1) // 7), q[sel])
    return daily, weekly


def _with_abc(
    df: pd.DataFrame,
    abc: pd.DataFrame | None,
    sales: pd.DataFrame,
    items: pd.DataFrame,
    run_date: date,
    cutoffs: Sequence[float],
    days: int,
) -> pd.DataFrame:
    """``df`` with abc_class_network and abc_class_location: from ``abc`` (the panel's classes, computed
    once by the shards stage, since a shard sees only its own rows), else computed from ``sales``."""
    if abc is None:
        net = abc_classes(sales, items, run_date, cutoffs, days)[["sku", "abc_class"]]
        df = df.merge(net.rename(columns={"abc_class": "abc_class_network"}), on="sku", how="left")
        df["abc_class_network"] = df["abc_class_network"].fillna("C")
        df["abc_class_location"] = location_abc(sales, df, items, run_date, cutoffs, days)
        return df
    cols = ["abc_class_network", "abc_class_location"]
    df = df.merge(abc[[*KEY, *cols]], on=KEY, how="left")
    lost = df["abc_class_network"].isna()
    if lost.any():
        raise ValueError(
            f"abc: {int(lost.sum())} forecast series have no ABC class (e.g. {df.loc[lost, 'sku'].iloc[0]!r}"
            f" at {df.loc[lost, 'location'].iloc[0]!r}); rule: the shards stage classifies every series"
        )
    return df


def read_demand_rates(path: str | Path, batch_rows: int = 2_000_000, filters: list[Any] | None = None) -> pd.DataFrame:
    """Mean daily forecast per SKU x location (columns sku, location, mean) from a ``forecasts``
    parquet file, aggregated in Arrow batch by batch (only sku, location and mean are read), so a
    million series x 28 days never sit in memory as a pandas frame."""
    parts = []
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=[*KEY, "mean"]):
        t = pa.Table.from_batches([batch])
        if filters:  # a shard's series only: (column, "in", values)
            col, _op, values = filters[0]
            t = t.filter(pac.is_in(t[col], value_set=pa.array(values, type=t.schema.field(col).type)))
        parts.append(t.group_by(KEY, use_threads=False).aggregate([("mean", "sum"), ("mean", "count")]))
    if not parts:
        return pd.DataFrame({"sku": pd.Series(dtype="str"), "location": pd.Series(dtype="str"), "mean": 0.0}).iloc[:0]
    agg = (
        pa.concat_tables(parts)
        .group_by(KEY, use_threads=False)
        .aggregate([("mean_sum", "sum"), ("mean_count", "sum")])
        .to_pandas()
    )
    count = agg["mean_count_sum"].to_numpy(float)
    mean = np.divide(agg["mean_sum_sum"].to_numpy(float), count, out=np.full(len(agg), np.nan), where=count > 0)
    out = pd.DataFrame({"sku": agg["sku"].astype("str"), "location": agg["location"].astype("str"), "mean": mean})
    return out.sort_values(KEY, kind="mergesort").reset_index(drop=True)


def _with_lead_times(
    df: pd.DataFrame,
    lead_times: pd.DataFrame,
    sourcing: pd.DataFrame | None,
    defaults: tuple[float, float, float],
) -> pd.DataFrame:
    """``df`` with each series' lead time, its spread and review period: the lead_times row, else
    the supplier's lead time (``sourcing``), else the defaults (``lead_time_defaulted``)."""
    lt = lead_times[KEY + ["lead_time_days", "lead_time_std_days", "review_period_days"]]
    df = df.merge(lt, on=KEY, how="left")
    if sourcing is not None and len(sourcing):
        from pipelines.replenishment import sourcing_rows  # the (sku, location) row, else the sku's '*' row

        src = sourcing_rows(df[KEY], sourcing)
        for c in ("lead_time_days", "lead_time_std_days"):
            df[c] = df[c].where(df[c].notna(), src[c].astype(float).to_numpy())
    df["lead_time_defaulted"] = df["lead_time_days"].isna()
    for c, v in zip(("lead_time_days", "lead_time_std_days", "review_period_days"), defaults, strict=True):
        df[c] = df[c].fillna(float(v))
    return df


def compute_policy(
    forecasts: pd.DataFrame,
    sales: pd.DataFrame,
    items: pd.DataFrame,
    stock: pd.DataFrame,
    lead_times: pd.DataFrame,
    policies: pd.DataFrame,
    run_date: date,
    *,
    default_lead_time_days: float,
    default_lead_time_std_days: float,
    default_review_period_days: float,
    abc_cutoffs: Sequence[float] = (0.80, 0.95),
    abc_scope: str = "network",
    abc_days: int = ABC_DAYS,
    xyz_cutoffs: Sequence[float] = (0.5, 1.0),
    xyz_weeks: int = XYZ_WEEKS,
    std_days: int = STD_DAYS,
    adi_cutoff: float = 1.32,
    cv2_cutoff: float = 0.49,
    special_categories: Sequence[str] = (),
    open_transfers: pd.DataFrame | None = None,
    abc: pd.DataFrame | None = None,
    purchase_orders: pd.DataFrame | None = None,
    sourcing: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The ``inventory_policy`` rows (without run_id) for every forecast series (``forecasts``: the
    daily forecasts, or any frame with sku, location, mean), plus the detail
    columns (abc_class_network, abc_class_location, xyz_class, demand_pattern, adi, cv2,
    ss_method, ss_capped, lt_mean, lt_std, days_of_cover_on_hand, lead_time_std_days, unit_cost,
    unit_price, reserved and the policy parameters). ``open_transfers``: approved transfers still on
    the way, counted in transit at the receiver and reserved at the donor (:mod:`pipelines.feedback`).
    ``purchase_orders``: open purchase orders, counted in ``on_order`` (and ``available``) when
    expected within the lead time + review period, else in ``on_order_later``. ``sourcing``: the
    supplier's lead time (and spread) where ``lead_times`` has no row for the SKU-location."""
    if abc_scope not in ("network", "location"):
        raise ValueError(f"abc_scope must be 'network' or 'location', got {abc_scope!r}")
    rd = pd.Timestamp(run_date)
    df = forecasts.groupby(KEY, as_index=False, sort=True)["mean"].mean().rename(columns={"mean": "demand_mean"})
    daily, weekly = sales_matrices(sales, df[KEY], run_date, std_days, xyz_weeks)
    df["demand_std"] = daily.std(axis=1, ddof=1) if daily.shape[1] >= 2 else 0.0
    ws = weekly_stats(weekly)
    del daily, weekly
    df["xyz_cv"] = ws["cv"]
    df["xyz_class"] = xyz_class(ws["cv"], xyz_cutoffs)
    df["adi"], df["cv2"] = ws["adi"], ws["cv2"]
    df["demand_pattern"] = demand_pattern(ws["adi"], ws["cv2"], adi_cutoff, cv2_cutoff)
    df = _with_lead_times(
        df,
        lead_times,
        sourcing,
        (default_lead_time_days, default_lead_time_std_days, default_review_period_days),
    )
    df = df.merge(items[["sku", "category", "unit_cost", "unit_price"]], on="sku", how="left")
    unknown = df["category"].isna()
    if unknown.any():
        raise ValueError(
            f"forecasts: {int(unknown.sum())} series have a sku missing from items"
            f" (e.g. {df.loc[unknown, 'sku'].iloc[0]!r}); rule: every forecast sku is in the item master"
        )
    df = _with_abc(df, abc, sales, items, run_date, abc_cutoffs, abc_days)
    df["abc_class"] = df["abc_class_network"] if abc_scope == "network" else df["abc_class_location"]
    df = pd.concat([df, lookup_policy(df, policies)], axis=1)
    tot = add_open_transfers(stock_totals(stock, run_date), open_transfers)
    df = df.merge(tot, on=KEY, how="left")
    for c in ("on_hand", "in_transit", "reserved", "available"):
        df[c] = df[c].fillna(0.0)
    horizon = df[["sku", "location"]].assign(horizon_days=df["lead_time_days"] + df["review_period_days"])
    df["on_order"], df["on_order_later"] = on_order(horizon, purchase_orders, run_date)
    df["available"] = df["available"] + df["on_order"]

    mu = df["demand_mean"].to_numpy(float)
    lead, review = df["lead_time_days"].to_numpy(float), df["review_period_days"].to_numpy(float)
    pattern = df["demand_pattern"].to_numpy(object)
    discrete = np.isin(pattern, ["intermittent", "lumpy"]) | df["category"].isin(list(special_categories)).to_numpy()
    k = safety_stock_kernel(
        mu,
        df["demand_std"].to_numpy(float),
        lead,
        df["lead_time_std_days"].to_numpy(float),
        review,
        df["service_level"].to_numpy(float),
        df["fill_rate"].to_numpy(float),
        discrete,
        df["safety_stock_min_days"].to_numpy(float),
        df["safety_stock_max_days"].to_numpy(float),
    )
    for c, v in k.items():
        df[c] = v
    df["reorder_point"] = mu * lead + df["safety_stock"]
    df["order_up_to"] = mu * (lead + review) + df["safety_stock"]
    df["ss_sigma"] = reorder_point_sigma(df["reorder_point"], mu, lead, df["service_level"])
    has = mu > 0
    safe_mu = np.where(has, mu, 1.0)
    cover = np.where(has, df["available"].to_numpy(float) / safe_mu, np.nan)
    df["days_of_cover"] = cover
    df["days_of_cover_on_hand"] = np.where(has, (df["on_hand"] - df["reserved"]).to_numpy(float) / safe_mu, np.nan)
    df["health_band"] = health_band(
        cover, has, df["min_cover_days"].to_numpy(float), df["max_cover_days"].to_numpy(float)
    )
    df["run_date"] = rd
    df["explanation_en"], df["explanation_zh"] = explain.policy_sentences(df)
    return df.reset_index(drop=True)


#: columns the optimised method adds to the policy frame (policy_detail only; inventory_policy keeps its contract)
OPTIMISED_DETAIL = (
    "policy_method",
    "opt_measure",
    "opt_target",
    "opt_group_reached",
    "order_quantity",
    "model_fill_rate",
    "model_cycle_service",
    "expected_stock_value",
)
SOURCING_COLUMNS = ("moq", "order_multiple")


def class_targets(df: pd.DataFrame, measure: str, target: float | dict[str, float] | None) -> dict[str, float]:
    """The service each ABC class of ``df`` must reach: ``target`` (one value, or per class), else the
    policy rows' own target, the highest in the class (fill rate where the row sets one, else its
    service level; for ``cycle_service`` the service level)."""
    classes = sorted(df["abc_class"].astype("str").unique())
    if isinstance(target, dict):
        return {c: float(target[c]) for c in classes}
    if target is not None:
        return {c: float(target) for c in classes}
    level = df["service_level"].astype(float)
    own = level if measure == "cycle_service" else df["fill_rate"].astype(float).fillna(level)
    return {str(k): float(v) for k, v in own.groupby(df["abc_class"].astype("str").to_numpy()).max().items()}


def optimised_policy(
    df: pd.DataFrame,
    lead_time_demand: pd.DataFrame | None,
    items: pd.DataFrame,
    *,
    measure: str = "fill_rate",
    target: float | dict[str, float] | None = None,
    n_s: int = 40,
    n_q: int = 12,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The :func:`compute_policy` frame with each series' reorder point and order-up-to level chosen
    by :func:`pipelines.replenishment.optimise_policy`: per ABC class (one group each), the plan of
    least average stock value whose model ``measure`` reaches the class's target
    (:func:`class_targets`), from the forecast stage's calibrated ``lead_time_demand`` where a series
    has a row (else the frame's own lead-time demand) and the MOQ / order multiple of ``items`` when
    the item master has them (else 1). Series without demand keep the frame's values (nothing to
    protect). ``safety_stock = reorder_point - demand over the lead time`` (never negative); the
    policy row's days-of-demand caps do not bind an optimised plan (``ss_capped`` false); ``ss_method``
    names the distribution used. Adds :data:`OPTIMISED_DETAIL` and the explanations; returns
    ``(frame, curve)``, the curve being each class's trade-off curve (``group`` = ABC class) with
    ``target`` and ``reached``."""
    from pipelines import replenishment  # scipy-heavy optimiser, only for the optimised method

    out = df.reset_index(drop=True).copy()
    cols = [c for c in SOURCING_COLUMNS if c in items.columns]
    sourcing = items[["sku", *cols]] if cols else None
    inputs, _ = replenishment.optimiser_inputs(out, lead_time_demand, sourcing)
    inputs["group"] = out["abc_class"].astype("str").to_numpy()
    targets = class_targets(out, measure, target)
    rows, curve = replenishment.optimise_policy(
        inputs, targets, measure=measure, group="group", n_s=int(n_s), n_q=int(n_q)
    )
    summary = curve.attrs.get("summary")
    mu = out["demand_mean"].to_numpy(float)
    has = mu > 0
    rop = np.where(has, rows["reorder_point"].to_numpy(float), out["reorder_point"].to_numpy(float))
    upto = np.where(has, rows["order_up_to"].to_numpy(float), out["order_up_to"].to_numpy(float))
    out["reorder_point"], out["order_up_to"] = rop, upto
    lead = out["lead_time_days"].to_numpy(float)
    out["safety_stock"] = np.where(has, np.clip(rop - mu * lead, 0.0, None), out["safety_stock"].to_numpy(float))
    out["ss_capped"] = np.where(has, False, out["ss_capped"].to_numpy(bool))
    dist = rows["distribution"].astype("str").replace({"no_demand": "zero"}).to_numpy(object)
    out["ss_method"] = np.where(has, dist, out["ss_method"].to_numpy(object))
    out["ss_sigma"] = reorder_point_sigma(out["reorder_point"], mu, lead, out["service_level"])
    reached = (
        dict(zip(summary["group"].astype("str"), summary["reached"].astype(bool), strict=True))
        if summary is not None
        else {}
    )
    cls = out["abc_class"].astype("str")
    out["policy_method"] = "optimised"
    out["opt_measure"] = measure
    out["opt_target"] = cls.map(targets).astype(float).to_numpy()
    out["opt_group_reached"] = cls.map(reached).fillna(False).astype(bool).to_numpy()
    out["order_quantity"] = np.where(has, rows["order_quantity"].to_numpy(float), np.nan)
    out["model_fill_rate"] = np.where(has, rows["model_fill_rate"].to_numpy(float), np.nan)
    out["model_cycle_service"] = np.where(has, rows["model_cycle_service"].to_numpy(float), np.nan)
    out["expected_stock_value"] = np.where(has, rows["expected_stock_value"].to_numpy(float), np.nan)
    out["explanation_en"], out["explanation_zh"] = explain.policy_sentences(out)
    return out, curve


def curve_document(curve: pd.DataFrame, measure: str) -> dict[str, object]:
    """The trade-off curves as JSON: per ABC class its target, whether the plan reached it and the
    points (model service, stock value, value of one more point of service there)."""
    groups = []
    for name, g in curve.groupby("group", sort=True):
        groups.append(
            {
                "group": str(name),
                "target": float(g["target"].iloc[0]),
                "reached": bool(g["reached"].iloc[0]),
                "points": [
                    {
                        "service": float(r.service),
                        "stock_value": float(r.stock_value),
                        "value_per_point": None if pd.isna(r.value_per_point) else float(r.value_per_point),
                    }
                    for r in g.sort_values("point").itertuples(index=False)
                ],
            }
        )
    return {"measure": measure, "groups": groups}


def health_band(cover: np.ndarray, has_demand: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """no_demand / under (< lo days) / over (> hi days) / healthy."""
    with np.errstate(invalid="ignore"):
        return np.select([~has_demand, cover < lo, cover > hi], ["no_demand", "under", "over"], default="healthy")


def _optimised_note(curve: pd.DataFrame, measure: str) -> str:
    """One line for the run log: each class's target, the model service and stock value of its plan."""
    summary = curve.attrs.get("summary")
    if summary is None or summary.empty:
        return f"optimised ({measure}): no series"
    parts = [
        f"{r.group} target {r.target:.3f} -> {r.model_service:.3f} at {r.stock_value:,.0f}"
        + ("" if r.reached else " (target not reachable on the grid)")
        for r in summary.itertuples(index=False)
    ]
    return f"optimised ({measure}): " + "; ".join(parts)


def policy_settings(pc: Any) -> dict[str, Any]:
    """The keyword settings of :func:`compute_policy` from the config's ``policy`` section, as the
    nightly stage passes them (the replay's planner passes the same)."""
    return {
        "default_lead_time_days": pc.default_lead_time_days,
        "default_lead_time_std_days": pc.default_lead_time_std_days,
        "default_review_period_days": pc.default_review_period_days,
        "abc_cutoffs": pc.abc_cutoffs,
        "abc_scope": pc.abc_scope,
        "abc_days": pc.abc_days,
        "xyz_cutoffs": pc.xyz_cutoffs,
        "xyz_weeks": pc.xyz_weeks,
        "std_days": pc.std_days,
        "adi_cutoff": pc.adi_cutoff,
        "cv2_cutoff": pc.cv2_cutoff,
        "special_categories": pc.special_categories,
    }


def policy_stage(ctx: RunContext) -> StageResult:
    """Read forecasts, sales, items, stock, lead_times, policies (and, with ``policy.method:
    optimised``, the forecast stage's ``lead_time_demand``); write ``inventory_policy`` and the
    staging file ``policy_detail`` (and ``policy_curve.json``, each ABC class's trade-off curve,
    when the stage declares it)."""
    pc = ctx.cfg.policy
    out = compute_policy(
        read_demand_rates(ctx.path("forecasts"), filters=ctx.read_filters("forecasts")),
        ctx.read("sales"),
        ctx.read("items"),
        ctx.read("stock"),
        ctx.read("lead_times"),
        policies_with_extras(ctx.read("policies"), ctx.cfg.policies),
        ctx.run_date,
        **policy_settings(pc),
        open_transfers=ctx.read("open_transfers"),
        abc=ctx.read("abc") if ctx.exists("abc") else None,
        purchase_orders=pd.concat(
            [ctx.read("purchase_orders"), ctx.read("open_purchases", table="purchase_orders")], ignore_index=True
        ),
        sourcing=ctx.read("sourcing"),
    )
    notes: list[str] = []
    if pc.method == "optimised":
        if ctx.cfg.shards.count > 1:
            raise ValueError(
                "policy.method optimised reaches each ABC class's service over all its items at once;"
                " it cannot run in shards yet: set shards.count to 1 (or policy.method to service_level)"
            )
        ltd = ctx.read("lead_time_demand") if ctx.exists("lead_time_demand") else None
        out, curve = optimised_policy(
            out,
            ltd,
            ctx.read("items"),
            measure=pc.optimiser_measure,
            target=pc.optimiser_target,
            n_s=pc.optimiser_reorder_points,
            n_q=pc.optimiser_order_quantities,
        )
        if CURVE in stages.BY_NAME["policy"].all_writes:
            ctx.write_json(CURVE.removesuffix(".json"), curve_document(curve, pc.optimiser_measure))
        notes.append(_optimised_note(curve, pc.optimiser_measure))
    n = ctx.write("inventory_policy", out.assign(run_id=ctx.run_id))
    ctx.write(DETAIL, out.sort_values(KEY, kind="mergesort"))
    defaulted = int(out["lead_time_defaulted"].sum())
    if defaulted:
        notes.insert(0, f"{defaulted} SKU-location(s) used the default lead time")
    methods = out["ss_method"].value_counts().sort_index()
    notes.append("safety stock: " + ", ".join(f"{k} {v}" for k, v in methods.items()))
    return StageResult(
        stage="policy",
        paths={"inventory_policy": str(ctx.path("inventory_policy")), DETAIL: str(ctx.path(DETAIL))},
        counts={"inventory_policy": n},
        notes=notes,
    )
