"""The multi-night demo: consecutive business nights on the demo ERP, with a simulated planner.

``tiaobo demo --nights N`` runs, for each business date D from the day after the demo ERP's last
sales day:

1. the nightly pipeline for D (its feedback stage turns yesterday's decisions into orders, exports
   them into the demo ERP's transfer-request tables and reads back what the warehouse did);
2. a **simulated planner** (:func:`simulated_planner`) deciding D's recommendations that need a
   person (the auto tier is approved by the publish itself): it follows the tier rules and rejects a
   seeded share with a reason code, now and then approving fewer packs; and a **simulated buyer**
   (:func:`simulated_buyer`) approving D's purchase proposals due that day (rejecting those without
   a supplier);
3. the order cycle a production deployment runs during the day (``tiaobo orders``): the new
   approvals become transfer and purchase orders and are exported (purchase orders into the demo
   ERP's ``po_header`` / ``po_line``, which the next night extracts as open orders);
4. the demo warehouse closing day D (:func:`pipelines.demo.warehouse.advance_day`): it ships and
   receives the exported orders (sometimes late, short or cancelled), receives the purchase orders
   promised by D, sells, replenishes from its suppliers and writes the stock snapshot of D + 1.

So the KPIs, charts and the order review have real trends, one point per night.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config import Config
from pipelines.decisions import REASON_CODES

#: share of the planner-tier recommendations the simulated planner rejects, and its reasons
REJECT_SHARE = 0.2
REASONS = tuple(c for c in REASON_CODES if c != "other")  # "other" needs a text a simulation has not
PLANNER = "demo-planner"


def simulated_planner(transfers: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Decisions (sku, from_location, to_location, decision, new_quantity, reason_code) on the
    ``planner``-tier rows of one night's transfers: a seeded share rejected with a reason, about one
    in six of the approvals cut by a pack, the rest approved as recommended."""
    t = transfers[transfers["approval_tier"] == "planner"].sort_values(["sku", "from_location", "to_location"])
    if t.empty:
        return pd.DataFrame(columns=["sku", "from_location", "to_location", "decision", "new_quantity", "reason_code"])
    run = pd.Timestamp(t["run_date"].iloc[0])
    rng = np.random.default_rng([seed, run.toordinal()])
    u = rng.random(len(t))
    reject = u < REJECT_SHARE
    cut = (u > 1 - 1 / 6) & (t["packs"].to_numpy() > 1)
    pack = (t["quantity"] / t["packs"]).to_numpy(float)
    qty = np.where(reject, 0.0, t["quantity"].to_numpy(float) - np.where(cut, pack, 0.0))
    drawn = np.asarray(REASONS, dtype=object)[rng.integers(0, len(REASONS), len(t))]
    reason = np.where(reject, drawn, np.full(len(t), None, dtype=object))
    return pd.DataFrame(
        {
            "sku": t["sku"].to_numpy(),
            "from_location": t["from_location"].to_numpy(),
            "to_location": t["to_location"].to_numpy(),
            "old_quantity": t["quantity"].to_numpy(float),
            "decision": np.where(reject, "reject", "approve"),
            "new_quantity": qty,
            "reason_code": reason,
            "rec_run_id": t["run_id"].to_numpy(),
        }
    )


def simulated_buyer(proposals: pd.DataFrame) -> pd.DataFrame:
    """Decisions (sku, location, decision, new_quantity, supplier, reason_code) on one night's
    planner-tier purchase proposals that are due that day (order-by date = the run date; the auto
    tier is approved with the publish): approved as proposed
    where a supplier is recorded, rejected as ``data_wrong`` where none is (a simulation cannot
    choose one); proposals due later wait for a later night."""
    due = (proposals["order_by"] == proposals["run_date"]) & (proposals["approval_tier"] == "planner")
    p = proposals[due].sort_values(["sku", "location"])
    known = p["supplier"].notna().to_numpy()
    return pd.DataFrame(
        {
            "sku": p["sku"].to_numpy(),
            "location": p["location"].to_numpy(),
            "old_quantity": p["quantity"].to_numpy(float),
            "decision": np.where(known, "approve", "reject"),
            "new_quantity": np.where(known, p["quantity"].to_numpy(float), 0.0),
            "supplier": p["supplier"].to_numpy(object),
            "reason_code": np.where(known, np.full(len(p), None, dtype=object), "data_wrong"),
            "rec_run_id": p["run_id"].to_numpy(),
        }
    )


def record_buyer_decisions(url: str, run_date: date, decisions: pd.DataFrame, when: datetime) -> int:
    """Write the simulated buyer's decisions as version 1 rows of ``purchase_decisions``."""
    from pipelines.reporting import PURCHASE_DECISIONS, engine_for

    if decisions.empty:
        return 0
    rows = [
        {
            "decision_id": "demo-" + hashlib.sha256(f"{run_date}|{r.sku}|{r.location}|buy".encode()).hexdigest()[:24],
            "decided_at": when,
            "decided_by": PLANNER,
            "actor_role": "planner",
            "source": "workbench",
            "rec_run_date": run_date,
            "rec_run_id": r.rec_run_id,
            "sku": r.sku,
            "location": r.location,
            "decision": r.decision,
            "old_quantity": float(r.old_quantity),
            "new_quantity": float(r.new_quantity),
            "supplier": r.supplier,
            "reason_code": r.reason_code,
            "reason_text": None,
            "version": 1,
        }
        for r in decisions.itertuples()
    ]
    with engine_for(url).execution_options(tiaobo_write=True).begin() as conn:
        conn.execute(PURCHASE_DECISIONS.insert(), rows)
    return len(rows)


def record_planner_decisions(url: str, run_date: date, decisions: pd.DataFrame, when: datetime) -> int:
    """Write the simulated planner's decisions as version 1 rows of ``transfer_decisions``."""
    from pipelines.reporting import TRANSFER_DECISIONS, engine_for

    if decisions.empty:
        return 0
    rows = [
        {
            "decision_id": "demo-"
            + hashlib.sha256(f"{run_date}|{r.sku}|{r.from_location}|{r.to_location}".encode()).hexdigest()[:24],
            "decided_at": when,
            "decided_by": PLANNER,
            "actor_role": "planner",
            "source": "web",
            "rec_run_date": run_date,
            "rec_run_id": r.rec_run_id,
            "sku": r.sku,
            "from_location": r.from_location,
            "to_location": r.to_location,
            "decision": r.decision,
            "old_quantity": float(r.old_quantity),
            "new_quantity": float(r.new_quantity),
            "reason_code": r.reason_code,
            "reason_text": None,
            "version": 1,
        }
        for r in decisions.itertuples()
    ]
    with engine_for(url).execution_options(tiaobo_write=True).begin() as conn:
        conn.execute(TRANSFER_DECISIONS.insert(), rows)
    return len(rows)


def run_nights(
    cfg: Config,
    first: date,
    nights: int,
    run_night: Callable[[date], Any],
    say: Callable[[str], None],
    seed: int = 42,
) -> list[dict[str, Any]]:
    """Run ``nights`` consecutive nights from ``first`` (module doc); ``run_night(D)`` runs the
    pipeline for D (the CLI's run with its summary). Returns one record per night."""
    from pipelines import reporting
    from pipelines.demo.warehouse import advance_day
    from pipelines.order_export import orders_cycle

    out = []
    for n in range(nights):
        day = first + timedelta(days=n)
        say(f"\n=== night {n + 1} of {nights}: business date {day} ===")
        run_night(day)
        transfers = reporting.read_table(cfg.reporting_url(), "transfers", day)
        decided = simulated_planner(transfers, seed)
        when = _decision_time(cfg.reporting_url(), day, seed)
        made = record_planner_decisions(cfg.reporting_url(), day, decided, when)
        bought = simulated_buyer(reporting.read_table(cfg.reporting_url(), "purchase_proposals", day))
        buys = record_buyer_decisions(cfg.reporting_url(), day, bought, when)
        cycle = orders_cycle(cfg, day)
        wh = advance_day(cfg.source_url(), day)
        say(
            f"  planner decided {made} recommendation(s) ({int((decided['decision'] == 'reject').sum())} rejected)"
            f" and {buys} purchase proposal(s) due today ({int((bought['decision'] == 'reject').sum())} rejected:"
            f" no supplier); orders {cycle}; warehouse: {wh['units_sold']:g} units sold, requests {wh['requests']}"
        )
        out.append({"day": day, "decided": made, "purchases_decided": buys, "orders": cycle, "warehouse": wh})
    return out


def _decision_time(url: str, day: date, seed: int) -> datetime:
    """When the simulated planner decides the night of ``day``: one to six hours (seeded) after the
    night's publication, so the time to decision is a real, reproducible figure."""
    from pipelines import reporting

    runs = reporting.read_published_runs(url)
    published = runs.loc[runs["run_date"] == pd.Timestamp(day), "published_at"]
    start = (
        published.iloc[-1].to_pydatetime() if len(published) else datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    )
    hours = 1 + int(np.random.default_rng([seed, day.toordinal(), 7]).integers(0, 6))
    return start + timedelta(hours=hours)


def demo_config_overrides(cfg: Config) -> dict[str, Any]:
    """The demo exports orders into the demo ERP itself (its transfer-request tables)."""
    if cfg.orders.targets:
        return {}
    return {"orders": {"targets": [{"name": "demo-erp", "kind": "sql", "profile": "demo"}]}}
