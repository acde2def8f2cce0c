"""The selected-model forecast stage with its model store: the first night trains (GBM candidate
included) and publishes version v2026-01-10-01, the next night predicts from it byte for byte,
a recorded lead time changes the lead-time demand, the weekly retrain replaces the version
(split from tests/unit/test_forecast.py: it trains models and writes artifacts)."""

from __future__ import annotations

import json
from datetime import date
from functools import partial

import numpy as np
import pandas as pd
import pytest

from models import artifacts
from pipelines import contract
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.forecast import (
    ForecastError,
    forecast_stage,
    model_dir,
    retrain_stage,
)
from tests.factories import active_items, lead_times, sales, stock

# trains the GBM candidate, writes and reloads model artifacts, runs the stage four times
pytestmark = pytest.mark.integration

RUN = date(2026, 1, 10)
D = pd.Timestamp
# sales at 2.0 a unit; stock as (sku, location, on_hand) on the run date unless a test says otherwise
priced_sales = partial(sales, unit_price=2.0)
stock_on_hand = partial(stock, columns=("sku", "location", "on_hand"), snapshot=RUN)


def _weekly_sales(days: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range(D(RUN) - pd.Timedelta(days=days), periods=days, freq="D")
    rows = []
    week = np.array([1, 1, 1, 1, 2, 4, 4])
    for sku, loc, level in (("A", "S1", 3.0), ("A", "S2", 1.0), ("B", "S1", 0.2)):
        qty = rng.poisson(level * week[dates.dayofweek.to_numpy()])
        rows += [(sku, loc, d.date().isoformat(), float(q)) for d, q in zip(dates, qty, strict=True) if q > 0]
    rows.append(("C", "S1", (D(RUN) - pd.Timedelta(days=5)).date().isoformat(), 2.0))  # launched 5 days ago
    return priced_sales(*rows)


def _check_first_night_forecasts(fc: pd.DataFrame, acc: pd.DataFrame) -> dict:
    """Checks of the first night's forecasts and backtest accuracy; returns the model per series."""
    by = fc.groupby(["sku", "location"])["model"].first().to_dict()
    assert by[("D", "S1")] == "zero_no_sales" and by[("C", "S1")] != "zero_no_sales"
    assert (fc[["p50", "p90", "p95", "p99"]].diff(axis=1).iloc[:, 1:] >= 0).all().all()
    a1 = fc[(fc["sku"] == "A") & (fc["location"] == "S1")]
    assert a1["mean"].sum() > 3 * fc[(fc["sku"] == "A") & (fc["location"] == "S2")]["mean"].sum() * 0.8
    # observed backtest days: 7, C only since its launch 5 days ago, D never sold
    assert len(acc) == 5 and acc.set_index("sku")["window_days"].to_dict() == {"A": 7, "B": 7, "C": 5, "D": 0}
    contract.conform(fc, "forecasts")
    contract.conform(acc, "forecast_accuracy")
    return by


def _check_defaulted_lead_time_demand(ltd: pd.DataFrame, fc: pd.DataFrame, by: dict, root) -> None:
    """Lead-time demand with the policy's default lead time (7 days = the horizon), dispersion as stored."""
    contract.conform(ltd, "lead_time_demand", extra="error")
    assert not ltd.duplicated(["run_date", "sku", "location"]).any() and set(ltd["run_id"]) == {"test"}
    assert set(ltd["lead_time_days"]) == {7} and ltd["lead_time_defaulted"].all()  # policy default
    q = ltd[["p50", "p90", "p95", "p99"]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all() and (q == np.round(q)).all()
    by_key = ltd.set_index(["sku", "location"])
    assert (by_key.loc[("D", "S1"), ["mean", "p50", "p90", "p95", "p99"]] == 0).all()
    assert by_key.loc[("D", "S1"), "explanation_en"].startswith("No sale recorded")
    sums = fc.groupby(["sku", "location"])["mean"].sum()  # 7-day horizon = 7-day lead time
    np.testing.assert_allclose(by_key["mean"], sums.loc[by_key.index])
    assert (by_key["model"] == pd.Series(by).loc[by_key.index]).all()
    assert ltd["explanation_en"].str.contains("7-day lead time").all() and ltd["explanation_zh"].str.len().gt(0).all()
    loaded = artifacts.load_current(root)
    assert loaded is not None
    stored = loaded[0].series_.set_index(["sku", "location"])
    assert set(stored["lead_time_days"]) == {7} and (stored["phi_own_lead_time"] >= 1).all()
    np.testing.assert_allclose(by_key["dispersion"], stored.loc[by_key.index, "phi_own_lead_time"])


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
    ctx.write("items", active_items(("A", True), ("B", True), ("C", True), ("D", True)))
    ctx.write("sales", _weekly_sales(140))
    ctx.write("stock", stock_on_hand(("D", "S1", 3.0)))
    said: list[str] = []
    res = forecast_stage(ctx, progress=said.append)
    assert res.counts["forecasts"] == 5 * 7 and "trained v2026-01-10-01" in res.notes[0]
    # a long stage says where it is, with the seconds so far
    assert [line.split(":")[0] for line in said] == ["forecast"] * 5
    assert (
        "training one" in said[1]
        and "model ready: no model yet: trained v2026-01-10-01" in said[2]
        and said[3].startswith("forecast: 5 series forecast (")
    )
    root = model_dir(cfg)
    assert root == tmp_path / "models" and (root / "CURRENT").read_text().strip() == "v2026-01-10-01"
    meta = json.loads((root / "v2026-01-10-01" / "metadata.json").read_text())
    assert meta["training_window"][1] == "2026-01-09" and meta["horizon_days"] == 7
    assert "gbm" in meta["candidates"] and meta["backtest"]["score"] > 0 and "lag_1" in meta["features"]["gbm"]
    fc = ctx.read("forecasts")
    first = ctx.path("forecasts").read_bytes()
    by = _check_first_night_forecasts(fc, ctx.read("forecast_accuracy"))
    # lead-time demand: one row per series, its own lead time, dispersion stored at training
    assert any("no lead_times file" in note for note in res.notes)
    assert res.counts["lead_time_demand"] == 5
    _check_defaulted_lead_time_demand(ctx.read("lead_time_demand"), fc, by, root)
    first_ltd = ctx.path("lead_time_demand").read_bytes()
    # second night: the stored model is used and the output is identical
    res2 = forecast_stage(ctx)
    assert "model v2026-01-10-01" in res2.notes[0] and ctx.path("forecasts").read_bytes() == first
    assert ctx.path("lead_time_demand").read_bytes() == first_ltd
    # a recorded lead time for A at S1 (3.5 -> 4 days): four days of its forecast, not defaulted
    ctx.write("lead_times", lead_times(("A", "S1", 3.5)))
    forecast_stage(ctx)
    a1 = ctx.read("lead_time_demand").set_index(["sku", "location"]).loc[("A", "S1")]
    assert a1["lead_time_days"] == 4 and not a1["lead_time_defaulted"]
    fa = fc[(fc["sku"] == "A") & (fc["location"] == "S1")]
    np.testing.assert_allclose(a1["mean"], fa.loc[fa["horizon"] <= 4, "mean"].sum())
    # weekly retrain on the same data: same backtest score, so the new version replaces it (not worse)
    rr = retrain_stage(ctx)
    assert "v2026-01-10-02 replaces v2026-01-10-01" in rr.notes[0]
    assert (root / "CURRENT").read_text().strip() == "v2026-01-10-02"


def _store_ctx(tmp_path, run: date = RUN) -> RunContext:
    cfg = load_config(
        overrides={
            "staging_dir": str(tmp_path / "s"),
            "output_dir": str(tmp_path / "o"),
            "forecast": {"horizon_days": 7, "history_days": 140, "backtest_folds": 2, "gbm_max_iter": 20},
        }
    )
    ctx = RunContext(cfg, run)
    ctx.write_json("run", {"run_id": "test"})
    ctx.write("items", active_items(("A", True), ("B", True), ("C", True)))
    ctx.write("stock", stock_on_hand(("A", "S1", 3.0)))
    return ctx


def test_one_day_of_history_is_never_promoted_and_later_retrains_are(tmp_path) -> None:
    """Issue 20: a first run on one day of history made its model current with a meaningless score,
    and later retrains were measured against it. Now such a model forecasts that night only and a
    retrain on it is refused with the reason; a retrain with real history becomes current."""
    ctx = _store_ctx(tmp_path)
    ctx.write("sales", priced_sales(("A", "S1", "2026-01-09", 3.0), ("B", "S1", "2026-01-09", 1.0)))
    res = forecast_stage(ctx)
    root = model_dir(ctx.cfg)
    assert res.counts["forecasts"] > 0 and "for this run only, not made current" in res.notes[0]
    assert artifacts.current_version(root) is None
    rr = retrain_stage(ctx)
    assert rr.notes[0].startswith("no model made current: v2026-01-10-02 cannot be scored on the newest backtest")
    assert artifacts.current_version(root) is None
    meta = artifacts.read_metadata(root, "v2026-01-10-02")
    assert meta["promotion_window"]["candidate"] is None and meta["promotion_window"]["why"]
    later = _store_ctx(tmp_path, RUN)
    later.write("sales", _weekly_sales(140))
    rr = retrain_stage(later)
    assert "v2026-01-10-03 is the current model" in rr.notes[0] and artifacts.current_version(root) == "v2026-01-10-03"


def test_an_old_lucky_score_cannot_freeze_the_lifecycle(tmp_path) -> None:
    """The current model is re-scored on the candidate's newest window, not judged by the score it
    stored from an older window: a stored 0.0 no longer makes every retrain 'worse'."""
    ctx = _store_ctx(tmp_path)
    ctx.write("sales", _weekly_sales(140))
    forecast_stage(ctx)
    root = model_dir(ctx.cfg)
    meta_file = root / "v2026-01-10-01" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    meta["backtest"]["score"] = 0.0  # what a lucky, tiny backtest window once scored
    meta_file.write_text(json.dumps(meta))
    rr = retrain_stage(ctx)  # same data: the candidate is as good as the current one on the same window
    assert "v2026-01-10-02 replaces v2026-01-10-01" in rr.notes[0], rr.notes[0]
    assert "on the newest backtest window 2026-01-03..2026-01-09" in rr.notes[0]
    pw = artifacts.read_metadata(root, "v2026-01-10-02")["promotion_window"]
    # both scored on the same cells (the current model predicts them from the history before them)
    assert 0 < pw["candidate"] <= pw["current"] and pw["cells"] > 0
    assert f"{pw['candidate']:.4f} <= {pw['current']:.4f}" in rr.notes[0]
    assert artifacts.current_version(root) == "v2026-01-10-02"


def test_all_zero_history_is_refused_by_name_with_or_without_a_current_model(tmp_path) -> None:
    """Issue 20: an all-zero sales history failed inside scikit-learn ("Found array with 0
    sample(s)"). It is refused naming the table, the window and what is missing, also when a current
    model exists (which would otherwise forecast 0 everywhere without a word)."""
    ctx = _store_ctx(tmp_path)
    days = pd.date_range(end="2026-01-09", periods=60)
    zeros = priced_sales(*[(s, "S1", d.date().isoformat(), 0.0) for s in "AB" for d in days])
    ctx.write("sales", zeros)
    msg = r"forecast: table sales has no sale \(quantity > 0\) for any of the 2 series in the history window"
    with pytest.raises(ForecastError, match=msg + r" 2025-11-10\.\.2026-01-09 \(120 row\(s\), every quantity 0"):
        forecast_stage(ctx)
    ctx.write("sales", _weekly_sales(140))
    forecast_stage(ctx)  # a current model now exists
    ctx.write("sales", zeros)
    with pytest.raises(ForecastError, match=msg):
        forecast_stage(ctx)
    with pytest.raises(ForecastError, match=msg):
        retrain_stage(ctx)
