"""Replenishment that optimises money: reorder point and order quantity per item so that a group of
items reaches a service target at the least average stock value (issue 18).

Method (all items at once, numpy; loops run over grid columns, never over items):

- **Demand over the protection interval** ``P = L + R`` (lead time + review period) per item:
  mean ``m`` and variance ``V``. From the forecast stage's ``lead_time_demand`` row
  (:func:`protection_demand`): ``m = ltd_mean + rate x R`` and ``V = dispersion x m + rate^2
  sigma_L^2``; the dispersion (variance-to-mean ratio of lead-time sums, calibrated on the selected
  model's backtest) is kept over the longer interval, as it is for any sum of independent
  compound-Poisson periods.
- **Distribution**: *discrete* items (intermittent / lumpy demand, special categories, or any item
  whose demand over P is small) use the negative binomial with that mean and variance
  (``V > m``), else Poisson(m): the calibrated ``lead_time_demand`` distribution, not a normal
  approximation. Its loss function ``G(y) = E[(X - y)^+]`` and ``H(y) = sum_{j<=y} G(j)`` are
  tabulated on whole units (log-pmf in closed form with ``gammaln``, then cumulative sums). Other items
  (smooth / erratic with a large mean) are normal, with the closed-form first and second order
  loss functions.
- **Options per item**: reorder point ``s`` (position at or below ``s`` triggers an order) on a
  grid from ``min_reorder_point`` to about ``m + 6 sqrt(V)``, and order quantity ``Q`` on a grid
  from the smallest allowed quantity (the minimum order quantity rounded up to the order multiple,
  at least one multiple) in steps of the order multiple. For each option, with the inventory
  position uniform on ``s + 1 .. s + Q`` (the (s, Q) model of Hadley & Whitin):

  * fill rate ``beta = 1 - (G(s) - G(s + Q)) / Q`` (share of demand served from stock);
  * cycle service ``1 - (G(s + 1) - G(s + Q + 1)) / Q`` (share of periods without a shortage);
  * average stock on hand ``I = s + (Q + 1) / 2 - m + (H(s + Q) - H(s)) / Q`` units (normal:
    ``Q / 2`` and the integral of G), valued at the unit cost.

- **Marginal analysis** (the investment / service trade-off): the item's benefit is its expected
  units served per day (``rate x beta``; for cycle service, ``beta`` itself per item with demand)
  and its cost the stock value. Every item's options are reduced to their efficient frontier (the
  upper concave hull of (value, benefit) starting from the cheapest option), whose successive
  steps have decreasing benefit per unit of value. All steps of all items of a group are sorted
  by that ratio and taken in that order until the group's target is met: exactly the greedy that
  adds, at each step, the change with the most service per unit of money (ties: the item's own
  order). The cumulative steps are the group's trade-off curve (:func:`tradeoff_curve`): what
  each further point of service costs.

- **Undershoot** (optional, periodic review): with one review period's demand given, the
  reorder point is crossed by a random undershoot ``U`` (:func:`undershoot_moments`); the
  protection demand becomes ``X + U`` and a cycle's demand ``Q + E[U]``. On the oil spare-parts
  validation window this variant served *less* at the same stock than the plain one (under lost
  sales the part of a lumpy withdrawal beyond the stock is not re-ordered), so the benchmark
  selects between them there (``docs/policy-benchmark.md``).

Public functions: :func:`optimise_policy` (group targets, least stock value; the trade-off curve),
:func:`optimise_cost` (least holding + ordering + lost-sales cost at a penalty per unit short),
:func:`optimiser_inputs` (their inputs from the nightly policy frame and ``lead_time_demand``),
:func:`purchase_proposals` (what to buy, when, for how much, with the reason in English and
Chinese), and the kernels they are built from.

Limits: the (s, Q) formulas assume backorders; lumpy withdrawal sizes enter through the loss
function of the lead-time demand; the model's fill rate is optimistic for very lumpy items under
lost sales (on the oil set a model target of 0.99 replays at about 0.94-0.96), so the target to
give the optimiser is chosen on a validation window; the order quantity grid has ``n_q`` values
and the reorder point grid ``n_s`` (a step above one unit for wide ranges); items are independent
(no shared budget other than the group's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import gammaln
from scipy.stats import norm

MEASURES = ("fill_rate", "cycle_service")
DISCRETE_MAX_UNITS = 4096  # widest whole-unit table per item; wider discrete items use a coarser lattice


# --------------------------------------------------------------------------------------------
# Demand over the protection interval
# --------------------------------------------------------------------------------------------


def protection_demand(
    ltd_mean: np.ndarray,
    ltd_dispersion: np.ndarray,
    rate: np.ndarray,
    review_days: np.ndarray,
    lead_std_days: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of demand over lead time + review period from the forecast stage's
    ``lead_time_demand`` (``mean``, ``dispersion``), the daily rate and the review period:
    ``m = ltd_mean + rate R``, ``V = max(dispersion, 1) m + rate^2 sigma_L^2``."""
    m = np.clip(np.asarray(ltd_mean, float), 0.0, None) + np.clip(np.asarray(rate, float), 0.0, None) * np.asarray(
        review_days, float
    )
    phi = np.maximum(np.nan_to_num(np.asarray(ltd_dispersion, float), nan=1.0), 1.0)
    v = phi * m + np.asarray(rate, float) ** 2 * np.asarray(lead_std_days, float) ** 2
    return m, v


def allowed_quantity(moq: np.ndarray, multiple: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(smallest order quantity, order multiple): the minimum order quantity rounded up to the
    multiple, at least one multiple; missing or non-positive values count as 1."""
    mult = np.asarray(multiple, float)
    mult = np.where(np.isfinite(mult) & (mult > 0), np.ceil(mult - 1e-9), 1.0)
    mo = np.asarray(moq, float)
    mo = np.where(np.isfinite(mo) & (mo > 0), mo, 1.0)
    return np.maximum(np.ceil(mo / mult - 1e-9), 1.0) * mult, mult


def round_order(quantity: np.ndarray, moq: np.ndarray, multiple: np.ndarray) -> np.ndarray:
    """A wanted quantity rounded up to an allowed one (at least the MOQ, a whole number of
    multiples); 0 stays 0."""
    qmin, mult = allowed_quantity(moq, multiple)
    q = np.asarray(quantity, float)
    up = np.maximum(np.ceil(q / mult - 1e-9) * mult, qmin)
    return np.where(q > 0, up, 0.0)


def undershoot_moments(review_mean: np.ndarray, review_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the undershoot of the reorder point under periodic review: how far
    below ``s`` the position is when an order is triggered, from the moments of one review
    period's demand ``D`` (negative binomial, Poisson when ``var <= mean``; renewal theory):
    ``E[U] = E[D^2] / (2 E[D]) - 1/2`` and ``E[U^2] = E[D^3] / (3 E[D]) - E[D^2] / (2 E[D]) + 1/6``.
    Unit demands (Poisson with a small mean) give almost none; lumpy withdrawals a lot. Zero
    without demand."""
    mu = np.clip(np.asarray(review_mean, float), 0.0, None)
    var = np.maximum(np.asarray(review_var, float), mu)
    has = mu > 0
    safe = np.where(has, mu, 1.0)
    phi = var / safe
    m2 = var + mu**2
    m3 = mu * (2 * phi**2 - phi) + 3 * mu * var + mu**3  # third raw moment (NB third cumulant)
    eu = np.where(has, m2 / (2 * safe) - 0.5, 0.0)
    eu2 = np.where(has, m3 / (3 * safe) - m2 / (2 * safe) + 1.0 / 6.0, 0.0)
    eu = np.clip(eu, 0.0, None)
    return eu, np.clip(eu2 - eu**2, 0.0, None)


# --------------------------------------------------------------------------------------------
# Loss functions
# --------------------------------------------------------------------------------------------


def _discrete_tables(m: np.ndarray, v: np.ndarray, width: int, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``G`` and ``H`` on the lattice ``y = k unit`` (k = 0 .. width) of negative binomial (V > m) or
    Poisson(m) items: ``[n, width + 1]`` each. ``unit = 1``: exact on whole units (log-pmf recursion,
    no overflow for any mean); ``unit > 1``: the pmf is summed over each lattice cell from the cdf."""
    n = len(m)
    k = np.arange(width * int(unit.max()) + 1, dtype=float)[None, :] if n else np.zeros((1, 1))
    m2 = np.maximum(m, 1e-12)[:, None]
    is_nb = (v > m * (1 + 1e-9))[:, None]
    size = np.where(is_nb, m2**2 / np.maximum(v[:, None] - m2, 1e-12), 1.0)
    p = np.where(is_nb, m2 / np.maximum(v[:, None], 1e-12), 0.5)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_nb = gammaln(k + size) - gammaln(size) - gammaln(k + 1) + size * np.log(p) + k * np.log1p(-p)
        log_po = k * np.log(m2) - m2 - gammaln(k + 1)
    pmf = np.exp(np.where(is_nb, log_nb, log_po))
    cdf = np.minimum(np.cumsum(pmf, axis=1), 1.0)
    # G(y) = m - sum_{j<y} (1 - F(j)); H(y) = sum_{j<=y} G(j), on whole units first
    tail = 1.0 - cdf
    g = m[:, None] - np.concatenate([np.zeros((n, 1)), np.cumsum(tail[:, :-1], axis=1)], axis=1)
    g = np.clip(g, 0.0, None)
    h = np.cumsum(g, axis=1)
    idx = np.minimum(np.arange(width + 1)[None, :] * unit[:, None].astype(np.int64), k.shape[1] - 1)
    return np.take_along_axis(g, idx, axis=1), np.take_along_axis(h, idx, axis=1)


def _lattice(table: np.ndarray, unit: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Linear interpolation of a lattice table ``[n, K]`` at points ``y`` ``[n, ...]`` (whole
    units; exact for ``unit = 1``); beyond the table the last slope continues."""
    n, kk = table.shape
    if (unit == 1).all():  # whole units on whole points (the usual case): a plain lookup
        flat = np.clip(y.reshape(n, -1), 0, kk - 1).astype(np.int64)
        if np.array_equal(flat, y.reshape(n, -1)):
            return np.take_along_axis(table, flat, axis=1).reshape(y.shape)
    x = y / unit.reshape((n,) + (1,) * (y.ndim - 1))
    i0 = np.clip(np.floor(x).astype(np.int64), 0, kk - 2)
    frac = x - i0
    flat = i0.reshape(n, -1)
    a = np.take_along_axis(table, flat, axis=1).reshape(y.shape)
    b = np.take_along_axis(table, flat + 1, axis=1).reshape(y.shape)
    return a + frac * (b - a)


def _normal_g2(z: np.ndarray) -> np.ndarray:
    """Second-order standard normal loss ``int_z^inf G(t) dt = ((1 + z^2) (1 - Phi(z)) - z phi(z)) / 2``."""
    return 0.5 * ((1 + z**2) * norm.sf(z) - z * norm.pdf(z))


def _normal_loss(z: np.ndarray) -> np.ndarray:
    return norm.pdf(z) - z * norm.sf(z)


# --------------------------------------------------------------------------------------------
# Option grid per item
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """Every item's options: ``s`` and ``q`` ``[n, n_s * n_q]`` with their model fill rate, cycle
    service and average stock on hand (units)."""

    s: np.ndarray
    q: np.ndarray
    fill: np.ndarray
    cycle: np.ndarray
    stock: np.ndarray


def _with_top(
    low: np.ndarray, big_s: np.ndarray, q: np.ndarray, u: np.ndarray, m0: np.ndarray, g_top: np.ndarray
) -> np.ndarray:
    """Average stock on hand with the undershoot: the position spends ``Q`` of its ``Q + E[U]``
    units of travel in the shifted band (``low``: positions ``s + 1 .. S`` against ``X + U``) and
    ``E[U]`` just below ``S`` against the demand ``X`` alone (mean ``m0``), where on hand is about
    ``S - E[U] / 2 - m0`` plus the loss at ``S``."""
    top = np.clip(big_s - u / 2 - m0, 0.0, None) + g_top
    return (q * low + u * top) / (q + u)


def _discrete_options(
    m: np.ndarray,
    v: np.ndarray,
    ss: np.ndarray,
    qq: np.ndarray,
    rows: np.ndarray,
    fill: np.ndarray,
    cycle: np.ndarray,
    stock: np.ndarray,
    under: np.ndarray,
    cells: int = 4_000_000,
) -> None:
    """Fill ``fill``, ``cycle`` and ``stock`` ``[n, n_s, n_q]`` in place for the discrete ``rows``:
    items sorted by the width of their loss table and processed in chunks of about ``cells`` table
    cells (a loop over chunks, each vectorised)."""
    top = (ss[rows] + qq[rows]).max(axis=(1, 2)) + 2
    unit = np.maximum(np.ceil(top / DISCRETE_MAX_UNITS), 1.0)
    order = np.argsort(top, kind="stable")  # memory goes with the whole units a table covers
    rows, top, unit = rows[order], top[order], unit[order]
    start = 0
    while start < rows.size:
        # rows up to twice the first row's width, within the cell budget
        limit = np.searchsorted(top, 2 * top[start], side="right")
        budget = max(1, cells // int(2 * top[start] + 1))
        stop = int(min(max(limit, start + 1), start + budget, rows.size))
        r, u = rows[start:stop], unit[start:stop]
        g, h = _discrete_tables(m[r], v[r], int(np.ceil((top[start:stop] / u).max())), u)
        sr, qr = ss[r], qq[r]
        big_s = sr + qr
        ur = under[r][:, None, None]
        fill[r] = 1 - (_lattice(g, u, sr) - _lattice(g, u, big_s)) / (qr + ur)
        cycle[r] = 1 - (_lattice(g, u, sr + 1) - _lattice(g, u, big_s + 1)) / (qr + ur)
        low = sr + (qr + 1) / 2 - m[r][:, None, None] + (_lattice(h, u, big_s) - _lattice(h, u, sr)) / qr
        stock[r] = _with_top(low, big_s, qr, ur, m[r][:, None, None] - ur, _lattice(g, u, big_s))
        start = stop


def option_grid(
    m: np.ndarray,
    v: np.ndarray,
    discrete: np.ndarray,
    moq: np.ndarray,
    multiple: np.ndarray,
    *,
    n_s: int = 40,
    n_q: int = 12,
    min_reorder_point: float = 0.0,
    q_span: np.ndarray | None = None,
    undershoot: tuple[np.ndarray, np.ndarray] | None = None,
) -> Options:
    """Reorder point x order quantity options of every item and their model performance (module
    doc). ``q_span``: how far above the smallest quantity the Q grid reaches (units; default
    ``max(m, 6 sqrt(V))``, at least the grid's ``n_q - 1`` multiples). ``undershoot``: mean and
    variance of the undershoot of ``s`` (:func:`undershoot_moments`); the protection-interval
    demand becomes ``X + U`` and a cycle's demand ``Q + E[U]`` (none: continuous review, unit
    demands)."""
    n = len(np.asarray(m))
    u_mean, u_var = (np.zeros(n), np.zeros(n)) if undershoot is None else undershoot
    u_mean = np.clip(np.asarray(u_mean, float), 0.0, None)
    m = np.clip(np.asarray(m, float), 0.0, None) + u_mean
    v = np.clip(np.asarray(v, float), 0.0, None) + np.clip(np.asarray(u_var, float), 0.0, None)
    sd = np.sqrt(v)
    qmin, mult = allowed_quantity(moq, multiple)
    s_lo = float(min_reorder_point)
    s_hi = np.maximum(np.ceil(m + 6 * sd + 1), s_lo + 1)
    ds = np.maximum(np.ceil((s_hi - s_lo) / (n_s - 1)), 1.0)
    s = s_lo + ds[:, None] * np.arange(n_s)[None, :]  # [n, n_s]
    span = np.maximum(m, 6 * sd) if q_span is None else np.asarray(q_span, float)
    dq = mult * np.maximum(np.ceil(span / (mult * (n_q - 1))), 1.0)
    q = qmin[:, None] + dq[:, None] * np.arange(n_q)[None, :]  # [n, n_q]
    S = s[:, :, None] + q[:, None, :]  # [n, n_s, n_q]
    ss = np.broadcast_to(s[:, :, None], S.shape)
    qq = np.broadcast_to(q[:, None, :], S.shape)
    fill = np.zeros(S.shape)
    cycle = np.zeros(S.shape)
    stock = np.zeros(S.shape)
    disc = np.asarray(discrete, bool) | (m + 6 * sd <= 64)
    rows_d = np.flatnonzero(disc & (m > 0))
    if rows_d.size:
        _discrete_options(m, v, ss, qq, rows_d, fill, cycle, stock, u_mean)
    rows_n = np.flatnonzero(~disc & (m > 0))
    if rows_n.size:
        mu, sig = m[rows_n][:, None, None], np.maximum(sd[rows_n], 1e-9)[:, None, None]
        sr, qr = ss[rows_n], qq[rows_n]
        ur = u_mean[rows_n][:, None, None]
        zs, zS = (sr - mu) / sig, (sr + qr - mu) / sig
        fill[rows_n] = 1 - sig * (_normal_loss(zs) - _normal_loss(zS)) / (qr + ur)
        cycle[rows_n] = fill[rows_n]
        low = sr + qr / 2 - mu + sig**2 * (_normal_g2(zs) - _normal_g2(zS)) / qr
        stock[rows_n] = _with_top(low, sr + qr, qr, ur, mu - ur, sig * _normal_loss(zS))
    none = m <= 0
    fill[none], cycle[none] = 1.0, 1.0
    stock[none] = ss[none] + (qq[none] + 1) / 2
    fill = np.clip(fill, 0.0, 1.0)
    cycle = np.clip(cycle, 0.0, 1.0)
    stock = np.clip(stock, 0.0, None)
    shape = (n, n_s * n_q)
    return Options(
        s=np.ascontiguousarray(ss).reshape(shape),
        q=np.ascontiguousarray(qq).reshape(shape),
        fill=fill.reshape(shape),
        cycle=cycle.reshape(shape),
        stock=stock.reshape(shape),
    )


# --------------------------------------------------------------------------------------------
# Efficient frontier per item and the greedy over a group
# --------------------------------------------------------------------------------------------


def upper_hull(cost: np.ndarray, benefit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``[n, k]`` option arrays, the efficient frontier: the upper concave hull of the
    points (cost, benefit) from the cheapest (best benefit among equally cheap) rightwards, keeping
    only points that add benefit. Returns ``(vertices [n, k] option indices, count [n])``: row i's
    frontier is ``vertices[i, :count[i]]``, cost and benefit strictly increasing, benefit per cost
    of the successive steps strictly decreasing. Vectorised monotone chain: one pass over the k
    columns for all rows at once."""
    c = np.asarray(cost, float)
    b = np.asarray(benefit, float)
    n, k = c.shape
    order = np.lexsort((-b, c), axis=1)
    cs = np.take_along_axis(c, order, axis=1)
    bs = np.take_along_axis(b, order, axis=1)
    prev_best = np.maximum.accumulate(bs, axis=1)
    tol = 1e-12 * np.maximum(np.abs(bs).max(axis=1, keepdims=True), 1.0)
    keep = np.ones((n, k), bool)
    keep[:, 1:] = bs[:, 1:] > prev_best[:, :-1] + tol
    # only the points that add benefit can be on the frontier: move them to the left of each row
    # (stable, so still by cost) and run the chain over the widest row's kept points only
    left = np.argsort(~keep, axis=1, kind="stable")
    order = np.take_along_axis(order, left, axis=1)
    cs = np.take_along_axis(cs, left, axis=1)
    bs = np.take_along_axis(bs, left, axis=1)
    n_keep = keep.sum(axis=1)
    stack = np.zeros((n, k), np.int64)
    height = np.zeros(n, np.int64)
    for j in range(int(n_keep.max()) if n else 0):
        live = np.flatnonzero(n_keep > j)
        pc, pb = cs[live, j], bs[live, j]
        while True:
            sel = height[live] >= 2
            r, qc, qb = live[sel], pc[sel], pb[sel]
            if r.size == 0:
                break
            i1, i2 = stack[r, height[r] - 2], stack[r, height[r] - 1]
            x1, y1, x2, y2 = cs[r, i1], bs[r, i1], cs[r, i2], bs[r, i2]
            pop = (y2 - y1) * (qc - x1) <= (qb - y1) * (x2 - x1)
            if not pop.any():
                break
            height[r[pop]] -= 1
        stack[live, height[live]] = j
        height[live] += 1
    return np.take_along_axis(order, stack, axis=1), height


@dataclass(frozen=True)
class Allocation:
    """Result of :func:`allocate`: the chosen option per item (index into the option arrays); per
    group code its weight, reached model service and stock value, whether its target was
    reachable, the cheapest start (``start_service``, ``start_value``); and the frontier steps in
    the greedy's order (``steps``: group, row, step, delta_value, delta_benefit, ratio, and the
    group's service, value and value_per_point after the step)."""

    choice: np.ndarray
    group_weight: np.ndarray
    group_service: np.ndarray
    group_value: np.ndarray
    reached: np.ndarray
    start_service: np.ndarray
    start_value: np.ndarray
    steps: pd.DataFrame


def allocate(
    cost: np.ndarray,
    benefit: np.ndarray,
    weight: np.ndarray,
    group: np.ndarray,
    target: np.ndarray | float,
    frontier_counts: np.ndarray | None = None,
) -> Allocation:
    """Marginal analysis over items: ``cost`` and ``benefit`` ``[n, k]`` per option (benefit =
    weight x service of the option), ``weight`` ``[n]`` (an item's share of the group measure:
    demand rate for fill rate, 1 for cycle service, 0 for an item without demand), integer
    ``group`` codes ``[n]`` (0 .. G-1) and ``target`` per group code (service, 0..1; a scalar for
    all). Starts every item at its cheapest option and takes the frontier steps of the group's
    items by decreasing benefit per unit of cost while ``sum benefit < target x sum weight``; a
    group whose target cannot be met takes every step (``reached`` false). ``frontier_counts``:
    the rows already are efficient frontiers in order (the first ``count`` columns; e.g. from
    :func:`frontiers`), so the hull is not computed again."""
    cost = np.asarray(cost, float)
    benefit = np.asarray(benefit, float)
    w = np.asarray(weight, float)
    g = np.asarray(group, np.int64)
    n = cost.shape[0]
    n_groups = int(g.max()) + 1 if n else 0
    tgt = np.broadcast_to(np.asarray(target, float), (n_groups,))
    if frontier_counts is None:
        vert, cnt = upper_hull(cost, benefit)
    else:
        cnt = np.asarray(frontier_counts, np.int64)
        vert = np.broadcast_to(np.arange(cost.shape[1])[None, :], cost.shape)
    rows = np.arange(n)
    base = vert[:, 0]
    kk = np.arange(vert.shape[1] - 1)[None, :]
    r_idx, k_idx = np.nonzero(kk < (cnt[:, None] - 1))
    a, nxt = vert[r_idx, k_idx], vert[r_idx, k_idx + 1]
    dc = cost[r_idx, nxt] - cost[r_idx, a]
    db = benefit[r_idx, nxt] - benefit[r_idx, a]
    ratio = db / np.maximum(dc, 1e-300)
    order = np.lexsort((k_idx, r_idx, -ratio, g[r_idx]))
    r_idx, k_idx, dc, db, ratio = (x[order] for x in (r_idx, k_idx, dc, db, ratio))
    sg = g[r_idx]
    w_group = np.bincount(g, weights=w, minlength=n_groups)
    b0 = np.bincount(g, weights=benefit[rows, base], minlength=n_groups)
    c0 = np.bincount(g, weights=cost[rows, base], minlength=n_groups)
    # cumulative sums restarted at each group (steps are sorted by group first)
    first = np.searchsorted(sg, np.arange(n_groups), side="left")
    cum_b, cum_c = np.cumsum(db), np.cumsum(dc)
    pre_b = np.r_[0.0, cum_b][first]
    pre_c = np.r_[0.0, cum_c][first]
    grp_b = b0[sg] + cum_b - pre_b[sg]
    grp_c = c0[sg] + cum_c - pre_c[sg]
    need = tgt * w_group
    take = (grp_b - db) < need[sg] - 1e-12 * np.maximum(need[sg], 1.0)
    taken = np.bincount(r_idx[take], minlength=n)
    choice = vert[rows, taken]
    got_b = np.bincount(g, weights=benefit[rows, choice], minlength=n_groups)
    got_c = np.bincount(g, weights=cost[rows, choice], minlength=n_groups)
    safe_w = np.where(w_group > 0, w_group, 1.0)
    service = np.where(w_group > 0, got_b / safe_w, 1.0)
    steps = pd.DataFrame(
        {
            "group": sg,
            "row": r_idx,
            "step": k_idx,
            "delta_value": dc,
            "delta_benefit": db,
            "ratio": ratio,
            "service": np.where(w_group[sg] > 0, grp_b / safe_w[sg], 1.0),
            "value": grp_c,
            "value_per_point": 0.01 * w_group[sg] / np.maximum(ratio, 1e-300),
        }
    )
    return Allocation(
        choice=choice,
        group_weight=w_group,
        group_service=service,
        group_value=got_c,
        reached=got_b >= need - 1e-9 * np.maximum(need, 1.0),
        start_service=np.where(w_group > 0, b0 / safe_w, 1.0),
        start_value=c0,
        steps=steps,
    )


CURVE_COLUMNS = ["group", "point", "service", "stock_value", "value_per_point"]


def tradeoff_curve(allocation: Allocation, labels: np.ndarray | None = None, points: int = 101) -> pd.DataFrame:
    """The investment / service trade-off curve of each group of an :func:`allocate` result: the
    cheapest start (point 0), then the first step of the greedy reaching each of ``points - 1``
    service levels from the start to the best reachable service (half evenly spaced, half evenly
    spaced in log(1 - service), so the curve is dense at 99 % and 99.9 % too) and the last step, each with the group's model service, its stock value and the
    marginal cost of one more point (+0.01) of service there (``value_per_point``, from the step's
    benefit per unit of value). ``labels``: group names by code. Vectorised over groups."""
    st = allocation.steps
    n_groups = len(allocation.group_weight)
    grp = st["group"].to_numpy(np.int64)
    service = st["service"].to_numpy(float)
    counts = np.bincount(grp, minlength=n_groups)
    last = np.r_[0, np.cumsum(counts)][1:] - 1
    top = np.where(counts > 0, service[np.maximum(last, 0)] if len(service) else 0.0, allocation.start_service)
    k = max(points - 1, 2)
    lin = np.linspace(0.0, 1.0, k // 2 + 1)[1:]
    start = allocation.start_service
    levels_lin = start[:, None] + (top - start)[:, None] * lin[None, :]
    # and as many evenly spaced in log(1 - service) towards the top, where each point costs most
    gap0 = np.maximum(1.0 - start, 1e-12)[:, None]
    gap1 = np.maximum(1.0 - top, 1e-4 * gap0[:, 0])[:, None]
    levels_log = 1.0 - gap0 * (gap1 / gap0) ** np.linspace(0.0, 1.0, k - k // 2 + 1)[None, 1:]
    levels = np.minimum(np.concatenate([levels_lin, levels_log], axis=1), top[:, None])
    # steps are sorted by group, then by increasing service: one searchsorted on group + service
    key = grp * 4.0 + service
    pos = np.searchsorted(key, (np.arange(n_groups)[:, None] * 4.0 + levels - 1e-12).ravel(), side="left")
    gl = np.repeat(np.arange(n_groups), levels.shape[1])
    ok = (pos < len(key)) & (counts[gl] > 0)
    ok[ok] &= grp[pos[ok]] == gl[ok]
    pick = st.iloc[np.unique(np.r_[pos[ok], last[counts > 0]])]
    body = pd.DataFrame(
        {
            "group": pick["group"].to_numpy(np.int64),
            "service": pick["service"].to_numpy(float),
            "stock_value": pick["value"].to_numpy(float),
            "value_per_point": pick["value_per_point"].to_numpy(float),
        }
    )
    head = pd.DataFrame(
        {
            "group": np.arange(n_groups),
            "service": allocation.start_service,
            "stock_value": allocation.start_value,
            "value_per_point": np.nan,
        }
    )
    curve = pd.concat([head, body], ignore_index=True).sort_values(["group", "stock_value"], kind="mergesort")
    curve["point"] = curve.groupby("group").cumcount()
    if labels is not None:
        curve["group"] = np.asarray(labels, object)[curve["group"].to_numpy(np.int64)]
    return curve[CURVE_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Frame level: the policy rows of a group of items
# --------------------------------------------------------------------------------------------

OPTIMISED_COLUMNS = [
    "reorder_point",
    "order_quantity",
    "order_up_to",
    "model_fill_rate",
    "model_cycle_service",
    "expected_stock_units",
    "expected_stock_value",
    "expected_orders",
    "expected_cost",
    "distribution",
]


def _frontier_chunk(
    m: np.ndarray,
    v: np.ndarray,
    discrete: np.ndarray,
    moq: np.ndarray,
    multiple: np.ndarray,
    unit_value: np.ndarray,
    order_cost: np.ndarray,
    rate: np.ndarray,
    review: np.ndarray,
    weight: np.ndarray,
    measure: str,
    grid: dict[str, float],
    undershoot: tuple[np.ndarray, np.ndarray] | None,
) -> dict[str, np.ndarray]:
    """Option grid of a chunk of items reduced to each item's efficient frontier (padded with its
    last vertex). Cost of an option: ``unit_value x stock + order_cost x orders per period``
    (orders per period = rate / Q, at most one per review period)."""
    q_span = None
    if (order_cost > 0).any():
        # the EOQ may lie beyond the default Q grid: reach twice it
        with np.errstate(divide="ignore", invalid="ignore"):
            eoq = np.sqrt(
                np.where(unit_value > 0, 2 * order_cost * rate / np.where(unit_value > 0, unit_value, 1.0), 0.0)
            )
        q_span = np.maximum(np.maximum(m, 6 * np.sqrt(v)), 2 * np.nan_to_num(eoq))
    opts = option_grid(m, v, discrete, moq, multiple, undershoot=undershoot, q_span=q_span, **grid)  # type: ignore[arg-type]
    service = opts.fill if measure == "fill_rate" else opts.cycle
    cap = np.where(np.isfinite(review) & (review > 0), 1.0 / np.where(review > 0, review, 1.0), np.inf)
    per_period = np.minimum(rate[:, None] / opts.q, cap[:, None])
    cost = opts.stock * unit_value[:, None] + order_cost[:, None] * per_period
    benefit = weight[:, None] * service
    vert, cnt = upper_hull(cost, benefit)
    width = int(cnt.max()) if len(cnt) else 1
    # pad every row with its last vertex (same cost and benefit: never a step)
    col = np.minimum(np.arange(width)[None, :], cnt[:, None] - 1)
    idx = np.take_along_axis(vert, col, axis=1)
    out = {name: np.take_along_axis(getattr(opts, name), idx, axis=1) for name in ("s", "q", "fill", "cycle", "stock")}
    out["cost"] = np.take_along_axis(cost, idx, axis=1)
    out["benefit"] = np.take_along_axis(benefit, idx, axis=1)
    out["orders"] = np.take_along_axis(np.broadcast_to(per_period, cost.shape), idx, axis=1)
    out["count"] = cnt
    return out


@dataclass(frozen=True)
class Frontiers:
    """Every item's efficient frontier (``[n, width]`` arrays: s, q, fill, cycle, stock, cost,
    benefit, orders per period; row i's vertices are its first ``counts[i]`` columns, the rest
    repeat the last) and the item inputs the callers need."""

    arrays: dict[str, np.ndarray]
    counts: np.ndarray
    weight: np.ndarray
    has_demand: np.ndarray
    distribution: np.ndarray


def frontiers(
    items: pd.DataFrame,
    *,
    measure: str = "fill_rate",
    n_s: int = 40,
    n_q: int = 12,
    min_reorder_point: float = 0.0,
    chunk_rows: int = 20_000,
) -> Frontiers:
    """The efficient frontier of every item of ``items`` (columns: see :func:`optimise_policy`),
    in chunks of ``chunk_rows`` items, each vectorised."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")
    df = items.reset_index(drop=True)
    n = len(df)
    for name in ("rate", "ltd_mean", "ltd_var", "unit_cost"):
        bad = ~np.isfinite(df[name].to_numpy(float))
        if bad.any():
            raise ValueError(f"{name}: {int(bad.sum())} item(s) without a finite value (row {int(np.argmax(bad))})")

    def col(name: str, default: float) -> np.ndarray:
        return df[name].to_numpy(float) if name in df else np.full(n, default)

    rate = np.clip(df["rate"].to_numpy(float), 0.0, None)
    m = np.clip(df["ltd_mean"].to_numpy(float), 0.0, None)
    v = np.clip(df["ltd_var"].to_numpy(float), 0.0, None)
    disc = df["discrete"].to_numpy(bool)
    if "holding_cost" in df:
        unit_value = np.clip(np.nan_to_num(df["holding_cost"].to_numpy(float)), 0.0, None)
        order_cost = np.clip(np.nan_to_num(col("order_cost", 0.0)), 0.0, None)
    else:
        unit_value, order_cost = np.clip(df["unit_cost"].to_numpy(float), 0.0, None), np.zeros(n)
    review = col("review_period", np.inf)
    has = (m > 0) & (rate > 0)
    weight = np.where(has, rate if measure == "fill_rate" else 1.0, 0.0)
    grid = {"n_s": n_s, "n_q": n_q, "min_reorder_point": min_reorder_point}
    under = (
        undershoot_moments(df["review_mean"].to_numpy(float), df["review_var"].to_numpy(float))
        if "review_mean" in df
        else None
    )
    moq, mult = col("moq", 1.0), col("order_multiple", 1.0)
    parts = [
        _frontier_chunk(
            m[a:b], v[a:b], disc[a:b], moq[a:b], mult[a:b], unit_value[a:b], order_cost[a:b], rate[a:b],
            review[a:b], weight[a:b], measure, grid, None if under is None else (under[0][a:b], under[1][a:b]),
        )
        for a, b in ((i, min(i + chunk_rows, n)) for i in range(0, n, chunk_rows))
    ]  # a loop over chunks of items, each vectorised  # fmt: skip
    width = max((p["s"].shape[1] for p in parts), default=1)

    def stacked(name: str) -> np.ndarray:
        if not parts:
            return np.zeros((0, 1))
        return np.concatenate(
            [np.pad(p[name], ((0, 0), (0, width - p[name].shape[1])), mode="edge") for p in parts], axis=0
        )

    arrays = {name: stacked(name) for name in ("s", "q", "fill", "cycle", "stock", "cost", "benefit", "orders")}
    counts = np.concatenate([p["count"] for p in parts]) if parts else np.zeros(0, np.int64)
    discrete_used = disc | (m + 6 * np.sqrt(v) <= 64)
    dist = np.where(
        ~has, "no_demand", np.where(discrete_used, np.where(v > m * (1 + 1e-9), "negbin", "poisson"), "normal")
    )
    return Frontiers(arrays=arrays, counts=counts, weight=weight, has_demand=has, distribution=dist)


def _rows_from(df: pd.DataFrame, fr: Frontiers, pick: np.ndarray) -> pd.DataFrame:
    a, rows = fr.arrays, np.arange(len(df))
    out = df.reset_index(drop=True).copy()
    out["reorder_point"] = a["s"][rows, pick]
    out["order_quantity"] = a["q"][rows, pick]
    out["order_up_to"] = out["reorder_point"] + out["order_quantity"]
    out["model_fill_rate"] = a["fill"][rows, pick]
    out["model_cycle_service"] = a["cycle"][rows, pick]
    out["expected_stock_units"] = a["stock"][rows, pick]
    out["expected_stock_value"] = out["expected_stock_units"] * out["unit_cost"].to_numpy(float)
    out["expected_orders"] = a["orders"][rows, pick]
    out["expected_cost"] = a["cost"][rows, pick]
    out["distribution"] = fr.distribution
    return out


def optimise_cost(items: pd.DataFrame, *, n_s: int = 40, n_q: int = 12, chunk_rows: int = 20_000) -> pd.DataFrame:
    """Reorder point and order quantity per item at the least expected cost per period:
    ``holding_cost x stock + order_cost x orders + lost_sale_cost x units short`` (columns
    ``holding_cost`` per unit and period, ``order_cost`` per order, ``lost_sale_cost`` per unit
    short, with the inputs of :func:`optimise_policy`; ``rate`` per the same period). No group
    target: the penalty prices a unit of service, so each item stops on its frontier where one
    more unit served per period costs more than the penalty (the same marginal analysis, at the
    multiplier the penalty sets). Columns :data:`OPTIMISED_COLUMNS` plus ``expected_orders`` and
    ``expected_cost`` (holding + ordering, without the lost sales)."""
    fr = frontiers(items, measure="fill_rate", n_s=n_s, n_q=n_q, chunk_rows=chunk_rows)
    pen = np.clip(np.nan_to_num(items["lost_sale_cost"].to_numpy(float)), 0.0, None)
    total = fr.arrays["cost"] - pen[:, None] * fr.arrays["benefit"]  # benefit = units served per period
    return _rows_from(items, fr, np.argmin(total, axis=1))


def optimise_policy(
    items: pd.DataFrame,
    target: float | dict[str, float],
    *,
    measure: str = "fill_rate",
    group: str | None = None,
    n_s: int = 40,
    n_q: int = 12,
    min_reorder_point: float = 0.0,
    chunk_rows: int = 20_000,
    curve_points: int = 101,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reorder point and order quantity of every item so that each group reaches ``target``
    (a service 0..1, or one per group name) at the least stock value (module doc).

    ``items`` columns: ``rate`` (units / day), ``ltd_mean`` and ``ltd_var`` (demand over lead time
    + review period, e.g. from :func:`protection_demand`), ``discrete`` (bool), ``unit_cost``,
    ``moq`` and ``order_multiple`` (missing = 1), optionally ``review_mean`` and ``review_var``
    (demand over one review period: the undershoot of the reorder point under periodic review,
    :func:`undershoot_moments`; without them, continuous review with unit demands), and the
    ``group`` column when given (else one group ``all``). With ``holding_cost`` (per unit and
    period) and ``order_cost`` (per order; ``review_period`` caps orders at one per review), the
    money minimised is holding + ordering per period instead of the stock value. ``measure``:
    ``fill_rate`` (units served / demanded; items weighted by their rate) or ``cycle_service``
    (share of periods without a shortage; every item with demand counts once).

    Returns ``(rows, curve)``: ``items`` with :data:`OPTIMISED_COLUMNS` added (``order_up_to`` =
    reorder point + order quantity; ``distribution`` negbin / poisson / normal / no_demand), and
    the trade-off curve per group (:func:`tradeoff_curve`, groups by name) with ``target`` and
    ``reached`` per group. Items are processed in chunks of ``chunk_rows`` (memory), every chunk
    vectorised; only each item's efficient frontier is kept for the greedy."""
    df = items.reset_index(drop=True)
    n = len(df)
    labels, codes = (
        (np.array(["all"], object), np.zeros(n, np.int64))
        if group is None
        else (lambda c: (np.asarray(c[1], object), c[0].astype(np.int64)))(pd.factorize(df[group], sort=True))
    )
    if (codes < 0).any():
        raise ValueError(f"{group}: {int((codes < 0).sum())} item(s) without a group")
    if isinstance(target, dict):
        missing = [g for g in labels if g not in target]
        if missing:
            raise ValueError(f"target: no service target for group(s) {missing[:5]}")
        tgt = np.array([float(target[g]) for g in labels])
    else:
        tgt = np.full(len(labels), float(target))
    if ((tgt < 0) | (tgt > 1)).any():
        raise ValueError(f"target must be a service between 0 and 1, got {tgt.tolist()}")
    fr = frontiers(df, measure=measure, n_s=n_s, n_q=n_q, min_reorder_point=min_reorder_point, chunk_rows=chunk_rows)
    alloc = allocate(fr.arrays["cost"], fr.arrays["benefit"], fr.weight, codes, tgt, frontier_counts=fr.counts)
    out = _rows_from(df, fr, alloc.choice)
    curve = tradeoff_curve(alloc, labels, curve_points)
    summary = pd.DataFrame(
        {"group": labels, "target": tgt, "reached": alloc.reached, "model_service": alloc.group_service,
         "stock_value": alloc.group_value}
    )  # fmt: skip
    curve = curve.merge(summary[["group", "target", "reached"]], on="group", how="left")
    curve.attrs["summary"] = summary
    return out, curve


# --------------------------------------------------------------------------------------------
# Purchase proposals
# --------------------------------------------------------------------------------------------

PROPOSAL_COLUMNS = [
    "run_date",
    "sku",
    "location",
    "supplier",
    "order_by",
    "expected_receipt",
    "quantity",
    "unit_cost",
    "fixed_order_cost",
    "cost",
    "inventory_position",
    "on_order",
    "reorder_point",
    "order_up_to",
    "moq",
    "order_multiple",
    "lead_time_days",
    "runs_out_before_receipt",
    "planned_transfers",
    "explanation_en",
    "explanation_zh",
]

#: the fields of a sourcing row :func:`sourcing_rows` returns
SOURCING_FIELDS = (
    "supplier",
    "lead_time_days",
    "lead_time_std_days",
    "moq",
    "order_multiple",
    "unit_cost",
    "fixed_order_cost",
)

_PROPOSAL_EN = (
    "Inventory position {pos} (on hand {oh} + in transit {it} + on order {oo} - reserved {rs}{plan}){when} the reorder"
    " point {rop} (demand {mu}/day): order {qty} from {sup} by {by} (to bring it up to {out}{rounding}), expected {rec} after"
    " {lt} days, cost {cost}.{risk}"
)
_PROPOSAL_ZH = (
    "库存位置 {pos}（现有 {oh} + 在途 {it} + 已订购 {oo} - 预留 {rs}{plan}）{when}再订货点 {rop}（日需求 {mu}）："
    "请于 {by} 前向{sup}订购 {qty}（补到 {out}{rounding}），预计 {lt} 天后于 {rec} 到货，金额 {cost}。{risk}"
)


def sourcing_rows(keys: pd.DataFrame, sourcing: pd.DataFrame) -> pd.DataFrame:
    """The sourcing row of each key (sku, location): the (sku, location) row, else the sku's row for
    every location (location ``*`` as the contract writes it, or missing / null); columns
    :data:`SOURCING_FIELDS`, null where the sku has no row or the row no value."""
    src = sourcing.copy()
    if "location" not in src:
        src["location"] = None
    every = src["location"].isna() | (src["location"].astype("str") == "*")
    own = src[~every].drop_duplicates(["sku", "location"], keep="first")
    anyloc = src[every].drop(columns="location").drop_duplicates("sku", keep="first")
    cols = SOURCING_FIELDS
    a = keys.merge(own, on=["sku", "location"], how="left")
    b = keys.merge(anyloc, on="sku", how="left")
    out = keys.copy()
    for c in cols:
        left = a[c] if c in a else pd.Series(np.nan, index=a.index)
        right = b[c] if c in b else pd.Series(np.nan, index=b.index)
        out[c] = left.where(left.notna(), right).to_numpy()
    return out


def purchase_proposals(
    positions: pd.DataFrame,
    sourcing: pd.DataFrame,
    run_date: pd.Timestamp | str,
    open_orders: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Purchase orders to propose, one row per SKU-location whose projected inventory position
    reaches its reorder point within its review period (pure function, vectorised).

    ``positions``: sku, location, demand_mean (units / day), reorder_point, order_up_to, on_hand,
    in_transit, reserved, review_period_days, lead_time_days (used when sourcing has none); optional
    unit_cost (used when sourcing has none) and planned_transfers (net units the night's recommended
    transfers bring in, + , or take out, -: part of the position). A series without demand is never due.
    ``sourcing``: sku, location (missing = every location; a location's own row wins), supplier,
    lead_time_days, moq, order_multiple, unit_cost, fixed_order_cost. ``open_orders``: sku,
    location, quantity (purchase orders placed, not received).

    Inventory position = on hand + in transit + on order - reserved. Days until it reaches the
    reorder point at the forecast rate: 0 when already at or below it; a proposal when that is
    within the review period. Order-by date = run date + those whole days; quantity = order-up-to
    minus the projected position on that date, rounded up to the MOQ and the order multiple;
    expected receipt = order-by + lead time (whole days, rounded up); cost = quantity x unit cost
    + fixed order cost; ``runs_out_before_receipt`` when the projected position at the receipt
    is below zero. Reason in English and Chinese (:data:`PROPOSAL_COLUMNS`)."""
    from pipelines import explain  # text helpers (pyarrow), imported where the sentences are built

    rd = pd.Timestamp(run_date).normalize()
    df = positions.reset_index(drop=True).copy()
    keys = df[["sku", "location"]]
    if open_orders is not None and len(open_orders):
        oo = open_orders.groupby(["sku", "location"], as_index=False)["quantity"].sum()
        df = df.merge(oo.rename(columns={"quantity": "on_order"}), on=["sku", "location"], how="left")
    else:
        df["on_order"] = 0.0
    df["on_order"] = df["on_order"].fillna(0.0)
    src = sourcing_rows(keys, sourcing)
    lead = src["lead_time_days"].astype(float).fillna(df["lead_time_days"].astype(float)).fillna(0.0)
    rate = np.clip(df["demand_mean"].to_numpy(float), 0.0, None)
    planned = (
        df["planned_transfers"].astype(float).fillna(0.0)
        if "planned_transfers" in df
        else pd.Series(0.0, index=df.index)
    )
    pos = (df["on_hand"] + df["in_transit"] + df["on_order"] - df["reserved"] + planned).to_numpy(float)
    s = df["reorder_point"].to_numpy(float)
    big = df["order_up_to"].to_numpy(float)
    review = df["review_period_days"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        days = np.where(pos <= s, 0.0, np.where(rate > 0, (pos - s) / rate, np.inf))
    due = (days < np.maximum(review, 1.0)) & (rate > 0)
    whole = np.floor(np.where(due, days, 0.0))
    at_order = pos - rate * whole
    moq = src["moq"].astype(float).to_numpy()
    mult = src["order_multiple"].astype(float).to_numpy()
    qty = round_order(np.maximum(big - at_order, 1e-9), moq, mult)
    lead_days = np.ceil(lead.to_numpy(float) - 1e-9)
    unit_cost = src["unit_cost"].astype(float).to_numpy()
    if "unit_cost" in df:
        unit_cost = np.where(np.isnan(unit_cost), df["unit_cost"].astype(float).to_numpy(), unit_cost)
    fixed = src["fixed_order_cost"].astype(float).fillna(0.0).to_numpy()
    qmin, mult_ok = allowed_quantity(moq, mult)
    out = pd.DataFrame(
        {
            "run_date": rd,
            "sku": df["sku"].astype("str"),
            "location": df["location"].astype("str"),
            "supplier": src["supplier"],
            "order_by": rd + pd.to_timedelta(whole, unit="D"),
            "expected_receipt": rd + pd.to_timedelta(whole + lead_days, unit="D"),
            "quantity": qty,
            "unit_cost": unit_cost,
            "fixed_order_cost": fixed,
            "cost": qty * np.nan_to_num(unit_cost, nan=0.0) + fixed,
            "inventory_position": pos,
            "on_order": df["on_order"].to_numpy(float),
            "reorder_point": s,
            "order_up_to": big,
            "moq": qmin,
            "order_multiple": mult_ok,
            "lead_time_days": lead_days,
            "runs_out_before_receipt": pos - rate * (whole + lead_days) < 0,
            "planned_transfers": planned.to_numpy(float),
            "_on_hand": df["on_hand"].to_numpy(float),
            "_in_transit": df["in_transit"].to_numpy(float),
            "_reserved": df["reserved"].to_numpy(float),
            "_rate": rate,
            "_now": pos <= s,
            "_at_order": at_order,
        }
    )[due].reset_index(drop=True)
    rounded = out["quantity"] > out["order_up_to"] - out["_at_order"] + 1e-6
    known = out["supplier"].notna()
    f = {
        "pos": explain.num(out["inventory_position"], 0),
        "oh": explain.num(out["_on_hand"], 0),
        "it": explain.num(out["_in_transit"], 0),
        "oo": explain.num(out["on_order"], 0),
        "rs": explain.num(out["_reserved"], 0),
        "rop": explain.num(out["reorder_point"], 0),
        "mu": explain.num(out["_rate"], 2),
        "qty": explain.num(out["quantity"], 0),
        "out": explain.num(out["order_up_to"], 0),
        "by": explain.day(out["order_by"]),
        "rec": explain.day(out["expected_receipt"]),
        "lt": explain.num(out["lead_time_days"], 0),
        "cost": explain.money(out["cost"]),
    }
    moved = out["planned_transfers"]
    plan_x = explain.num(moved.abs(), 0)
    moq_txt = explain.num(out["moq"], 0)
    mult_txt = explain.num(out["order_multiple"], 0)
    sup = out["supplier"].astype("str")
    en = {
        **f,
        "when": explain.choose(out["_now"], " is at or below", " reaches within the review period"),
        "sup": explain.choose(known, explain.render("supplier {s}", s=sup), "a supplier to choose (none recorded)"),
        "rounding": explain.choose(
            rounded, explain.render(", rounded to MOQ {m} and multiple {k}", m=moq_txt, k=mult_txt), ""
        ),
        "risk": explain.choose(out["runs_out_before_receipt"], " Stock is expected to run out before it arrives.", ""),
        "plan": explain.choose(
            moved > 0,
            explain.render(" + {x} in tonight's recommended transfers", x=plan_x),
            explain.choose(moved < 0, explain.render(" - {x} out in tonight's recommended transfers", x=plan_x), ""),
        ),
    }
    zh = {
        **f,
        "by": explain.day(out["order_by"], lang="zh"),
        "rec": explain.day(out["expected_receipt"], lang="zh"),
        "when": explain.choose(out["_now"], "已达到或低于", "将在检查周期内降到"),
        "sup": explain.choose(known, explain.render("供应商 {s} ", s=sup), "供应商（未记录，请选择）"),
        "rounding": explain.choose(
            rounded, explain.render("，按最小订购量 {m}、订购倍数 {k} 取整", m=moq_txt, k=mult_txt), ""
        ),
        "risk": explain.choose(out["runs_out_before_receipt"], "预计到货前会缺货。", ""),
        "plan": explain.choose(
            moved > 0,
            explain.render(" + 今晚建议调入 {x}", x=plan_x),
            explain.choose(moved < 0, explain.render(" - 今晚建议调出 {x}", x=plan_x), ""),
        ),
    }
    if len(out):
        out["explanation_en"] = explain.render(_PROPOSAL_EN, **en)
        out["explanation_zh"] = explain.render(_PROPOSAL_ZH, **zh)
    else:
        out["explanation_en"], out["explanation_zh"] = pd.Series(dtype="str"), pd.Series(dtype="str")
    return out[PROPOSAL_COLUMNS]


# --------------------------------------------------------------------------------------------
# Inputs from the nightly frames (for wiring into the policy stage)
# --------------------------------------------------------------------------------------------


def optimiser_inputs(
    detail: pd.DataFrame,
    lead_time_demand: pd.DataFrame | None = None,
    sourcing: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The :func:`optimise_policy` inputs and group targets from the policy stage's frame
    (``policy_detail``: sku, location, category, abc_class, demand_mean, lead_time_std_days,
    review_period_days, lt_mean, lt_std, demand_pattern, ss_method, unit_cost, service_level,
    fill_rate), the forecast stage's ``lead_time_demand`` (sku, location, mean, dispersion) and
    optional sourcing (sku, location or none for every location, moq, order_multiple).

    Demand over lead time + review: from ``lead_time_demand`` (:func:`protection_demand`: its
    calibrated mean and dispersion) where the series has a row, else the policy frame's own
    ``lt_mean`` / ``lt_std``. Discrete: intermittent / lumpy demand or a Poisson / negative
    binomial safety stock. Groups: ``category/abc_class``; each group's target is its policy
    row's fill rate, else its cycle service level (the fill rate is the optimiser's measure)."""
    key = ["sku", "location"]
    df = detail.reset_index(drop=True)
    rate = df["demand_mean"].to_numpy(float)
    m = df["lt_mean"].to_numpy(float)
    v = df["lt_std"].to_numpy(float) ** 2
    if lead_time_demand is not None and len(lead_time_demand):
        ltd = df[key].merge(lead_time_demand[[*key, "mean", "dispersion"]], on=key, how="left")
        pm, pv = protection_demand(
            ltd["mean"].to_numpy(float),
            ltd["dispersion"].to_numpy(float),
            rate,
            df["review_period_days"].to_numpy(float),
            df["lead_time_std_days"].to_numpy(float),
        )
        found = ltd["mean"].notna().to_numpy()
        m, v = np.where(found, pm, m), np.where(found, pv, v)
    moq, mult = np.ones(len(df)), np.ones(len(df))
    if sourcing is not None and len(sourcing):
        src = sourcing_rows(df[key], sourcing)
        moq = src["moq"].astype(float).fillna(1.0).to_numpy()
        mult = src["order_multiple"].astype(float).fillna(1.0).to_numpy()
    pattern = df["demand_pattern"].astype("str")
    discrete = pattern.isin(["intermittent", "lumpy"]) | df["ss_method"].astype("str").isin(["poisson", "negbin"])
    group = df["category"].astype("str") + "/" + df["abc_class"].astype("str")
    target = df["fill_rate"].astype(float).where(df["fill_rate"].notna(), df["service_level"].astype(float))
    items = pd.DataFrame(
        {
            "sku": df["sku"],
            "location": df["location"],
            "rate": rate,
            "ltd_mean": m,
            "ltd_var": v,
            "discrete": discrete.to_numpy(bool),
            "unit_cost": df["unit_cost"].astype(float).fillna(0.0).to_numpy(),
            "moq": moq,
            "order_multiple": mult,
            "group": group.to_numpy(),
        }
    )
    targets = pd.Series(target.to_numpy(), index=group.to_numpy()).groupby(level=0).max().to_dict()
    return items, {str(k): float(t) for k, t in targets.items()}
