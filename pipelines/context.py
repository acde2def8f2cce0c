"""The run context: where one run date's staging files live, and how stages read and write them.

Every arrow of the pipeline is a parquet file in ``<staging_dir>/<run_date>/``; a stage takes a
:class:`RunContext`, reads its inputs with :meth:`RunContext.read`, writes its outputs with
:meth:`RunContext.write` and returns a :class:`StageResult` (paths and counts: what goes through
Airflow's XCom). Writes are atomic (temporary file, then rename) and rows are written in the
contract's deterministic order, so re-running a date gives byte-identical inputs to the next stage.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import contract
from pipelines.config import Config
from pipelines.frames import HISTORY_START


@dataclass
class StageResult:
    """What a stage hands to the next: file paths and row counts (JSON-serialisable for XCom)."""

    stage: str
    paths: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_xcom(self) -> dict[str, Any]:
        return {"stage": self.stage, "paths": self.paths, "counts": self.counts, "notes": self.notes}


@dataclass
class RunContext:
    """Where one run date's staging files live. Every access by name is recorded in ``accessed``
    (reads, existence checks) and ``written``, so the runner can hold a stage to its declaration
    (:mod:`pipelines.stages`): ``name`` is ``name.parquet``, a name ending in ``.json`` is that file."""

    cfg: Config
    run_date: date
    accessed: set[str] = field(default_factory=set, repr=False, compare=False)
    written: set[str] = field(default_factory=set, repr=False, compare=False)
    #: the run-log attempt this context stages for (the runner's): its own folder, see :meth:`run_dir`
    attempt: str | None = None
    #: the shard a sharded stage runs for (:mod:`pipelines.shards`): reads filtered, writes in its folder
    shard: Any = None

    @property
    def date_dir(self) -> Path:
        """``<staging_dir>/<run_date>``: the staging files of the date's latest finished attempt."""
        return Path(self.cfg.staging_dir) / self.run_date.isoformat()

    @property
    def run_dir(self) -> Path:
        """Where this run's staging files are: :attr:`date_dir`, or with an ``attempt`` its own
        ``<run_date>.attempt-<id>`` folder beside it, which :func:`promote_attempt` makes the date's
        folder when the attempt ends (so two attempts never write into one folder)."""
        if self.attempt is None:
            return self.date_dir
        return self.date_dir.with_name(f"{self.run_date.isoformat()}.attempt-{self.attempt}")

    @property
    def output_dir(self) -> Path:
        return Path(self.cfg.output_dir) / self.run_date.isoformat()

    @property
    def last_sales_date(self) -> date:
        """Sales reach the day before the run date."""
        return self.run_date - timedelta(days=1)

    def write_dir(self, name: str) -> Path:
        """The folder file ``name`` is written to: the shard's own for its stage's files, else :attr:`run_dir`."""
        if self.shard is not None and name in self.shard.writes:
            return self.run_dir / "shards" / self.shard.dir_name
        return self.run_dir

    def path(self, name: str) -> Path:
        """The path of staging file ``name`` (``name.parquet``, or ``name`` itself for ``*.json``);
        in a shard, the shard's own folder for the files its stage writes."""
        self.accessed.add(name)
        return self.write_dir(name) / (name if name.endswith(".json") else f"{name}.parquet")

    def read_filters(self, name: str) -> list[Any] | None:
        """The pyarrow row filter a shard reads file ``name`` with (None: the whole file)."""
        if self.shard is None:
            return None
        p = self.path(name)
        if not p.exists():
            return None
        schema = pq.read_schema(p)
        filters = self.shard.filters(name, schema.names)
        if filters and pa.types.is_null(schema.field(filters[0][0]).type):
            return None  # an all-null column (an empty table written untyped): nothing to filter
        return filters

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def output_path(self, name: str) -> Path:
        """The path to write staging file ``name`` to (recorded as written, not as read)."""
        self.written.add(name)
        return self.write_dir(name) / (name if name.endswith(".json") else f"{name}.parquet")

    def write(self, name: str, df: pd.DataFrame, *, table: str | None = None) -> int:
        """Conform ``df`` to the contract table (``table`` or ``name``), sort, write atomically."""
        tname = table or name
        if tname in contract.TABLES:
            df = contract.canonical_order(contract.conform(df, tname), tname)
        else:
            df = df.reset_index(drop=True)
        target = self.output_path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".parquet.tmp")
        df.to_parquet(tmp, index=False)
        os.replace(tmp, target)
        return len(df)

    def read(self, name: str, *, table: str | None = None) -> pd.DataFrame:
        p = self.path(name)
        if not p.exists():
            raise FileNotFoundError(
                f"staging file {p} is missing: the stage that writes {name!r} has not run for {self.run_date}"
            )
        filters = self.read_filters(name)
        df = pd.read_parquet(p, filters=filters) if filters else pd.read_parquet(p)
        tname = table or name
        if tname in contract.TABLES:
            df = contract.conform(df, tname)
        if self.shard is not None and name == "sales" and self.shard.history_start:
            df.attrs[HISTORY_START] = self.shard.history_start  # the panel's, not the shard's first sale
        return df

    def write_json(self, name: str, obj: Any) -> Path:
        target = self.output_path(f"{name}.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, target)
        return target

    def read_json(self, name: str) -> Any:
        return json.loads(self.path(f"{name}.json").read_text(encoding="utf-8"))

    @property
    def run_id(self) -> str:
        """The run id fixed by validation (``run.json``), see :meth:`compute_run_id`."""
        p = self.path("run.json")
        if not p.exists():
            raise FileNotFoundError(f"{p} is missing: validation has not run for {self.run_date}")
        return str(self.read_json("run")["run_id"])

    def compute_run_id(self) -> str:
        """A fingerprint of the run: run date, configuration and the validated inputs.

        Identical inputs give the same id, so a re-run of a date publishes identical rows. It is
        stable once validation has written the clean input files.
        """
        h = hashlib.sha256()
        h.update(self.run_date.isoformat().encode())
        h.update(
            self.cfg.model_dump_json(
                exclude={
                    "email",
                    "staging_dir",
                    "output_dir",
                    "reporting",
                    "source",
                    "orders",
                    "workbench",
                    "run_lock_timeout_s",
                    "shards",  # how the work is split never changes the results
                }
            ).encode()
        )
        for name in sorted(contract.INPUT_TABLES):
            p = self.run_dir / f"{name}.parquet"
            if p.exists():
                h.update(name.encode())
                h.update(pd.util.hash_pandas_object(pd.read_parquet(p), index=False).values.tobytes())
        return f"{self.run_date:%Y%m%d}-{h.hexdigest()[:12]}"


def policies_frame(cfg: Config) -> pd.DataFrame:
    """The configured policy rows as the canonical ``policies`` table."""
    return contract.conform(pd.DataFrame([p.model_dump() for p in cfg.policies]), "policies")


def promote_attempt(ctx: RunContext) -> Path:
    """Make the ended attempt's staging folder the date's folder (:attr:`RunContext.date_dir`).

    Two renames: the previous folder aside, the attempt's in its place, then the previous one is
    removed. Only the holder of the date's run lock calls this; staging is never the publication
    (that is the reporting database), so a kill between the renames loses nothing published."""
    final, src = ctx.date_dir, ctx.run_dir
    if ctx.attempt is None or not src.exists():
        return final
    old = final.with_name(f"{final.name}.old-{ctx.attempt}")
    if final.exists():
        os.replace(final, old)
    os.replace(src, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def remove_leftovers(cfg: Config, run_date: date) -> list[Path]:
    """Remove the folders dead attempts of ``run_date`` left (``.attempt-*``, ``.old-*``); the caller
    holds the date's run lock, so none of them belongs to a live run. Returns what was removed."""
    base = Path(cfg.staging_dir)
    gone = sorted(
        p
        for pattern in (f"{run_date.isoformat()}.attempt-*", f"{run_date.isoformat()}.old-*")
        for p in base.glob(pattern)
        if p.is_dir()
    )
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return gone
