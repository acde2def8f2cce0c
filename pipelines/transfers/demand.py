"""The demand the transfer optimiser plans with, and the expected lost sales it avoids.

Per SKU x location: cumulative expected demand over the coverage horizon (the forecasts' daily
means), a dispersion (variance / mean; Poisson up to :data:`OVERDISPERSED`, gamma above), and from
them the expected units short E[(X - c)^+] (:func:`loss`), quantiles (:func:`ppf`) and the
piecewise-linear benefit curve of units received (:func:`benefit_curves`). Pure array kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy.stats import gamma, poisson

from pipelines.frames import KEY

EPS = 1e-9

#: cumulative probabilities of post-arrival demand at which the benefit curve gets a breakpoint
CURVE_PROBS = (0.0, 0.25, 0.5, 0.7, 0.85, 0.95, 0.995)
#: cumulative probabilities of the donor's own demand at which its keep level gets a breakpoint
#: (``donor_risk``): it never keeps less than its median need; units below its p99.5 are charged
#: the expected lost sales they cause at the donor
DONOR_PROBS = (0.5, 0.7, 0.85, 0.95, 0.995)
#: variance / mean above which demand is modelled as gamma rather than Poisson
OVERDISPERSED = 1.05


@dataclass(frozen=True)
class Demand:
    """Demand the optimiser plans with, per (sku, location) series of ``keys``.

    ``cum[i, j]`` = demand of series i over the first j days after the run date (j = 0..H, H the
    coverage horizon, ``cum[:, 0] = 0``). ``deterministic=False``: demand over any window has
    that mean (the forecast) and variance ``dispersion`` x mean: Poisson when the dispersion is
    at most :data:`OVERDISPERSED`, else a gamma distribution with that mean and variance;
    ``True``: ``cum`` is the realised demand (perfect foresight, used by the replay).
    """

    keys: pd.DataFrame
    cum: np.ndarray
    deterministic: bool = False
    dispersion: np.ndarray | None = None


def cum_demand_from(
    keys: pd.DataFrame, demand_mean: np.ndarray, horizon: int, forecasts: pd.DataFrame | None, run_date: date
) -> np.ndarray:
    """Cumulative expected demand (n x horizon+1) from the ``forecasts`` daily means (horizon 1 =
    the run date), the flat ``demand_mean`` where a series or a day has no forecast row."""
    n = len(keys)
    daily = np.repeat(np.asarray(demand_mean, float)[:, None], horizon, axis=1) if n else np.zeros((0, horizon))
    if forecasts is not None and len(forecasts) and n:
        f = forecasts[(forecasts["horizon"] >= 1) & (forecasts["horizon"] <= horizon)]
        f = f[f["run_date"] == pd.Timestamp(run_date)] if "run_date" in f.columns and len(f) else f
        idx = keys[KEY].reset_index(drop=True).reset_index().merge(f[KEY + ["horizon", "mean"]], on=KEY, how="inner")
        if len(idx):
            daily[idx["index"].to_numpy(), idx["horizon"].to_numpy(np.int64) - 1] = idx["mean"].to_numpy(float)
    return np.concatenate([np.zeros((n, 1)), np.cumsum(np.maximum(daily, 0.0), axis=1)], axis=1)


def poisson_loss(m: np.ndarray, c: np.ndarray) -> np.ndarray:
    """E[(X - c)^+] for X ~ Poisson(m), c >= 0 real (elementwise)."""
    k = np.floor(c) + 1.0
    return np.maximum(m * poisson.sf(k - 2.0, m) - c * poisson.sf(k - 1.0, m), 0.0)


def loss(m: np.ndarray, c: np.ndarray, disp: np.ndarray) -> np.ndarray:
    """E[(X - c)^+]: Poisson(m) where disp <= OVERDISPERSED, else gamma with mean m, variance
    disp x m (shape m / disp, scale disp): E[(X - c)^+] = m sf(c; shape + 1) - c sf(c; shape)."""
    m, c, disp = np.broadcast_arrays(np.asarray(m, float), np.asarray(c, float), np.asarray(disp, float))
    out = poisson_loss(m, c)
    g = (disp > OVERDISPERSED) & (m > 0)
    if g.any():
        shape, scale = m[g] / disp[g], disp[g]
        out[g] = np.maximum(
            m[g] * gamma.sf(c[g], shape + 1.0, scale=scale) - c[g] * gamma.sf(c[g], shape, scale=scale), 0.0
        )
    return out


def ppf(q: np.ndarray, m: np.ndarray, disp: np.ndarray) -> np.ndarray:
    """Quantiles of the demand distribution of :func:`loss` (NaN-free, 0 for no demand)."""
    q, m, disp = np.broadcast_arrays(np.asarray(q, float), np.asarray(m, float), np.asarray(disp, float))
    out = np.nan_to_num(poisson.ppf(q, m))
    g = (disp > OVERDISPERSED) & (m > 0)
    if g.any():
        out[g] = np.nan_to_num(gamma.ppf(q[g], m[g] / disp[g], scale=disp[g]))
    return out


def benefit_curves(
    post_mean: np.ndarray, at_arrival: np.ndarray, deterministic: bool, dispersion: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-linear expected lost sales avoided by u units arriving, per row.

    Lost units after arrival with u units received: L(u) = E[(X - a - u)^+], X the demand from
    arrival to the horizon end, a the stock projected at arrival. Returns breakpoints ``u``
    (rows x K, increasing, first 0) and ``slope`` (rows x K-1) = (L(u_k) - L(u_k+1)) / (u_k+1 - u_k),
    the expected lost units avoided per unit on each segment (decreasing: L is convex). The
    breakpoints are the post-arrival demand quantiles of :data:`CURVE_PROBS` minus a; beyond the
    last one a unit avoids less than 0.5% of a lost sale and is not counted. Deterministic demand:
    one segment, slope 1, up to the realised shortfall.
    """
    m = np.asarray(post_mean, float)[:, None]
    a = np.asarray(at_arrival, float)[:, None]
    if deterministic:
        u = np.concatenate([np.zeros_like(m), np.maximum(m - a, 0.0)], axis=1)
        slope = (u[:, 1:] > EPS).astype(float)
        return u, slope
    disp = np.ones_like(m) if dispersion is None else np.asarray(dispersion, float)[:, None]
    q = ppf(np.asarray(CURVE_PROBS)[None, 1:], m, disp)
    u = np.concatenate([np.zeros_like(m), np.maximum(q - a, 0.0)], axis=1)
    u = np.maximum.accumulate(u, axis=1)
    lost = loss(np.broadcast_to(m, u.shape), a + u, np.broadcast_to(disp, u.shape))
    width = np.diff(u, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(width > EPS, (lost[:, :-1] - lost[:, 1:]) / np.where(width > EPS, width, 1.0), 0.0)
    return u, np.clip(slope, 0.0, 1.0)


def default_dispersion(policy_df: pd.DataFrame) -> np.ndarray:
    """Variance / mean of demand per row of ``inventory_policy``: demand_std^2 / demand_mean,
    between 1 (Poisson) and 50; 1 where there is no demand."""
    mu = policy_df["demand_mean"].to_numpy(float)
    sd = policy_df["demand_std"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(mu > 0, sd**2 / np.where(mu > 0, mu, 1.0), 1.0)
    return np.clip(np.nan_to_num(d, nan=1.0), 1.0, 50.0)
