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
- static per-series codes (item, category, location, ...) as categorical features;
- ``group<j>_mean_<w>`` (:func:`group_features`, when ``groups`` are given): the recent mean level
  of each series' groups (the item across locations, the location, the category at the
  location), pooled and so far less noisy than a slow series' own history;
- ``cov<j>_mean_<w>`` (:func:`covariate_features`, when ``covariates`` are given): recent means of
  per-series, per-period covariates such as the realised price over the list price (promotions).

Row weights (``row_weights``): ``none`` fits every row alike; ``metric`` weighs each series'
rows as a volume-weighted RMSSE weighs the series (recent level x volume / naive squared scale:
the Poisson loss already weighs a squared error by 1 / level, so this undoes it), ``level`` by its
recent level only. Rows are sampled origin by origin, each kept with the same probability, so
about ``max_rows`` rows are used and memory stays bounded whatever ``n_origins`` is.

Direct or recursive (``strategy``): *direct* trains one model on rows ``(origin, horizon)`` and
predicts the whole horizon at once; *recursive* trains a one-step model on every period of the same
span of history and feeds each forecast back as history for the next step. Both were measured on
M5 (``docs/forecast-benchmark.md``); direct is the default.

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

from models.baselines import as_matrix, naive_scale


def _nanmean_last(arr: np.ndarray, o: int, w: int) -> np.ndarray:
    tail = arr[:, max(0, o - w) : o]
    obs = ~np.isnan(tail)
    cnt = obs.sum(axis=1)
    return np.divide(np.where(obs, tail, 0.0).sum(axis=1), cnt, out=np.full(arr.shape[0], np.nan), where=cnt > 0)


def group_features(
    y: np.ndarray, origin: int, groups: np.ndarray, windows: tuple[int, ...]
) -> tuple[np.ndarray, list[str]]:
    """Recent level of each series' groups: for every grouping column ``g`` of ``groups``
    (integer codes ``[n_series, n_groups]``, e.g. the item across locations, the location) and
    window ``w``, the mean over the group's members of their mean demand in the last ``w`` periods
    before ``origin`` (members not yet observed are left out). Pooled levels are far less noisy
    than one series' own, so they carry trend and seasonality a slow series cannot show alone.
    Returns ``[n_series, n_groups * len(windows)]`` and the names."""
    arr = as_matrix(y)
    codes = np.asarray(groups, dtype=np.int64)
    cols: list[np.ndarray] = []
    names: list[str] = []
    for w in windows:
        level = _nanmean_last(arr, int(origin), int(w))
        ok = ~np.isnan(level)
        for j in range(codes.shape[1]):
            key = codes[:, j]
            tot = np.bincount(key, weights=np.where(ok, level, 0.0))
            cnt = np.bincount(key, weights=ok.astype(float))
            cols.append(np.divide(tot, cnt, out=np.full(len(tot), np.nan), where=cnt > 0)[key])
            names.append(f"group{j}_mean_{w}")
    return (np.column_stack(cols) if cols else np.zeros((arr.shape[0], 0))), names


def covariate_features(cov: np.ndarray, origin: int, windows: tuple[int, ...]) -> tuple[np.ndarray, list[str]]:
    """Past values of per-series, per-period covariates ``cov[n_series, n_periods, k]`` (e.g. the
    realised price over the list price: a promotion shows as a ratio below 1): for each covariate
    ``j`` and window ``w``, the mean of its observed values in the last ``w`` periods before
    ``origin`` (``NaN`` = unknown, left out). Only the past is used, so a covariate need not be
    known for the forecast periods. Returns ``[n_series, k * len(windows)]`` and the names."""
    c = np.asarray(cov, dtype=float)
    cols: list[np.ndarray] = []
    names: list[str] = []
    for j in range(c.shape[2]):
        for w in windows:
            cols.append(_nanmean_last(c[:, :, j], int(origin), int(w)))
            names.append(f"cov{j}_mean_{w}")
    return (np.column_stack(cols) if cols else np.zeros((c.shape[0], 0))), names


def origin_features(
    y: np.ndarray, origin: int, horizon: int, season: int, n_lags: int, windows: tuple[int, ...]
) -> tuple[np.ndarray, list[str]]:
    """Features of every series for targets ``origin + h - 1`` (h = 1..horizon) from ``y[:, :origin]``.

    Returns ``X[n_series * horizon, k]`` (series-major: row ``i * horizon + h - 1``) and the names.
    """
    arr = as_matrix(y)
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
    ``horizon`` periods after the history: ``[n_series, horizon]``, never negative;
    ``predict_from(Y, ...)`` after any history with the same feature layout. ``keep_history=False``
    keeps only the learned trees (the history and features stay with the caller, so a stored model
    does not carry its training data).
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
        group_windows: tuple[int, ...] = (7, 28),
        strategy: str = "direct",
        row_weights: str = "none",
        n_threads: int | None = 1,
        keep_history: bool = True,
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
        self.group_windows = group_windows
        self.strategy = strategy
        self.row_weights = row_weights
        self.n_threads = n_threads
        self.keep_history = keep_history
        self.random_state = random_state

    def _steps(self) -> int:
        """Periods predicted per origin: the whole horizon (direct) or one (recursive)."""
        return 1 if self.strategy == "recursive" else int(self.horizon)

    def _design(
        self,
        arr: np.ndarray,
        origin: int,
        calendar: np.ndarray | None,
        static: np.ndarray | None,
        groups: np.ndarray | None = None,
        covariates: np.ndarray | None = None,
        group_levels: np.ndarray | None = None,
    ) -> tuple[np.ndarray, list[str]]:
        h = self._steps()
        X, names = origin_features(arr, origin, h, self.season, self.n_lags, tuple(self.windows))
        n = arr.shape[0]
        if groups is not None and groups.shape[1]:
            if group_levels is None:
                G, gnames = group_features(arr, origin, groups, tuple(self.group_windows))
            else:  # computed beforehand over every member of the groups (a shard holds only some)
                G = np.asarray(group_levels, dtype=float)
                gnames = [f"group{j}_mean_{w}" for w in self.group_windows for j in range(groups.shape[1])]
                if G.shape != (n, len(gnames)):
                    raise ValueError(f"group_levels has shape {G.shape}, expected {(n, len(gnames))}")
            X = np.concatenate([X, np.repeat(G, h, axis=0)], axis=1)
            names = names + gnames
        if covariates is not None and covariates.shape[2]:
            C, cnames = covariate_features(covariates, origin, tuple(self.group_windows))
            X = np.concatenate([X, np.repeat(C, h, axis=0)], axis=1)
            names = names + cnames
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
        Y: np.ndarray,  # sklearn naming
        y: object = None,
        calendar: np.ndarray | None = None,
        static: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        covariates: np.ndarray | None = None,
    ) -> GlobalGBMForecaster:
        if self.strategy not in ("direct", "recursive"):
            raise ValueError(f"strategy must be 'direct' or 'recursive', got {self.strategy!r}")
        arr = as_matrix(Y)
        h = self._steps()
        last = arr.shape[1] - int(self.horizon)
        if self.strategy == "direct":
            origins = [last - k * int(self.origin_step) for k in range(int(self.n_origins))]
        else:  # one-step rows from every period of the same span of history
            origins = [last + int(self.horizon) - 1 - k for k in range(int(self.n_origins) * int(self.origin_step))]
        origins = [o for o in origins if o >= max(self.season, 1)]
        if not origins:
            raise ValueError(
                f"history of {arr.shape[1]} periods is too short to train a {h}-period model "
                f"(needs more than {h + self.season})"
            )
        cal = None if calendar is None else np.asarray(calendar, dtype=float)
        stat = None if static is None else np.asarray(static)
        grp = None if groups is None else np.asarray(groups, dtype=np.int64)
        cov = None if covariates is None else np.asarray(covariates, dtype=float)
        if self.row_weights not in ("none", "level", "metric"):
            raise ValueError(f"row_weights must be 'none', 'level' or 'metric', got {self.row_weights!r}")
        X_all, y_all, w_all, names = self._training_rows(arr, origins, h, (cal, stat, grp, cov))
        if len(y_all) == 0 or not np.nansum(y_all) > 0:
            raise ValueError(
                f"no demand to learn from: {len(y_all)} training row(s) over {len(origins)} origin(s), all zero or"
                " missing (the global model needs at least one sale in its training window)"
            )
        # a feature with no value at all in training (a lag longer than a short history): constant,
        # so unused, instead of crashing scikit-learn's binning on an empty column
        X_all[:, np.isnan(X_all).all(axis=0)] = 0.0
        n_static = 0 if stat is None else stat.shape[1]
        cat = np.zeros(X_all.shape[1], dtype=bool)
        if n_static:
            cat[-n_static:] = True
        with threadpool_limits(self.n_threads):
            self.model_ = self._regressor(cat).fit(
                X_all, y_all, sample_weight=None if self.row_weights == "none" else w_all / w_all.mean()
            )
        self.feature_names_ = names
        self.n_train_rows_ = int(len(y_all))
        if self.keep_history:  # for predict() without a history; the nightly model predicts from new ones
            self.history_ = arr
            self.calendar_ = cal
            self.static_ = stat
            self.groups_ = grp
            self.covariates_ = cov
        return self

    def _training_rows(
        self,
        arr: np.ndarray,
        origins: list[int],
        h: int,
        exog: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, np.ndarray | None],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """The design rows, targets and weights of every origin (sampled to ``max_rows``)."""
        cal, stat, grp, cov = exog
        parts_X, parts_y, parts_w = [], [], []
        names: list[str] = []
        rng = np.random.default_rng(self.random_state)
        # rows are sampled origin by origin (each row kept with the same probability), so memory
        # stays bounded by max_rows however many origins are used
        total = arr.shape[0] * h * len(origins)
        share = 1.0 if self.max_rows is None or total <= int(self.max_rows) else int(self.max_rows) / total
        for o in sorted(origins):
            X, names = self._design(arr, o, cal, stat, grp, cov)
            target = arr[:, o : o + h].reshape(-1)
            keep = ~np.isnan(target)
            if share < 1.0:
                keep &= rng.random(len(target)) < share
            parts_X.append(X[keep].astype(np.float32))
            parts_y.append(target[keep])
            parts_w.append(np.repeat(self._series_weights(arr, o), h)[keep])
            del X
        X_all = np.concatenate(parts_X)
        del parts_X
        y_all = np.concatenate(parts_y)
        w_all = np.concatenate(parts_w)
        return X_all, y_all, w_all, names

    def _series_weights(self, arr: np.ndarray, origin: int) -> np.ndarray:
        """Training weight of each series' rows at ``origin`` (``row_weights``): ``level`` = its
        mean demand over the last ``horizon`` periods (floored at one unit per window);
        ``metric`` = level x (horizon x level) / naive-1 squared scale, the weight a squared error
        gets in a volume-weighted RMSSE once the Poisson loss's own 1 / level is undone."""
        if self.row_weights == "none":
            return np.ones(arr.shape[0])
        h = int(self.horizon)
        level = np.maximum(np.nan_to_num(_nanmean_last(arr, origin, h)), 1.0 / h)
        if self.row_weights == "level":
            return level
        scale = naive_scale(arr[:, :origin], squared=True, from_first_sale=True)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, np.nan)
        fill = np.nanmedian(scale) if np.isfinite(scale).any() else 1.0
        return level * h * level / np.where(np.isnan(scale), fill, scale)

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
        self,
        Y: np.ndarray,
        calendar: np.ndarray | None = None,
        static: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        covariates: np.ndarray | None = None,
        group_levels: np.ndarray | None = None,
    ) -> np.ndarray:
        """Forecast the ``horizon`` periods after ``Y`` (any history, same feature layout).

        ``group_levels``: the pooled-level features at the end of ``Y`` (:meth:`group_levels`),
        computed beforehand over every member of each group, when ``Y`` holds only some of them
        (a shard of the panel); direct strategy only (a recursive forecast pools its own forecasts)."""
        check_is_fitted(self, "model_")
        if group_levels is not None and self.strategy == "recursive":
            raise ValueError(
                "group_levels: a recursive forecast pools its own forecasts; it cannot take them precomputed"
            )
        arr = as_matrix(Y)
        cal = getattr(self, "calendar_", None) if calendar is None else np.asarray(calendar, dtype=float)
        stat = getattr(self, "static_", None) if static is None else np.asarray(static)
        grp = getattr(self, "groups_", None) if groups is None else np.asarray(groups, dtype=np.int64)
        cov = getattr(self, "covariates_", None) if covariates is None else np.asarray(covariates, dtype=float)
        if self.strategy == "recursive":  # one step at a time, each forecast fed back as history
            ext = np.concatenate([arr, np.zeros((arr.shape[0], int(self.horizon)))], axis=1)
            for k in range(int(self.horizon)):
                X, _ = self._design(ext[:, : arr.shape[1] + k], arr.shape[1] + k, cal, stat, grp, cov)
                with threadpool_limits(self.n_threads):
                    ext[:, arr.shape[1] + k] = np.maximum(self.model_.predict(X.astype(np.float32)), 0.0)
            return ext[:, arr.shape[1] :]
        X, _ = self._design(arr, arr.shape[1], cal, stat, grp, cov, group_levels)
        with threadpool_limits(self.n_threads):
            pred = self.model_.predict(X.astype(np.float32)).reshape(arr.shape[0], int(self.horizon))
        return np.maximum(pred, 0.0)

    def group_levels(self, Y: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """The pooled-level features :meth:`predict_from` computes at the end of ``Y`` (every member
        of every group in ``Y``), for a later ``predict_from(..., group_levels=)`` on part of it."""
        return group_features(as_matrix(Y), as_matrix(Y).shape[1], groups, tuple(self.group_windows))[0]

    def predict(self, horizon: int | None = None) -> np.ndarray:
        """Forecast the ``horizon`` periods after the training history (needs ``keep_history``)."""
        check_is_fitted(self, "model_")
        if not hasattr(self, "history_"):
            raise ValueError("fitted with keep_history=False: call predict_from(history, ...) instead")
        if horizon is not None and int(horizon) != int(self.horizon):
            raise ValueError(f"this model was trained for horizon {self.horizon}, got {horizon}")
        return self.predict_from(self.history_)


__all__ = ["GlobalGBMForecaster", "covariate_features", "group_features", "origin_features"]
