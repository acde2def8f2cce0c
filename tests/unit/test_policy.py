"""Safety stock, reorder point, ABC classes, policy lookup and health bands on hand-made frames."""

from __future__ import annotations

from datetime import date
from functools import partial

import numpy as np
import pandas as pd
import pytest
from scipy.stats import nbinom, norm, poisson

from pipelines import contract
from pipelines.classify import abc_classes, abc_rank
from pipelines.config import load_config
from pipelines.context import RunContext, policies_frame
from pipelines.frames import lookup_policy
from pipelines.policy import (
    compute_policy,
    demand_pattern,
    discrete_loss,
    health_band,
    normal_loss_inverse,
    policy_stage,
    safety_stock_kernel,
    sales_matrices,
    weekly_stats,
    xyz_class,
)
from tests.factories import items, lead_time_demand_rows, lead_times, policies, sales, stock, write_stage_inputs

RUN = date(2026, 1, 10)
D = pd.Timestamp
Z95 = 1.6448536269514722  # norm.ppf(0.95)

# stock rows: (sku, location, lot, on_hand, in_transit, reserved) on the run date
stock_positions = partial(stock, columns=("sku", "location", "lot", "on_hand", "in_transit", "reserved"), snapshot=RUN)


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
        stock_positions(("A", "S1", "L1", 10, 3, 2), ("A", "S1", "L2", 5, 0, 0)),
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
        stock_positions(("A", "S1", "", 30, 0, 0), ("A", "S2", "", 30, 0, 0)),
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
        stock_positions(("A", "S1", "", 12, 0, 0)),
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
        stock_positions(
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
        stock_positions(),
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
    ctx.write("stock", stock_positions(("A", "S1", "", 10, 0, 0)))
    ctx.write("lead_times", lead_times(("A", "S1", 3.0, 1.0, 7.0)))
    ctx.write("policies", policies_frame(cfg))
    write_stage_inputs(ctx, "policy")
    res = policy_stage(ctx)
    assert res.stage == "policy" and res.counts == {"inventory_policy": 2}
    assert res.paths == {
        "inventory_policy": str(ctx.path("inventory_policy")),
        "policy_detail": str(ctx.path("policy_detail")),
    }
    detail = pd.read_parquet(ctx.path("policy_detail"))
    assert detail["ss_method"].tolist() == ["normal", "zero"] and "xyz_class" in detail.columns
    out = ctx.read("inventory_policy")
    assert set(out["run_id"]) == {"test"} and set(out["run_date"]) == {D(RUN)}
    a = out[out["sku"] == "A"].iloc[0]
    assert a["abc_class"] == "A" and a["service_level"] == 0.98  # only seller: class A row of the defaults
    assert a["available"] == 10.0 and a["days_of_cover"] == pytest.approx(5.0)
    b = out[out["sku"] == "B"].iloc[0]
    assert b["health_band"] == "no_demand" and bool(b["lead_time_defaulted"]) and b["available"] == 0.0
    # the classes and the safety-stock method are published with the policy, as in the detail file
    cols = ["abc_class_network", "abc_class_location", "xyz_class", "demand_pattern", "ss_method"]
    assert out[cols].values.tolist() == detail.sort_values(["sku", "location"])[cols].values.tolist()
    assert b["ss_method"] == "zero" and b["demand_pattern"] == "no_demand"


# -- kernels: classes ---------------------------------------------------------------------------


def test_abc_rank_per_group_hand_computed() -> None:
    # group 0: 60, 30, 10 -> shares before 0, .6, .9 -> A, A, B (cut .8/.95); group 1: 5, 0 -> A, C
    value = np.array([30.0, 60.0, 10.0, 0.0, 5.0])
    group = np.array([0, 0, 0, 1, 1])
    assert abc_rank(value, group, (0.8, 0.95)).tolist() == ["A", "A", "B", "C", "A"]
    # network (total 105): shares before 60 -> 0, 30 -> .571, 10 -> .857, 5 -> .952
    assert abc_rank(value, np.zeros(5, np.int64), (0.5, 0.9)).tolist() == ["B", "A", "B", "C", "C"]


def test_abc_per_location_and_network() -> None:
    it = items(["A", "B"])
    s = sales(("A", "S1", "2026-01-01", 90), ("B", "S1", "2026-01-01", 5), ("B", "S2", "2026-01-01", 5))
    out = run_policy(
        forecasts(("A", "S1", 1.0), ("B", "S1", 1.0), ("B", "S2", 1.0)),
        s,
        it,
        stock_positions(),
        lead_times(),
        policies(("*", "*", 0.95, 10, 60), ("*", "A", 0.99, 10, 60)),
        abc_scope="location",
    ).set_index(["sku", "location"])
    # network: A 90 of 100 -> A; B share before .9 -> B. S2: B is the only seller -> A there
    assert out["abc_class_network"].to_dict() == {("A", "S1"): "A", ("B", "S1"): "B", ("B", "S2"): "B"}
    assert out["abc_class_location"].to_dict() == {("A", "S1"): "A", ("B", "S1"): "B", ("B", "S2"): "A"}
    assert out["abc_class"].to_dict() == out["abc_class_location"].to_dict()
    assert out.loc[("B", "S2"), "service_level"] == 0.99


def test_weekly_stats_xyz_and_pattern_hand_computed() -> None:
    w = np.array(
        [
            [4.0, 4.0, 4.0, 4.0],  # cv 0 -> X, smooth
            [2.0, 6.0, 2.0, 6.0],  # mean 4, sd 2, cv .5 -> X; nonzero cv2 .25 -> smooth
            [0.0, 8.0, 0.0, 0.0],  # mean 2, sd sqrt(12) -> cv 1.73 Z; ADI 4, cv2 0 -> intermittent
            [0.0, 1.0, 0.0, 9.0],  # mean 2.5, var 14.25; ADI 2, sizes 1, 9: mean 5, var 16 -> cv2 .64 lumpy
            [0.0, 0.0, 0.0, 0.0],  # no demand -> Z
        ]
    )
    st = weekly_stats(w)
    assert st["cv"][:4] == pytest.approx([0.0, 0.5, np.sqrt(12) / 2, np.sqrt(14.25) / 2.5])
    assert st["adi"][:4] == pytest.approx([1.0, 1.0, 4.0, 2.0]) and np.isinf(st["adi"][4])
    assert st["cv2"][:4] == pytest.approx([0.0, 0.25, 0.0, 0.64])
    assert xyz_class(st["cv"], (0.5, 1.0)).tolist() == ["X", "X", "Z", "Z", "Z"]
    assert demand_pattern(st["adi"], st["cv2"]).tolist() == ["smooth", "smooth", "intermittent", "lumpy", "no_demand"]
    assert demand_pattern(np.array([1.0]), np.array([0.6])).tolist() == ["erratic"]


def test_sales_matrices_buckets_end_the_day_before_the_run_date() -> None:
    s = sales(
        ("A", "S1", "2025-12-01", 1),  # only sets the history start
        ("A", "S1", "2026-01-09", 2),  # yesterday: last day, last week
        ("A", "S1", "2026-01-03", 3),  # 7 days before the run date: last week
        ("A", "S1", "2026-01-02", 5),  # 8 days before: previous week
        ("A", "S1", "2026-01-10", 99),  # the run date itself: not history
    )
    keys = pd.DataFrame({"sku": ["A", "B"], "location": ["S1", "S1"]})
    daily, weekly = sales_matrices(s, keys, RUN, std_days=8, xyz_weeks=3)
    assert daily[0].tolist() == [5, 3, 0, 0, 0, 0, 0, 2] and daily[1].sum() == 0
    assert weekly[0].tolist() == [0, 5, 5]


# -- kernels: safety stock ----------------------------------------------------------------------


def kernel(**kw):
    n = len(np.atleast_1d(kw["mu"]))
    base = {
        "sd": np.zeros(n),
        "lead": np.full(n, 4.0),
        "lead_sd": np.zeros(n),
        "review": np.full(n, 5.0),
        "csl": np.full(n, 0.95),
        "fill_rate": np.full(n, np.nan),
        "discrete": np.zeros(n, bool),
        "ss_min_days": np.zeros(n),
        "ss_max_days": np.full(n, np.nan),
    }
    base.update({k: np.atleast_1d(np.asarray(v, dtype=float if k != "discrete" else bool)) for k, v in kw.items()})
    return safety_stock_kernel(**base)


def test_normal_safety_stock_both_variances() -> None:
    # L + R = 9, sigma_d^2 = 4/3, mu = 2, sigma_L = 1: V = 12 + 4 = 16 -> SS = 4 z
    k = kernel(mu=2.0, sd=np.sqrt(4 / 3), lead_sd=1.0)
    assert k["safety_stock"][0] == pytest.approx(4 * Z95)
    assert (k["lt_mean"][0], k["lt_std"][0], k["ss_method"][0]) == (18.0, 4.0, "normal")


def test_fill_rate_target_normal_loss() -> None:
    # sigma_X = 4, target short per cycle (1 - .99) * 2 * 5 = 0.1 -> G(z) = 0.025 -> z = 1.5689
    # (tables: G(1.55) = .0276, G(1.60) = .0232)
    k = kernel(mu=2.0, sd=np.sqrt(4 / 3), lead_sd=1.0, csl=0.6, fill_rate=0.99)
    z = k["safety_stock"][0] / 4.0
    assert norm.pdf(z) - z * norm.sf(z) == pytest.approx(0.025, rel=1e-4)
    assert z == pytest.approx(1.5689, abs=1e-3)
    # a CSL that needs more than the fill rate wins
    k2 = kernel(mu=2.0, sd=np.sqrt(4 / 3), lead_sd=1.0, csl=0.999, fill_rate=0.9)
    assert k2["safety_stock"][0] == pytest.approx(4 * norm.ppf(0.999))
    assert normal_loss_inverse(np.array([norm.pdf(0.0)]))[0] == pytest.approx(0.0, abs=1e-3)


def test_intermittent_negative_binomial_and_poisson() -> None:
    # mu = 0.5/day over 9 days: m = 4.5; sd^2 = 2/day -> V = 18 > m: negbin n = 4.5^2/13.5 = 1.5, p = .25
    k = kernel(mu=[0.5, 0.5], sd=[np.sqrt(2.0), 0.5], discrete=[True, True], csl=[0.9, 0.9])
    s_nb = nbinom.ppf(0.9, 1.5, 0.25)
    assert k["ss_method"].tolist() == ["negbin", "poisson"]
    assert k["safety_stock"][0] == pytest.approx(s_nb - 4.5)
    # second: V = 9 * .25 = 2.25 < m = 4.5 -> Poisson(4.5), 90% quantile 7
    assert poisson.ppf(0.9, 4.5) == 7 and k["safety_stock"][1] == pytest.approx(7 - 4.5)


def test_discrete_fill_rate_expected_shortage() -> None:
    k = kernel(mu=[0.5, 0.5], sd=[np.sqrt(2.0), 0.5], discrete=[True, True], csl=[0.6, 0.6], fill_rate=[0.95, 0.95])
    target = 0.05 * 0.5 * 5.0
    for i, (n, p, nb) in enumerate([(1.5, 0.25, True), (1.0, 0.5, False)]):
        s = k["safety_stock"][i] + 4.5  # order-up-to level
        args = (np.array([4.5]), np.array([n]), np.array([p]), np.array([nb]))
        assert s == round(s)
        assert discrete_loss(np.array([s]), *args)[0] <= target < discrete_loss(np.array([s - 1]), *args)[0]


def test_discrete_loss_brute_force() -> None:
    x = np.arange(0, 400)
    for s in (0, 3, 9):
        pois = (np.clip(x - s, 0, None) * poisson.pmf(x, 4.5)).sum()
        nb = (np.clip(x - s, 0, None) * nbinom.pmf(x, 1.5, 0.25)).sum()
        got = discrete_loss(
            np.array([s, s]), np.array([4.5, 4.5]), np.array([1.0, 1.5]), np.array([0.5, 0.25]), np.array([False, True])
        )
        assert got == pytest.approx([pois, nb], rel=1e-9)


def test_caps_in_days_of_demand_and_zero_demand() -> None:
    k = kernel(
        mu=[2.0, 2.0, 0.0],
        sd=[np.sqrt(4 / 3)] * 3,
        lead_sd=[1.0] * 3,
        ss_min_days=[0.0, 5.0, 5.0],
        ss_max_days=[2.0, np.nan, np.nan],
    )
    # uncapped 4 z = 6.58: max 2 days x 2 = 4; min 5 days x 2 = 10; zero demand -> 0
    assert k["safety_stock"].tolist() == pytest.approx([4.0, 10.0, 0.0])
    assert k["ss_capped"].tolist() == [True, True, False]
    assert k["ss_method"][2] == "zero"


def test_health_band_edges() -> None:
    cover = np.array([4.9, 5.0, 60.0, 60.1, np.nan])
    has = np.array([True, True, True, True, False])
    assert health_band(cover, has, np.full(5, 5.0), np.full(5, 60.0)).tolist() == [
        "under",
        "healthy",
        "healthy",
        "over",
        "no_demand",
    ]


def test_intermittent_series_through_compute_policy() -> None:
    # 26 weeks, a sale of 7 units every 4th week -> ADI 26/7 = 3.7, CV^2 0: intermittent
    days = [D(RUN) - pd.Timedelta(days=7 * w + 1) for w in range(0, 26, 4)]
    s = sales(*[("A", "S1", d.strftime("%Y-%m-%d"), 7) for d in days], ("Z", "S9", "2025-01-01", 1))
    out = run_policy(
        forecasts(("A", "S1", 0.25)),
        s,
        items(["A", "Z"]),
        stock_positions(("A", "S1", "", 3, 0, 0)),
        lead_times(("A", "S1", 14.0, 0.0, 7.0)),
        policies(("*", "*", 0.9, 10, 60)),
    )
    r = out[out["sku"] == "A"].iloc[0]
    assert r["demand_pattern"] == "intermittent" and r["xyz_class"] == "Z"
    # daily std over 56 days: two sales of 7 -> var = (98 - 56 * .0625 ... ) computed as numpy does
    sd = np.r_[np.zeros(54), 7.0, 7.0].std(ddof=1)
    m, v = 0.25 * 21, 21 * sd**2
    n, p = m**2 / (v - m), m / v
    assert r["ss_method"] == "negbin"
    assert r["safety_stock"] == pytest.approx(nbinom.ppf(0.9, n, p) - m)
    assert r["order_up_to"] == pytest.approx(nbinom.ppf(0.9, n, p))
    assert "intermittent demand" in r["explanation_en"] and "negative binomial" in r["explanation_en"]
    assert "间歇" in r["explanation_zh"] and "负二项" in r["explanation_zh"]


def test_special_category_uses_discrete_distribution() -> None:
    s = sales(*[("A", "S1", (D(RUN) - pd.Timedelta(days=i + 1)).strftime("%Y-%m-%d"), 1) for i in range(60)])
    kw = dict(std_days=56)
    base = run_policy(
        forecasts(("A", "S1", 1.0)),
        s,
        items(["A"]),
        stock_positions(),
        lead_times(),
        policies(("*", "*", 0.95, 10, 60)),
        **kw,
    )
    special = run_policy(
        forecasts(("A", "S1", 1.0)),
        s,
        items(["A"]),
        stock_positions(),
        lead_times(),
        policies(("*", "*", 0.95, 10, 60)),
        special_categories=["c1"],
        **kw,
    )
    assert base["demand_pattern"].iloc[0] == "smooth" and base["ss_method"].iloc[0] == "normal"
    # sd 0, lead-time sd 2: V = 4 * 1 > m = 14 ? no: V = 4 < 14 -> Poisson(14)
    assert special["ss_method"].iloc[0] == "poisson"
    assert special["order_up_to"].iloc[0] == poisson.ppf(0.95, 14.0)


def test_fill_rate_and_caps_from_policy_rows() -> None:
    pol = policies(("*", "*", 0.95, 10, 60)).assign(safety_stock_max_days=1.0)
    out = run_policy(
        forecasts(("A", "S1", 2.0)),
        sales(("A", "S1", "2026-01-09", 2)),
        items(["A"]),
        stock_positions(),
        lead_times(("A", "S1", 4.0, 1.0, 5.0)),
        pol,
    )
    r = out.iloc[0]
    assert r["safety_stock"] == pytest.approx(2.0) and bool(r["ss_capped"])
    assert "capped by the policy's days of cover" in r["explanation_en"]


# -- optimised method (issue 18): the least-stock-value plan per ABC class ------------------------


def _optimised_case(tmp_path, name: str, **policy: object) -> RunContext:
    """A tiny staging folder: four selling series of different sizes and patterns (A/B/C classes by
    value) and one without demand, with the forecast stage's lead_time_demand."""
    cfg = load_config(
        overrides={
            "staging_dir": str(tmp_path / name / "s"),
            "output_dir": str(tmp_path / name / "o"),
            "policy": policy,
        }
    )
    ctx = RunContext(cfg, RUN)
    rows = []
    days = pd.date_range(D(RUN) - pd.Timedelta(days=84), periods=84, freq="D")
    for i, day in enumerate(days):
        rows.append(("A", "S1", day.date().isoformat(), 8 + (i % 3)))  # smooth, most value
        if i % 2 == 0:
            rows.append(("B", "S1", day.date().isoformat(), 3 + (i % 4)))
        if i % 9 == 0:
            rows.append(("C", "S1", day.date().isoformat(), 1 + (i % 5)))  # intermittent
        if i % 20 == 0:
            rows.append(("D", "S1", day.date().isoformat(), 6))  # lumpy, rare
    ctx.write(
        "forecasts",
        forecasts(("A", "S1", 9.0), ("B", "S1", 2.2), ("C", "S1", 0.35), ("D", "S1", 0.3), ("E", "S1", 0.0)),
    )
    ctx.write("sales", sales(*rows))
    ctx.write("items", items(["A", "B", "C", "D", "E"], unit_cost=[5.0, 4.0, 3.0, 20.0, 2.0]))
    ctx.write("stock", stock_positions(("A", "S1", "", 60, 0, 0), ("B", "S1", "", 12, 2, 0), ("C", "S1", "", 4, 0, 1)))
    ctx.write(
        "lead_times", lead_times(("A", "S1", 5.0, 1.0, 7.0), ("B", "S1", 5.0, 1.0, 7.0), ("C", "S1", 10.0, 2.0, 7.0))
    )
    ctx.write("policies", policies_frame(cfg))
    ltd = lead_time_demand_rows(
        ("A", "S1", 5, 45.0, 1.3), ("B", "S1", 5, 11.0, 2.0), ("C", "S1", 10, 3.5, 2.5), ("D", "S1", 7, 2.1, 4.0),
        ("E", "S1", 7, 0.0, 1.0), run_date=RUN,
    )  # fmt: skip
    ctx.write("lead_time_demand", ltd)
    write_stage_inputs(ctx, "policy")
    return ctx


def test_optimised_method_takes_the_optimisers_plan(tmp_path) -> None:
    from pipelines import replenishment, stages

    base = _optimised_case(tmp_path, "base")
    policy_stage(base)
    assert "lead_time_demand" not in base.accessed  # the default method does not read it
    before = base.read("policy_detail")
    assert "policy_method" not in before.columns

    ctx = _optimised_case(tmp_path, "opt", method="optimised")
    res = policy_stage(ctx)
    declared = stages.BY_NAME["policy"]
    assert ctx.accessed <= set(declared.all_reads) | set(declared.all_writes)  # the runner's contract check
    assert "lead_time_demand" in ctx.accessed and not ctx.exists("policy_curve.json")  # not declared: not written
    after = ctx.read("policy_detail")
    pub = ctx.read("inventory_policy").set_index("sku")
    # what the optimiser says for the same frame, groups = ABC classes, targets = the classes' policy
    # rows (the defaults set no fill rate: their service levels 0.98 / 0.95 / 0.90)
    inputs, _ = replenishment.optimiser_inputs(before, ctx.read("lead_time_demand"), None)
    inputs["group"] = before["abc_class"].to_numpy()
    targets = {"A": 0.98, "B": 0.95, "C": 0.90}
    assert set(before["abc_class"]) <= set(targets)
    want, _ = replenishment.optimise_policy(inputs, {c: targets[c] for c in set(before["abc_class"])}, group="group")
    want = want.set_index("sku")
    selling = ["A", "B", "C", "D"]
    got = after.set_index("sku")
    np.testing.assert_allclose(got.loc[selling, "reorder_point"], want.loc[selling, "reorder_point"])
    np.testing.assert_allclose(got.loc[selling, "order_up_to"], want.loc[selling, "order_up_to"])
    np.testing.assert_allclose(pub.loc[selling, "reorder_point"], want.loc[selling, "reorder_point"])
    assert (got.loc[selling, "reorder_point"] != before.set_index("sku").loc[selling, "reorder_point"]).any()
    # safety stock = reorder point - demand over the lead time, never negative
    mu_l = got["demand_mean"] * got["lead_time_days"]
    np.testing.assert_allclose(got["safety_stock"], np.clip(got["reorder_point"] - mu_l, 0.0, None))
    np.testing.assert_allclose(pub["safety_stock"], got["safety_stock"])
    # every class reaches its fill-rate target in the model (units served, weighted by demand)
    sel = got.loc[selling]
    for cls, g in sel.groupby("abc_class"):
        served = (g["model_fill_rate"] * g["demand_mean"]).sum() / g["demand_mean"].sum()
        assert served >= targets[cls] - 1e-9 and bool(g["opt_group_reached"].all())
    # no demand: nothing to protect, as before
    e_before, e_after = before.set_index("sku").loc["E"], got.loc["E"]
    assert e_after["reorder_point"] == e_before["reorder_point"] == 0.0 and e_after["ss_method"] == "zero"
    # the explanation names the method in both languages, the default one does not
    a = got.loc["A"]
    assert "least-stock-value plan for a 98% fill rate" in a["explanation_en"]
    assert "库存金额最小方案" in a["explanation_zh"] and "满足率 98%" in a["explanation_zh"]
    assert "least-stock-value" not in got.loc["E", "explanation_en"]
    assert not before["explanation_en"].str.contains("least-stock-value").any()
    assert not before["explanation_zh"].str.contains("库存金额最小").any()
    assert any(n.startswith("optimised (fill_rate): A target 0.980") for n in res.notes)


def test_service_level_method_is_todays_policy(tmp_path) -> None:
    default = _optimised_case(tmp_path, "default")
    explicit = _optimised_case(tmp_path, "explicit", method="service_level", optimiser_target=0.5)
    r1, r2 = policy_stage(default), policy_stage(explicit)
    assert r1.notes == r2.notes
    pd.testing.assert_frame_equal(default.read("policy_detail"), explicit.read("policy_detail"))
    pd.testing.assert_frame_equal(
        default.read("inventory_policy").drop(columns="run_id"),
        explicit.read("inventory_policy").drop(columns="run_id"),
    )


def test_optimised_per_class_target_cycle_service_and_curve(tmp_path, monkeypatch) -> None:
    import dataclasses
    import json

    from pipelines import stages

    declared = dataclasses.replace(stages.POLICY, writes=(*stages.POLICY.writes, "?policy_curve.json"))
    monkeypatch.setitem(stages.BY_NAME, "policy", declared)
    target = {"A": 0.97, "B": 0.9, "C": 0.8}
    ctx = _optimised_case(
        tmp_path, "cs", method="optimised", optimiser_measure="cycle_service", optimiser_target=target
    )
    policy_stage(ctx)
    got = ctx.read("policy_detail").set_index("sku")
    sel = got[got["demand_mean"] > 0]
    for cls, g in sel.groupby("abc_class"):
        assert g["opt_target"].eq(target[cls]).all()
        assert g["model_cycle_service"].mean() >= target[cls] - 1e-9  # every item with demand counts once
    assert "cycle service level" in sel["explanation_en"].iloc[0] and "周期服务水平" in sel["explanation_zh"].iloc[0]
    doc = json.loads(ctx.path("policy_curve.json").read_text(encoding="utf-8"))
    assert doc["measure"] == "cycle_service"
    groups = {g["group"]: g for g in doc["groups"]}
    assert set(groups) == set(sel["abc_class"])
    for cls, g in groups.items():
        assert g["target"] == target[cls] and g["reached"]
        values = [p["stock_value"] for p in g["points"]]
        service = [p["service"] for p in g["points"]]
        assert values == sorted(values) and service == sorted(service) and len(values) >= 2


def test_optimised_policy_respects_the_item_masters_moq() -> None:
    from pipelines.policy import optimised_policy

    rows = [(d.date().isoformat(), 4) for d in pd.date_range(D(RUN) - pd.Timedelta(days=56), periods=56)]
    fr = run_policy(
        forecasts(("A", "S1", 4.0)),
        sales(*[("A", "S1", d, q) for d, q in rows]),
        items(["A"]),
        stock_positions(("A", "S1", "", 10, 0, 0)),
        lead_times(("A", "S1", 3.0, 1.0, 7.0)),
        policies(),
    )
    plain, _ = optimised_policy(fr, None, items(["A"]))
    packed, _ = optimised_policy(fr, None, items(["A"]).assign(moq=50.0, order_multiple=24.0))
    assert plain["order_quantity"].iloc[0] < 50
    q = packed["order_quantity"].iloc[0]
    assert q >= 50 and q % 24 == 0  # at least the MOQ, a whole number of multiples
    assert packed["order_up_to"].iloc[0] == packed["reorder_point"].iloc[0] + q
