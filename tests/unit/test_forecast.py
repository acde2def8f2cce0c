"""Moving-average kernel, estimator, forecast and backtest accuracy on hand-made series."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from models.baselines import MovingAverageForecaster, moving_average, naive_mae, poisson_quantiles
from pipelines import contract
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.forecast import (
    daily_matrix,
    forecast_accuracy,
    forecast_moving_average,
    forecast_stage,
    history_matrix,
    model_dir,
    retrain_stage,
    series_keys,
    stock_totals,
)

RUN = date(2026, 1, 10)
D = pd.Timestamp


def items(*rows: tuple[str, bool]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sku": [r[0] for r in rows],
            "name": [f"商品{r[0]}" for r in rows],
            "name_en": None,
            "category": "c1",
            "unit_cost": 1.0,
            "unit_price": 2.0,
            "pack_size": 1,
            "shelf_life_days": None,
            "abc_override": None,
            "active": [r[1] for r in rows],
        }
    )


def sales(*rows: tuple[str, str, str, float]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["sku", "location", "date", "quantity"])
    return contract.conform(df.assign(returns=0.0, revenue=df["quantity"] * 2.0), "sales")


def stock(*rows: tuple[str, str, float], snapshot: date = RUN) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["sku", "location", "on_hand"])
    return contract.conform(
        df.assign(snapshot_date=D(snapshot), lot="", expiry_date=None, in_transit=0.0, reserved=0.0), "stock"
    )


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


def test_naive_mae() -> None:
    np.testing.assert_allclose(naive_mae(np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]])), [1.5, 0.0])
    assert np.isnan(naive_mae(np.array([[4.0]]))[0])


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
    s = sales(("A", "S1", "2026-01-07", 2), ("A", "S1", "2026-01-09", 5), ("B", "S1", "2026-01-08", 1))
    keys = pd.DataFrame({"sku": ["A", "B", "C"], "location": ["S1", "S1", "S1"]})
    y = daily_matrix(s, keys, D("2026-01-07"), D("2026-01-10"))
    np.testing.assert_array_equal(y, [[2, 0, 5], [0, 1, 0], [0, 0, 0]])


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
    it = items(("A", True), ("B", True), ("C", False), ("D", True))
    s = sales(("A", "S1", "2026-01-01", 1), ("C", "S1", "2026-01-02", 1), ("D", "S2", "2026-01-10", 3))
    st = stock(("B", "S2", 0.0), ("C", "S2", 4.0))
    keys = series_keys(s, it, st, RUN)
    # D only sold on the run date itself, which the run does not see
    assert list(zip(keys["sku"], keys["location"], strict=True)) == [("A", "S1"), ("B", "S2")]


def test_forecast_moving_average_hand_computed() -> None:
    it = items(("A", True), ("B", True), ("C", False))
    s = sales(
        ("A", "S1", "2026-01-01", 1),
        ("A", "S1", "2026-01-06", 2),
        ("A", "S1", "2026-01-08", 6),
        ("A", "S1", "2026-01-10", 50),  # the run date: not seen
        ("A", "S2", "2026-01-01", 4),  # outside the window
        ("C", "S1", "2026-01-08", 9),  # inactive
    )
    st = stock(("B", "S1", 5.0), ("A", "S1", 1.0))
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
    s = sales(("A", "S1", "2026-01-06", 2), ("A", "S1", "2026-01-08", 6))
    fc = forecast_moving_average(s, items(("A", True)), stock(), RUN, horizon_days=1, window_days=28)
    assert fc["mean"].tolist() == [2.0]  # 8 units over the 4 days 01-06 .. 01-09 the history has


def test_forecast_with_no_sales_at_all() -> None:
    fc = forecast_moving_average(sales(), items(("A", True)), stock(("A", "S1", 3.0)), RUN, 2, 28)
    assert fc["mean"].tolist() == [0.0, 0.0] and set(fc["model"]) == {"zero_no_sales"}


def test_forecast_accuracy_hand_computed() -> None:
    s = sales(
        ("A", "S1", "2026-01-05", 1),
        ("A", "S1", "2026-01-06", 2),
        ("A", "S1", "2026-01-07", 4),
        ("A", "S1", "2026-01-08", 3),
        ("A", "S1", "2026-01-09", 5),
        ("B", "S1", "2026-01-06", 1),
        ("B", "S1", "2026-01-07", 1),
    )
    acc = forecast_accuracy(s, items(("A", True), ("B", True)), stock(), RUN, window_days=2, holdout_days=2)
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
    s = sales(("A", "S1", "2026-01-08", 3))
    acc = forecast_accuracy(s, items(("A", True)), stock(), RUN, window_days=2, holdout_days=2)
    assert acc.empty and list(acc.columns) == [c for c in contract.FORECAST_ACCURACY.names if c != "run_id"]


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
    ctx.write("items", items(("A", True), ("B", True)))
    ctx.write("sales", sales(("A", "S1", "2026-01-03", 2), ("A", "S1", "2026-01-09", 4)))
    ctx.write("stock", stock(("B", "S2", 1.0)))
    res = forecast_stage(ctx)
    assert res.stage == "forecast"
    assert res.counts == {"forecasts": 10, "forecast_accuracy": 2}
    fc = ctx.read("forecasts")
    assert set(fc["run_id"]) == {"test"} and set(fc["run_date"]) == {D(RUN)}
    assert fc.loc[fc["sku"] == "A", "mean"].tolist() == [1.0] * 5
    assert res.paths["forecasts"] == str(ctx.path("forecasts"))
    acc = ctx.read("forecast_accuracy")
    assert set(acc["run_id"]) == {"test"}
    # deterministic: a second run writes identical files
    first = ctx.path("forecasts").read_bytes()
    forecast_stage(ctx)
    assert ctx.path("forecasts").read_bytes() == first


# -- selected models: train when none exists, predict from the current version, retrain ------------


def _weekly_sales(days: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range(D(RUN) - pd.Timedelta(days=days), periods=days, freq="D")
    rows = []
    week = np.array([1, 1, 1, 1, 2, 4, 4])
    for sku, loc, level in (("A", "S1", 3.0), ("A", "S2", 1.0), ("B", "S1", 0.2)):
        qty = rng.poisson(level * week[dates.dayofweek.to_numpy()])
        rows += [(sku, loc, d.date().isoformat(), float(q)) for d, q in zip(dates, qty, strict=True) if q > 0]
    rows.append(("C", "S1", (D(RUN) - pd.Timedelta(days=5)).date().isoformat(), 2.0))  # launched 5 days ago
    return sales(*rows)


def test_history_matrix_is_nan_before_first_sale() -> None:
    s = sales(("A", "S1", "2026-01-07", 2), ("B", "S1", "2026-01-09", 1))
    keys = pd.DataFrame({"sku": ["A", "B", "Z"], "location": ["S1", "S1", "S1"]})
    y = history_matrix(s, keys, D("2026-01-06"), D("2026-01-10"))
    np.testing.assert_array_equal(y, [[np.nan, 2, 0, 0], [np.nan, np.nan, np.nan, 1], [np.nan] * 4])


def test_selected_stage_trains_once_then_predicts_from_current_model(tmp_path) -> None:
    cfg = load_config(
        overrides={
            "staging_dir": str(tmp_path / "s"),
            "output_dir": str(tmp_path / "o"),
            "forecast": {"horizon_days": 7, "history_days": 140, "backtest_folds": 2, "gbm_max_iter": 20},
        }
    )
    ctx = RunContext(cfg, RUN)
    ctx.write_json("run", {"run_id": "test"})
    ctx.write("items", items(("A", True), ("B", True), ("C", True), ("D", True)))
    ctx.write("sales", _weekly_sales(140))
    ctx.write("stock", stock(("D", "S1", 3.0)))
    res = forecast_stage(ctx)
    assert res.counts["forecasts"] == 5 * 7 and "trained v2026-01-10-01" in res.notes[0]
    root = model_dir(cfg)
    assert root == tmp_path / "models" and (root / "CURRENT").read_text().strip() == "v2026-01-10-01"
    meta = json.loads((root / "v2026-01-10-01" / "metadata.json").read_text())
    assert meta["training_window"][1] == "2026-01-09" and meta["horizon_days"] == 7
    assert "gbm" in meta["candidates"] and meta["backtest"]["score"] > 0 and "lag_1" in meta["features"]["gbm"]
    fc = ctx.read("forecasts")
    first = ctx.path("forecasts").read_bytes()
    by = fc.groupby(["sku", "location"])["model"].first().to_dict()
    assert by[("D", "S1")] == "zero_no_sales" and by[("C", "S1")] != "zero_no_sales"
    assert (fc[["p50", "p90", "p95", "p99"]].diff(axis=1).iloc[:, 1:] >= 0).all().all()
    a1 = fc[(fc["sku"] == "A") & (fc["location"] == "S1")]
    assert a1["mean"].sum() > 3 * fc[(fc["sku"] == "A") & (fc["location"] == "S2")]["mean"].sum() * 0.8
    acc = ctx.read("forecast_accuracy")
    # observed backtest days: 7, C only since its launch 5 days ago, D never sold
    assert len(acc) == 5 and acc.set_index("sku")["window_days"].to_dict() == {"A": 7, "B": 7, "C": 5, "D": 0}
    contract.conform(fc, "forecasts")
    contract.conform(acc, "forecast_accuracy")
    # second night: the stored model is used and the output is identical
    res2 = forecast_stage(ctx)
    assert "model v2026-01-10-01" in res2.notes[0] and ctx.path("forecasts").read_bytes() == first
    # weekly retrain on the same data: same backtest score, so the new version replaces it (not worse)
    rr = retrain_stage(ctx)
    assert "v2026-01-10-02 replaces v2026-01-10-01" in rr.notes[0]
    assert (root / "CURRENT").read_text().strip() == "v2026-01-10-02"
