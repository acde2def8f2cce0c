"""Replay transfer plans on real demand (VN1 and M5); prints the markdown tables of
docs/replay-benchmark.md.

    .venv/bin/python benchmarks/replay.py [--dataset vn1|m5|all] [--data-dir ../shared/data] [--seed 0]
        [--time-limit 240] [--optimum-time-limit S] [--replan-every 7] [--half-life DAYS]
        [--donor-keep risk|reorder_point] [--last DATE --history N]

The scenario (starting stock, prices, lanes) is stated in pipelines/eval/replay.py and in the doc.
Skips with the reason when the data folder is absent (fails under CI=true).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pipelines.eval.replay import DEFAULT_DATA_DIR, HALF_LIFE_DAYS, replay_command


def main() -> None:
    ap = argparse.ArgumentParser(description="Replay transfer plans on real demand")
    ap.add_argument("--dataset", default="all", choices=["vn1", "m5", "all"])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=240.0, help="solver time limit per plan, seconds")
    ap.add_argument(
        "--optimum-time-limit", type=float, default=None, help="the exact optimum's (default: --time-limit)"
    )
    ap.add_argument("--replan-every", type=int, default=7, help="days between re-plans (0: one decision only)")
    ap.add_argument(
        "--half-life",
        type=float,
        default=None,
        help=f"forecast level: EWM half-life in days, 0 = flat mean (default per data set: {HALF_LIFE_DAYS})",
    )
    ap.add_argument(
        "--donor-keep",
        default="risk",
        choices=["risk", "reorder_point"],
        help="the MILP's donor rule (transfers.donor_keep; risk as the nightly run)",
    )
    ap.add_argument(
        "--last",
        default=None,
        help="last replayed period (a VN1 week, e.g. 2023-12-04; an M5 day, e.g. 2016-03-27): an earlier window",
    )
    ap.add_argument("--history", type=int, default=None, help="periods of history (VN1 weeks, default 8; M5 days, 56)")
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
        a.seed,
        a.time_limit,
        replan_every_days=a.replan_every or None,
        half_life_days="validated" if a.half_life is None else (a.half_life or None),
        optimum_time_limit_seconds=a.optimum_time_limit,
        donor_keep=a.donor_keep,
        last=a.last,
        history=a.history,
    )
    print(f"\n(wall {time.perf_counter() - t0:.0f} s, CPU {time.process_time() - c0:.0f} s, load {os.getloadavg()})")


if __name__ == "__main__":
    main()
