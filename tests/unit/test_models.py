"""Kernels on hand-made arrays, estimator contracts, selection by backtest, quantiles, artifacts."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from models import artifacts
from models.backtest import ForecastSelector, combine, coverage, dispersion, nb_quantiles
from models.calendar import china_calendar, m5_calendar
from models.gbm import GlobalGBMForecaster, covariate_features, group_features, origin_features
from models.intermittent import (
    KernelForecaster,
    adida,
    classify_demand,
    croston,
    kernel_forecast,
    seasonal_naive,
    ses,
    ses_optimized,
    tsb,
)

NAN = np.nan


# -- kernels -----------------------------------------------------------------------------------


def test_seasonal_naive_repeats_last_season_and_pads_short() -> None:
    y = np.array([[1, 2, 3, 4, 5.0], [NAN, NAN, NAN, 7, 8]])
    np.testing.assert_array_equal(seasonal_naive(y, 3, 5), [[3, 4, 5, 3, 4], [0, 7, 8, 0, 7]])
    np.testing.assert_array_equal(seasonal_naive(np.array([[2.0]]), 3, 4), [[0, 0, 2, 0]])
    with pytest.raises(ValueError, match="season"):
        seasonal_naive(y, 0, 3)


def test_ses_hand_values() -> None:
    # level: 4 -> 4 + 0.5 * (0 - 4) = 2 -> 2 + 0.5 * (2 - 2) = 2 ; first observed value starts it
    y = np.array([[NAN, 4, 0, 2.0], [3, 3, 3, 3], [0, 0, 0, 0], [NAN, NAN, NAN, NAN]])
    np.testing.assert_allclose(ses(y, 0.5), [2.0, 3.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="alpha"):
        ses(y, 0.0)


def test_croston_and_sba_hand_values() -> None:
    # demands 3 at periods 3 and 6 (intervals 3 and 3): size 3, interval 3 -> 1; SBA x (1 - 0.25)
    y = np.array([[0, 0, 3, 0, 0, 3.0], [0, 0, 0, 0, 0, 0], [2, 2, 2, 2, 2, 2], [NAN, NAN, 0, 5, 0, 0]])
    np.testing.assert_allclose(croston(y, 0.5), [1.0, 0.0, 2.0, 2.5])
    np.testing.assert_allclose(croston(y, 0.5, variant="sba"), [0.75, 0.0, 1.5, 1.875])
    # a single spike: size 10 over an interval of 4 periods (counted from the first observed one)
    np.testing.assert_allclose(croston(np.array([[0, 0, 0, 10, 0, 0.0]]), 0.2), [2.5])
    with pytest.raises(ValueError, match="variant"):
        croston(y, 0.5, variant="nope")


def test_tsb_decays_after_demand_stops() -> None:
    y = np.array([[0, 0, 3, 0, 0, 3.0]])
    # p0 = 2/6; p: 1/6, 7/12, 7/24, 7/48, 55/96 ; size 3
    np.testing.assert_allclose(tsb(y, 0.5, 0.5), [3 * 55 / 96])
    stopped = tsb(np.array([[4, 4, 4, 4, 0, 0, 0, 0, 0, 0.0]]), 0.5, 0.5)
    assert 0 < stopped[0] < 4 * 0.6**6  # probability halves each empty period
    np.testing.assert_array_equal(tsb(np.zeros((2, 5)), 0.1, 0.1), [0.0, 0.0])
    np.testing.assert_allclose(tsb(np.full((1, 4), 2.0), 0.3, 0.3), [2.0])


def test_classify_demand_adi_cv2() -> None:
    y = np.array(
        [
            [2, 2, 2, 2, 2, 2.0],  # smooth: ADI 1, CV2 0
            [0, 0, 3, 0, 0, 3.0],  # intermittent: ADI 3, CV2 0
            [1, 9, 1, 9, 1, 9.0],  # erratic: ADI 1, CV2 (4^2) / 5^2 = 0.64
            [0, 1, 0, 0, 0, 9.0],  # lumpy: ADI 3, CV2 0.64
            [0, 0, 0, 0, 0, 0.0],
            [NAN, NAN, 0, 5, 0, 5.0],  # ADI over observed periods only: 4 / 2 = 2
        ]
    )
    classes, adi, cv2 = classify_demand(y)
    assert classes.tolist() == ["smooth", "intermittent", "erratic", "lumpy", "no_sales", "intermittent"]
    np.testing.assert_allclose(adi[[0, 1, 5]], [1.0, 3.0, 2.0])
    np.testing.assert_allclose(cv2[[2, 3]], [0.64, 0.64])
    assert np.isnan(adi[4]) and np.isnan(cv2[4])


def test_ses_optimized_picks_the_grid_alpha_with_least_one_step_error() -> None:
    # a level shift is followed fastest by the largest alpha; pure noise around a constant by the smallest
    shift = np.array([[0, 0, 0, 0, 10, 10, 10, 10, 10, 10.0]])
    noise = np.array([[5, 0, 5, 0, 5, 0, 5, 0, 5, 0.0]])
    level, alpha = ses_optimized(np.vstack([shift, noise]), (0.1, 0.5, 0.9))
    assert alpha.tolist() == [0.9, 0.1]
    np.testing.assert_allclose(level, [ses(shift, 0.9)[0], ses(noise, 0.1)[0]])
    # every alpha of every series is run at once: the same as running each series alone
    np.testing.assert_allclose(ses_optimized(noise, (0.1, 0.5, 0.9))[0], level[1:])


def test_adida_aggregates_by_mean_interval_and_spreads_back() -> None:
    # a demand of 6 every third period: buckets of 3 sum to 6 each -> 6 / 3 = 2 per period
    every3 = np.array([[0, 0, 6] * 6], dtype=float)
    np.testing.assert_allclose(adida(every3), [2.0])
    # smooth demand: buckets of one period, i.e. optimised SES on the series itself
    smooth = np.array([[4, 5, 6, 5, 4, 5, 6, 5.0]])
    np.testing.assert_allclose(adida(smooth), ses_optimized(smooth, tuple(np.linspace(0.1, 0.3, 9).round(3)))[0])
    # leading unobserved periods are not counted as intervals; a single spike spreads over its bucket
    late = np.array([[NAN, NAN, NAN, NAN, 0, 0, 0, 8.0]])
    np.testing.assert_allclose(adida(late), [2.0])  # one demand in 4 observed periods: bucket 4, 8 / 4
    np.testing.assert_array_equal(adida(np.zeros((1, 6))), [0.0])


def test_kernels_on_all_zero_and_empty_history() -> None:
    for method in ("seasonal_naive", "moving_average", "ses", "ses_opt", "adida", "croston", "sba", "tsb"):
        np.testing.assert_array_equal(kernel_forecast(method, np.zeros((2, 9)), 3), np.zeros((2, 3)), err_msg=method)
        np.testing.assert_array_equal(
            kernel_forecast(method, np.full((1, 4), NAN), 2), np.zeros((1, 2)), err_msg=method
        )
    with pytest.raises(ValueError, match="unknown method"):
        kernel_forecast("prophet", np.zeros((1, 3)), 2)


def test_kernel_estimator_contract() -> None:
    est = KernelForecaster(method="sba", alpha=0.5)
    assert est.get_params()["method"] == "sba" and not hasattr(est, "history_")
    with pytest.raises(NotFittedError):
        est.predict(2)
    assert est.fit(np.array([[0, 0, 3, 0, 0, 3.0]])) is est
    np.testing.assert_allclose(est.predict(2), [[0.75, 0.75]])
    assert not hasattr(clone(est), "history_") and clone(est).get_params() == est.get_params()
    with pytest.raises(ValueError, match="unknown method"):
        KernelForecaster(method="x").fit(np.zeros((1, 3)))


# -- quantiles -----------------------------------------------------------------------------------


def test_nb_quantiles_poisson_limit_and_overdispersion() -> None:
    q = nb_quantiles(np.array([2.0, 0.0]), np.array([1.0, 3.0]))
    np.testing.assert_array_equal(q, [[2, 4, 5, 6], [0, 0, 0, 0]])  # Poisson(2) as the skeleton had
    wide = nb_quantiles(np.array([2.0]), np.array([4.0]))[0]
    assert wide[3] > 6 and (np.diff(wide) >= 0).all()


def test_dispersion_shrinks_to_group_and_floors_at_one() -> None:
    actual = np.array([[0, 10, 0, 10.0], [5, 5, 5, 5], [NAN, NAN, NAN, NAN]])
    fc = np.full((3, 4), 5.0)
    phi = dispersion(actual, fc, np.array(["a", "b", "a"]), prior_weight=0.0)
    np.testing.assert_allclose(phi[:2], [5.0, 1.0])  # 4 * 25 / 20 ; exact forecast -> Poisson floor
    assert phi[2] == pytest.approx(5.0)  # no own data: the pooled ratio of its group
    assert coverage(np.array([1.0, 2, 3, NAN]), np.array([1.0, 1, 5, 0])) == pytest.approx(2 / 3)


# -- gradient boosting -------------------------------------------------------------------------


def _weekly_panel(n: int, days: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = rng.uniform(1, 8, n)[:, None]
    week = np.array([0.5, 0.6, 0.8, 1.0, 1.2, 1.8, 2.1])
    return rng.poisson(level * week[np.arange(days) % 7][None, :]).astype(float)


def test_origin_features_use_only_the_past() -> None:
    y = np.arange(30, dtype=float)[None, :]
    X, names = origin_features(y, origin=20, horizon=3, season=7, n_lags=2, windows=(7,))
    f = dict(zip(names, X[0], strict=True))
    assert f["lag_1"] == 19 and f["lag_2"] == 18 and f["mean_7"] == 16.0 and f["horizon"] == 1
    # same weekday as target day 20: days 13, 6 (and -1, -8 unobserved)... last four: -8, -1, 6, 13
    assert f["same_season_last"] == 13 and f["same_season_mean"] == pytest.approx(9.5)
    assert X[:, names.index("horizon")].tolist() == [1, 2, 3] and (X[:, names.index("age")] == 20).all()
    values = [i for i, n in enumerate(names) if n.startswith(("lag_", "mean_", "same_season"))]
    assert X[:, values].max() < 20  # no value at or after the origin leaks into the features


def test_group_features_pool_the_recent_level_of_each_group() -> None:
    y = np.array([[1, 1, 1, 1.0], [3, 3, 3, 3.0], [NAN, NAN, 10, 10.0], [NAN, NAN, NAN, NAN]])
    groups = np.array([[0, 0], [0, 1], [1, 1], [1, 0]])
    G, names = group_features(y, origin=4, groups=groups, windows=(2,))
    assert names == ["group0_mean_2", "group1_mean_2"]
    # group 0 of column 0 = series 0 and 1: (1 + 3) / 2; series 3 has no observation: left out
    np.testing.assert_allclose(G[:, 0], [2.0, 2.0, 10.0, 10.0])
    np.testing.assert_allclose(G[:, 1], [1.0, 6.5, 6.5, 1.0])
    # only the past: the features at origin 2 do not see periods 2 and 3
    G2, _ = group_features(y, origin=2, groups=groups, windows=(2,))
    assert np.isnan(G2[2, 0]) and G2[0, 0] == 2.0


def test_covariate_features_use_past_observed_values_only() -> None:
    # one covariate (price / list price): a promotion at 0.5 in periods 2..3, unknown in period 4
    cov = np.array([[1.0, 1.0, 0.5, 0.5, NAN, 1.0]])[:, :, None]
    C, names = covariate_features(cov, origin=5, windows=(2, 4))
    assert names == ["cov0_mean_2", "cov0_mean_4"]
    np.testing.assert_allclose(C[0], [0.5, (1.0 + 0.5 + 0.5) / 3])  # NaN left out; period 5 not seen
    C1, _ = covariate_features(cov, origin=1, windows=(2,))
    np.testing.assert_allclose(C1[0], [1.0])


def test_gbm_uses_a_promotion_covariate() -> None:
    # demand doubles in the week after a promotion ends (the only thing that tells it is the price)
    rng = np.random.default_rng(5)
    n, T = 60, 126
    promo = np.ones((n, T))
    weeks = rng.integers(0, 2, size=(n, T // 7)).repeat(7, axis=1)
    promo = np.where(weeks == 1, 0.7, 1.0)
    after = np.concatenate([np.zeros((n, 7)), (promo[:, :-7] < 1)], axis=1)
    y = rng.poisson(3.0 * (1 + after)).astype(float)
    est = GlobalGBMForecaster(horizon=7, n_origins=10, origin_step=7, max_iter=60, windows=(7, 28), random_state=0)
    with_cov = clone(est).fit(y[:, :-7], covariates=promo[:, :, None])
    without = clone(est).fit(y[:, :-7])
    assert "cov0_mean_7" in with_cov.feature_names_
    err_with = ((with_cov.predict() - y[:, -7:]) ** 2).mean()
    err_without = ((without.predict() - y[:, -7:]) ** 2).mean()
    assert err_with < err_without


def test_gbm_estimator_contract_determinism_and_weekly_pattern() -> None:
    y = _weekly_panel(40, 140, 0)
    est = GlobalGBMForecaster(horizon=7, n_origins=4, origin_step=7, max_iter=40, windows=(7, 28), random_state=3)
    assert "max_iter" in est.get_params() and not hasattr(est, "model_")
    with pytest.raises(NotFittedError):
        est.predict()
    p1 = est.fit(y[:, :-7]).predict()
    p2 = clone(est).fit(y[:, :-7]).predict()
    np.testing.assert_array_equal(p1, p2)
    assert p1.shape == (40, 7) and (p1 >= 0).all()
    flat = kernel_forecast("moving_average", y[:, :-7], 7)
    actual = y[:, -7:]
    assert ((p1 - actual) ** 2).mean() < ((flat - actual) ** 2).mean()
    with pytest.raises(ValueError, match="too short"):
        clone(est).fit(y[:, :10])


def test_recursive_strategy_feeds_forecasts_back_and_learns_the_weekly_pattern() -> None:
    y = _weekly_panel(40, 140, 0)
    est = GlobalGBMForecaster(
        horizon=7, n_origins=4, origin_step=7, max_iter=40, windows=(7, 28), strategy="recursive", random_state=3
    )
    p = est.fit(y[:, :-7]).predict()
    assert p.shape == (40, 7) and (p >= 0).all() and est.n_train_rows_ <= 40 * 28
    np.testing.assert_array_equal(p, clone(est).fit(y[:, :-7]).predict())
    flat = kernel_forecast("moving_average", y[:, :-7], 7)
    assert ((p - y[:, -7:]) ** 2).mean() < ((flat - y[:, -7:]) ** 2).mean()
    # step k is the one-step model applied to the history extended with steps 1..k-1
    step2 = est.predict_from(np.hstack([y[:, :-7], p[:, :1]]))[:, 0]
    np.testing.assert_allclose(step2, p[:, 1])
    with pytest.raises(ValueError, match="strategy"):
        GlobalGBMForecaster(strategy="sideways").fit(y)


# -- selection ------------------------------------------------------------------------------------


def test_selection_picks_the_model_each_series_was_built_for() -> None:
    rng = np.random.default_rng(7)
    days = 112
    weekly = np.tile(np.array([0, 0, 0, 0, 0, 12.0, 12.0]), days // 7)[None, :].repeat(6, axis=0)
    noisy = rng.poisson(5.0, size=(6, days)).astype(float)
    short = np.full((1, days), NAN)
    short[0, -10:] = [1, 0, 2, 0, 1, 1, 0, 3, 0, 1]
    zero = np.zeros((1, days))
    y = np.vstack([weekly, noisy, short, zero])
    sel = ForecastSelector(horizon=14, n_folds=2, use_gbm=False, min_gain=0.1).fit(y)
    assert sel.model_[:6].tolist() == ["seasonal_naive"] * 6
    assert "seasonal_naive" not in sel.model_[6:12].tolist()
    assert sel.short_[12] and sel.model_[12] == sel.best_global_
    assert sel.model_[13] == "zero_no_sales" and (sel.mean_[13] == 0).all()
    np.testing.assert_allclose(sel.mean_[0], np.tile([0, 0, 0, 0, 0, 12.0, 12.0], 2))
    q = sel.predict_quantiles()
    assert q.shape == (14, 14, 4) and (np.diff(q, axis=2) >= 0).all()
    lt = sel.lead_time_quantiles(7)
    assert lt.shape == (14, 4) and (lt[6:12, 0] > q[6:12, 0, 0]).all()
    same = clone(sel).fit(y)
    np.testing.assert_array_equal(same.mean_, sel.mean_)


def test_auto_min_gain_is_chosen_on_the_held_out_fold() -> None:
    rng = np.random.default_rng(3)
    days = 140
    # identical Poisson series: any per-series switch is noise; the chosen guard keeps (nearly)
    # every series on the globally best model and did no worse on the held-out fold than 0.1
    same = rng.poisson(4.0, size=(200, days)).astype(float)
    sel = ForecastSelector(horizon=14, n_folds=3, use_gbm=False, min_gain="auto").fit(same)
    assert set(sel.gain_scores_) == {0.1, 0.2, 0.3, 0.5}
    assert sel.min_gain_ == min(sel.gain_scores_, key=sel.gain_scores_.get)
    assert sel.gain_scores_[sel.min_gain_] <= sel.gain_scores_[0.1]
    assert (sel.model_ != sel.best_global_).mean() <= 0.02
    fixed = ForecastSelector(horizon=14, n_folds=3, use_gbm=False, min_gain=0.1).fit(same)
    assert fixed.min_gain_ == 0.1
    # series built for different models keep their own model under the chosen guard
    weekly = np.tile(np.array([0, 0, 0, 0, 0, 12.0, 12.0]), days // 7)[None, :].repeat(20, axis=0)
    mixed = ForecastSelector(horizon=14, n_folds=3, use_gbm=False, min_gain="auto").fit(np.vstack([weekly, same]))
    assert mixed.model_[:20].tolist() == ["seasonal_naive"] * 20
    with pytest.raises(ValueError, match="min_gain"):
        ForecastSelector(min_gain="sometimes").fit(same)


def test_selection_quantiles_are_calibrated_on_overdispersed_demand() -> None:
    rng = np.random.default_rng(11)
    n, days, h = 300, 140, 14
    mu = rng.uniform(1, 6, n)[:, None]
    y = rng.negative_binomial(2, 2 / (2 + mu), size=(n, days)).astype(float)  # var = mu + mu^2 / 2
    sel = ForecastSelector(horizon=h, n_folds=3, use_gbm=False).fit(y[:, :-h])
    q = sel.predict_quantiles((0.9, 0.95))
    cov90, cov95 = coverage(y[:, -h:], q[..., 0]), coverage(y[:, -h:], q[..., 1])
    assert 0.87 <= cov90 <= 0.96 and 0.92 <= cov95 <= 0.985, (cov90, cov95)


def test_selector_with_gbm_candidate_runs_and_is_deterministic() -> None:
    y = _weekly_panel(30, 154, 1)
    params = {"max_iter": 30, "n_origins": 3, "origin_step": 7, "windows": (7, 28)}
    a = ForecastSelector(horizon=7, n_folds=2, gbm_params=params).fit(y)
    b = ForecastSelector(horizon=7, n_folds=2, gbm_params=params).fit(y)
    assert "gbm" in a.candidates_ and a.scores_.shape == (30, len(a.candidates_))
    np.testing.assert_array_equal(a.mean_, b.mean_)
    assert a.best_global_ in ("gbm", "seasonal_naive")  # a weekly pattern: a flat model cannot win
    c = ForecastSelector(horizon=7, n_folds=2, gbm_params=params, gbm_refit_per_fold=True).fit(y)
    g = a.candidates_.index("gbm")
    np.testing.assert_array_equal(c.fold_candidates_[g][:, :7], a.fold_candidates_[g][:, :7])  # same first fold
    assert not np.array_equal(c.fold_candidates_[g][:, 7:], a.fold_candidates_[g][:, 7:])  # refitted for the second


def test_combination_weight_is_chosen_on_the_backtest_and_applied_to_the_final_forecast() -> None:
    y = _weekly_panel(30, 154, 1)
    params = {"max_iter": 30, "n_origins": 3, "origin_step": 7, "windows": (7, 28)}
    sel = ForecastSelector(horizon=7, n_folds=2, gbm_params=params, gbm_refit_per_fold=True).fit(y)
    names = sel.candidates_
    if sel.combination_ is None:  # no mix beat the GBM alone on the backtest
        assert not any(n.startswith("gbm+") for n in names)
    else:
        partner, w = sel.combination_
        mix = names.index(f"gbm+{partner}")
        expected = (
            w * sel.candidate_forecasts_[names.index("gbm")] + (1 - w) * sel.candidate_forecasts_[names.index(partner)]
        )
        np.testing.assert_allclose(sel.candidate_forecasts_[mix], expected)
        # and it is the best mix on the backtest: its total error is below the GBM's alone
        glob = sel._global_score(sel.fold_candidates_)
        assert glob[mix] <= glob[names.index("gbm")]
    # combine() on hand-made rows
    f = np.array([[[2.0]], [[4.0]]])
    np.testing.assert_allclose(combine(f, ["gbm", "ses"], ("ses", 0.75))[2], [[2.5]])
    assert combine(f, ["gbm", "ses"], None) is f
    off = ForecastSelector(horizon=7, n_folds=2, gbm_params=params, combine_gbm=False).fit(y)
    assert off.combination_ is None and not any(n.startswith("gbm+") for n in off.candidates_)


# -- calendar and artifacts ---------------------------------------------------------------------


def test_china_calendar_spring_festival_golden_week_and_festivals() -> None:
    cal = china_calendar(pd.Timestamp("2026-01-01"), pd.Timestamp("2026-12-31"))
    assert cal.loc["2026-02-17", "holiday"] == 1 and cal.loc["2026-02-17", "days_to_spring_festival"] == 0
    assert (
        cal.loc["2026-02-10", "days_to_spring_festival"] == 7 and cal.loc["2026-02-20", "days_to_spring_festival"] == -3
    )
    assert cal.loc["2026-10-01":"2026-10-07", "holiday"].eq(1).all() and cal.loc["2026-10-08", "holiday"] == 0
    assert cal.loc["2026-11-11", "festival"] == 1 and cal.loc["2026-06-18", "festival"] == 1
    assert cal.loc["2026-11-09", "days_to_event"] == 2 and cal.loc["2026-07-15", "festival"] == 0
    with pytest.raises(ValueError, match="2015-2035"):
        china_calendar(pd.Timestamp("2040-01-01"), pd.Timestamp("2040-01-02"))


def test_m5_calendar_reader(tmp_path) -> None:
    p = tmp_path / "calendar.csv"
    p.write_text(
        "date,wm_yr_wk,weekday,wday,month,year,d,event_name_1,event_type_1,event_name_2,event_type_2,snap_CA,snap_TX,snap_WI\n"
        "2016-02-06,1,Saturday,1,2,2016,d_1,,,,,1,0,1\n"
        "2016-02-07,1,Sunday,2,2,2016,d_2,SuperBowl,Sporting,,,1,1,0\n"
    )
    cal = m5_calendar(p)
    assert cal["event"].tolist() == [0, 1] and cal["event_sporting"].tolist() == [0, 1]
    assert cal["snap_TX"].tolist() == [0, 1] and cal["days_to_event"].tolist() == [1, 0]
    (tmp_path / "bad.csv").write_text("date,snap_CA\n2016-01-01,1\n")
    with pytest.raises(ValueError, match="missing columns"):
        m5_calendar(tmp_path / "bad.csv")


def test_artifacts_promote_only_if_not_worse(tmp_path) -> None:
    d = date(2026, 1, 10)
    v1 = artifacts.save(tmp_path, d, {"w": 1}, {"backtest": {"score": 0.5}})
    assert artifacts.current_version(tmp_path) is None
    assert artifacts.promote(tmp_path, v1.name)[0] and artifacts.current_version(tmp_path) == "v2026-01-10-01"
    v2 = artifacts.save(tmp_path, d, {"w": 2}, {"backtest": {"score": 0.6}})
    ok, reason = artifacts.promote(tmp_path, v2.name)
    assert not ok and "worse" in reason and artifacts.current_version(tmp_path) == v1.name
    v3 = artifacts.save(tmp_path, date(2026, 1, 17), {"w": 3}, {"backtest": {"score": 0.5}})
    assert artifacts.promote(tmp_path, v3.name)[0]
    model, meta = artifacts.load_current(tmp_path)
    assert model == {"w": 3} and meta["version"] == "v2026-01-17-01"
    assert json.loads((v2 / "metadata.json").read_text())["version"] == "v2026-01-10-02"


def test_an_unscored_model_never_replaces_a_scored_one_and_any_scored_one_replaces_it(tmp_path) -> None:
    """A retrain whose backtest window holds no sale has no score (not 0.0): it is not promoted over a
    scored model; as the first model it is used, and the next scored one replaces it."""
    d = date(2026, 1, 10)
    first = artifacts.save(tmp_path, d, {"w": 0}, {"backtest": {"score": None}})
    ok, reason = artifacts.promote(tmp_path, first.name)
    assert ok and "no backtest score" in reason
    scored = artifacts.save(tmp_path, date(2026, 1, 17), {"w": 1}, {"backtest": {"score": 0.9}})
    ok, reason = artifacts.promote(tmp_path, scored.name)
    assert ok and "which had no backtest score" in reason and artifacts.current_version(tmp_path) == scored.name
    empty = artifacts.save(tmp_path, date(2026, 1, 24), {"w": 2}, {"backtest": {"score": None}})
    ok, reason = artifacts.promote(tmp_path, empty.name)
    assert not ok and "no sale in its backtest window" in reason and artifacts.current_version(tmp_path) == scored.name


def test_gbm_row_weights_follow_the_volume_weighted_metric() -> None:
    # last 2 periods before origin 5 (h = 2): levels 2, 2 and none (floored at 1 unit per window)
    y = np.array([[0.0, 1.0, 1.0, 1.0, 3.0], [2.0, 2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    est = GlobalGBMForecaster(horizon=2, row_weights="level")
    np.testing.assert_allclose(est._series_weights(y, 5), [2.0, 2.0, 0.5])
    est.set_params(row_weights="metric")
    # squared naive scale from the first sale: series 0 diffs 0, 0, 2 -> 4/3; series 1: 0 (no
    # scale: the median of the known ones, 4/3); series 2 never sold (same)
    np.testing.assert_allclose(
        est._series_weights(y, 5), [2 * 2 * 2 / (4 / 3), 2 * 2 * 2 / (4 / 3), 0.5 * 2 * 0.5 / (4 / 3)]
    )
    np.testing.assert_allclose(est.set_params(row_weights="none")._series_weights(y, 5), [1.0, 1.0, 1.0])


def test_gbm_row_weights_change_the_fit_and_stay_deterministic() -> None:
    y = _weekly_panel(40, 140, 0) * np.repeat([1.0, 20.0], 20)[:, None]
    base = GlobalGBMForecaster(horizon=7, n_origins=4, origin_step=7, max_iter=30, windows=(7, 28), random_state=3)
    plain = clone(base).fit(y[:, :-7]).predict()
    w1 = clone(base).set_params(row_weights="metric").fit(y[:, :-7]).predict()
    w2 = clone(base).set_params(row_weights="metric").fit(y[:, :-7]).predict()
    np.testing.assert_array_equal(w1, w2)
    assert not np.allclose(plain, w1)
    with pytest.raises(ValueError, match="row_weights"):
        clone(base).set_params(row_weights="dollars").fit(y[:, :-7])


def test_gbm_on_a_history_shorter_than_its_longest_window_fits_and_all_zero_demand_is_named() -> None:
    # a history shorter than the longest window fits; all-zero demand is refused by name (it was
    # scikit-learn's "loss='poisson' requires ... sum(y) > 0")
    y = np.random.default_rng(5).poisson(2.0, size=(6, 30)).astype(float)
    est = GlobalGBMForecaster(horizon=7, n_origins=3, origin_step=7, max_iter=20, windows=(7, 56), random_state=0)
    est.fit(y)
    assert np.isfinite(est.predict()).all()
    with pytest.raises(ValueError, match="no demand to learn from"):
        clone(est).fit(np.zeros((6, 30)))
