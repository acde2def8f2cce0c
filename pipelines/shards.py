"""Shards: how the heavy stages of a night split into tasks, with results that do not depend on it.

The ``shards`` section of the configuration names the split (``by`` and at most ``count`` shards);
the ``shards`` stage turns it into a plan for the night (``shards.json``), from the validated data:

- **series** shards (policy, and forecast with ``forecast.method: moving_average``): the SKU-locations grouped by store (``by: location`` or
  ``region``) or by item (``by: category`` or ``sku``). Every step of these stages is per series,
  given two facts about the whole panel that the plan carries: the first date of the sales history
  and the ABC classes (``abc.parquet``: the network class needs every location of a SKU, the
  location class every SKU of a location), computed once here;
- **forecast** shards: the series shards. The global model (``forecast.method: selected``) pools
  levels over groups of series (a SKU across stores, a store across SKUs), which a shard would
  compute over its own series only: the ``model`` stage computes them once over the whole panel
  (``pooled_levels``) and every forecast shard predicts with those;
- **item** shards (alerts): SKUs, because an alert looks at the other locations of its SKU (who can
  take near-expiry stock, who can give to a stockout). With ``by: category`` or ``sku`` they are the
  series shards; otherwise SKUs packed into ``count`` shards;
- **lane** shards (transfers): the connected components of the lane network, packed into at most
  ``count`` shards; a shard never splits a component, so no transfer crosses shards (the MILP
  batches never mix components either, :func:`pipelines.transfers.milp.batches`).

Groups are packed into shards by size (number of series), largest first onto the lightest shard,
ties by name: deterministic. The model every forecast shard applies is made sure of once, before
them, by the ``model`` stage (:func:`pipelines.forecast.model_stage`).

A sharded stage runs once per shard (:class:`ShardScope`): it reads the night's files filtered to
its shard (parquet row filters, so a shard's memory grows with the shard, not the panel) and writes
into ``<run_dir>/shards/<stage>-<k>/``; the stage's gather step (:func:`gather`) concatenates the
shards' files into the usual staging files in the contract's order, so one shard and N shards give
the same files, and the single publish transaction of the night is unchanged.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from pipelines import contract
from pipelines.frames import KEY

PLAN = "shards.json"
ABC = "abc"

#: which shard list each sharded stage maps over (see pipelines.stages: Stage.sharded)
KINDS = ("series", "forecast", "items", "lanes")

#: the files a shard of each kind reads filtered to its shard; every other file is read whole
#: (small tables: items, locations, policies, decisions, open transfers, sourcing, the plan)
FILTERED: dict[str, tuple[str, ...]] = {
    "series": (
        "sales",
        "stock",
        "lead_times",
        "forecasts",
        "lead_time_demand",
        ABC,
        "purchase_orders",
        "open_purchases",
    ),
    "forecast": ("sales", "stock", "lead_times", "pooled_levels"),
    "items": ("inventory_policy", "stock", "sales", "transfers"),
    "lanes": ("inventory_policy", "policy_detail", "forecasts", "stock", "lanes", "open_transfers"),
}


@dataclass(frozen=True)
class ShardScope:
    """One shard of one stage: the rows it owns (``axis`` column in ``values``) and where it writes."""

    stage: str
    kind: str
    index: int
    axis: str  # "location" or "sku"
    values: tuple[str, ...]
    writes: frozenset[str]
    history_start: str | None = None

    @property
    def dir_name(self) -> str:
        return f"{self.stage}-{self.index:03d}"

    @property
    def key(self) -> str:
        """A name for what the shard holds (its axis and values), stable from night to night while it
        holds the same stores or items, whatever its index: the folder of its own forecast model."""
        import hashlib

        digest = hashlib.sha1("\x1f".join((self.axis, *sorted(self.values))).encode()).hexdigest()[:12]
        return f"{self.axis}-{digest}"

    def column(self, name: str, columns: list[str] | tuple[str, ...]) -> str | None:
        """The column of file ``name`` this shard filters on, or None when it reads the file whole."""
        if name not in FILTERED[self.kind]:
            return None
        if self.axis in columns:
            return self.axis
        if self.axis == "location" and "from_location" in columns:  # lanes, transfers: a component holds both ends
            return "from_location"
        return None

    def filters(self, name: str, columns: list[str] | tuple[str, ...]) -> list[tuple[str, str, list[str]]] | None:
        """A pyarrow row filter for file ``name`` (None: read it whole)."""
        col = self.column(name, columns)
        return None if col is None else [(col, "in", list(self.values))]

    def keep(self, df: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``df`` this shard owns (by its axis column)."""
        return df[df[self.axis].astype("str").isin(self.values)]


def _pack(weights: pd.Series, count: int) -> list[list[str]]:
    """Groups (index: name, value: size) packed into at most ``count`` non-empty shards, largest
    group first onto the lightest shard (ties: lowest shard index); groups sorted by name within a shard."""
    if weights.empty:
        return [[]]
    order = sorted(weights.items(), key=lambda kv: (-float(kv[1]), str(kv[0])))
    k = max(1, min(int(count), len(order)))
    heap = [(0.0, i) for i in range(k)]
    shards: list[list[str]] = [[] for _ in range(k)]
    for name, w in order:
        load, i = heapq.heappop(heap)
        shards[i].append(str(name))
        heapq.heappush(heap, (load + float(w), i))
    return [sorted(s) for s in shards if s]


def lane_components(locations: pd.DataFrame, lanes: pd.DataFrame) -> pd.Series:
    """The connected component (0..n-1, by first location code) of every location over the lanes
    (either direction); a location without lanes is a component of its own. Index: location code."""
    codes = pd.Index(
        sorted(
            set(locations["location"].astype("str"))
            | set(lanes["from_location"].astype("str"))
            | set(lanes["to_location"].astype("str"))
        )
    )
    a = codes.get_indexer(lanes["from_location"].astype("str"))
    b = codes.get_indexer(lanes["to_location"].astype("str"))
    g = sp.coo_array((np.ones(len(a)), (a, b)), shape=(len(codes), len(codes)))
    _, comp = connected_components(g, directed=False)
    # renumber by each component's first location (codes are sorted): stable across runs
    first = pd.Series(np.arange(len(codes))).groupby(comp).transform("min").to_numpy()
    return pd.Series(pd.factorize(first, sort=True)[0], index=codes, name="component")


def plan_shards(
    by: str,
    count: int,
    keys: pd.DataFrame,
    items: pd.DataFrame,
    locations: pd.DataFrame,
    lanes: pd.DataFrame,
) -> dict[str, list[dict[str, Any]]]:
    """The night's shards of each kind (:data:`KINDS`) for the series ``keys`` (sku, location): each
    a dict with ``axis`` and ``values`` (the locations or SKUs it owns)."""
    per_loc = keys.groupby("location", sort=True).size()
    per_sku = keys.groupby("sku", sort=True).size()
    if by == "location":
        series_axis, groups = "location", {str(v): [str(v)] for v in per_loc.index}
        weights = per_loc
    elif by == "region":
        region = locations.set_index(locations["location"].astype("str"))["region"].astype("str")
        reg = per_loc.rename(index=lambda loc: region.get(loc, "")).groupby(level=0).sum()
        series_axis, weights = "location", reg
        groups = {}
        for loc in per_loc.index:
            groups.setdefault(region.get(str(loc), ""), []).append(str(loc))
    elif by == "category":
        cat = items.set_index(items["sku"].astype("str"))["category"].astype("str")
        c = per_sku.rename(index=lambda s: cat.get(s, "")).groupby(level=0).sum()
        series_axis, weights = "sku", c
        groups = {}
        for sku in per_sku.index:
            groups.setdefault(cat.get(str(sku), ""), []).append(str(sku))
    elif by == "sku":
        series_axis, groups, weights = "sku", {str(v): [str(v)] for v in per_sku.index}, per_sku
    else:
        raise ValueError(f"shards.by must be location, region, category or sku, got {by!r}")

    def expand(packed: list[list[str]], members: dict[str, list[str]], axis: str) -> list[dict[str, Any]]:
        return [{"axis": axis, "values": sorted(v for g in shard for v in members.get(g, []))} for shard in packed]

    series = expand(_pack(weights, count), groups, series_axis)
    if series_axis == "sku":
        item_shards = series
    else:
        item_shards = expand(_pack(per_sku, count), {str(s): [str(s)] for s in per_sku.index}, "sku")
    comp = lane_components(locations, lanes)
    comp_w = per_loc.reindex(comp.index, fill_value=0).groupby(comp.to_numpy()).sum()
    comp_w.index = comp_w.index.map(lambda c: f"{int(c):06d}")
    comp_members: dict[str, list[str]] = {}
    for loc, c in comp.items():
        comp_members.setdefault(f"{int(c):06d}", []).append(str(loc))
    lane_shards = expand(_pack(comp_w, count), comp_members, "location")
    return {"series": series, "items": item_shards, "lanes": lane_shards}


def abc_frame(sales: pd.DataFrame, items: pd.DataFrame, keys: pd.DataFrame, run_date: Any, pc: Any) -> pd.DataFrame:
    """The ABC classes of every series ``keys`` over the whole panel (network and location), as the
    policy stage computes them unsharded: sku, location, abc_class_network, abc_class_location."""
    from pipelines.classify import abc_classes, location_abc

    net = abc_classes(sales, items, run_date, pc.abc_cutoffs, pc.abc_days)[["sku", "abc_class"]]
    out = keys[KEY].reset_index(drop=True).copy()
    out["abc_class_location"] = location_abc(sales, out, items, run_date, pc.abc_cutoffs, pc.abc_days)
    out = out.merge(net.rename(columns={"abc_class": "abc_class_network"}), on="sku", how="left")
    out["abc_class_network"] = out["abc_class_network"].fillna("C")
    return out[[*KEY, "abc_class_network", "abc_class_location"]]


def night_plan(cfg: Any, keys: pd.DataFrame, sales: pd.DataFrame, items: pd.DataFrame, locations: pd.DataFrame,
               lanes: pd.DataFrame) -> dict[str, Any]:  # fmt: skip
    """The night's plan (``shards.json``) for the series ``keys`` (``frames.series_keys``): the
    shards of every kind, the panel's first sales date, the split asked for. The ``shards`` stage
    (:mod:`pipelines.planning`) writes it; the weekly retrain of per-shard models plans the same way
    on the same data."""
    from pipelines.frames import history_start

    plan: dict[str, Any] = plan_shards(cfg.shards.by, cfg.shards.count, keys, items, locations, lanes)
    # The global model (forecast.method selected) pools levels over groups of series (a SKU across
    # stores, a store across SKUs): the model stage computes them over the whole panel
    # (pooled_levels), so its forecast splits as the series do.
    plan["forecast"] = plan["series"]
    first = history_start(sales)
    plan["history_start"] = None if first is None else first.date().isoformat()
    plan["by"], plan["count"] = cfg.shards.by, cfg.shards.count
    return plan


def read_plan(run_dir: Path) -> dict[str, Any]:
    p = Path(run_dir) / PLAN
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: the shards stage has not run for this date")
    return dict(json.loads(p.read_text(encoding="utf-8")))


def scope(plan: dict[str, Any], stage: Any, index: int) -> ShardScope:
    """Shard ``index`` of sharded ``stage`` (a :class:`pipelines.stages.Stage`) in ``plan``."""
    shards = plan[stage.sharded]
    if not 0 <= index < len(shards):
        raise IndexError(f"stage {stage.name!r} has {len(shards)} {stage.sharded} shard(s); no shard {index}")
    s = shards[index]
    return ShardScope(
        stage=stage.name,
        kind=stage.sharded,
        index=index,
        axis=str(s["axis"]),
        values=tuple(s["values"]),
        writes=frozenset(stage.all_writes),
        history_start=plan.get("history_start"),
    )


def merge_json(name: str, parts: list[Any]) -> Any:
    """The gathered content of a JSON file the shards of a stage each wrote: counts add up
    (``alert_noise.json``: alerts and value at risk per alert type)."""
    if name == "alert_noise.json":
        below: dict[str, dict[str, float]] = {}
        for p in parts:
            for kind, v in p.get("below_materiality", {}).items():
                acc = below.setdefault(kind, {"alerts": 0, "value_at_risk": 0.0})
                acc["alerts"] += int(v["alerts"])
                acc["value_at_risk"] += float(v["value_at_risk"])
        return {
            "below_materiality": {
                k: {"alerts": int(v["alerts"]), "value_at_risk": round(v["value_at_risk"], 2)}
                for k, v in sorted(below.items())
            }
        }
    raise ValueError(f"no rule to gather {name!r} from shards")


def gather(ctx: Any, stage: Any, n_shards: int) -> dict[str, int]:
    """Concatenate the ``n_shards`` shards' files of ``stage`` into the run's staging files (in the
    contract's order, so they equal an unsharded run's); returns the rows per file."""
    base = Path(ctx.run_dir) / "shards"
    counts: dict[str, int] = {}
    for w in stage.all_writes:
        files = [
            base / f"{stage.name}-{k:03d}" / (w if w.endswith(".json") else f"{w}.parquet") for k in range(n_shards)
        ]
        present = [f for f in files if f.exists()]
        if w.endswith(".json"):
            if present:
                ctx.write_json(
                    w.removesuffix(".json"), merge_json(w, [json.loads(f.read_text("utf-8")) for f in present])
                )
            continue
        if not present:
            continue
        frames = [pd.read_parquet(f) for f in present]
        df = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
        if w not in contract.TABLES:
            df = (
                df.sort_values([c for c in KEY if c in df.columns], kind="mergesort")
                if set(KEY) <= set(df.columns)
                else df
            )
        counts[w] = ctx.write(w, df)
    return counts
