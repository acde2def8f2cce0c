"""An M5-scale night end to end: the real M5 panel as an ERP on PostgreSQL, through every stage.

Usage (PostgreSQL as in tests/conftest.py; the script creates and drops its own databases):

    .venv/bin/python benchmarks/night.py                       # the whole panel, one process
    .venv/bin/python benchmarks/night.py --tasks --shards 10   # every task its own process, 10 store shards
    .venv/bin/python benchmarks/night.py --items 300           # a quick look on 300 items x 10 stores
    .venv/bin/python benchmarks/night.py --celery --shards 10  # the DAG on the Celery executor, 2 workers
    .venv/bin/python benchmarks/night.py --synthetic 100000 --shards 10   # 1,000,000 synthetic series

**The data.** ``../shared/data/m5``: 30,490 item x store series (3,049 items, 10 stores in 3
states), 419 days to 2016-04-24, 12.3 M sales rows. It is written into the demo ERP schema on a
fresh PostgreSQL database (``pipelines.demo.source.panel_erp_frames``: one sales document per store
and day, one line per item sold). M5 has no prices, stock, lead times or lanes for the full panel,
so this scenario, stated wherever a figure is reported, supplies them: a list price per item drawn
around its department's median (FOODS 3, HOBBIES 5, HOUSEHOLD 6 dollars; cost = price / 1.3), one
unit per pack, not perishable; stores at cities of their state (lanes from the distance: within a
state 1-2 days, across states 4-5); lead times 1.5-4.5 days; a stock snapshot on 2016-04-25 of
7-30 days of each store's last 28 days of sales, with about half of the items unbalanced (a short
store and an overstocked one), as the demo generator builds it.

**The night** is for business date 2016-04-25 with the embedded defaults (``forecast.method:
selected``: the global gradient-boosting model, MILP transfers), ``forecast.history_days: 419``:

1. the first night finds no model and trains one in the ``model`` stage;
2. the night again, as the next night would, with that trained model.

Each night prints the seconds per stage and the peak resident memory (RSS sampled every 20 ms).
With ``--tasks`` every stage, every shard of a sharded stage and every gather runs in its own
process, as Airflow runs tasks, and the script prints each task's wall time and peak RSS (the
process's own ``VmHWM``), the critical path (the longest shard of each stage) and
the wall time projected on W workers (the shards of each stage packed longest-first on W workers;
stages in sequence, as the DAG runs them). This machine has 2 cores: the projection is computed
from measured task times, not measured on W machines.

With ``--celery`` the nightly DAG runs through Airflow's scheduler on the Celery executor
(``tests/celery_deployment.py``: redis-server, PostgreSQL metadata, API server, DAG processor,
scheduler, two workers), twice (the first night trains); the times are the task instances' own.

With ``--synthetic SKUS`` there is no ERP: ``SKUS`` x 10 synthetic SKU-locations
(``benchmarks/policy.py``'s scenario, two regions of five stores with lanes within each) are staged
as validation and the forecast stage would stage them, and the ``shards``, ``policy``,
``transfers`` and ``alerts`` stages run as tasks, each its own process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from extract import RssSampler  # noqa: E402

from pipelines import stages  # noqa: E402
from pipelines.config import load_config  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
M5 = REPO.parent / "shared" / "data" / "m5" / "sales_train.parquet"
END = date(2016, 4, 24)
RUN = END + timedelta(days=1)
PRICE = {"FOODS": 3.0, "HOBBIES": 5.0, "HOUSEHOLD": 6.0}
# a city per store, in its state (lon, lat)
STORES = {
    "CA_1": ("加州1号店", "CA", -118.24, 34.05),
    "CA_2": ("加州2号店", "CA", -117.16, 32.72),
    "CA_3": ("加州3号店", "CA", -122.42, 37.77),
    "CA_4": ("加州4号店", "CA", -121.49, 38.58),
    "TX_1": ("德州1号店", "TX", -95.37, 29.76),
    "TX_2": ("德州2号店", "TX", -96.80, 32.78),
    "TX_3": ("德州3号店", "TX", -98.49, 29.42),
    "WI_1": ("威州1号店", "WI", -87.91, 43.04),
    "WI_2": ("威州2号店", "WI", -89.40, 43.07),
    "WI_3": ("威州3号店", "WI", -88.02, 44.51),
}


def m5_erp_frames(items: int | None, seed: int = 42) -> dict[str, Any]:
    """The M5 panel (or its first ``items`` items, all stores) as demo ERP tables."""
    from pipelines.demo.source import panel_erp_frames

    df = pd.read_parquet(M5, columns=["id", "quantity_sold", "date"])
    parts = df["id"].astype(str).str.removesuffix("_evaluation").str.rsplit("_", n=2, expand=True)
    item, store = parts[0], parts[1] + "_" + parts[2]
    codes = np.sort(item.unique())
    if items is not None:
        codes = codes[:items]
    keep = item.isin(codes).to_numpy()
    stores = np.array(list(STORES))
    day = (pd.to_datetime(df["date"].astype(str)).to_numpy()[keep] - np.datetime64(END, "ns")) // np.timedelta64(1, "D")
    t_n = 419
    s_ix = np.searchsorted(codes, item.to_numpy()[keep])
    l_ix = np.searchsorted(stores, store.to_numpy()[keep])
    qty = np.zeros((codes.size, stores.size, t_n), dtype=np.float32)
    qty[s_ix, l_ix, day.astype(int) + t_n - 1] = df["quantity_sold"].to_numpy()[keep]
    listed = np.zeros((codes.size, stores.size), dtype=bool)
    listed[s_ix, l_ix] = True
    rng = np.random.default_rng(seed)
    cat = np.array([c.split("_")[0] for c in codes])
    dept = np.array(["_".join(c.split("_")[:2]) for c in codes])
    price = np.round(np.array([PRICE[c] for c in cat]) * rng.lognormal(0.0, 0.5, codes.size), 2)
    number = np.array([c.split("_")[-1] for c in codes])
    zh_cat = {"FOODS": "食品", "HOBBIES": "爱好", "HOUSEHOLD": "家居"}
    item_frame = {
        "mat_code": codes.astype(object),
        "mat_name": np.array(
            [f"{zh_cat[c]}{d.split('_')[1]}类 商品{n}" for c, d, n in zip(cat, dept, number, strict=True)],
            dtype=object,
        ),
        "mat_name_en": np.array([f"{d} item {n}" for d, n in zip(dept, number, strict=True)], dtype=object),
        "cat_code": np.array([d.replace("HOUSEHOLD", "HOUSE").replace("HOBBIES", "HOBBY") for d in dept], dtype=object),
        "uom": np.full(codes.size, "件", dtype=object),
        "std_cost": np.round(price / 1.3, 2),
        "list_price": price,
        "pack_qty": np.ones(codes.size, dtype=int),
    }
    loc_frame = {
        "wh_code": stores.astype(object),
        "wh_name": np.array([STORES[s][0] for s in stores], dtype=object),
        "wh_kind": np.full(stores.size, "STORE", dtype=object),
        "region_name": np.array([STORES[s][1] for s in stores], dtype=object),
    }
    return panel_erp_frames(
        qty=qty,
        listed=listed,
        end_date=END,
        items=item_frame,
        locations=loc_frame,
        lon=np.array([STORES[s][2] for s in stores]),
        lat=np.array([STORES[s][3] for s in stores]),
        seed=seed,
    )


def _database(admin: sa.Engine, name: str, create: bool) -> None:
    with admin.connect() as c:
        if create:
            c.execute(sa.text(f"create database {name} encoding 'UTF8' template template0"))
        else:
            c.execute(sa.text(f"drop database if exists {name} with (force)"))


def _config(work: Path, source: str, reporting: str, shards: int, name: str = "tiaobo.yaml") -> Path:
    path = work / name
    path.write_text(
        json.dumps(
            {
                "source": {"url": source, "retries": 0},
                "reporting": {"url": reporting},
                "staging_dir": str(work / f"staging-{name}"),
                "output_dir": str(work / f"output-{name}"),
                "forecast": {"history_days": 419, "model_dir": str(work / "models")},
                # Walmart's stores close on Christmas Day: a sample of items can have no sale that day
                "validation": {"max_missing_sales_days": 1},
                "shards": {"by": "location", "count": shards},
            }
        ),
        encoding="utf-8",
    )
    return path


def night_in_process(cfg_path: Path) -> dict[str, Any]:
    """One night by the runner in this process (``tiaobo run``): seconds per stage, peak RSS."""
    from pipelines.runner import run_pipeline

    cfg = load_config(str(cfg_path))
    t0 = time.perf_counter()
    with RssSampler() as rss:
        out = run_pipeline(cfg, RUN)
    return {"wall_s": round(time.perf_counter() - t0, 1), "peak_rss_mb": rss.peak // 2**20, "stages": out["timings"]}


def run_task(cfg_path: Path, stage: str, shard: str, run: date = RUN) -> None:
    """One task, as an Airflow worker runs it: a stage, one shard of it (``k``) or its gather."""
    from pipelines.context import RunContext
    from pipelines.runner import gather_stage, run_shard, run_stage

    ctx = RunContext(load_config(str(cfg_path)), run)
    if shard == "gather":
        gather_stage(stage, ctx)
    elif shard:
        run_shard(stage, int(shard), ctx)
    else:
        run_stage(stage, ctx)
    # the peak RSS of this process since its exec (VmHWM: wait4's ru_maxrss would report at least
    # the forking parent's peak, which holds the whole M5 panel)
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    print(f"TASK_PEAK_KB {int(hwm.split()[1])}", flush=True)


def _process(cfg_path: Path, stage: str, shard: str = "", run: date = RUN) -> dict[str, Any]:
    t0 = time.perf_counter()
    cmd = [sys.executable, __file__, "--task", stage, "--shard", shard, "--config", str(cfg_path)]
    cmd += ["--date", run.isoformat()]
    out = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise SystemExit(f"task {stage} {shard} failed (exit {out.returncode})")
    peak = next(int(x.split()[1]) for x in out.stdout.splitlines() if x.startswith("TASK_PEAK_KB"))
    return {"stage": stage, "shard": shard, "s": round(time.perf_counter() - t0, 1), "rss_mb": peak // 1024}


def _makespan(times: list[float], workers: int) -> float:
    """Longest-first packing of the tasks on ``workers`` workers: when the last one ends."""
    load = [0.0] * workers
    for t in sorted(times, reverse=True):
        load[load.index(min(load))] += t
    return max(load)


def _summary(tasks: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    """The night's tasks with its wall time, critical path (the longest shard of each sharded stage,
    every other task in sequence) and the wall projected on W workers (:func:`_makespan`)."""
    by_stage: dict[str, list[float]] = {}
    for t in tasks:
        if t["shard"] not in ("", "gather"):
            by_stage.setdefault(t["stage"], []).append(t["s"])
    serial = sum(t["s"] for t in tasks if t["shard"] in ("", "gather"))
    projected = {w: round(serial + sum(_makespan(v, w) for v in by_stage.values()), 1) for w in (1, 2, 4, 10)}
    return {
        "wall_s": round(wall, 1),
        "tasks": tasks,
        "critical_path_s": round(serial + sum(max(v) for v in by_stage.values()), 1),
        "projected_wall_s": projected,
        "max_task_rss_mb": max(t["rss_mb"] for t in tasks),
    }


def night_as_tasks(cfg_path: Path, only: tuple[str, ...] | None = None, run: date = RUN) -> dict[str, Any]:
    """The night as Airflow runs it: each task its own process, sharded stages shard by shard
    (``only``: just these stages, on staging files already there)."""
    from pipelines import reporting, shards
    from pipelines.context import RunContext

    cfg = load_config(str(cfg_path))
    reporting.migrate(cfg.reporting_url())
    ctx = RunContext(cfg, run)
    tasks: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for stage in stages.PIPELINES["nightly"]:
        if only is not None and stage.name not in only:
            continue
        if not stage.sharded:
            tasks.append(_process(cfg_path, stage.name, run=run))
            continue
        n = len(shards.read_plan(ctx.run_dir)[stage.sharded])
        tasks += [_process(cfg_path, stage.name, str(k), run=run) for k in range(n)]
        tasks.append(_process(cfg_path, stage.name, "gather", run=run))
    return _summary(tasks, time.perf_counter() - t0)


def synthetic_night(skus: int, n_shards: int, seed: int = 11) -> None:
    """``skus`` x 10 synthetic SKU-locations (``benchmarks/policy.py``'s scenario: intermittent,
    smooth and dead series, flat forecasts, lots with expiry dates; two regions of 5 stores with
    lanes within each region) staged as validation and the forecast would stage them, then the
    shards, policy, transfers and alerts stages as tasks."""
    import policy as policy_bench

    from pipelines import contract
    from pipelines.context import RunContext
    from pipelines.runner import run_stage

    run = policy_bench.RUN
    with tempfile.TemporaryDirectory(prefix="tiaobo-synthetic-") as tmp:
        work = Path(tmp)
        cfg_path = work / "tiaobo.yaml"
        cfg_path.write_text(
            json.dumps(
                {
                    "reporting": {"url": f"sqlite:///{work / 'reporting.sqlite'}"},
                    "staging_dir": str(work / "staging"),
                    "output_dir": str(work / "output"),
                    "policy": {"special_categories": ["spare"]},
                    "shards": {"by": "location", "count": n_shards},
                }
            ),
            encoding="utf-8",
        )
        day = work / "staging" / run.isoformat()
        t0 = time.perf_counter()
        counts = policy_bench.generate(day, skus, 10, 28, 10.0, seed)
        locs = [f"L{i:02d}" for i in range(10)]
        f, t = np.meshgrid(np.arange(10), np.arange(10), indexing="ij")
        off = (f != t) & (f // 5 == t // 5)  # two regions of 5 stores, transfers within a region
        lanes = pd.DataFrame(
            {
                "from_location": np.array(locs)[f[off]],
                "to_location": np.array(locs)[t[off]],
                "cost_per_unit": 0.2 + 0.05 * np.abs(f[off] - t[off]),  # neighbours are cheaper
                "fixed_cost_per_shipment": 50.0,
                "transit_days": 1 + np.abs(f[off] - t[off]) // 4,
                "min_units": 0,
                "capacity": None,
            }
        )
        locations = pd.DataFrame(
            {"location": locs, "name": locs, "type": "STORE", "can_ship": True, "can_receive": True}
        ).assign(region=np.where(np.arange(10) < 5, "East", "West"), active=True)
        contract.conform(lanes, "lanes").to_parquet(day / "lanes.parquet", index=False)
        contract.conform(locations, "locations").to_parquet(day / "locations.parquet", index=False)
        for name in ("transfer_status", "sourcing", "purchase_orders"):  # the source has none of these
            contract.empty(name).to_parquet(day / f"{name}.parquet", index=False)
        (day / "run.json").write_text(json.dumps({"run_id": f"synthetic-{skus}", "run_date": run.isoformat()}))
        # decisions and open orders exactly as the feedback stage stages them (none yet)
        run_stage("feedback", RunContext(load_config(str(cfg_path)), run))
        print(
            f"# synthetic night, {skus * 10:,} SKU-locations ({skus:,} SKUs x 10 stores), {n_shards} store shard(s):"
            f" inputs staged in {time.perf_counter() - t0:.0f} s ("
            + ", ".join(f"{k} {v:,}" for k, v in counts.items())
            + ")"
        )
        r = night_as_tasks(cfg_path, only=("shards", "policy", "transfers", "alerts"), run=run)
        _print_night(f"shards, policy, transfers, alerts; {n_shards} store shard(s), each task a process", r)


def night_on_celery(af: Any, run_id: str, again: bool) -> dict[str, Any]:
    """The nightly DAG through the scheduler on the Celery deployment ``af`` (``again``: the same
    run cleared and run again, as Airflow keeps one run per logical date): wall, each task
    instance's time (its start to its end on the worker) and the projection."""
    t0 = time.perf_counter()
    logical = f"{RUN.isoformat()}T02:00:00+08:00"
    if again:
        state = af.rerun("tiaobo_nightly", run_id, logical, timeout=3600)
    else:
        state = af.run("tiaobo_nightly", logical, run_id, timeout=3600)
    wall = time.perf_counter() - t0
    tis = af.task_instances("tiaobo_nightly", run_id)
    if state != "success":
        raise SystemExit(f"DAG run {run_id}: {state}\n" + "\n".join(str(t) for t in tis))
    tasks = []
    for t in tis:
        shard = str(t["map_index"]) if t["map_index"] >= 0 else ""
        name = t["task_id"]
        if name.endswith("_gather"):
            name, shard = name.removesuffix("_gather"), "gather"
        secs = (t["end_date"] - t["start_date"]).total_seconds() if t["end_date"] and t["start_date"] else 0.0
        tasks.append({"stage": name, "shard": shard, "s": round(secs, 1), "rss_mb": 0, "host": t["hostname"]})
    return {**_summary(tasks, wall), "hosts": sorted({str(t["host"]) for t in tasks})}


def celery_nights(args: argparse.Namespace, cfg_path: Path, work: Path, meta_db: str) -> None:
    """The first and the next night as DAG runs on a Celery deployment with two workers."""
    sys.path.insert(0, str(REPO))
    from tests.celery_deployment import CeleryDeployment, redis_server

    with redis_server(work) as broker:
        env = {"TIAOBO_CONFIG": str(cfg_path), "TIAOBO_DAG_START_DATE": "2016-01-01"}  # M5 is of 2016
        af = CeleryDeployment(work / "celery", f"{args.pg}/{meta_db}", broker, env)
        try:
            af.start(("w1", "w2"), "tiaobo_nightly")
            run_id = f"manual__business-{RUN.isoformat()}"
            for label, again in (("first night (trains the model)", False), ("the night again (trained model)", True)):
                r = night_on_celery(af, run_id, again)
                _print_night(f"{label}, {args.shards} store shard(s), Celery executor, 2 workers ({r['hosts']})", r)
        finally:
            af.stop()


def _print_night(label: str, r: dict[str, Any]) -> None:
    print(
        f"\n## {label}: {r['wall_s']:.0f} s wall"
        + (f", peak RSS {r['peak_rss_mb']:,} MB" if "peak_rss_mb" in r else "")
    )
    if "stages" in r:
        for k, v in r["stages"].items():
            print(f"  {k:<12} {v:8.1f} s")
        return
    print("  task                      s    RSS MB  (worker)")
    for t in r["tasks"]:
        name = t["stage"] + (f"[{t['shard']}]" if t["shard"] else "")
        print(f"  {name:<22} {t['s']:7.1f} {t['rss_mb'] or '':>8} {t.get('host', '')}")
    print(f"  critical path (longest shard per stage): {r['critical_path_s']:.0f} s")
    print("  projected wall on W workers: " + ", ".join(f"W={w}: {s:.0f} s" for w, s in r["projected_wall_s"].items()))
    if r["max_task_rss_mb"]:
        print(f"  largest task peak RSS: {r['max_task_rss_mb']:,} MB")


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, help="only the first N items (all 10 stores); default: all 3,049")
    ap.add_argument("--shards", type=int, default=1, help="store shards (shards.by: location)")
    ap.add_argument("--tasks", action="store_true", help="every task in its own process, as Airflow runs them")
    ap.add_argument(
        "--celery", action="store_true", help="the nightly DAG on the Celery executor: redis, scheduler, 2 workers"
    )
    ap.add_argument("--nights", type=int, default=2, choices=(1, 2), help="1: only the first night (trains)")
    ap.add_argument("--pg", default=PG)
    ap.add_argument("--task", help=argparse.SUPPRESS)
    ap.add_argument("--shard", default="", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--date", default=RUN.isoformat(), help=argparse.SUPPRESS)
    ap.add_argument(
        "--synthetic", type=int, metavar="SKUS", help="SKUS x 10 synthetic series through policy, transfers, alerts"
    )
    return ap.parse_args()


def main() -> None:
    args = _args()
    if args.task:
        run_task(Path(args.config), args.task, args.shard, date.fromisoformat(args.date))
        return
    if args.synthetic:
        synthetic_night(args.synthetic, args.shards)
        return
    if not M5.exists():
        raise SystemExit(f"{M5} is missing (../shared/data/m5)")
    from pipelines.demo.source import write_erp

    tag = uuid.uuid4().hex[:8]
    src_db, rep_db, one_db = f"tiaobo_bench_erp_{tag}", f"tiaobo_bench_rep_{tag}", f"tiaobo_bench_one_{tag}"
    meta_db = f"tiaobo_bench_airflow_{tag}"
    admin = sa.create_engine(f"{args.pg}/postgres", isolation_level="AUTOCOMMIT")
    for name in (src_db, rep_db, one_db, meta_db):
        _database(admin, name, create=True)
    try:
        with tempfile.TemporaryDirectory(prefix="tiaobo-night-") as tmp:
            work = Path(tmp)
            t0 = time.perf_counter()
            frames = m5_erp_frames(args.items)
            counts = write_erp(f"{args.pg}/{src_db}", frames)
            print(
                f"# M5 night, business date {RUN}: ERP on PostgreSQL written in {time.perf_counter() - t0:.0f} s ("
                + ", ".join(f"{k} {v:,}" for k, v in counts.items())
                + ")"
            )
            del frames
            cfg_path = _config(work, f"{args.pg}/{src_db}", f"{args.pg}/{rep_db}", args.shards)
            if args.celery:
                celery_nights(args, cfg_path, work, meta_db)
            else:
                run = night_as_tasks if args.tasks else night_in_process
                how = f"{args.shards} store shard(s), " + ("each task a process" if args.tasks else "one process")
                _print_night(f"first night (trains the model), {how}", run(cfg_path))
                if args.nights == 2:
                    _print_night(f"next night (trained model), {how}", run(cfg_path))
            if args.shards > 1:  # the same night in one shard, with the same model: the same rows?
                one = _config(work, f"{args.pg}/{src_db}", f"{args.pg}/{one_db}", 1, name="one.yaml")
                _print_night("the same night in one shard, one process", night_in_process(one))
                from pipelines.reporting import publication_digest

                a, b = publication_digest(f"{args.pg}/{rep_db}", RUN), publication_digest(f"{args.pg}/{one_db}", RUN)
                differ = sorted(k for k in a if a[k] != b[k])
                print(
                    f"\npublication, {args.shards} shards vs 1: "
                    + (f"DIFFERENT in {differ}" if differ else f"identical ({len(a)} tables, SHA-256 per table)")
                )
    finally:
        for name in (src_db, rep_db, one_db, meta_db):
            _database(admin, name, create=False)


if __name__ == "__main__":
    main()
