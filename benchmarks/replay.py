"""Replay transfer plans on real demand (VN1 and M5) under the protocol of
docs/replay-benchmark.md; prints the markdown tables the doc is made of.

    .venv/bin/python benchmarks/replay.py [--dataset vn1|m5|all] [--dates reported|validation|D1,D2]
        [--seeds 0,1,2,3] [--time-limit 60] [--optimum-time-limit 60] [--replan-every 7]
        [--coverage-days N (0: the days left; default: each data set's validated choice)]
        [--m5-item-every 20] [--data-dir ../shared/data]

The scenario and the protocol are stated in pipelines/eval/replay.py and in the doc. Run it under
``flock /tmp/tiaobo-heavy.lock``. Skips with the reason when the data folder is absent (fails
under CI=true).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pipelines.eval.replay import COVERAGE_DAYS, DEFAULT_DATA_DIR, M5_ITEM_EVERY, SEEDS, replay_command


def main() -> None:
    ap = argparse.ArgumentParser(description="Replay transfer plans on real demand (the protocol)")
    ap.add_argument("--dataset", default="all", choices=["vn1", "m5", "all"])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--dates", default="reported", help="reported, validation, or comma-separated decision dates")
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="seeds of the starting stock, comma-separated")
    ap.add_argument("--time-limit", type=float, default=60.0, help="the planner's MILP time limit per plan, seconds")
    ap.add_argument("--optimum-time-limit", type=float, default=60.0, help="the exact optimum's, seconds")
    ap.add_argument("--replan-every", type=int, default=7, help="days between re-plans (0: one decision only)")
    ap.add_argument(
        "--coverage-days",
        type=int,
        default=None,
        help=f"receivers' coverage horizon, days; 0 = the days left (default per data set: {COVERAGE_DAYS})",
    )
    ap.add_argument("--m5-item-every", type=int, default=M5_ITEM_EVERY, help="M5: a fixed 1-in-N item sample")
    a = ap.parse_args()
    needed = ["vn1", "m5"] if a.dataset == "all" else [a.dataset]
    missing = [n for n in needed if not (a.data_dir / n).exists()]
    if missing:
        msg = f"real demand data not found: {[str(a.data_dir / n) for n in missing]}"
        if os.environ.get("CI") == "true":
            sys.exit(msg)
        print(f"skipped: {msg}")
        return
    t0, c0 = time.perf_counter(), time.process_time()
    replay_command(
        a.dataset,
        a.data_dir,
        a.dates,
        tuple(int(x) for x in a.seeds.split(",")),
        a.time_limit,
        a.optimum_time_limit,
        a.replan_every or None,
        "validated" if a.coverage_days is None else a.coverage_days,
        a.m5_item_every,
    )
    print(f"\n(wall {time.perf_counter() - t0:.0f} s, CPU {time.process_time() - c0:.0f} s, load {os.getloadavg()})")


if __name__ == "__main__":
    main()
