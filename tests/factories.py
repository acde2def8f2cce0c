"""Test data factories shared by the unit and integration tests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
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
    if name == "open_purchases":
        return contract.empty("purchase_orders")
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
    optional = set(reads) - set(stages.BY_NAME[stage].required_reads)
    for name in reads:
        if name.endswith(".json") or name in frames or ctx.exists(name):
            continue
        if name in optional and name == "abc":  # without the shards stage's classes the policy computes them
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


# ---------------------------------------------------------------------------------------------
# The planner workbench: a small published night with transfers, masters, lanes, alerts, KPIs
# ---------------------------------------------------------------------------------------------

WB_DATE = date(2026, 11, 24)
WB_RUN_ID = "20261124-wbtest"
#: a SKU name that must be shown as text, never run
XSS_NAME = "<script>alert(1)</script>"


def contract_frame(name: str, rows: list[dict], run_date: date, run_id: str) -> pd.DataFrame:
    """Rows of output table ``name``; columns not given get a neutral value of their type."""
    t = contract.OUTPUT_TABLES[name]
    neutral = {"str": "", "int": 0, "float": 0.0, "bool": False, "date": run_date, "ts": None}
    data = {
        c.name: [r.get(c.name, None if c.nullable else neutral[c.type]) for r in rows]
        for c in t.columns
        if c.name not in ("run_date", "run_id")
    }
    df = pd.DataFrame({"run_date": [run_date] * len(rows), "run_id": [run_id] * len(rows), **data})
    return contract.conform(df, name)


def workbench_night(run_date: date = WB_DATE, run_id: str = WB_RUN_ID, extra_transfers: list[dict] | None = None):
    """Frames of one published night for the workbench.

    Locations: DC1, S1 (华东), S2 (华南), S3 (华北). Items: A (pack 6, cost 10), B (pack 1, cost 500:
    20 units = 10,000), X (pack 2, named with a script tag). Lanes: DC1→S1 (minimum 10 units,
    fixed 50), DC1→S2, S2→S3 (no minimum). Transfers (all planner tier):
    A DC1→S1 12 (excess 30), B DC1→S1 20, A DC1→S2 6, X S2→S3 4.
    Purchase proposals: A for S1 (24, MOQ 24, multiple 12, value 236), B for S2 (10, no supplier
    recorded, value 4,800), X for S3 (4, MOQ 2, a supplier named with a script tag).
    """
    f = {}
    f["location_master"] = contract_frame(
        "location_master",
        [
            {
                "location": "DC1",
                "name": "华东仓",
                "type": "dc",
                "region": "华东",
                "can_ship": True,
                "can_receive": True,
                "active": True,
            },
            {
                "location": "S1",
                "name": "上海店",
                "type": "store",
                "region": "华东",
                "can_ship": True,
                "can_receive": True,
                "active": True,
            },
            {
                "location": "S2",
                "name": "广州店",
                "type": "store",
                "region": "华南",
                "can_ship": True,
                "can_receive": True,
                "active": True,
            },
            {
                "location": "S3",
                "name": "北京店",
                "type": "store",
                "region": "华北",
                "can_ship": True,
                "can_receive": True,
                "active": True,
            },
        ],
        run_date,
        run_id,
    )
    f["item_master"] = contract_frame(
        "item_master",
        [
            {
                "sku": "A",
                "name": "洗洁精 1kg",
                "name_en": "Dish soap 1kg",
                "category": "HOME",
                "unit_cost": 10.0,
                "unit_price": 18.0,
                "pack_size": 6,
            },
            {
                "sku": "B",
                "name": "电饭煲",
                "name_en": "Rice cooker",
                "category": "APPL",
                "unit_cost": 500.0,
                "unit_price": 800.0,
                "pack_size": 1,
            },
            {
                "sku": "X",
                "name": XSS_NAME,
                "name_en": XSS_NAME,
                "category": "HOME",
                "unit_cost": 5.0,
                "unit_price": 9.0,
                "pack_size": 2,
            },
        ],
        run_date,
        run_id,
    )
    f["lane_master"] = contract_frame(
        "lane_master",
        [
            {
                "from_location": "DC1",
                "to_location": "S1",
                "cost_per_unit": 0.5,
                "fixed_cost_per_shipment": 50.0,
                "transit_days": 2,
                "min_units": 10,
                "capacity": 1000,
            },
            {
                "from_location": "DC1",
                "to_location": "S2",
                "cost_per_unit": 0.8,
                "fixed_cost_per_shipment": 30.0,
                "transit_days": 3,
                "min_units": 0,
            },
            {
                "from_location": "S2",
                "to_location": "S3",
                "cost_per_unit": 1.0,
                "fixed_cost_per_shipment": 20.0,
                "transit_days": 4,
                "min_units": 0,
            },
        ],
        run_date,
        run_id,
    )
    base = {"approval_tier": "planner", "method": "milp", "arrival_date": run_date + timedelta(days=2)}
    transfers = [
        {
            "sku": "A",
            "from_location": "DC1",
            "to_location": "S1",
            "quantity": 12.0,
            "packs": 2,
            "transfer_cost": 16.0,
            "expected_benefit": 90.0,
            "receiver_stockout_date": run_date + timedelta(days=3),
            "receiver_units_short": 14.0,
            "donor_days_of_cover": 60.0,
            "donor_excess_units": 30.0,
            "explanation_en": "Move 12 A from DC1 to S1.",
            "explanation_zh": "从 DC1 调 12 件 A 到 S1。",
        },
        {
            "sku": "B",
            "from_location": "DC1",
            "to_location": "S1",
            "quantity": 20.0,
            "packs": 20,
            "transfer_cost": 44.0,
            "expected_benefit": 3000.0,
            "receiver_stockout_date": run_date + timedelta(days=2),
            "receiver_units_short": 25.0,
            "donor_days_of_cover": 40.0,
            "donor_excess_units": 5.0,
            "explanation_en": "Move 20 B from DC1 to S1.",
            "explanation_zh": "从 DC1 调 20 件 B 到 S1。",
        },
        {
            "sku": "A",
            "from_location": "DC1",
            "to_location": "S2",
            "quantity": 6.0,
            "packs": 1,
            "transfer_cost": 34.8,
            "expected_benefit": 40.0,
            "receiver_stockout_date": None,
            "receiver_units_short": 4.0,
            "donor_days_of_cover": 60.0,
            "donor_excess_units": 30.0,
            "explanation_en": "Move 6 A from DC1 to S2.",
            "explanation_zh": "从 DC1 调 6 件 A 到 S2。",
        },
        {
            "sku": "X",
            "from_location": "S2",
            "to_location": "S3",
            "quantity": 4.0,
            "packs": 2,
            "transfer_cost": 24.0,
            "expected_benefit": 30.0,
            "receiver_stockout_date": run_date + timedelta(days=5),
            "receiver_units_short": 4.0,
            "donor_days_of_cover": 30.0,
            "donor_excess_units": 6.0,
            "explanation_en": "Move 4 X from S2 to S3.",
            "explanation_zh": "从 S2 调 4 件 X 到 S3。",
        },
    ]
    f["transfers"] = contract_frame(
        "transfers", [{**base, **t} for t in transfers + (extra_transfers or [])], run_date, run_id
    )
    buy = {
        "order_by": run_date,
        "expected_receipt": run_date + timedelta(days=5),
        "lead_time_days": 5.0,
        "approval_tier": "planner",
    }
    f["purchase_proposals"] = contract_frame(
        "purchase_proposals",
        [
            {  # 华东: 24 x 9 + 20 = 236
                **buy,
                "sku": "A",
                "location": "S1",
                "supplier": "华东日化",
                "quantity": 24.0,
                "unit_cost": 9.0,
                "fixed_order_cost": 20.0,
                "cost": 236.0,
                "moq": 24.0,
                "order_multiple": 12.0,
                "reorder_point": 20.0,
                "order_up_to": 40.0,
                "inventory_position": 16.0,
                "explanation_en": "Order 24 A for S1.",
                "explanation_zh": "为 S1 订购 24 件 A。",
            },
            {  # 华南, no supplier recorded: 10 x 480 = 4,800 (12 would be 5,760: above a planner's 5,000)
                **buy,
                "sku": "B",
                "location": "S2",
                "supplier": None,
                "quantity": 10.0,
                "unit_cost": 480.0,
                "cost": 4800.0,
                "moq": 1.0,
                "order_multiple": 1.0,
                "runs_out_before_receipt": True,
                "explanation_en": "Order 10 B for S2.",
                "explanation_zh": "为 S2 订购 10 件 B。",
            },
            {  # 华北, a supplier named with a script tag
                **buy,
                "sku": "X",
                "location": "S3",
                "supplier": XSS_NAME,
                "quantity": 4.0,
                "unit_cost": 5.0,
                "cost": 20.0,
                "moq": 2.0,
                "order_multiple": 2.0,
                "explanation_en": "Order 4 X for S3.",
                "explanation_zh": "为 S3 订购 4 件 X。",
            },
        ],
        run_date,
        run_id,
    )
    f["alerts"] = contract_frame(
        "alerts",
        [
            {
                "alert_type": "stockout_risk",
                "sku": "B",
                "location": "S1",
                "severity": "high",
                "units": 25.0,
                "value_at_risk": 20000.0,
                "event_date": run_date + timedelta(days=2),
                "action": "approve_transfer",
                "explanation_en": "S1 runs out of B.",
                "explanation_zh": "S1 的 B 将缺货。",
            },
            {
                "alert_type": "near_expiry",
                "sku": "A",
                "location": "S1",
                "lot": "L1",
                "severity": "high",
                "units": 300.0,
                "value_at_risk": 30000.0,
                "event_date": run_date + timedelta(days=20),
                "action": "promote",
                "explanation_en": "Lot L1 of A expires.",
                "explanation_zh": "A 的批次 L1 即将过期。",
            },
            {
                "alert_type": "excess",
                "sku": "X",
                "location": "S2",
                "severity": "low",
                "units": 10.0,
                "value_at_risk": 50.0,
                "action": "stop_ordering",
                "explanation_en": "Too much X.",
                "explanation_zh": "X 过多。",
            },
        ],
        run_date,
        run_id,
    )
    f["inventory_policy"] = contract_frame(
        "inventory_policy",
        [
            {
                "sku": s,
                "location": loc,
                "category": "HOME",
                "abc_class": "A",
                "abc_class_network": "A",
                "abc_class_location": "A",
                "xyz_class": "X",
                "demand_pattern": "smooth",
                "ss_method": "normal",
                "demand_mean": 4.0,
                "demand_std": 1.0,
                "lead_time_days": 3.0,
                "review_period_days": 1.0,
                "service_level": 0.95,
                "safety_stock": 8.0,
                "reorder_point": 20.0,
                "order_up_to": 40.0,
                "on_hand": oh,
                "in_transit": 0.0,
                "on_order": 0.0,
                "on_order_later": 0.0,
                "available": oh,
                "days_of_cover": oh / 4.0,
                "health_band": "under" if oh < 20 else "over",
                "explanation_en": f"{s} at {loc}",
                "explanation_zh": f"{s} 在 {loc}",
            }
            for s, loc, oh in (
                ("A", "S1", 2.0),
                ("A", "DC1", 200.0),
                ("B", "S1", 1.0),
                ("B", "DC1", 60.0),
                ("A", "S2", 5.0),
                ("X", "S2", 20.0),
                ("X", "S3", 0.0),
            )
        ],
        run_date,
        run_id,
    )
    f["forecasts"] = contract_frame(
        "forecasts",
        [
            {
                "sku": s,
                "location": loc,
                "target_date": run_date + timedelta(days=h),
                "horizon": h + 1,
                "mean": 4.0,
                "p50": 4.0,
                "p90": 6.0,
                "p95": 7.0,
                "p99": 9.0,
                "model": "ses",
            }
            for s, loc in (("A", "S1"), ("A", "DC1"), ("B", "S1"), ("B", "DC1"))
            for h in range(14)
        ],
        run_date,
        run_id,
    )
    f["kpis"] = contract_frame(
        "kpis",
        [
            {"location": "*", "category": "*", "metric": m, "value": v}
            for m, v in (("fill_rate", 0.93), ("stockout_rate", 0.04), ("inventory_value", 123456.0))
        ],
        run_date,
        run_id,
    )
    f["dq_results"] = contract_frame(
        "dq_results",
        [
            {
                "table_name": "sales",
                "rule": "not_null",
                "column_name": "quantity",
                "level": "row",
                "passed": False,
                "observed": "1 null",
                "observed_value": 1.0,
                "failing_rows": 1,
            }
        ],
        run_date,
        run_id,
    )
    f["quarantine"] = contract_frame(
        "quarantine",
        [
            {
                "table_name": "sales",
                "row_number": 7,
                "rule": "not_null",
                "column_name": "quantity",
                "value": None,
                "row_json": '{"sku": "A", "quantity": null}',
            }
        ],
        run_date,
        run_id,
    )
    return f


def publish_workbench_night(url: str, run_date: date = WB_DATE, run_id: str = WB_RUN_ID, **kw) -> dict:
    """Migrate the reporting database at ``url`` and publish :func:`workbench_night` for ``run_date``."""
    from pipelines import reporting

    reporting.migrate(url)
    frames = workbench_night(run_date, run_id, **kw)
    reporting.publish(url, run_date, run_id, frames)
    return frames


def add_workbench_users(url: str, password: str = "correct-horse-9") -> None:
    """Accounts: east (planner, 华东, zh), south (planner, 华南, en), boss (manager, en), root (admin)."""
    from pipelines import reporting
    from pipelines.workbench import users

    with reporting.engine_for(url).begin() as conn:
        users.add_user(conn, "east", "planner", ["华东"], "zh", password)
        users.add_user(conn, "south", "planner", ["华南"], "en", password)
        users.add_user(conn, "boss", "manager", [], "en", password)
        users.add_user(conn, "root", "admin", [], "en", password)


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


# -- hand-made input frames (contract-typed) --------------------------------------------------
#
# One builder per table, shared by the unit tests of alerts, forecast, policy and transfers.
# Scalars apply to every row; a list gives one value per row.

HAND_RUN = date(2026, 3, 1)  # run date of the hand-made policy rows (alerts and transfers tests)


def items(
    skus: list[str], category: str = "c1", unit_cost: Any = 1.0, unit_price: Any = None, **cols: Any
) -> pd.DataFrame:
    """Items ``skus`` named after themselves, pack size 1, active, no shelf life and no ABC override;
    ``unit_price`` defaults to twice ``unit_cost``; ``cols`` override any other column."""
    base = {
        "sku": skus,
        "name": skus,
        "name_en": None,
        "category": category,
        "unit_cost": unit_cost,
        "unit_price": 2.0 * pd.Series(unit_cost, index=range(len(skus))) if unit_price is None else unit_price,
        "pack_size": 1,
        "shelf_life_days": None,
        "abc_override": None,
        "active": True,
    }
    base.update(cols)
    return contract.conform(pd.DataFrame(base), "items")


def priced_items(*rows: tuple[str, float, float, int]) -> pd.DataFrame:
    """Items from (sku, unit_cost, unit_price, pack_size) rows."""
    return items(
        [r[0] for r in rows],
        unit_cost=[r[1] for r in rows],
        unit_price=[r[2] for r in rows],
        pack_size=[r[3] for r in rows],
    )


def active_items(*rows: tuple[str, bool]) -> pd.DataFrame:
    """Items from (sku, active) rows, with Chinese names."""
    return items(
        [r[0] for r in rows],
        unit_cost=1.0,
        unit_price=2.0,
        name=[f"商品{r[0]}" for r in rows],
        active=[r[1] for r in rows],
    )


def sales(*rows: tuple[str, str, str, float], unit_price: float = 1.0) -> pd.DataFrame:
    """Sales from (sku, location, date, quantity) rows: no returns, revenue = quantity x ``unit_price``."""
    df = pd.DataFrame(rows, columns=["sku", "location", "date", "quantity"])
    return contract.conform(df.assign(returns=0.0, revenue=df["quantity"] * unit_price), "sales")


STOCK_DEFAULTS = {"lot": "", "expiry_date": None, "in_transit": 0.0, "reserved": 0.0}


def stock(*rows: tuple, columns: tuple[str, ...], snapshot: date) -> pd.DataFrame:
    """A stock snapshot on ``snapshot`` from rows of ``columns``; a stock column not in ``columns``
    gets its default (no lot, no expiry date, nothing in transit or reserved)."""
    df = pd.DataFrame(rows, columns=list(columns))
    missing = {k: v for k, v in STOCK_DEFAULTS.items() if k not in df.columns}
    return contract.conform(df.assign(snapshot_date=pd.Timestamp(snapshot), **missing), "stock")


def lead_times(*rows: tuple) -> pd.DataFrame:
    """Lead times from (sku, location, lead_time_days[, lead_time_std_days[, review_period_days]])
    rows; the standard deviation defaults to 1 day and the review period to 7 days."""
    defaults = (1.0, 7.0)
    full = [tuple(r) + defaults[len(r) - 3 :] for r in rows]
    cols = ["sku", "location", "lead_time_days", "lead_time_std_days", "review_period_days"]
    return contract.conform(pd.DataFrame(full, columns=cols), "lead_times")


def lead_time_demand_rows(*rows: tuple[str, str, float, float, float], run_date: date) -> pd.DataFrame:
    """The forecast stage's ``lead_time_demand`` from (sku, location, lead_time_days, mean, dispersion)
    rows: negative-binomial quantiles of that mean and variance-to-mean ratio (Poisson at 1)."""
    from scipy.stats import nbinom, poisson

    df = pd.DataFrame(rows, columns=["sku", "location", "lead_time_days", "mean", "dispersion"])
    m, phi = df["mean"].to_numpy(float), df["dispersion"].to_numpy(float)
    for q in (50, 90, 95, 99):
        nb = nbinom.ppf(q / 100, m / np.maximum(phi - 1, 1e-9), 1 / np.maximum(phi, 1.0))
        df[f"p{q}"] = np.where(phi > 1, nb, poisson.ppf(q / 100, m))
    out = df.assign(
        run_date=pd.Timestamp(run_date),
        run_id="t",
        lead_time_defaulted=False,
        model="moving_average",
        explanation_en="",
        explanation_zh="",
    )
    return contract.conform(out, "lead_time_demand")


def policies(
    *rows: tuple[str, str, float, float, float],
    slow_mover_days: int = 60,
    max_cover_days: float = 60.0,
    max_units: float = 50.0,
    max_value: float = 2000.0,
) -> pd.DataFrame:
    """Policy rows (category, abc_class, service_level, min_cover_days, max_cover_days); without rows
    one catch-all row: service level 95%, 7 to ``max_cover_days`` days of cover. Every row has
    ``slow_mover_days`` and the auto-approval limits ``max_units`` / ``max_value``."""
    cols = ["category", "abc_class", "service_level", "min_cover_days", "max_cover_days"]
    df = pd.DataFrame(list(rows) or [("*", "*", 0.95, 7.0, max_cover_days)], columns=cols)
    return contract.conform(
        df.assign(slow_mover_days=slow_mover_days, auto_approve_max_units=max_units, auto_approve_max_value=max_value),
        "policies",
    )


_POLICY_ROW = {
    "run_id": "t",
    "category": "c1",
    "abc_class": "B",
    "abc_class_network": "B",
    "abc_class_location": "B",
    "xyz_class": "X",
    "demand_pattern": "smooth",
    "ss_method": "normal",
    "demand_mean": 0.0,
    "demand_std": 0.0,
    "lead_time_days": 7.0,
    "review_period_days": 7.0,
    "service_level": 0.95,
    "safety_stock": 0.0,
    "reorder_point": 0.0,
    "order_up_to": 0.0,
    "on_hand": 0.0,
    "in_transit": 0.0,
    "on_order": 0.0,
    "on_order_later": 0.0,
    "available": 0.0,
    "days_of_cover": np.nan,
    "health_band": "healthy",
    "lead_time_defaulted": False,
    "explanation_en": "",
    "explanation_zh": "",
}


def _policy_row(r: dict | tuple) -> dict:
    if isinstance(r, dict):
        return r
    sku, loc, mu, avail, rop, out = r[:6]
    transit = r[6] if len(r) > 6 else 0.0
    return {
        "sku": sku,
        "location": loc,
        "demand_mean": mu,
        "reorder_point": rop,
        "order_up_to": out,
        "on_hand": avail - transit,
        "in_transit": transit,
        "on_order": 0.0,
        "on_order_later": 0.0,
        "available": avail,
        "days_of_cover": avail / mu if mu else np.nan,
    }


def policy_rows(*rows: dict | tuple, run_date: date = HAND_RUN) -> pd.DataFrame:
    """Inventory-policy rows on ``run_date``: a healthy class-B item with nothing in stock, updated by
    each row, given either as a dict of columns or as a tuple
    (sku, location, demand_mean, available, reorder_point, order_up_to[, in_transit])
    (on hand = available - in transit, days of cover = available / demand_mean)."""
    base = {"run_date": pd.Timestamp(run_date), **_POLICY_ROW}
    return contract.conform(pd.DataFrame([{**base, **_policy_row(r)} for r in rows]), "inventory_policy")


def locations(**flags: tuple[bool, bool]) -> pd.DataFrame:
    """Active stores of region east: location=(can_ship, can_receive)."""
    return contract.conform(
        pd.DataFrame(
            {
                "location": list(flags),
                "name": list(flags),
                "type": "store",
                "region": "east",
                "can_ship": [f[0] for f in flags.values()],
                "can_receive": [f[1] for f in flags.values()],
                "active": True,
            }
        ),
        "locations",
    )


def lanes(*rows: tuple) -> pd.DataFrame:
    """(from, to, cost_per_unit, fixed_cost, transit_days, min_units, capacity)"""
    cols = [
        "from_location",
        "to_location",
        "cost_per_unit",
        "fixed_cost_per_shipment",
        "transit_days",
        "min_units",
        "capacity",
    ]
    return contract.conform(pd.DataFrame(rows, columns=cols), "lanes")


HAND_LOCATIONS = locations(DC=(True, False), S1=(True, True), S2=(True, True))


def deterministic_demand(pol: pd.DataFrame, horizon: int = 14) -> Any:
    """Demand known exactly: ``demand_mean`` a day for each policy row, over ``horizon`` days."""
    from pipelines.transfers import Demand

    keys = pol[["sku", "location"]].reset_index(drop=True)
    mu = pol["demand_mean"].to_numpy(float)
    return Demand(keys, np.arange(horizon + 1)[None, :] * mu[:, None], deterministic=True)


def milp_run(
    pol: pd.DataFrame, it: pd.DataFrame, ln: pd.DataFrame, *, locs: Any = None, coverage: int = 14, **kw: Any
) -> Any:
    """The MILP transfer plan on ``HAND_RUN`` (deterministic demand and no holding cost unless given)."""
    from pipelines.transfers import optimal_transfers

    kw.setdefault("demand", deterministic_demand(pol, coverage))
    kw.setdefault("holding_cost_rate", 0.0)
    locs = HAND_LOCATIONS if locs is None else locs
    return optimal_transfers(pol, it, locs, ln, HAND_RUN, coverage, 0.0, policies=policies(), **kw)


# -- the hand-computed KPI case (tests/unit/test_kpis.py, tests/integration/test_feedback_stage.py) --

KPI_RUN = date(2026, 3, 1)
KPI_PAST_RUN = pd.Timestamp(KPI_RUN) - pd.Timedelta(days=28)  # the run whose 28-day horizon has just passed


def kpi_items() -> pd.DataFrame:
    return contract.conform(
        pd.DataFrame(
            {
                "sku": ["A", "B"],
                "name": ["苹果", "扳手"],
                "name_en": None,
                "category": ["fruit", "tools"],
                "unit_cost": [2.0, 10.0],
                "unit_price": [4.0, 20.0],
                "pack_size": 1,
                "shelf_life_days": None,
                "abc_override": None,
                "active": True,
            }
        ),
        "items",
    )


def kpi_locations() -> pd.DataFrame:
    locs = ["S1", "S2", "S3", "S4"]
    return contract.conform(
        pd.DataFrame(
            {
                "location": locs,
                "name": locs,
                "type": "store",
                "region": "east",
                "can_ship": True,
                "can_receive": True,
                "active": [True, True, True, False],
            }
        ),
        "locations",
    )


def kpi_stock() -> pd.DataFrame:
    return contract.conform(
        pd.DataFrame(
            {
                "sku": ["A", "A", "B", "A"],
                "location": ["S1", "S1", "S1", "S2"],
                "snapshot_date": pd.Timestamp(KPI_RUN),
                "lot": ["L1", "L2", "", ""],
                "expiry_date": [pd.Timestamp("2026-03-05"), None, None, None],
                "on_hand": [6.0, 4.0, 5.0, 20.0],
                "in_transit": 0.0,
                "reserved": 0.0,
            }
        ),
        "stock",
    )


def kpi_policy() -> pd.DataFrame:
    rows = [("A", "S1", 1.0, 10.0, "healthy"), ("B", "S1", 0.5, 0.0, "under"), ("A", "S2", 0.0, 20.0, "no_demand")]
    df = pd.DataFrame(rows, columns=["sku", "location", "demand_mean", "available", "health_band"])
    return contract.conform(
        df.assign(
            run_date=pd.Timestamp(KPI_RUN),
            run_id="t",
            category="x",
            abc_class="B",
            abc_class_network="B",
            abc_class_location="B",
            xyz_class="X",
            demand_pattern="smooth",
            ss_method="normal",
            demand_std=0.0,
            lead_time_days=7.0,
            review_period_days=7.0,
            service_level=0.95,
            safety_stock=0.0,
            reorder_point=0.0,
            order_up_to=0.0,
            on_hand=df["available"],
            in_transit=0.0,
            on_order=0.0,
            on_order_later=0.0,
            days_of_cover=np.nan,
            lead_time_defaulted=False,
            explanation_en="",
            explanation_zh="",
        ),
        "inventory_policy",
    )


def kpi_alerts() -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "alert_type": ["slow_mover", "near_expiry", "stockout_risk"],
            "sku": ["A", "A", "B"],
            "location": ["S2", "S1", "S1"],
            "lot": ["", "L1", ""],
            "value_at_risk": [40.0, 8.0, 99.0],
        }
    )
    return contract.conform(
        df.assign(
            run_date=pd.Timestamp(KPI_RUN),
            run_id="t",
            severity="low",
            units=1.0,
            event_date=None,
            action="x",
            explanation_en="",
            explanation_zh="",
            plan_units=0.0,
            plan_locations="",
            plan_reason="",
        ),
        "alerts",
    )


def kpi_transfers() -> pd.DataFrame:
    df = pd.DataFrame(
        {"sku": ["A"], "from_location": ["S2"], "to_location": ["S1"], "quantity": [6.0], "transfer_cost": [3.0]}
    )
    return contract.conform(
        df.assign(
            run_date=pd.Timestamp(KPI_RUN),
            run_id="t",
            packs=6,
            expected_benefit=12.0,
            receiver_stockout_date=None,
            receiver_units_short=6.0,
            donor_days_of_cover=np.nan,
            donor_excess_units=10.0,
            arrival_date=pd.Timestamp(KPI_RUN),
            approval_tier="auto",
            method="greedy",
            explanation_en="",
            explanation_zh="",
        ),
        "transfers",
    )


def kpi_accuracy() -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "sku": ["A", "B", "A"],
            "location": ["S1", "S1", "S2"],
            "actual": [10.0, 0.0, 5.0],
            "forecast": [9.0, 4.0, 6.0],
            "wape": [0.2, np.nan, 1.0],
        }
    )
    return contract.conform(
        df.assign(
            run_date=pd.Timestamp(KPI_RUN), run_id="t", model="moving_average", window_days=28, bias=np.nan, mase=np.nan
        ),
        "forecast_accuracy",
    )


def kpi_sales() -> pd.DataFrame:
    rows = [
        ("A", "S1", KPI_PAST_RUN, 14.0, 0.0),  # in the turnover window and day 1 of the past horizon
        ("A", "S1", pd.Timestamp(KPI_RUN) - pd.Timedelta(days=1), 14.0, 0.0),
        ("A", "S1", KPI_PAST_RUN - pd.Timedelta(days=1), 100.0, 0.0),  # before the window: not counted
        ("B", "S1", pd.Timestamp(KPI_RUN) - pd.Timedelta(days=2), 3.0, 1.0),  # net 2 units
        ("B", "S1", pd.Timestamp(KPI_RUN), 50.0, 0.0),  # the run date itself: not known yet, not counted
    ]
    df = pd.DataFrame(rows, columns=["sku", "location", "date", "quantity", "returns"])
    return contract.conform(df.assign(revenue=0.0), "sales")


def kpi_decisions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_date": [
                pd.Timestamp(KPI_RUN) - pd.Timedelta(days=2),
                pd.Timestamp(KPI_RUN) - pd.Timedelta(days=1),
                pd.Timestamp(KPI_RUN) - pd.Timedelta(days=1),
                pd.Timestamp(KPI_RUN),
            ],
            "sku": ["A", "B", "A", "B"],
            "from_location": ["S2", "S2", "S1", "S2"],
            "to_location": ["S1", "S1", "S2", "S1"],
            "decision": ["approve", "approve", "reject", "approve"],
            "quantity": [5.0, 4.0, 0.0, 9.0],
        }
    )


def kpi_lanes() -> pd.DataFrame:
    lanes = pd.DataFrame({"from_location": ["S2", "S1"], "to_location": ["S1", "S2"], "cost_per_unit": [0.5, 0.7]})
    return contract.conform(
        lanes.assign(fixed_cost_per_shipment=0.0, transit_days=1.0, min_units=0.0, capacity=None), "lanes"
    )


def kpi_past_forecasts() -> pd.DataFrame:
    return contract.conform(
        pd.DataFrame(
            {
                "run_date": KPI_PAST_RUN,
                "run_id": "old",
                "sku": "A",
                "location": "S1",
                "target_date": [KPI_PAST_RUN, KPI_PAST_RUN + pd.Timedelta(days=1)],
                "horizon": [1, 2],
                "mean": 2.0,
                "p50": 2.0,
                "p90": 3.0,
                "p95": 4.0,
                "p99": 5.0,
                "model": "ma",
            }
        ),
        "forecasts",
    )


# -- report and email rows (tests/integration/test_report_render.py, test_email_smtp.py) --------

REPORT_RUN_DATE = date(2026, 11, 25)
REPORT_RUN_ID = "20261125-abcdef123456"


def table(name: str, rows: list[dict], run_date: date = REPORT_RUN_DATE, run_id: str = REPORT_RUN_ID) -> pd.DataFrame:
    """Contract table ``name`` with ``rows`` (run_date / run_id filled in for output tables)."""
    if not rows:
        return contract.empty(name)
    cols = contract.TABLES[name].names
    full = []
    for r in rows:
        row = dict(r)
        if "run_date" in cols:
            row.setdefault("run_date", pd.Timestamp(run_date))
            row.setdefault("run_id", run_id)
        full.append(row)
    return pd.concat([contract.empty(name), contract.conform(pd.DataFrame(full), name)], ignore_index=True)


def transfer(sku: str, frm: str, to: str, qty: float, tier: str, benefit: float, cost: float = 10.0, **kw: Any) -> dict:
    """A transfers row (greedy, arriving 2026-11-27); ``kw`` overrides any column."""
    row = {
        "sku": sku,
        "from_location": frm,
        "to_location": to,
        "quantity": qty,
        "packs": int(qty // 6),
        "transfer_cost": cost,
        "expected_benefit": benefit,
        "receiver_stockout_date": pd.Timestamp("2026-11-29"),
        "receiver_units_short": qty,
        "donor_days_of_cover": 80.0,
        "donor_excess_units": qty * 2,
        "arrival_date": pd.Timestamp("2026-11-27"),
        "approval_tier": tier,
        "method": "greedy",
        "explanation_en": f"Move {qty:.0f} units of {sku} from {frm} to {to}.",
        "explanation_zh": f"将 {qty:.0f} 件 {sku} 从 {frm} 调到 {to}。",
    }
    row.update(kw)
    return row


def message_parts(msg: Any) -> tuple[str, str, dict[str, bytes]]:
    """(plain text, html, {attachment filename: bytes}) of a message."""
    text = html = ""
    files: dict[str, bytes] = {}
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            continue
        fn = part.get_filename()
        payload = part.get_payload(decode=True)
        if fn:
            files[fn] = payload
        elif part.get_content_type() == "text/plain":
            text = payload.decode(part.get_content_charset() or "utf-8")
        elif part.get_content_type() == "text/html":
            html = payload.decode(part.get_content_charset() or "utf-8")
    return text, html, files


# -- reading back and running ------------------------------------------------------------------


def published_tables(url: str) -> dict[str, pd.DataFrame]:
    """Every output table as published in the reporting database at ``url``."""
    from pipelines import reporting

    return {name: reporting.read_table(url, name) for name in contract.OUTPUT_TABLES}


def check_summary_views(u: str, d1: date = date(2025, 3, 10), d2: date = date(2025, 3, 11)) -> None:
    """Publish ``d1`` and ``d2``, then check the summary views against hand-computed sums (SQLite and PostgreSQL)."""
    import sqlalchemy as sa

    from pipelines import reporting

    for d, rid in ((d1, "r1"), (d2, "r2")):
        f = make_frames(d, rid, n=4)
        f["transfers"]["approval_tier"] = ["planner", "auto", "planner", "auto"]
        f["transfers"]["quantity"] = [10.0, 1.0, 30.0, 2.0]
        f["transfers"]["transfer_cost"] = [1.0, 0.5, 3.0, 0.25]
        f["alerts"]["severity"] = ["low", "high", "high", "high"]
        f["alerts"]["alert_type"] = ["excess", "stockout_risk", "stockout_risk", "near_expiry"]
        f["alerts"]["value_at_risk"] = [100.0, 10.0, 50.0, 20.0]
        f["kpis"]["location"] = ["*", "S1", "S1", "S2"]
        f["kpis"]["category"] = "*"
        reporting.publish(u, d, rid, f)
    with reporting.engine_for(u).connect() as conn:
        tiers = conn.execute(sa.text("select * from v_transfer_tiers_today")).mappings().all()
        alerts = conn.execute(sa.text("select * from v_alert_summary_today")).mappings().all()
        by_loc = conn.execute(sa.text("select run_date, location, metric from v_kpi_trend_location")).all()
    assert [(r["approval_tier"], r["transfers"], r["units"], r["transfer_cost"]) for r in tiers] == [
        ("auto", 2, 3.0, 0.75),
        ("planner", 2, 40.0, 4.0),
    ]
    assert {str(r["run_date"])[:10] for r in tiers} == {d2.isoformat()}
    assert [(r["severity"], r["alert_type"], r["alerts"], r["value_at_risk"]) for r in alerts] == [
        ("high", "stockout_risk", 2, 60.0),
        ("high", "near_expiry", 1, 20.0),
        ("low", "excess", 1, 100.0),
    ]
    assert [(str(d)[:10], loc, m) for d, loc, m in by_loc] == [
        (d1.isoformat(), "*", "metric-0"),
        (d2.isoformat(), "*", "metric-0"),
        (d1.isoformat(), "S1", "metric-1"),
        (d2.isoformat(), "S1", "metric-1"),
        (d1.isoformat(), "S1", "metric-2"),
        (d2.isoformat(), "S1", "metric-2"),
        (d1.isoformat(), "S2", "metric-3"),
        (d2.isoformat(), "S2", "metric-3"),
    ]


def docker_compose() -> dict:
    """docker-compose.yml, parsed."""
    from pathlib import Path

    import yaml

    return yaml.safe_load((Path(__file__).resolve().parents[1] / "docker-compose.yml").read_text(encoding="utf-8"))


def run_nightly_dag(logical_date: Any) -> Any:
    """``dag.test()`` of the nightly DAG (dags/tiaobo_nightly.py) for ``logical_date``."""
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dags"))
    mod = importlib.import_module("tiaobo_nightly")
    return mod.dag_object.test(logical_date=logical_date)


def transfer_review_rows(run: date) -> pd.DataFrame:
    """``transfer_review`` rows (without run_id) of the run date ``run``: three lines into S1 (departed
    run-20 received on time, run-10 received late and short, run-3 shipped) and one cancelled into S2."""
    dep = [pd.Timestamp(run) - pd.Timedelta(days=n) for n in (20, 10, 3, 5)]
    df = pd.DataFrame(
        {
            "run_date": pd.Timestamp(run),
            "order_no": ["O1", "O2", "O3", "O4"],
            "sku": ["A", "A", "B", "A"],
            "from_location": ["S2", "S2", "S2", "S1"],
            "to_location": ["S1", "S1", "S1", "S2"],
            "rec_run_date": dep,
            "state": ["received", "partly_received", "shipped", "cancelled"],
            "approved_qty": [10.0, 10.0, 4.0, 6.0],
            "shipped_qty": [10.0, 10.0, 4.0, None],
            "received_qty": [10.0, 6.0, None, None],
            "shipped_date": [dep[0] + pd.Timedelta(days=1), dep[1] + pd.Timedelta(days=1), dep[2], pd.NaT],
            "received_date": [dep[0] + pd.Timedelta(days=2), dep[1] + pd.Timedelta(days=4), pd.NaT, pd.NaT],
            "planned_transit_days": 2.0,
            "lead_time_days": [2.0, 4.0, None, None],
            "transit_days": [1.0, 3.0, None, None],
            "on_time": [True, False, None, None],
            "window_end": [d + pd.Timedelta(days=14) for d in dep],
            "window_closed": [True, False, False, False],
            "receiver_stocked_out": [False, True, None, None],
            "donor_stocked_out": [True, False, False, False],
            "expected_benefit": [30.0, 20.0, 8.0, 12.0],
            "transfer_cost": [5.0, 5.0, 2.0, 3.0],
            "units_sold_thanks": [8.0, None, None, None],
            "realised_benefit": [11.0, None, None, None],
            "explanation_en": "x",
            "explanation_zh": "x",
        }
    )
    return contract.conform(df.assign(run_id="r"), "transfer_review").drop(columns=["run_id"])


def steady_sales(days: int, last: str, per_sku: dict[str, float], location: str = "L1") -> pd.DataFrame:
    """``days`` days of sales ending on ``last``: every SKU of ``per_sku`` sells its quantity every day."""
    dates = pd.date_range(end=pd.Timestamp(last), periods=days, freq="D")
    return pd.DataFrame(
        [(sku, location, d, float(q)) for d in dates for sku, q in per_sku.items()],
        columns=["sku", "location", "date", "quantity"],
    )


def publication_hash(url: str) -> str:
    """One fingerprint of everything published at ``url``: every output table's rows, in order, plus
    ``published_runs`` (a changed row, a lost row or a moved publication all change it)."""
    import hashlib

    from pipelines import reporting

    h = hashlib.sha256()
    for name, df in sorted(published_tables(url).items()):
        h.update(name.encode())
        h.update(pd.util.hash_pandas_object(df.astype("str"), index=False).to_numpy().tobytes())
    runs = reporting.read_published_runs(url)[["run_date", "run_id"]]
    h.update(pd.util.hash_pandas_object(runs.astype("str"), index=False).to_numpy().tobytes())
    return h.hexdigest()


def add_demo_sale(url: str, doc_no: str, doc_date: Any, qty: float, sku: str | None = None) -> tuple[str, str]:
    """Insert one POSTED SALE document of ``qty`` units into a demo ERP (first SKU, first open
    warehouse unless ``sku`` is given); ``doc_date`` is bound as given (a date, or text such as
    ``'2026-11-24 10:15:00'``). Returns (sku, warehouse)."""
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    with eng.begin() as conn:
        sku = sku or conn.execute(sa.text("select mat_code from md_material order by mat_code limit 1")).scalar_one()
        wh = conn.execute(
            sa.text("select wh_code from md_warehouse where is_closed = 0 order by wh_code limit 1")
        ).scalar_one()
        conn.execute(
            sa.text(
                "insert into so_header (doc_no, wh_code, doc_date, doc_type, status, remark, updated_at)"
                " values (:d, :w, :day, 'SALE', 'POSTED', 'test', :ts)"
            ),
            {"d": doc_no, "w": wh, "day": doc_date, "ts": "2026-01-01 00:00:00"},
        )
        conn.execute(
            sa.text(
                "insert into so_line (doc_no, line_no, mat_code, qty, price, amount) values (:d, 1, :m, :q, 1, :q)"
            ),
            {"d": doc_no, "m": sku, "q": qty},
        )
    eng.dispose()
    return sku, wh


def benchmark_script(name: str) -> Any:
    """The module ``benchmarks/<name>.py``, loaded from its file (benchmarks are scripts, not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def spare_parts_dir(mod: Any) -> Any:
    """The real-data folder a spare-parts benchmark ``mod`` reads (its ``data_dir()``); skips the test
    with the reason when ``spare_parts`` is not there, and fails under CI=true, where it must be."""
    import os

    import pytest

    base = mod.data_dir()
    if not (base / "spare_parts").exists():
        msg = f"real spare-parts data not found at {base / 'spare_parts'} (set TIAOBO_DATA_DIR)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " under CI=true")
        pytest.skip(msg)
    return base
