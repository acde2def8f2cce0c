"""Planners' decisions on recommended transfers, read back by the next run.

A planner approves or rejects a recommendation in a CSV file (path ``transfers.decisions_csv``),
one row per decision, UTF-8, with the columns:

| column | meaning |
|---|---|
| ``run_date`` | business date of the run that recommended the transfer (``YYYY-MM-DD``) |
| ``sku``, ``from_location``, ``to_location`` | the transfer |
| ``decision`` | ``approve`` or ``reject`` (``approved`` / ``rejected`` and any case accepted) |
| ``quantity`` | units approved (required for ``approve``; may differ from the recommendation) |

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

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

DECISION_COLUMNS = ["run_date", "sku", "from_location", "to_location", "decision", "quantity"]
_KEY = ["run_date", "sku", "from_location", "to_location"]
_VALUES = {"approve": "approve", "approved": "approve", "reject": "reject", "rejected": "reject"}


class DecisionsError(ValueError):
    """The decisions file breaks a rule; the message names the file, column, rule and rows."""


def _rows(mask: pd.Series, limit: int = 5) -> str:
    idx = [int(i) + 2 for i in np.flatnonzero(mask.to_numpy())[:limit]]  # file line numbers (header = 1)
    more = int(mask.sum()) - len(idx)
    return ", ".join(map(str, idx)) + (f" and {more} more" if more > 0 else "")


def read_decisions(path: str | Path) -> pd.DataFrame:
    """Read and check the decisions CSV; raises :class:`DecisionsError` naming column, rule and lines."""
    p = Path(path)
    raw = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8")
    missing = [c for c in DECISION_COLUMNS if c not in raw.columns]
    if missing:
        raise DecisionsError(f"planner decisions {p}: missing column(s) {missing}; expected {DECISION_COLUMNS}")
    df = raw[DECISION_COLUMNS].apply(lambda s: s.str.strip())
    for col in ("sku", "from_location", "to_location"):
        bad = df[col] == ""
        if bad.any():
            raise DecisionsError(
                f"planner decisions {p}: column {col!r} rule 'not empty' fails on line(s) {_rows(bad)}"
            )
    when = pd.to_datetime(df["run_date"], format="%Y-%m-%d", errors="coerce")
    bad = when.isna()
    if bad.any():
        raise DecisionsError(
            f"planner decisions {p}: column 'run_date' rule 'a date YYYY-MM-DD' fails on line(s) {_rows(bad)}"
        )
    decision = df["decision"].str.lower().map(_VALUES)
    bad = decision.isna()
    if bad.any():
        raise DecisionsError(
            f"planner decisions {p}: column 'decision' rule 'approve or reject' fails on line(s) {_rows(bad)}"
        )
    qty = pd.to_numeric(df["quantity"].replace("", np.nan), errors="coerce")
    bad = (decision == "approve") & ~(qty > 0)
    if bad.any():
        raise DecisionsError(
            f"planner decisions {p}: column 'quantity' rule 'a number > 0 for approve' fails on line(s) {_rows(bad)}"
        )
    out = df.assign(run_date=when.dt.normalize(), decision=decision, quantity=qty.fillna(0.0).astype(float))
    return out.drop_duplicates(_KEY, keep="last").reset_index(drop=True)


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
