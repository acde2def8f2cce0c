"""Content rules on tiny frames: quantities against their own history (pipelines/content.py)."""

from __future__ import annotations

import pandas as pd

from pipelines import content
from tests.factories import steady_sales

LAST = pd.Timestamp("2026-11-25")


def test_a_thousandfold_sale_is_a_spike_and_a_busy_series_is_not():
    s = steady_sales(30, "2026-11-25", {"A": 4.0, "B": 600.0})
    s.loc[(s["sku"] == "A") & (s["date"] == LAST), "quantity"] = 1e15
    s.loc[(s["sku"] == "B") & (s["date"] == LAST), "quantity"] = 1800.0  # three times its usual: a good day
    mask, threshold = content.spike_mask(s, factor=1000, floor=1)
    assert s[mask][["sku", "quantity"]].values.tolist() == [["A", 1e15]]
    assert threshold[mask].tolist() == [4000.0]  # 1000 x the series' median, which the spike cannot move


def test_spike_floor_protects_sparse_series():
    s = pd.DataFrame(
        {
            "sku": ["A", "A"],
            "location": ["L1", "L1"],
            "date": [LAST - pd.Timedelta(days=1), LAST],
            "quantity": [0.0, 800.0],
        }
    )
    assert not content.spike_mask(s, factor=1000, floor=1)[0].any()  # median 800: 800 is no spike
    assert content.spike_mask(s.assign(quantity=[0.0, 1500.0]), factor=1000, floor=1)[0].tolist() == [False, False]


def test_a_week_of_zero_quantities_is_a_collapse_naming_the_days():
    s = steady_sales(60, "2026-11-25", {"A": 5.0, "B": 3.0})
    s.loc[s["date"] > LAST - pd.Timedelta(days=7), "quantity"] = 0.0
    out = content.day_volume(s, LAST, check_days=7, baseline_days=28, low=0.2, high=10)
    assert out.failing == 7 and out.examples["date"].tolist()[0] == "2026-11-19"
    assert "median of the 28 day(s) before: 8" in out.observed and out.value == 0.0


def test_day_volume_passes_normal_days_and_flags_a_tenfold_day():
    s = steady_sales(60, "2026-11-25", {"A": 5.0, "B": 3.0})
    assert content.day_volume(s, LAST, 7, 28, 0.2, 10).failing == 0
    s.loc[s["date"] == LAST, "quantity"] *= 20
    out = content.day_volume(s, LAST, 7, 28, 0.2, 10)
    assert out.failing == 1 and "2026-11-25 (160, 20.00x)" in out.observed


def test_day_volume_needs_a_baseline():
    out = content.day_volume(steady_sales(10, "2026-11-25", {"A": 1.0}), LAST, 7, 28, 0.2, 10)
    assert out.failing == 0 and "too few to compare" in out.observed


def test_regular_sellers_vanishing_stop_but_one_delisting_does_not():
    skus = {f"S{i:02d}": 2.0 for i in range(20)}
    s = steady_sales(40, "2026-11-25", skus)
    recent = s["date"] > LAST - pd.Timedelta(days=7)
    one = content.vanished_skus(s[~(recent & (s["sku"] == "S00"))], LAST, 7, 28, 0.8, 0.1)
    assert one.failing == 0 and "1 of 20 SKU(s)" in one.observed and "S00" in one.observed
    cut = s[~(recent & s["sku"].isin([f"S{i:02d}" for i in range(5)]))]
    out = content.vanished_skus(cut, LAST, 7, 28, 0.8, 0.1)
    assert out.failing == 5 and out.examples["sku"].tolist() == ["S00", "S01", "S02", "S03", "S04"]


def test_sku_count_against_published_history():
    s = steady_sales(10, "2026-11-25", {f"S{i}": 1.0 for i in range(22)})
    hist = pd.Series([30.0, 30.0, 29.0], index=["2026-11-22", "2026-11-23", "2026-11-24"])
    out = content.sku_count(s, hist, band=0.2)
    assert out.failing == 1 and out.value == 22.0 and "trailing median 30" in out.observed
    assert content.sku_count(s, hist.iloc[:0], band=0.2).failing == 0  # no history yet: passes, says so
    assert content.sku_count(s, pd.Series([24.0]), band=0.2).failing == 0
