"""The load stage: publish a run date's output files to the reporting database.

Reads every output table of the contract present in the run's staging folder, migrates the
reporting database (:func:`pipelines.reporting.migrate`) and publishes them for the run date in one
atomic, idempotent transaction (:func:`pipelines.reporting.publish`). A table whose file is
missing is published as empty (its rows of that date are removed), so that the published state is
exactly what this run produced; a run with no output file at all is refused rather than wiping
the date.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from pipelines import contract, reporting
from pipelines.config import redact_url
from pipelines.context import RunContext, StageResult


def load_stage(ctx: RunContext, *, before_commit: Callable[[sa.Connection], None] | None = None) -> StageResult:
    """Publish ``ctx.run_date`` (run id ``ctx.run_id``) to ``ctx.cfg.reporting_url()``.

    ``before_commit(conn)`` runs inside the publish transaction (e.g. to advance watermarks).
    Counts = rows published per output table (0 for a table with no file).
    """
    present = [name for name in contract.OUTPUT_TABLES if ctx.exists(name)]
    if not present:
        raise FileNotFoundError(
            f"load {ctx.run_date}: no output file in {ctx.run_dir} (expected some of"
            f" {', '.join(contract.OUTPUT_TABLES)}); refusing to publish an empty run over the published one"
        )
    frames = {name: ctx.read(name) for name in present}
    run_id = ctx.run_id
    url = ctx.cfg.reporting_url()
    reporting.migrate(url)
    counts = {name: len(frames[name]) if name in frames else 0 for name in contract.OUTPUT_TABLES}
    inserted = reporting.publish(url, ctx.run_date, run_id, frames, counts=counts, before_commit=before_commit)
    missing = [name for name in contract.OUTPUT_TABLES if name not in frames]
    notes = [
        f"published {ctx.run_date} (run {run_id}) to {redact_url(url)}:"
        f" {sum(inserted.values())} row(s) in {len(inserted)} table(s)"
    ]
    if missing:
        notes.append(f"no file for {', '.join(missing)}: published as empty for {ctx.run_date}")
    return StageResult(
        stage="load",
        paths={name: str(ctx.path(name)) for name in present},
        counts=inserted,
        notes=notes,
    )
