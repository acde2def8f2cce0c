"""Vectorised baseline forecasting kernels and the moving-average estimator.

Current method (walking skeleton): every series' daily demand is the **moving average** of its
last ``window`` observed days, held flat over the horizon. Quantiles of daily demand come from a
**Poisson distribution** with that mean (:func:`poisson_quantiles`).

Kernels are pure numpy functions over a matrix ``y[n_series, n_days]`` (one row per series, one
column per day, oldest first), so all series are computed at once; the estimator is a thin
scikit-learn-compatible wrapper (``__init__`` only stores parameters, ``fit`` returns ``self``,
learned state ends in ``_``).

Missing days: ``NaN`` means "not observed" (before the history starts) and is left out of the
average; a day with no sales must be given as ``0``. A series shorter than the window is averaged
over the days it has; a series with no observed day forecasts ``0``.

Limits: no trend, no seasonality, no promotions; intermittent demand is smoothed into a small
daily rate; the Poisson assumption understates the spread of lumpy or over-dispersed demand.
Later issues replace this with models selected per series by backtest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import poisson
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

QUANTILES: tuple[float, ...] = (0.50, 0.90, 0.95, 0.99)


def as_matrix(y: np.ndarray) -> np.ndarray:
    arr = np.asarray(y, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D array [n_series, n_days], got shape {arr.shape}")
    return arr


def moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` observed days of every series.

    ``y`` is ``[n_series, n_days]`` (a 1-D array is one series). ``NaN`` days are not observed and
    do not count; fewer than ``window`` days are averaged over the days available; a series with no
    observed day gets ``0``. Returns ``[n_series]``.
    """
    if int(window) < 1:
        raise ValueError(f"window must be at least 1 day, got {window}")
    arr = as_matrix(y)
    tail = arr[:, -int(window) :]
    observed = ~np.isnan(tail)
    counts = observed.sum(axis=1)
    sums = np.where(observed, tail, 0.0).sum(axis=1)
    return np.divide(sums, counts, out=np.zeros(arr.shape[0]), where=counts > 0)


def naive_scale(y: np.ndarray, squared: bool = False, from_first_sale: bool = False) -> np.ndarray:
    """In-sample error of the naive-1 forecast (yesterday's value) per series: the mean absolute
    change (the MASE scale) or, with ``squared``, the mean squared change (the RMSSE scale);
    ``from_first_sale`` leaves out the periods before a series' first non-zero value (as M5's
    RMSSE does). Pairs with a ``NaN`` are skipped; ``NaN`` when a series has no such pair.
    Returns ``[n_series]``."""
    arr = as_matrix(y)
    if arr.shape[1] < 2:
        return np.full(arr.shape[0], np.nan)
    if from_first_sale:
        arr = np.where(np.cumsum(np.nan_to_num(arr) > 0, axis=1) > 0, arr, np.nan)
    diff = np.diff(arr, axis=1)
    diff = diff**2 if squared else np.abs(diff)
    observed = ~np.isnan(diff)
    counts = observed.sum(axis=1)
    sums = np.where(observed, diff, 0.0).sum(axis=1)
    return np.divide(sums, counts, out=np.full(arr.shape[0], np.nan), where=counts > 0)


def poisson_quantiles(mean: np.ndarray, quantiles: Sequence[float] = QUANTILES) -> np.ndarray:
    """Quantiles of a Poisson distribution with the given means: ``[n_series, len(quantiles)]``.

    A mean of zero (or below) gives zero for every quantile.
    """
    mu = np.asarray(mean, dtype=float).reshape(-1)
    q = np.asarray(quantiles, dtype=float)
    positive = mu > 0
    out = np.zeros((mu.size, q.size))
    if positive.any():
        out[positive] = poisson.ppf(q[None, :], mu[positive][:, None])
    return out


class MovingAverageForecaster(BaseEstimator):
    """Flat moving-average forecast of many series at once (scikit-learn estimator contract).

    ``fit(Y)`` takes ``Y[n_series, n_days]`` (``NaN`` = day not observed) and learns ``level_``,
    the mean of the last ``window`` observed days per series; ``predict(horizon)`` returns
    ``[n_series, horizon]`` with that level on every day.
    """

    def __init__(self, window: int = 28) -> None:
        self.window = window

    def fit(self, Y: np.ndarray, y: object = None) -> MovingAverageForecaster:  # Y: sklearn naming
        arr = as_matrix(Y)
        self.level_ = moving_average(arr, self.window)
        self.n_series_ = arr.shape[0]
        self.n_days_ = arr.shape[1]
        return self

    def predict(self, horizon: int) -> np.ndarray:
        check_is_fitted(self, "level_")
        if int(horizon) < 1:
            raise ValueError(f"horizon must be at least 1 day, got {horizon}")
        return np.repeat(self.level_[:, None], int(horizon), axis=1)
