"""Planners' decisions on recommended transfers, read back by the next run.

A planner approves or rejects a recommendation in a CSV or xlsx file (path
``transfers.decisions_csv`` for the nightly run; ``tiaobo decisions import`` and the workbench's
upload read the same format), one row per decision, with the columns:

| column | meaning |
|---|---|
| ``run_date`` | business date of the run that recommended the transfer (``2026-11-24`` or ``2026/11/24``) |
| ``sku``, ``from_location``, ``to_location`` | the transfer |
| ``decision`` | ``approve`` / ``批准`` or ``reject`` / ``拒绝`` (``approved`` / ``rejected`` and any case accepted) |
| ``quantity`` | units approved (required for ``approve``; may differ from the recommendation) |
| ``reason_code`` | optional: data_wrong, already_handled, donor_needs_it, too_costly, other |
| ``reason_text`` | optional free text (required with ``other``) |

CSV files are read as UTF-8 (with or without a byte-order mark), else GBK (GB18030, as Excel on a
Chinese Windows saves them). A bad row is reported with its file line (header = line 1), column,
rule and value, and the good rows are still read (:func:`parse_decisions`); only a file that cannot
be read at all, or lacks a required column, is refused (:class:`DecisionsError`).

The feedback stage reads it together with the ``transfer_decisions`` table of the reporting
database (the workbench's decisions) into the ``decisions`` staging file; only decisions of runs
*before* the run date count (:func:`excluded_lanes`; approvals become transfer orders,
:mod:`pipelines.orders`).

- **Approved**: the transfer becomes (a line of) a transfer order (:mod:`pipelines.orders`); until
  the ERP ships it, its units count as reserved at the donor and on the way to the receiver.
- **Rejected**: the same (sku, from, to) is not proposed again while the run date is less than
  ``reject_cooldown_days`` after the decision's run date.

A later decision on the same (run_date, sku, from, to) replaces an earlier row (the last row wins).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd

DECISION_COLUMNS = ["run_date", "sku", "from_location", "to_location", "decision", "quantity"]
OPTIONAL_COLUMNS = ["reason_code", "reason_text"]
_KEY = ["run_date", "sku", "from_location", "to_location"]
_VALUES = {
    "approve": "approve",
    "approved": "approve",
    "批准": "approve",
    "reject": "reject",
    "rejected": "reject",
    "拒绝": "reject",
}
#: reasons a rejection may give (``other`` needs a free text)
REASON_CODES = ("data_wrong", "already_handled", "donor_needs_it", "too_costly", "other")
#: encodings tried in turn for a CSV file
CSV_ENCODINGS = ("utf-8-sig", "gb18030")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d")


class DecisionsError(ValueError):
    """The decisions file cannot be read at all; the message names the file, column and rule."""


@dataclass(frozen=True)
class RowProblem:
    """One bad row of a decisions file: its file line (header = 1), column, rule and value."""

    line: int
    column: str
    rule: str
    value: str

    def __str__(self) -> str:
        return f"line {self.line}: column {self.column!r} rule {self.rule!r} fails (value {self.value!r})"


@dataclass
class ParsedDecisions:
    """The good rows of a decisions file (DECISION_COLUMNS + OPTIONAL_COLUMNS + ``line``), the
    problems of the bad ones, and the encoding the file was read with."""

    source: str
    rows: pd.DataFrame
    problems: list[RowProblem] = field(default_factory=list)
    encoding: str = "utf-8"

    def summary(self, limit: int = 5) -> str:
        """``12 decision(s) read from F; 2 bad row(s): line 3: ...; line 7: ...``"""
        out = f"{len(self.rows)} decision(s) read from {self.source} ({self.encoding})"
        if self.problems:
            shown = "; ".join(str(p) for p in self.problems[:limit])
            more = len(self.problems) - limit
            out += f"; {len(self.problems)} bad row(s) left out: {shown}" + (f" and {more} more" if more > 0 else "")
        return out


def _header(text: str) -> str:
    """A column code from a header: the code itself, or its English or Chinese name as the digest's
    attachments write it (pipelines.labels.COLUMNS), so a planner can fill in an attachment."""
    from pipelines.labels import COLUMNS

    h = text.strip().lower()
    aliases = {name.strip().lower(): code for code, pair in COLUMNS.items() for name in pair}
    return h if h in COLUMNS else aliases.get(h, h)


def _decode(data: bytes, source: str) -> tuple[str, str]:
    for enc in CSV_ENCODINGS:
        try:
            return data.decode(enc), ("gbk" if enc == "gb18030" else "utf-8")
        except UnicodeDecodeError:
            continue
    raise DecisionsError(f"planner decisions {source}: neither UTF-8 nor GBK text")


def _records(data: bytes, source: str, name: str) -> tuple[list[tuple[int, dict[str, str]]], str]:
    """(file line, {column: text}) per data row, and the encoding."""
    if name.lower().endswith((".xlsx", ".xlsm")):
        try:
            df = pd.read_excel(io.BytesIO(data), dtype=str, keep_default_na=False)
        except Exception as exc:  # openpyxl raises several types for a broken workbook
            raise DecisionsError(f"planner decisions {source}: not a readable xlsx workbook ({exc})") from exc
        cols = [_header(str(c)) for c in df.columns]
        recs = [
            (i + 2, dict(zip(cols, (str(v) for v in row), strict=True)))
            for i, row in enumerate(df.itertuples(index=False))
        ]
        return recs, "xlsx"
    text, enc = _decode(data, source)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DecisionsError(f"planner decisions {source}: the file is empty (no header line)") from None
    cols = [_header(c) for c in header]
    recs = []
    for row in reader:
        if not any(v.strip() for v in row):
            continue
        recs.append((reader.line_num, {c: (row[i] if i < len(row) else "") for i, c in enumerate(cols)}))
    return recs, enc


def parse_date(text: str) -> date | None:
    """``2026-11-24``, ``2026/11/24`` (also with a time part, as xlsx cells give) as a date; None if not."""
    t = text.strip()[:10].strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(t, fmt).date()
        except ValueError:
            continue
    return None


def _quantity(line: int, text: str, decision: str | None) -> tuple[float | None, list[RowProblem]]:
    try:
        qty = float(text) if text else None
    except ValueError:
        return None, [RowProblem(line, "quantity", "a number", text)]
    if decision == "approve" and not (qty is not None and qty > 0):
        return qty, [RowProblem(line, "quantity", "a number > 0 for approve", text)]
    return qty, []


def check_row(line: int, r: dict[str, str]) -> tuple[dict | None, list[RowProblem]]:
    """One file row (column -> text) as a decision (None when bad) and its problems."""
    v = {c: (r.get(c) or "").strip() for c in [*DECISION_COLUMNS, *OPTIONAL_COLUMNS]}
    bad = [RowProblem(line, col, "not empty", "") for col in ("sku", "from_location", "to_location") if not v[col]]
    when = parse_date(v["run_date"])
    if when is None:
        bad.append(RowProblem(line, "run_date", "a date YYYY-MM-DD or YYYY/MM/DD", v["run_date"]))
    decision = _VALUES.get(v["decision"].lower())
    if decision is None:
        bad.append(RowProblem(line, "decision", "approve or reject (批准 / 拒绝)", v["decision"]))
    qty, qty_bad = _quantity(line, v["quantity"], decision)
    bad += qty_bad
    code = v["reason_code"].lower()
    if code and code not in REASON_CODES:
        bad.append(RowProblem(line, "reason_code", "one of " + ", ".join(REASON_CODES), v["reason_code"]))
    if code == "other" and not v["reason_text"]:
        bad.append(RowProblem(line, "reason_text", "required with reason other", ""))
    if bad:
        return None, bad
    row = {
        "run_date": pd.Timestamp(when),
        "sku": v["sku"],
        "from_location": v["from_location"],
        "to_location": v["to_location"],
        "decision": decision,
        "quantity": float(qty or 0.0) if decision == "approve" else 0.0,
        "reason_code": code,
        "reason_text": v["reason_text"],
        "line": line,
    }
    return row, []


def parse_decisions(path: str | Path, data: bytes | None = None, name: str | None = None) -> ParsedDecisions:
    """Read a decisions file (CSV or xlsx; ``data``: its bytes when uploaded, ``name`` its file name).

    Bad rows become :class:`RowProblem` entries; the good ones are returned (the last row of a
    recommendation wins). Raises :class:`DecisionsError` only when the file cannot be read or lacks
    a required column.
    """
    source = str(path)
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise DecisionsError(f"planner decisions {source}: cannot read the file ({exc})") from exc
    recs, enc = _records(data, source, name or source)
    have = set(recs[0][1]) if recs else set()
    if recs:
        missing = [c for c in DECISION_COLUMNS if c not in have]
        if missing:
            raise DecisionsError(
                f"planner decisions {source}: missing column(s) {missing}; expected {DECISION_COLUMNS}"
                f" (optional {OPTIONAL_COLUMNS})"
            )
    problems: list[RowProblem] = []
    good: list[dict] = []
    for line, r in recs:
        row, bad = check_row(line, r)
        problems += bad
        if row is not None:
            good.append(row)
    cols = [*DECISION_COLUMNS, *OPTIONAL_COLUMNS, "line"]
    df = pd.DataFrame(good, columns=cols)
    df = df.astype(
        {
            "run_date": "datetime64[ns]",
            "quantity": "float64",
            "line": "int64",
            "reason_code": "str",
            "reason_text": "str",
        }
    )
    df = df.drop_duplicates(_KEY, keep="last").reset_index(drop=True)
    return ParsedDecisions(source=source, rows=df, problems=problems, encoding=enc)


def read_decisions(path: str | Path) -> pd.DataFrame:
    """The good rows of the decisions file at ``path`` (:func:`parse_decisions`; its problems are
    not returned: use :func:`parse_decisions` to report them)."""
    return parse_decisions(path).rows


#: columns of the ``decisions`` staging file: the latest decision on each recommendation known at a run
STAGED_COLUMNS = [
    *DECISION_COLUMNS,
    "decided_by",
    "source",
    "reason_code",
    "rec_run_id",
    "decided_at",
    "published_at",
]
#: columns of the ``open_transfers`` staging file: units of open orders still to arrive (pipelines.orders)
OPEN_COLUMNS = ["sku", "from_location", "to_location", "quantity", "status", "rec_run_date", "arrival_date", "order_no"]


def staged_decisions(decisions: pd.DataFrame) -> pd.DataFrame:
    """``decisions`` (DECISION_COLUMNS, optionally who, source and reason) as the staging file, one row
    per recommendation (the last row of a (run_date, sku, from, to) wins), in a stable order."""
    d = decisions.copy()
    for col, dflt in (
        ("decided_by", "file"),
        ("source", "csv"),
        ("reason_code", ""),
        ("rec_run_id", "file"),
        ("decided_at", pd.NaT),
        ("published_at", pd.NaT),
    ):
        if col not in d.columns:
            d[col] = dflt
    d = d[STAGED_COLUMNS].drop_duplicates(_KEY, keep="last")
    d = d.astype({"sku": "str", "from_location": "str", "to_location": "str", "decision": "str"})
    d["run_date"] = pd.to_datetime(d["run_date"]).astype("datetime64[ns]").dt.normalize()
    d["quantity"] = d["quantity"].astype(float)
    for col in ("decided_by", "source", "reason_code", "rec_run_id"):
        d[col] = d[col].fillna("").astype("str")
    for col in ("decided_at", "published_at"):  # UTC, naive; unknown for a file's rows
        d[col] = pd.to_datetime(d[col], utc=True).dt.tz_localize(None).astype("datetime64[ns]")
    return d.sort_values(_KEY, kind="mergesort").reset_index(drop=True)


def excluded_lanes(decisions: pd.DataFrame, run_date: date, reject_cooldown_days: int) -> pd.DataFrame:
    """(sku, from_location, to_location) rejected by a planner within ``reject_cooldown_days`` before
    ``run_date``: not proposed again, by any method, before allocation."""
    rd = pd.Timestamp(run_date)
    d = decisions[decisions["run_date"] < rd]
    rej = d[(d["decision"] == "reject") & (d["run_date"] + pd.Timedelta(days=int(reject_cooldown_days)) > rd)]
    return rej[["sku", "from_location", "to_location"]].drop_duplicates().reset_index(drop=True)
