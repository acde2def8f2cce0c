"""The workbench's SVG charts and the stock projection behind the transfer page."""

from __future__ import annotations

from datetime import date, timedelta

from pipelines.workbench import charts
from pipelines.workbench.queries import project_stock, urgency

D = date(2026, 11, 24)


def test_projection_adds_the_transfer_on_its_arrival_day_and_never_goes_negative():
    fc = [{"target_date": D + timedelta(days=i), "mean": 4.0, "p50": 4.0, "p90": 7.0} for i in range(5)]
    days, mean, p50, p90 = project_stock(10.0, fc, D + timedelta(days=2), 12.0)
    assert days[0] == D and mean == [6.0, 2.0, 10.0, 6.0, 2.0]
    assert p90 == [3.0, 0.0, 5.0, 0.0, 0.0]  # lost sales: empty stays empty until the transfer arrives
    _, without, _, _ = project_stock(10.0, fc, None, 0.0)
    assert without == [6.0, 2.0, 0.0, 0.0, 0.0]


def test_charts_escape_text_and_need_two_points_for_a_trend():
    svg = charts.stock_chart(
        [D, D + timedelta(days=1)], {"<b>x</b>": [1.0, 2.0]}, ([0.0, 1.0], [2.0, 3.0]), {"rop": 1.5}, "<script>"
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;x&lt;/b&gt;" in svg
    assert charts.trend_chart([D], [1.0], "k") == ""
    trend = charts.trend_chart([D, D + timedelta(days=1)], [1_500_000.0, 1_600_000.0], "inventory_value")
    assert "1,600,000" in trend and "<path" in trend


def test_urgency_is_money_per_day_to_impact():
    assert urgency(3000.0, 2) == 1500.0 and urgency(3000.0, 0) == 3000.0 and urgency(3000.0, None) == 100.0
