"""The MILP's candidates: receiver x configured lane into it x donor at its origin, with everything
the model needs, as a typed structure (:class:`Candidates`).

Built in steps, each a function of its own: the series of the policy with their planned demand
(:func:`series_frame`), the receivers short over the horizon, the donors with their near-expiry
units, the pairs on configured lanes, what each donor may give (:func:`donor_excess` and, with
``donor_keep: risk``, :func:`donor_risk_segments`), the value of a unit at the receiver and the
upper bounds, and the cap on donors per receiver. See :mod:`pipelines.transfers` for the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.frames import KEY, reorder_point_sigma
from pipelines.transfers.common import without
from pipelines.transfers.demand import CURVE_PROBS, DONOR_PROBS, EPS, Demand, default_dispersion, loss, ppf

#: columns of :attr:`Candidates.rows` (one row per receiver x lane x donor)
ROW_COLUMNS = {
    "sku": "the SKU",
    "to_location": "the receiver",
    "from_location": "the donor",
    "need": "the most the receiver takes: max(order_up_to - available, units short)",
    "units_short": "the receiver's expected units short over the horizon, E[(D_H - available)^+]",
    "stockout_days": "days until the receiver's cumulative expected demand exceeds its stock",
    "post_mean": "expected demand at the receiver from this lane's arrival to the horizon end",
    "at_arrival": "the receiver's stock projected at arrival",
    "disp": "the receiver's demand dispersion (variance / mean)",
    "unit_margin": "unit_price - unit_cost",
    "hold_avoided": "donor holding cost avoided per unit that sells at the receiver",
    "donor_excess_units": "what the donor may give in all (fresh and near-expiry)",
    "fresh_excess": "fresh units the donor gives without a charge",
    "expiring_units": "near-expiry units at the donor (it cannot sell them in time)",
    "sellable_before_expiry": "near-expiry units the receiver sells before their expiry",
    "ub_packs": "upper bound of the candidate's packs",
}


@dataclass(frozen=True)
class DonorRisk:
    """With ``donor_keep: risk``: what a donor may give below its p99.5 keep level and what each unit
    costs it, per candidate row (the same on every row of one donor).

    ``width[:, k]`` units on segment k, between the keep levels at :data:`DONOR_PROBS` k and k+1
    (fresh units only); ``slope[:, k]`` the donor's expected lost sales per unit given on it;
    ``free`` the units above its p99.5, given without a charge; ``need`` the mean of its own need
    (its demand over its lead time + the longest transit it ships on); ``disp`` that need's
    dispersion."""

    width: np.ndarray
    slope: np.ndarray
    free: np.ndarray
    need: np.ndarray
    disp: np.ndarray

    def take(self, idx: np.ndarray) -> DonorRisk:
        return DonorRisk(self.width[idx], self.slope[idx], self.free[idx], self.need[idx], self.disp[idx])


@dataclass(frozen=True)
class Candidates:
    """The candidates of one plan: ``rows`` (columns :data:`ROW_COLUMNS` and the lane, item and donor
    columns the explanations use) and the donors' ``risk`` (None with the hard keep rule or
    deterministic demand)."""

    rows: pd.DataFrame
    risk: DonorRisk | None = None

    def take(self, idx: np.ndarray) -> Candidates:
        """The candidates at positions ``idx``, rows and risk together."""
        return Candidates(
            self.rows.iloc[idx].reset_index(drop=True), None if self.risk is None else self.risk.take(idx)
        )

    def __len__(self) -> int:
        return len(self.rows)


_SERIES_COLUMNS = KEY + [
    "category",
    "abc_class",
    "demand_mean",
    "demand_std",
    "lead_time_days",
    "service_level",
    "reorder_point",
    "order_up_to",
    "on_hand",
    "in_transit",
    "available",
]
_LANE_COLUMNS = [
    "from_location",
    "to_location",
    "cost_per_unit",
    "fixed_cost_per_shipment",
    "transit_days",
    "min_units",
    "capacity",
]


def series_frame(
    policy_df: pd.DataFrame, items: pd.DataFrame, locations: pd.DataFrame, demand: Demand, horizon: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Active series of the policy with their item and location columns, their dispersion (``disp``),
    a row number (``row``) and the cumulative planned demand ``cum`` (rows x horizon+1): the demand
    given for the series, else the flat ``demand_mean``. ``ss_sigma`` is the policy's own (the spread
    of lead-time demand its reorder point protects), else derived the same way."""
    cols = _SERIES_COLUMNS + (["ss_sigma"] if "ss_sigma" in policy_df.columns else [])
    p = policy_df[cols].merge(items[["sku", "unit_cost", "unit_price", "pack_size"]], on="sku", how="inner")
    p = p.merge(locations[["location", "can_ship", "can_receive", "active"]], on="location", how="inner")
    p = p[p["active"].astype(bool)].reset_index(drop=True)
    if "ss_sigma" not in p.columns:
        p["ss_sigma"] = reorder_point_sigma(
            p["reorder_point"], p["demand_mean"], p["lead_time_days"], p["service_level"]
        )
    H = int(horizon)
    pos = p[KEY].merge(demand.keys[KEY].reset_index(drop=True).reset_index(), on=KEY, how="left")["index"]
    cum = np.zeros((len(p), H + 1))
    have = pos.notna().to_numpy()
    cum[have] = demand.cum[pos[have].to_numpy(np.int64), : H + 1]
    flat = np.arange(H + 1)[None, :] * p["demand_mean"].to_numpy(float)[:, None]
    cum[~have] = flat[~have]
    if demand.dispersion is not None:
        disp = np.ones(len(p))
        disp[have] = np.asarray(demand.dispersion, float)[pos[have].to_numpy(np.int64)]
    else:
        disp = default_dispersion(p)
    p["disp"] = disp
    p["row"] = np.arange(len(p))
    return p, cum


def receivers(p: pd.DataFrame, cum: np.ndarray, deterministic: bool) -> pd.DataFrame:
    """Series that can receive and are expected to be short over the horizon by more than half a
    unit, with ``need`` of at least one pack; adds units_short and stockout_days to ``p``."""
    H = cum.shape[1] - 1
    stock0 = np.maximum(p["available"].to_numpy(float), 0.0)
    short0 = np.maximum(cum[:, H] - stock0, 0.0) if deterministic else loss(cum[:, H], stock0, p["disp"].to_numpy())
    p["units_short"] = short0
    p["stockout_days"] = (cum[:, 1:] <= stock0[:, None] + EPS).sum(axis=1)
    recv = p[p["can_receive"].astype(bool) & (short0 > 0.5)].copy()
    recv["need"] = np.maximum(recv["order_up_to"] - recv["available"], recv["units_short"])
    return recv[recv["need"] + EPS >= recv["pack_size"]].rename(columns={"location": "to_location"})


def donors(p: pd.DataFrame, expiring: pd.DataFrame) -> pd.DataFrame:
    """Series that can ship, with their near-expiry units (at most their stock on hand), under the
    ``donor_*`` column names the explanations use."""
    don = p[p["can_ship"].astype(bool)].rename(columns={"location": "from_location"})
    if len(expiring):
        don = don.merge(expiring.rename(columns={"location": "from_location"}), on=["sku", "from_location"], how="left")
    else:
        don = don.assign(expiring_units=np.nan, expiry_days=np.nan)
    don["expiring_units"] = np.minimum(don["expiring_units"].fillna(0.0), np.maximum(don["on_hand"], 0.0))
    names = {
        "demand_mean": "donor_mu",
        "disp": "donor_disp",
        "lead_time_days": "donor_lead_time",
        "service_level": "donor_service",
        "reorder_point": "donor_rop",
        "ss_sigma": "donor_sigma",
        "available": "donor_available",
        "on_hand": "donor_on_hand",
        "in_transit": "donor_in_transit",
        "row": "drow",
    }
    return don[["sku", "from_location", *names, "expiring_units", "expiry_days"]].rename(columns=names)


def pairs(
    recv: pd.DataFrame, don: pd.DataFrame, lanes: pd.DataFrame, exclude: pd.DataFrame | None, horizon: int
) -> pd.DataFrame:
    """Receiver x configured lane into it x donor of the SKU at the lane's origin, minus the rejected
    ones and the lanes too slow for the horizon; capacity NaN = unlimited."""
    c = recv.merge(lanes[_LANE_COLUMNS], on="to_location", how="inner").merge(don, on=["sku", "from_location"])
    c = without(c[c["from_location"] != c["to_location"]], exclude)
    c = c[c["transit_days"] < horizon].reset_index(drop=True)
    c["capacity"] = c["capacity"].astype("float64").fillna(np.inf)
    return c


def donor_excess(c: pd.DataFrame, cum: np.ndarray, override: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """(excess, transit demand) per candidate: what the donor may give under the hard rule, its
    available minus its reorder point minus its demand over the longest transit it ships on, never
    stock still on its way to it (or ``override``'s ``excess``, the replay's perfect foresight);
    and that transit demand."""
    H = cum.shape[1] - 1
    max_transit = c.groupby(["sku", "from_location"])["transit_days"].transform("max").to_numpy(np.int64)
    dcum = cum[c["drow"].to_numpy(np.int64), np.minimum(max_transit, H)]
    if override is not None:
        ov = c[["sku", "from_location"]].merge(
            override.rename(columns={"location": "from_location"}), on=["sku", "from_location"], how="left"
        )["excess"]
        return np.nan_to_num(ov.to_numpy(float), nan=0.0), dcum
    avail = c["donor_available"].to_numpy(float)
    excess = np.minimum(avail - c["donor_rop"].to_numpy(float) - dcum, avail - c["donor_in_transit"].to_numpy(float))
    return excess, dcum


def donor_risk_segments(
    available: np.ndarray,
    onhand_free: np.ndarray,
    expiring: np.ndarray,
    need_mean: np.ndarray,
    transit_demand: np.ndarray,
    sigma: np.ndarray,
    disp: np.ndarray,
) -> tuple[DonorRisk, np.ndarray]:
    """The donor's risk segments (kernel; one row per candidate) and the units it may give in all.

    Its need X_d: its demand over its lead time (``need_mean`` - ``transit_demand``) plus the transit
    demand, with the wider of its demand ``disp`` and the spread its safety stock implies (``sigma``,
    the policy's: SS = z(service level) x sigma), so its service-level quantile is the hard rule's
    keep level. Keep levels at the quantiles :data:`DONOR_PROBS`; it gives freely above the p99.5 and
    down to its median, each unit below the p99.5 charged E[(X_d - (available - g))^+] -
    E[(X_d - available)^+] per unit on each segment. The priced units are fresh ones (near-expiry
    units cost the donor nothing), so the segments hold at most the fresh units below the free
    ones, cheapest first."""
    n = len(available)
    with np.errstate(divide="ignore", invalid="ignore"):
        disp_eff = np.where(
            need_mean > 0,
            np.maximum(disp, (sigma**2 + disp * transit_demand) / np.where(need_mean > 0, need_mean, 1.0)),
            1.0,
        )
    mean = np.broadcast_to(need_mean[:, None], (n, len(DONOR_PROBS)))
    q = ppf(np.broadcast_to(np.asarray(DONOR_PROBS)[None, :], mean.shape), mean, disp_eff[:, None])
    q = np.maximum.accumulate(q, axis=1)  # keep levels, increasing with the probability
    avail = available[:, None]
    give = np.clip(avail - q, 0.0, onhand_free[:, None])  # units given down to each keep level
    free0 = give[:, -1]  # above the p99.5: given without a charge
    lost = loss(mean, np.broadcast_to(avail, mean.shape) - give, np.broadcast_to(disp_eff[:, None], mean.shape))
    k_seg = len(DONOR_PROBS) - 1
    width = np.zeros((n, k_seg))
    slope = np.zeros((n, k_seg))
    left = np.maximum(give[:, 0] - expiring, 0.0) - np.maximum(free0 - expiring, 0.0)
    for k in range(k_seg - 1, -1, -1):  # a handful of segments; vectorised over all donors
        w = np.minimum(np.maximum(give[:, k] - give[:, k + 1], 0.0), np.maximum(left, 0.0))
        left = left - w
        dl = lost[:, k] - lost[:, k + 1]
        full = give[:, k] - give[:, k + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            width[:, k] = w
            slope[:, k] = np.where(full > EPS, np.clip(dl / np.where(full > EPS, full, 1.0), 0.0, 1.0), 0.0)
    return DonorRisk(width, slope, free0, need_mean, disp_eff), np.maximum(give[:, 0], 0.0)


def unit_values(c: pd.DataFrame, cum: np.ndarray, holding_cost_rate: float) -> None:
    """Adds to ``c`` the receiver's demand after this lane's arrival and its stock then, the unit
    margin, the donor's holding cost avoided per unit and the near-expiry units the receiver sells
    before their expiry."""
    H = cum.shape[1] - 1
    t = c["transit_days"].to_numpy(np.int64)
    rrow = c["row"].to_numpy(np.int64)
    c["post_mean"] = cum[rrow, H] - cum[rrow, t]
    c["at_arrival"] = np.maximum(np.maximum(c["available"].to_numpy(float), 0.0) - cum[rrow, t], 0.0)
    c["unit_margin"] = c["unit_price"] - c["unit_cost"]
    dmu = c["donor_mu"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        dcover = np.where(dmu > 0, c["donor_available"].to_numpy(float) / np.where(dmu > 0, dmu, 1.0), np.inf)
    c["hold_avoided"] = c["unit_cost"].to_numpy(float) * holding_cost_rate / 365.0 * np.clip(dcover - H, 0.0, 365.0)
    exp_days = c["expiry_days"].to_numpy(float)
    mu_r = c["demand_mean"].to_numpy(float)
    c["sellable_before_expiry"] = np.where(
        np.isfinite(exp_days), np.maximum(mu_r * (exp_days - t) - c["at_arrival"].to_numpy(float), 0.0), 0.0
    )


def pack_bounds(c: pd.DataFrame, deterministic: bool) -> np.ndarray:
    """Upper bound of each candidate's packs: the donor's excess, the receiver's need and the lane's
    capacity (or the near-expiry units it sells in time), at most what still sells after this lane's
    arrival (all of it with foresight, else the p99.5), rounded to whole packs."""
    pack = c["pack_size"].to_numpy(float)
    room = np.minimum(np.minimum(c["donor_excess_units"], c["need"]), c["capacity"]).to_numpy(float)
    room = np.maximum(
        room,
        np.minimum(
            np.minimum(c["expiring_units"].to_numpy(float), c["sellable_before_expiry"].to_numpy(float)), c["need"]
        ),
    )
    post, at_arr = c["post_mean"].to_numpy(float), c["at_arrival"].to_numpy(float)
    if deterministic:
        useful = np.maximum(post - at_arr, 0.0)
    else:
        useful = np.maximum(ppf(np.full(len(post), CURVE_PROBS[-1]), post, c["disp"].to_numpy(float)) - at_arr, 0.0)
    room = np.minimum(room, np.ceil(useful / pack - EPS) * pack)
    return np.floor(np.maximum(room, 0.0) / pack + EPS)


def build_candidates(
    policy_df: pd.DataFrame,
    items: pd.DataFrame,
    locations: pd.DataFrame,
    lanes: pd.DataFrame,
    demand: Demand,
    coverage_days: int,
    holding_cost_rate: float,
    expiring: pd.DataFrame,
    exclude: pd.DataFrame | None,
    donor_excess_override: pd.DataFrame | None,
    max_donors: int,
    donor_risk: bool = False,
) -> tuple[Candidates, str]:
    """The candidates (module doc), or empty ones and the reason why there is none."""
    H = int(coverage_days)
    p, cum = series_frame(policy_df, items, locations, demand, H)
    if p.empty:
        return Candidates(p), "no active SKU-location in the inventory policy"
    recv = receivers(p, cum, demand.deterministic)
    if recv.empty:
        return Candidates(recv), "no receiver is short over the coverage horizon"
    c = pairs(recv, donors(p, expiring), lanes, exclude, H)
    if c.empty:
        return Candidates(c), "no configured lane from a donor reaches a short receiver within the coverage horizon"
    excess, dcum = donor_excess(c, cum, donor_excess_override)
    avail = c["donor_available"].to_numpy(float)
    onhand_free = np.maximum(avail - c["donor_in_transit"].to_numpy(float), 0.0)
    c["donor_excess_units"] = np.maximum(excess, 0.0)
    c["expiring_units"] = np.minimum(c["expiring_units"].to_numpy(float), onhand_free)
    risk = None
    if donor_risk and donor_excess_override is None and not demand.deterministic:
        mean_need = c["donor_mu"].to_numpy(float) * c["donor_lead_time"].to_numpy(float) + dcum
        risk, c["donor_excess_units"] = donor_risk_segments(
            avail,
            onhand_free,
            c["expiring_units"].to_numpy(float),
            mean_need,
            dcum,
            c["donor_sigma"].to_numpy(float),
            c["donor_disp"].to_numpy(float),
        )
        c["donor_disp"] = risk.disp
    unit_values(c, cum, holding_cost_rate)
    free = risk.free if risk is not None else c["donor_excess_units"].to_numpy(float)
    c["fresh_excess"] = np.maximum(free - c["expiring_units"].to_numpy(float), 0.0)
    c["ub_packs"] = pack_bounds(c, demand.deterministic)
    keep = (c["ub_packs"] >= 1) & (c["unit_margin"] + c["hold_avoided"] > c["cost_per_unit"]) & (c["post_mean"] > EPS)
    cand = Candidates(c, risk).take(np.flatnonzero(keep.to_numpy()))
    # at most max_donors lanes per receiver: cheapest per unit needed (fixed cost spread over the
    # need), then fastest, then donor code
    r = cand.rows
    score = r["cost_per_unit"] + r["fixed_cost_per_shipment"] / np.maximum(r["need"], 1.0)
    order = r.assign(_score=score, _pos=np.arange(len(r))).sort_values(
        ["sku", "to_location", "_score", "transit_days", "from_location"], kind="mergesort"
    )
    order = order[order.groupby(["sku", "to_location"], sort=False).cumcount() < int(max_donors)]
    cand = cand.take(order["_pos"].to_numpy(np.int64))
    if not len(cand):
        return cand, "no donor has a whole pack to spare on a lane where a unit earns more than it costs to move"
    return cand, ""
