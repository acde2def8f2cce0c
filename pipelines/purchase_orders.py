"""Approved purchase proposals become purchase orders in the ERP, and come back as received.

The purchase order book (migration ``0009_purchase_orders``) in the reporting database:

- ``purchase_order_book``: one order per night, supplier and delivery location (the lines of one
  supplier to one location decided on one night's proposals ship together), its number derived from
  them (:func:`order_number`, so an approval becomes exactly one order however often it is synced),
  state ``approved`` → ``exported`` (every target has its revision) → ``confirmed`` (the ERP's open
  purchase orders, extracted, hold its number: from then on the ERP is the record of it), or
  ``cancelled`` (every line rejected after it was approved); ``revision`` is raised by every change
  of its lines (a confirmed order is not changed any more: the ERP owns it);
- ``purchase_order_book_lines``: one row per order and SKU: the approved quantity, the proposal's
  expected receipt, run id and who approved it, and whether the line is still wanted;
- export attempts and events go to the order book's ``order_exports`` / ``order_events`` (the
  numbers never collide: purchase orders start with ``PT``).

:func:`sync_from_decisions` makes the book hold exactly the latest purchase decisions;
:func:`export_pending` writes every revision a target has not acknowledged: the demo ERP's
``po_header`` / ``po_line`` (upserted on the order number and SKU; the ERP's own received quantity is
never written, a cancelled order is written ``CANCELLED``) or a file per revision
(``purchase_orders/<order_no>-r<revision>.csv`` / ``.xlsx`` inside the target's folder). The next night's extract reads the order back from the
ERP as an open purchase order (``purchase_orders``): the position counts it, nothing is proposed
twice, and the warehouse's receipt closes it. Until the ERP shows it, :func:`open_lines` stages the
order's lines for the night (``open_purchases``, counted as on order like the ERP's own), up to their
expected receipt (an order the ERP never shows, e.g. a file an importer renumbers, stops counting then). A failed export is recorded and retried; the order
stays in the book whatever happens. Generic SQL targets get no purchase orders yet (their tables are
configured for transfer requests only).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipelines import orderbook
from pipelines.config import Config, OrderTarget
from pipelines.reporting import METADATA, OUTPUT_SA, PURCHASE_DECISIONS, as_date
from pipelines.urls import redact_url, scrub_secret

log = logging.getLogger(__name__)

STATES = ("approved", "exported", "confirmed", "cancelled")
#: the fields of an exported purchase order line, in file order
FIELDS = (
    "order_no",
    "revision",
    "action",
    "status",
    "order_date",
    "supplier",
    "location",
    "expected_receipt",
    "line_no",
    "sku",
    "quantity",
)
#: how far back the sync looks for decisions (older proposals are not ordered any more)
DECISION_DAYS = 14

BOOK = sa.Table(
    "purchase_order_book",
    METADATA,
    sa.Column("order_no", sa.Text(), primary_key=True),
    sa.Column("rec_run_date", sa.Date(), nullable=False),
    sa.Column("supplier", sa.Text(), nullable=False),
    sa.Column("location", sa.Text(), nullable=False),
    sa.Column("expected_receipt", sa.Date(), nullable=False),
    sa.Column("state", sa.Text(), nullable=False),
    sa.Column("revision", sa.BigInteger(), nullable=False),
    sa.Column("exported_revision", sa.BigInteger(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
BOOK_LINES = sa.Table(
    "purchase_order_book_lines",
    METADATA,
    sa.Column("order_no", sa.Text(), primary_key=True),
    sa.Column("sku", sa.Text(), primary_key=True),
    sa.Column("quantity", sa.Double(), nullable=False),
    sa.Column("expected_receipt", sa.Date(), nullable=False),
    sa.Column("rec_run_id", sa.Text(), nullable=False),
    sa.Column("decided_by", sa.Text(), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
)
PD = PURCHASE_DECISIONS
PP = OUTPUT_SA["purchase_proposals"]


def order_number(rec_run_date: date | pd.Timestamp, supplier: str, location: str) -> str:
    """``PT<yyyymmdd>-<8 hex>``: the night, and a digest of supplier and location."""
    digest = hashlib.sha1(f"{supplier}\x1f{location}".encode()).hexdigest()[:8].upper()
    return f"PT{pd.Timestamp(rec_run_date):%Y%m%d}-{digest}"


def _now() -> datetime:
    return datetime.now(UTC)


def latest_decisions(conn: sa.Connection, run_date: date) -> pd.DataFrame:
    """The latest decision on every purchase proposal of the last :data:`DECISION_DAYS` nights up to
    ``run_date``, with the proposal's expected receipt: rec_run_date, sku, location, decision,
    new_quantity, supplier, rec_run_id, decided_by, expected_receipt."""
    since = run_date - timedelta(days=DECISION_DAYS)
    top = (
        sa.select(PD.c.rec_run_date, PD.c.sku, PD.c.location, sa.func.max(PD.c.version).label("version"))
        .where(PD.c.rec_run_date >= since, PD.c.rec_run_date <= run_date)
        .group_by(PD.c.rec_run_date, PD.c.sku, PD.c.location)
        .subquery()
    )
    stmt = (
        sa.select(
            PD.c.rec_run_date,
            PD.c.sku,
            PD.c.location,
            PD.c.decision,
            PD.c.new_quantity,
            PD.c.supplier,
            PD.c.rec_run_id,
            PD.c.decided_by,
            PP.c.expected_receipt,
        )
        .join(
            top,
            sa.and_(
                PD.c.rec_run_date == top.c.rec_run_date,
                PD.c.sku == top.c.sku,
                PD.c.location == top.c.location,
                PD.c.version == top.c.version,
            ),
        )
        .join(
            PP,
            sa.and_(PP.c.run_date == PD.c.rec_run_date, PP.c.sku == PD.c.sku, PP.c.location == PD.c.location),
        )
        .order_by(PD.c.rec_run_date, PD.c.sku, PD.c.location)
    )
    rows = conn.execute(stmt).all()
    cols = ["rec_run_date", "sku", "location", "decision", "new_quantity", "supplier", "rec_run_id", "decided_by"]
    df = pd.DataFrame([tuple(r) for r in rows], columns=[*cols, "expected_receipt"])
    for c in ("rec_run_date", "expected_receipt"):
        df[c] = [as_date(v) for v in df[c]]
    return df


def wanted_lines(decisions: pd.DataFrame) -> pd.DataFrame:
    """The order lines the approvals want: order_no, rec_run_date, supplier, location, sku, quantity,
    expected_receipt, rec_run_id, decided_by."""
    ok = decisions[(decisions["decision"] == "approve") & (decisions["new_quantity"] > 0)]
    ok = ok[ok["supplier"].notna() & (ok["supplier"].astype("str").str.strip() != "")]
    nos = [
        order_number(d, s, loc) for d, s, loc in zip(ok["rec_run_date"], ok["supplier"], ok["location"], strict=True)
    ]
    return ok.assign(order_no=nos, quantity=ok["new_quantity"].astype(float)).reset_index(drop=True)


def read_book(conn: sa.Connection) -> pd.DataFrame:
    rows = conn.execute(sa.select(BOOK).order_by(BOOK.c.order_no)).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=[c.name for c in BOOK.columns])


def read_book_lines(conn: sa.Connection, order_nos: list[str] | None = None) -> pd.DataFrame:
    stmt = sa.select(BOOK_LINES, BOOK.c.state, BOOK.c.revision, BOOK.c.rec_run_date, BOOK.c.supplier, BOOK.c.location)
    stmt = stmt.join(BOOK, BOOK.c.order_no == BOOK_LINES.c.order_no)
    if order_nos is not None:
        stmt = stmt.where(BOOK_LINES.c.order_no.in_(order_nos))
    rows = conn.execute(stmt.order_by(BOOK_LINES.c.order_no, BOOK_LINES.c.sku)).all()
    cols = [c.name for c in BOOK_LINES.columns] + ["state", "revision", "rec_run_date", "supplier", "location"]
    return pd.DataFrame([tuple(r) for r in rows], columns=cols)


def _line(r: Any) -> dict[str, Any]:
    return {
        "order_no": r.order_no,
        "sku": r.sku,
        "quantity": float(r.quantity),
        "expected_receipt": r.expected_receipt,
        "rec_run_id": r.rec_run_id,
        "decided_by": r.decided_by,
        "active": True,
    }


def sync_from_decisions(conn: sa.Connection, decisions: pd.DataFrame, run_date: date | None = None) -> dict[str, int]:
    """Make the book hold exactly the approved lines of ``decisions`` (:func:`latest_decisions`): a new
    night, supplier and location is a new order (revision 1); an order whose lines differ gets them
    changed and its revision raised (exported again as a change), and with no line left it is
    ``cancelled`` (exported as a cancellation). Lines of orders of the decided nights that no
    approval wants any more (rejected later, or moved to another supplier) are dropped. Returns counts."""
    counts = {"purchase_orders_created": 0, "purchase_orders_changed": 0, "purchase_orders_cancelled": 0}
    if decisions.empty:
        return counts
    want = wanted_lines(decisions)
    book = read_book(conn)
    nights = set(decisions["rec_run_date"])
    touched = book[book["rec_run_date"].map(as_date).isin(nights)]
    nos = sorted(set(want["order_no"]) | set(touched["order_no"]))
    have = book.set_index("order_no")
    current = read_book_lines(conn, nos)
    now = _now()
    for no in nos:
        w = want[want["order_no"] == no]
        if no not in have.index:
            first = w.iloc[0]
            conn.execute(
                BOOK.insert().values(
                    order_no=no,
                    rec_run_date=first["rec_run_date"],
                    supplier=str(first["supplier"]).strip(),
                    location=first["location"],
                    expected_receipt=min(w["expected_receipt"]),
                    state="approved",
                    revision=1,
                    exported_revision=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(BOOK_LINES.insert(), [_line(r) for r in w.itertuples()])
            orderbook._event(conn, no, "created", f"{len(w)} line(s), {w['quantity'].sum():g} units", run_date)
            counts["purchase_orders_created"] += 1
            continue
        if str(have.loc[no, "state"]) == "confirmed" or (str(have.loc[no, "state"]) == "cancelled" and w.empty):
            continue
        cur = current[(current["order_no"] == no) & current["active"].astype(bool)]
        before = dict(zip(cur["sku"], cur["quantity"].astype(float), strict=True))
        after = dict(zip(w["sku"], w["quantity"].astype(float), strict=True))
        if before == after:
            continue
        for sku in sorted(set(before) | set(after)):
            where = sa.and_(BOOK_LINES.c.order_no == no, BOOK_LINES.c.sku == sku)
            if sku not in after:
                conn.execute(sa.update(BOOK_LINES).where(where).values(active=False, quantity=0.0))
                continue
            row = w[w["sku"] == sku].iloc[0]
            if conn.execute(sa.select(BOOK_LINES.c.sku).where(where)).first() is None:
                conn.execute(BOOK_LINES.insert().values(**_line(row)))
            else:
                conn.execute(
                    sa.update(BOOK_LINES)
                    .where(where)
                    .values(
                        quantity=float(row["quantity"]),
                        rec_run_id=row["rec_run_id"],
                        decided_by=row["decided_by"],
                        active=True,
                    )
                )
        rev = int(have.loc[no, "revision"]) + 1
        state = "cancelled" if w.empty else "approved"
        values: dict[str, Any] = {"state": state, "revision": rev, "updated_at": now}
        if not w.empty:
            values["expected_receipt"] = min(w["expected_receipt"])
        conn.execute(sa.update(BOOK).where(BOOK.c.order_no == no).values(**values))
        detail = ", ".join(f"{s} {before.get(s, 0):g} -> {after.get(s, 0):g}" for s in sorted(set(before) | set(after)))
        orderbook._event(conn, no, state if w.empty else "changed", f"revision {rev}: {detail}", run_date)
        counts["purchase_orders_cancelled" if w.empty else "purchase_orders_changed"] += 1
    return counts


def confirm(conn: sa.Connection, erp_orders: pd.DataFrame, run_date: date | None = None) -> int:
    """Orders (approved or exported) whose number the ERP's open purchase orders hold are
    ``confirmed``; returns how many."""
    if erp_orders.empty:
        return 0
    book = read_book(conn)
    seen = book[book["state"].isin(["approved", "exported"]) & book["order_no"].isin(set(erp_orders["po_no"]))]
    for no in seen["order_no"]:
        conn.execute(sa.update(BOOK).where(BOOK.c.order_no == no).values(state="confirmed", updated_at=_now()))
        orderbook._event(conn, no, "confirmed", "in the ERP's open purchase orders", run_date)
    return len(seen)


def open_lines(conn: sa.Connection, run_date: date) -> pd.DataFrame:
    """The lines of orders not in the ERP yet (approved or exported, on proposals of nights before
    ``run_date``, expected on or after it), as rows of the contract's ``purchase_orders``: what is
    on order that the night's extract cannot show. Only earlier nights count, so that running a
    date again (whose own auto tier its first publish approved) stages the same rows."""
    lines = read_book_lines(conn)
    lines = lines[lines["active"].astype(bool) & lines["state"].isin(["approved", "exported"])]
    lines = lines[lines["rec_run_date"].map(as_date) < run_date]
    lines = lines[lines["expected_receipt"].map(as_date) >= run_date]
    return pd.DataFrame(
        {
            "po_no": lines["order_no"].astype("str"),
            "sku": lines["sku"].astype("str"),
            "location": lines["location"].astype("str"),
            "supplier": lines["supplier"].astype("str"),
            "open_qty": lines["quantity"].astype(float),
            "order_date": pd.to_datetime(lines["rec_run_date"].map(as_date)),
            "expected_date": pd.to_datetime(lines["expected_receipt"].map(as_date)),
        }
    ).reset_index(drop=True)


def order_rows(lines: pd.DataFrame, book: pd.DataFrame) -> pd.DataFrame:
    """One row per order line with every field of :data:`FIELDS` (dropped lines with quantity 0)."""
    if lines.empty:
        return pd.DataFrame(columns=list(FIELDS))
    b = book.set_index("order_no")
    rev = lines["order_no"].map(b["revision"]).astype("int64")
    state = lines["order_no"].map(b["state"])
    out = pd.DataFrame(
        {
            "order_no": lines["order_no"],
            "revision": rev,
            "action": [
                "cancel" if s == "cancelled" else ("new" if r == 1 else "change")
                for s, r in zip(state, rev, strict=True)
            ],
            "status": state.map({"cancelled": "CANCELLED"}).fillna("OPEN"),
            "order_date": lines["order_no"].map(b["rec_run_date"]).map(as_date),
            "supplier": lines["order_no"].map(b["supplier"]),
            "location": lines["order_no"].map(b["location"]),
            "expected_receipt": lines["order_no"].map(b["expected_receipt"]).map(as_date),
            "sku": lines["sku"],
            "quantity": lines["quantity"].where(lines["active"].astype(bool), 0.0).astype(float),
        }
    )
    out = out.sort_values(["order_no", "sku"], kind="mergesort").reset_index(drop=True)
    out["line_no"] = out.groupby("order_no").cumcount() + 1
    return out[list(FIELDS)]


def write_demo_erp(conn: sa.Connection, rows: pd.DataFrame) -> None:
    """Upsert one purchase order (``rows``: its lines) into the demo ERP's ``po_header`` / ``po_line``:
    the header on the order number, each line on (order number, SKU); ``qty_received`` is the ERP's
    (0 on a new line, never written after)."""
    first = rows.iloc[0]
    md = sa.MetaData()
    h = sa.Table("po_header", md, autoload_with=conn)
    ln = sa.Table("po_line", md, autoload_with=conn)
    head = {
        "vendor_code": str(first["supplier"]),
        "wh_code": str(first["location"]),
        "po_date": first["order_date"],
        "promise_date": first["expected_receipt"],
        "status": str(first["status"]),
    }
    key = h.c.po_no == first["order_no"]
    if conn.execute(sa.select(h.c.po_no).where(key)).first() is None:
        conn.execute(h.insert().values(po_no=first["order_no"], **head))
    else:
        conn.execute(h.update().where(key).values(**head))
    for r in rows.itertuples(index=False):  # one order's lines: a handful
        where = sa.and_(ln.c.po_no == r.order_no, ln.c.mat_code == r.sku)
        if conn.execute(sa.select(ln.c.po_no).where(where)).first() is None:
            conn.execute(
                ln.insert().values(
                    po_no=r.order_no,
                    line_no=int(r.line_no),
                    mat_code=r.sku,
                    qty_ordered=float(r.quantity),
                    qty_received=0.0,
                )
            )
        else:
            conn.execute(ln.update().where(where).values(qty_ordered=float(r.quantity)))


def write_file(target: OrderTarget, rows: pd.DataFrame) -> Path:
    """One order revision as a file in the ``purchase_orders`` folder inside the target's folder (an
    importer of the transfer files never sees them); temporary file, then rename."""
    assert target.folder is not None
    first = rows.iloc[0]
    folder = Path(target.folder) / "purchase_orders"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{first['order_no']}-r{int(first['revision'])}.{target.format}"
    tmp = folder / f".{path.name}.tmp"
    frame = rows[list(FIELDS)]
    if target.format == "csv":
        frame.to_csv(tmp, index=False, encoding=target.encoding)
    else:
        frame.to_excel(tmp, index=False, engine="openpyxl")
    os.replace(tmp, path)
    return path


def purchase_targets(cfg: Config) -> dict[str, OrderTarget]:
    """The order targets that take purchase orders: file drops and the demo ERP (module doc)."""
    return {t.name: t for t in cfg.orders.targets if t.kind == "file" or t.profile == "demo"}


def _writer(cfg: Config, target: OrderTarget) -> Callable[[pd.DataFrame], str]:
    if target.kind == "file":
        return lambda rows: str(write_file(target, rows))
    url = target.resolve(cfg.source_url(), f"orders.targets[{target.name}]")
    engine = sa.create_engine(url)

    def write(rows: pd.DataFrame) -> str:
        with engine.begin() as conn:
            write_demo_erp(conn, rows)
        return f"po_header / po_line in {redact_url(url)}"

    return write


def export_pending(cfg: Config, reporting_url: str, run_date: date | None = None) -> dict[str, int]:
    """Export every purchase order revision a target has not acknowledged; record each attempt.
    Never raises for a target's failure (recorded, retried next time)."""
    from pipelines.reporting import engine_for

    targets = purchase_targets(cfg)
    counts = {"purchase_orders_exported": 0, "purchase_export_failed": 0}
    if not targets:
        return counts
    engine = engine_for(reporting_url).execution_options(tiaobo_write=True)
    with engine.begin() as conn:
        book = read_book(conn)
        todo = book[book["revision"] > book["exported_revision"]]
        done = {
            (r.order_no, r.target, int(r.revision))
            for r in conn.execute(
                sa.select(orderbook.EXPORTS.c.order_no, orderbook.EXPORTS.c.target, orderbook.EXPORTS.c.revision).where(
                    orderbook.EXPORTS.c.status == "ok", orderbook.EXPORTS.c.order_no.in_(list(todo["order_no"]))
                )
            )
        }
        lines = read_book_lines(conn, list(todo["order_no"])) if len(todo) else pd.DataFrame()
    if todo.empty:
        return counts
    rows = order_rows(lines, book)
    writers: dict[str, Callable[[pd.DataFrame], str]] = {}
    for o in todo.itertuples():
        for name, target in targets.items():
            if (o.order_no, name, int(o.revision)) in done:
                continue
            try:
                writers.setdefault(name, _writer(cfg, target))
                where = writers[name](rows[rows["order_no"] == o.order_no])
                ok, msg = True, f"revision {o.revision} written to {where}"
            except Exception as exc:  # recorded, retried at the next attempt
                url = target.resolve(cfg.source_url(), name) if target.kind == "sql" else ""
                text = f"{type(exc).__name__}: {exc}".splitlines()[0]
                ok, msg = False, scrub_secret(text, url) if url else text
                log.warning("purchase order %s: export to %s failed: %s", o.order_no, name, msg)
            with engine.begin() as conn:
                orderbook.record_export(conn, o.order_no, name, int(o.revision), ok, msg)
            counts["purchase_orders_exported" if ok else "purchase_export_failed"] += 1
            done |= {(o.order_no, name, int(o.revision))} if ok else set()
        if all((o.order_no, n, int(o.revision)) in done for n in targets):
            with engine.begin() as conn:
                values: dict[str, Any] = {"exported_revision": int(o.revision), "updated_at": _now()}
                if o.state == "approved":
                    values["state"] = "exported"
                conn.execute(sa.update(BOOK).where(BOOK.c.order_no == o.order_no).values(**values))
                orderbook._event(conn, o.order_no, "exported", f"revision {o.revision}", run_date)
    return counts


def purchase_cycle(
    cfg: Config, reporting_url: str, run_date: date, erp_orders: pd.DataFrame | None = None
) -> dict[str, int]:
    """Orders the ERP shows confirmed (``erp_orders``: the night's extracted ``purchase_orders``),
    decisions into purchase orders, then pending exports out (the feedback stage; ``tiaobo orders``
    without ``erp_orders``)."""
    from pipelines.reporting import engine_for

    with engine_for(reporting_url).execution_options(tiaobo_write=True).begin() as conn:
        counts = {"purchase_orders_confirmed": confirm(conn, erp_orders, run_date) if erp_orders is not None else 0}
        counts.update(sync_from_decisions(conn, latest_decisions(conn, run_date), run_date))
    counts.update(export_pending(cfg, reporting_url, run_date))
    return counts
