"""Speed of the transfer optimisation on a synthetic network (issue: 10 locations x 100,000 SKUs).

    .venv/bin/python benchmarks/transfers.py [--skus 100000] [--locations 10] [--seed 7]
        [--donor-keep risk|reorder_point]

Scenario (seeded): location 0 is a distribution centre, the others stores; every ordered pair of
locations is a lane (cost per unit 0.05-0.40, fixed cost 20-80 per shipment, transit 1-3 days,
minimum 20 units, no capacity). Per SKU: unit cost lognormal around 8, price = cost x 1.3-2.0,
pack 1, 6 or 12; daily demand per location lognormal (mean ~1.5, stores) and the DC 3x; stock =
uniform 0.3x..3x of 14 days of demand, in whole units. Reorder point = 7 days of demand + 1.65
sqrt(7 mu); order-up-to = reorder point + 7 days. Prints the candidates, batches, the solve time,
the gap and the greedy's time and objective for comparison.
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import numpy as np
import pandas as pd

from pipelines import contract
from pipelines.transfers import greedy_transfers, optimal_transfers

RUN = date(2026, 3, 1)


def network(skus: int, n_loc: int, seed: int) -> tuple[pd.DataFrame, ...]:
    rng = np.random.default_rng(seed)
    locs = [f"L{i:02d}" for i in range(n_loc)]
    sku = np.array([f"S{i:06d}" for i in range(skus)])
    cost = np.round(rng.lognormal(np.log(8.0), 0.6, skus), 2)
    items = contract.conform(
        pd.DataFrame(
            {
                "sku": sku,
                "name": sku,
                "name_en": None,
                "category": rng.choice(["a", "b", "c", "d"], skus),
                "unit_cost": cost,
                "unit_price": np.round(cost * rng.uniform(1.3, 2.0, skus), 2),
                "pack_size": rng.choice([1, 6, 12], skus, p=[0.6, 0.3, 0.1]),
                "shelf_life_days": None,
                "abc_override": None,
                "active": True,
            }
        ),
        "items",
    )
    locations = contract.conform(
        pd.DataFrame(
            {
                "location": locs,
                "name": locs,
                "type": ["dc"] + ["store"] * (n_loc - 1),
                "region": "r",
                "can_ship": True,
                "can_receive": True,
                "active": True,
            }
        ),
        "locations",
    )
    fr, to = np.meshgrid(np.arange(n_loc), np.arange(n_loc), indexing="ij")
    m = fr != to
    nl = int(m.sum())
    lanes = contract.conform(
        pd.DataFrame(
            {
                "from_location": np.array(locs)[fr[m]],
                "to_location": np.array(locs)[to[m]],
                "cost_per_unit": np.round(rng.uniform(0.05, 0.4, nl), 2),
                "fixed_cost_per_shipment": np.round(rng.uniform(20, 80, nl), 0),
                "transit_days": rng.integers(1, 4, nl),
                "min_units": 20,
                "capacity": None,
            }
        ),
        "lanes",
    )
    n = skus * n_loc
    mu = rng.lognormal(np.log(1.0), 0.8, n) * np.tile(np.r_[3.0, np.ones(n_loc - 1)], skus)
    avail = np.floor(rng.uniform(0.3, 3.0, n) * 14 * mu)
    rop = 7 * mu + 1.65 * np.sqrt(7 * mu)
    pol = pd.DataFrame(
        {
            "run_date": pd.Timestamp(RUN),
            "run_id": "bench",
            "sku": np.repeat(sku, n_loc),
            "location": np.tile(locs, skus),
            "category": np.repeat(items["category"].to_numpy(), n_loc),
            "abc_class": "B",
            "demand_mean": mu,
            "demand_std": np.sqrt(mu),
            "lead_time_days": 7.0,
            "review_period_days": 7.0,
            "service_level": 0.95,
            "safety_stock": rop - 7 * mu,
            "reorder_point": rop,
            "order_up_to": rop + 7 * mu,
            "on_hand": avail,
            "in_transit": 0.0,
            "on_order": 0.0,
            "on_order_later": 0.0,
            "available": avail,
            "days_of_cover": avail / mu,
            "health_band": "healthy",
            "lead_time_defaulted": False,
            "explanation_en": "",
            "explanation_zh": "",
        }
    )
    policies = contract.conform(
        pd.DataFrame(
            {
                "category": ["*"],
                "abc_class": ["*"],
                "service_level": [0.95],
                "min_cover_days": [7.0],
                "max_cover_days": [60.0],
                "slow_mover_days": [60],
                "auto_approve_max_units": [50.0],
                "auto_approve_max_value": [2000.0],
            }
        ),
        "policies",
    )
    return pol, items, locations, lanes, policies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skus", type=int, default=100_000)
    ap.add_argument("--locations", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--time-limit", type=float, default=280.0)
    ap.add_argument("--batch", type=int, default=40_000)
    ap.add_argument("--donor-keep", default="risk", choices=["risk", "reorder_point"], help="the MILP's donor rule")
    a = ap.parse_args()
    t0 = time.perf_counter()
    pol, items, locations, lanes, policies = network(a.skus, a.locations, a.seed)
    print(f"network: {a.skus:,} SKUs x {a.locations} locations, {len(lanes)} lanes ({time.perf_counter() - t0:.1f} s)")
    t0, c0 = time.perf_counter(), time.process_time()
    plan = optimal_transfers(
        pol,
        items,
        locations,
        lanes,
        RUN,
        14,
        0.0,
        policies=policies,
        time_limit_seconds=a.time_limit,
        batch_candidates=a.batch,
        donor_keep=a.donor_keep,
    )
    wall = time.perf_counter() - t0
    for n in plan.notes:
        print(" ", n)
    out = plan.transfers
    net = (out["expected_benefit"] - out["transfer_cost"]).sum()
    print(
        f"milp: method={plan.method} batches={plan.batches} gap={plan.mip_gap} transfers={len(out):,}"
        f" net benefit={net:,.0f} wall={wall:.1f} s cpu={time.process_time() - c0:.1f} s"
    )
    t0 = time.perf_counter()
    g = greedy_transfers(pol, items, locations, lanes, RUN, 14, 0.0, policies=policies)
    print(
        f"greedy: transfers={len(g):,} net benefit (its own measure)={(g['expected_benefit'] - g['transfer_cost']).sum():,.0f}"
        f" wall={time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    main()
