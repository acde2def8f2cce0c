"""Benchmark: the validate stage on a 10-million-row sales table.

Builds a staging folder as extraction leaves it (``extract_<table>.parquet`` + ``castfail_<table>.parquet``)
with 5,000 SKUs x 20 locations x 100 days of sales (10,000,000 rows, 0.1% of them bad: negative
quantities, unknown SKUs), then runs :func:`pipelines.validate.validate_stage` once, Data Docs
included, and prints the wall time, the time per step and the peak resident memory.

    .venv/bin/python benchmarks/validate.py [--skus 5000] [--locations 20] [--days 100] [--workdir DIR]

Target (issue 4): under 60 s and under 4 GB peak on the 2-core machine.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines import contract
from pipelines.config import load_config
from pipelines.context import RunContext, policies_frame
from pipelines.extract import _empty_failures

RUN = date(2026, 11, 25)


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def build(ctx: RunContext, n_skus: int, n_locs: int, days: int, seed: int = 7) -> int:
    rng = np.random.default_rng(seed)
    skus = np.array([f"SKU{i:06d}" for i in range(n_skus)], dtype=object)
    locs = np.array([f"L{i:03d}" for i in range(n_locs)], dtype=object)
    frames: dict[str, pd.DataFrame] = {
        "items": pd.DataFrame(
            {
                "sku": skus,
                "name": [f"商品 {i}" for i in range(n_skus)],
                "name_en": None,
                "category": "grocery",
                "unit_cost": rng.uniform(1, 50, n_skus),
                "unit_price": rng.uniform(2, 80, n_skus),
                "pack_size": rng.integers(1, 24, n_skus),
                "shelf_life_days": None,
                "abc_override": None,
                "active": True,
            }
        ),
        "locations": pd.DataFrame(
            {
                "location": locs,
                "name": locs,
                "type": "store",
                "region": "华东",
                "can_ship": True,
                "can_receive": True,
                "active": True,
            }
        ),
        "lanes": pd.DataFrame(
            {
                "from_location": locs[:1].repeat(n_locs - 1),
                "to_location": locs[1:],
                "cost_per_unit": 0.2,
                "fixed_cost_per_shipment": 30.0,
                "transit_days": 2,
                "min_units": 10,
                "capacity": None,
            }
        ),
        "lead_times": pd.DataFrame(
            {
                "sku": np.repeat(skus, n_locs),
                "location": np.tile(locs, n_skus),
                "lead_time_days": 7.0,
                "lead_time_std_days": 2.0,
                "review_period_days": 7.0,
            }
        ),
        "stock": pd.DataFrame(
            {
                "sku": np.repeat(skus, n_locs),
                "location": np.tile(locs, n_skus),
                "snapshot_date": pd.Timestamp(RUN),
                "lot": "",
                "expiry_date": pd.NaT,
                "on_hand": rng.poisson(20, n_skus * n_locs).astype(float),
                "in_transit": 0.0,
                "reserved": 0.0,
            }
        ),
        "policies": policies_frame(ctx.cfg),
    }
    n = n_skus * n_locs * days
    dates = pd.date_range(RUN - timedelta(days=days), periods=days, freq="D").to_numpy()
    sku_col = np.repeat(skus, n_locs * days)
    qty = rng.poisson(1.5, n).astype("float64")
    bad = rng.choice(n, n // 1000, replace=False)
    qty[bad[: len(bad) // 2]] = -1.0
    sku_col[bad[len(bad) // 2 :]] = "UNKNOWN"
    frames["sales"] = pd.DataFrame(
        {
            "sku": pd.array(sku_col, dtype="str"),
            "location": pd.array(np.tile(np.repeat(locs, days), n_skus), dtype="str"),
            "date": np.tile(dates, n_skus * n_locs),
            "quantity": qty,
            "returns": 0.0,
            "revenue": qty * 3.0,
        }
    )
    del sku_col, qty
    for name, df in frames.items():
        df = df.astype({c.name: contract.pandas_dtype(c) for c in contract.TABLES[name].columns if c.type != "date"})
        df.to_parquet(ctx.run_dir / f"extract_{name}.parquet", index=False)
        _empty_failures().to_parquet(ctx.run_dir / f"castfail_{name}.parquet", index=False)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skus", type=int, default=5000)
    ap.add_argument("--locations", type=int, default=20)
    ap.add_argument("--days", type=int, default=100)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tiaobo-bench-validate-"))
    cfg = load_config(overrides={"staging_dir": str(work / "staging"), "output_dir": str(work / "output")})
    ctx = RunContext(cfg, RUN)
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n = build(ctx, args.skus, args.locations, args.days)
    print(f"built {n:,} sales rows in {time.perf_counter() - t0:.1f} s (peak so far {_peak_gb():.2f} GB)", flush=True)
    from pipelines.validate import validate_stage

    marks: list[tuple[str, float]] = []
    t1, c1 = time.perf_counter(), time.process_time()
    res = validate_stage(ctx, progress=lambda msg: marks.append((msg, time.perf_counter())))
    total, cpu = time.perf_counter() - t1, time.process_time() - c1
    steps = [("start: GE import and context, migrate, schema", t1), *marks, ("end", time.perf_counter())]
    for (msg, t), (_, nxt) in zip(steps, steps[1:], strict=False):
        print(f"  {msg:<36} {nxt - t:6.1f} s")
    print(
        f"validate_stage: {total:.1f} s wall, {cpu:.1f} s CPU (all threads), peak RSS {_peak_gb():.2f} GB (process, including the build)"
    )
    print(
        f"counts: sales {res.counts['sales']:,}, quarantined {res.counts['quarantined']:,}, "
        f"rules failed {res.counts['rules_failed']}; Data Docs {res.paths.get('data_docs')}"
    )
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
