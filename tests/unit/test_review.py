"""The review (复盘) of executed transfer orders, hand-computed on a tiny case."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines.review import lane_review, review_lines

R = date(2026, 3, 20)
D = pd.Timestamp


def _lines() -> pd.DataFrame:
    rows = [
        # order, sku, from, to, departure, state, approved, shipped, shipped on, received, received on
        ("O1", "A", "DC", "S1", "2026-03-01", "received", 10.0, 10.0, "2026-03-02", 10.0, "2026-03-04"),
        ("O2", "B", "DC", "S1", "2026-03-10", "shipped", 8.0, 8.0, "2026-03-11", None, None),
        ("O3", "A", "DC", "S2", "2026-03-18", "approved", 6.0, None, None, None, None),
        ("O4", "A", "DC", "S2", "2026-03-05", "received", 5.0, 5.0, "2026-03-05", 5.0, "2026-03-09"),
    ]
    cols = ["order_no", "sku", "from_location", "to_location", "departure_date", "state", "approved_qty"]
    cols += ["shipped_qty", "shipped_date", "received_qty", "received_date"]
    df = pd.DataFrame(rows, columns=cols)
    for c in ("departure_date", "shipped_date", "received_date"):
        df[c] = pd.to_datetime(df[c])
    return df.assign(rec_run_date=df["departure_date"], rec_run_id="r", decided_by="ann")


def _recommended() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_date": [D("2026-03-01"), D("2026-03-10"), D("2026-03-05")],
            "sku": ["A", "B", "A"],
            "from_location": "DC",
            "to_location": ["S1", "S1", "S2"],
            "expected_benefit": [40.0, 20.0, 9.0],
            "transfer_cost": [4.0, 3.0, 2.0],
        }
    )


def _positions() -> pd.DataFrame:
    nights = pd.date_range("2026-03-01", "2026-03-19")
    s1 = {D("2026-03-05"): 12.0, D("2026-03-08"): 0.0}  # 10 received + 2 of its own; out on the 8th
    rows = [("A", "S1", n, s1.get(n, 5.0)) for n in nights]
    rows += [("A", "DC", n, 50.0) for n in nights]
    rows += [("B", "DC", n, 0.0 if n == D("2026-03-12") else 30.0) for n in nights]  # the donor ran out once
    return pd.DataFrame(rows, columns=["sku", "location", "run_date", "on_hand"]).assign(available=0.0)


def _sales() -> pd.DataFrame:
    days = pd.date_range("2026-03-01", "2026-03-19")
    return pd.DataFrame({"sku": "A", "location": "S1", "date": days, "quantity": 1.0, "returns": 0.0})


def _lanes() -> pd.DataFrame:
    return pd.DataFrame({"from_location": "DC", "to_location": ["S1", "S2"], "transit_days": [2.0, 1.0]})


def _items() -> pd.DataFrame:
    return pd.DataFrame({"sku": ["A", "B"], "unit_cost": [2.0, 2.0], "unit_price": [5.0, 5.0]})


def _review() -> pd.DataFrame:
    out = review_lines(_lines(), _recommended(), _positions(), _sales(), _lanes(), _items(), R, 14)
    return out.set_index("order_no")


def test_only_executed_orders_are_reviewed() -> None:
    assert sorted(_review().index) == ["O1", "O2", "O4"]  # O3 is not shipped yet


def test_lead_time_transit_and_on_time_against_the_lane() -> None:
    r = _review()
    # O1: departed 03-01, shipped 03-02, received 03-04; the lane plans 2 days, so due 03-03: late
    assert r.loc["O1", ["lead_time_days", "transit_days", "planned_transit_days"]].tolist() == [3.0, 2.0, 2.0]
    assert not bool(r.loc["O1", "on_time"])
    assert np.isnan(r.loc["O2", "lead_time_days"]) and pd.isna(r.loc["O2", "on_time"])  # not received yet


def test_outcome_in_the_window_and_the_realised_benefit() -> None:
    r = _review()
    # O1's window: 03-01 + 14 = 03-15, before the run date: closed
    assert r.loc["O1", "window_end"] == D("2026-03-15") and bool(r.loc["O1", "window_closed"])
    assert bool(r.loc["O1", "receiver_stocked_out"])  # nothing on hand at S1 on 03-08, after the receipt
    assert not bool(r.loc["O1", "donor_stocked_out"])
    # sold at S1 from the receipt (03-04) to 03-15: 12 units; its own stock the night after: 12 - 10 = 2;
    # so 10 received units sold beyond it (capped at the 10 received), margin 3 each, minus the cost 4
    assert r.loc["O1", "units_sold_thanks"] == 10.0
    assert r.loc["O1", "realised_benefit"] == pytest.approx(10 * 3.0 - 4.0)
    assert r.loc["O1", "expected_benefit"] == 40.0
    # O2: still on its way; its donor ran out on 03-12, within the window
    assert not bool(r.loc["O2", "window_closed"]) and bool(r.loc["O2", "donor_stocked_out"])
    assert pd.isna(r.loc["O2", "receiver_stocked_out"]) and np.isnan(r.loc["O2", "realised_benefit"])
    # O4: no published night of S2: not known, not guessed
    assert pd.isna(r.loc["O4", "receiver_stocked_out"]) and np.isnan(r.loc["O4", "units_sold_thanks"])


def test_the_explanations_say_it_in_both_languages() -> None:
    r = _review()
    en, zh = r.loc["O1", "explanation_en"], r.loc["O1", "explanation_zh"]
    assert "Lead time 3 days (transit 2 against 2 planned), late." in en
    assert "the receiver still ran out of stock" in en and "realised benefit 26.00 against 40.00 expected" in en
    assert "调拨时效 3 天" in zh and "调入方仍然断货" in zh and "实际收益 26.00" in zh
    assert "Not received: no lead time yet" in r.loc["O2", "explanation_en"]
    assert "尚未收货" in r.loc["O2", "explanation_zh"]


def test_lanes_whose_observed_transit_differs_are_flagged_with_the_figure() -> None:
    lanes = lane_review(_review().reset_index(), R).set_index(["from_location", "to_location"])
    assert lanes.loc[("DC", "S1"), ["observed_transit_days", "orders"]].tolist() == [2.0, 1]
    assert not bool(lanes.loc[("DC", "S1"), "flagged"])
    # DC -> S2 is configured at 1 day; O4 took 4 (shipped 03-05, received 03-09)
    assert bool(lanes.loc[("DC", "S2"), "flagged"]) and lanes.loc[("DC", "S2"), "observed_transit_days"] == 4.0
    assert "4" in lanes.loc[("DC", "S2"), "explanation_en"] and lanes.loc[("DC", "S2"), "explanation_zh"]
