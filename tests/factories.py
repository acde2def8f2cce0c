"""Test data factories shared by the unit and integration tests."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from pipelines import contract


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
                "action": "transfer",
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
                "action": "transfer",
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
