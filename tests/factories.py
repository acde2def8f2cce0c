"""Test data factories shared by the unit and integration tests."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from pipelines import contract, extract


def make_frames(run_date: date, run_id: str, n: int = 3, shift: float = 0.0) -> dict[str, pd.DataFrame]:
    """Contract-valid rows for every output table: unique keys, nulls in every other nullable cell,
    awkward text (Chinese, tab, newline, backslash, quotes) in the non-key text columns."""
    frames = {}
    for name, t in contract.OUTPUT_TABLES.items():
        data: dict[str, list] = {}
        for c in t.columns:
            vals: list
            if c.name == "run_date":
                vals = [run_date] * n
            elif c.name == "run_id":
                vals = [run_id] * n
            elif c.type == "str":
                vals = [f"{c.name}-{i}" if c.name in t.key else f'值 {i}\t"q"\\ {c.name}\n{shift}' for i in range(n)]
            elif c.type == "int":
                vals = [i + 1 for i in range(n)]
            elif c.type == "float":
                vals = [i * 1.5 + 0.1 + shift for i in range(n)]
            elif c.type == "bool":
                vals = [i % 2 == 0 for i in range(n)]
            else:  # date
                vals = [run_date + timedelta(days=i) for i in range(n)]
            if c.nullable:
                vals = [None if i % 2 else v for i, v in enumerate(vals)]
            data[c.name] = vals
        frames[name] = pd.DataFrame(data)
    return frames


def expected(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    return contract.canonical_order(contract.conform(frame, name), name)


def empty_staging(name: str) -> pd.DataFrame:
    """An empty, typed frame for staging file ``name`` (contract tables and the feedback stage's files)."""
    from pipelines import decisions

    if name in contract.TABLES:
        return contract.empty(name)
    if name == "past_forecasts":
        return contract.empty("forecasts")
    if name == "order_checks":
        return contract.empty("dq_results")
    if name == "policy_detail":
        return policy_detail(contract.empty("inventory_policy"))
    if name == "decisions":
        return decisions.staged_decisions(pd.DataFrame({c: [] for c in decisions.DECISION_COLUMNS}))
    if name == "open_transfers":
        return pd.DataFrame({c: [] for c in decisions.OPEN_COLUMNS}).astype(
            {"quantity": "float64", "rec_run_date": "datetime64[ns]", "arrival_date": "datetime64[ns]"}
        )
    raise KeyError(f"no empty frame for staging file {name!r}")


def write_stage_inputs(ctx, stage: str, run_id: str = "test", **frames: pd.DataFrame) -> None:
    """Write ``frames`` into the run's staging folder, then an empty frame for every other parquet
    file the declared ``stage`` reads (and ``run.json``), so the stage can run on a tiny case."""
    from pipelines import stages

    ctx.write_json("run", {"run_id": run_id, "run_date": ctx.run_date.isoformat()})
    for name, df in frames.items():
        ctx.write(name, df)
    reads = stages.BY_NAME[stage].all_reads
    if "policy_detail" in reads and "policy_detail" not in frames and ctx.exists("inventory_policy"):
        ctx.write("policy_detail", policy_detail(ctx.read("inventory_policy")))
    for name in reads:
        if name.endswith(".json") or name in frames or ctx.exists(name):
            continue
        ctx.write(name, empty_staging(name))
    ctx.accessed.clear()
    ctx.written.clear()


def insert_decision_rows(url: str, decisions: pd.DataFrame, decided_by: str = "planner1") -> None:
    """Rows of ``transfer_decisions`` in the reporting database at ``url`` for ``decisions``
    (run_date, sku, from_location, to_location, decision, quantity), version 1 each."""
    from datetime import UTC, datetime

    from pipelines import reporting

    rows = [
        {
            "decision_id": f"d{i}",
            "decided_at": datetime(2026, 1, 1, tzinfo=UTC),
            "decided_by": decided_by,
            "actor_role": "planner",
            "source": "web",
            "rec_run_date": pd.Timestamp(r.run_date).date(),
            "rec_run_id": "r",
            "sku": r.sku,
            "from_location": r.from_location,
            "to_location": r.to_location,
            "decision": r.decision,
            "old_quantity": float(r.quantity),
            "new_quantity": float(r.quantity),
            "reason_code": None if r.decision == "approve" else "other",
            "reason_text": None,
            "version": 1,
        }
        for i, r in enumerate(decisions.itertuples())
    ]
    reporting.migrate(url)
    with reporting.engine_for(url).begin() as conn:
        conn.execute(reporting.TRANSFER_DECISIONS.insert(), rows)


def policy_detail(inventory_policy: pd.DataFrame) -> pd.DataFrame:
    """The policy stage's detail file for hand-made ``inventory_policy`` rows: the rows plus the
    spread their reorder points protect (``ss_sigma``), as the policy stage writes it."""
    from pipelines.frames import reorder_point_sigma

    p = inventory_policy
    return p.assign(
        ss_sigma=reorder_point_sigma(p["reorder_point"], p["demand_mean"], p["lead_time_days"], p["service_level"])
    )


# -- raw extracts for validation ------------------------------------------------------------

VALIDATION_RUN = pd.Timestamp("2026-11-25")


def raw_frames() -> dict[str, pd.DataFrame]:
    """Extracted (not yet typed) items, locations, lanes, sales and stock that pass validation on
    ``VALIDATION_RUN``: Chinese names, a return in its own column, one lane without capacity."""
    items = pd.DataFrame(
        {
            "sku": ["A", "B"],
            "name": ["纯牛奶 250ml", "Soap"],
            "name_en": ["Milk", None],
            "category": ["dairy", "home"],
            "unit_cost": [2.0, 1.0],
            "unit_price": [3.5, 2.0],
            "pack_size": [12, 1],
            "shelf_life_days": [21, None],
            "abc_override": [None, "A"],
            "active": [True, True],
        }
    )
    locations = pd.DataFrame(
        {
            "location": ["L1", "L2"],
            "name": ["上海仓", "北京店"],
            "type": ["dc", "store"],
            "region": ["华东", "华北"],
            "can_ship": [True, True],
            "can_receive": [True, True],
            "active": [True, True],
        }
    )
    lanes = pd.DataFrame(
        {
            "from_location": ["L1"],
            "to_location": ["L2"],
            "cost_per_unit": [0.2],
            "fixed_cost_per_shipment": [30.0],
            "transit_days": [2],
            "min_units": [10],
            "capacity": [None],
        }
    )
    sales = pd.DataFrame(
        {
            "sku": ["A", "A", "B", "B"],
            "location": ["L1", "L2", "L1", "L2"],
            "date": pd.to_datetime(["2026-11-23", "2026-11-24", "2026-11-24", "2026-11-24"]),
            "quantity": [3.0, 4.0, 1.0, 0.0],
            "returns": [0.0, 0.0, 0.0, 1.0],
            "revenue": [10.5, 14.0, 2.0, -2.0],
        }
    )
    stock = pd.DataFrame(
        {
            "sku": ["A", "A", "B"],
            "location": ["L1", "L2", "L2"],
            "snapshot_date": [VALIDATION_RUN] * 3,
            "lot": ["", "", ""],
            "expiry_date": [None, None, None],
            "on_hand": [10.0, 2.0, 5.0],
            "in_transit": [0.0, 0.0, 0.0],
            "reserved": [0.0, 0.0, 0.0],
        }
    )
    return {"items": items, "locations": locations, "lanes": lanes, "sales": sales, "stock": stock}


def typed(name: str, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``df`` cast leniently to contract table ``name``: (typed frame, cast failures)."""
    return extract.cast_lenient(df, contract.TABLES[name])
