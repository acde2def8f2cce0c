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


def record_decision(
    url: str, rec: pd.Series, decision: str, quantity: float, decided_by: str = "ann", reason_code: str | None = None
) -> None:
    """One planner's decision on the published recommendation ``rec`` (a ``transfers`` row with its
    run_date, run_id, sku and lane) as the next version of its ``transfer_decisions`` rows."""
    import uuid
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from pipelines import reporting

    T = reporting.TRANSFER_DECISIONS
    key = {
        "rec_run_date": pd.Timestamp(rec["run_date"]).date(),
        "sku": str(rec["sku"]),
        "from_location": str(rec["from_location"]),
        "to_location": str(rec["to_location"]),
    }
    with reporting.engine_for(url).execution_options(tiaobo_write=True).begin() as conn:
        have = conn.execute(sa.select(sa.func.max(T.c.version)).where(*(T.c[k] == v for k, v in key.items()))).scalar()
        conn.execute(
            T.insert().values(
                decision_id=uuid.uuid4().hex,
                decided_at=datetime.now(UTC),
                decided_by=decided_by,
                actor_role="planner",
                source="web",
                rec_run_id=str(rec["run_id"]),
                decision=decision,
                old_quantity=float(rec["quantity"]),
                new_quantity=float(quantity),
                reason_code=reason_code,
                reason_text=None,
                version=int(have or 0) + 1,
                **key,
            )
        )
