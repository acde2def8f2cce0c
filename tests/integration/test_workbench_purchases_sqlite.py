"""The workbench's purchase-proposal decisions (pipelines.workbench.purchases) on a SQLite reporting
database: every rule refused by name, nothing written on a refusal, versions and conflicts."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import reporting
from pipelines.workbench import purchases, users
from pipelines.workbench.purchases import PurchaseKey
from pipelines.workbench.service import Conflict, DecisionRefused
from tests.factories import WB_DATE, WB_RUN_ID, publish_workbench_night

pytestmark = pytest.mark.integration

LIMIT = 5000.0
A_S1 = PurchaseKey(WB_DATE, "A", "S1")  # 华东
B_S2 = PurchaseKey(WB_DATE, "B", "S2")  # 华南, no supplier recorded
X_S3 = PurchaseKey(WB_DATE, "X", "S3")  # 华北


@pytest.fixture
def url(workbench_url: str) -> str:
    """A copy of the published workbench night for each test (tests/conftest.py)."""
    return workbench_url


def _user(url: str, name: str) -> users.User:
    with reporting.engine_for(url).connect() as conn:
        u = users.get_user(conn, name)
    assert u is not None
    return u


def _decide(url, who, key, decision="approve", **kw):
    with reporting.engine_for(url).begin() as conn:
        return purchases.decide(conn, _user(url, who), key, decision, approval_limit=LIMIT, **kw)


def _rows(url) -> pd.DataFrame:
    with reporting.engine_for(url).connect() as conn:
        rows = conn.execute(sa.select(reporting.PURCHASE_DECISIONS).order_by("sku", "version")).all()
    return pd.DataFrame([r._asdict() for r in rows])


def test_approve_appends_a_row_and_a_change_is_the_next_version(url):
    d = _decide(url, "east", A_S1, expected_version=0, rec_run_id=WB_RUN_ID)
    assert (d.version, d.old_quantity, d.new_quantity, d.supplier) == (1, 24.0, 24.0, "华东日化")
    d2 = _decide(url, "east", A_S1, quantity=36, expected_version=1)
    assert d2.version == 2
    rows = _rows(url)
    assert rows["version"].tolist() == [1, 2] and rows["new_quantity"].tolist() == [24.0, 36.0]
    r = rows.iloc[0]
    assert (r.decided_by, r.actor_role, r.source, r.rec_run_id, r.location) == (
        "east",
        "planner",
        "workbench",
        WB_RUN_ID,
        "S1",
    )


def test_quantity_respects_moq_and_multiple(url):
    with pytest.raises(DecisionRefused, match="below the supplier's minimum order quantity 24") as e:
        _decide(url, "east", A_S1, quantity=12, expected_version=0)
    assert e.value.rule == "moq"
    with pytest.raises(DecisionRefused, match="not a multiple of the order multiple 12 \\(e.g. 24 or 36\\)") as e:
        _decide(url, "east", A_S1, quantity=30, expected_version=0)
    assert e.value.rule == "multiple"
    with pytest.raises(DecisionRefused, match="more than zero"):
        _decide(url, "east", A_S1, quantity=0, expected_version=0)
    assert _rows(url).empty  # nothing written on a refusal


def test_region_supplier_and_authority(url):
    with pytest.raises(DecisionRefused, match="outside your regions \\(华东\\): S2 is in 华南") as e:
        _decide(url, "east", B_S2, expected_version=0)
    assert e.value.rule == "region"
    with pytest.raises(DecisionRefused, match="no supplier is recorded") as e:
        _decide(url, "south", B_S2, expected_version=0)
    assert e.value.rule == "supplier"
    with pytest.raises(DecisionRefused, match="order value 5,760 .* above your approval limit 5,000") as e:
        _decide(url, "south", B_S2, quantity=12, supplier="南方电器", expected_version=0)
    assert e.value.rule == "authority"
    d = _decide(url, "south", B_S2, quantity=10, supplier=" 南方电器 ", expected_version=0)
    assert d.supplier == "南方电器"
    assert _decide(url, "boss", B_S2, quantity=12, expected_version=1).supplier == "南方电器"  # a manager may
    assert _rows(url)["supplier"].tolist() == ["南方电器", "南方电器"]


def test_reject_needs_a_reason_and_conflicts_name_who_decided(url):
    with pytest.raises(DecisionRefused, match="needs a reason code") as e:
        _decide(url, "root", X_S3, "reject", expected_version=0)
    assert e.value.rule == "reason"
    with pytest.raises(DecisionRefused, match="'other' needs a free text"):
        _decide(url, "root", X_S3, "reject", reason_code="other", expected_version=0)
    d = _decide(url, "root", X_S3, "reject", reason_code="already_ordered", expected_version=0)
    assert d.new_quantity == 0.0 and _rows(url).iloc[0].reason_code == "already_ordered"
    with pytest.raises(Conflict, match="already decided by root") as e:
        _decide(url, "boss", X_S3, expected_version=0)
    assert e.value.rule == "conflict"


def test_only_the_published_night_and_run_can_be_decided(url):
    with pytest.raises(DecisionRefused, match="no such proposal") as e:
        _decide(url, "east", PurchaseKey(WB_DATE, "B", "S1"), expected_version=0)
    assert e.value.rule == "not_found"
    with pytest.raises(DecisionRefused, match="re-published") as e:
        _decide(url, "east", A_S1, expected_version=0, rec_run_id="20261124-other")
    assert e.value.rule == "replaced"
    publish_workbench_night(url, WB_DATE + timedelta(days=1), "20261125-wbtest")
    with pytest.raises(DecisionRefused, match="obsolete") as e:
        _decide(url, "east", A_S1, expected_version=0)
    assert e.value.rule == "replaced"


def test_page_lists_the_users_regions_with_the_latest_decision(url):
    _decide(url, "east", A_S1, quantity=36, expected_version=0)
    with reporting.engine_for(url).connect() as conn:
        east = purchases.proposals_page(conn, _user(url, "east"), 1, 50)
        boss = purchases.proposals_page(conn, _user(url, "boss"), 1, 50, lang="en")
        found = purchases.proposals_page(conn, _user(url, "boss"), 1, 50, q="电饭")
    assert [(r["sku"], r["location"]) for r in east["rows"]] == [("A", "S1")]
    a = east["rows"][0]
    assert (a["decision"], a["new_quantity"], a["version"], a["item_name"]) == ("approve", 36.0, 1, "洗洁精 1kg")
    # every region for a manager: runs out before receipt first, then the largest cost
    assert [r["sku"] for r in boss["rows"]] == ["B", "A", "X"] and boss["rows"][0]["item_name"] == "Rice cooker"
    assert [r["sku"] for r in found["rows"]] == ["B"]
