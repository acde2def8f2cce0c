"""The workbench's decision rules (pipelines.workbench.service) on a SQLite reporting database."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import decisions, reporting
from pipelines.workbench import service, users
from pipelines.workbench.service import Conflict, DecisionRefused, RecKey
from tests.factories import WB_DATE, WB_RUN_ID, publish_workbench_night

pytestmark = pytest.mark.integration

LIMIT = 5000.0
A_S1 = RecKey(WB_DATE, "A", "DC1", "S1")
B_S1 = RecKey(WB_DATE, "B", "DC1", "S1")
A_S2 = RecKey(WB_DATE, "A", "DC1", "S2")
X_S3 = RecKey(WB_DATE, "X", "S2", "S3")


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
        return service.decide(conn, _user(url, who), key, decision, approval_limit=LIMIT, **kw)


def _rows(url) -> pd.DataFrame:
    with reporting.engine_for(url).connect() as conn:
        rows = conn.execute(sa.select(reporting.TRANSFER_DECISIONS).order_by("sku", "to_location", "version")).all()
    return pd.DataFrame([r._asdict() for r in rows])


def test_approve_appends_a_row_with_who_role_source_run_and_version(url):
    d = _decide(url, "east", A_S1, expected_version=0, rec_run_id=WB_RUN_ID)
    assert (d.version, d.old_quantity, d.new_quantity) == (1, 12.0, 12.0)
    rows = _rows(url)
    assert len(rows) == 1
    r = rows.iloc[0]
    assert (r.decided_by, r.actor_role, r.source, r.rec_run_id, r.decision, r.version) == (
        "east",
        "planner",
        "workbench",
        WB_RUN_ID,
        "approve",
        1,
    )
    # a changed quantity is the next version; the first row stays as it was
    d2 = _decide(url, "east", A_S1, quantity=18, expected_version=1)
    assert d2.version == 2
    rows = _rows(url)
    assert rows["version"].tolist() == [1, 2] and rows["new_quantity"].tolist() == [12.0, 18.0]


def test_reject_needs_a_reason_and_other_needs_text(url):
    with pytest.raises(DecisionRefused, match="needs a reason code") as e:
        _decide(url, "east", A_S1, "reject", expected_version=0)
    assert e.value.rule == "reason"
    with pytest.raises(DecisionRefused, match="'other' needs a free text"):
        _decide(url, "east", A_S1, "reject", reason_code="other", reason_text="  ", expected_version=0)
    d = _decide(url, "east", A_S1, "reject", reason_code="donor_needs_it", expected_version=0)
    assert d.new_quantity == 0.0
    assert _rows(url).iloc[0].reason_code == "donor_needs_it"


def test_quantity_whole_packs_and_never_more_than_the_donor_gives(url):
    with pytest.raises(DecisionRefused, match="not whole packs of 6 \\(e.g. 12 or 18\\)") as e:
        _decide(url, "east", A_S1, quantity=13, expected_version=0)
    assert e.value.rule == "packs"
    with pytest.raises(DecisionRefused, match="at most 42 \\(recommended 12 \\+ its excess 30") as e:
        _decide(url, "east", A_S1, quantity=48, expected_version=0)
    assert e.value.rule == "donor"
    with pytest.raises(DecisionRefused, match="more than zero"):
        _decide(url, "east", A_S1, quantity=0, expected_version=0)
    assert _decide(url, "east", A_S1, quantity=42, expected_version=0).new_quantity == 42
    assert _rows(url)["new_quantity"].tolist() == [42.0]


def test_authority_limit_planner_refused_manager_approves(url):
    with pytest.raises(DecisionRefused, match="transfer value 10,000 .* above your approval limit 5,000") as e:
        _decide(url, "east", B_S1, expected_version=0)
    assert e.value.rule == "authority"
    # a smaller quantity within the limit is the planner's to approve
    assert _decide(url, "east", B_S1, quantity=10, expected_version=0).new_quantity == 10
    d = _decide(url, "boss", B_S1, quantity=20, expected_version=1)
    assert d.version == 2 and _rows(url).query("sku == 'B'")["decided_by"].tolist() == ["east", "boss"]


def test_region_either_end_for_planners_all_for_managers(url):
    # DC1 (华东) -> S2 (华南): both planners see it; S2 (华南) -> S3 (华北): not east
    assert _decide(url, "south", A_S2, expected_version=0).version == 1
    with pytest.raises(
        DecisionRefused, match="outside your regions \\(华东\\): donor S2 is in 华南, receiver S3 in 华北"
    ) as e:
        _decide(url, "east", X_S3, expected_version=0)
    assert e.value.rule == "region"
    assert _decide(url, "root", X_S3, expected_version=0).version == 1


def test_lane_minimum_of_the_shipment_as_a_whole(url):
    # DC1->S1 carries A 12 + B 20 = 32 units, minimum 10. Reject B (32 -> 12), then cut A to 6 (< 10)
    _decide(url, "boss", B_S1, "reject", reason_code="too_costly", expected_version=0)
    with pytest.raises(DecisionRefused, match="would carry 6 units, below the lane minimum of 10") as e:
        _decide(url, "east", A_S1, quantity=6, expected_version=0)
    assert e.value.rule == "lane_minimum"
    # rejecting the last line is allowed (nothing ships); a rejection below the minimum only warns
    _decide(url, "east", A_S1, quantity=12, expected_version=0)
    d = _decide(url, "boss", B_S1, quantity=2, expected_version=1)  # 12 + 2 = 14: fine
    assert d.warnings == []
    d = _decide(url, "east", A_S1, "reject", reason_code="data_wrong", expected_version=1)
    assert d.warnings and "would carry 2 units, below the lane minimum of 10" in d.warnings[0]


def test_version_conflict_names_who_and_when_and_overwrites_nothing(url):
    _decide(url, "east", A_S1, expected_version=0)
    with pytest.raises(Conflict, match="already decided by east at .* UTC \\(approve, version 1\\)") as e:
        _decide(url, "boss", A_S1, "reject", reason_code="other", reason_text="no", expected_version=0)
    assert e.value.decided_by == "east" and e.value.rule == "conflict"
    assert _rows(url)["decided_by"].tolist() == ["east"]


def test_two_writers_of_the_same_next_version_one_wins_by_the_unique_constraint(url):
    # both load version 0; the second insert of version 1 is turned away by the constraint
    east, boss = _user(url, "east"), _user(url, "boss")
    with reporting.engine_for(url).begin() as conn:
        recs = service.load_recs(conn, [A_S1])
        plan = service._Plan(recs[A_S1], "approve", 12.0, None, None)
        done, lost = service._insert(conn, east, [plan], "workbench", pd.Timestamp.now(tz="UTC").to_pydatetime())
        assert len(done) == 1 and lost == []
        plan2 = service._Plan(recs[A_S1], "approve", 6.0, None, None)
        done2, lost2 = service._insert(conn, boss, [plan2], "workbench", pd.Timestamp.now(tz="UTC").to_pydatetime())
        assert done2 == [] and [r.key for r in lost2] == [A_S1]
        (c,) = service._conflicts(conn, lost2)
    assert isinstance(c, Conflict) and c.decided_by == "east"
    assert _rows(url)["new_quantity"].tolist() == [12.0]


def test_replaced_by_a_newer_run_or_a_re_run_is_refused(url):
    with pytest.raises(DecisionRefused, match="was re-published \\(run 20261124-wbtest, you saw run old\\)") as e:
        _decide(url, "east", A_S1, expected_version=0, rec_run_id="old")
    assert e.value.rule == "replaced"
    d2 = WB_DATE + timedelta(days=1)
    publish_workbench_night(url, d2, "20261125-wbtest")
    with pytest.raises(DecisionRefused, match=f"replaced by the recommendation of run {d2} \\(12 units\\)"):
        _decide(url, "east", A_S1, expected_version=0)
    assert _decide(url, "east", RecKey(d2, "A", "DC1", "S1"), expected_version=0).version == 1
    with pytest.raises(DecisionRefused, match="no such recommendation") as e:
        _decide(url, "east", RecKey(d2, "Q", "DC1", "S1"), expected_version=0)
    assert e.value.rule == "not_found"


def test_bulk_approve_writes_the_allowed_lines_and_names_the_refused(url):
    east = _user(url, "east")
    with reporting.engine_for(url).begin() as conn:
        res = service.bulk_approve(conn, east, [(A_S1, 0), (B_S1, 0), (A_S2, 0), (X_S3, 0)], approval_limit=LIMIT)
    assert sorted(str(d.key) for d in res.decided) == [str(A_S1), str(A_S2)]
    assert sorted((e.key.sku, e.rule) for e in res.refused) == [("B", "authority"), ("X", "region")]
    assert len(_rows(url)) == 2
    # a page shown before a re-run of the night carries the old run id: refused as replaced
    with reporting.engine_for(url).begin() as conn:
        res = service.bulk_approve(conn, _user(url, "boss"), [(B_S1, 0, "old-run")], approval_limit=LIMIT)
    assert res.decided == [] and [e.rule for e in res.refused] == ["replaced"]


def test_disabled_user_cannot_decide(url):
    with reporting.engine_for(url).begin() as conn:
        users.disable_user(conn, "east")
    with pytest.raises(PermissionError, match="disabled"):
        _decide(url, "east", A_S1, expected_version=0)


def _write(path, text: str, encoding: str) -> None:
    path.write_bytes(text.encode(encoding))


def test_decisions_file_gbk_bom_slash_dates_chinese_values_and_bad_lines(tmp_path, url):
    text = (
        "run_date,sku,from_location,to_location,decision,quantity,reason_code,reason_text\n"
        "2026/11/24,A,DC1,S1,批准,12,,\n"
        "2026-11-24,A,DC1,S2,拒绝,,other,门店已自行补货\n"
        "24.11.2026,X,S2,S3,批准,4,,\n"
        "2026-11-24,B,DC1,S1,maybe,3,,\n"
    )
    for enc, expect in (("gbk", "gbk"), ("utf-8-sig", "utf-8"), ("utf-8", "utf-8")):
        f = tmp_path / f"d_{enc}.csv"
        _write(f, text, enc)
        p = decisions.parse_decisions(f)
        assert p.encoding == expect
        assert p.rows[["sku", "to_location", "decision", "quantity"]].values.tolist() == [
            ["A", "S1", "approve", 12.0],
            ["A", "S2", "reject", 0.0],
        ]
        assert p.rows["reason_text"].tolist() == ["", "门店已自行补货"]
        assert [(x.line, x.column) for x in p.problems] == [(4, "run_date"), (5, "decision")]
    # the import decides the good rows and reports the bad ones and the refused ones by line
    f = tmp_path / "d_gbk.csv"
    with reporting.engine_for(url).begin() as conn:
        rep = service.import_decisions(conn, _user(url, "east"), decisions.parse_decisions(f), approval_limit=LIMIT)
    assert [str(d.key) for d in rep.decided] == [str(A_S1), str(A_S2)]
    assert rep.problems[0].startswith("line 4: column 'run_date'") and rep.problems[1].startswith("line 5:")
    assert _rows(url)["source"].tolist() == ["upload", "upload"]


def test_decisions_xlsx_upload_bytes(tmp_path):
    df = pd.DataFrame(
        {
            "run_date": ["2026-11-24"],
            "sku": ["A"],
            "from_location": ["DC1"],
            "to_location": ["S1"],
            "decision": ["approve"],
            "quantity": ["12"],
        }
    )
    f = tmp_path / "d.xlsx"
    df.to_excel(f, index=False)
    p = decisions.parse_decisions("upload", data=f.read_bytes(), name="d.xlsx")
    assert p.encoding == "xlsx" and p.rows["quantity"].tolist() == [12.0] and p.problems == []


def test_feedback_reads_a_gbk_file_with_a_bad_row_without_failing(tmp_path):
    f = tmp_path / "d.csv"
    _write(
        f,
        "run_date,sku,from_location,to_location,decision,quantity\n2026/11/20,A,DC,S1,批准,6\nx,A,DC,S1,批准,6\n",
        "gbk",
    )
    p = decisions.parse_decisions(f)
    assert len(p.rows) == 1 and "1 bad row(s) left out: line 3: column 'run_date'" in p.summary()


def test_the_next_night_reads_the_workbench_decisions(url):
    from pipelines.feedback import read_decision_table

    _decide(url, "east", A_S1, quantity=18, expected_version=0)
    _decide(url, "boss", B_S1, "reject", reason_code="too_costly", expected_version=0)
    staged = read_decision_table(url, WB_DATE + timedelta(days=1))
    got = staged[["sku", "to_location", "decision", "quantity", "decided_by", "source", "reason_code"]]
    assert got.values.tolist() == [
        ["A", "S1", "approve", 18.0, "east", "workbench", ""],
        ["B", "S1", "reject", 0.0, "boss", "workbench", "too_costly"],
    ]
