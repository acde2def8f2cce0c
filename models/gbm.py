"""Global gradient-boosted demand model trained across all series at once (direct multi-horizon).

One :class:`~sklearn.ensemble.HistGradientBoostingRegressor` (Poisson loss by default) is fitted
on rows ``(series, origin, horizon)``: the features are computed from the history *before* the
origin only, the target is the demand ``horizon`` periods after it. The whole horizon is
predicted in one pass from the last origin (the *direct* strategy with the horizon as a feature:
no forecast is fed back as an input, so errors do not compound and prediction is one call).

Features (see :func:`origin_features`), all computed vectorised over every series:

- ``lag_1 .. lag_{n_lags}``: the last periods before the origin;
- ``mean_<w>`` for each rolling window, ``zero_share_<w>`` for the longest, ``since_sale``
  (periods since the last non-zero value, capped) and ``age`` (observed periods);
- ``same_season_mean`` / ``same_season_last``: the mean of the last 4 values at the target's
  seasonal position (same weekday for daily data) and the latest of them;
- ``horizon``, the target's seasonal position, and the target period's calendar columns
  (holidays, festivals, events, SNAP days, ... whatever the caller's calendar holds);
- static per-series codes (item, category, location, ...) as categorical features.

Training and prediction use ``n_threads`` OpenMP threads (default 1: on a shared 2-core machine
two spinning threads were 4x slower in wall time than one; ``None`` = all cores).

Unobserved periods (``NaN`` before a series starts) are left out of every statistic (gradient
boosting handles the resulting ``NaN`` features natively).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from models.baselines import _as_matrix


def _nanmean_last(arr: np.ndarray, o: int, w: int) -> np.ndarray:
    tail = arr[:, max(0, o - w) : o]
    obs = ~np.isnan(tail)
    cnt = obs.sum(axis=1)
    return np.divide(np.where(obs, tail, 0.0).sum(axis=1), cnt, out=np.full(arr.shape[0], np.nan), where=cnt > 0)


def origin_features(
    y: np.ndarray, origin: int, horizon: int, season: int, n_lags: int, windows: tuple[int, ...]
) -> tuple[np.ndarray, list[str]]:
    """Features of every series for targets ``origin + h - 1`` (h = 1..horizon) from ``y[:, :origin]``.

    Returns ``X[n_series * horizon, k]`` (series-major: row ``i * horizon + h - 1``) and the names.
    """
    arr = _as_matrix(y)
    n = arr.shape[0]
    o = int(origin)
    per_series: list[np.ndarray] = []
    names: list[str] = []
    for lag in range(1, n_lags + 1):
        per_series.append(arr[:, o - lag] if o - lag >= 0 else np.full(n, np.nan))
        names.append(f"lag_{lag}")
    for w in windows:
        per_series.append(_nanmean_last(arr, o, w))
        names.append(f"mean_{w}")
    wmax = max(windows)
    tail = arr[:, max(0, o - wmax) : o]
    obs = ~np.isnan(tail)
    cnt = obs.sum(axis=1)
    zeros = (np.where(obs, tail, 1.0) == 0).sum(axis=1)
    per_series.append(np.divide(zeros, cnt, out=np.full(n, np.nan), where=cnt > 0))
    names.append(f"zero_share_{wmax}")
    hist = arr[:, :o]
    nonzero = np.nan_to_num(hist) > 0
    any_nz = nonzero.any(axis=1)
    last_nz = np.where(any_nz, hist.shape[1] - 1 - np.argmax(nonzero[:, ::-1], axis=1), -1)
    cap = 4 * wmax
    per_series.append(np.where(any_nz, np.minimum(o - 1 - last_nz, cap), cap).astype(float))
    names.append("since_sale")
    per_series.append((~np.isnan(hist)).sum(axis=1).astype(float))
    names.append("age")
    base = np.column_stack(per_series) if per_series else np.zeros((n, 0))

    h = int(horizon)
    hs = np.arange(1, h + 1)
    # the last 4 values at the target's seasonal position: indices o - 4*season + ((h-1) % season) + season*j
    pos = (hs - 1) % season
    idx = o - 4 * season + pos[:, None] + season * np.arange(4)[None, :]  # [h, 4]
    valid = idx >= 0
    gathered = np.where(valid[None, :, :], arr[:, np.clip(idx, 0, None)], np.nan)  # [n, h, 4]
    g_obs = ~np.isnan(gathered)
    g_cnt = g_obs.sum(axis=2)
    same_mean = np.divide(
        np.where(g_obs, gathered, 0.0).sum(axis=2), g_cnt, out=np.full((n, h), np.nan), where=g_cnt > 0
    )
    same_last = gathered[:, :, 3]
    X = np.concatenate(
        [
            np.repeat(base, h, axis=0),
            same_mean.reshape(-1, 1),
            same_last.reshape(-1, 1),
            np.tile(hs, n).reshape(-1, 1).astype(float),
            np.tile((o + hs - 1) % season, n).reshape(-1, 1).astype(float),
        ],
        axis=1,
    )
    return X, names + ["same_season_mean", "same_season_last", "horizon", "season_pos"]


class GlobalGBMForecaster(BaseEstimator):
    """Global direct multi-horizon gradient boosting over all series (scikit-learn contract).

    ``fit(Y, calendar=None, static=None)``: ``Y[n_series, n_periods]``; ``calendar`` an optional
    ``[n_periods + horizon, k]`` array of per-period features (row ``t`` for period ``t``; rows
    after the history are the future periods predicted); ``static`` optional integer codes
    ``[n_series, s]`` used as categorical features. Training origins are the ``n_origins`` latest
    ones ``origin_step`` apart whose whole horizon is observed. ``predict()`` forecasts the
    ``horizon`` periods after the history: ``[n_series, horizon]``, never negative.
    """

    def __init__(
        self,
        horizon: int = 28,
        season: int = 7,
        n_lags: int = 7,
        windows: tuple[int, ...] = (7, 28, 91),
        n_origins: int = 6,
        origin_step: int = 14,
        loss: str = "poisson",
        learning_rate: float = 0.08,
        max_iter: int = 250,
        max_leaf_nodes: int = 63,
        min_samples_leaf: int = 50,
        max_rows: int | None = 3_000_000,
        n_threads: int | None = 1,
        random_state: int = 0,
    ) -> None:
        self.horizon = horizon
        self.season = season
        self.n_lags = n_lags
        self.windows = windows
        self.n_origins = n_origins
        self.origin_step = origin_step
        self.loss = loss
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.max_rows = max_rows
        self.n_threads = n_threads
        self.random_state = random_state

    def _design(
        self, arr: np.ndarray, origin: int, calendar: np.ndarray | None, static: np.ndarray | None
    ) -> tuple[np.ndarray, list[str]]:
        X, names = origin_features(arr, origin, self.horizon, self.season, self.n_lags, tuple(self.windows))
        n = arr.shape[0]
        h = int(self.horizon)
        if calendar is not None and calendar.shape[1]:
            rows = calendar[origin : origin + h]
            if rows.shape[0] < h:
                raise ValueError(f"calendar has {calendar.shape[0]} rows; periods up to {origin + h} are needed")
            X = np.concatenate([X, np.tile(rows, (n, 1))], axis=1)
            names = names + [f"cal_{j}" for j in range(calendar.shape[1])]
        if static is not None and static.shape[1]:
            X = np.concatenate([X, np.repeat(static.astype(float), h, axis=0)], axis=1)
            names = names + [f"static_{j}" for j in range(static.shape[1])]
        return X, names

    def fit(
        self,
        Y: np.ndarray,  # noqa: N803 (sklearn naming)
        y: object = None,
        calendar: np.ndarray | None = None,
        static: np.ndarray | None = None,
    ) -> GlobalGBMForecaster:
        arr = _as_matrix(Y)
        h = int(self.horizon)
        last = arr.shape[1] - h
        origins = [last - k * int(self.origin_step) for k in range(int(self.n_origins))]
        origins = [o for o in origins if o >= max(self.season, 1)]
        if not origins:
            raise ValueError(
                f"history of {arr.shape[1]} periods is too short to train a {h}-period model "
                f"(needs more than {h + self.season})"
            )
        cal = None if calendar is None else np.asarray(calendar, dtype=float)
        stat = None if static is None else np.asarray(static)
        parts_X, parts_y = [], []
        names: list[str] = []
        for o in sorted(origins):
            X, names = self._design(arr, o, cal, stat)
            target = arr[:, o : o + h].reshape(-1)
            keep = ~np.isnan(target)
            parts_X.append(X[keep].astype(np.float32))
            parts_y.append(target[keep])
        X_all = np.concatenate(parts_X)
        y_all = np.concatenate(parts_y)
        rng = np.random.default_rng(self.random_state)
        if self.max_rows is not None and len(y_all) > int(self.max_rows):
            pick = np.sort(rng.choice(len(y_all), int(self.max_rows), replace=False))
            X_all, y_all = X_all[pick], y_all[pick]
        n_static = 0 if stat is None else stat.shape[1]
        cat = np.zeros(X_all.shape[1], dtype=bool)
        if n_static:
            cat[-n_static:] = True
        with threadpool_limits(self.n_threads):
            self.model_ = self._regressor(cat).fit(X_all, y_all)
        self.feature_names_ = names
        self.n_train_rows_ = int(len(y_all))
        self.history_ = arr
        self.calendar_ = cal
        self.static_ = stat
        return self

    def _regressor(self, cat: np.ndarray) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(
            loss=self.loss,
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            categorical_features=cat if cat.any() else None,
            early_stopping=False,
            random_state=self.random_state,
        )

    def predict_from(
        self, Y: np.ndarray, calendar: np.ndarray | None = None, static: np.ndarray | None = None
    ) -> np.ndarray:  # noqa: N803
        """Forecast the ``horizon`` periods after ``Y`` (any history, same feature layout)."""
        check_is_fitted(self, "model_")
        arr = _as_matrix(Y)
        cal = self.calendar_ if calendar is None else np.asarray(calendar, dtype=float)
        stat = self.static_ if static is None else np.asarray(static)
        X, _ = self._design(arr, arr.shape[1], cal, stat)
        with threadpool_limits(self.n_threads):
            pred = self.model_.predict(X.astype(np.float32)).reshape(arr.shape[0], int(self.horizon))
        return np.maximum(pred, 0.0)

    def predict(self, horizon: int | None = None) -> np.ndarray:
        check_is_fitted(self, "model_")
        if horizon is not None and int(horizon) != int(self.horizon):
            raise ValueError(f"this model was trained for horizon {self.horizon}, got {horizon}")
        return self.predict_from(self.history_)


__all__ = ["GlobalGBMForecaster", "origin_features"]
