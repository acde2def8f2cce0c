"""Approved purchase proposals become purchase orders in the ERP (pipelines.purchase_orders): the order
book on a SQLite reporting database, the demo ERP's po_header / po_line on SQLite and a GBK file
drop as targets; changes, cancellations, idempotent re-runs, a failing target retried, the ERP's
confirmation, and what the night counts as on order before the ERP shows it."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import purchase_orders, reporting
from pipelines.config import load_config
from pipelines.demo.source import generate
from pipelines.workbench import purchases, users
from pipelines.workbench.purchases import PurchaseKey
from tests.factories import WB_DATE, add_workbench_users, publish_workbench_night

pytestmark = pytest.mark.integration

A_S1 = PurchaseKey(WB_DATE, "A", "S1")  # 华东日化, MOQ 24, multiple 12
B_S2 = PurchaseKey(WB_DATE, "B", "S2")  # no supplier recorded


@pytest.fixture
def setup(tmp_path):
    rep = f"sqlite:///{tmp_path / 'reporting.sqlite'}"
    erp = f"sqlite:///{tmp_path / 'erp.sqlite'}"
    publish_workbench_night(rep)
    add_workbench_users(rep)
    generate(erp, seed=5, n_skus=10, n_locations=3, days=60)
    cfg = load_config(
        overrides={
            "source": {"url": erp},
            "reporting": {"url": rep},
            "orders": {
                "targets": [
                    {"name": "erp", "kind": "sql", "profile": "demo"},
                    {"name": "drop", "kind": "file", "folder": str(tmp_path / "out"), "encoding": "gbk"},
                ]
            },
        }
    )
    yield cfg, rep, erp, tmp_path
    reporting.dispose_engine(rep)


def _decide(url, who, key, decision="approve", **kw):
    with reporting.engine_for(url).begin() as conn:
        user = users.get_user(conn, who)
        assert user is not None
        return purchases.decide(conn, user, key, decision, **kw)


def _erp(url: str) -> pd.DataFrame:
    eng = sa.create_engine(url)
    try:
        with eng.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "select h.po_no, h.vendor_code, h.wh_code, h.status, h.promise_date, l.line_no, l.mat_code,"
                    " l.qty_ordered, l.qty_received from po_header h join po_line l on l.po_no = h.po_no"
                    " where h.po_no like 'PT%' order by h.po_no, l.line_no"
                )
            ).all()
    finally:
        eng.dispose()
    return pd.DataFrame([tuple(r) for r in rows], columns=list(rows[0]._fields) if rows else None)


def _book(url: str) -> pd.DataFrame:
    with reporting.engine_for(url).connect() as conn:
        return purchase_orders.read_book(conn)


def test_approvals_become_one_order_per_supplier_and_location_in_the_erp_and_a_file(setup):
    cfg, rep, erp, tmp = setup
    _decide(rep, "east", A_S1, quantity=36, expected_version=0)
    _decide(rep, "south", B_S2, supplier="南方电器", expected_version=0)
    counts = purchase_orders.purchase_cycle(cfg, rep, WB_DATE)
    assert counts["purchase_orders_created"] == 2 and counts["purchase_orders_exported"] == 4  # 2 orders x 2 targets
    book = _book(rep).set_index("location")
    a_no = purchase_orders.order_number(WB_DATE, "华东日化", "S1")
    assert book.loc["S1", "order_no"] == a_no and a_no.startswith("PT20261124-")
    assert set(book["state"]) == {"exported"} and set(book["revision"]) == {1}
    po = _erp(erp).sort_values("wh_code")
    assert po[
        ["po_no", "vendor_code", "wh_code", "status", "mat_code", "qty_ordered", "qty_received"]
    ].values.tolist() == [
        [a_no, "华东日化", "S1", "OPEN", "A", 36.0, 0.0],
        [book.loc["S2", "order_no"], "南方电器", "S2", "OPEN", "B", 10.0, 0.0],
    ]
    assert str(po.loc[po["wh_code"] == "S1", "promise_date"].iloc[0]).startswith(str(WB_DATE + timedelta(days=5)))
    files = sorted(p.name for p in (tmp / "out" / "purchase_orders").iterdir())
    assert files == sorted(f"{n}-r1.csv" for n in book["order_no"])
    drop = pd.read_csv(tmp / "out" / "purchase_orders" / f"{a_no}-r1.csv", encoding="gbk")
    assert drop[["supplier", "location", "sku", "quantity", "action", "status"]].values.tolist() == [
        ["华东日化", "S1", "A", 36.0, "new", "OPEN"]
    ]
    # the same cycle again changes nothing and exports nothing
    again = purchase_orders.purchase_cycle(cfg, rep, WB_DATE)
    assert not any(again.values())
    assert len(_erp(erp)) == 2


def test_a_change_and_a_rejection_are_exported_as_revisions(setup):
    cfg, rep, erp, tmp = setup
    _decide(rep, "east", A_S1, expected_version=0)
    _decide(rep, "south", B_S2, supplier="南方电器", expected_version=0)
    purchase_orders.purchase_cycle(cfg, rep, WB_DATE)
    _decide(rep, "east", A_S1, quantity=48, expected_version=1)
    _decide(rep, "south", B_S2, "reject", reason_code="not_needed", expected_version=1)
    counts = purchase_orders.purchase_cycle(cfg, rep, WB_DATE)
    assert (counts["purchase_orders_changed"], counts["purchase_orders_cancelled"]) == (1, 1)
    book = _book(rep).set_index("location")
    assert book.loc["S1", ["state", "revision"]].tolist() == ["exported", 2]
    assert book.loc["S2", ["state", "revision"]].tolist() == ["cancelled", 2]
    po = _erp(erp).set_index("wh_code")
    assert po.loc["S1", "qty_ordered"] == 48.0 and po.loc["S1", "status"] == "OPEN"
    assert po.loc["S2", "status"] == "CANCELLED"
    changed = pd.read_csv(tmp / "out" / "purchase_orders" / f"{book.loc['S1', 'order_no']}-r2.csv", encoding="gbk")
    assert changed[["action", "quantity"]].values.tolist() == [["change", 48.0]]
    cancel = pd.read_csv(tmp / "out" / "purchase_orders" / f"{book.loc['S2', 'order_no']}-r2.csv", encoding="gbk")
    assert cancel[["action", "status", "quantity"]].values.tolist() == [["cancel", "CANCELLED", 0.0]]


def test_a_failing_target_is_retried_and_nothing_is_lost(setup, monkeypatch):
    cfg, rep, erp, tmp = setup
    _decide(rep, "east", A_S1, expected_version=0)
    broken = cfg.model_copy(
        update={
            "orders": cfg.orders.model_copy(
                update={
                    "targets": [cfg.orders.targets[0].model_copy(update={"url": f"sqlite:///{tmp}/no/such/dir/x.db"})]
                }
            )
        }
    )
    first = purchase_orders.purchase_cycle(broken, rep, WB_DATE)
    assert first["purchase_orders_created"] == 1 and first["purchase_export_failed"] == 1
    assert _book(rep)["state"].tolist() == ["approved"]  # the order is kept, not exported
    with reporting.engine_for(rep).connect() as conn:
        assert purchase_orders.open_lines(conn, WB_DATE).empty  # the night's own order: not for its re-run
        pending = purchase_orders.open_lines(conn, WB_DATE + timedelta(days=1))
    assert pending[["sku", "location", "open_qty"]].values.tolist() == [["A", "S1", 24.0]]  # counted as on order
    second = purchase_orders.purchase_cycle(cfg, rep, WB_DATE)  # the target works again
    assert second["purchase_orders_exported"] == 2 and _book(rep)["state"].tolist() == ["exported"]


def test_the_erps_open_orders_confirm_it_and_then_the_erp_counts_it(setup):
    cfg, rep, erp, tmp = setup
    _decide(rep, "east", A_S1, expected_version=0)
    purchase_orders.purchase_cycle(cfg, rep, WB_DATE)
    no = _book(rep)["order_no"].iloc[0]
    with reporting.engine_for(rep).connect() as conn:
        assert len(purchase_orders.open_lines(conn, WB_DATE + timedelta(days=1))) == 1
        assert purchase_orders.open_lines(conn, WB_DATE + timedelta(days=6)).empty  # past its expected receipt
    # the next night's extract: the demo profile's query over the ERP shows the order open
    from pipelines.extract import load_profile, profile_query

    spec = load_profile("demo", cfg)
    q = profile_query(spec, "purchase_orders", cfg)
    eng = sa.create_engine(erp)
    with eng.connect() as conn:
        res = conn.execute(q.stmt)
        extracted = pd.DataFrame(res.fetchall(), columns=list(res.keys()))
    eng.dispose()
    mine = extracted[extracted["po_no"] == no]
    assert mine[["sku", "location", "open_qty"]].values.tolist() == [["A", "S1", 24.0]]
    counts = purchase_orders.purchase_cycle(cfg, rep, WB_DATE + timedelta(days=1), extracted)
    assert counts["purchase_orders_confirmed"] == 1 and _book(rep)["state"].tolist() == ["confirmed"]
    with reporting.engine_for(rep).connect() as conn:
        assert purchase_orders.open_lines(conn, WB_DATE + timedelta(days=1)).empty  # the ERP's row counts now
    # a later decision does not touch an order the ERP owns
    _decide(rep, "east", A_S1, quantity=48, expected_version=1)
    assert not any(purchase_orders.purchase_cycle(cfg, rep, WB_DATE).values())


def test_order_number_is_stable_and_names_night_supplier_and_location():
    a = purchase_orders.order_number(WB_DATE, "华东日化", "S1")
    assert a == purchase_orders.order_number(pd.Timestamp(WB_DATE), "华东日化", "S1")
    assert a != purchase_orders.order_number(WB_DATE, "华东日化", "S2")
    assert a != purchase_orders.order_number(WB_DATE + timedelta(days=1), "华东日化", "S1")


def test_auto_tier_proposals_are_approved_with_the_publish_and_ordered(setup):
    from pipelines import decision_store

    cfg, rep, erp, tmp = setup
    props = reporting.read_table(rep, "purchase_proposals", WB_DATE)
    props.loc[props["sku"] == "A", "approval_tier"] = "auto"
    with reporting.engine_for(rep).begin() as conn:
        assert decision_store.approve_auto_purchases(conn, props, WB_DATE, "20261124-wbtest") == 1
        assert decision_store.approve_auto_purchases(conn, props, WB_DATE, "20261124-wbtest") == 0  # idempotent
    with reporting.engine_for(rep).connect() as conn:
        rows = conn.execute(sa.select(reporting.PURCHASE_DECISIONS)).all()
    assert [(r.sku, r.decided_by, r.actor_role, r.supplier, r.version) for r in rows] == [
        ("A", "system", "system", "华东日化", 1)
    ]
    # a re-run of the date (another run id) approves again as the next version; a person's decision stays
    with reporting.engine_for(rep).begin() as conn:
        assert decision_store.approve_auto_purchases(conn, props, WB_DATE, "20261124-rerun") == 1
    counts = purchase_orders.purchase_cycle(cfg, rep, WB_DATE)
    assert counts["purchase_orders_created"] == 1 and _erp(erp)["mat_code"].tolist() == ["A"]
