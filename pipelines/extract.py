"""Extract: run a source profile's staging queries and stage the canonical tables as parquet.

A *source profile* is a folder ``sql/sources/<profile>/`` with one staging query per canonical
table (rename and cast only) and a ``manifest.yaml`` naming each query, its parameters and the
source tables and columns it reads. Extraction streams each query in chunks straight to parquet
(``extract_<table>.parquet`` in the run's staging folder), casting each column to its contract
type. Values that cannot be cast (text where a number is expected, an unreadable date) are not
dropped: the cell is set to null and the whole original row is kept in
``castfail_<table>.parquet`` with the column and value, for validation to quarantine.

Current method (walking skeleton): the sales window is the last ``forecast.history_days`` days
before the run date, re-read in full every night; the stock snapshot is the one dated run date;
master data is re-read every night; ``policies`` come from the configuration. Reconciliation
compares row count and quantity sum of the staged sales with the source's own aggregate
(``reconcile_sales.sql``) and fails the run on a mismatch.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
import yaml

from pipelines import contract
from pipelines.connections import describe, with_retries
from pipelines.context import RunContext, StageResult, policies_frame

log = logging.getLogger(__name__)

SQL_DIR = Path(os.environ.get("TIAOBO_SQL_DIR", Path(__file__).resolve().parents[1] / "sql"))
SOURCE_TABLES = ("items", "locations", "lanes", "sales", "stock", "lead_times")


class ExtractError(RuntimeError):
    """Extraction failed; the message names the profile, the query and the table or column."""


def load_profile(profile: str) -> dict[str, Any]:
    folder = SQL_DIR / "sources" / profile
    manifest = folder / "manifest.yaml"
    if not manifest.exists():
        known = sorted(p.name for p in (SQL_DIR / "sources").iterdir() if (p / "manifest.yaml").exists())
        raise ExtractError(f"source profile {profile!r} not found ({manifest} missing); known profiles: {known}")
    spec = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    missing = [t for t in SOURCE_TABLES if t not in spec.get("tables", {})]
    if missing:
        raise ExtractError(f"source profile {profile!r}: manifest has no query for table(s) {', '.join(missing)}")
    spec["folder"] = folder
    return spec


def arrow_schema(table: contract.Table) -> pa.Schema:
    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "date": pa.timestamp("ns")}
    return pa.schema([pa.field(c.name, types[c.type], nullable=True) for c in table.columns])


def cast_lenient(df: pd.DataFrame, table: contract.Table, offset: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cast each column to its contract type; uncastable cells become null.

    Infinite numbers count as uncastable. Returns the typed frame and a frame of cast failures (row_number, column_name, value,
    row_json) so that no bad row is lost. Nulls in required columns are left for validation.
    """
    out: dict[str, pd.Series] = {}
    fails: list[pd.DataFrame] = []
    for col in table.columns:
        s = df[col.name]
        if col.type in ("int", "float"):
            typed = pd.to_numeric(s, errors="coerce").astype("float64")
            typed = typed.mask(np.isinf(typed))  # inf is not a quantity, a price or a day count
            if col.type == "int":
                frac = typed.notna() & (typed != typed.round())
                typed = typed.mask(frac)
            bad = typed.isna() & s.notna()
            typed = typed.astype("Int64") if col.type == "int" else typed
        elif col.type == "date":
            typed = pd.to_datetime(s, errors="coerce", format="mixed").astype("datetime64[ns]").dt.normalize()
            bad = typed.isna() & s.notna()
        elif col.type == "bool":
            mapped = s.map(_bool_or_none) if not pd.api.types.is_bool_dtype(s) else s
            typed = mapped.astype("boolean")
            bad = typed.isna() & s.notna()
        else:
            typed = s.astype("str").where(s.notna(), None).astype("str")
            bad = pd.Series(False, index=s.index)
        if bad.any():
            rows = df[bad]
            fails.append(
                pd.DataFrame(
                    {
                        "row_number": rows.index.to_numpy() + offset,
                        "column_name": col.name,
                        "value": rows[col.name].astype("str").to_numpy(),
                        "row_json": rows.astype("str").to_dict(orient="records"),
                    }
                )
            )
        out[col.name] = typed
    failures = pd.concat(fails, ignore_index=True) if fails else _empty_failures()
    if len(failures):
        failures["row_json"] = failures["row_json"].map(lambda r: json.dumps(r, ensure_ascii=False, sort_keys=True))
    return pd.DataFrame(out, index=df.index), failures


def _empty_failures() -> pd.DataFrame:
    return pd.DataFrame(
        {"row_number": pd.Series(dtype="int64"), "column_name": pd.Series(dtype="str"),
         "value": pd.Series(dtype="str"), "row_json": pd.Series(dtype="str")}
    )


def _bool_or_none(v: object) -> object:
    try:
        return contract._to_bool(v)
    except ValueError:
        return None


def _query_params(name: str, ctx: RunContext) -> dict[str, Any]:
    end = ctx.last_sales_date
    start = end - timedelta(days=ctx.cfg.forecast.history_days - 1)
    return {"start_date": start, "end_date": end, "snapshot_date": ctx.run_date}


def _explain_failure(exc: Exception, spec: dict[str, Any], name: str, conn: sa.Connection) -> str:
    """Name the missing source table or column, using the manifest's list of what the query reads."""
    entry = spec["tables"][name]
    reads: dict[str, list[str]] = entry.get("reads", {}) or {}
    head = f"source profile {spec['profile']!r}, query {entry['query']} (table {name})"
    try:
        insp = sa.inspect(conn)
        have = {t.lower() for t in insp.get_table_names()}
        for tbl, cols in reads.items():
            if tbl.lower() not in have:
                return f"{head}: source table {tbl!r} does not exist"
            present = {c["name"].lower() for c in insp.get_columns(tbl)}
            for c in cols:
                if c.lower() not in present:
                    return f"{head}: source table {tbl!r} has no column {c!r}"
    except Exception:  # the inspection is a courtesy; fall back to the driver's message
        pass
    detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]
    return f"{head} failed: {detail}"


def extract_table(conn: sa.Connection, spec: dict[str, Any], name: str, ctx: RunContext) -> dict[str, Any]:
    """Stream one profile query into ``extract_<name>.parquet``; returns rows, quantity sum, cast failures."""
    table = contract.TABLES[name]
    entry = spec["tables"][name]
    sql = (spec["folder"] / entry["query"]).read_text(encoding="utf-8")
    params = {k: v for k, v in _query_params(name, ctx).items() if k in (entry.get("params") or [])}
    target = ctx.run_dir / f"extract_{name}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    schema = arrow_schema(table)
    rows = 0
    qty = 0.0
    failures: list[pd.DataFrame] = []
    try:
        result = conn.execution_options(stream_results=True, yield_per=ctx.cfg.source.chunk_rows).execute(
            sa.text(sql), params
        )
        columns = list(result.keys())
        drift = contract.check_columns(columns, table)
        if drift["missing"]:
            raise ExtractError(
                f"source profile {spec['profile']!r}, query {entry['query']} (table {name}): the query returns no"
                f" column(s) {', '.join(drift['missing'])}; it must return {', '.join(table.names)}"
            )
        with pq.ParquetWriter(tmp, schema) as writer:
            for chunk in result.partitions(ctx.cfg.source.chunk_rows):
                df = pd.DataFrame(chunk, columns=columns)
                df.index = pd.RangeIndex(rows, rows + len(df))
                typed, fails = cast_lenient(df, table)
                if len(fails):
                    failures.append(fails)
                writer.write_table(pa.Table.from_pandas(typed[table.names], schema=schema, preserve_index=False))
                rows += len(df)
                if "quantity" in typed:
                    qty += float(typed["quantity"].sum())
    except sa.exc.DBAPIError as exc:
        tmp.unlink(missing_ok=True)
        raise ExtractError(_explain_failure(exc, spec, name, conn)) from None
    os.replace(tmp, target)
    fail_df = pd.concat(failures, ignore_index=True) if failures else _empty_failures()
    fail_df.to_parquet(ctx.run_dir / f"castfail_{name}.parquet", index=False)
    return {"rows": rows, "quantity_sum": qty, "cast_failures": len(fail_df), "path": str(target)}


def reconcile(conn: sa.Connection, spec: dict[str, Any], name: str, staged: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Compare the staged row count and quantity sum with the source's own aggregate."""
    rec_file = spec["folder"] / f"reconcile_{name}.sql"
    if not rec_file.exists():
        return {"table": name, "checked": False}
    params = _query_params(name, ctx)
    row = conn.execute(sa.text(rec_file.read_text(encoding="utf-8")), params).mappings().one()
    src_rows, src_qty = int(row["row_count"] or 0), float(row["quantity_sum"] or 0.0)
    ok = src_rows == staged["rows"] and abs(src_qty - staged["quantity_sum"]) <= 1e-6 * max(1.0, abs(src_qty))
    return {
        "table": name,
        "checked": True,
        "source_rows": src_rows,
        "staged_rows": staged["rows"],
        "source_quantity": src_qty,
        "staged_quantity": staged["quantity_sum"],
        "ok": ok,
    }


def extract_stage(ctx: RunContext, progress: Any = None) -> StageResult:
    """Extract every canonical table of the configured source profile for the run date."""
    cfg = ctx.cfg
    spec = load_profile(cfg.source.profile)
    url = cfg.source_url()
    engine = sa.create_engine(url, pool_pre_ping=True)
    result = StageResult(stage="extract")
    reconciliation = []
    try:
        conn = with_retries(
            f"source {cfg.source.profile!r}",
            url,
            engine.connect,
            retries=cfg.source.retries,
            backoff_seconds=cfg.source.retry_backoff_seconds,
        )
        with conn:
            for name in SOURCE_TABLES:
                if progress:
                    progress(f"extract {name}")
                info = extract_table(conn, spec, name, ctx)
                result.paths[name] = info["path"]
                result.counts[name] = info["rows"]
                if info["cast_failures"]:
                    result.notes.append(f"{name}: {info['cast_failures']} value(s) could not be read as their type")
                reconciliation.append(reconcile(conn, spec, name, info, ctx))
    finally:
        engine.dispose()
    pol = policies_frame(cfg)
    pol.to_parquet(ctx.run_dir / "extract_policies.parquet", index=False)
    pd.DataFrame(columns=["row_number", "column_name", "value", "row_json"]).astype("str").astype(
        {"row_number": "int64"}
    ).to_parquet(ctx.run_dir / "castfail_policies.parquet", index=False)
    result.paths["policies"] = str(ctx.run_dir / "extract_policies.parquet")
    result.counts["policies"] = len(pol)
    ctx.write_json("reconciliation", reconciliation)
    bad = [r for r in reconciliation if r.get("checked") and not r["ok"]]
    if bad:
        r = bad[0]
        raise ExtractError(
            f"reconciliation failed for {r['table']} from {describe(url)}: source has {r['source_rows']} rows /"
            f" quantity {r['source_quantity']:.2f}, staged {r['staged_rows']} rows / quantity {r['staged_quantity']:.2f}"
        )
    return result
