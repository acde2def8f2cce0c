"""Moving-average kernel, estimator, forecast and backtest accuracy on hand-made series."""

from __future__ import annotations

from datetime import date
from functools import partial

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from models.backtest import nb_quantiles
from models.baselines import MovingAverageForecaster, moving_average, naive_scale, poisson_quantiles
from models.nightly import NightlyForecaster
from pipelines import contract
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.forecast import (
    daily_matrix,
    forecast_accuracy,
    forecast_moving_average,
    forecast_stage,
    history_matrix,
    lead_time_demand,
    predict_with,
    price_ratio_matrix,
    series_keys,
    series_lead_times,
    stored_lead_time_dispersion,
    train_model,
)
from pipelines.frames import stock_totals
from tests.factories import active_items, lead_times, sales, stock

RUN = date(2026, 1, 10)
D = pd.Timestamp

# sales at 2.0 a unit; stock as (sku, location, on_hand) on the run date unless a test says otherwise
priced_sales = partial(sales, unit_price=2.0)
stock_on_hand = partial(stock, columns=("sku", "location", "on_hand"), snapshot=RUN)


# -- kernel and estimator ---------------------------------------------------------------------


def test_moving_average_last_window_days() -> None:
    y = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(moving_average(y, 2), [3.5, 0.0])


def test_moving_average_short_series_uses_available_days() -> None:
    np.testing.assert_allclose(moving_average(np.array([[1.0, 2.0, 3.0, 4.0]]), 10), [2.5])
    np.testing.assert_allclose(moving_average(np.array([[np.nan, np.nan, 2.0, 4.0]]), 3), [3.0])


def test_moving_average_all_zero_all_missing_and_empty() -> None:
    np.testing.assert_array_equal(moving_average(np.zeros((3, 5)), 28), np.zeros(3))
    np.testing.assert_array_equal(moving_average(np.full((2, 4), np.nan), 2), np.zeros(2))
    np.testing.assert_array_equal(moving_average(np.zeros((2, 0)), 7), np.zeros(2))
    with pytest.raises(ValueError, match="window"):
        moving_average(np.zeros((1, 3)), 0)


def test_naive_scale_is_the_mase_scale() -> None:
    np.testing.assert_allclose(naive_scale(np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]])), [1.5, 0.0])
    assert np.isnan(naive_scale(np.array([[4.0]]))[0])


def test_poisson_quantiles_hand_values() -> None:
    # Poisson(2): P(X<=2)=0.677, P(X<=4)=0.947, P(X<=5)=0.983, P(X<=6)=0.9955
    q = poisson_quantiles(np.array([2.0, 0.0]))
    np.testing.assert_array_equal(q, [[2, 4, 5, 6], [0, 0, 0, 0]])


def test_estimator_contract() -> None:
    est = MovingAverageForecaster(window=2)
    assert est.get_params() == {"window": 2}
    assert not hasattr(est, "level_")
    with pytest.raises(NotFittedError):
        est.predict(3)
    fitted = est.fit(np.array([[1.0, 3.0, 5.0], [0.0, 0.0, 0.0]]))
    assert fitted is est
    np.testing.assert_allclose(est.level_, [4.0, 0.0])
    np.testing.assert_allclose(est.predict(3), [[4.0, 4.0, 4.0], [0.0, 0.0, 0.0]])
    assert clone(est).get_params() == {"window": 2} and not hasattr(clone(est), "level_")


# -- frames ------------------------------------------------------------------------------------


def test_daily_matrix_fills_missing_days_with_zero() -> None:
    s = priced_sales(("A", "S1", "2026-01-07", 2), ("A", "S1", "2026-01-09", 5), ("B", "S1", "2026-01-08", 1))
    keys = pd.DataFrame({"sku": ["A", "B", "C"], "location": ["S1", "S1", "S1"]})
    y = daily_matrix(s, keys, D("2026-01-07"), D("2026-01-10"))
    np.testing.assert_array_equal(y, [[2, 0, 5], [0, 1, 0], [0, 0, 0]])


def test_price_ratio_is_realised_price_over_list_price_on_days_with_sales() -> None:
    s = priced_sales(("A", "S1", "2026-01-07", 2), ("A", "S1", "2026-01-08", 4), ("B", "S1", "2026-01-08", 1))
    s.loc[1, "revenue"] = 4 * 1.5  # a promotion: 1.5 against the list price 2.0
    it = active_items(("A", True), ("B", True))
    it.loc[1, "unit_price"] = 0.0  # no list price: unknown ratio
    keys = pd.DataFrame({"sku": ["A", "B"], "location": ["S1", "S1"]})
    r = price_ratio_matrix(s, it, keys, D("2026-01-07"), D("2026-01-10"))
    assert r.shape == (2, 3, 1)
    np.testing.assert_allclose(r[0, :, 0], [1.0, 0.75, np.nan])  # no sale on the 9th: unknown
    assert np.isnan(r[1]).all()
    # the caller's units matrix (NaN before a first sale) gives the same ratios
    units = history_matrix(s, keys, D("2026-01-07"), D("2026-01-10"))
    np.testing.assert_array_equal(price_ratio_matrix(s, it, keys, D("2026-01-07"), D("2026-01-10"), units=units), r)


def test_stock_totals_sum_lots_of_latest_snapshot() -> None:
    st = contract.conform(
        pd.DataFrame(
            {
                "sku": ["A", "A", "A"],
                "location": ["S1", "S1", "S1"],
                "snapshot_date": [D(RUN), D(RUN), D("2026-01-09")],
                "lot": ["L1", "L2", "L1"],
                "expiry_date": None,
                "on_hand": [10.0, 5.0, 99.0],
                "in_transit": [3.0, 0.0, 0.0],
                "reserved": [2.0, 0.0, 0.0],
            }
        ),
        "stock",
    )
    tot = stock_totals(st, RUN)
    assert tot[["on_hand", "in_transit", "reserved", "available"]].iloc[0].tolist() == [15.0, 3.0, 2.0, 16.0]


def test_series_keys_active_with_stock_or_sales() -> None:
    it = active_items(("A", True), ("B", True), ("C", False), ("D", True))
    s = priced_sales(("A", "S1", "2026-01-01", 1), ("C", "S1", "2026-01-02", 1), ("D", "S2", "2026-01-10", 3))
    st = stock_on_hand(("B", "S2", 0.0), ("C", "S2", 4.0))
    keys = series_keys(s, it, st, RUN)
    # D only sold on the run date itself, which the run does not see
    assert list(zip(keys["sku"], keys["location"], strict=True)) == [("A", "S1"), ("B", "S2")]


def test_forecast_moving_average_hand_computed() -> None:
    it = active_items(("A", True), ("B", True), ("C", False))
    s = priced_sales(
        ("A", "S1", "2026-01-01", 1),
        ("A", "S1", "2026-01-06", 2),
        ("A", "S1", "2026-01-08", 6),
        ("A", "S1", "2026-01-10", 50),  # the run date: not seen
        ("A", "S2", "2026-01-01", 4),  # outside the window
        ("C", "S1", "2026-01-08", 9),  # inactive
    )
    st = stock_on_hand(("B", "S1", 5.0), ("A", "S1", 1.0))
    fc = forecast_moving_average(s, it, st, RUN, horizon_days=3, window_days=4)
    assert len(fc) == 3 * 3
    a = fc[(fc["sku"] == "A") & (fc["location"] == "S1")]
    assert a["horizon"].tolist() == [1, 2, 3]
    assert a["target_date"].tolist() == [D("2026-01-10"), D("2026-01-11"), D("2026-01-12")]
    assert a["mean"].tolist() == [2.0, 2.0, 2.0]  # (2 + 0 + 6 + 0) / 4 days
    assert a[["p50", "p90", "p95", "p99"]].iloc[0].tolist() == [2.0, 4.0, 5.0, 6.0]
    assert set(a["model"]) == {"moving_average"}
    for sku, loc in (("A", "S2"), ("B", "S1")):  # nothing sold in the window / not launched
        z = fc[(fc["sku"] == sku) & (fc["location"] == loc)]
        assert z["mean"].tolist() == [0.0] * 3 and set(z["model"]) == {"zero_no_sales"}
        assert (z[["p50", "p90", "p95", "p99"]].to_numpy() == 0).all()
    contract.conform(fc.assign(run_id="t"), "forecasts")


def test_forecast_history_shorter_than_window_averages_available_days() -> None:
    s = priced_sales(("A", "S1", "2026-01-06", 2), ("A", "S1", "2026-01-08", 6))
    fc = forecast_moving_average(s, active_items(("A", True)), stock_on_hand(), RUN, horizon_days=1, window_days=28)
    assert fc["mean"].tolist() == [2.0]  # 8 units over the 4 days 01-06 .. 01-09 the history has


def test_forecast_with_no_sales_at_all() -> None:
    fc = forecast_moving_average(priced_sales(), active_items(("A", True)), stock_on_hand(("A", "S1", 3.0)), RUN, 2, 28)
    assert fc["mean"].tolist() == [0.0, 0.0] and set(fc["model"]) == {"zero_no_sales"}


def test_forecast_accuracy_hand_computed() -> None:
    s = priced_sales(
        ("A", "S1", "2026-01-05", 1),
        ("A", "S1", "2026-01-06", 2),
        ("A", "S1", "2026-01-07", 4),
        ("A", "S1", "2026-01-08", 3),
        ("A", "S1", "2026-01-09", 5),
        ("B", "S1", "2026-01-06", 1),
        ("B", "S1", "2026-01-07", 1),
    )
    acc = forecast_accuracy(
        s, active_items(("A", True), ("B", True)), stock_on_hand(), RUN, window_days=2, holdout_days=2
    )
    a = acc[acc["sku"] == "A"].iloc[0]
    # fit on 01-06, 01-07: level 3; holdout 01-08, 01-09: actual 3 + 5
    assert (a["model"], a["window_days"], a["actual"], a["forecast"]) == ("moving_average", 2, 8.0, 6.0)
    assert a["wape"] == pytest.approx(2 / 8)  # |3-3| + |3-5|
    assert a["bias"] == pytest.approx(-0.25)
    assert a["mase"] == pytest.approx(1.0 / 2.0)  # MAE 1 / naive MAE |4-2|
    b = acc[acc["sku"] == "B"].iloc[0]
    assert (b["actual"], b["forecast"]) == (0.0, 2.0)
    assert np.isnan(b["wape"]) and np.isnan(b["bias"]) and np.isnan(b["mase"])  # nothing sold, flat fit
    contract.conform(acc.assign(run_id="t"), "forecast_accuracy")


def test_forecast_accuracy_empty_when_history_starts_in_holdout() -> None:
    s = priced_sales(("A", "S1", "2026-01-08", 3))
    acc = forecast_accuracy(s, active_items(("A", True)), stock_on_hand(), RUN, window_days=2, holdout_days=2)
    assert acc.empty and list(acc.columns) == [c for c in contract.FORECAST_ACCURACY.names if c != "run_id"]


# -- lead-time demand ------------------------------------------------------------------------------


def test_series_lead_times_rounds_up_and_defaults() -> None:
    keys = pd.DataFrame({"sku": ["A", "A", "B", "C"], "location": ["S1", "S2", "S1", "S1"]})
    lt = lead_times(("A", "S1", 2.0), ("A", "S2", 2.01), ("C", "S1", 0.0), ("Z", "S9", 4.0))
    got = series_lead_times(keys, lt, default_days=6.5)
    assert got["lead_time_days"].tolist() == [2, 3, 7, 0]
    assert got["lead_time_defaulted"].tolist() == [False, False, True, False]
    assert got[["sku", "location"]].equals(keys)
    with pytest.raises(ValueError, match=r"lead_times: 2 rows repeat .*\('A', 'S1'\)"):
        series_lead_times(keys, pd.concat([lt, lt.iloc[:1]]), default_days=7)


def _daily(rows: dict[tuple[str, str], list[float]], model: dict[tuple[str, str], str]) -> pd.DataFrame:
    frames = []
    for (sku, loc), means in rows.items():
        h = len(means)
        frames.append(
            pd.DataFrame(
                {
                    "run_date": D(RUN),
                    "sku": sku,
                    "location": loc,
                    "target_date": pd.date_range(D(RUN), periods=h, freq="D"),
                    "horizon": np.arange(1, h + 1),
                    "mean": means,
                    "p50": 0.0,
                    "p90": 0.0,
                    "p95": 0.0,
                    "p99": 0.0,
                    "model": model[(sku, loc)],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_lead_time_demand_hand_computed() -> None:
    means = {("A", "S1"): [1.0, 2.0, 3.0, 4.0], ("B", "S1"): [0.5, 0.5, 0.5, 1.5], ("C", "S1"): [0.0] * 4}
    models = {("A", "S1"): "ses", ("B", "S1"): "sba", ("C", "S1"): "zero_no_sales"}
    fc = _daily(means, models).sample(frac=1.0, random_state=3)  # row order must not matter
    leads = pd.DataFrame(
        {
            "sku": ["A", "B", "C"],
            "location": ["S1"] * 3,
            "lead_time_days": [3, 6, 9],
            "lead_time_defaulted": [False, True, False],
        }
    )
    phi = np.array([2.5, 0.8, 3.0])
    out = lead_time_demand(fc, leads, phi)
    assert list(out.columns) == [c for c in contract.LEAD_TIME_DEMAND.names if c != "run_id"]
    assert out[["sku", "location"]].values.tolist() == [["A", "S1"], ["B", "S1"], ["C", "S1"]]
    # A: 1 + 2 + 3 over 3 days; B: 0.5 * 3 + 1.5 over the 4-day horizon + 2 more days at 1.5 / day
    np.testing.assert_allclose(out["mean"], [6.0, 6.0, 0.0])
    q = out[["p50", "p90", "p95", "p99"]].to_numpy()
    np.testing.assert_array_equal(q[:2], nb_quantiles(np.array([6.0, 6.0]), np.array([2.5, 0.8])))
    assert (np.diff(q, axis=1) >= 0).all() and (q == np.round(q)).all() and (q[2] == 0).all()
    assert q[0, 3] > q[1, 3]  # over-dispersed A is wider than Poisson B at the same mean
    assert out["dispersion"].tolist() == [2.5, 1.0, 3.0]  # below 1 is Poisson, published as 1
    assert out["model"].tolist() == ["ses", "sba", "zero_no_sales"]
    assert set(out["run_date"]) == {D(RUN)}
    en, zh = out["explanation_en"], out["explanation_zh"]
    assert en[0].startswith("Over the 3-day lead time: 6 units expected (daily forecasts of ses summed).")
    assert f"at or below {q[0, 0]:.0f} units with 50% probability, {q[0, 1]:.0f} with 90%" in en[0]
    assert "variance 2.5 times the mean" in en[0]
    assert "(default, none recorded)" in en[1] and "after its 4-day horizon at its last day's rate" in en[1]
    assert en[2].startswith("No sale recorded") and zh[2].startswith("无销售记录")
    assert "补货提前期 3 天内" in zh[0] and "95%" in zh[0]
    contract.conform(out.assign(run_id="t"), "lead_time_demand", extra="error")


def test_lead_time_demand_zero_days_and_missing_series() -> None:
    fc = _daily({("A", "S1"): [2.0, 2.0]}, {("A", "S1"): "ses"})
    leads = pd.DataFrame({"sku": ["A"], "location": ["S1"], "lead_time_days": [0], "lead_time_defaulted": [False]})
    out = lead_time_demand(fc, leads, np.array([1.0]))
    assert out[["mean", "p50", "p99"]].values.tolist() == [[0.0, 0.0, 0.0]]
    orphan = pd.concat([leads, leads.assign(sku="Q")], ignore_index=True)
    with pytest.raises(ValueError, match=r"forecasts: no daily rows for 1 series .*'Q'"):
        lead_time_demand(fc, orphan, np.ones(2))


def test_stored_lead_time_dispersion_falls_back_for_new_series_and_changed_lead_times() -> None:
    series = pd.DataFrame(
        {
            "sku": ["A", "B", "C"],
            "location": ["S1"] * 3,
            "phi_lead_time": [2.0, 4.0, 9.0],
            "lead_time_days": [3, 5, 7],
            "phi_own_lead_time": [1.5, 6.0, 10.0],
        }
    )
    leads = pd.DataFrame({"sku": ["A", "B", "C", "N"], "location": ["S1"] * 4, "lead_time_days": [3, 6, 0, 3]})
    model = NightlyForecaster()
    model.series_ = series  # the learned per-series state only: what the function reads
    got = stored_lead_time_dispersion(model, leads)
    # A: trained at 3 days -> own; B: lead time changed -> its phi at forecast.lead_time_days;
    # C: 0 days -> 1; N: new series -> median phi_lead_time of the trained series
    np.testing.assert_allclose(got, [1.5, 4.0, 1.0, 4.0])


def _overdispersed_panel(n: int, days: int, seed: int) -> tuple[np.ndarray, pd.DatetimeIndex, pd.DataFrame]:
    """Negative binomial daily demand (var = mu + mu^2 / 2), every series selling from day 0."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(1, 6, n)[:, None]
    y = rng.negative_binomial(2, 2 / (2 + mu), size=(n, days)).astype(float)
    y[:, 0] = np.maximum(y[:, 0], 1.0)  # listed from the first day (history_matrix: NaN before a first sale)
    dates = pd.date_range(D(RUN) - pd.Timedelta(days=140), periods=days, freq="D")
    keys = pd.DataFrame({"sku": [f"K{i:04d}" for i in range(n)], "location": "S1"})
    r, c = np.nonzero(y)
    s = pd.DataFrame({"sku": keys["sku"].to_numpy()[r], "location": "S1", "date": dates[c], "quantity": y[r, c]})
    return y, dates, contract.conform(s.assign(returns=0.0, revenue=s["quantity"]), "sales")


def test_published_lead_time_quantiles_are_calibrated_on_overdispersed_demand() -> None:
    """Train once (140 days), then three nights 14 days apart predict from the stored model; the
    published p90 / p95 of demand over each series' own lead time (3, 7 or 12 days) are compared
    with the realised sums of the next L days."""
    n, h = 400, 14
    y, dates, s = _overdispersed_panel(n, 140 + 3 * h, seed=11)
    it = active_items(*((k, True) for k in (f"K{i:04d}" for i in range(n))))
    days = np.array([3, 7, 12])[np.arange(n) % 3]
    lt = lead_times(*((f"K{i:04d}", "S1", float(days[i])) for i in range(n)))
    fc = load_config(
        overrides={"forecast": {"horizon_days": h, "history_days": 140, "backtest_folds": 3, "use_gbm": False}}
    ).forecast
    model, _ = train_model(s, it, stock_on_hand(), RUN, fc, lt, default_lead_time_days=7)
    assert model.series_["lead_time_days"].tolist() == days.tolist()
    hits, hits_poisson = [], []
    for night in range(3):
        run = (D(RUN) + pd.Timedelta(days=night * h)).date()
        fcs = predict_with(model, s, it, stock_on_hand(snapshot=run), run, fc)
        leads = series_lead_times(fcs[["sku", "location"]].drop_duplicates(), lt, 7)
        out = lead_time_demand(fcs, leads, stored_lead_time_dispersion(model, leads))
        start = 140 + night * h
        cum = np.cumsum(y[:, start : start + h], axis=1)
        realised = cum[np.arange(n), days - 1]
        hits.append(realised[:, None] <= out[["p90", "p95"]].to_numpy())
        pois = poisson_quantiles(out["mean"].to_numpy(), (0.9, 0.95))
        hits_poisson.append(realised[:, None] <= pois)
    cov90, cov95 = np.concatenate(hits).mean(axis=0)
    assert 0.86 <= cov90 <= 0.945 and 0.92 <= cov95 <= 0.98, (cov90, cov95)
    p90, p95 = np.concatenate(hits_poisson).mean(axis=0)
    assert p90 < cov90 - 0.05 and p95 < cov95 - 0.04, (p90, p95)  # Poisson is too narrow here


# -- stage ---------------------------------------------------------------------------------------


def test_forecast_stage_on_tiny_staging(tmp_path) -> None:
    cfg = load_config(
        overrides={
            "staging_dir": str(tmp_path / "s"),
            "output_dir": str(tmp_path / "o"),
            "forecast": {"horizon_days": 5, "window_days": 4, "holdout_days": 2, "method": "moving_average"},
        }
    )
    ctx = RunContext(cfg, RUN)
    ctx.write_json("run", {"run_id": "test"})
    ctx.write("items", active_items(("A", True), ("B", True)))
    ctx.write("sales", priced_sales(("A", "S1", "2026-01-03", 2), ("A", "S1", "2026-01-09", 4)))
    ctx.write("stock", stock_on_hand(("B", "S2", 1.0)))
    ctx.write("lead_times", lead_times(("A", "S1", 6.2)))
    res = forecast_stage(ctx)
    assert res.stage == "forecast"
    assert res.counts == {"forecasts": 10, "forecast_accuracy": 2, "lead_time_demand": 2}
    ltd = ctx.read("lead_time_demand").set_index("sku")
    # A: 6.2 days -> 7 whole days, 1/day over the 5-day horizon and 2 more days at the last day's rate
    assert ltd.loc["A", "lead_time_days"] == 7 and not ltd.loc["A", "lead_time_defaulted"]
    assert ltd.loc["A", "mean"] == 7.0 and ltd.loc["A", "dispersion"] == 1.0
    assert ltd.loc["A", ["p50", "p90", "p95", "p99"]].tolist() == poisson_quantiles(np.array([7.0])).ravel().tolist()
    assert "after its 5-day horizon" in ltd.loc["A", "explanation_en"]
    # B never sold; no lead time recorded: the policy default (7 days), flagged
    assert ltd.loc["B", "lead_time_days"] == 7 and ltd.loc["B", "lead_time_defaulted"]
    assert ltd.loc["B", ["mean", "p50", "p99"]].tolist() == [0.0, 0.0, 0.0] and ltd.loc["B", "model"] == "zero_no_sales"
    assert "default" in ltd.loc["B", "explanation_en"] and "默认值" in ltd.loc["B", "explanation_zh"]
    fc = ctx.read("forecasts")
    assert set(fc["run_id"]) == {"test"} and set(fc["run_date"]) == {D(RUN)}
    assert fc.loc[fc["sku"] == "A", "mean"].tolist() == [1.0] * 5
    assert res.paths["forecasts"] == str(ctx.path("forecasts"))
    acc = ctx.read("forecast_accuracy")
    assert set(acc["run_id"]) == {"test"}
    # deterministic: a second run writes identical files
    first = ctx.path("forecasts").read_bytes()
    first_ltd = ctx.path("lead_time_demand").read_bytes()
    forecast_stage(ctx)
    assert ctx.path("forecasts").read_bytes() == first
    assert ctx.path("lead_time_demand").read_bytes() == first_ltd


# -- selected models: train when none exists, predict from the current version, retrain ------------


def test_history_matrix_is_nan_before_first_sale() -> None:
    s = priced_sales(("A", "S1", "2026-01-07", 2), ("B", "S1", "2026-01-09", 1))
    keys = pd.DataFrame({"sku": ["A", "B", "Z"], "location": ["S1", "S1", "S1"]})
    y = history_matrix(s, keys, D("2026-01-06"), D("2026-01-10"))
    np.testing.assert_array_equal(y, [[np.nan, 2, 0, 0], [np.nan, np.nan, np.nan, 1], [np.nan] * 4])


def test_promotion_compares_both_models_on_the_same_window_and_refuses_an_unscored_candidate():
    from pipelines.forecast import WindowScores, promotion_decision

    win = ("2026-01-03", "2026-01-09")
    ok, why = promotion_decision("v2", "v1", WindowScores(win, 14, 40.0, 0.6, current=0.5))
    assert not ok and why.startswith("kept v1: score 0.6000 of v2 is worse than 0.5000 on the newest backtest window")
    ok, why = promotion_decision("v2", "v1", WindowScores(win, 14, 40.0, 0.5, current=0.5))
    assert ok and "v2 replaces v1: score 0.5000 <= 0.5000" in why
    ok, why = promotion_decision("v2", "v1", WindowScores(win, 3, 0.0, None, why="no sale in it to score against"))
    assert not ok and why == (
        "kept v1: v2 cannot be scored on the newest backtest window 2026-01-03..2026-01-09 (no sale in it to score against)"
    )
    ok, why = promotion_decision("v1", None, WindowScores(win, 14, 40.0, 0.7))
    assert ok and why.startswith("v1 is the current model: backtest score 0.7000")


def test_gbm_variants_need_a_validation_window_before_the_test_window() -> None:
    from benchmarks.forecast import validation_end

    with pytest.raises(SystemExit, match="needs an explicit --train-end"):
        validation_end(None)
    with pytest.raises(SystemExit, match="inside the test window"):
        validation_end("2016-03-01")
    assert validation_end("2016-02-28") == pd.Timestamp("2016-02-28")


def test_gbm_predicts_a_shard_with_the_panels_pooled_levels_as_it_does_in_the_panel() -> None:
    """A store shard holds only part of each SKU's stores: with the pooled levels computed over the
    panel beforehand, its forecast equals the panel's rows of it; pooling over the shard alone does not."""
    from models.gbm import GlobalGBMForecaster

    rng = np.random.default_rng(3)
    n_sku, n_loc, t = 6, 4, 120
    y = rng.poisson(rng.uniform(0.5, 6.0, (n_sku * n_loc, 1)), (n_sku * n_loc, t)).astype(float)
    groups = np.column_stack([np.repeat(np.arange(n_sku), n_loc), np.tile(np.arange(n_loc), n_sku)])
    gbm = GlobalGBMForecaster(horizon=7, n_origins=3, max_iter=30, min_samples_leaf=5).fit(y, groups=groups)
    panel = gbm.predict_from(y, groups=groups)
    shard = groups[:, 1] < 2  # stores 0 and 1: half of every SKU's stores
    levels = gbm.group_levels(y, groups)
    got = gbm.predict_from(y[shard], groups=groups[shard], group_levels=levels[shard])
    np.testing.assert_allclose(got, panel[shard])
    alone = gbm.predict_from(y[shard], groups=groups[shard])
    assert not np.allclose(alone, panel[shard])  # what the shard would forecast on its own
    with pytest.raises(ValueError, match="group_levels has shape"):
        gbm.predict_from(y[shard], groups=groups[shard], group_levels=levels[shard][:, :2])
