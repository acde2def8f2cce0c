"""The ``shards`` stage: the night's plan of how the heavy stages split into tasks
(:func:`pipelines.shards.night_plan`, ``shards.json``) and the ABC classes over the whole panel
(``abc``), which every policy shard reads (the network class needs every location of a SKU, the
location class every SKU of a location). The planning itself lives in :mod:`pipelines.shards`,
which the stages that run sharded share."""

from __future__ import annotations

from pipelines.context import RunContext, StageResult
from pipelines.frames import series_keys
from pipelines.shards import ABC, KINDS, PLAN, abc_frame, night_plan


def shards_stage(ctx: RunContext) -> StageResult:
    """Plan the night's shards (``shards.json``) and the panel-wide ABC classes (``abc``)."""
    cfg = ctx.cfg
    sales, items, stock = ctx.read("sales"), ctx.read("items"), ctx.read("stock")
    keys = series_keys(sales, items, stock, ctx.run_date)  # once: the plan and the ABC classes share them
    plan = night_plan(cfg, keys, sales, items, ctx.read("locations"), ctx.read("lanes"))
    n_abc = ctx.write(ABC, abc_frame(sales, items, keys, ctx.run_date, cfg.policy))
    path = ctx.write_json(PLAN.removesuffix(".json"), plan)
    sizes = {k: len(plan[k]) for k in KINDS}
    notes = ["shards: " + ", ".join(f"{k} {v}" for k, v in sizes.items()) + f" (by {cfg.shards.by})"]
    return StageResult(
        stage="shards",
        paths={"shards": str(path), ABC: str(ctx.path(ABC))},
        counts={**{f"{k}_shards": v for k, v in sizes.items()}, ABC: n_abc},
        notes=notes,
    )
