"""Transfer orders: numbers, lines from decisions, changes, states, expiry and what open orders mean."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines import orders as od

D = pd.Timestamp


def _decisions(*rows: tuple) -> pd.DataFrame:
    """(rec_run_date, sku, from, to, decision, new_quantity) rows as latest decisions."""
    df = pd.DataFrame(rows, columns=["rec_run_date", "sku", "from_location", "to_location", "decision", "new_quantity"])
    return df.assign(rec_run_date=pd.to_datetime(df["rec_run_date"]), rec_run_id="r1", decided_by="ann")


def test_order_numbers_are_stable_per_run_date_and_lane() -> None:
    a = od.order_number(date(2026, 11, 25), "DC", "S1")
    assert a == od.order_number(D("2026-11-25"), "DC", "S1") and a.startswith("TB20261125-") and len(a) == 19
    assert a != od.order_number(date(2026, 11, 25), "DC", "S2") != od.order_number(date(2026, 11, 26), "DC", "S1")


def test_approved_lines_group_a_lane_and_date_into_one_order() -> None:
    d = _decisions(
        ("2026-11-25", "A", "DC", "S1", "approve", 24.0),
        ("2026-11-25", "B", "DC", "S1", "approve", 12.0),
        ("2026-11-25", "C", "DC", "S1", "reject", 0.0),
        ("2026-11-25", "A", "DC", "S2", "approve", 6.0),
        ("2026-11-26", "A", "DC", "S1", "approve", 5.0),
    )
    lines = od.approved_lines(d)
    assert lines.groupby("order_no").size().sort_values().tolist() == [1, 1, 2]  # the rejection has no line
    one = lines[lines["order_no"] == od.order_number(date(2026, 11, 25), "DC", "S1")]
    assert one[["sku", "approved_qty"]].values.tolist() == [["A", 24.0], ["B", 12.0]]
    assert set(one["departure_date"]) == {D("2026-11-25")}


def test_line_changes_say_add_change_drop_and_same() -> None:
    no = od.order_number(date(2026, 11, 25), "DC", "S1")
    current = pd.DataFrame({"order_no": no, "sku": ["A", "B", "C"], "approved_qty": [24.0, 12.0, 6.0]})
    wanted = pd.DataFrame({"order_no": no, "sku": ["A", "B", "D"], "approved_qty": [24.0, 10.0, 3.0]})
    ch = od.line_changes(wanted, current).set_index("sku")["change"].to_dict()
    assert ch == {"A": "same", "B": "change", "C": "drop", "D": "add"}


@pytest.mark.parametrize(
    ("shipped", "received", "cancelled", "state"),
    [
        ([np.nan, np.nan], [np.nan, np.nan], False, "exported"),  # nothing happened yet
        ([np.nan, np.nan], [np.nan, np.nan], True, "cancelled"),
        ([10.0, 5.0], [np.nan, np.nan], False, "shipped"),
        ([10.0, 5.0], [10.0, np.nan], False, "shipped"),  # one line still on its way
        ([10.0, 5.0], [10.0, 5.0], False, "received"),
        ([10.0, 3.0], [10.0, 3.0], False, "partly_received"),  # short shipped
        ([10.0, 5.0], [10.0, 4.0], False, "partly_received"),  # short received
        ([10.0, 5.0], [np.nan, np.nan], True, "shipped"),  # a cancellation after shipping does not count
    ],
)
def test_order_state_from_the_erps_execution(shipped, received, cancelled, state) -> None:
    lines = pd.DataFrame({"approved_qty": [10.0, 5.0], "shipped_qty": shipped, "received_qty": received})
    assert od.order_state(lines, "exported", cancelled) == state
    assert od.order_state(lines, "expired", cancelled) == "expired"  # final states stay


def test_orders_not_shipped_in_time_expire() -> None:
    o = pd.DataFrame(
        {
            "departure_date": pd.to_datetime(["2026-11-20", "2026-11-20", "2026-11-22", "2026-11-20"]),
            "state": ["exported", "approved", "exported", "shipped"],
        }
    )
    assert od.expired(o, date(2026, 11, 26), 5).tolist() == [True, True, False, False]


def _lines(**over: list) -> pd.DataFrame:
    base = {
        "order_no": ["O1", "O2", "O3"],
        "sku": ["A", "A", "B"],
        "from_location": ["DC", "DC", "DC"],
        "to_location": ["S1", "S2", "S1"],
        "departure_date": pd.to_datetime(["2026-11-25"] * 3),
        "rec_run_date": pd.to_datetime(["2026-11-25"] * 3),
        "state": ["exported", "shipped", "shipped"],
        "approved_qty": [20.0, 10.0, 8.0],
        "shipped_qty": [np.nan, 10.0, 8.0],
        "shipped_date": pd.to_datetime([None, "2026-11-26", "2026-11-26"]),
        "received_qty": [np.nan, np.nan, np.nan],
    }
    base.update(over)
    return pd.DataFrame(base)


def test_open_orders_count_once_against_the_erps_own_in_transit() -> None:
    lanes = pd.DataFrame({"from_location": ["DC", "DC"], "to_location": ["S1", "S2"], "transit_days": [2, 3]})
    # the ERP holds A's 10 units in transit at S2 but only 3 of B's 8 at S1
    erp = pd.DataFrame({"sku": ["A", "B"], "location": ["S2", "S1"], "in_transit": [10.0, 3.0]})
    out, bad = od.open_transfers(_lines(), lanes, date(2026, 11, 27), erp)
    got = {(r.order_no, r.status): r.quantity for r in out.itertuples()}
    # O1: approved, not shipped -> all 20 on the way (arrival 11-27 + 0 -> at the earliest tomorrow)
    # O2: shipped, held by the ERP -> not counted again; O3: the 5 the ERP does not hold
    assert got == {("O1", "approved"): 20.0, ("O3", "shipped"): 5.0}
    assert out.loc[out["order_no"] == "O1", "arrival_date"].tolist() == [D("2026-11-28")]
    assert bad[["sku", "location", "shipped_open", "erp_in_transit"]].values.tolist() == [["B", "S1", 8.0, 3.0]]
    # received orders and closed states count for nothing
    done = _lines(state=["received", "cancelled", "expired"])
    assert od.open_transfers(done, lanes, date(2026, 11, 27), erp)[0].empty
