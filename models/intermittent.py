"""Vectorised statistical kernels over many series at once, and their estimators.

Every kernel is a pure numpy function of a matrix ``y[n_series, n_periods]`` (oldest period
first; ``NaN`` = period not observed, i.e. before the series started; a period without sales is
``0``) returning the flat per-series forecast level ``[n_series]`` (or ``[n_series, horizon]``
for the seasonal naive). Loops run over *time* only, never over series.

- :func:`seasonal_naive`: the last ``season`` periods repeated.
- :func:`ses`: simple exponential smoothing, level initialised at the first observed value.
- :func:`ses_optimized`: SES with the smoothing constant picked per series from a grid by the
  in-sample one-step squared error.
- :func:`adida`: temporal aggregation (ADIDA): optimised SES on sums over buckets of the mean
  inter-demand interval, spread back evenly.
- :func:`croston`: Croston (1972) on the non-zero sizes and the intervals between them;
  ``variant='sba'`` applies the Syntetos-Boylan (2005) debiasing factor ``1 - alpha / 2``.
- :func:`tsb`: Teunter-Syntetos-Babai (2011): smoothed demand probability x smoothed size, so the
  forecast decays towards zero while a series stops selling.
- :func:`classify_demand`: ADI / CV² classes of Syntetos et al. (2005): ``smooth``,
  ``intermittent``, ``erratic``, ``lumpy``; ``no_sales`` when nothing sold.

The :class:`KernelForecaster` estimator wraps any of them under scikit-learn's contract.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from models.baselines import as_matrix, moving_average

ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49
DEMAND_CLASSES = ("smooth", "intermittent", "erratic", "lumpy", "no_sales")


def _check_alpha(name: str, value: float) -> float:
    v = float(value)
    if not 0.0 < v <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return v


def seasonal_naive(y: np.ndarray, season: int, horizon: int) -> np.ndarray:
    """The last ``season`` periods repeated over ``horizon``: ``[n_series, horizon]``.

    Unobserved (``NaN``) periods in the last season count as 0; a history shorter than a season
    is left-padded with zeros.
    """
    if int(season) < 1 or int(horizon) < 1:
        raise ValueError(f"season and horizon must be at least 1, got {season}, {horizon}")
    arr = as_matrix(y)
    m = int(season)
    last = np.zeros((arr.shape[0], m))
    tail = np.nan_to_num(arr[:, -m:], nan=0.0)
    if tail.shape[1]:
        last[:, m - tail.shape[1] :] = tail
    reps = -(-int(horizon) // m)
    return np.tile(last, reps)[:, : int(horizon)]


def ses(y: np.ndarray, alpha: float = 0.1) -> np.ndarray:
    """Simple exponential smoothing level after the last period: ``[n_series]`` (0 if never observed)."""
    a = _check_alpha("alpha", alpha)
    arr = as_matrix(y)
    level = np.zeros(arr.shape[0])
    started = np.zeros(arr.shape[0], dtype=bool)
    for t in range(arr.shape[1]):
        col = arr[:, t]
        obs = ~np.isnan(col)
        v = np.where(obs, col, 0.0)
        level = np.where(obs & started, level + a * (v - level), np.where(obs & ~started, v, level))
        started |= obs
    return level


SES_GRID: tuple[float, ...] = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)
ADIDA_GRID: tuple[float, ...] = tuple(np.linspace(0.1, 0.3, 9).round(3))


def ses_optimized(y: np.ndarray, alphas: tuple[float, ...] = SES_GRID) -> tuple[np.ndarray, np.ndarray]:
    """SES with the smoothing constant chosen per series from ``alphas`` by the in-sample sum of
    squared one-step-ahead errors (every alpha of every series is run at once): ``(level, alpha)``.

    The level starts at the first observed value; errors count from the second observed period.
    A series with fewer than two observed periods keeps the first alpha of the grid."""
    arr = as_matrix(y)
    grid = np.asarray([_check_alpha("alpha", a) for a in alphas])[None, :]
    n = arr.shape[0]
    level = np.zeros((n, grid.shape[1]))
    sse = np.zeros((n, grid.shape[1]))
    started = np.zeros(n, dtype=bool)
    for t in range(arr.shape[1]):
        col = arr[:, t]
        obs = ~np.isnan(col)
        v = np.where(obs, col, 0.0)[:, None]
        step = (obs & started)[:, None]
        err = v - level
        sse = np.where(step, sse + err**2, sse)
        level = np.where(step, level + grid * err, np.where((obs & ~started)[:, None], v, level))
        started |= obs
    best = np.argmin(sse, axis=1)
    return level[np.arange(n), best], grid[0, best]


def adida(y: np.ndarray, alphas: tuple[float, ...] = ADIDA_GRID) -> np.ndarray:
    """ADIDA (Nikolopoulos et al., 2011): aggregate each series into non-overlapping buckets of
    ``round(mean interval between demands)`` periods (aligned to the latest period; a bucket with
    an unobserved period is left out), forecast the bucket sums with optimised SES
    (:func:`ses_optimized`, alpha in 0.1..0.3), and spread the forecast evenly over the bucket's
    periods. The level per period ``[n_series]``; 0 for a series that never sold. Loops run over
    the few distinct bucket sizes, never over series."""
    arr = as_matrix(y)
    n, T = arr.shape
    obs = ~np.isnan(arr)
    vals = np.where(obs, arr, 0.0)
    nz = (vals > 0).sum(axis=1)
    # mean interval between demands, counted from the first observed period (as ADIDA does)
    first_obs = np.where(obs.any(axis=1), np.argmax(obs, axis=1), T)
    last_nz = np.where(nz > 0, T - 1 - np.argmax((vals > 0)[:, ::-1], axis=1), -1)
    span = last_nz - first_obs + 1
    size = np.where(nz > 0, np.maximum(np.round(np.divide(span, np.maximum(nz, 1))), 1), 1).astype(int)
    size = np.minimum(size, max(T, 1))
    out = np.zeros(n)
    for k in np.unique(size[nz > 0]):
        rows = np.flatnonzero((size == k) & (nz > 0))
        m = T // k
        block = arr[rows, T - m * k :].reshape(len(rows), m, k)
        sums = np.where(np.isnan(block).any(axis=2), np.nan, np.nan_to_num(block).sum(axis=2))
        level, _ = ses_optimized(sums, alphas)
        out[rows] = level / k
    return out


def croston(y: np.ndarray, alpha: float = 0.1, variant: str = "classic") -> np.ndarray:
    """Croston's forecast ``size / interval`` per series (``variant='sba'``: x ``1 - alpha/2``).

    Sizes and intervals are initialised at the first non-zero observation (interval = periods
    since the series started, inclusive); a series without a non-zero value forecasts 0.
    """
    a = _check_alpha("alpha", alpha)
    if variant not in ("classic", "sba"):
        raise ValueError(f"variant must be 'classic' or 'sba', got {variant!r}")
    arr = as_matrix(y)
    n = arr.shape[0]
    size = np.zeros(n)
    interval = np.ones(n)
    since = np.zeros(n)
    seen = np.zeros(n, dtype=bool)
    for t in range(arr.shape[1]):
        col = arr[:, t]
        obs = ~np.isnan(col)
        since = since + obs
        demand = obs & (col > 0)
        v = np.where(demand, col, 0.0)
        first = demand & ~seen
        upd = demand & seen
        size = np.where(first, v, np.where(upd, size + a * (v - size), size))
        interval = np.where(first, since, np.where(upd, interval + a * (since - interval), interval))
        since = np.where(demand, 0.0, since)
        seen |= demand
    out = np.where(seen, size / np.maximum(interval, 1e-12), 0.0)
    return out * (1.0 - a / 2.0) if variant == "sba" else out


def tsb(y: np.ndarray, alpha: float = 0.1, beta: float = 0.1) -> np.ndarray:
    """TSB forecast ``probability x size`` per series.

    The demand probability is initialised at the share of non-zero observed periods and smoothed
    every period with ``beta``; the size is initialised at the first non-zero value and smoothed
    with ``alpha`` at each demand. No demand ever: 0.
    """
    a = _check_alpha("alpha", alpha)
    b = _check_alpha("beta", beta)
    arr = as_matrix(y)
    obs_all = ~np.isnan(arr)
    n_obs = obs_all.sum(axis=1)
    nz = (np.where(obs_all, arr, 0.0) > 0).sum(axis=1)
    prob = np.divide(nz, n_obs, out=np.zeros(arr.shape[0]), where=n_obs > 0)
    size = np.zeros(arr.shape[0])
    seen = np.zeros(arr.shape[0], dtype=bool)
    started = np.zeros(arr.shape[0], dtype=bool)
    for t in range(arr.shape[1]):
        col = arr[:, t]
        obs = ~np.isnan(col)
        demand = obs & (col > 0)
        v = np.where(demand, col, 0.0)
        # the first observed period only initialises (its information is already in prob)
        step = obs & started
        prob = np.where(step, prob + b * (demand - prob), prob)
        size = np.where(demand & ~seen, v, np.where(demand & seen, size + a * (v - size), size))
        seen |= demand
        started |= obs
    return np.where(seen, prob * size, 0.0)


def classify_demand(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ADI / CV² demand pattern per series: ``(classes, adi, cv2)``.

    ADI = observed periods / non-zero periods; CV² = squared coefficient of variation of the
    non-zero sizes (population variance). Classes with the cut-offs 1.32 and 0.49: ``smooth``
    (both low), ``intermittent`` (ADI high), ``erratic`` (CV² high), ``lumpy`` (both high);
    ``no_sales`` (ADI and CV² NaN) when a series has no non-zero period.
    """
    arr = as_matrix(y)
    obs = ~np.isnan(arr)
    vals = np.where(obs, arr, 0.0)
    nzm = vals > 0
    n_obs = obs.sum(axis=1)
    nz = nzm.sum(axis=1)
    has = nz > 0
    adi = np.divide(n_obs, nz, out=np.full(arr.shape[0], np.nan), where=has)
    mean = np.divide(vals.sum(axis=1), nz, out=np.zeros(arr.shape[0]), where=has)
    var = np.divide(((vals - mean[:, None]) ** 2 * nzm).sum(axis=1), nz, out=np.zeros(arr.shape[0]), where=has)
    cv2 = np.divide(var, mean**2, out=np.full(arr.shape[0], np.nan), where=has & (mean > 0))
    hi_adi = np.nan_to_num(adi) >= ADI_CUTOFF
    hi_cv2 = np.nan_to_num(cv2) >= CV2_CUTOFF
    classes = np.select(
        [~has, hi_adi & hi_cv2, hi_adi, hi_cv2], ["no_sales", "lumpy", "intermittent", "erratic"], default="smooth"
    )
    return classes.astype(object), adi, cv2


METHODS = ("seasonal_naive", "moving_average", "ses", "ses_opt", "adida", "croston", "sba", "tsb")


def kernel_forecast(method: str, y: np.ndarray, horizon: int, **params: float) -> np.ndarray:
    """Forecast ``[n_series, horizon]`` of one named kernel (flat except the seasonal naive)."""
    arr = as_matrix(y)
    h = int(horizon)
    if h < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    if method == "seasonal_naive":
        return seasonal_naive(arr, int(params.get("season", 7)), h)
    if method == "moving_average":
        level = moving_average(arr, int(params.get("window", 28)))
    elif method == "ses":
        level = ses(arr, params.get("alpha", 0.1))
    elif method == "ses_opt":
        level = ses_optimized(arr)[0]
    elif method == "adida":
        level = adida(arr)
    elif method == "croston":
        level = croston(arr, params.get("alpha", 0.1))
    elif method == "sba":
        level = croston(arr, params.get("alpha", 0.1), variant="sba")
    elif method == "tsb":
        level = tsb(arr, params.get("alpha", 0.1), params.get("beta", 0.1))
    else:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    return np.repeat(level[:, None], h, axis=1)


class KernelForecaster(BaseEstimator):
    """One statistical kernel over many series (scikit-learn estimator contract).

    ``fit(Y)`` stores the history (the kernels are cheap and fitted at predict time so the
    seasonal naive keeps its shape); ``predict(horizon)`` returns ``[n_series, horizon]``.
    """

    def __init__(
        self, method: str = "ses", alpha: float = 0.1, beta: float = 0.1, season: int = 7, window: int = 28
    ) -> None:
        self.method = method
        self.alpha = alpha
        self.beta = beta
        self.season = season
        self.window = window

    def fit(self, Y: np.ndarray, y: object = None) -> KernelForecaster:  # Y: sklearn naming
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; expected one of {', '.join(METHODS)}")
        self.history_ = as_matrix(Y).copy()
        self.n_series_ = self.history_.shape[0]
        return self

    def predict(self, horizon: int) -> np.ndarray:
        check_is_fitted(self, "history_")
        return kernel_forecast(
            self.method,
            self.history_,
            horizon,
            alpha=self.alpha,
            beta=self.beta,
            season=self.season,
            window=self.window,
        )


__all__ = [
    "DEMAND_CLASSES",
    "METHODS",
    "KernelForecaster",
    "adida",
    "classify_demand",
    "croston",
    "kernel_forecast",
    "seasonal_naive",
    "ses",
    "ses_optimized",
    "tsb",
]
