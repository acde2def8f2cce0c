"""Validate: Great Expectations suites per canonical table; bad rows quarantined, bad tables stop the run.

Suites are built in code at task run time (never at DAG parse time) and run on the extracted
frames with an ephemeral Great Expectations context. Two levels of failure:

- **row level** (a negative quantity, an unknown SKU, a duplicate key, a null key, a value that
  could not be read as its type, a lead time or transit time out of bounds): the rows are set
  aside in ``quarantine`` with the rule, the column and the value, the whole row kept as JSON;
  the run continues with the good rows.
- **table level** (schema drift: a required column missing or of the wrong type; an empty table;
  a volume break against the trailing median of published runs; a stock snapshot missing for an
  active location; sales that do not reach the day before the run date; a company-wide day with
  no sale inside the window; more than ``validation.max_bad_row_share`` bad rows):
  :class:`ValidationStop` is raised before any stage computes, naming the table, the rule and
  examples of failing rows; nothing is published.
- **warn** (new, unexpected columns in the source query's column list, ``columns_<table>.json``):
  reported in the results, the run goes on.

Each row rule is defined once (:class:`RowRule`: a Great Expectations expectation and its
arguments). Great Expectations evaluates the suite on the whole frame (``SUMMARY`` result format:
exact counts) for the record and the Data Docs; the failing row positions come from the same rule
evaluated as a vectorised pandas mask (:func:`rule_mask`), and the two counts must agree. This
keeps 10 million sales rows under a minute (see docs/validation.md for the measurements).

Every rule's outcome goes to ``dq_results`` (published with the run) and to ``dq_history`` in the
reporting database (its own short transaction, stopped runs included). Data Docs (HTML) are built
into ``<output_dir>/<date>/data_docs/`` (a stopped run: ``<staging>/<date>/data_docs/``, so that
the published outputs of the date stay untouched). The clean tables are written to staging in
the contract's types and order, and the run id (a fingerprint of the clean inputs) is fixed here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines import content, contract
from pipelines.config import ValidationConfig
from pipelines.context import RunContext, StageResult

log = logging.getLogger(__name__)

ORDER = (
    "items",
    "locations",
    "policies",
    "lanes",
    "lead_times",
    "stock",
    "sales",
    "transfer_status",
    "sourcing",
    "purchase_orders",
)
MUST_NOT_BE_EMPTY = ("items", "locations", "sales", "stock")
VOLUME_TABLES = ("items", "locations", "lanes", "lead_times", "stock", "sales")
DOCS_SITE = "tiaobo"


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
    """A row-level rule: a Great Expectations expectation plus the names we report it under.

    The rule is defined once, here; :func:`rule_mask` evaluates the same expectation and arguments
    as a vectorised pandas mask (for the failing row positions), Great Expectations evaluates it
    for the record and the Data Docs, and the two counts are checked to agree.
    """

    rule: str
    column: str
    expectation: str
    kwargs: dict[str, Any]


class _Rules:
    """The row rules of one table, in the order they are added."""

    def __init__(self, rules: list[RowRule]) -> None:
        self.rules = rules

    def between(self, col: str, lo: float | None, hi: Any, rule: str) -> None:
        self.rules.append(
            RowRule(rule, col, "ExpectColumnValuesToBeBetween", {"column": col, "min_value": lo, "max_value": hi})
        )

    def in_set(self, col: str, values: list[str], rule: str) -> None:
        self.rules.append(RowRule(rule, col, "ExpectColumnValuesToBeInSet", {"column": col, "value_set": values}))


def _item_rules(r: _Rules, refs: dict[str, list[str]], run_date: pd.Timestamp, v: ValidationConfig) -> None:
    for col in ("unit_cost", "unit_price"):
        r.between(col, 0, None, "non_negative")
        r.between(col, None, v.max_unit_price, "within_bounds")
    r.between("pack_size", 1, None, "at_least_one")
    r.between("shelf_life_days", 1, v.max_shelf_life_days, "within_bounds")
    r.in_set("abc_override", ["A", "B", "C"], "abc_class")


def _lane_rules(r: _Rules, refs: dict[str, list[str]], run_date: pd.Timestamp, v: ValidationConfig) -> None:
    r.in_set("from_location", refs["locations"], "known_location")
    r.in_set("to_location", refs["locations"], "known_location")
    for col in ("cost_per_unit", "fixed_cost_per_shipment", "min_units", "capacity"):
        r.between(col, 0, None, "non_negative")
    r.between("transit_days", 0, v.max_transit_days, "within_bounds")


def _sales_rules(r: _Rules, refs: dict[str, list[str]], run_date: pd.Timestamp, v: ValidationConfig) -> None:
    r.in_set("sku", refs["items"], "known_sku")
    r.in_set("location", refs["locations"], "known_location")
    for col in ("quantity", "returns"):
        r.between(col, 0, None, "non_negative")
        r.between(col, None, v.max_quantity, "within_bounds")
    r.between("date", None, (run_date - pd.Timedelta(days=1)).to_pydatetime(), "not_in_future")


def _stock_rules(r: _Rules, refs: dict[str, list[str]], run_date: pd.Timestamp, v: ValidationConfig) -> None:
    r.in_set("sku", refs["items"], "known_sku")
    r.in_set("location", refs["locations"], "known_location")
    for col in ("on_hand", "in_transit", "reserved"):
        r.between(col, 0, None, "non_negative")
        r.between(col, None, v.max_quantity, "within_bounds")


def _transfer_status_rules(r: _Rules, refs: dict[str, list[str]], run_date: pd.Timestamp, v: ValidationConfig) -> None:
    r.in_set("sku", refs["items"], "known_sku")
    r.in_set("status", ["approved", "shipped", "received", "cancelled"], "known_status")
    for col in ("shipped_qty", "received_qty"):
        r.between(col, 0, None, "non_negative")


def _lead_time_rules(r: _Rules, refs: dict[str, list[str]], run_date: pd.Timestamp, v: ValidationConfig) -> None:
    r.in_set("sku", refs["items"], "known_sku")
    r.in_set("location", refs["locations"], "known_location")
    for col in ("lead_time_days", "lead_time_std_days", "review_period_days"):
        r.between(col, 0, v.max_lead_time_days, "within_bounds")


def _sourcing_rules(r: _Rules, refs: dict[str, list[str]], run_date: pd.Timestamp, v: ValidationConfig) -> None:
    r.in_set("sku", refs["items"], "known_sku")
    r.in_set("location", [*refs["locations"], "*"], "known_location")
    for col in ("lead_time_days", "lead_time_std_days"):
        r.between(col, 0, v.max_lead_time_days, "within_bounds")
    for col in ("moq", "unit_cost", "fixed_order_cost"):
        r.between(col, 0, None, "non_negative")
    r.between("order_multiple", 1, None, "at_least_one")


def _purchase_order_rules(r: _Rules, refs: dict[str, list[str]], run_date: pd.Timestamp, v: ValidationConfig) -> None:
    r.in_set("sku", refs["items"], "known_sku")
    r.in_set("location", refs["locations"], "known_location")
    r.between("open_qty", 0, None, "non_negative")
    r.between("open_qty", None, v.max_quantity, "within_bounds")
    r.between("order_date", None, run_date.to_pydatetime(), "not_in_future")


_TABLE_ROW_RULES = {
    "items": _item_rules,
    "lanes": _lane_rules,
    "sales": _sales_rules,
    "stock": _stock_rules,
    "transfer_status": _transfer_status_rules,
    "sourcing": _sourcing_rules,
    "purchase_orders": _purchase_order_rules,
    "lead_times": _lead_time_rules,
}


#: characters refused in any text column (C0 controls except tab, newline and carriage return; DEL)
CONTROL_CHARACTERS = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]"


def row_rules(
    name: str, refs: dict[str, list[str]], run_date: pd.Timestamp, vcfg: ValidationConfig | None = None
) -> list[RowRule]:
    """The row-level rules of a table. ``refs``: valid SKUs and locations for reference checks.

    Sales: returns are their own column in the contract, so ``quantity >= 0`` holds for every
    row (a negative quantity is a bad row, never a return) and ``returns >= 0`` as well.
    """
    v = vcfg or ValidationConfig()
    t = contract.TABLES[name]
    rules: list[RowRule] = [
        RowRule("not_null", c.name, "ExpectColumnValuesToNotBeNull", {"column": c.name})
        for c in t.columns
        if not c.nullable
    ]
    # a NUL or another control character in a text (an ERP's garbage) would pass here and then fail
    # the PostgreSQL load night after night: the row is set aside instead
    rules += [
        RowRule(
            "no_control_characters",
            c.name,
            "ExpectColumnValuesToNotMatchRegex",
            {"column": c.name, "regex": CONTROL_CHARACTERS},
        )
        for c in t.columns
        if c.type == "str"
    ]
    table_rules = _TABLE_ROW_RULES.get(name)
    if table_rules is not None:
        table_rules(_Rules(rules), refs, run_date, v)
    return rules


def rule_mask(rule: RowRule, df: pd.DataFrame) -> np.ndarray:
    """The rows failing ``rule``, as a boolean array: the expectation's semantics in pandas.

    As in Great Expectations, nulls fail only ``not_null``; range and set rules ignore them.
    """
    s = df[rule.column]
    if rule.expectation == "ExpectColumnValuesToNotBeNull":
        return s.isna().to_numpy(dtype=bool)
    present = s.notna().to_numpy(dtype=bool)
    if rule.expectation == "ExpectColumnValuesToBeBetween":
        bad = np.zeros(len(s), dtype=bool)
        lo, hi = rule.kwargs.get("min_value"), rule.kwargs.get("max_value")
        if pd.api.types.is_datetime64_any_dtype(s):
            lo = pd.Timestamp(lo) if lo is not None else None
            hi = pd.Timestamp(hi) if hi is not None else None
        if lo is not None:
            bad |= (s < lo).fillna(False).to_numpy(dtype=bool)
        if hi is not None:
            bad |= (s > hi).fillna(False).to_numpy(dtype=bool)
        return bad & present
    if rule.expectation == "ExpectColumnValuesToBeInSet":
        return present & ~s.isin(rule.kwargs["value_set"]).to_numpy(dtype=bool)
    if rule.expectation == "ExpectColumnValuesToNotMatchRegex":
        hit = s.astype("str").str.contains(rule.kwargs["regex"], regex=True).fillna(False).to_numpy(dtype=bool)
        return present & hit
    raise ValueError(f"rule {rule.rule} on {rule.column}: no pandas evaluation for {rule.expectation}")


class _Validator:
    """One ephemeral Great Expectations context for the whole run (built at run time)."""

    def __init__(self, run_name: str | None = None, run_time: datetime | None = None) -> None:
        import great_expectations as gx  # heavy, only at task run time
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.source = self.context.data_sources.add_pandas("tiaobo")
        # the run date, not the wall clock, names the validation results (deterministic Data Docs paths)
        self.run_id = RunIdentifier(run_name=run_name, run_time=run_time) if run_name else None
        self._names: set[str] = set()
        self._site = False

    def _unique(self, name: str) -> str:
        key, n = name, 1
        while key in self._names:
            n += 1
            key = f"{name}_{n}"
        self._names.add(key)
        return key

    def unexpected_counts(self, name: str, df: pd.DataFrame, rules: list[RowRule]) -> list[int]:
        """Run the table's suite with Great Expectations (exact counts, SUMMARY result format)."""
        gx = self.gx
        key = self._unique(name)
        asset = self.source.add_dataframe_asset(key)
        batch_def = asset.add_batch_definition_whole_dataframe(f"{key}_batch")
        suite = gx.ExpectationSuite(name=key)
        df, dated = _days(df)
        for i, r in enumerate(rules):
            kwargs, meta = dict(r.kwargs), {"i": i, "rule": r.rule}
            if r.column in dated:
                meta["note"] = f"{r.column} as days since 1970-01-01; bounds " + ", ".join(
                    f"{k}={pd.Timestamp(v):%Y-%m-%d}"
                    for k, v in r.kwargs.items()
                    if k.endswith("_value") and v is not None
                )
                kwargs.update({k: _day(v) for k, v in r.kwargs.items() if k.endswith("_value") and v is not None})
            suite.add_expectation(getattr(gx.expectations, r.expectation)(**kwargs, meta=meta))
        suite = self.context.suites.add(suite)
        vd = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{key}_v", data=batch_def, suite=suite)
        )
        res = vd.run(batch_parameters={"dataframe": df}, result_format={"result_format": "SUMMARY"}, run_id=self.run_id)
        counts = [0] * len(rules)
        for outcome in res.results:
            config = outcome.expectation_config
            assert config is not None and config.meta is not None
            i = int(config.meta["i"])
            if outcome.exception_info and outcome.exception_info.get("raised_exception"):
                raise RuntimeError(
                    f"Great Expectations failed on {name}.{rules[i].column} ({rules[i].rule}): {outcome.exception_info}"
                )
            counts[i] = int(outcome.result.get("unexpected_count") or 0)
        return counts

    def failing_rows(self, name: str, df: pd.DataFrame, rules: list[RowRule]) -> list[tuple[RowRule, np.ndarray, int]]:
        """For each rule: the positions of failing rows (pandas mask) and the count (agreed by both)."""
        frame = df.reset_index(drop=True)
        counts = self.unexpected_counts(name, frame, rules)
        out = []
        for rule, n in zip(rules, counts, strict=True):
            pos = np.flatnonzero(rule_mask(rule, frame))
            if len(pos) != n:
                raise RuntimeError(
                    f"validation of {name}.{rule.column} ({rule.rule}): Great Expectations counts {n} failing"
                    f" row(s), the pandas evaluation {len(pos)}; the rule's two evaluations disagree"
                )
            out.append((rule, pos, n))
        return out

    def build_docs(self, folder: Path) -> Path:
        """Build the Data Docs of everything validated so far into ``folder``; returns index.html."""
        import shutil

        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        if not self._site:
            self._site = True
            self.context.add_data_docs_site(
                site_name=DOCS_SITE,
                site_config={
                    "class_name": "SiteBuilder",
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(Path(folder).resolve()),
                    },
                },
            )
        self.context.build_data_docs(site_names=[DOCS_SITE])
        return folder / "index.html"


def _days(df: pd.DataFrame) -> tuple[pd.DataFrame, set[str]]:
    """Date columns as day numbers (float, NaN for a missing date) for Great Expectations.

    Its range expectation compares datetimes one Python object at a time (about 25 s per million
    rows here); on numbers it is vectorised. The pandas evaluation keeps the real dates.
    """
    dated = {c for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c])}
    if not dated:
        return df, dated
    out = df.copy(deep=False)
    for c in dated:
        s = df[c]
        days = s.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype("int64").astype("float64")
        days[s.isna().to_numpy()] = np.nan
        out[c] = days
    return out, dated


def _day(value: Any) -> float:
    return float((pd.Timestamp(value).normalize() - pd.Timestamp("1970-01-01")).days)


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
            "row_json": [
                json.dumps(r, ensure_ascii=False, sort_keys=True, default=str) for r in rows.to_dict(orient="records")
            ],
        }
    )


def validate_table(
    name: str,
    df: pd.DataFrame,
    castfail: pd.DataFrame,
    refs: dict[str, list[str]],
    run_date: pd.Timestamp,
    validator: _Validator,
    vcfg: ValidationConfig | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """Validate one extracted table. Returns (clean rows, quarantined rows, dq results)."""
    t = contract.TABLES[name]
    quarantined: list[pd.DataFrame] = []
    results: list[dict[str, Any]] = []
    bad = np.zeros(len(df), dtype=bool)

    # values that could not be read as their type (found during extraction)
    if len(castfail):
        q = castfail.assign(table_name=name, rule="type")[
            ["table_name", "row_number", "rule", "column_name", "value", "row_json"]
        ]
        quarantined.append(q)
        bad[df.index.get_indexer(q["row_number"])] = True
    for col, n in castfail.groupby("column_name").size().items() if len(castfail) else []:
        results.append(
            _result(name, "type", str(col), "row", n, f"{n} value(s) not readable as {t.column(str(col)).type}")
        )

    # exact duplicate rows (a file dropped twice): the first copy is kept, the others set aside
    exact = df.duplicated(keep="first").to_numpy()
    if exact.any():
        quarantined.append(_quarantine_rows(df, np.flatnonzero(exact), name, "duplicate_row", ""))
    results.append(
        _result(name, "duplicate_row", "", "row", int(exact.sum()), f"{int(exact.sum())} exact duplicate row(s)")
    )
    bad |= exact

    # key conflicts among the remaining rows: every copy is set aside (we cannot know which is right)
    rest = df[~exact]
    conflict = rest.duplicated(list(t.key), keep=False)
    pos = df.index.get_indexer(rest.index[conflict.to_numpy()])
    if len(pos):
        quarantined.append(_quarantine_rows(df, pos, name, "duplicate_key", ",".join(t.key)))
    results.append(_result(name, "duplicate_key", ",".join(t.key), "row", len(pos), f"{len(pos)} row(s) share a key"))
    bad[pos] = True

    for rule, positions, count in validator.failing_rows(name, df, row_rules(name, refs, run_date, vcfg)):
        if rule.rule == "not_null" and len(castfail):
            # a cell nulled because it could not be read is already quarantined under "type"
            unreadable = df.index.get_indexer(castfail.loc[castfail["column_name"] == rule.column, "row_number"])
            positions = np.setdiff1d(positions, unreadable)
            count = len(positions)
        if len(positions):
            quarantined.append(_quarantine_rows(df, positions, name, rule.rule, rule.column))
            bad[positions] = True
        results.append(_result(name, rule.rule, rule.column, "row", count, f"{count} row(s) fail {rule.expectation}"))

    if name == "sales":
        results.append(_spike_rows(df, bad, quarantined, vcfg or ValidationConfig()))
    q = (
        pd.concat(quarantined, ignore_index=True)
        if quarantined
        else contract.empty("quarantine").drop(columns=["run_date", "run_id"])
    )
    clean = df[~bad]
    return clean, q, results


def _spike_rows(
    df: pd.DataFrame, bad: np.ndarray, quarantined: list[pd.DataFrame], v: ValidationConfig
) -> dict[str, Any]:
    """Set aside (in place: ``bad``, ``quarantined``) sales far above their own series' typical sale."""
    ok = np.flatnonzero(~bad)
    mask, threshold = content.spike_mask(df.iloc[ok], v.spike_factor, v.spike_floor)
    pos = ok[mask]
    if len(pos):
        quarantined.append(_quarantine_rows(df, pos, "sales", "spike", "quantity"))
        bad[pos] = True
    text = f"{len(pos)} sale(s) above {v.spike_factor:g}x their series' median quantity (at least {v.spike_floor:g})"
    if len(pos):
        worst = int(np.argmax(df["quantity"].to_numpy(dtype=float)[pos]))
        text += f"; largest {df['quantity'].iloc[pos[worst]]:g} against a limit of {threshold[mask][worst]:g}"
    return _result("sales", "spike", "quantity", "row", len(pos), text)


def _result(
    table: str, rule: str, column: str, level: str, failing: int, observed: str, value: float | None = None
) -> dict[str, Any]:
    return {
        "table_name": table,
        "rule": rule,
        "column_name": column,
        "level": level,
        "passed": failing == 0,
        "observed": observed,
        "observed_value": value,
        "failing_rows": int(failing),
    }


_ARROW_KIND = (
    ("string", "str"),
    ("large_string", "str"),
    ("int", "int"),
    ("uint", "int"),
    ("double", "float"),
    ("float", "float"),
    ("bool", "bool"),
    ("timestamp", "date"),
    ("date", "date"),
)


def _kind(arrow_type: Any) -> str:
    text = str(arrow_type)
    return next((k for prefix, k in _ARROW_KIND if text.startswith(prefix)), text)


def schema_checks(
    name: str, parquet: Path, source_columns: list[str] | None
) -> list[tuple[dict[str, Any], pd.DataFrame | None]]:
    """Schema drift of one extracted table.

    Table level: a required column missing from the extract (or, when the source query's column
    list is known, from the query: a renamed column shows as missing + new), or a column of the
    wrong type. Warn level: new columns the query returns that the contract does not know (the
    extract drops them; they are reported so that the data team can map them).
    """
    import pyarrow.parquet as pq

    t = contract.TABLES[name]
    have = pq.read_schema(parquet)
    missing = [c for c in t.names if c not in have.names]
    new: list[str] = []
    if source_columns is not None:
        missing = sorted(set(missing) | {c for c in t.names if c not in source_columns}, key=t.names.index)
        new = [c for c in source_columns if c not in t.names]
    problems = [{"column": c, "problem": "missing"} for c in missing]
    if new and missing:
        problems += [{"column": c, "problem": "new (renamed?)"} for c in new]
    text = f"missing required column(s) {', '.join(missing)}" if missing else "all required columns present"
    if missing and new:
        text += f"; the source returns new column(s) {', '.join(new)} (renamed?)"
    out: list[tuple[dict[str, Any], pd.DataFrame | None]] = [
        (
            _result(name, "schema_columns", "", "table", len(missing), text, float(len(missing))),
            pd.DataFrame(problems) if missing else None,
        ),
    ]
    wrong = [
        {"column": c.name, "problem": f"type {have.field(c.name).type}, expected {c.type}"}
        for c in t.columns
        if c.name in have.names and _kind(have.field(c.name).type) != c.type
    ]
    out.append(
        (
            _result(
                name,
                "schema_types",
                "",
                "table",
                len(wrong),
                "; ".join(f"{w['column']}: {w['problem']}" for w in wrong) or "all column types as in the contract",
            ),
            pd.DataFrame(wrong) if wrong else None,
        )
    )
    if source_columns is not None:
        out.append(
            (
                _result(
                    name,
                    "schema_new_columns",
                    "",
                    "warn",
                    len(new),
                    f"new column(s) in the source, not in the contract: {', '.join(new)}" if new else "no new columns",
                    float(len(new)),
                ),
                None,
            )
        )
    return out


def volume_history(url: str, run_date: date, runs: int, rule: str = "row_count") -> pd.DataFrame:
    """Row counts (rule ``row_count``, or another rule's observed value) of the last ``runs``
    published run dates before ``run_date``.

    Columns ``table_name, run_date, rows``. The run date itself never counts, even when it was
    published before: a re-run of a date must see the same history and give identical results.
    """
    import sqlalchemy as sa

    from pipelines import reporting

    tbl = reporting.OUTPUT_SA["dq_results"]
    stmt = (
        sa.select(tbl.c.table_name, tbl.c.run_date, tbl.c.observed_value)
        .where(tbl.c.rule == rule, tbl.c.run_date < run_date, tbl.c.observed_value.is_not(None))
        .order_by(tbl.c.table_name, tbl.c.run_date.desc())
    )
    with reporting.engine_for(url).connect() as conn:
        rows = conn.execute(stmt).all()
    df = pd.DataFrame([tuple(r) for r in rows], columns=["table_name", "run_date", "rows"])
    return df.groupby("table_name", sort=True).head(runs).reset_index(drop=True)


def volume_checks(
    counts: dict[str, int], history: pd.DataFrame, band: float
) -> list[tuple[dict[str, Any], pd.DataFrame | None]]:
    """Row count of each table against the median of its published history (+-``band``)."""
    out: list[tuple[dict[str, Any], pd.DataFrame | None]] = []
    for name in VOLUME_TABLES:
        n = counts.get(name, 0)
        out.append((_result(name, "row_count", "", "info", 0, f"{n} row(s) extracted", float(n)), None))
        h = history[history["table_name"] == name]
        if h.empty:
            out.append(
                (
                    _result(
                        name, "volume", "", "table", 0, f"{n} row(s); no published history yet, the volume rule passes"
                    ),
                    None,
                )
            )
            continue
        med = float(h["rows"].median())
        lo, hi = med * (1 - band), med * (1 + band)
        ratio = n / med if med else None
        failing = int(med > 0 and not lo <= n <= hi)
        text = (
            f"{n} row(s); trailing median {med:g} over {len(h)} published run(s);"
            f" allowed {lo:.0f} to {hi:.0f} (+-{band:.0%})"
        )
        out.append(
            (
                _result(name, "volume", "", "table", failing, text, ratio),
                h.assign(run_date=pd.to_datetime(h["run_date"]).dt.strftime("%Y-%m-%d"))[["run_date", "rows"]]
                if failing
                else None,
            )
        )
    return out


def table_checks(
    clean: dict[str, pd.DataFrame],
    raw_counts: dict[str, int],
    bad_counts: dict[str, int],
    run_date: pd.Timestamp,
    max_bad_share: float,
    max_missing_days: int = 0,
) -> list[tuple[dict[str, Any], pd.DataFrame | None]]:
    """Table-level rules. Returns dq results, each with failing example rows (None when passed)."""
    out: list[tuple[dict[str, Any], pd.DataFrame | None]] = []
    for name in MUST_NOT_BE_EMPTY:
        n = raw_counts.get(name, 0)
        out.append((_result(name, "not_empty", "", "table", 0 if n else 1, f"{n} row(s) extracted", float(n)), None))
    locs, stock = clean["locations"], clean["stock"]
    active = locs.loc[locs["active"], "location"]
    have = set(stock.loc[stock["snapshot_date"] == run_date, "location"])
    missing = sorted(set(active) - have)
    out.append(
        (
            _result(
                "stock",
                "snapshot_for_every_active_location",
                "location",
                "table",
                len(missing),
                f"no snapshot dated {run_date:%Y-%m-%d} for: {', '.join(missing) or 'none'}",
                float(len(missing)),
            ),
            locs[locs["location"].isin(missing)] if missing else None,
        )
    )
    sales = clean["sales"]
    last = sales["date"].max() if len(sales) else None
    want = run_date - pd.Timedelta(days=1)
    stale = last is None or pd.isna(last) or last < want
    out.append(
        (
            _result(
                "sales",
                "fresh",
                "date",
                "table",
                int(stale),
                f"latest sale {last:%Y-%m-%d} (expected {want:%Y-%m-%d})"
                if last is not None and not pd.isna(last)
                else "no sales",
            ),
            sales.sort_values("date").tail(5) if stale and len(sales) else None,
        )
    )
    # a store without sales on a day is normal; a day without any sale in the whole company is not
    days = pd.DatetimeIndex(sales["date"].dropna().unique()).sort_values() if len(sales) else pd.DatetimeIndex([])
    gaps = pd.date_range(days[0], days[-1], freq="D").difference(days) if len(days) else pd.DatetimeIndex([])
    out.append(
        (
            _result(
                "sales",
                "no_missing_days",
                "date",
                "table",
                int(len(gaps) > max_missing_days),
                (
                    f"{len(gaps)} day(s) without any sale in the company between {days[0]:%Y-%m-%d} and"
                    f" {days[-1]:%Y-%m-%d}: {', '.join(f'{d:%Y-%m-%d}' for d in gaps[:10])}"
                    f" (tolerated: {max_missing_days})"
                )
                if len(gaps)
                else "every day of the window has sales",
                float(len(gaps)),
            ),
            pd.DataFrame({"missing_date": gaps.strftime("%Y-%m-%d")}) if len(gaps) > max_missing_days else None,
        )
    )
    for name, n in raw_counts.items():
        share = bad_counts.get(name, 0) / n if n else 0.0
        failing = int(share > max_bad_share)
        out.append(
            (
                _result(
                    name,
                    "bad_row_share",
                    "",
                    "table",
                    failing,
                    f"{share:.2%} of rows set aside (limit {max_bad_share:.0%})",
                    share,
                ),
                None,
            )
        )
    return out


def _schema_stage(ctx: RunContext, validator: _Validator, url: str, dq: list[dict[str, Any]]) -> None:
    """Schema checks of every extracted table (into ``dq``); stop the run when a table fails one."""
    schema: list[tuple[dict[str, Any], pd.DataFrame | None]] = []
    for name in ORDER:
        cols_file = ctx.path(f"columns_{name}.json")
        source_columns = json.loads(cols_file.read_text(encoding="utf-8")) if cols_file.exists() else None
        schema.extend(schema_checks(name, ctx.path(f"extract_{name}"), source_columns))
    dq.extend(r for r, _ in schema)
    if any(not r["passed"] and r["level"] == "table" for r, _ in schema):
        _stop(ctx, validator, url, dq, _no_quarantine(), schema)


@dataclass
class _Validated:
    """The row-validated tables of a run: clean rows, quarantined rows, and row counts."""

    clean: dict[str, pd.DataFrame] = field(default_factory=dict)
    quarantine: list[pd.DataFrame] = field(default_factory=list)
    raw_counts: dict[str, int] = field(default_factory=dict)
    bad_counts: dict[str, int] = field(default_factory=dict)


def _validate_rows(ctx: RunContext, validator: _Validator, dq: list[dict[str, Any]], progress: Any) -> _Validated:
    """Row rules of every table in ``ORDER`` (items and locations first: they give the references)."""
    run_date = pd.Timestamp(ctx.run_date)
    out = _Validated()
    refs: dict[str, list[str]] = {}
    for name in ORDER:
        if progress:
            progress(f"validate {name}")
        df = pd.read_parquet(ctx.path(f"extract_{name}"))
        castfail = pd.read_parquet(ctx.path(f"castfail_{name}"))
        out.raw_counts[name] = len(df)
        good, q, results = validate_table(name, df, castfail, refs, run_date, validator, ctx.cfg.validation)
        del df
        out.clean[name] = good
        out.quarantine.append(q)
        dq.extend(results)
        out.bad_counts[name] = out.raw_counts[name] - len(good)
        if name == "items":
            refs["items"] = sorted(good["sku"].dropna().unique().tolist())
        if name == "locations":
            refs["locations"] = sorted(good["location"].dropna().unique().tolist())
    return out


def _table_rules(ctx: RunContext, url: str, v: _Validated) -> list[tuple[dict[str, Any], pd.DataFrame | None]]:
    """The table-level rules, in the order that decides which one a stop names first."""
    vcfg = ctx.cfg.validation
    run_date = pd.Timestamp(ctx.run_date)
    checks = table_checks(
        v.clean, v.raw_counts, v.bad_counts, run_date, vcfg.max_bad_row_share, vcfg.max_missing_sales_days
    )
    history = volume_history(url, ctx.run_date, vcfg.volume_history_runs)
    volume = volume_checks(v.raw_counts, history, vcfg.volume_band)
    skus = volume_history(url, ctx.run_date, vcfg.volume_history_runs, rule="sku_count")
    skus = skus[skus["table_name"] == "sales"].set_index("run_date")["rows"]
    quantities = content_checks(v.clean["sales"], run_date, vcfg, skus)
    return checks[: len(MUST_NOT_BE_EMPTY)] + volume + checks[len(MUST_NOT_BE_EMPTY) :] + quantities


def content_checks(
    sales: pd.DataFrame, run_date: pd.Timestamp, v: ValidationConfig, sku_history: pd.Series
) -> list[tuple[dict[str, Any], pd.DataFrame | None]]:
    """The table-level content rules of the sales (:mod:`pipelines.content`) as dq results."""
    last = run_date - pd.Timedelta(days=1)
    days, base = v.content_check_days, v.content_baseline_days
    outcomes = [
        content.day_volume(sales, last, days, base, v.day_low, v.day_high),
        content.vanished_skus(sales, last, days, base, v.regular_share, v.max_vanished_share),
        content.sku_count(sales, sku_history, v.sku_band),
    ]
    column = {"day_volume": "quantity", "sku_vanished": "sku", "sku_count": "sku"}
    return [
        (_result("sales", o.rule, column[o.rule], "table", o.failing, o.observed, o.value), o.examples)
        for o in outcomes
    ]


def _validate_result(
    ctx: RunContext, clean: dict[str, pd.DataFrame], q_all: pd.DataFrame, dq: list[dict[str, Any]], docs: Path | None
) -> StageResult:
    res = StageResult(stage="validate", counts={f"{k}": len(v) for k, v in clean.items()})
    res.counts["quarantined"] = len(q_all[["table_name", "row_number"]].drop_duplicates()) if len(q_all) else 0
    res.counts["rules_failed"] = sum(1 for r in dq if not r["passed"])
    res.paths = {name: str(ctx.path(name)) for name in clean}
    res.paths.update(dq_results=str(ctx.path("dq_results")), quarantine=str(ctx.path("quarantine")))
    if docs is not None:
        res.paths["data_docs"] = str(docs)
    if res.counts["quarantined"]:
        res.notes.append(f"{res.counts['quarantined']} row(s) set aside by validation")
    res.notes.extend(f"{r['table_name']}: {r['observed']}" for r in dq if r["level"] == "warn" and not r["passed"])
    return res


def validate_stage(ctx: RunContext, progress: Any = None) -> StageResult:
    """Validate every extracted table; write clean tables, quarantine and dq results; fix the run id."""
    from pipelines import reporting

    run_date = pd.Timestamp(ctx.run_date)
    url = ctx.cfg.reporting_url()
    reporting.migrate(url)
    validator = _Validator(run_name=f"tiaobo-{ctx.run_date.isoformat()}", run_time=run_date.to_pydatetime())
    dq: list[dict[str, Any]] = []

    # schema first: a table without its columns cannot be validated row by row
    _schema_stage(ctx, validator, url, dq)
    validated = _validate_rows(ctx, validator, dq, progress)
    if progress:
        progress("table rules")
    checks = _table_rules(ctx, url, validated)
    dq.extend(r for r, _ in checks)
    q_all = pd.concat(validated.quarantine, ignore_index=True)
    if any(not r["passed"] and r["level"] == "table" for r, _ in checks):
        _stop(ctx, validator, url, dq, q_all, checks)

    if progress:
        progress("history, Data Docs, staging writes")
    record_history(url, ctx.run_date, "validated", dq)
    # into this attempt's staging: the load stage copies them over the published ones at the publish
    aside = len(q_all[["table_name", "row_number"]].drop_duplicates()) if len(q_all) else 0
    docs = _docs(ctx, validator, ctx.run_dir / "data_docs", "validated", f"{aside} row(s) set aside")
    for name, df in validated.clean.items():
        ctx.write(name, df)
    run_id = ctx.compute_run_id()
    ctx.write_json("run", {"run_id": run_id, "run_date": ctx.run_date.isoformat()})
    _write_outputs(ctx, dq, q_all, run_id=run_id)
    return _validate_result(ctx, validated.clean, q_all, dq, docs)


def _no_quarantine() -> pd.DataFrame:
    return contract.empty("quarantine").drop(columns=["run_date", "run_id"])


def _stop(
    ctx: RunContext,
    validator: _Validator,
    url: str,
    dq: list[dict[str, Any]],
    quarantine: pd.DataFrame,
    checks: list[tuple[dict[str, Any], pd.DataFrame | None]],
) -> None:
    """Record a stopped validation (history, Data Docs in staging, staged results) and raise."""
    record_history(url, ctx.run_date, "stopped", dq)
    failed = [(r, ex) for r, ex in checks if not r["passed"] and r["level"] == "table"]
    r, ex = failed[0]
    docs = _docs(ctx, validator, ctx.run_dir / "data_docs", "stopped", f"table {r['table_name']}, rule {r['rule']}")
    _write_outputs(ctx, dq, quarantine, run_id="stopped")
    if ex is None and r["rule"] == "bad_row_share":
        ex = quarantine[quarantine["table_name"] == r["table_name"]][["row_number", "rule", "column_name", "value"]]
    message = r["observed"]
    if len(failed) > 1:
        message += "; also failed: " + ", ".join(f"{o['table_name']}.{o['rule']}" for o, _ in failed[1:])
    if docs is not None:
        message += f"; Data Docs: {docs}"
    raise ValidationStop(r["table_name"], r["rule"], message, ex)


def _docs(ctx: RunContext, validator: _Validator, folder: Path, status: str, detail: str) -> Path | None:
    """Build the Data Docs into ``folder``, offline and with the run's outcome on every page."""
    from pipelines import datadocs

    if not ctx.cfg.validation.data_docs:
        return None
    index = validator.build_docs(folder)
    datadocs.make_offline(folder, status, f"{ctx.run_date}, {detail}")
    return index


def _history_table() -> Any:
    import sqlalchemy as sa

    types = {"str": sa.Text, "int": sa.BigInteger, "float": sa.Double, "bool": sa.Boolean, "date": sa.Date}
    t = contract.DQ_HISTORY
    return sa.Table(
        t.name,
        sa.MetaData(),
        *[sa.Column(c.name, types[c.type](), nullable=c.nullable, primary_key=c.name in t.key) for c in t.columns],
    )


def record_history(url: str, run_date: date, status: str, dq: list[dict[str, Any]]) -> int:
    """Append this validation's results to ``dq_history`` in one short transaction; returns the attempt.

    Nothing else is touched: the published rows of the date stay as they are.
    """
    import sqlalchemy as sa

    from pipelines import reporting

    tbl = _history_table()
    frame = contract.conform(
        pd.DataFrame(dq).assign(run_date=pd.Timestamp(run_date), attempt=0, status=status), tbl.name
    )
    with reporting.engine_for(url).execution_options(tiaobo_write=True).begin() as conn:
        last = conn.execute(sa.select(sa.func.max(tbl.c.attempt)).where(tbl.c.run_date == run_date)).scalar()
        attempt = int(last or 0) + 1
        rows = frame.assign(attempt=attempt).astype(object).where(frame.notna(), None).to_dict(orient="records")
        for r in rows:
            r["run_date"] = run_date
        conn.execute(tbl.insert(), rows)
    return attempt


def read_history(url: str, run_date: date | None = None) -> pd.DataFrame:
    """``dq_history`` rows (one run date or all), contract-typed, by run date, attempt and rule."""
    import sqlalchemy as sa

    from pipelines import reporting

    tbl = _history_table()
    stmt = sa.select(tbl)
    if run_date is not None:
        stmt = stmt.where(tbl.c.run_date == run_date)
    with reporting.engine_for(url).connect() as conn:
        rows = conn.execute(stmt).all()
    df = pd.DataFrame([tuple(r) for r in rows], columns=contract.DQ_HISTORY.names)
    return contract.canonical_order(contract.conform(df, tbl.name), tbl.name) if len(df) else contract.empty(tbl.name)


def _write_outputs(ctx: RunContext, dq: list[dict[str, Any]], quarantine: pd.DataFrame, run_id: str) -> None:
    stamp = {"run_date": pd.Timestamp(ctx.run_date), "run_id": run_id}
    ctx.write("dq_results", pd.DataFrame(dq).assign(**stamp))
    ctx.write("quarantine", quarantine.assign(**stamp))
