"""The demo ERP's warehouse: one business day at a time, so that the demo can run night after night.

:func:`advance_day` closes business day ``d`` in the demo ERP and writes the stock snapshot dated
``d + 1`` (what the nightly run for ``d + 1`` reads). In order, vectorised over every SKU, location
and lot:

1. **Supplier receipts**: purchase orders due by ``d`` arrive (in transit → on hand; perishable
   items as a new lot expiring ``shelf_days`` later). The first day, the snapshot's own units in
   transit (from suppliers) are booked as due after the SKU-location's lead time. The ERP's open
   purchase orders (``po_header`` / ``po_line``, ``OPEN`` or ``PARTIAL``: the generated ones and
   those Tiaobo exports) promised by ``d`` arrive in full (the units still to come, on hand the same
   way), their lines received and the order ``CLOSED``; a ``CANCELLED`` order never arrives.
2. **Transfer requests** (``tr_request_header`` / ``tr_request_line``, written by Tiaobo's SQL
   export): an ``APPROVED`` request is shipped a seeded 0-2 days after its planned date, about 4% are
   cancelled instead and about 8% of lines short-shipped (50-90%, never more than the donor has):
   the donor's stock goes down (first expiry first out), the receiver's in-transit up, the request
   ``SHIPPED`` with the shipped quantities and date. A shipped request arrives after the lane's
   transit days, about 15% one day late: in transit → on hand, ``RECEIVED`` with the received
   quantities and date. Cancelled requests are ``CANCELLED`` with nothing shipped.
3. **Sales**: demand = a seeded Poisson draw around what the same location sold of the SKU 364
   days before (same weekday, same season); sold = min(demand, on hand - reserved), first expiry
   first out; written as one ``SALE`` document per location and day.
4. **The company's own replenishment** (min/max, as an ERP sets it): a SKU-location whose position
   (on hand + in transit - reserved) falls below its recent demand x (lead time + 3 days) orders up
   to (lead time + 14 days) of it, in whole packs, arriving after its lead time.
5. The snapshot dated ``d + 1``.

Everything is deterministic for a seed and a day. The simulation's own state (purchase orders due,
the seed) lives in ``sim_purchase`` and ``sim_state``, tables the extraction never reads.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

RECENT_DAYS = 28


def request_metadata() -> sa.MetaData:
    """The transfer-request tables (调拨申请单) and the simulation's own tables."""
    md = sa.MetaData()
    kw: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}
    sa.Table(
        "tr_request_header",
        md,
        sa.Column("req_no", sa.String(32), primary_key=True),
        sa.Column("req_date", sa.Date, nullable=False),
        sa.Column("from_wh", sa.String(20), nullable=False),
        sa.Column("to_wh", sa.String(20), nullable=False),
        sa.Column("plan_ship_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("ship_date", sa.Date),
        sa.Column("recv_date", sa.Date),
        **kw,
    )
    sa.Table(
        "tr_request_line",
        md,
        sa.Column("req_no", sa.String(32), primary_key=True),
        sa.Column("mat_code", sa.String(20), primary_key=True),
        sa.Column("line_no", sa.Integer, nullable=False),
        sa.Column("qty_req", sa.Numeric(14, 3, asdecimal=False), nullable=False),
        sa.Column("qty_shipped", sa.Numeric(14, 3, asdecimal=False)),
        sa.Column("qty_received", sa.Numeric(14, 3, asdecimal=False)),
        **kw,
    )
    sa.Table(
        "sim_purchase",
        md,
        sa.Column("wh_code", sa.String(20), primary_key=True),
        sa.Column("mat_code", sa.String(20), primary_key=True),
        sa.Column("due_date", sa.Date, primary_key=True),
        sa.Column("qty", sa.Numeric(14, 3, asdecimal=False), nullable=False),
        **kw,
    )
    sa.Table(
        "sim_state",
        md,
        sa.Column("key", sa.String(20), primary_key=True),
        sa.Column("value", sa.String(40), nullable=False),
        **kw,
    )
    return md


def ensure_tables(engine: sa.Engine, seed: int = 42) -> None:
    """Create the request and simulation tables when missing (the demo generator calls it)."""
    md = request_metadata()
    with engine.begin() as conn:
        md.create_all(conn, checkfirst=True)
        st = md.tables["sim_state"]
        if conn.execute(sa.select(st.c.value).where(st.c.key == "seed")).first() is None:
            conn.execute(st.insert().values(key="seed", value=str(seed)))


def _frame(conn: sa.Connection, sql: str, **params: Any) -> pd.DataFrame:
    """A query's rows; NUMERIC columns (``Decimal`` on PostgreSQL and MariaDB) as floats."""
    res = conn.execute(sa.text(sql), params)
    df = pd.DataFrame(res.fetchall(), columns=list(res.keys()))
    for col in df.columns:
        known = df[col].dropna()
        if df[col].dtype == object and len(known) and isinstance(known.iloc[0], Decimal):
            df[col] = df[col].astype("float64")
    return df


def _rng(seed: int, day: dt.date, salt: int) -> np.random.Generator:
    return np.random.default_rng([seed, day.toordinal(), salt])


def _fefo_take(bal: pd.DataFrame, want: pd.DataFrame, col: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Take ``want[col]`` units per (wh_code, mat_code) out of the lots in ``bal`` (first expiry
    first, lots without expiry last), never more than a lot's free units (on hand - reserved).
    Returns the updated balance and the units taken per (wh_code, mat_code)."""
    key = ["wh_code", "mat_code"]
    b = bal.copy()
    b["_free"] = np.maximum(b["qty_onhand"] - b["qty_reserved"], 0.0)
    b["_exp"] = pd.to_datetime(b["exp_date"]).fillna(pd.Timestamp.max)
    b = b.sort_values([*key, "_exp", "batch_no"], kind="mergesort")
    w = want.groupby(key, as_index=False)[col].sum()
    b = b.merge(w, on=key, how="left")
    b[col] = b[col].fillna(0.0)
    before = b.groupby(key, sort=False)["_free"].cumsum() - b["_free"]
    take = np.clip(b[col] - before, 0.0, b["_free"])
    b["qty_onhand"] = b["qty_onhand"] - take
    taken = b.assign(_t=take).groupby(key, as_index=False)["_t"].sum().rename(columns={"_t": col})
    return b.drop(columns=["_free", "_exp", col]), taken


def _add_units(bal: pd.DataFrame, add: pd.DataFrame, col: str, day: dt.date, shelf: pd.Series) -> pd.DataFrame:
    """Add ``add[col]`` units on hand per (wh_code, mat_code): perishable items as a new lot
    (``R<yymmdd>``, expiring after the shelf life), others onto the lot-less row."""
    if add.empty:
        return bal
    a = add[add[col] > 0].copy()
    if a.empty:
        return bal
    sd = a["mat_code"].map(shelf).fillna(-1).astype(int)
    perish = sd > 0
    a["batch_no"] = np.where(perish, f"R{day:%y%m%d}", "")
    a["exp_date"] = [day + dt.timedelta(days=int(s)) if p else None for s, p in zip(sd, perish, strict=True)]
    key = ["wh_code", "mat_code", "batch_no"]
    b = bal.merge(a[[*key, col, "exp_date"]].rename(columns={"exp_date": "_e"}), on=key, how="outer")
    b["exp_date"] = b["exp_date"].where(b["exp_date"].notna(), b["_e"])
    for c in ("qty_onhand", "qty_transit", "qty_reserved"):
        b[c] = b[c].fillna(0.0)
    b["qty_onhand"] = b["qty_onhand"] + b[col].fillna(0.0)
    return b.drop(columns=[col, "_e"])


def _move_transit(bal: pd.DataFrame, delta: pd.DataFrame, col: str) -> pd.DataFrame:
    """Add ``delta[col]`` (may be negative) to the in-transit units of each (wh_code, mat_code), on its
    first row (a lot-less row is created when the location has none)."""
    if delta.empty:
        return bal
    key = ["wh_code", "mat_code"]
    d = delta.groupby(key, as_index=False)[col].sum()
    b = bal.sort_values([*key, "batch_no"], kind="mergesort").reset_index(drop=True)
    first = ~b.duplicated(key)
    missing = d.merge(b.loc[first, key], on=key, how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"]
    if len(missing):
        extra = missing[key].assign(batch_no="", exp_date=None, qty_onhand=0.0, qty_transit=0.0, qty_reserved=0.0)
        b = pd.concat([b, extra], ignore_index=True).sort_values([*key, "batch_no"], kind="mergesort")
        b = b.reset_index(drop=True)
        first = ~b.duplicated(key)
    b = b.merge(d, on=key, how="left")
    b[col] = b[col].fillna(0.0)
    b["qty_transit"] = np.maximum(b["qty_transit"] + np.where(first, b[col], 0.0), 0.0)
    return b.drop(columns=col)


class Warehouse:
    """One day of the demo ERP (module doc). Built on an open connection inside one transaction."""

    def __init__(self, conn: sa.Connection, day: dt.date) -> None:
        self.conn = conn
        self.day = day
        md = request_metadata()
        self.t = md.tables
        st = self.t["sim_state"]
        self.seed = int(conn.execute(sa.select(st.c.value).where(st.c.key == "seed")).scalar() or 42)
        self.items = _frame(conn, "select mat_code, list_price, pack_qty, shelf_days from md_material")
        self.shelf = self.items.set_index("mat_code")["shelf_days"]
        self.routes = _frame(conn, "select from_wh, to_wh, lead_days from tr_route")
        self.lead = _frame(conn, "select wh_code, mat_code, lt_avg_days from md_replenish")

    def balance(self, day: dt.date) -> pd.DataFrame:
        return _frame(
            self.conn,
            "select wh_code, mat_code, batch_no, exp_date, qty_onhand, qty_transit, qty_reserved"
            " from inv_balance where snap_date = :d",
            d=day,
        )

    def _lead_days(self, keys: pd.DataFrame) -> np.ndarray:
        m = keys.merge(self.lead, on=["wh_code", "mat_code"], how="left")["lt_avg_days"]
        return np.ceil(m.fillna(7.0).to_numpy(float)).astype(int)

    def supplier_receipts(self, bal: pd.DataFrame) -> pd.DataFrame:
        sp = self.t["sim_purchase"]
        st = self.t["sim_state"]
        started = self.conn.execute(sa.select(st.c.value).where(st.c.key == "started")).first()
        if started is None:  # the first snapshot's own supplier transit: due after the lead time
            tr = bal.groupby(["wh_code", "mat_code"], as_index=False)["qty_transit"].sum()
            tr = tr[tr["qty_transit"] > 0]
            due = [self.day + dt.timedelta(days=int(x)) for x in self._lead_days(tr)]
            rows = [
                {"wh_code": r.wh_code, "mat_code": r.mat_code, "due_date": d, "qty": float(r.qty_transit)}
                for r, d in zip(tr.itertuples(), due, strict=True)
            ]
            if rows:
                self.conn.execute(sp.insert(), rows)
            self.conn.execute(st.insert().values(key="started", value=self.day.isoformat()))
        due = _frame(
            self.conn,
            "select wh_code, mat_code, sum(qty) as qty from sim_purchase where due_date <= :d group by wh_code, mat_code",
            d=self.day,
        )
        self.conn.execute(sa.delete(sp).where(sp.c.due_date <= self.day))
        bal = _move_transit(bal, due.assign(qty=-due["qty"]), "qty")
        return _add_units(bal, due, "qty", self.day, self.shelf)

    def purchase_order_receipts(self, bal: pd.DataFrame) -> pd.DataFrame:
        """Open ERP purchase orders promised by today arrive in full (module doc, step 1)."""
        due = _frame(
            self.conn,
            "select h.po_no, h.wh_code, l.mat_code, l.qty_ordered - l.qty_received as qty from po_line l"
            " join po_header h on h.po_no = l.po_no where h.status in ('OPEN', 'PARTIAL')"
            " and h.promise_date <= :d and l.qty_ordered > l.qty_received",
            d=self.day,
        )
        arrived = "select po_no from po_header where status in ('OPEN', 'PARTIAL') and promise_date <= :d"
        self.conn.execute(
            sa.text(f"update po_line set qty_received = qty_ordered where po_no in ({arrived})"), {"d": self.day}
        )
        self.conn.execute(
            sa.text(
                "update po_header set status = 'CLOSED' where status in ('OPEN', 'PARTIAL') and promise_date <= :d"
            ),
            {"d": self.day},
        )
        if due.empty:
            return bal
        return _add_units(
            bal, due.groupby(["wh_code", "mat_code"], as_index=False)["qty"].sum(), "qty", self.day, self.shelf
        )

    def transfers(self, bal: pd.DataFrame) -> pd.DataFrame:
        h, ln = self.t["tr_request_header"], self.t["tr_request_line"]
        reqs = _frame(
            self.conn,
            "select req_no, from_wh, to_wh, plan_ship_date, status, ship_date from tr_request_header"
            " where status in ('APPROVED', 'SHIPPED')",
        )
        if reqs.empty:
            return bal
        lines = _frame(self.conn, "select req_no, mat_code, qty_req, qty_shipped from tr_request_line")
        for r in reqs.sort_values("req_no").itertuples():
            own = np.random.default_rng([self.seed, int(r.req_no.encode().hex(), 16) % (2**63)])
            delay, cancel, late = int(own.integers(0, 3)), own.random() < 0.04, int(own.random() < 0.15)
            short = own.random(64)
            if r.status == "APPROVED" and pd.Timestamp(r.plan_ship_date).date() + dt.timedelta(days=delay) <= self.day:
                if cancel:
                    self.conn.execute(h.update().where(h.c.req_no == r.req_no).values(status="CANCELLED"))
                    continue
                rl = lines[(lines["req_no"] == r.req_no) & (lines["qty_req"] > 0)].reset_index(drop=True)
                frac = np.where(short[: len(rl)] < 0.08, own.uniform(0.5, 0.9, len(rl)), 1.0)
                want = rl.assign(wh_code=r.from_wh, q=np.floor(rl["qty_req"].to_numpy(float) * frac))
                bal, taken = _fefo_take(bal, want[["wh_code", "mat_code", "q"]], "q")
                mine = taken[taken["wh_code"] == r.from_wh][["mat_code", "q"]]
                got = want[["mat_code"]].merge(mine, on="mat_code", how="left")["q"].fillna(0.0)
                for m, q in zip(rl["mat_code"], got, strict=True):
                    self.conn.execute(
                        ln.update().where(ln.c.req_no == r.req_no, ln.c.mat_code == m).values(qty_shipped=float(q))
                    )
                bal = _move_transit(bal, pd.DataFrame({"wh_code": r.to_wh, "mat_code": rl["mat_code"], "q": got}), "q")
                self.conn.execute(h.update().where(h.c.req_no == r.req_no).values(status="SHIPPED", ship_date=self.day))
            elif r.status == "SHIPPED":
                days = self.routes[(self.routes["from_wh"] == r.from_wh) & (self.routes["to_wh"] == r.to_wh)][
                    "lead_days"
                ]
                transit = int(days.iloc[0]) if len(days) else 1
                if pd.Timestamp(r.ship_date).date() + dt.timedelta(days=transit + late) <= self.day:
                    rl = lines[lines["req_no"] == r.req_no]
                    q = rl["qty_shipped"].fillna(0.0)
                    arrive = pd.DataFrame({"wh_code": r.to_wh, "mat_code": rl["mat_code"], "q": q})
                    bal = _move_transit(bal, arrive.assign(q=-arrive["q"]), "q")
                    bal = _add_units(bal, arrive, "q", self.day, self.shelf)
                    for m, qq in zip(rl["mat_code"], q, strict=True):
                        self.conn.execute(
                            ln.update()
                            .where(ln.c.req_no == r.req_no, ln.c.mat_code == m)
                            .values(qty_received=float(qq))
                        )
                    self.conn.execute(
                        h.update().where(h.c.req_no == r.req_no).values(status="RECEIVED", recv_date=self.day)
                    )
        return bal

    def demand(self) -> pd.DataFrame:
        lag = self.day - dt.timedelta(days=364)
        past = _frame(
            self.conn,
            "select h.wh_code, l.mat_code, sum(l.qty) as qty from so_header h join so_line l on l.doc_no = h.doc_no"
            " where h.doc_date = :d and h.doc_type = 'SALE' and h.status = 'POSTED' group by h.wh_code, l.mat_code",
            d=lag,
        )
        if past.empty:
            return past.assign(demand=0.0)
        rng = _rng(self.seed, self.day, 11)
        past = past.sort_values(["wh_code", "mat_code"]).reset_index(drop=True)
        return past.assign(demand=rng.poisson(np.maximum(past["qty"].to_numpy(float), 0.0)).astype(float))

    def sales(self, bal: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        dem = self.demand()
        bal, sold = _fefo_take(bal, dem[["wh_code", "mat_code", "demand"]], "demand")
        sold = sold[sold["demand"] > 0].rename(columns={"demand": "qty"})
        price = self.items.set_index("mat_code")["list_price"]
        sold = sold.assign(price=sold["mat_code"].map(price).astype(float))
        return bal, sold

    def write_sales(self, sold: pd.DataFrame) -> None:
        if sold.empty:
            return
        sold = sold.sort_values(["wh_code", "mat_code"]).reset_index(drop=True)
        doc = "SD" + self.day.strftime("%y%m%d") + "-" + sold["wh_code"].astype(str)
        heads = pd.DataFrame({"doc_no": doc, "wh_code": sold["wh_code"]}).drop_duplicates("doc_no")
        stamp = dt.datetime.combine(self.day, dt.time(20, 0))
        self.conn.execute(
            sa.text(
                "insert into so_header (doc_no, wh_code, doc_date, doc_type, status, remark, updated_at)"
                " values (:doc_no, :wh_code, :d, 'SALE', 'POSTED', 'demo warehouse', :u)"
            ),
            [{"doc_no": r.doc_no, "wh_code": r.wh_code, "d": self.day, "u": stamp} for r in heads.itertuples()],
        )
        line_no = sold.groupby("wh_code").cumcount() + 1
        self.conn.execute(
            sa.text(
                "insert into so_line (doc_no, line_no, mat_code, qty, price, amount)"
                " values (:doc_no, :line_no, :mat_code, :qty, :price, :amount)"
            ),
            [
                {
                    "doc_no": d,
                    "line_no": int(n),
                    "mat_code": r.mat_code,
                    "qty": float(r.qty),
                    "price": float(r.price),
                    "amount": round(float(r.qty * r.price), 2),
                }
                for d, n, r in zip(doc, line_no, sold.itertuples(), strict=True)
            ],
        )

    def replenish(self, bal: pd.DataFrame) -> pd.DataFrame:
        start = self.day - dt.timedelta(days=RECENT_DAYS)
        rate = _frame(
            self.conn,
            "select h.wh_code, l.mat_code, sum(l.qty) as qty from so_header h join so_line l on l.doc_no = h.doc_no"
            " where h.doc_date > :s and h.doc_date <= :d and h.doc_type = 'SALE' and h.status = 'POSTED'"
            " group by h.wh_code, l.mat_code",
            s=start,
            d=self.day,
        )
        if rate.empty:
            return bal
        rate["daily"] = rate["qty"].astype(float) / RECENT_DAYS
        pos = (
            bal.assign(p=bal["qty_onhand"] + bal["qty_transit"] - bal["qty_reserved"])
            .groupby(["wh_code", "mat_code"], as_index=False)["p"]
            .sum()
        )
        r = rate.merge(pos, on=["wh_code", "mat_code"], how="left").fillna({"p": 0.0})
        lt = self._lead_days(r)
        pack = r["mat_code"].map(self.items.set_index("mat_code")["pack_qty"]).fillna(1).to_numpy(float)
        low = r["p"].to_numpy(float) < r["daily"].to_numpy(float) * (lt + 3)
        qty = np.ceil(np.maximum(r["daily"].to_numpy(float) * (lt + 14) - r["p"].to_numpy(float), 0.0) / pack) * pack
        order = r[low & (qty > 0)].assign(qty=qty[low & (qty > 0)], lt=lt[low & (qty > 0)])
        if order.empty:
            return bal
        rows = [
            {
                "wh_code": o.wh_code,
                "mat_code": o.mat_code,
                "due_date": self.day + dt.timedelta(days=int(o.lt)),
                "qty": float(o.qty),
            }
            for o in order.itertuples()
        ]
        sp = self.t["sim_purchase"]
        for row in rows:  # a second order due the same day adds to the first
            where = sa.and_(
                sp.c.wh_code == row["wh_code"], sp.c.mat_code == row["mat_code"], sp.c.due_date == row["due_date"]
            )
            prior = self.conn.execute(sa.select(sp.c.qty).where(where)).scalar()
            if prior is None:
                self.conn.execute(sp.insert().values(**row))
            else:
                self.conn.execute(sp.update().where(where).values(qty=float(prior) + row["qty"]))
        return _move_transit(bal, order[["wh_code", "mat_code", "qty"]], "qty")

    def write_snapshot(self, bal: pd.DataFrame) -> int:
        snap = self.day + dt.timedelta(days=1)
        ib = sa.table(
            "inv_balance",
            *[
                sa.column(c)
                for c in (
                    "snap_date",
                    "wh_code",
                    "mat_code",
                    "batch_no",
                    "exp_date",
                    "qty_onhand",
                    "qty_transit",
                    "qty_reserved",
                )
            ],
        )
        self.conn.execute(sa.text("delete from inv_balance where snap_date = :d"), {"d": snap})
        keep = bal[(bal["qty_onhand"] > 0) | (bal["qty_transit"] > 0) | (bal["batch_no"] == "")]
        rows = [
            {
                "snap_date": snap,
                "wh_code": r.wh_code,
                "mat_code": r.mat_code,
                "batch_no": r.batch_no,
                "exp_date": None if pd.isna(r.exp_date) else pd.Timestamp(r.exp_date).date(),
                "qty_onhand": float(r.qty_onhand),
                "qty_transit": float(r.qty_transit),
                "qty_reserved": float(min(r.qty_reserved, r.qty_onhand)),
            }
            for r in keep.itertuples()
        ]
        if rows:
            self.conn.execute(ib.insert(), rows)
        return len(rows)


def advance_day(url: str, day: dt.date) -> dict[str, Any]:
    """Close business day ``day`` in the demo ERP at ``url`` and write the snapshot dated ``day + 1``
    (module doc). One transaction: a failure leaves the ERP as it was. Returns what happened."""
    engine = sa.create_engine(url)
    try:
        ensure_tables(engine)
        with engine.begin() as conn:
            wh = Warehouse(conn, day)
            bal = wh.balance(day)
            if bal.empty:
                raise ValueError(f"demo warehouse: no stock snapshot dated {day} to start the day from")
            bal = wh.supplier_receipts(bal)
            bal = wh.purchase_order_receipts(bal)
            bal = wh.transfers(bal)
            bal, sold = wh.sales(bal)
            wh.write_sales(sold)
            bal = wh.replenish(bal)
            rows = wh.write_snapshot(bal)
            status = _frame(conn, "select status, count(*) as n from tr_request_header group by status")
    finally:
        engine.dispose()
    return {
        "day": day.isoformat(),
        "units_sold": float(sold["qty"].sum()) if len(sold) else 0.0,
        "snapshot_rows": rows,
        "requests": dict(zip(status["status"], status["n"].astype(int), strict=True)),
    }
