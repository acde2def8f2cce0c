"""Export transfer orders to the configured targets, and the export step of the order book.

Targets (``orders.targets``, :class:`pipelines.config.OrderTarget`):

- **SQL write-back** into the ERP's transfer-request tables (header and lines, like an ERP's
  调拨申请单). Profile ``demo``: the demo ERP's ``tr_request_header`` / ``tr_request_line``;
  ``generic``: table and column names from the configuration, validated as identifiers on load and
  quoted by SQLAlchemy (never pasted into SQL). One transaction per order: the header is upserted on
  the order number (its status and revision), each line on (order number, SKU) with the approved
  quantity; the ERP's own columns (shipped, received) are never written. Tested on SQLite,
  PostgreSQL and MariaDB.
- **File drop**: one file per order revision, ``<order_no>-r<revision>.csv`` (or ``.xlsx``), with the
  configured columns and header texts and encoding (GBK for ERPs that import it), written to a
  temporary file and renamed, so an importer never sees half a file. Writing a revision again writes
  the same file.

Exporting twice never duplicates an order: every target upserts on the order number. A failed
export is recorded with its error and retried at the next attempt (:func:`export_pending`); the
order stays in the order book whatever happens to the export. A change (revision 2, 3, ...) is
exported with ``action`` = change, a cancelled or expired order with ``action`` = cancel.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipelines import orderbook
from pipelines.config import ORDER_FIELDS, ORDER_HEADER_FIELDS, ORDER_LINE_FIELDS, Config, OrderTable, OrderTarget
from pipelines.urls import redact_url, scrub_secret

log = logging.getLogger(__name__)

#: the demo ERP's transfer-request tables and their columns
DEMO_HEADER = OrderTable(
    table="tr_request_header",
    columns={
        "order_no": "req_no",
        "revision": "revision",
        "status": "status",
        "order_date": "req_date",
        "departure_date": "plan_ship_date",
        "from_location": "from_wh",
        "to_location": "to_wh",
    },
)
DEMO_LINES = OrderTable(
    table="tr_request_line",
    columns={"order_no": "req_no", "line_no": "line_no", "sku": "mat_code", "quantity": "qty_req"},
)
#: ERP status of an order per order-book state
ERP_STATUS = {"approved": "APPROVED", "exported": "APPROVED", "cancelled": "CANCELLED", "expired": "CANCELLED"}


def order_rows(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per order line with every field of :data:`pipelines.config.ORDER_FIELDS` (lines of
    the order book joined to their order; inactive lines are exported with quantity 0)."""
    if lines.empty:
        return pd.DataFrame(columns=list(ORDER_FIELDS))
    rev = lines["revision"].astype("int64")
    cancel = lines["state"].isin(["cancelled", "expired"])
    out = pd.DataFrame(
        {
            "order_no": lines["order_no"],
            "revision": rev,
            "action": ["cancel" if c else ("new" if r == 1 else "change") for c, r in zip(cancel, rev, strict=True)],
            "status": lines["state"].map(ERP_STATUS).fillna("APPROVED"),
            "order_date": pd.to_datetime(lines["rec_run_date"]).dt.date,
            "departure_date": pd.to_datetime(lines["departure_date"]).dt.date,
            "from_location": lines["from_location"],
            "to_location": lines["to_location"],
            "sku": lines["sku"],
            "quantity": lines["approved_qty"].where(lines["active"].astype(bool), 0.0).astype(float),
        }
    )
    out = out.sort_values(["order_no", "sku"], kind="mergesort").reset_index(drop=True)
    out["line_no"] = out.groupby("order_no").cumcount() + 1
    return out[list(ORDER_FIELDS)]


# --------------------------------------------------------------------------------------------
# SQL write-back
# --------------------------------------------------------------------------------------------


def _sa_table(spec: OrderTable, fields: tuple[str, ...]) -> tuple[sa.Table, dict[str, str]]:
    schema, _, name = spec.table.rpartition(".")
    cols = {f: spec.columns.get(f, f) for f in fields}
    q = sa.sql.quoted_name
    table = sa.Table(
        q(name, quote=True),
        sa.MetaData(),
        *[sa.Column(q(c, quote=True)) for c in cols.values()],
        schema=q(schema, quote=True) if schema else None,
    )
    return table, cols


def write_sql(conn: sa.Connection, header: OrderTable, lines: OrderTable, rows: pd.DataFrame) -> None:
    """Upsert one order (``rows``: its lines from :func:`order_rows`) on ``conn`` (the caller's
    transaction): header on the order number, lines on (order number, SKU)."""
    h, hc = _sa_table(header, ORDER_HEADER_FIELDS)
    ln, lc = _sa_table(lines, ORDER_LINE_FIELDS)
    first = rows.iloc[0]
    values = {hc[f]: _plain(first[f]) for f in ORDER_HEADER_FIELDS}
    key = h.c[hc["order_no"]] == first["order_no"]
    if conn.execute(sa.select(h.c[hc["order_no"]]).where(key)).first() is None:
        conn.execute(h.insert().values(values))
    else:
        conn.execute(h.update().where(key).values({k: v for k, v in values.items() if k != hc["order_no"]}))
    for r in rows.itertuples(index=False):  # one order's lines: a handful of rows
        where = sa.and_(ln.c[lc["order_no"]] == r.order_no, ln.c[lc["sku"]] == r.sku)
        if conn.execute(sa.select(ln.c[lc["sku"]]).where(where)).first() is None:
            conn.execute(ln.insert().values({lc[f]: _plain(getattr(r, f)) for f in ORDER_LINE_FIELDS}))
        else:
            conn.execute(ln.update().where(where).values({lc["quantity"]: float(r.quantity)}))


def _plain(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return v.date()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


# --------------------------------------------------------------------------------------------
# File drop
# --------------------------------------------------------------------------------------------


def write_file(target: OrderTarget, rows: pd.DataFrame) -> Path:
    """Write one order revision as a file in the target's folder (temporary file, then rename)."""
    assert target.folder is not None
    columns = target.file_columns or {f: f for f in ORDER_FIELDS}
    frame = rows[list(columns)].rename(columns=columns)
    first = rows.iloc[0]
    folder = Path(target.folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{first['order_no']}-r{int(first['revision'])}.{target.format}"
    tmp = folder / f".{path.name}.tmp"
    if target.format == "csv":
        frame.to_csv(tmp, index=False, encoding=target.encoding)
    else:
        frame.to_excel(tmp, index=False, engine="openpyxl")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------------------------
# The export step
# --------------------------------------------------------------------------------------------


def target_url(cfg: Config, target: OrderTarget) -> str:
    return target.resolve(cfg.source_url(), f"orders.targets[{target.name}]")


def _writer(cfg: Config, target: OrderTarget) -> Callable[[pd.DataFrame], str]:
    if target.kind == "file":
        return lambda rows: str(write_file(target, rows))
    header = DEMO_HEADER if target.profile == "demo" else target.header
    lines = DEMO_LINES if target.profile == "demo" else target.lines
    assert header is not None and lines is not None
    url = target_url(cfg, target)
    engine = sa.create_engine(url)

    def write(rows: pd.DataFrame) -> str:
        with engine.begin() as conn:
            write_sql(conn, header, lines, rows)
        return f"{header.table} / {lines.table} in {redact_url(url)}"

    return write


def export_pending(cfg: Config, reporting_url: str, run_date: date | None = None) -> dict[str, int]:
    """Export every order revision some target has not acknowledged; record each attempt in the
    order book. Never raises for a target's failure (it is recorded and retried next time)."""
    from pipelines.reporting import engine_for

    targets = {t.name: t for t in cfg.orders.targets}
    counts = {"exported": 0, "export_failed": 0}
    if not targets:
        return counts
    engine = engine_for(reporting_url).execution_options(tiaobo_write=True)
    with engine.begin() as conn:
        todo = orderbook.pending_exports(conn, list(targets))
        lines = orderbook.read_lines(conn, sorted(set(todo["order_no"])), active_only=False) if len(todo) else None
    if lines is None or lines.empty:
        return counts
    rows = order_rows(lines)
    writers: dict[str, Callable[[pd.DataFrame], str]] = {}
    for r in todo.itertuples():
        one = rows[rows["order_no"] == r.order_no]
        try:
            writers.setdefault(r.target, _writer(cfg, targets[r.target]))
            where = writers[r.target](one)
            ok, msg = True, f"revision {r.revision} written to {where}"
        except Exception as exc:  # recorded, retried at the next attempt
            url = target_url(cfg, targets[r.target]) if targets[r.target].kind == "sql" else ""
            ok, msg = False, scrub_secret(f"{type(exc).__name__}: {exc}".splitlines()[0], url) if url else str(exc)
            log.warning("order %s: export to %s failed: %s", r.order_no, r.target, msg)
        with engine.begin() as conn:
            orderbook.record_export(conn, r.order_no, r.target, int(r.revision), ok, msg)
        counts["exported" if ok else "export_failed"] += 1
    with engine.begin() as conn:  # an order is exported once every target has its revision
        left = orderbook.pending_exports(conn, list(targets))
        for r in todo[["order_no", "revision"]].drop_duplicates().itertuples():
            if not (left["order_no"] == r.order_no).any():
                orderbook.mark_exported(conn, r.order_no, int(r.revision), run_date)
    return counts


def orders_cycle(cfg: Config, run_date: date) -> dict[str, int]:
    """What ``tiaobo orders`` does between nights: approvals (transfers and purchases) into orders,
    pending exports out."""
    from pipelines import decision_store, reporting

    url = cfg.reporting_url()
    reporting.migrate(url)
    with reporting.engine_for(url).execution_options(tiaobo_write=True).begin() as conn:
        latest = decision_store.latest_decisions(conn, before=run_date + timedelta(days=1))
        counts = orderbook.sync_from_decisions(conn, latest, run_date)
    counts.update(export_pending(cfg, url, run_date))
    from pipelines.purchase_orders import purchase_cycle  # approved purchases too

    counts.update(purchase_cycle(cfg, url, run_date))
    return counts
