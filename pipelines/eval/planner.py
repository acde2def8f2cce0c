"""The product's own planner inside the replay: the nightly forecaster, policy and transfers code.

At each decision epoch of a replay (:func:`pipelines.eval.replay.run`) the planner sees what the
nightly run would see that day (:class:`Epoch`: stock on hand, units in transit, the sales observed
so far, censored by the stock, and the days left) and plans as the product does, by calling the
product's functions, so that the proof changes when the product does:

1. **Forecast**, re-trained at every epoch on the history before it, as the weekly retrain would
   (re-plans are weekly): daily data (M5) goes through :func:`pipelines.forecast.train_model` and
   :func:`pipelines.forecast.predict_with` (the nightly ``selected`` method: per-series choice by
   backtest among the statistical candidates and the global gradient-boosting model, with the
   forecast config's defaults); weekly data (VN1) is forecast at its own grain by the same
   estimator, :class:`models.nightly.NightlyForecaster`, on the weekly matrix (``NaN`` before a
   series' first sale, as :func:`pipelines.forecast.history_matrix` does), horizon the replay's
   horizon in weeks, season 1 week (the nightly's 7 days), the config's folds, gradient boosting,
   min_gain; its weekly means are spread evenly over the days of each week for the daily
   ``forecasts`` rows. ``forecast="realised"``: the reference *perfect forecast*, the same planner
   fed the realised demand from the epoch on as its daily forecast means.
2. **Policy**: :func:`pipelines.policy.compute_policy` with the configured default policies
   (``Config().policies``) and policy settings, on the ``sales`` rows of the observed history
   (weekly data: each week's units spread evenly over its days; revenue = units x price), a
   ``stock`` snapshot of the epoch (on hand, in transit) and a ``lead_times`` row per series whose
   lead time is the days left in the horizon (nothing is replenished before its end: the reorder
   point protects until then), no lead-time spread, no review period.
3. **Transfers**: :func:`pipelines.transfers.optimal_transfers` (``milp``) or
   :func:`pipelines.transfers.greedy_transfers` (``greedy``) on the ``inventory_policy`` columns
   plus ``ss_sigma``, as :func:`pipelines.transfers.stage.transfers_stage` calls them, with the
   transfers config's defaults (donor rule ``risk``, margin floor, holding rate, gap, batches)
   except the coverage horizon (``coverage_days``: the config's, or None for the days left) and the
   time limit, both stated with every result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from models.nightly import NightlyForecaster
from pipelines import contract
from pipelines.config import Config, ForecastConfig, PolicyConfig, TransferConfig
from pipelines.eval.scenario import Network, Step
from pipelines.forecast import predict_with, train_model
from pipelines.frames import KEY
from pipelines.policy import compute_policy, policy_settings
from pipelines.transfers import greedy_transfers, optimal_transfers


@dataclass
class Epoch:
    """What the nightly run sees on a decision day of the replay."""

    period: int  # periods after the decision date
    run_date: date
    on_hand: np.ndarray
    in_transit: np.ndarray
    history: np.ndarray  # observed sales per period (series x periods), oldest first, up to the day before
    periods_left: int


@dataclass
class PlannerSettings:
    """The product settings the replay plans with (defaults: the product's config defaults)."""

    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    transfers: TransferConfig = field(default_factory=TransferConfig)
    #: the configured default policy rows (``Config().policies``)
    policies: pd.DataFrame = field(default_factory=lambda: pd.DataFrame([p.model_dump() for p in Config().policies]))
    #: the receivers' coverage horizon in days; None: the days left in the replay's horizon
    coverage_days: int | None = None
    time_limit_seconds: float = 60.0


def daily_sales(net: Network, history: np.ndarray, run_date: date) -> pd.DataFrame:
    """``sales`` rows (contract columns) of an observed history ending the day before ``run_date``:
    one row per series and day with a sale; a weekly period's units spread evenly over its 7 days."""
    n, W = history.shape
    pd_ = net.period_days
    per_day = np.repeat(history / pd_, pd_, axis=1)  # [n, W * pd_]
    i, j = np.nonzero(per_day > 0)
    first = pd.Timestamp(run_date) - pd.Timedelta(days=W * pd_)
    price = net.items.set_index("sku").loc[net.keys["sku"], "unit_price"].to_numpy(float)
    q = per_day[i, j]
    df = pd.DataFrame(
        {
            "sku": net.keys["sku"].to_numpy()[i],
            "location": net.keys["location"].to_numpy()[i],
            "date": first + pd.to_timedelta(j, unit="D"),
            "quantity": q,
            "returns": 0.0,
            "revenue": q * price[i],
        }
    )
    return contract.conform(df, "sales")


def stock_snapshot(net: Network, ep: Epoch) -> pd.DataFrame:
    """``stock`` rows of the epoch: one lot per series (every series, stock or not), on hand and in transit."""
    df = net.keys.assign(
        snapshot_date=pd.Timestamp(ep.run_date),
        lot="",
        expiry_date=pd.NaT,
        on_hand=np.asarray(ep.on_hand, float),
        in_transit=np.asarray(ep.in_transit, float),
        reserved=0.0,
    )
    return contract.conform(df, "stock")


def lead_times(net: Network, ep: Epoch) -> pd.DataFrame:
    """``lead_times`` rows: the days left in the horizon (no replenishment before its end), no spread, no review."""
    df = net.keys.assign(
        lead_time_days=float(ep.periods_left * net.period_days), lead_time_std_days=0.0, review_period_days=0.0
    )
    return contract.conform(df, "lead_times")


def forecast_rows(net: Network, run_date: date, daily_mean: np.ndarray, model: str | np.ndarray) -> pd.DataFrame:
    """``forecasts`` rows (without run_id) from daily means ``[n, H]`` (horizon 1 = ``run_date``)."""
    n, H = daily_mean.shape
    horizon = np.tile(np.arange(1, H + 1, dtype=np.int64), n)
    rd = pd.Timestamp(run_date)
    mean = np.maximum(daily_mean, 0.0).reshape(-1)
    return pd.DataFrame(
        {
            "run_date": rd,
            "sku": np.repeat(net.keys["sku"].to_numpy(), H),
            "location": np.repeat(net.keys["location"].to_numpy(), H),
            "target_date": rd + pd.to_timedelta(horizon - 1, unit="D"),
            "horizon": horizon,
            "mean": mean,
            **{c: mean for c in ("p50", "p90", "p95", "p99")},  # the policy and transfers read the mean only
            "model": np.repeat(np.broadcast_to(np.asarray(model, dtype=object), (n,)), H).astype(str),
        }
    )


def nightly_forecasts(
    net: Network, ep: Epoch, sales: pd.DataFrame, stock: pd.DataFrame, fc: ForecastConfig
) -> pd.DataFrame:
    """The nightly forecaster trained on the history before the epoch and its daily forecasts
    (module doc): daily data through the forecast stage's own functions, weekly data at its grain."""
    if net.period_days == 1:
        fitted, _ = train_model(sales, net.items, stock, ep.run_date, fc)
        f = predict_with(fitted, sales, net.items, stock, ep.run_date, fc)
        # the forecast stage's series are the active SKUs with stock or sales: align to the network's
        idx = net.keys.reset_index(drop=True).reset_index().merge(f[[*KEY, "horizon", "mean"]], on=KEY, how="left")
        H = int(f["horizon"].max()) if len(f) else fc.horizon_days
        daily = np.zeros((len(net.keys), H))
        ok = idx["horizon"].notna().to_numpy()
        daily[idx["index"].to_numpy()[ok], idx["horizon"].to_numpy()[ok].astype(np.int64) - 1] = idx["mean"].to_numpy()[
            ok
        ]
        models = f.drop_duplicates(KEY).set_index(KEY)["model"].reindex(pd.MultiIndex.from_frame(net.keys[KEY]))
        return forecast_rows(net, ep.run_date, daily, models.fillna("zero_no_sales").to_numpy())
    y = np.asarray(ep.history, float)
    sold = y > 0
    first = np.where(sold.any(axis=1), np.argmax(sold, axis=1), y.shape[1])
    y = np.where(np.arange(y.shape[1])[None, :] < first[:, None], np.nan, y)
    h = net.future.shape[1]
    est = NightlyForecaster(
        horizon=h,
        season=1,
        n_folds=fc.backtest_folds,
        use_gbm=fc.use_gbm,
        gbm_params={"max_iter": fc.gbm_max_iter, "row_weights": fc.gbm_row_weights},
        min_gain=fc.min_gain,
        refit_gbm_per_fold=fc.backtest_refit_gbm,
        reference_lead_time_days=1,
        random_state=0,
    ).fit(y, net.keys)
    mean, _, chosen = est.predict(y, net.keys)
    return forecast_rows(net, ep.run_date, np.repeat(mean / net.period_days, net.period_days, axis=1), chosen)


def realised_forecasts(net: Network, ep: Epoch) -> pd.DataFrame:
    """The perfect forecast: the realised demand per day from the epoch to the horizon end."""
    per_day = np.repeat(net.future[:, ep.period :] / net.period_days, net.period_days, axis=1)
    return forecast_rows(net, ep.run_date, per_day, "realised")


def policy_rows(
    net: Network, ep: Epoch, forecasts: pd.DataFrame, sales: pd.DataFrame, stock: pd.DataFrame, st: PlannerSettings
) -> pd.DataFrame:
    """The ``inventory_policy`` rows plus ``ss_sigma``, as the transfers stage reads them."""
    pc = st.policy
    out = compute_policy(
        forecasts[[*KEY, "mean"]],
        sales,
        net.items,
        stock,
        lead_times(net, ep),
        st.policies,
        ep.run_date,
        **policy_settings(pc),
    )
    pol = contract.conform(out.assign(run_id="replay"), "inventory_policy")
    return pol.merge(out[[*KEY, "ss_sigma"]], on=KEY, how="left")


def product_planner(
    net: Network,
    method: str,
    st: PlannerSettings,
    forecast: str = "nightly",
    cache: dict[Any, pd.DataFrame] | None = None,
) -> Callable[[Epoch], Step]:
    """A planner (epoch -> :class:`pipelines.eval.replay.Step`) that plans as the nightly product
    (module doc): ``method`` ``milp`` or ``greedy``; ``forecast`` ``nightly`` (the forecaster
    re-trained at the epoch) or ``realised`` (the perfect forecast). ``cache`` shares the nightly
    forecasts between planners that observed the same history (same epoch, same sales)."""
    if method not in ("milp", "greedy") or forecast not in ("nightly", "realised"):
        raise ValueError(f"replay: unknown planner {method!r} / forecast {forecast!r}")
    tc = st.transfers
    memo = {} if cache is None else cache

    def plan(ep: Epoch) -> Step:
        sales = daily_sales(net, ep.history, ep.run_date)
        stock = stock_snapshot(net, ep)
        if forecast == "realised":
            fcs = realised_forecasts(net, ep)
        else:
            key = (ep.period, np.ascontiguousarray(ep.history).tobytes())
            if key not in memo:
                memo[key] = nightly_forecasts(net, ep, sales, stock, st.forecast)
            fcs = memo[key]
        pol = policy_rows(net, ep, fcs, sales, stock, st)
        days = st.coverage_days or ep.periods_left * net.period_days
        if method == "greedy":
            g = greedy_transfers(
                pol, net.items, net.locations, net.lanes, ep.run_date, days, tc.margin_floor, policies=st.policies
            )
            return Step(0, g, f"greedy: {len(g)} transfer(s)")
        tp = optimal_transfers(
            pol,
            net.items,
            net.locations,
            net.lanes,
            ep.run_date,
            days,
            tc.margin_floor,
            policies=st.policies,
            forecasts=fcs,
            stock=stock,
            holding_cost_rate=tc.holding_cost_rate,
            time_limit_seconds=st.time_limit_seconds,
            mip_rel_gap=tc.mip_rel_gap,
            batch_candidates=tc.batch_candidates,
            donor_keep=tc.donor_keep,
        )
        return Step(0, tp.transfers, "; ".join(tp.notes), tp.mip_gap)

    return plan


def epoch_date(net: Network, period: int) -> date:
    return net.decision_date + timedelta(days=period * net.period_days)
