"""Forecast benchmark on real data: our models vs Nixtla statsforecast peers, same splits.

Usage (from the repo root)::

    .venv/bin/python -m benchmarks.forecast --dataset m5 --sample 3000 [--sample-fit] [--data-dir ../shared/data]
    .venv/bin/python -m benchmarks.forecast --dataset carparts
    .venv/bin/python -m benchmarks.forecast --dataset raf
    .venv/bin/python -m benchmarks.forecast --train-end 2016-02-28 --gbm-variants '{"none": {"row_weights": "none"}}'

- **M5**: train on the days up to 2016-03-27, forecast 2016-03-28 .. 2016-04-24 (28 days).
  RMSSE per series as M5 defines it (scale = mean squared one-step naive difference over the
  training history after the series' first non-zero sale), averaged over series and weighted by
  each series' units in the last 28 training days; WAPE and bias (sum(forecast - actual) / sum
  actual). Peers run on a stratified sample (store x demand class, fixed seed). Ours is trained
  once on the full panel (one global model over every series, as the nightly run does) and scored
  on the same sample and on the full panel; ``--sample-fit`` also trains it on the sample alone.
- **Car parts** (complete series, 51 months) and **RAF** (84 months): the last 12 months are the
  test; MASE (scale = in-sample naive-1 MAE; series with a zero scale left out), bias and the
  one-sided coverage of our p90 / p95 monthly quantiles.

CPU seconds are ``time.process_time()`` (all threads of this process) per series. statsforecast
is a benchmark-only dependency (requirements-bench), imported here only.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from models.backtest import ForecastSelector, coverage
from models.baselines import naive_scale
from models.calendar import m5_calendar
from models.gbm import GlobalGBMForecaster

REPO = Path(__file__).resolve().parents[1]
M5_TRAIN_END = pd.Timestamp("2016-03-27")
M5_H = 28


def _data_dir(arg: str | None) -> Path:
    d = Path(arg) if arg else REPO.parent / "shared" / "data"
    if not d.is_dir():
        sys.exit(f"data folder {d} not found: pass --data-dir (the real data is never copied into the repo)")
    return d


# -- metrics -----------------------------------------------------------------------------------


def rmsse(train: np.ndarray, actual: np.ndarray, fc: np.ndarray) -> np.ndarray:
    """M5 RMSSE per series; NaN where the scale is zero or undefined."""
    scale = naive_scale(train, squared=True, from_first_sale=True)
    mse = np.nanmean((actual - fc) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, np.sqrt(mse / scale), np.nan)


def mase(train: np.ndarray, actual: np.ndarray, fc: np.ndarray) -> np.ndarray:
    scale = naive_scale(train)
    mae = np.nanmean(np.abs(actual - fc), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, mae / scale, np.nan)


def m5_scores(train: np.ndarray, actual: np.ndarray, fc: np.ndarray) -> dict[str, float]:
    r = rmsse(train, actual, fc)
    w = np.nan_to_num(train[:, -28:]).sum(axis=1)
    ok = ~np.isnan(r)
    return {
        "rmsse_mean": float(np.nanmean(r)),
        "rmsse_weighted": float((r[ok] * w[ok]).sum() / w[ok].sum()),
        "wape": float(np.abs(fc - actual).sum() / actual.sum()),
        "bias": float((fc - actual).sum() / actual.sum()),
    }


# -- peers -------------------------------------------------------------------------------------


def _long(y: np.ndarray, start: pd.Timestamp, freq: str) -> pd.DataFrame:
    n, t = y.shape
    ds = pd.date_range(start, periods=t, freq=freq)
    ids = np.repeat(np.arange(n), t)
    vals = y.reshape(-1)
    keep = ~np.isnan(vals)
    return pd.DataFrame({"unique_id": ids[keep], "ds": np.tile(ds, n)[keep], "y": vals[keep]})


PEERS = ("SeasonalNaive", "AutoETS", "CrostonOptimized", "TSB", "ADIDA")


def run_peers(
    y: np.ndarray, start: pd.Timestamp, freq: str, h: int, season: int, only: tuple[str, ...] = PEERS
) -> dict[str, tuple[np.ndarray, float]]:
    from statsforecast import StatsForecast
    from statsforecast.models import ADIDA, TSB, AutoETS, CrostonOptimized, SeasonalNaive

    df = _long(y, start, freq)
    peers = {
        "SeasonalNaive": SeasonalNaive(season_length=season),
        "AutoETS": AutoETS(season_length=season),
        "CrostonOptimized": CrostonOptimized(),
        "TSB": TSB(alpha_d=0.1, alpha_p=0.1),
        "ADIDA": ADIDA(),
    }
    out = {}
    for name, model in peers.items():
        if name not in only:
            continue
        t0 = time.process_time()
        # AutoETS refuses series with very few observations: those get the seasonal naive
        sf = StatsForecast(models=[model], freq=freq, n_jobs=1, fallback_model=SeasonalNaive(season_length=season))
        fc = sf.forecast(df=df, h=h)
        cpu = time.process_time() - t0
        col = [c for c in fc.columns if c not in ("unique_id", "ds")][0]
        fc = fc.sort_values(["unique_id", "ds"])
        mat = np.zeros((y.shape[0], h))
        ids = fc["unique_id"].to_numpy().astype(int)
        step = fc.groupby("unique_id").cumcount().to_numpy()
        # NaN (e.g. a seasonal naive on a series shorter than a season) counts as 0
        mat[ids, step] = np.maximum(np.nan_to_num(fc[col].to_numpy(dtype=float)), 0.0)
        out[name] = (mat, cpu)
        print(f"  {name}: {cpu:.1f} CPU s", flush=True)
    return out


# -- datasets ----------------------------------------------------------------------------------


def load_m5(data: Path) -> tuple[np.ndarray, list[str], pd.DatetimeIndex, pd.DataFrame]:
    raw = pd.read_parquet(data / "m5" / "sales_train.parquet")
    raw["date"] = pd.to_datetime(raw["date"].astype(str))
    ids = np.sort(raw["id"].unique())
    dates = pd.date_range(raw["date"].min(), raw["date"].max(), freq="D")
    row = pd.Series(np.arange(len(ids)), index=ids)[raw["id"]].to_numpy()
    col = (raw["date"] - dates[0]).dt.days.to_numpy()
    y = np.full((len(ids), len(dates)), np.nan)
    y[row, col] = raw["quantity_sold"].to_numpy(dtype=float)
    # leading rows were trimmed: before a series' first row it is not listed (NaN); after, a
    # missing day is a day without sales
    first = np.where(~np.isnan(y), np.arange(len(dates)), len(dates)).min(axis=1)
    after = np.arange(len(dates))[None, :] >= first[:, None]
    y = np.where(after & np.isnan(y), 0.0, y)
    cal = m5_calendar(data / "m5" / "calendar.csv")
    return y, list(ids), dates, cal


def m5_static(ids: list[str]) -> np.ndarray:
    parts = pd.Series(ids).str.split("_", expand=True)
    frame = pd.DataFrame(
        {"cat": parts[0], "dept": parts[0] + parts[1], "state": parts[3], "store": parts[3] + parts[4]}
    )
    return np.column_stack([pd.factorize(frame[c], sort=True)[0] for c in frame.columns])


def stratified_sample(y: np.ndarray, ids: list[str], size: int, seed: int = 0) -> np.ndarray:
    from models.intermittent import classify_demand

    classes, _, _ = classify_demand(y)
    store = pd.Series(ids).str.split("_").str[3:5].str.join("_")
    frame = pd.DataFrame({"i": np.arange(len(ids)), "stratum": store + "|" + pd.Series(classes).astype(str)})
    frac = min(1.0, size / len(ids))
    pick = frame.groupby("stratum", group_keys=False).sample(frac=frac, random_state=seed)
    return np.sort(pick["i"].to_numpy())


def m5_groups(ids: list[str]) -> np.ndarray:
    """Pooled-level groups of the global model: the item across stores, the department at the
    store, the store."""
    parts = pd.Series(ids).str.split("_", expand=True)
    keys = [parts[0] + parts[1] + parts[2], parts[0] + parts[1] + parts[3] + parts[4], parts[3] + parts[4]]
    return np.column_stack([pd.factorize(k)[0] for k in keys]).astype(np.int64)


def m5_split(
    data: Path, train_end: pd.Timestamp
) -> tuple[np.ndarray, np.ndarray, list[str], pd.Timestamp, np.ndarray, np.ndarray, np.ndarray]:
    """M5 cut after ``train_end``: training history, the 28 test days (missing = 0), series ids,
    the first day, calendar rows for history + test, static codes and pooled-level groups."""
    y, ids, dates, cal = load_m5(data)
    cut = int(np.flatnonzero(dates == train_end)[0]) + 1
    cal_arr = cal.reindex(dates[0] + pd.to_timedelta(np.arange(cut + M5_H), unit="D")).to_numpy(dtype=float)
    test = np.nan_to_num(y[:, cut : cut + M5_H])
    return y[:, :cut], test, ids, dates[0], cal_arr, m5_static(ids), m5_groups(ids)


# the global model's settings on M5 (daily, 391 training days): 20 weekly training origins, about
# 3 M sampled rows, rows weighted as the volume-weighted RMSSE weighs their series (the weights and
# the number of origins chosen on the validation window before the test,
# docs/forecast-benchmark.md); the backtest refits it before each fold so its scores (and the
# weight of its combination) are as honest as the statistical candidates'
M5_GBM = {"n_origins": 20, "origin_step": 7, "max_rows": 3_000_000, "max_iter": 200, "row_weights": "metric"}
OURS_PARAMS: dict = {"gbm_refit_per_fold": True, "min_gain": "auto"}


def ours_m5(
    y_train: np.ndarray, cal: np.ndarray, static: np.ndarray, groups: np.ndarray, **params
) -> tuple[ForecastSelector, float, float]:
    t0, w0 = time.process_time(), time.perf_counter()
    params = {**OURS_PARAMS, **params}
    sel = ForecastSelector(horizon=M5_H, season=7, n_folds=2, random_state=0, gbm_params=M5_GBM, **params).fit(
        y_train, calendar=cal, static=static, groups=groups
    )
    return sel, time.process_time() - t0, time.perf_counter() - w0


def bench_m5(
    data: Path,
    sample: int,
    results: dict,
    peers: tuple[str, ...] = PEERS,
    sample_fit: bool = False,
    use_groups: bool = True,
) -> None:
    """Peers on the stratified sample; ours trained once on the full panel (as the nightly run
    trains one global model over every series) and scored on the sample and on the full panel.
    ``sample_fit`` also trains ours on the sample alone (a global model with 10x less data)."""
    y_train, y_test, ids, start, cal_arr, static, groups = m5_split(data, M5_TRAIN_END)
    cut = y_train.shape[1]
    if not use_groups:
        groups = np.zeros((len(ids), 0), dtype=np.int64)
    idx = stratified_sample(y_train, ids, sample)
    res: dict = {"train_days": cut, "series": len(ids), "sample_series": int(len(idx)), "sample": {}, "full": {}}
    print(f"M5: {len(ids)} series, {cut} training days, sample {len(idx)}", flush=True)
    ys, ts = y_train[idx], y_test[idx]
    for name, (fc, cpu) in run_peers(ys, start, "D", M5_H, 7, peers).items():
        res["sample"][name] = {**m5_scores(ys, ts, fc), "cpu_s_per_series": cpu / len(idx)}
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sel, cpu, wall = ours_m5(y_train, cal_arr, static, groups)
    _ours_rows(sel, y_train, y_test, cpu, res["full"])
    _ours_rows(sel, y_train, y_test, cpu, res["sample"], rows=idx)
    res["full"]["run"] = {
        "cpu_s": cpu,
        "wall_s": wall,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "peak_rss_gb_before": rss0 / 1e6,
        "combination": sel.combination_,
        "best_global": sel.best_global_,
        "min_gain": sel.min_gain_,
    }
    if sample_fit:
        sel_s, cpu_s, _ = ours_m5(ys, cal_arr, static[idx], groups[idx])
        res["sample"]["ours_selected_sample_fit"] = {
            **m5_scores(ys, ts, sel_s.mean_),
            "cpu_s_per_series": cpu_s / len(idx),
        }
    results["m5"] = res


def gbm_variants(data: Path, train_end: pd.Timestamp, variants: dict[str, dict], sample: int = 3000) -> dict:
    """Our global model alone, once per variant (settings over :data:`M5_GBM`), trained on the full
    M5 panel up to ``train_end`` and scored on the 28 days after it, on the full panel and on the
    stratified sample: how settings are chosen on a validation window before the test window."""
    y_train, y_test, ids, _, cal_arr, static, groups = m5_split(data, train_end)
    idx = stratified_sample(y_train, ids, sample)
    out: dict = {}
    for name, params in variants.items():
        t0 = time.process_time()
        settings = {**M5_GBM, **params}
        per_store = bool(settings.pop("per_store", False))
        if per_store:  # one model per store on its own series (forecast.model_per_shard with store shards)
            store = np.array(["_".join(i.removesuffix("_evaluation").rsplit("_", 2)[1:]) for i in ids])
            fc, rows = np.zeros_like(y_test, dtype=float), 0
            for s in np.unique(store):
                at = np.flatnonzero(store == s)
                est = GlobalGBMForecaster(horizon=M5_H, season=7, random_state=0, **settings)
                fc[at] = est.fit(y_train[at], calendar=cal_arr, static=static[at], groups=groups[at]).predict()
                rows += est.n_train_rows_
        else:
            est = GlobalGBMForecaster(horizon=M5_H, season=7, random_state=0, **settings)
            fc = est.fit(y_train, calendar=cal_arr, static=static, groups=groups).predict()
            rows = est.n_train_rows_
        cpu = time.process_time() - t0
        out[name] = {
            "full": m5_scores(y_train, y_test, fc),
            "sample": m5_scores(y_train[idx], y_test[idx], fc[idx]),
            "cpu_s": cpu,
            "train_rows": rows,
            "peak_rss_gb_so_far": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        }
        f, smp = out[name]["full"], out[name]["sample"]
        print(
            f"  {name}: full weighted {f['rmsse_weighted']:.4f} mean {f['rmsse_mean']:.4f} bias {f['bias']:+.4f}"
            f" | sample weighted {smp['rmsse_weighted']:.4f} mean {smp['rmsse_mean']:.4f} | {cpu:.0f} CPU s,"
            f" {rows:,} rows, peak RSS so far {out[name]['peak_rss_gb_so_far']:.2f} GB",
            flush=True,
        )
    return out


def _ours_rows(
    sel: ForecastSelector,
    y_train: np.ndarray,
    y_test: np.ndarray,
    cpu: float,
    out: dict,
    rows: np.ndarray | None = None,
) -> None:
    """Score ours (selected, and each candidate alone) on ``rows`` of the fitted panel (all if None);
    CPU seconds per series are those of the whole fit over the panel."""
    r = np.arange(len(y_train)) if rows is None else rows
    ys, ts = y_train[r], y_test[r]
    zero = sel.model_[r][:, None] == "zero_no_sales"
    out["ours_selected"] = {**m5_scores(ys, ts, sel.mean_[r]), "cpu_s_per_series": cpu / len(y_train)}
    for c, name in enumerate(sel.candidates_):
        out[f"ours_{name}_only"] = m5_scores(ys, ts, np.where(zero, 0.0, sel.candidate_forecasts_[c][r]))
    q = sel.predict_quantiles((0.9, 0.95))[r]
    out["ours_selected"]["p90_coverage"] = coverage(ts, q[..., 0])
    out["ours_selected"]["p95_coverage"] = coverage(ts, q[..., 1])
    lt = sel.lead_time_quantiles(7, (0.9, 0.95))[r]
    out["ours_selected"]["lt7_p90_coverage"] = coverage(ts[:, :7].sum(axis=1), lt[:, 0])
    out["ours_selected"]["lt7_p95_coverage"] = coverage(ts[:, :7].sum(axis=1), lt[:, 1])
    out["ours_selected"]["models"] = pd.Series(sel.model_[r]).value_counts().to_dict()
    print(f"  ours: {cpu:.1f} CPU s, {out['ours_selected']}", flush=True)


def load_monthly(data: Path, name: str) -> np.ndarray:
    if name == "carparts":
        df = pd.read_csv(data / "carparts" / "carparts.csv")
        y = df.drop(columns=["Part"]).to_numpy(dtype=float)
        return y[~np.isnan(y).any(axis=1)]  # the 2,509 complete series, as in the literature
    df = pd.read_csv(data / "spare_parts" / "raf_5000_items_monthly_1996_2002.csv")
    return df.iloc[:, 4:].to_numpy(dtype=float)


def bench_monthly(data: Path, name: str, results: dict, h: int = 12, peers: tuple[str, ...] = PEERS) -> None:
    y = load_monthly(data, name)
    tr, te = y[:, :-h], y[:, -h:]
    res: dict = {"series": int(len(y)), "train_months": int(tr.shape[1]), "test_months": h}
    print(f"{name}: {len(y)} series", flush=True)

    def score(fc: np.ndarray) -> dict:
        m = mase(tr, te, fc)
        return {
            "mase": float(np.nanmean(m)),
            "bias": float((fc - te).sum() / te.sum()),
            "scored_series": int((~np.isnan(m)).sum()),
        }

    for pname, (fc, cpu) in run_peers(tr, pd.Timestamp("2000-01-31"), "ME", h, 12, peers).items():
        res[pname] = {**score(fc), "cpu_s_per_series": cpu / len(y)}
    t0 = time.process_time()
    sel = ForecastSelector(
        horizon=h,
        season=12,
        n_folds=2,  # two yearly folds: one fold of 12 months is too noisy to select on
        min_history=h,
        prior_weight=12.0,
        metric="mae",  # MASE is scored: select on absolute error
        global_weighting="equal",  # mean MASE weighs every series equally
        min_gain="auto",
        random_state=0,
        gbm_params={
            "n_lags": 6,
            "windows": (3, 6, 12),
            "n_origins": 6,
            "origin_step": 2,
            "max_iter": 100,
            "min_samples_leaf": 20,
        },
    ).fit(tr)
    cpu = time.process_time() - t0
    q = sel.predict_quantiles((0.9, 0.95))
    res["ours_selected"] = {
        **score(sel.mean_),
        "cpu_s_per_series": cpu / len(y),
        "p90_coverage": coverage(te, q[..., 0]),
        "p95_coverage": coverage(te, q[..., 1]),
        "models": pd.Series(sel.model_).value_counts().to_dict(),
    }
    for c, cname in enumerate(sel.candidates_):
        res[f"ours_{cname}_only"] = score(
            np.where(sel.model_[:, None] == "zero_no_sales", 0.0, sel.candidate_forecasts_[c])
        )
    print(f"  ours: {res['ours_selected']}", flush=True)
    results[name] = res


def markdown(results: dict) -> str:
    """The results as Markdown tables (for docs/forecast-benchmark.md)."""
    lines: list[str] = []
    m5 = results.get("m5")
    if m5:
        for part in ("sample", "full"):
            rows = {k: v for k, v in m5.get(part, {}).items() if isinstance(v, dict) and "rmsse_mean" in v}
            if not rows:
                continue
            n = m5["sample_series"] if part == "sample" else m5.get("series", 30490)
            lines += [
                f"\n**M5, {part} ({n} series)**\n",
                "| model | RMSSE mean | RMSSE weighted | WAPE | bias | CPU s / series |",
                "|---|---|---|---|---|---|",
            ]
            for name, r in rows.items():
                cpu = f"{r['cpu_s_per_series']:.4f}" if "cpu_s_per_series" in r else ""
                lines.append(
                    f"| {name} | {r['rmsse_mean']:.4f} | {r['rmsse_weighted']:.4f} | {r['wape']:.4f} | {r['bias']:+.4f} | {cpu} |"
                )
    for name in ("carparts", "raf"):
        res = results.get(name)
        if not res:
            continue
        lines += [
            f"\n**{name} ({res['series']} series, last {res['test_months']} months)**\n",
            "| model | MASE | bias | p90 cover | p95 cover | CPU s / series |",
            "|---|---|---|---|---|---|",
        ]
        for mname, r in res.items():
            if not isinstance(r, dict) or "mase" not in r:
                continue
            c90, c95 = (f"{r[k]:.3f}" if k in r else "" for k in ("p90_coverage", "p95_coverage"))
            cpu = f"{r['cpu_s_per_series']:.5f}" if "cpu_s_per_series" in r else ""
            lines.append(f"| {mname} | {r['mase']:.4f} | {r['bias']:+.4f} | {c90} | {c95} | {cpu} |")
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=["m5", "carparts", "raf", "all"], default="all")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--sample", type=int, default=3000)
    ap.add_argument("--sample-fit", action="store_true", help="M5: also train ours on the sample alone")
    ap.add_argument(
        "--gbm-param",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help='M5: override a setting of our global model, e.g. strategy="recursive" or n_origins=6 (repeatable)',
    )
    ap.add_argument("--no-groups", action="store_true", help="M5: no pooled group-level features")
    ap.add_argument(
        "--gbm-variants",
        default=None,
        metavar="JSON",
        help='M5: only our global model, one fit per variant, e.g. \'{"none": {"row_weights": "none"}}\''
        " (scored on the 28 days after --train-end)",
    )
    ap.add_argument(
        "--train-end",
        default=None,
        help="M5 with --gbm-variants (required there): last training day, at least 28 days before the"
        " benchmark's own training end so the variants are scored on a validation window before the"
        " test window (e.g. 2016-02-28)",
    )
    ap.add_argument("--peers", nargs="*", default=list(PEERS), choices=PEERS, help="statsforecast models to run")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--markdown", nargs="*", default=None, help="only render these result JSON files as Markdown")
    return ap


def _merged_markdown(files: list[str]) -> str:
    """Markdown of result JSON files merged (the M5 sections of several files side by side)."""
    merged: dict = {}
    for f in files:
        for k, v in json.loads(Path(f).read_text()).items():
            merged.setdefault(k, {}).update(v) if k == "m5" and k in merged else merged.__setitem__(k, v)
    return markdown(merged)


def _emit(results: dict, out: str | None) -> None:
    text = json.dumps(results, indent=2, default=float)
    if out:
        Path(out).write_text(text)
    print(text)


def validation_end(train_end: str | None) -> pd.Timestamp:
    """The last training day of a ``--gbm-variants`` run: required, and early enough that its 28
    scored days end before the test window (variants are chosen on validation, never on the test)."""
    if not train_end:
        raise SystemExit("--gbm-variants needs an explicit --train-end before the test window, e.g. 2016-02-28")
    end = pd.Timestamp(train_end)
    if end + pd.Timedelta(days=M5_H) > M5_TRAIN_END:
        raise SystemExit(
            f"--train-end {end.date()} scores days up to {(end + pd.Timedelta(days=M5_H)).date()}, inside the test"
            f" window after {M5_TRAIN_END.date()}: choose variants on an earlier window (at most"
            f" {(M5_TRAIN_END - pd.Timedelta(days=M5_H)).date()})"
        )
    return end


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.markdown is not None:
        print(_merged_markdown(args.markdown))
        return
    data = _data_dir(args.data_dir)
    results: dict = {}
    if args.gbm_variants is not None:
        results["m5_gbm_variants"] = gbm_variants(
            data, validation_end(args.train_end), json.loads(args.gbm_variants), args.sample
        )
        _emit(results, args.out)
        return
    if args.dataset in ("carparts", "all"):
        bench_monthly(data, "carparts", results, peers=tuple(args.peers))
    if args.dataset in ("raf", "all"):
        bench_monthly(data, "raf", results, peers=tuple(args.peers))
    if args.dataset in ("m5", "all"):
        for kv in args.gbm_param:
            key, _, value = kv.partition("=")
            M5_GBM[key] = json.loads(value)
        bench_m5(data, args.sample, results, tuple(args.peers), args.sample_fit, not args.no_groups)
    _emit(results, args.out)


if __name__ == "__main__":
    main()
