"""Safety stock, reorder point, ABC classes, policy lookup and health bands on hand-made frames."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines import contract
from pipelines.config import load_config
from pipelines.context import RunContext, policies_frame
from pipelines.policy import abc_classes, compute_policy, lookup_policy, policy_stage

RUN = date(2026, 1, 10)
D = pd.Timestamp
Z95 = 1.6448536269514722  # norm.ppf(0.95)


def items(skus: list[str], category: str = "c1", unit_cost: float = 1.0, **cols: list) -> pd.DataFrame:
    base = {
        "sku": skus,
        "name": skus,
        "name_en": None,
        "category": category,
        "unit_cost": unit_cost,
        "unit_price": 2.0 * unit_cost,
        "pack_size": 1,
        "shelf_life_days": None,
        "abc_override": None,
        "active": True,
    }
    base.update(cols)
    return contract.conform(pd.DataFrame(base), "items")


def sales(*rows: tuple[str, str, str, float]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["sku", "location", "date", "quantity"])
    return contract.conform(df.assign(returns=0.0, revenue=df["quantity"]), "sales")


def forecasts(*rows: tuple[str, str, float], horizon: int = 3) -> pd.DataFrame:
    out = []
    for sku, loc, mean in rows:
        for h in range(1, horizon + 1):
            out.append((sku, loc, h, mean))
    df = pd.DataFrame(out, columns=["sku", "location", "horizon", "mean"])
    return df.assign(
        run_date=D(RUN),
        run_id="t",
        target_date=D(RUN) + pd.to_timedelta(df["horizon"] - 1, unit="D"),
        p50=0.0,
        p90=0.0,
        p95=0.0,
        p99=0.0,
        model="moving_average",
    )


def stock(*rows: tuple[str, str, str, float, float, float]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["sku", "location", "lot", "on_hand", "in_transit", "reserved"])
    return contract.conform(df.assign(snapshot_date=D(RUN), expiry_date=None), "stock")


def lead_times(*rows: tuple[str, str, float, float, float]) -> pd.DataFrame:
    cols = ["sku", "location", "lead_time_days", "lead_time_std_days", "review_period_days"]
    return contract.conform(pd.DataFrame(rows, columns=cols), "lead_times")


def policies(*rows: tuple[str, str, float, float, float]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["category", "abc_class", "service_level", "min_cover_days", "max_cover_days"])
    return contract.conform(
        df.assign(slow_mover_days=60, auto_approve_max_units=50.0, auto_approve_max_value=2000.0), "policies"
    )


def run_policy(fc, s, it, st, lt, pol, **kw):
    return compute_policy(
        fc,
        s,
        it,
        st,
        lt,
        pol,
        RUN,
        default_lead_time_days=kw.pop("default_lead_time_days", 7.0),
        default_lead_time_std_days=kw.pop("default_lead_time_std_days", 2.0),
        default_review_period_days=kw.pop("default_review_period_days", 7.0),
        **kw,
    )


# -- safety stock and friends --------------------------------------------------------------------


def test_safety_stock_with_demand_and_lead_time_variance() -> None:
    # daily sales over the last 4 days: 1, 3, 1, 3 -> sample variance 4/3
    s = sales(
        ("A", "S1", "2026-01-06", 1),
        ("A", "S1", "2026-01-07", 3),
        ("A", "S1", "2026-01-08", 1),
        ("A", "S1", "2026-01-09", 3),
    )
    out = run_policy(
        forecasts(("A", "S1", 2.0)),
        s,
        items(["A"]),
        stock(("A", "S1", "L1", 10, 3, 2), ("A", "S1", "L2", 5, 0, 0)),
        lead_times(("A", "S1", 4.0, 1.0, 5.0)),
        policies(("*", "*", 0.95, 10, 60)),
        std_days=4,
    )
    r = out.iloc[0]
    assert r["demand_mean"] == pytest.approx(2.0)
    assert r["demand_std"] == pytest.approx(np.sqrt(4 / 3))
    # SS = z * sqrt((L+R) sigma_d^2 + mu^2 sigma_L^2) = z * sqrt(9 * 4/3 + 4 * 1) = 4 z
    assert r["safety_stock"] == pytest.approx(4 * Z95)
    assert r["reorder_point"] == pytest.approx(2 * 4 + 4 * Z95)
    assert r["order_up_to"] == pytest.approx(2 * 9 + 4 * Z95)
    # stock summed over lots: on hand 15, in transit 3, reserved 2
    assert (r["on_hand"], r["in_transit"], r["available"]) == (15.0, 3.0, 16.0)
    assert r["days_of_cover"] == pytest.approx(8.0)
    assert r["health_band"] == "under"  # 8 < 10 days
    assert not r["lead_time_defaulted"]
    assert "safety stock 7" in r["explanation_en"] and "reorder at 15" in r["explanation_en"]
    assert "安全库存 7" in r["explanation_zh"] and "库存不足" in r["explanation_zh"]
    contract.conform(out.assign(run_id="t"), "inventory_policy")


def test_missing_lead_time_is_defaulted_and_flagged() -> None:
    out = run_policy(
        forecasts(("A", "S1", 1.0), ("A", "S2", 1.0)),
        sales(),
        items(["A"]),
        stock(("A", "S1", "", 30, 0, 0), ("A", "S2", "", 30, 0, 0)),
        lead_times(("A", "S1", 3.0, 0.0, 2.0)),
        policies(("*", "*", 0.95, 10, 60)),
        default_lead_time_days=9.0,
        default_lead_time_std_days=2.0,
        default_review_period_days=5.0,
    )
    s1, s2 = out.iloc[0], out.iloc[1]
    assert (s1["lead_time_days"], s1["review_period_days"], s1["lead_time_defaulted"]) == (3.0, 2.0, False)
    assert (s2["lead_time_days"], s2["review_period_days"], s2["lead_time_defaulted"]) == (9.0, 5.0, True)
    # no sales: sigma_d = 0, so SS = z * mu * sigma_L = z * 1 * 2
    assert s2["safety_stock"] == pytest.approx(2 * Z95)
    assert s1["safety_stock"] == pytest.approx(0.0)
    assert "default" in s2["explanation_en"] and "默认" in s2["explanation_zh"]


def test_no_demand_item() -> None:
    out = run_policy(
        forecasts(("A", "S1", 0.0)),
        sales(("A", "S1", "2026-01-09", 2)),
        items(["A"]),
        stock(("A", "S1", "", 12, 0, 0)),
        lead_times(),
        policies(("*", "*", 0.95, 10, 60)),
        std_days=2,
    )
    r = out.iloc[0]
    assert r["health_band"] == "no_demand"
    assert np.isnan(r["days_of_cover"])
    assert r["reorder_point"] == pytest.approx(r["safety_stock"])  # mu * L = 0
    assert r["explanation_en"].startswith("No demand forecast") and "无需求" in r["explanation_zh"]


def test_health_bands() -> None:
    out = run_policy(
        forecasts(("A", "S1", 1.0), ("A", "S2", 1.0), ("A", "S3", 1.0), ("A", "S4", 1.0)),
        sales(),
        items(["A"]),
        stock(
            ("A", "S1", "", 5, 0, 0), ("A", "S2", "", 10, 0, 0), ("A", "S3", "", 60, 0, 0), ("A", "S4", "", 61, 0, 0)
        ),
        lead_times(),
        policies(("*", "*", 0.95, 10, 60)),
    )
    assert out["health_band"].tolist() == ["under", "healthy", "healthy", "over"]


# -- ABC and policy lookup -----------------------------------------------------------------------


def test_abc_cutoffs_by_cumulative_value_share() -> None:
    it = items(["A", "B", "C", "D", "E", "F"], unit_cost=1.0, active=[True, True, True, True, True, False])
    s = sales(
        ("A", "S1", "2026-01-01", 50),
        ("B", "S1", "2026-01-01", 20),
        ("B", "S2", "2026-01-02", 10),
        ("C", "S1", "2026-01-01", 15),
        ("D", "S1", "2026-01-01", 5),
        ("E", "S1", "2024-12-01", 999),  # older than 365 days: no value
        ("F", "S1", "2026-01-01", 1000),  # discontinued: not ranked
    )
    got = abc_classes(s, it, RUN, (0.80, 0.95)).set_index("sku")["abc_class"].to_dict()
    # values 50, 30 (network-wide), 15, 5 of 100; share before: 0, .5, .8, .95
    assert got == {"A": "A", "B": "A", "C": "B", "D": "C", "E": "C"}


def test_abc_override_wins_and_applies_to_all_locations() -> None:
    it = items(["A", "B"], abc_override=["C", None])
    s = sales(("A", "S1", "2026-01-01", 90), ("B", "S1", "2026-01-01", 10))
    assert abc_classes(s, it, RUN).set_index("sku")["abc_class"].to_dict() == {"A": "C", "B": "B"}
    out = run_policy(
        forecasts(("A", "S1", 1.0), ("A", "S2", 1.0)),
        s,
        it,
        stock(),
        lead_times(),
        policies(("*", "*", 0.95, 10, 60), ("*", "C", 0.9, 5, 90)),
    )
    assert out["abc_class"].tolist() == ["C", "C"] and out["service_level"].tolist() == [0.9, 0.9]


def test_lookup_policy_most_specific_row_wins() -> None:
    pol = policies(
        ("*", "*", 0.91, 1, 60), ("*", "A", 0.92, 2, 60), ("fruit", "*", 0.93, 3, 60), ("fruit", "A", 0.94, 4, 60)
    )
    keys = pd.DataFrame(
        {"category": ["fruit", "fruit", "tools", "tools"], "abc_class": ["A", "B", "A", "C"]}, index=[10, 11, 12, 13]
    )
    got = lookup_policy(keys, pol)
    assert got["service_level"].tolist() == [0.94, 0.93, 0.92, 0.91]
    assert list(got.index) == [10, 11, 12, 13]
    with pytest.raises(ValueError, match="no row matches category 'tools'"):
        lookup_policy(keys, pol[pol["category"] == "fruit"])


# -- stage ---------------------------------------------------------------------------------------


def test_policy_stage_on_tiny_staging(tmp_path) -> None:
    cfg = load_config(overrides={"staging_dir": str(tmp_path / "s"), "output_dir": str(tmp_path / "o")})
    ctx = RunContext(cfg, RUN)
    ctx.write_json("run", {"run_id": "test"})
    ctx.write("forecasts", forecasts(("A", "S1", 2.0), ("B", "S1", 0.0)))
    ctx.write("sales", sales(("A", "S1", "2026-01-09", 2)))
    ctx.write("items", items(["A", "B"]))
    ctx.write("stock", stock(("A", "S1", "", 10, 0, 0)))
    ctx.write("lead_times", lead_times(("A", "S1", 3.0, 1.0, 7.0)))
    ctx.write("policies", policies_frame(cfg))
    res = policy_stage(ctx)
    assert res.stage == "policy" and res.counts == {"inventory_policy": 2}
    assert res.paths == {"inventory_policy": str(ctx.path("inventory_policy"))}
    out = ctx.read("inventory_policy")
    assert set(out["run_id"]) == {"test"} and set(out["run_date"]) == {D(RUN)}
    a = out[out["sku"] == "A"].iloc[0]
    assert a["abc_class"] == "A" and a["service_level"] == 0.98  # only seller: class A row of the defaults
    assert a["available"] == 10.0 and a["days_of_cover"] == pytest.approx(5.0)
    b = out[out["sku"] == "B"].iloc[0]
    assert b["health_band"] == "no_demand" and bool(b["lead_time_defaulted"]) and b["available"] == 0.0
