"""The load stage: publish a run date's output files to the reporting database.

Reads every output table of the contract present in the run's staging folder, migrates the
reporting database (:func:`pipelines.reporting.migrate`) and publishes them for the run date in one
atomic, idempotent transaction (:func:`pipelines.reporting.publish`). A table whose file is
missing is published as empty (its rows of that date are removed), so that the published state is
exactly what this run produced; a run with no output file at all is refused rather than wiping
the date.

Extraction watermarks: when the extractor proposed new ones (``<run_dir>/watermarks.json``, a list
of ``{"source", "table_name", "watermark"}``), they are written by
:func:`pipelines.reporting.set_watermark` inside the same publish transaction (``before_commit``),
so they advance only when the run's rows are published: a failed or killed publish leaves the
previous watermarks, and the next run extracts the same increment again.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipelines import contract, decision_store, reporting
from pipelines.context import RunContext, StageResult
from pipelines.urls import redact_url

WATERMARKS_FILE = "watermarks.json"


def read_proposed_watermarks(path: Path) -> list[dict[str, str]]:
    """The watermarks proposed in ``path`` (a JSON list of ``{"source", "table_name", "watermark"}``).

    Raises ``ValueError`` naming the file, the entry and the field when an entry is malformed, or
    when two entries name the same source and table.
    """
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of {{source, table_name, watermark}}, got {type(data).__name__}")
    out: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: entry {i} is not an object")
        for field in ("source", "table_name", "watermark"):
            value = entry.get(field)
            if value is None or str(value) == "":
                raise ValueError(f"{path}: entry {i} has no {field!r}")
        key = (str(entry["source"]), str(entry["table_name"]))
        if key in seen:
            raise ValueError(f"{path}: entry {i} repeats source {key[0]!r}, table {key[1]!r}")
        seen.add(key)
        out.append({"source": key[0], "table_name": key[1], "watermark": str(entry["watermark"])})
    return out


def _staged_outputs(ctx: RunContext) -> tuple[list[str], dict[str, pd.DataFrame]]:
    """The output tables staged for the run (refusing a run with none) and their frames."""
    present = [name for name in contract.OUTPUT_TABLES if ctx.exists(name)]
    if not present:
        raise FileNotFoundError(
            f"load {ctx.run_date}: no output file in {ctx.run_dir} (expected some of"
            f" {', '.join(contract.OUTPUT_TABLES)}); refusing to publish an empty run over the published one"
        )
    frames = {name: ctx.read(name) for name in present}
    if "dq_results" in frames and ctx.exists("order_checks"):  # the order book's checks, with validation's
        frames["dq_results"] = pd.concat([frames["dq_results"], ctx.read("order_checks", table="dq_results")])
    return present, frames


def _load_notes(
    ctx: RunContext,
    run_id: str,
    url: str,
    frames: dict[str, pd.DataFrame],
    inserted: dict[str, int],
    auto_approved: int,
    watermarks: list[dict[str, str]],
) -> list[str]:
    missing = [name for name in contract.OUTPUT_TABLES if name not in frames]
    notes = [
        f"published {ctx.run_date} (run {run_id}) to {redact_url(url)}:"
        f" {sum(inserted.values())} row(s) in {len(inserted)} table(s)"
    ]
    if missing:
        notes.append(f"no file for {', '.join(missing)}: published as empty for {ctx.run_date}")
    if auto_approved:
        notes.append(f"{auto_approved} auto-tier transfer(s) approved by the system")
    if watermarks:
        notes.append(
            "watermarks advanced: " + ", ".join(f"{w['source']}.{w['table_name']}={w['watermark']}" for w in watermarks)
        )
    return notes


def load_stage(ctx: RunContext, *, before_commit: Callable[[sa.Connection], None] | None = None) -> StageResult:
    """Publish ``ctx.run_date`` (run id ``ctx.run_id``) to ``ctx.cfg.reporting_url()``.

    The proposed watermarks of ``<run_dir>/watermarks.json`` (when the file exists) are set inside
    the publish transaction, then ``before_commit(conn)`` runs (also inside it).
    Counts = rows published per output table (0 for a table with no file), plus ``watermarks``.
    """
    present, frames = _staged_outputs(ctx)
    wm_path = ctx.path(WATERMARKS_FILE)
    watermarks = read_proposed_watermarks(wm_path) if wm_path.exists() else []

    approved = {"auto_approved": 0, "auto_approved_purchases": 0}

    def _before_commit(conn: sa.Connection) -> None:
        if "transfers" in frames:  # the auto tier is approved by the system, with the publish
            approved["auto_approved"] = decision_store.approve_auto_tier(
                conn, frames["transfers"], ctx.run_date, ctx.run_id
            )
        if "purchase_proposals" in frames:  # so are the auto-tier purchases
            approved["auto_approved_purchases"] = decision_store.approve_auto_purchases(
                conn, frames["purchase_proposals"], ctx.run_date, ctx.run_id
            )
        for wm in watermarks:
            reporting.set_watermark(conn, wm["source"], wm["table_name"], wm["watermark"], ctx.run_date)
        if before_commit is not None:
            before_commit(conn)

    run_id = ctx.run_id
    url = ctx.cfg.reporting_url()
    reporting.migrate(url)
    counts = {name: len(frames[name]) if name in frames else 0 for name in contract.OUTPUT_TABLES}
    inserted = reporting.publish(url, ctx.run_date, run_id, frames, counts=counts, before_commit=_before_commit)
    notes = _load_notes(ctx, run_id, url, frames, inserted, approved["auto_approved"], watermarks)
    docs = publish_data_docs(ctx)
    if docs is not None:
        notes.append(f"Data Docs: {docs / 'index.html'}")
    paths = {name: str(ctx.path(name)) for name in present}
    if watermarks:
        paths["watermarks"] = str(wm_path)
    return StageResult(
        stage="load",
        paths=paths,
        counts={**inserted, "watermarks": len(watermarks), **approved},
        notes=notes,
    )


def publish_data_docs(ctx: RunContext) -> Path | None:
    """Copy the attempt's Data Docs (``<run_dir>/data_docs``) over the date's published ones
    (``<output_dir>/<date>/data_docs``): called once the publish committed, so the published Data
    Docs always describe the published results. A copy beside the target, then two renames."""
    src = ctx.run_dir / "data_docs"
    if not src.is_dir():
        return None
    target = ctx.output_dir / "data_docs"
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = target.with_name(f"data_docs.new-{os.getpid()}")
    old = target.with_name(f"data_docs.old-{os.getpid()}")
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(src, fresh)
    if target.exists():
        os.replace(target, old)
    os.replace(fresh, target)
    shutil.rmtree(old, ignore_errors=True)
    return target
