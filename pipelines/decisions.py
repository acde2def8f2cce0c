"""Planners' decisions on recommended transfers, read back by the next run.

A planner approves or rejects a recommendation in a CSV file (path ``transfers.decisions_csv``),
one row per decision, UTF-8, with the columns:

| column | meaning |
|---|---|
| ``run_date`` | business date of the run that recommended the transfer (``YYYY-MM-DD``) |
| ``sku``, ``from_location``, ``to_location`` | the transfer |
| ``decision`` | ``approve`` or ``reject`` (``approved`` / ``rejected`` and any case accepted) |
| ``quantity`` | units approved (required for ``approve``; may differ from the recommendation) |

The next runs read it (:func:`apply_decisions`): only decisions of runs *before* the run date count.

- **Approved**: the units are on their way. Until the transfer arrives (its run date + the lane's
  transit days) they count as in transit at the receiver (``in_transit`` and ``available`` up)
  and are gone from the donor (``on_hand`` and ``available`` down). From the arrival date on the
  stock snapshot is expected to show them, so nothing is adjusted.
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


def apply_decisions(
    policy_df: pd.DataFrame,
    decisions: pd.DataFrame,
    lanes: pd.DataFrame,
    run_date: date,
    reject_cooldown_days: int,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Stock adjusted for approved transfers still on the way, the rejected (sku, from, to) to
    exclude, and notes for the run log (module doc)."""
    rd = pd.Timestamp(run_date)
    d = decisions[decisions["run_date"] < rd]
    ln = lanes[["from_location", "to_location", "transit_days"]]
    appr = d[d["decision"] == "approve"].merge(ln, on=["from_location", "to_location"], how="left")
    appr = appr.assign(transit_days=appr["transit_days"].fillna(0).astype("int64"))
    appr = appr[appr["run_date"] + pd.to_timedelta(appr["transit_days"], unit="D") > rd]
    rej = d[(d["decision"] == "reject") & (d["run_date"] + pd.Timedelta(days=int(reject_cooldown_days)) > rd)]
    exclude = rej[["sku", "from_location", "to_location"]].drop_duplicates().reset_index(drop=True)
    p = policy_df.copy()
    notes = []
    if len(appr):
        inbound = appr.groupby(["sku", "to_location"])["quantity"].sum().rename("_in")
        outbound = appr.groupby(["sku", "from_location"])["quantity"].sum().rename("_out")
        p = p.merge(inbound, left_on=["sku", "location"], right_index=True, how="left")
        p = p.merge(outbound, left_on=["sku", "location"], right_index=True, how="left")
        add, sub = p.pop("_in").fillna(0.0), p.pop("_out").fillna(0.0)
        p["in_transit"] = p["in_transit"] + add
        p["on_hand"] = p["on_hand"] - sub
        p["available"] = p["available"] + add - sub
        notes.append(
            f"{len(appr)} approved transfer(s) still on the way ({appr['quantity'].sum():g} units) counted as in transit"
        )
    if len(exclude):
        notes.append(
            f"{len(exclude)} rejected transfer(s) not proposed again (cooldown {int(reject_cooldown_days)} days)"
        )
    return p.reset_index(drop=True), exclude, notes
