"""The optimisation model: one MILP per batch of candidates (HiGHS), the greedy as fallback.

See :mod:`pipelines.transfers` for the model. :func:`batches` cuts the candidates into independent
problems, :func:`solve_block` builds and solves one (:class:`~pipelines.transfers.lp.LinearProgram`,
named blocks), :func:`optimal_transfers` runs them under a shared time limit and falls back to the
greedy for the SKUs of a batch that finds no good solution in time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from pipelines.frames import KEY
from pipelines.transfers.candidates import Candidates, build_candidates
from pipelines.transfers.common import empty, expiring_units, publish
from pipelines.transfers.demand import EPS, Demand, benefit_curves, cum_demand_from, loss
from pipelines.transfers.greedy import greedy_transfers
from pipelines.transfers.lp import LinearProgram

#: HiGHS prints its log when true (debugging)
DISPLAY_SOLVER = False


@dataclass
class TransferPlan:
    """Output of :func:`optimal_transfers`: the transfers and how they were found."""

    transfers: pd.DataFrame
    method: str  # milp | greedy | none
    notes: list[str]
    mip_gap: float | None = None
    batches: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class BlockSolution:
    """What one MILP gives back, per candidate: units, the benefit value they carry (the receiver's
    segment value spread pro rata to units, minus the donor's expected lost margin), near-expiry
    units moved; and the gap, the HiGHS status and its message."""

    units: np.ndarray
    value: np.ndarray
    expiring: np.ndarray
    gap: float | None
    status: int
    message: str


def receiver_curves(c: pd.DataFrame, rid: np.ndarray, deterministic: bool) -> tuple[np.ndarray, ...]:
    """The benefit segments of each receiver, on its fastest lane's arrival: (receiver, width, value
    per unit) of every segment worth anything (value = expected lost units avoided x margin)."""
    fastest = pd.Series(c["transit_days"].to_numpy()).groupby(rid).idxmin().to_numpy()
    u, slope = benefit_curves(
        c["post_mean"].to_numpy()[fastest],
        c["at_arrival"].to_numpy()[fastest],
        deterministic,
        c["disp"].to_numpy(float)[fastest],
    )
    width = np.diff(u, axis=1)
    margin_r = c["unit_margin"].to_numpy(float)[fastest]
    seg_r, seg_k = np.nonzero((width > EPS) & (slope > 1e-6))
    return seg_r, width[seg_r, seg_k], slope[seg_r, seg_k] * margin_r[seg_r]


def donor_segments(cand: Candidates, did: np.ndarray, pack: np.ndarray, ubp: np.ndarray) -> tuple[np.ndarray, ...]:
    """The donors' risk segments that can bind: (donor, width, cost per unit). Only what a donor's
    candidates could take beyond its free units needs pricing (cheapest segments first): most
    donors never reach their risk, and fewer columns keep the batches fast."""
    if cand.risk is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    c = cand.rows
    nd = did.max() + 1
    dfirst = pd.Series(np.arange(len(c))).groupby(did).first().to_numpy()
    dw = cand.risk.width[dfirst].copy()
    dsl = cand.risk.slope[dfirst]
    room = np.maximum(
        np.bincount(did, weights=pack * ubp, minlength=nd)
        - c["fresh_excess"].to_numpy(float)[dfirst]
        - c["expiring_units"].to_numpy(float)[dfirst],
        0.0,
    )
    for k in range(dw.shape[1] - 1, -1, -1):
        dw[:, k] = np.minimum(dw[:, k], room)
        room = room - dw[:, k]
    dseg_d, dseg_k = np.nonzero(dw > EPS)
    return dseg_d, dw[dseg_d, dseg_k], dsl[dseg_d, dseg_k] * c["unit_margin"].to_numpy(float)[dfirst][dseg_d]


def _first(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    return pd.Series(values).groupby(group).first().to_numpy()


def solve_block(
    cand: Candidates,
    lane_scale: np.ndarray,
    margin_floor: float,
    deterministic: bool,
    time_limit: float,
    mip_rel_gap: float,
) -> BlockSolution:
    """One MILP over the candidates ``cand`` (see :mod:`pipelines.transfers` for the model).

    Variables: packs per candidate (integer), near-expiry units per candidate that has some,
    benefit segments per receiver, one binary per lane, the donors' risk segments. ``lane_scale``
    (per candidate): the share of its lane's fixed cost, minimum and capacity charged to this block
    (1 when the block holds every candidate of the lane).
    """
    c = cand.rows
    n = len(c)
    pack = c["pack_size"].to_numpy(float)
    ubp = c["ub_packs"].to_numpy(float)
    rid = c.groupby(["sku", "to_location"], sort=False).ngroup().to_numpy(np.int64)
    did = c.groupby(["sku", "from_location"], sort=False).ngroup().to_numpy(np.int64)
    lid = c.groupby(["from_location", "to_location"], sort=False).ngroup().to_numpy(np.int64)
    nr, nd, nl = rid.max() + 1, did.max() + 1, lid.max() + 1
    seg_r, seg_w, seg_v = receiver_curves(c, rid, deterministic)
    dseg_d, dseg_w, dseg_v = donor_segments(cand, did, pack, ubp)
    e_ub_all = np.minimum(c["expiring_units"].to_numpy(float), c["sellable_before_expiry"].to_numpy(float))
    ec = np.flatnonzero(e_ub_all > EPS)  # candidates that may carry near-expiry units
    ne, ns, nds = len(ec), len(seg_r), len(dseg_d)
    lane_first = _first(np.arange(n), lid)
    scale = _first(lane_scale, lid)
    min_u = c["min_units"].to_numpy(float)[lane_first] * scale
    cap = c["capacity"].to_numpy(float)[lane_first] * scale
    tight = np.flatnonzero(cap < np.bincount(lid, weights=pack * ubp, minlength=nl))  # lanes whose capacity binds
    ar = np.arange(n)

    lp = LinearProgram()
    x_n = lp.variables(
        "packs", pack * (c["cost_per_unit"].to_numpy(float) - c["hold_avoided"].to_numpy(float)), ubp, integer=True
    )
    x_e = lp.variables("expiring_units", -c["unit_cost"].to_numpy(float)[ec], e_ub_all[ec], integer=False)
    x_s = lp.variables("benefit_segments", -seg_v, seg_w, integer=False)
    x_y = lp.variables(
        "lane_used",
        c["fixed_cost_per_shipment"].to_numpy(float)[lane_first] * scale + margin_floor,
        np.ones(nl),
        integer=True,
    )
    x_d = lp.variables("donor_risk", dseg_v, dseg_w, integer=False)
    # receivers: the benefit counted is at most the units received; units at most the need
    lp.constraints("benefit_within_units", np.zeros(nr), [(seg_r, x_s + np.arange(ns), 1.0), (rid, x_n + ar, -pack)])
    lp.constraints("receiver_need", _first(c["need"].to_numpy(float), rid), [(rid, x_n + ar, pack)])
    # near-expiry units ride on the candidate's units
    lp.constraints(
        "expiring_within_units",
        np.zeros(ne),
        [(np.arange(ne), x_e + np.arange(ne), 1.0), (np.arange(ne), x_n + ec, -pack[ec])],
    )
    # donors: fresh units given at most the free ones plus the priced risk; near-expiry at most theirs
    lp.constraints(
        "donor_fresh",
        _first(c["fresh_excess"].to_numpy(float), did),
        [(did, x_n + ar, pack), (did[ec], x_e + np.arange(ne), -1.0), (dseg_d, x_d + np.arange(nds), -1.0)],
    )
    lp.constraints(
        "donor_expiring", _first(c["expiring_units"].to_numpy(float), did), [(did[ec], x_e + np.arange(ne), 1.0)]
    )
    # lanes: packs only on a used lane (n <= ub y, the tight form), capacity, minimum
    lp.constraints("packs_on_used_lane", np.zeros(n), [(ar, x_n + ar, 1.0), (ar, x_y + lid, -ubp)])
    tmap = np.full(nl, -1)
    tmap[tight] = np.arange(len(tight))
    on_tight = tmap[lid] >= 0
    lp.constraints(
        "lane_capacity",
        np.zeros(len(tight)),
        [(tmap[lid][on_tight], x_n + ar[on_tight], pack[on_tight]), (np.arange(len(tight)), x_y + tight, -cap[tight])],
    )
    lp.constraints("lane_minimum", np.zeros(nl), [(lid, x_n + ar, -pack), (np.arange(nl), x_y + np.arange(nl), min_u)])
    res = lp.solve(time_limit, mip_rel_gap, disp=DISPLAY_SOLVER)
    if res.x is None:
        return BlockSolution(np.zeros(n), np.zeros(n), np.zeros(n), None, int(res.status), str(res.message))
    units = np.rint(lp.block(res.x, "packs")) * pack
    e = np.zeros(n)
    e[ec] = np.minimum(lp.block(res.x, "expiring_units"), units[ec])
    seg_val = np.bincount(seg_r, weights=lp.block(res.x, "benefit_segments") * seg_v, minlength=nr)
    value = spread(seg_val, rid, units)
    if nds:  # the donor's expected lost margin, spread over its shipments pro rata to units
        value -= spread(np.bincount(dseg_d, weights=lp.block(res.x, "donor_risk") * dseg_v, minlength=nd), did, units)
    gap = getattr(res, "mip_gap", None)
    return BlockSolution(units, value, e, None if gap is None else float(gap), int(res.status), str(res.message))


def spread(total: np.ndarray, group: np.ndarray, units: np.ndarray) -> np.ndarray:
    """``total`` per group shared among its rows pro rata to ``units`` (0 where a group has none)."""
    g_units = np.bincount(group, weights=units, minlength=len(total))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            g_units[group] > 0, total[group] * units / np.where(g_units[group] > 0, g_units[group], 1.0), 0.0
        )


def batches(c: pd.DataFrame, max_candidates: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch id and lane scale per candidate.

    SKUs are coupled only through lanes with a fixed cost, a minimum or a capacity: connected
    components of the SKU-lane graph over those lanes are independent problems. Components are
    packed, in SKU order, into batches of at most ``max_candidates`` rows; a component larger
    than that is cut into batches by SKU, each charged a share of its lanes' fixed cost, minimum
    and capacity pro rata to the batch's potential volume on the lane (``lane_scale``).
    """
    # a node is a SKU within one connected component of the candidates' lanes: a SKU's rows in two
    # parts of the network are independent problems, and a batch never mixes two parts, so a lane
    # shard (pipelines.shards) gets exactly the batches an unsharded run would solve for its part
    lc = _lane_components(c)
    sku_id = pd.DataFrame({"lc": lc, "sku": c["sku"].to_numpy()}).groupby(["lc", "sku"], sort=True).ngroup()
    sku_id = sku_id.to_numpy(np.int64)
    lane_key = c.groupby(["from_location", "to_location"], sort=True).ngroup().to_numpy(np.int64)
    coupling = (
        (c["fixed_cost_per_shipment"].to_numpy(float) > 0)
        | (c["min_units"].to_numpy(float) > 0)
        | np.isfinite(c["capacity"].to_numpy(float))
    )
    ns, nl = sku_id.max() + 1, lane_key.max() + 1
    g = sp.coo_array(
        (np.ones(int(coupling.sum())), (sku_id[coupling], ns + lane_key[coupling])), shape=(ns + nl, ns + nl)
    )
    _, comp = connected_components(g, directed=False)
    rows_per_sku = np.bincount(sku_id, minlength=ns)
    # SKUs ordered by component (components by their first SKU), then by SKU
    comp_s = comp[:ns]
    first = pd.Series(np.arange(ns)).groupby(comp_s).transform("min").to_numpy()
    seq = np.lexsort((np.arange(ns), first))
    sizes = rows_per_sku[seq]
    cs = comp_s[seq]
    node_lc = np.zeros(ns, dtype=np.int64)
    node_lc[sku_id] = lc
    lcs = node_lc[seq]  # components of one part of the network are contiguous in seq
    comp_size = np.bincount(cs, weights=sizes)
    new_comp = np.r_[True, cs[1:] != cs[:-1]]
    new_lc = np.r_[True, lcs[1:] != lcs[:-1]]
    flat = np.cumsum(sizes) - sizes
    lc_start = np.maximum.accumulate(np.where(new_lc, flat, 0))
    start = flat - lc_start  # rows before this SKU within its part of the network
    comp_start = np.maximum.accumulate(np.where(new_comp, flat, 0)) - lc_start
    # a component goes whole to the batch where it starts; a component larger than a batch is
    # cut by SKU into batches of max_candidates rows
    big = comp_size[cs] > max_candidates
    base = comp_start // max_candidates
    sub = np.where(big, (start - comp_start) // max_candidates, 0)
    bkey = pd.DataFrame({"big": big, "lc": lcs, "base": np.where(big, cs, base), "sub": sub})
    # small components: the batch is their start's; big ones get their own ids after the small ones
    bid = bkey.groupby(["big", "lc", "base", "sub"], sort=True).ngroup().to_numpy(np.int64)
    batch_of_sku = np.empty(ns, dtype=np.int64)
    batch_of_sku[seq] = bid
    batch = batch_of_sku[sku_id]
    pot = c["pack_size"].to_numpy(float) * c["ub_packs"].to_numpy(float)
    lane_tot = np.bincount(lane_key, weights=pot, minlength=nl)
    key = lane_key * (batch.max() + 1) + batch
    part = pd.Series(pot).groupby(key).transform("sum").to_numpy()
    scale = np.where(lane_tot[lane_key] > 0, part / np.where(lane_tot[lane_key] > 0, lane_tot[lane_key], 1.0), 1.0)
    return batch, np.clip(scale, 0.0, 1.0)


def _lane_components(c: pd.DataFrame) -> np.ndarray:
    """Per candidate row, the connected component of its lane among all candidates' lanes."""
    codes, inv = np.unique(np.r_[c["from_location"].to_numpy(str), c["to_location"].to_numpy(str)], return_inverse=True)
    n = len(c)
    g = sp.coo_array((np.ones(n), (inv[:n], inv[n:])), shape=(len(codes), len(codes)))
    _, comp = connected_components(g, directed=False)
    return comp[inv[:n]].astype(np.int64)


def donor_keep_is_risk(donor_keep: str) -> bool:
    """``transfers.donor_keep``: risk (price the donor's expected lost sales) or reorder_point (hard rule)."""
    if donor_keep not in ("risk", "reorder_point"):
        raise ValueError(f"transfers: donor_keep must be 'risk' or 'reorder_point', got {donor_keep!r}")
    return donor_keep == "risk"


@dataclass
class BatchResults:
    """Units, benefit value and near-expiry units per candidate over all batches, the gaps of the
    solved ones and why the others failed (with their candidate rows)."""

    units: np.ndarray
    value: np.ndarray
    expiring: np.ndarray
    gaps: list[float]
    failed: list[str]
    failed_rows: list[np.ndarray]


def solve_batches(
    cand: Candidates,
    batch: np.ndarray,
    scale: np.ndarray,
    margin_floor: float,
    deterministic: bool,
    clock: float,
    time_limit_seconds: float,
    mip_rel_gap: float,
    max_gap: float,
) -> BatchResults:
    """One MILP per batch (few batches; the work is inside HiGHS), sharing the time limit: each batch
    gets the time left divided by the batches left. A batch fails when the time is up before it,
    HiGHS finds no solution, or the solution's gap is above ``max_gap``."""
    n = len(cand)
    nb = int(batch.max()) + 1
    out = BatchResults(np.zeros(n), np.zeros(n), np.zeros(n), [], [], [])
    order = np.argsort(batch, kind="stable")
    bounds = np.searchsorted(batch[order], np.arange(nb + 1))
    for k in range(nb):
        rows = order[bounds[k] : bounds[k + 1]]
        left = time_limit_seconds - (time.perf_counter() - clock)
        if left <= 0:
            out.failed.append(f"batch {k + 1}: time limit of {time_limit_seconds:g} s reached before it")
            out.failed_rows.append(rows)
            continue
        sol = solve_block(cand.take(rows), scale[rows], margin_floor, deterministic, left / (nb - k), mip_rel_gap)
        no_answer = sol.status == 1 and sol.gap is None and sol.units.sum() == 0 and sol.value.sum() == 0
        if sol.status not in (0, 1) or no_answer:
            out.failed.append(f"batch {k + 1}: {sol.message}")
            out.failed_rows.append(rows)
            continue
        if sol.gap is not None and sol.gap > max_gap:
            out.failed.append(f"batch {k + 1}: time limit with a gap of {sol.gap:.1%} (more than {max_gap:.0%})")
            out.failed_rows.append(rows)
            continue
        out.units[rows], out.value[rows], out.expiring[rows] = sol.units, sol.value, sol.expiring
        if sol.gap is not None and np.isfinite(sol.gap):
            out.gaps.append(sol.gap)
    return out


def chosen_transfers(cand: Candidates, res: BatchResults, notes: list[str]) -> pd.DataFrame:
    """The candidates the MILP ships on, with their cost and benefit (and, with the donors' risk priced,
    what each donor keeps and is expected to lose: the explanations say so). A lane cut across
    batches is checked against its true minimum on the totals; one below it is dropped (in the notes)."""
    pick = np.flatnonzero(res.units > 0)
    t = cand.rows.iloc[pick].copy()
    t["quantity"] = res.units[pick]
    lane_units = t.groupby(["from_location", "to_location"])["quantity"].transform("sum")
    below = (lane_units + EPS < t["min_units"]).to_numpy()
    if below.any():
        notes.append(
            f"{int(below.sum())} transfer(s) dropped: their lane's total stayed below its minimum across batches"
        )
    keep = ~below
    t, lane_units, pick = t[keep], lane_units[keep], pick[keep]
    t["transfer_cost"] = t["quantity"] * t["cost_per_unit"] + t["fixed_cost_per_shipment"] * t["quantity"] / lane_units
    t["expected_benefit"] = res.value[pick] + t["quantity"] * t["hold_avoided"] + res.expiring[pick] * t["unit_cost"]
    if cand.risk is not None and len(t):
        keeps = t["donor_available"] - t.groupby(["sku", "from_location"])["quantity"].transform("sum")
        need, disp = cand.risk.need[pick], t["donor_disp"].to_numpy(float)
        t["donor_keeps"] = keeps
        t["donor_lost_units"] = loss(need, np.maximum(keeps.to_numpy(float), 0.0), disp) - loss(
            need, np.maximum(t["donor_available"].to_numpy(float), 0.0), disp
        )
    return t


def optimal_transfers(
    policy_df: pd.DataFrame,
    items: pd.DataFrame,
    locations: pd.DataFrame,
    lanes: pd.DataFrame,
    run_date: date,
    coverage_days: int,
    margin_floor: float,
    *,
    policies: pd.DataFrame | None = None,
    forecasts: pd.DataFrame | None = None,
    stock: pd.DataFrame | None = None,
    demand: Demand | None = None,
    exclude: pd.DataFrame | None = None,
    donor_excess: pd.DataFrame | None = None,
    holding_cost_rate: float = 0.25,
    time_limit_seconds: float = 240.0,
    mip_rel_gap: float = 0.01,
    batch_candidates: int = 40_000,
    planner_categories: Sequence[str] = (),
    max_donors: int = 3,
    max_gap: float = 0.2,
    fallback: bool = True,
    donor_keep: str = "risk",
) -> TransferPlan:
    """Transfers chosen by the MILP (:mod:`pipelines.transfers`), with the greedy as fallback.

    ``demand`` overrides the demand planned with (default: Poisson around the ``forecasts`` daily
    means, or the flat ``demand_mean``); ``exclude`` (sku, from_location, to_location) are never
    proposed (rejected by a planner); ``donor_excess`` (sku, location, excess) overrides the
    donors' units to spare (the replay's perfect foresight). The time limit is shared by all
    batches; the SKUs of a batch that finds no solution in time, or only one with a gap above
    ``max_gap``, get the greedy's transfers (``method`` = greedy on those rows; the plan's
    method is greedy when every batch failed). ``policy_df`` may carry ``ss_sigma`` (the policy
    detail's spread of lead-time demand) for the donors' risk.
    """
    clock = time.perf_counter()
    H = int(coverage_days)
    if demand is None:
        keys = policy_df[KEY].reset_index(drop=True)
        demand = Demand(keys, cum_demand_from(keys, policy_df["demand_mean"].to_numpy(float), H, forecasts, run_date))
    cand, why = build_candidates(
        policy_df,
        items,
        locations,
        lanes,
        demand,
        H,
        holding_cost_rate,
        expiring_units(stock, policy_df, run_date),
        exclude,
        donor_excess,
        max_donors,
        donor_keep_is_risk(donor_keep),
    )
    if not len(cand):
        return TransferPlan(empty(), "none", [f"no transfer: {why}"], None, 0, time.perf_counter() - clock)
    batch, scale = batches(cand.rows, int(batch_candidates))
    nb = int(batch.max()) + 1
    res = solve_batches(
        cand, batch, scale, float(margin_floor), demand.deterministic, clock, time_limit_seconds, mip_rel_gap, max_gap
    )
    notes: list[str] = []
    fallback_out = empty()
    if res.failed:
        head = f"MILP found no solution in {len(res.failed)} of {nb} batch(es) ({'; '.join(res.failed[:3])})"
        if not fallback:
            notes.append(f"{head}; no fallback: those SKUs get no transfer")
        else:
            # the greedy for the SKUs of the failed batches (the others keep the MILP's answer)
            skus = pd.Index(cand.rows["sku"].to_numpy()[np.concatenate(res.failed_rows)]).unique()
            fallback_out = greedy_transfers(
                policy_df[policy_df["sku"].isin(skus)],
                items,
                locations,
                lanes,
                run_date,
                H,
                margin_floor,
                policies=policies,
                planner_categories=planner_categories,
                exclude=exclude,
            )
            notes.append(f"{head}; greedy fallback used for their {len(skus)} SKU(s): {len(fallback_out)} transfer(s)")
    t = chosen_transfers(cand, res, notes)
    method = "greedy" if res.failed and len(res.failed) == nb and fallback else "milp"
    if t.empty and fallback_out.empty:
        why = "none pays for its lane cost" if not res.failed else "no solution in time"
        return TransferPlan(empty(), method, notes + [f"no transfer: {why}"], None, nb, time.perf_counter() - clock)
    out = publish(t, run_date, H, "milp", policies, planner_categories) if len(t) else empty()
    out = pd.concat([x for x in (out, fallback_out) if len(x)], ignore_index=True)
    out = out.sort_values(["sku", "from_location", "to_location"]).reset_index(drop=True)
    gap = max(res.gaps) if res.gaps else None
    seconds = time.perf_counter() - clock
    notes.insert(
        0,
        f"{method}: {len(out)} transfer(s) ({int((out['method'] == 'milp').sum())} by the MILP),"
        f" {out['quantity'].sum():g} units, cost {out['transfer_cost'].sum():.2f},"
        f" expected benefit {out['expected_benefit'].sum():.2f}; {nb} batch(es), {len(cand)} candidate(s),"
        f" gap {'n/a' if gap is None else f'{gap:.4%}'}, {seconds:.1f} s",
    )
    return TransferPlan(out, method, notes, gap, nb, seconds)
