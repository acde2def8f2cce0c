"""The ``transfer_decisions`` table: the latest decision per recommendation, and the auto tier's
approvals written by the publish (of transfers, and of purchase proposals into ``purchase_decisions``:
:func:`approve_auto_purchases`).

Decisions are append-only rows (:data:`pipelines.contract.TRANSFER_DECISIONS`); the latest
``version`` of a recommendation (rec_run_date, sku, from_location, to_location) is its state.

**Authority of the system.** The policies' auto-approve thresholds put a transfer in the ``auto``
tier (:func:`pipelines.transfers.approval_tier`); the publish of a run date approves those at once
(:func:`approve_auto_tier`, inside the publish transaction): one row per auto-tier transfer by the
user ``system`` (role ``system``, source ``system``). A recommendation a person already decided is
left alone; re-publishing the same run (same run id) adds nothing; a re-run of the date with other
rows (another run id) approves its own auto tier as the next version of each recommendation the
system alone had decided.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

import pandas as pd
import sqlalchemy as sa

from pipelines.reporting import TRANSFER_DECISIONS as T
from pipelines.reporting import engine_for

SYSTEM_USER = "system"
REC_KEY = ["rec_run_date", "sku", "from_location", "to_location"]


def latest_decisions(
    conn: sa.Connection, run_dates: list[date] | None = None, before: date | None = None
) -> pd.DataFrame:
    """The latest decision row per recommendation (all columns), of the given rec run dates or of
    every run date before ``before``."""
    key = [T.c.rec_run_date, T.c.sku, T.c.from_location, T.c.to_location]
    cond: list[sa.ColumnElement[bool]] = []
    if run_dates is not None:
        cond.append(T.c.rec_run_date.in_(run_dates))
    if before is not None:
        cond.append(T.c.rec_run_date < before)
    latest = sa.select(*key, sa.func.max(T.c.version).label("v")).where(*cond).group_by(*key).subquery()
    stmt = sa.select(T).join(
        latest,
        sa.and_(*(c == latest.c[c.name] for c in key), T.c.version == latest.c.v),
    )
    rows = conn.execute(stmt).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=[c.name for c in T.columns])


def _decision_id(run_id: str, sku: str, src: str, dst: str, version: int) -> str:
    return "sys-" + hashlib.sha256(f"{run_id}|{sku}|{src}|{dst}|{version}".encode()).hexdigest()[:24]


def approve_auto_tier(conn: sa.Connection, transfers: pd.DataFrame, run_date: date, run_id: str) -> int:
    """Approve the auto-tier transfers of ``run_date`` (run ``run_id``) on ``conn`` (the caller's
    transaction); returns the rows written (module doc)."""
    auto = transfers[transfers["approval_tier"] == "auto"]
    if auto.empty:
        return 0
    have = latest_decisions(conn, [run_date])
    have = have.rename(columns={"decided_by": "_by", "rec_run_id": "_rid", "version": "_v"})
    key = ["sku", "from_location", "to_location"]
    m = auto.merge(have[[*key, "_by", "_rid", "_v"]], on=key, how="left")
    fresh = m["_v"].isna()
    redo = (m["_by"] == SYSTEM_USER) & (m["_rid"] != run_id)
    m = m[fresh | redo]
    if m.empty:
        return 0
    now = datetime.now(UTC)
    version = m["_v"].fillna(0).astype("int64") + 1
    rows = [
        {
            "decision_id": _decision_id(run_id, r.sku, r.from_location, r.to_location, int(v)),
            "decided_at": now,
            "decided_by": SYSTEM_USER,
            "actor_role": "system",
            "source": "system",
            "rec_run_date": run_date,
            "rec_run_id": run_id,
            "sku": r.sku,
            "from_location": r.from_location,
            "to_location": r.to_location,
            "decision": "approve",
            "old_quantity": float(r.quantity),
            "new_quantity": float(r.quantity),
            "reason_code": None,
            "reason_text": "auto tier: within the policy's auto-approve thresholds",
            "version": int(v),
        }
        for r, v in zip(m.itertuples(), version, strict=True)
    ]
    conn.execute(T.insert(), rows)
    return len(rows)


def read_latest(url: str, before: date) -> pd.DataFrame:
    """:func:`latest_decisions` of every recommendation of a run date before ``before``."""
    with engine_for(url).connect() as conn:
        return latest_decisions(conn, before=before)


def approve_auto_purchases(conn: sa.Connection, proposals: pd.DataFrame, run_date: date, run_id: str) -> int:
    """Approve the auto-tier purchase proposals of ``run_date`` (run ``run_id``) on ``conn`` (the
    publish transaction), as :func:`approve_auto_tier` does for transfers: one ``purchase_decisions``
    row by ``system`` per proposal nobody decided yet, or that only the system decided for another
    run id (a re-run of the date); returns the rows written."""
    from pipelines.reporting import PURCHASE_DECISIONS as P

    auto = proposals[proposals["approval_tier"] == "auto"]
    if auto.empty:
        return 0
    key = [P.c.rec_run_date, P.c.sku, P.c.location]
    latest = (
        sa.select(*key, sa.func.max(P.c.version).label("v"))
        .where(P.c.rec_run_date == run_date)
        .group_by(*key)
        .subquery()
    )
    rows = conn.execute(
        sa.select(P.c.sku, P.c.location, P.c.decided_by, P.c.rec_run_id, P.c.version).join(
            latest, sa.and_(*(c == latest.c[c.name] for c in key), P.c.version == latest.c.v)
        )
    ).all()
    have = pd.DataFrame([tuple(r) for r in rows], columns=["sku", "location", "_by", "_rid", "_v"])
    m = auto.merge(have, on=["sku", "location"], how="left")
    m = m[m["_v"].isna() | ((m["_by"] == SYSTEM_USER) & (m["_rid"] != run_id))]
    if m.empty:
        return 0
    now = datetime.now(UTC)
    version = m["_v"].fillna(0).astype("int64") + 1
    out = [
        {
            "decision_id": "sys-"
            + hashlib.sha256(f"{run_id}|{r.sku}|{r.location}|buy|{int(v)}".encode()).hexdigest()[:24],
            "decided_at": now,
            "decided_by": SYSTEM_USER,
            "actor_role": "system",
            "source": "system",
            "rec_run_date": run_date,
            "rec_run_id": run_id,
            "sku": r.sku,
            "location": r.location,
            "decision": "approve",
            "old_quantity": float(r.quantity),
            "new_quantity": float(r.quantity),
            "supplier": r.supplier,
            "reason_code": None,
            "reason_text": "auto tier: within the policy's auto-approve thresholds",
            "version": int(v),
        }
        for r, v in zip(m.itertuples(), version, strict=True)
    ]
    conn.execute(P.insert(), out)
    return len(out)
