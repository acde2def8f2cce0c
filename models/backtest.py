"""Rolling-origin backtest, per-series model selection and calibrated quantiles.

:class:`ForecastSelector` (scikit-learn estimator contract) does, over all series at once:

1. **Backtest**: ``n_folds`` origins ``T - k * horizon`` (k = n_folds..1). Each statistical
   candidate is refitted on the history before every origin (cheap, vectorised kernels); the
   global gradient-boosting model is trained *once* on the history before the earliest origin and
   predicts every fold from the data before that fold's origin (no target after the earliest
   origin is ever seen, so the scores are honest).
2. **Selection**: per series, the candidate with the lowest mean squared (``metric='mse'``, the
   mean-optimal choice RMSSE rewards) or absolute (``'mae'``, what MASE rewards) error over its fold
   days, switching away from the candidate that is best over *all* series only when it is better
   by more than ``min_gain`` (a guard against selection noise on short backtests; ``'auto'``
   picks it from :data:`GAIN_GRID` by selecting on the earlier folds and scoring that selection
   on the last one, see :meth:`ForecastSelector._auto_gain`). "Best over all
   series" is the benchmark metric itself computed fold by fold (RMSSE or MASE with each fold's
   own in-sample scale, volume-weighted or equal), so slow and fast series both count. Series with
   fewer than ``min_history`` observed periods (new or very short) take the globally best
   candidate (``fallback``); series that never sold forecast zero with model ``zero_no_sales``.
3. **Final fit** of the candidates on the whole history; the forecast of each series is its
   selected candidate's.
4. **Uncertainty**: daily demand is negative binomial with the forecast mean and a per-series
   variance-to-mean ratio ``phi`` from the selected model's backtest residuals, shrunk towards
   the ratio pooled over its demand class; lead-time demand uses a separate ratio measured on
   backtest *sums* over the lead time (so a level error that persists over the lead time widens
   it, as it should). Quantiles are whole units.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import nbinom, poisson
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from models.baselines import QUANTILES, as_matrix, naive_scale
from models.gbm import GlobalGBMForecaster
from models.intermittent import classify_demand, kernel_forecast

DEFAULT_CANDIDATES: tuple[tuple[str, str, tuple[tuple[str, float], ...]], ...] = (
    ("seasonal_naive", "seasonal_naive", ()),
    ("moving_average", "moving_average", (("window", 28),)),
    ("ses", "ses", (("alpha", 0.1),)),
    ("ses_opt", "ses_opt", ()),
    ("adida", "adida", ()),
    ("sba", "sba", (("alpha", 0.1),)),
    ("tsb", "tsb", (("alpha", 0.1), ("beta", 0.05))),
)


def nb_quantiles(mean: np.ndarray, phi: np.ndarray, quantiles: Sequence[float] = QUANTILES) -> np.ndarray:
    """Quantiles of a negative binomial with the given means and variance-to-mean ratios ``phi``
    (``phi <= 1``: Poisson): ``[*mean.shape, len(quantiles)]``; a mean of 0 gives 0."""
    mu = np.asarray(mean, dtype=float)
    ph = np.broadcast_to(np.asarray(phi, dtype=float), mu.shape)
    q = np.asarray(quantiles, dtype=float)
    out = np.zeros(mu.shape + (q.size,))
    pos = mu > 0
    over = pos & (ph > 1.0 + 1e-9)
    pois = pos & ~over
    if over.any():
        m, p = mu[over], ph[over]
        out[over] = nbinom.ppf(q[None, :], (m / (p - 1.0))[:, None], (1.0 / p)[:, None])
    if pois.any():
        out[pois] = poisson.ppf(q[None, :], mu[pois][:, None])
    return out


def dispersion(actual: np.ndarray, forecast: np.ndarray, groups: np.ndarray, prior_weight: float) -> np.ndarray:
    """Variance-to-mean ratio of ``actual`` around ``forecast`` per row (``NaN`` actuals skipped),
    shrunk towards the ratio pooled over each row's group: ``w * own + (1 - w) * pooled`` with
    ``w = n / (n + prior_weight)``; never below 1 (Poisson)."""
    obs = ~np.isnan(actual) & ~np.isnan(forecast)
    sq = np.where(obs, (np.nan_to_num(actual) - np.nan_to_num(forecast)) ** 2, 0.0).sum(axis=1)
    den = np.where(obs, np.maximum(np.nan_to_num(forecast), 0.0), 0.0).sum(axis=1)
    n = obs.sum(axis=1)
    own = np.divide(sq, den, out=np.ones(len(sq)), where=den > 1e-9)
    pooled = np.ones(len(sq))
    for g in np.unique(groups):
        m = groups == g
        d = den[m].sum()
        pooled[m] = sq[m].sum() / d if d > 1e-9 else 1.0
    w = np.divide(n, n + float(prior_weight), out=np.zeros(len(n)), where=n > 0)
    return np.maximum(1.0, w * own + (1.0 - w) * pooled)


COMBINATION_WEIGHTS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)


def combine(forecasts: np.ndarray, names: Sequence[str], combination: tuple[str, float] | None) -> np.ndarray:
    """Append the combination ``w x gbm + (1 - w) x partner`` to ``forecasts[n_candidates, ...]``
    (in the order of ``names``, which must hold ``"gbm"`` and the partner); unchanged if ``None``."""
    if combination is None:
        return forecasts
    partner, w = combination
    mix = float(w) * forecasts[list(names).index("gbm")] + (1.0 - float(w)) * forecasts[list(names).index(partner)]
    return np.concatenate([forecasts, mix[None]], axis=0)


def candidate_forecast(spec: tuple, hist: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Forecast ``[n_series, horizon]`` of one statistical candidate ``(name, method, params)``."""
    _, method, params = spec
    p = dict(params)
    if method == "seasonal_naive":
        p.setdefault("season", season)
    return kernel_forecast(method, hist, int(horizon), **p)


def coverage(actual: np.ndarray, upper: np.ndarray) -> float:
    """Share of observed actuals at or below the quantile ``upper`` (one-sided coverage)."""
    a = np.asarray(actual, dtype=float)
    u = np.asarray(upper, dtype=float)
    obs = ~np.isnan(a)
    return float((a[obs] <= u[obs]).mean()) if obs.any() else float("nan")


def _scale_and_weight(hist: np.ndarray, horizon: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-series ``(scale, weight)`` of one backtest origin, from the history before it only:
    scale = mean squared one-step naive change after the first sale (``mse``: the RMSSE
    denominator as M5 defines it) or mean absolute one-step naive change over the observed
    history (``mae``: the MASE denominator); weight = units sold in the last ``horizon`` periods."""
    mse = metric == "mse"
    scale = np.nan_to_num(naive_scale(hist, squared=mse, from_first_sale=mse))
    weight = np.nansum(hist[:, -int(horizon) :], axis=1) if hist.shape[1] else np.zeros(len(hist))
    return scale, weight


GAIN_GRID: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5)


def _mean_errors(fc: np.ndarray, actual: np.ndarray, metric: str) -> np.ndarray:
    """Mean squared (``mse``) or absolute (``mae``) error per forecast and series over the observed
    periods: ``fc[k, n_series, days]`` against ``actual[n_series, days]`` (``NaN`` = not observed)
    gives ``[k, n_series]``, ``NaN`` for a series with no observed period."""
    obs = ~np.isnan(actual)
    d = np.abs(fc - np.nan_to_num(actual)[None])
    err = np.where(obs[None], d**2 if metric == "mse" else d, 0.0).sum(axis=2)
    cnt = obs.sum(axis=1)
    return np.divide(err, cnt[None], out=np.full(err.shape, np.nan), where=cnt[None] > 0)


def _switch(scores: np.ndarray, best_global: int, gain: float, has_bt: np.ndarray) -> np.ndarray:
    """Per series: its own best candidate where that is better than the globally best one by
    more than ``gain`` (relative), else the globally best one."""
    own_best = np.argmin(np.where(np.isnan(scores), np.inf, scores), axis=1)
    own = scores[np.arange(len(scores)), own_best]
    glob = scores[:, best_global]
    return np.where(has_bt & (own < (1.0 - float(gain)) * glob), own_best, best_global)


class ForecastSelector(BaseEstimator):
    """Backtest, per-series selection and calibrated quantiles over all series at once.

    ``fit(Y, calendar=None, static=None, groups=None, covariates=None)`` with ``Y[n_series, n_periods]`` (``NaN`` = not yet
    observed), ``calendar`` per-period features ``[n_periods + horizon, k]`` and integer
    ``static`` codes ``[n_series, s]`` for the gradient-boosting candidate. After fitting:
    ``mean_`` ``[n_series, horizon]``, ``model_`` (selected name per series), ``scores_``
    (backtest MSE or MAE per candidate ``[n_series, n_candidates]``), ``candidates_`` (names),
    ``demand_class_``, ``phi_``, ``fold_actual_`` / ``fold_forecast_`` of the selected model,
    ``fold_scales_`` (per fold: each series' in-sample scale and volume weight), ``combination_``,
    ``min_gain_`` (and ``gain_scores_`` when chosen with ``'auto'``).
    """

    def __init__(
        self,
        horizon: int = 28,
        season: int = 7,
        n_folds: int = 2,
        candidates: tuple = DEFAULT_CANDIDATES,
        use_gbm: bool = True,
        gbm_params: dict | None = None,
        min_gain: float | str = 0.1,
        min_history: int | None = None,
        prior_weight: float = 56.0,
        metric: str = "mse",
        gbm_refit_per_fold: bool = False,
        combine_gbm: bool = True,
        global_weighting: str = "volume",
        random_state: int = 0,
    ) -> None:
        self.horizon = horizon
        self.season = season
        self.n_folds = n_folds
        self.candidates = candidates
        self.use_gbm = use_gbm
        self.gbm_params = gbm_params
        self.min_gain = min_gain
        self.min_history = min_history
        self.prior_weight = prior_weight
        self.metric = metric
        self.gbm_refit_per_fold = gbm_refit_per_fold
        self.combine_gbm = combine_gbm
        self.global_weighting = global_weighting
        self.random_state = random_state

    def _kernel(self, spec: tuple, hist: np.ndarray) -> np.ndarray:
        return candidate_forecast(spec, hist, int(self.horizon), int(self.season))

    def _gbm(self) -> GlobalGBMForecaster:
        params: dict[str, Any] = {
            "horizon": int(self.horizon),
            "season": int(self.season),
            "random_state": self.random_state,
        }
        params.update(self.gbm_params or {})
        return GlobalGBMForecaster(**params)

    def _check_params(self) -> None:
        if self.metric not in ("mse", "mae"):
            raise ValueError(f"metric must be 'mse' or 'mae', got {self.metric!r}")
        if isinstance(self.min_gain, str) and self.min_gain != "auto":
            raise ValueError(f"min_gain must be a number in [0, 1) or 'auto', got {self.min_gain!r}")
        if self.global_weighting not in ("volume", "equal"):
            raise ValueError(f"global_weighting must be 'volume' or 'equal', got {self.global_weighting!r}")

    def _backtest(
        self, arr: np.ndarray, folds: list[int], names: list[str], gbm_ok: bool, exog: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(actuals, forecasts of every candidate) over the backtest folds, side by side."""
        n = arr.shape[0]
        h = int(self.horizon)
        n_days = len(folds) * h
        fold_actual = np.full((n, n_days), np.nan)
        fold_fc = np.full((len(names), n, n_days), np.nan)
        gbm_bt = None
        if gbm_ok:
            gbm_bt = self._gbm().fit(arr[:, : folds[0]], **exog)
        for f, o in enumerate(folds):
            sl = slice(f * h, (f + 1) * h)
            fold_actual[:, sl] = arr[:, o : o + h]
            hist = arr[:, :o]
            for c, spec in enumerate(self.candidates):
                fold_fc[c, :, sl] = self._kernel(spec, hist)
            if gbm_bt is not None:
                if self.gbm_refit_per_fold and f > 0:
                    gbm_bt = self._gbm().fit(hist, **exog)
                fold_fc[-1, :, sl] = gbm_bt.predict_from(hist, **exog)
        return fold_actual, fold_fc

    def _final_forecasts(self, arr: np.ndarray, names: list[str], gbm_ok: bool, exog: dict[str, Any]) -> np.ndarray:
        """Forecasts of every candidate (and the combination) on the whole history."""
        n_base = len(self.candidates) + int(bool(gbm_ok))
        final = np.zeros((n_base, arr.shape[0], int(self.horizon)))
        for c, spec in enumerate(self.candidates):
            final[c] = self._kernel(spec, arr)
        if gbm_ok:
            self.gbm_ = self._gbm().fit(arr, **exog)
            final[n_base - 1] = self.gbm_.predict_from(arr, **exog)
        return combine(final, names[:n_base], self.combination_)

    def _choose(
        self, arr: np.ndarray, fold_fc: np.ndarray, scores: np.ndarray, obs: np.ndarray, n_folds: int
    ) -> tuple[np.ndarray, int, np.ndarray]:
        """(candidate chosen per series, the global best, series too short to choose for)."""
        h = int(self.horizon)
        # global best: lowest scaled backtest error over all series (see _global_score)
        has_bt = obs.sum(axis=1) > 0
        total = self._global_score(fold_fc)
        best_global = int(np.argmin(total)) if has_bt.any() else 0
        self.min_gain_ = self._auto_gain(fold_fc, obs, n_folds) if self.min_gain == "auto" else float(self.min_gain)
        choice = _switch(scores, best_global, self.min_gain_, has_bt)
        observed = (~np.isnan(arr)).sum(axis=1)
        min_hist = 2 * h if self.min_history is None else int(self.min_history)
        short = observed < min_hist
        return np.where(short, best_global, choice), best_global, short

    def fit(
        self,
        Y: np.ndarray,  # sklearn naming
        y: object = None,
        calendar: np.ndarray | None = None,
        static: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        covariates: np.ndarray | None = None,
    ) -> ForecastSelector:
        self._check_params()
        exog: dict[str, Any] = {"calendar": calendar, "static": static, "groups": groups, "covariates": covariates}
        arr = as_matrix(Y)
        n, T = arr.shape
        h = int(self.horizon)
        folds = [T - k * h for k in range(int(self.n_folds), 0, -1)]
        folds = [o for o in folds if o > 0]
        names = [c[0] for c in self.candidates]
        # the global model needs history before its first fold, with some demand in it
        gbm_ok = bool(self.use_gbm) and bool(folds) and folds[0] > h + self.season and np.nansum(arr[:, : folds[0]]) > 0
        if gbm_ok:
            names = names + ["gbm"]
        fold_actual, fold_fc = self._backtest(arr, folds, names, gbm_ok, exog)
        obs = ~np.isnan(fold_actual)
        self.fold_actual_ = fold_actual
        self.fold_scales_ = [_scale_and_weight(arr[:, :o], h, self.metric) for o in folds]
        self.combination_ = self._best_combination(fold_fc, names) if gbm_ok else None
        if self.combination_ is not None:
            fold_fc = combine(fold_fc, names, self.combination_)
            names = names + [f"gbm+{self.combination_[0]}"]
        scores = _mean_errors(fold_fc, fold_actual, self.metric).T
        choice, best_global, short = self._choose(arr, fold_fc, scores, obs, len(folds))
        final = self._final_forecasts(arr, names, gbm_ok, exog)
        idx = np.arange(n)
        mean = final[choice, idx]
        sold = (np.nan_to_num(arr) > 0).any(axis=1)
        mean = np.where(sold[:, None], np.maximum(mean, 0.0), 0.0)
        model = np.where(sold, np.asarray(names, dtype=object)[choice], "zero_no_sales")
        classes, _, _ = classify_demand(arr)
        sel_fc = fold_fc[choice, idx]
        sel_fc = np.where(sold[:, None], sel_fc, 0.0)
        self.phi_ = dispersion(fold_actual, sel_fc, classes, self.prior_weight)
        self.candidates_ = names
        self.candidate_forecasts_ = final
        self.fold_candidates_ = fold_fc
        self.scores_ = scores
        self.best_global_ = names[best_global]
        self.choice_ = choice
        self.mean_ = mean
        self.model_ = model
        self.short_ = short
        self.demand_class_ = classes
        self.fold_forecast_ = sel_fc
        self.n_series_ = n
        return self

    def _auto_gain(self, fold_fc: np.ndarray, obs: np.ndarray, n_folds: int) -> float:
        """``min_gain`` chosen inside the backtest: for each value of :data:`GAIN_GRID`, select per
        series on every fold but the last and score that selection on the last fold (the same
        scaled criterion); the value whose selection held up best on the unseen fold wins. With
        a single fold there is nothing to hold out: the smallest value."""
        if n_folds < 2:
            return float(GAIN_GRID[0])
        early = slice(0, (n_folds - 1) * int(self.horizon))
        sc = _mean_errors(fold_fc[:, :, early], self.fold_actual_[:, early], self.metric).T
        cnt = obs[:, early].sum(axis=1)
        glob = int(np.argmin(self._global_score(fold_fc, folds=range(n_folds - 1))))
        idx = np.arange(fold_fc.shape[1])
        results = []
        for gain in GAIN_GRID:
            choice = _switch(sc, glob, gain, cnt > 0)
            results.append(self._global_score(fold_fc[choice, idx][None], folds=[n_folds - 1])[0])
        self.gain_scores_ = dict(zip(GAIN_GRID, (float(r) for r in results), strict=True))
        return float(GAIN_GRID[int(np.argmin(results))])

    def _global_score(self, fold_fc: np.ndarray, folds: Sequence[int] | None = None) -> np.ndarray:
        """Score over all series of each forecast in ``fold_fc[k, n_series, n_fold_days]``, as the
        benchmark metrics define it, fold by fold: the error of each series in each fold scaled by
        that fold's own in-sample scale (RMSSE: sqrt(MSE / scale) for ``mse``; MASE: MAE / scale
        for ``mae``), averaged with volume weights (``global_weighting='volume'``, as M5 weights
        RMSSE) or equally (``'equal'``, as mean MASE does) over the series that have a scale.
        Total raw squared error would let the few fastest series decide for everyone."""
        h = int(self.horizon)
        total = np.zeros(fold_fc.shape[0])
        for f, (scale, weight) in enumerate(self.fold_scales_):
            if folds is not None and f not in folds:
                continue
            sl = slice(f * h, (f + 1) * h)
            mean_err = _mean_errors(fold_fc[:, :, sl], self.fold_actual_[:, sl], self.metric)
            w = np.ones_like(weight) if self.global_weighting == "equal" else weight
            ok = ~np.isnan(mean_err[0]) & (scale > 0) & (w > 0)
            rel = mean_err[:, ok] / scale[ok]
            rel = np.sqrt(rel) if self.metric == "mse" else rel
            total += (rel * w[ok]).sum(axis=1)
        return total

    def _best_combination(self, fold_fc: np.ndarray, names: list[str]) -> tuple[str, float] | None:
        """The statistical partner and weight of ``w x gbm + (1 - w) x partner`` with the lowest
        backtest score over all series (:meth:`_global_score`; ``None`` when off or when no mix
        beats the GBM alone). Averaging a global model with a series' own smoothed level is the
        classic forecast combination: their errors are far from perfectly correlated."""
        if not self.combine_gbm or "gbm" not in names:
            return None
        g = fold_fc[names.index("gbm")]

        def total(f: np.ndarray) -> float:
            return float(self._global_score(f[None])[0])

        best: tuple[float, tuple[str, float] | None] = (total(g), None)
        for c, spec in enumerate(self.candidates):
            if spec[1] == "seasonal_naive":  # a shape, not a level: mixing it adds noise
                continue
            for w in COMBINATION_WEIGHTS:
                err = total(w * g + (1.0 - w) * fold_fc[c])
                if err < best[0]:
                    best = (err, (str(spec[0]), float(w)))
        return best[1]

    def predict(self, horizon: int | None = None) -> np.ndarray:
        check_is_fitted(self, "mean_")
        if horizon is not None and int(horizon) != int(self.horizon):
            raise ValueError(f"fitted for horizon {self.horizon}, got {horizon}")
        return self.mean_

    def predict_quantiles(self, quantiles: Sequence[float] = QUANTILES) -> np.ndarray:
        """Quantiles of demand in each period: ``[n_series, horizon, len(quantiles)]``."""
        check_is_fitted(self, "mean_")
        return nb_quantiles(self.mean_, self.phi_[:, None], quantiles)

    def lead_time_dispersion(self, lead_time: int) -> np.ndarray:
        """Variance-to-mean ratio of demand summed over ``lead_time`` periods, per series, from
        the selected model's backtest sums over consecutive blocks of that length."""
        check_is_fitted(self, "mean_")
        L = int(lead_time)
        if L < 1:
            raise ValueError(f"lead_time must be at least 1 period, got {lead_time}")
        n, d = self.fold_actual_.shape
        h = int(self.horizon)
        L = min(L, h)
        blocks = h // L
        if d == 0 or blocks == 0:
            return self.phi_.copy()
        folds = d // h
        a = self.fold_actual_.reshape(n, folds, h)[:, :, : blocks * L].reshape(n, folds * blocks, L)
        f = self.fold_forecast_.reshape(n, folds, h)[:, :, : blocks * L].reshape(n, folds * blocks, L)
        full = ~np.isnan(a).any(axis=2)
        a_sum = np.where(full, np.nan_to_num(a).sum(axis=2), np.nan)
        f_sum = f.sum(axis=2)
        return np.maximum(self.phi_, dispersion(a_sum, f_sum, self.demand_class_, self.prior_weight / L))

    def lead_time_quantiles(self, lead_time: int, quantiles: Sequence[float] = QUANTILES) -> np.ndarray:
        """Quantiles of demand summed over the first ``lead_time`` periods: ``[n_series, len(q)]``."""
        L = int(lead_time)
        mu = self.mean_[:, : min(L, self.mean_.shape[1])].sum(axis=1)
        if L > self.mean_.shape[1]:  # beyond the horizon: the last period's rate held flat
            mu = mu + self.mean_[:, -1] * (L - self.mean_.shape[1])
        return nb_quantiles(mu, self.lead_time_dispersion(L), quantiles)


__all__ = [
    "COMBINATION_WEIGHTS",
    "DEFAULT_CANDIDATES",
    "GAIN_GRID",
    "ForecastSelector",
    "candidate_forecast",
    "combine",
    "coverage",
    "dispersion",
    "nb_quantiles",
]
