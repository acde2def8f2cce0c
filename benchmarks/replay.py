"""Replay transfer plans on real demand (VN1 and M5); prints the markdown tables of
docs/replay-benchmark.md.

    .venv/bin/python benchmarks/replay.py [--dataset vn1|m5|all] [--data-dir ../shared/data] [--seed 0]

The scenario (starting stock, prices, lanes) is stated in pipelines/replay.py and in the doc.
Skips with the reason when the data folder is absent (fails under CI=true).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pipelines.replay import DEFAULT_DATA_DIR, replay_command


def main() -> None:
    ap = argparse.ArgumentParser(description="Replay transfer plans on real demand")
    ap.add_argument("--dataset", default="all", choices=["vn1", "m5", "all"])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=240.0)
    a = ap.parse_args()
    needed = ["vn1", "m5"] if a.dataset == "all" else [a.dataset]
    missing = [n for n in needed if not (a.data_dir / n).exists()]
    if missing:
        msg = f"real demand data not found: {[str(a.data_dir / n) for n in missing]}"
        if os.environ.get("CI") == "true":
            sys.exit(msg)
        print(f"skipped: {msg}")
        return
    t0 = time.perf_counter()
    replay_command(a.dataset, a.data_dir, a.seed, a.time_limit)
    print(f"\n(wall {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
