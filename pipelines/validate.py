"""Validate: Great Expectations suites per canonical table; bad rows quarantined, bad tables stop the run.

Suites are built in code at task run time (never at DAG parse time) and run on the extracted
frames with an ephemeral Great Expectations context. Two levels of failure:

- **row level** (a negative quantity, an unknown SKU, a duplicate key, a null key, a value that
  could not be read as its type): the rows are set aside in ``quarantine`` with the rule, the
  column and the value, the whole row kept as JSON; the run continues with the good rows.
- **table level** (an empty table, a stock snapshot missing for an active location, sales that do
  not reach the day before the run date, more than ``validation.max_bad_row_share`` bad rows):
  :class:`ValidationStop` is raised before any stage computes, naming the table, the rule and
  examples of failing rows; nothing is published.

Every rule's outcome goes to ``dq_results``. The clean tables are written to staging in the
contract's types and order, and the run id (a fingerprint of the clean inputs) is fixed here.

Not yet (issue 4): volume bands against the trailing median, schema-drift reporting of new
columns, Data Docs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipelines import contract
from pipelines.context import RunContext, StageResult

log = logging.getLogger(__name__)

ORDER = ("items", "locations", "policies", "lanes", "lead_times", "stock", "sales")
MUST_NOT_BE_EMPTY = ("items", "locations", "sales", "stock")


class ValidationStop(RuntimeError):
    """A table-level rule failed: the run stops and nothing is published."""

    def __init__(self, table: str, rule: str, message: str, examples: pd.DataFrame | None = None):
        self.table, self.rule, self.examples = table, rule, examples
        text = f"validation stopped the run: table {table}, rule {rule}: {message}"
        if examples is not None and len(examples):
            text += "\nexamples:\n" + examples.head(5).to_string(index=False)
        super().__init__(text)


@dataclass(frozen=True)
class RowRule:
    """A row-level rule: a Great Expectations expectation plus the names we report it under."""

    rule: str
    column: str
    expectation: str
    kwargs: dict[str, Any]


def row_rules(name: str, refs: dict[str, list[str]], run_date: pd.Timestamp) -> list[RowRule]:
    """The row-level rules of a table. ``refs``: valid SKUs and locations for reference checks."""
    t = contract.TABLES[name]
    rules: list[RowRule] = [
        RowRule("not_null", c.name, "ExpectColumnValuesToNotBeNull", {"column": c.name})
        for c in t.columns
        if not c.nullable
    ]

    def between(col: str, lo: float | None, hi: float | None, rule: str) -> None:
        rules.append(RowRule(rule, col, "ExpectColumnValuesToBeBetween", {"column": col, "min_value": lo, "max_value": hi}))

    def in_set(col: str, values: list[str], rule: str) -> None:
        rules.append(RowRule(rule, col, "ExpectColumnValuesToBeInSet", {"column": col, "value_set": values}))

    if name == "items":
        for col in ("unit_cost", "unit_price"):
            between(col, 0, None, "non_negative")
        between("pack_size", 1, None, "at_least_one")
        between("shelf_life_days", 1, 3650, "within_bounds")
        in_set("abc_override", ["A", "B", "C"], "abc_class")
    elif name == "lanes":
        in_set("from_location", refs["locations"], "known_location")
        in_set("to_location", refs["locations"], "known_location")
        for col in ("cost_per_unit", "fixed_cost_per_shipment", "min_units", "capacity"):
            between(col, 0, None, "non_negative")
        between("transit_days", 0, 90, "within_bounds")
    elif name == "sales":
        in_set("sku", refs["items"], "known_sku")
        in_set("location", refs["locations"], "known_location")
        for col in ("quantity", "returns"):
            between(col, 0, None, "non_negative")
        between("date", None, (run_date - pd.Timedelta(days=1)).to_pydatetime(), "not_in_future")
    elif name == "stock":
        in_set("sku", refs["items"], "known_sku")
        in_set("location", refs["locations"], "known_location")
        for col in ("on_hand", "in_transit", "reserved"):
            between(col, 0, None, "non_negative")
    elif name == "lead_times":
        in_set("sku", refs["items"], "known_sku")
        in_set("location", refs["locations"], "known_location")
        between("lead_time_days", 0, 365, "within_bounds")
        between("lead_time_std_days", 0, 365, "within_bounds")
        between("review_period_days", 0, 365, "within_bounds")
    return rules


class _Validator:
    """One ephemeral Great Expectations context for the whole run (built at run time)."""

    def __init__(self) -> None:
        import great_expectations as gx  # noqa: PLC0415 - heavy, only at task run time
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.source = self.context.data_sources.add_pandas("tiaobo")
        self._n = 0

    def failing_rows(self, name: str, df: pd.DataFrame, rules: list[RowRule]) -> list[tuple[RowRule, np.ndarray, int]]:
        """Run the table's suite; for each rule: the positions of failing rows and the count."""
        gx = self.gx
        self._n += 1
        key = f"{name}_{self._n}"
        asset = self.source.add_dataframe_asset(key)
        batch_def = asset.add_batch_definition_whole_dataframe(f"{key}_batch")
        suite = gx.ExpectationSuite(name=f"{key}_suite")
        for i, r in enumerate(rules):
            exp = getattr(gx.expectations, r.expectation)(**r.kwargs, meta={"i": i})
            suite.add_expectation(exp)
        suite = self.context.suites.add(suite)
        vd = self.context.validation_definitions.add(gx.ValidationDefinition(name=f"{key}_v", data=batch_def, suite=suite))
        frame = df.reset_index(drop=True)
        res = vd.run(batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE"})
        out = []
        for outcome in res.results:
            rule = rules[int(outcome.expectation_config.meta["i"])]
            if outcome.exception_info and outcome.exception_info.get("raised_exception"):
                raise RuntimeError(
                    f"Great Expectations failed on {name}.{rule.column} ({rule.rule}): {outcome.exception_info}"
                )
            idx = np.asarray(outcome.result.get("unexpected_index_list") or [], dtype="int64")
            out.append((rule, idx, int(outcome.result.get("unexpected_count") or 0)))
        return out


def _quarantine_rows(df: pd.DataFrame, positions: np.ndarray, name: str, rule: str, column: str) -> pd.DataFrame:
    rows = df.iloc[positions]
    values = rows[column].astype("str").where(rows[column].notna(), None) if column in rows else None
    return pd.DataFrame(
        {
            "table_name": name,
            "row_number": rows.index.to_numpy(),
            "rule": rule,
            "column_name": column,
            "value": values.to_numpy() if values is not None else None,
            "row_json": [json.dumps(r, ensure_ascii=False, sort_keys=True, default=str) for r in rows.to_dict(orient="records")],
        }
    )


def validate_table(
    name: str, df: pd.DataFrame, castfail: pd.DataFrame, refs: dict[str, list[str]], run_date: pd.Timestamp,
    validator: _Validator,
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """Validate one extracted table. Returns (clean rows, quarantined rows, dq results)."""
    t = contract.TABLES[name]
    quarantined: list[pd.DataFrame] = []
    results: list[dict[str, Any]] = []
    bad = np.zeros(len(df), dtype=bool)

    # values that could not be read as their type (found during extraction)
    if len(castfail):
        q = castfail.assign(table_name=name, rule="type")[["table_name", "row_number", "rule", "column_name", "value", "row_json"]]
        quarantined.append(q)
        bad[df.index.get_indexer(q["row_number"])] = True
    for col, n in (castfail.groupby("column_name").size().items() if len(castfail) else []):
        results.append(_result(name, "type", str(col), "row", n, f"{n} value(s) not readable as {t.column(str(col)).type}"))

    # exact duplicate rows (a file dropped twice): the first copy is kept, the others set aside
    exact = df.duplicated(keep="first").to_numpy()
    if exact.any():
        quarantined.append(_quarantine_rows(df, np.flatnonzero(exact), name, "duplicate_row", ""))
    results.append(_result(name, "duplicate_row", "", "row", int(exact.sum()), f"{int(exact.sum())} exact duplicate row(s)"))
    bad |= exact

    # key conflicts among the remaining rows: every copy is set aside (we cannot know which is right)
    rest = df[~exact]
    conflict = rest.duplicated(list(t.key), keep=False)
    pos = df.index.get_indexer(rest.index[conflict.to_numpy()])
    if len(pos):
        quarantined.append(_quarantine_rows(df, pos, name, "duplicate_key", ",".join(t.key)))
    results.append(_result(name, "duplicate_key", ",".join(t.key), "row", len(pos), f"{len(pos)} row(s) share a key"))
    bad[pos] = True

    for rule, positions, count in validator.failing_rows(name, df, row_rules(name, refs, run_date)):
        if rule.rule == "not_null" and len(castfail):
            # a cell nulled because it could not be read is already quarantined under "type"
            unreadable = df.index.get_indexer(castfail.loc[castfail["column_name"] == rule.column, "row_number"])
            positions = np.setdiff1d(positions, unreadable)
            count = len(positions)
        if len(positions):
            quarantined.append(_quarantine_rows(df, positions, name, rule.rule, rule.column))
            bad[positions] = True
        results.append(_result(name, rule.rule, rule.column, "row", count, f"{count} row(s) fail {rule.expectation}"))

    q = pd.concat(quarantined, ignore_index=True) if quarantined else contract.empty("quarantine").drop(columns=["run_date", "run_id"])
    clean = df[~bad]
    return clean, q, results


def _result(table: str, rule: str, column: str, level: str, failing: int, observed: str) -> dict[str, Any]:
    return {
        "table_name": table, "rule": rule, "column_name": column, "level": level,
        "passed": failing == 0, "observed": observed, "failing_rows": int(failing),
    }


def table_checks(clean: dict[str, pd.DataFrame], raw_counts: dict[str, int], bad_counts: dict[str, int],
                 run_date: pd.Timestamp, max_bad_share: float) -> list[tuple[dict[str, Any], pd.DataFrame | None]]:
    """Table-level rules. Returns dq results, each with failing example rows (None when passed)."""
    out: list[tuple[dict[str, Any], pd.DataFrame | None]] = []
    for name in MUST_NOT_BE_EMPTY:
        n = raw_counts.get(name, 0)
        out.append((_result(name, "not_empty", "", "table", 0 if n else 1, f"{n} row(s) extracted"), None))
    for name, n in raw_counts.items():
        share = bad_counts.get(name, 0) / n if n else 0.0
        failing = int(share > max_bad_share)
        out.append((_result(name, "bad_row_share", "", "table", failing,
                            f"{share:.2%} of rows set aside (limit {max_bad_share:.0%})"), None))
    locs, stock = clean["locations"], clean["stock"]
    active = locs.loc[locs["active"], "location"]
    have = set(stock.loc[stock["snapshot_date"] == run_date, "location"])
    missing = sorted(set(active) - have)
    out.append((
        _result("stock", "snapshot_for_every_active_location", "location", "table", len(missing),
                f"no snapshot dated {run_date:%Y-%m-%d} for: {', '.join(missing) or 'none'}"),
        locs[locs["location"].isin(missing)] if missing else None,
    ))
    sales = clean["sales"]
    last = sales["date"].max() if len(sales) else None
    want = run_date - pd.Timedelta(days=1)
    stale = last is None or pd.isna(last) or last < want
    out.append((
        _result("sales", "fresh", "date", "table", int(stale),
                f"latest sale {last:%Y-%m-%d} (expected {want:%Y-%m-%d})" if last is not None and not pd.isna(last)
                else "no sales"),
        sales.sort_values("date").tail(5) if stale and len(sales) else None,
    ))
    return out


def validate_stage(ctx: RunContext, progress: Any = None) -> StageResult:
    """Validate every extracted table; write clean tables, quarantine and dq results; fix the run id."""
    run_date = pd.Timestamp(ctx.run_date)
    validator = _Validator()
    clean: dict[str, pd.DataFrame] = {}
    quarantine: list[pd.DataFrame] = []
    dq: list[dict[str, Any]] = []
    raw_counts: dict[str, int] = {}
    bad_counts: dict[str, int] = {}
    refs: dict[str, list[str]] = {}
    for name in ORDER:
        if progress:
            progress(f"validate {name}")
        df = pd.read_parquet(ctx.run_dir / f"extract_{name}.parquet")
        castfail = pd.read_parquet(ctx.run_dir / f"castfail_{name}.parquet")
        raw_counts[name] = len(df)
        good, q, results = validate_table(name, df, castfail, refs, run_date, validator)
        clean[name] = good
        quarantine.append(q)
        dq.extend(results)
        bad_counts[name] = len(df) - len(good)
        if name == "items":
            refs["items"] = sorted(good["sku"].dropna().unique().tolist())
        if name == "locations":
            refs["locations"] = sorted(good["location"].dropna().unique().tolist())
    checks = table_checks(clean, raw_counts, bad_counts, run_date, ctx.cfg.validation.max_bad_row_share)
    dq.extend(r for r, _ in checks)
    q_all = pd.concat(quarantine, ignore_index=True)
    _write_outputs(ctx, dq, q_all, run_id="pending")
    failed = [(r, ex) for r, ex in checks if not r["passed"]]
    if failed:
        r, ex = failed[0]
        if ex is None and r["rule"] == "bad_row_share":
            ex = q_all[q_all["table_name"] == r["table_name"]][["row_number", "rule", "column_name", "value"]]
        raise ValidationStop(r["table_name"], r["rule"], r["observed"], ex)
    for name, df in clean.items():
        ctx.write(name, df)
    run_id = ctx.compute_run_id()
    ctx.write_json("run", {"run_id": run_id, "run_date": ctx.run_date.isoformat()})
    _write_outputs(ctx, dq, q_all, run_id=run_id)
    res = StageResult(stage="validate", counts={f"{k}": len(v) for k, v in clean.items()})
    res.counts["quarantined"] = len(q_all["row_number"].groupby([q_all["table_name"], q_all["row_number"]]).size()) if len(q_all) else 0
    res.counts["rules_failed"] = sum(1 for r in dq if not r["passed"])
    res.paths = {name: str(ctx.path(name)) for name in clean}
    res.paths.update(dq_results=str(ctx.path("dq_results")), quarantine=str(ctx.path("quarantine")))
    if res.counts["quarantined"]:
        res.notes.append(f"{res.counts['quarantined']} row(s) set aside by validation")
    return res


def _write_outputs(ctx: RunContext, dq: list[dict[str, Any]], quarantine: pd.DataFrame, run_id: str) -> None:
    stamp = {"run_date": pd.Timestamp(ctx.run_date), "run_id": run_id}
    ctx.write("dq_results", pd.DataFrame(dq).assign(**stamp))
    ctx.write("quarantine", quarantine.assign(**stamp))
