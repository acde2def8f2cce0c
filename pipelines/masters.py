"""Masters stage: the item master, the locations and the lanes the run used, as output tables.

``item_master`` (names, category, prices, packs) and ``location_master`` (name, type, region,
shipping flags) and ``lane_master`` (costs, minimum, capacity, transit) are published with the run so that whoever reads the recommendations (the
workbench, BI tools) labels and filters them by the same master data the run planned with.
"""

from __future__ import annotations

from pipelines.context import RunContext, StageResult


def masters_stage(ctx: RunContext) -> StageResult:
    """Read the validated ``items``, ``locations`` and ``lanes``; write ``item_master``,
    ``location_master`` and ``lane_master``."""
    run = {"run_date": ctx.run_date, "run_id": ctx.run_id}
    counts = {
        "item_master": ctx.write("item_master", ctx.read("items").assign(**run)),
        "location_master": ctx.write("location_master", ctx.read("locations").assign(**run)),
        "lane_master": ctx.write("lane_master", ctx.read("lanes").assign(**run)),
    }
    return StageResult(stage="masters", paths={name: str(ctx.path(name)) for name in counts}, counts=counts)
