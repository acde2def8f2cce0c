"""The nightly forecaster as one fitted estimator: per-series model choice by backtest, kept as
what predicting from a new history needs.

``NightlyForecaster.fit(Y, keys, ...)`` runs the rolling-origin backtest and selection of
:class:`models.backtest.ForecastSelector` on the history ``Y`` (series x days, ``keys`` their
sku/location) and keeps, as learned attributes: the global model (its trees only), the
statistical candidates, the selected model and dispersions per series, the static code maps
the global model was trained with, and the backtest's scores. ``predict(Y, keys, ...)`` refits
the cheap statistical candidates on the new history, lets the stored global model predict from
it, and gives each series the model selected for it at training (a new series: the globally best
one). The fitted object is what the weekly retrain saves and the nightly run loads
(:mod:`models.artifacts`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from models.backtest import ForecastSelector, candidate_forecast, combine, nb_quantiles
from models.baselines import QUANTILES, naive_scale
from models.gbm import GlobalGBMForecaster

KEY = ["sku", "location"]


class NightlyForecaster(BaseEstimator):
    """Per-series selected forecasts (see the module doc).

    Learned attributes: ``gbm_`` (or None), ``candidate_specs_``, ``names_`` (the candidates
    before the combination), ``best_global_``, ``combination_``, ``series_`` (keys with model,
    phi, phi_lead_time, lead_time_days, phi_own_lead_time), ``static_maps_``, ``last_fold_`` (the
    newest backtest fold: actual, forecast and the naive scale before it, for the accuracy rows),
    ``backtest_`` (scores and counts for the metadata).
    """

    def __init__(
        self,
        horizon: int = 28,
        season: int = 7,
        n_folds: int = 2,
        use_gbm: bool = True,
        gbm_params: dict[str, Any] | None = None,
        min_gain: float | str = "auto",
        refit_gbm_per_fold: bool = True,
        reference_lead_time_days: int = 7,
        random_state: int = 0,
    ) -> None:
        self.horizon = horizon
        self.season = season
        self.n_folds = n_folds
        self.use_gbm = use_gbm
        self.gbm_params = gbm_params
        self.min_gain = min_gain
        self.refit_gbm_per_fold = refit_gbm_per_fold
        self.reference_lead_time_days = reference_lead_time_days
        self.random_state = random_state

    def fit(
        self,
        Y: np.ndarray,  # sklearn naming
        keys: pd.DataFrame,
        *,
        lead_days: np.ndarray | None = None,
        static_maps: dict[str, list[str]] | None = None,
        calendar: np.ndarray | None = None,
        static: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        covariates: np.ndarray | None = None,
    ) -> NightlyForecaster:
        """Backtest, select and fit on ``Y``; ``lead_days`` (per series, whole days) are the lead
        times whose demand dispersion is measured per series (default: the reference lead time)."""
        h = int(self.horizon)
        sel = ForecastSelector(
            horizon=h,
            season=int(self.season),
            n_folds=int(self.n_folds),
            use_gbm=bool(self.use_gbm),
            gbm_params={**(self.gbm_params or {}), "keep_history": False},
            min_gain=self.min_gain,
            gbm_refit_per_fold=bool(self.refit_gbm_per_fold),
            random_state=self.random_state,
        ).fit(Y, calendar=calendar, static=static, groups=groups, covariates=covariates)
        ref = int(self.reference_lead_time_days)
        leads = np.full(len(keys), ref, dtype=np.int64) if lead_days is None else np.asarray(lead_days, np.int64)
        self.gbm_: GlobalGBMForecaster | None = getattr(sel, "gbm_", None)
        self.candidate_specs_ = list(sel.candidates)
        self.names_ = list(sel.candidates_)[: len(sel.candidates_) - (sel.combination_ is not None)]
        self.best_global_ = sel.best_global_
        self.combination_ = sel.combination_
        self.series_ = (
            keys[KEY]
            .reset_index(drop=True)
            .assign(
                model=sel.model_.astype(str),
                phi=sel.phi_,
                phi_lead_time=sel.lead_time_dispersion(ref),
                lead_time_days=leads,
                phi_own_lead_time=_lead_time_dispersions(sel, leads),
            )
        )
        self.static_maps_ = dict(static_maps or {})
        arr = np.asarray(Y, dtype=float)
        n_days = sel.fold_actual_.shape[1]
        last = slice(max(0, n_days - h), n_days)
        fold_start = arr.shape[1] - h
        self.last_fold_ = {
            "actual": sel.fold_actual_[:, last],
            "forecast": sel.fold_forecast_[:, last],
            "scale": naive_scale(arr[:, : max(fold_start, 0)]) if fold_start > 1 else np.full(len(keys), np.nan),
        }
        self.backtest_ = _backtest_summary(sel)
        return self

    def predict(
        self,
        Y: np.ndarray,
        keys: pd.DataFrame,
        *,
        calendar: np.ndarray | None = None,
        static: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        covariates: np.ndarray | None = None,
        group_levels: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mean, quantiles, model)`` for the ``horizon`` days after ``Y``: mean ``[n, h]``,
        negative-binomial quantiles ``[n, h, len(QUANTILES)]`` (whole units), the model per series
        (``zero_no_sales`` for a series that never sold, forecast 0)."""
        check_is_fitted(self, "series_")
        h = int(self.horizon)
        arr = np.asarray(Y, dtype=float)
        n = len(keys)
        names = list(self.names_)
        fcs = np.zeros((len(names), n, h))
        for c, spec in enumerate(self.candidate_specs_):
            fcs[c] = candidate_forecast(spec, arr, h, int(self.season))
        if "gbm" in names and n and arr.shape[1] > 0 and self.gbm_ is not None:
            fcs[names.index("gbm")] = self.gbm_.predict_from(
                arr, calendar=calendar, static=static, groups=groups, covariates=covariates, group_levels=group_levels
            )
        if self.combination_ is not None:
            fcs = combine(fcs, names, self.combination_)
            names = names + [f"gbm+{self.combination_[0]}"]
        stored = keys[KEY].reset_index(drop=True).merge(self.series_, on=KEY, how="left")
        chosen = stored["model"].where(stored["model"].isin(names), self.best_global_).to_numpy()
        choice = pd.Index(names).get_indexer(chosen).astype(np.int64)
        phi_default = float(np.median(self.series_["phi"])) if len(self.series_) else 1.0
        phi = stored["phi"].fillna(phi_default).to_numpy(dtype=float)
        sold = (np.nan_to_num(arr) > 0).any(axis=1) if arr.size else np.zeros(n, dtype=bool)
        mean = np.where(sold[:, None], fcs[choice, np.arange(n)], 0.0) if n else np.zeros((0, h))
        q = nb_quantiles(mean, phi[:, None], QUANTILES)
        model = np.where(sold, chosen.astype(object), "zero_no_sales")
        return mean, q, model


def _lead_time_dispersions(sel: ForecastSelector, lead_days: np.ndarray) -> np.ndarray:
    """Variance-to-mean ratio of lead-time demand per series at its own lead time: one
    ``sel.lead_time_dispersion(L)`` per distinct ``L``; 1 (Poisson) for a lead time of 0 days."""
    out = np.ones(len(lead_days))
    for L in np.unique(lead_days[lead_days >= 1]):  # a few distinct lead times, not one call per series
        at = lead_days == L
        out[at] = sel.lead_time_dispersion(int(L))[at]
    return out


def _backtest_summary(sel: ForecastSelector) -> dict[str, Any]:
    """Scores of the backtest: WAPE of the selected models and of each candidate over the backtest
    days (None when the backtest window holds no actual sale: there is nothing to score), the
    p90/p95 coverage, the choices."""
    obs = ~np.isnan(sel.fold_actual_)
    act = np.where(obs, sel.fold_actual_, 0.0)
    tot = act.sum()
    fold_q = nb_quantiles(np.where(obs, sel.fold_forecast_, 0.0), sel.phi_[:, None], (0.9, 0.95))

    def wape(f: np.ndarray) -> float | None:
        return float(np.abs(np.where(obs, f, 0.0) - act).sum() / tot) if tot > 0 else None

    return {
        "score": wape(sel.fold_forecast_),
        "actual_units": float(tot),
        "observed_days": int(obs.sum()),
        "candidates": list(sel.candidates_),
        "candidate_wape": {name: wape(f) for name, f in zip(sel.candidates_, sel.fold_candidates_, strict=True)},
        "p90_coverage": float((act[obs] <= fold_q[..., 0][obs]).mean()) if obs.any() else None,
        "p95_coverage": float((act[obs] <= fold_q[..., 1][obs]).mean()) if obs.any() else None,
        "best_global": sel.best_global_,
        "min_gain": sel.min_gain_,
        "min_gain_scores": {str(k): v for k, v in getattr(sel, "gain_scores_", {}).items()},
        "model_counts": {str(k): int(v) for k, v in pd.Series(sel.model_).value_counts().sort_index().items()},
        "demand_classes": {str(k): int(v) for k, v in pd.Series(sel.demand_class_).value_counts().sort_index().items()},
    }


__all__ = ["NightlyForecaster"]
