"""Money-optimising replenishment (issue 18): loss tables, (s, Q) option grid, efficient frontier,
marginal allocation over a group and the trade-off curve, on hand-made arrays."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.stats import nbinom, norm, poisson

from pipelines.replenishment import (
    _discrete_tables,
    _normal_g2,
    allocate,
    allowed_quantity,
    optimise_cost,
    optimise_policy,
    optimiser_inputs,
    option_grid,
    protection_demand,
    purchase_proposals,
    round_order,
    tradeoff_curve,
    undershoot_moments,
    upper_hull,
)


def _brute_loss(dist, y: np.ndarray, top: int = 4000) -> np.ndarray:
    k = np.arange(top + 1)
    f = dist.pmf(k)
    return np.array([(np.clip(k - yy, 0, None) * f).sum() for yy in y])


def test_discrete_tables_match_the_loss_of_scipy_distributions():
    m = np.array([0.7, 3.0, 12.0])
    v = np.array([0.7, 9.0, 60.0])  # Poisson, then two negative binomials
    g, h = _discrete_tables(m, v, 80, np.ones(3))
    y = np.arange(81)
    dists = [poisson(0.7)] + [nbinom(mm**2 / (vv - mm), mm / vv) for mm, vv in zip(m[1:], v[1:], strict=True)]
    for i, d in enumerate(dists):
        np.testing.assert_allclose(g[i], _brute_loss(d, y), atol=1e-9)
        np.testing.assert_allclose(h[i], np.cumsum(_brute_loss(d, y)), atol=1e-7)
    assert g[:, 0] == pytest.approx(m)  # G(0) = E[X]


def test_discrete_tables_on_a_coarse_lattice_stay_close():
    m, v = np.array([40.0]), np.array([400.0])
    fine, _ = _discrete_tables(m, v, 400, np.ones(1))
    coarse, _ = _discrete_tables(m, v, 100, np.array([4.0]))
    np.testing.assert_allclose(coarse[0], fine[0, ::4][:101], atol=1e-9)


def test_second_order_normal_loss_is_the_integral_of_the_loss():
    for z in (-2.0, 0.0, 0.7, 3.0):
        num, _ = integrate.quad(lambda t: norm.pdf(t) - t * norm.sf(t), z, 40)
        assert _normal_g2(np.array(z)) == pytest.approx(num, rel=1e-7)


def test_protection_demand_adds_the_review_period_and_lead_time_spread():
    m, v = protection_demand(
        np.array([10.0, 0.0]), np.array([3.0, np.nan]), np.array([0.5, 0.0]), np.array([7.0, 7.0]), 2.0
    )
    assert m.tolist() == [13.5, 0.0]
    assert v[0] == pytest.approx(3.0 * 13.5 + 0.25 * 4.0)
    assert v[1] == 0.0


def test_allowed_quantities_respect_moq_and_multiple():
    qmin, mult = allowed_quantity(np.array([10, 1, np.nan, 7]), np.array([4, 1, 1, np.nan]))
    assert qmin.tolist() == [12.0, 1.0, 1.0, 7.0]
    assert mult.tolist() == [4.0, 1.0, 1.0, 1.0]
    assert round_order(np.array([0.0, 3.0, 13.0, 25.0]), np.full(4, 10.0), np.full(4, 4.0)).tolist() == [
        0.0,
        12.0,
        16.0,
        28.0,
    ]


def test_option_grid_poisson_closed_forms():
    """s = 0, Q = 1: fill = P(X = 0); stock = P(X = 0) (on hand 1 until the first demand of the
    protection interval); and every Q is at least the MOQ on the multiple."""
    m = np.array([0.5, 2.0])
    opts = option_grid(m, m.copy(), np.array([True, True]), np.array([1.0, 1.0]), np.array([1.0, 1.0]), n_s=5, n_q=3)
    first = (opts.s == 0) & (opts.q == 1)
    assert first.sum() == 2
    np.testing.assert_allclose(opts.fill[first], np.exp(-m), rtol=1e-9)
    np.testing.assert_allclose(opts.stock[first], poisson.pmf(0, m), rtol=1e-9)
    mo = option_grid(m, m.copy(), np.array([True, True]), np.array([10.0, 3.0]), np.array([4.0, 1.0]), n_s=4, n_q=5)
    assert (mo.q[0] >= 12).all() and (mo.q[0] % 4 == 0).all()
    assert (mo.q[1] >= 3).all()


def test_option_grid_matches_a_simulated_base_stock_with_unit_orders():
    """Q = 1 and Poisson demand: on hand = (S - X)^+ with X the demand over the protection
    interval, the exact (S - 1, S) system; the grid's stock and fill agree with a simulation."""
    rng = np.random.default_rng(3)
    m = np.array([1.5])
    opts = option_grid(m, m.copy(), np.array([True]), np.ones(1), np.ones(1), n_s=12, n_q=2)
    pick = (opts.q[0] == 1) & (opts.s[0] == 2)
    x = rng.poisson(1.5, 400_000)
    s_up = 3  # order-up-to S = s + Q
    assert opts.stock[0, pick][0] == pytest.approx(np.clip(s_up - x, 0, None).mean(), abs=0.01)
    # fill: units demanded at a time with positive stock (unit demands: P(X < S))
    assert opts.fill[0, pick][0] == pytest.approx((x < s_up).mean(), abs=0.01)


def test_option_grid_normal_items_are_continuous_and_monotone():
    m, v = np.array([500.0]), np.array([2500.0])
    opts = option_grid(m, v, np.array([False]), np.ones(1), np.ones(1), n_s=30, n_q=4)
    fill = opts.fill.reshape(30, 4)
    stock = opts.stock.reshape(30, 4)
    assert (np.diff(fill, axis=0) >= -1e-9).all() and (np.diff(stock, axis=0) >= -1e-6).all()
    assert stock[-1, 0] > stock[0, 0] + 100
    # far above the mean: fill 1 and stock = s + Q/2 - m
    assert fill[-1, 0] == pytest.approx(1.0)
    assert stock[-1, 0] == pytest.approx(opts.s[0, -4] + opts.q[0, -4] / 2 - 500.0, rel=1e-6)


def test_upper_hull_keeps_the_efficient_concave_frontier():
    cost = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 2.0], [5.0, 1.0, 1.0, 3.0, 9.0, 2.0]])
    ben = np.array([[0.0, 5.0, 6.0, 9.0, 10.0, 1.0], [1.0, 2.0, 3.0, 3.0, 4.0, 3.5]])
    vert, cnt = upper_hull(cost, ben)
    # row 0: (0,0) (1,5) (3,9) (4,10); (2,6) lies under the chord (1,5)-(3,9); (2,1) dominated
    assert vert[0, : cnt[0]].tolist() == [0, 1, 3, 4]
    # row 1: cheapest best (1,3), then (2,3.5), then (9,4); (5,1) and (3,3) dominated
    assert vert[1, : cnt[1]].tolist() == [2, 5, 4]


def _brute_min_cost(cost, ben, weight, target):
    best = np.inf
    for combo in itertools.product(*[range(cost.shape[1])] * cost.shape[0]):
        b = sum(ben[i, j] for i, j in enumerate(combo))
        if b >= target * weight.sum() - 1e-12:
            best = min(best, sum(cost[i, j] for i, j in enumerate(combo)))
    return best


def test_allocate_meets_the_target_near_the_brute_force_optimum():
    rng = np.random.default_rng(7)
    for _ in range(20):
        n, k = 3, 5
        cost = np.sort(rng.uniform(0, 10, (n, k)), axis=1)
        serv = np.sort(rng.uniform(0, 1, (n, k)), axis=1)
        serv[:, -1] = 1.0
        weight = rng.uniform(0.5, 2, n)
        ben = serv * weight[:, None]
        target = 0.8
        res = allocate(cost, ben, weight, np.zeros(n, np.int64), target)
        got_b = ben[np.arange(n), res.choice].sum()
        got_c = cost[np.arange(n), res.choice].sum()
        assert res.reached[0] and got_b >= target * weight.sum() - 1e-9
        opt = _brute_min_cost(cost, ben, weight, target)
        # the greedy on the frontier is optimal up to the last step it takes
        last = res.steps.loc[res.steps["service"] >= target - 1e-12, "delta_value"]
        slack = last.iloc[0] if len(last) else 0.0
        assert got_c <= opt + slack + 1e-9
        assert got_c >= opt - 1e-9


def test_allocate_groups_are_independent_and_unreachable_targets_flagged():
    cost = np.array([[0.0, 1.0, 3.0]] * 4)
    ben = np.array([[0.0, 0.5, 0.9]] * 4)
    w = np.ones(4)
    res = allocate(cost, ben, w, np.array([0, 0, 1, 1]), np.array([0.5, 0.95]))
    assert res.group_service[0] == pytest.approx(0.5)
    assert res.group_value[0] == pytest.approx(2.0)  # both items at the middle option
    assert not res.reached[1] and res.group_service[1] == pytest.approx(0.9)


def _items(n: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rate = rng.lognormal(-1.5, 1.2, n)
    m = rate * 30
    return pd.DataFrame(
        {
            "rate": rate,
            "ltd_mean": m,
            "ltd_var": m * rng.uniform(1, 6, n),
            "discrete": rng.random(n) < 0.8,
            "unit_cost": rng.lognormal(2, 1.2, n),
            "moq": rng.choice([1, 5, 10], n),
            "order_multiple": rng.choice([1, 5], n),
            "family": rng.choice(["pumps", "seals"], n),
        }
    )


def test_optimise_policy_reaches_the_target_and_costs_more_for_more_service():
    items = _items()
    values = []
    for target in (0.85, 0.92, 0.97):
        rows, curve = optimise_policy(items, target)
        summary = curve.attrs["summary"]
        fill = (rows["rate"] * rows["model_fill_rate"]).sum() / rows["rate"].sum()
        assert fill >= target - 1e-9 and summary["reached"].all()
        assert fill == pytest.approx(summary["model_service"].iloc[0])
        assert rows["expected_stock_value"].sum() == pytest.approx(summary["stock_value"].iloc[0])
        q_ok = (rows["order_quantity"] >= rows["moq"]) & (rows["order_quantity"] % rows["order_multiple"] == 0)
        assert q_ok.all()
        assert (rows["order_up_to"] == rows["reorder_point"] + rows["order_quantity"]).all()
        values.append(summary["stock_value"].iloc[0])
    assert values[0] < values[1] < values[2]


def test_optimise_policy_beats_one_service_level_for_every_item():
    """Same group fill rate, less value than giving every item the same fill rate (the point of
    marginal analysis): each item at its cheapest option with model fill >= the target."""
    items = _items(300, seed=5)
    rows, _ = optimise_policy(items, 0.95)
    opts = option_grid(
        items["ltd_mean"].to_numpy(), items["ltd_var"].to_numpy(), items["discrete"].to_numpy(),
        items["moq"].to_numpy(float), items["order_multiple"].to_numpy(float),
    )  # fmt: skip
    value = opts.stock * items["unit_cost"].to_numpy()[:, None]
    uniform = np.where(opts.fill >= 0.95, value, np.inf).min(axis=1).sum()
    assert rows["expected_stock_value"].sum() < 0.9 * uniform


def test_optimise_policy_cycle_service_and_groups():
    items = _items(300, seed=2)
    rows, curve = optimise_policy(items, {"pumps": 0.9, "seals": 0.97}, measure="cycle_service", group="family")
    for fam, t in (("pumps", 0.9), ("seals", 0.97)):
        sub = rows[rows["family"] == fam]
        assert sub["model_cycle_service"].mean() >= t - 1e-9
        c = curve[curve["group"] == fam]
        assert c["point"].tolist() == list(range(len(c)))
        assert (np.diff(c["stock_value"]) >= 0).all() and (np.diff(c["service"]) >= -1e-12).all()
        assert c["value_per_point"].iloc[1:].is_monotonic_increasing
    with pytest.raises(ValueError, match="no service target"):
        optimise_policy(items, {"pumps": 0.9}, group="family")
    with pytest.raises(ValueError, match="measure"):
        optimise_policy(items, 0.9, measure="profit")
    with pytest.raises(ValueError, match="ltd_var: 1 item"):
        optimise_policy(items.assign(ltd_var=lambda d: d["ltd_var"].where(d.index != 3)), 0.9)
    with pytest.raises(ValueError, match="without a group"):
        optimise_policy(items.assign(family=lambda d: d["family"].where(d.index > 0)), 0.9, group="family")


def test_items_without_demand_take_their_cheapest_option():
    items = _items(50).assign(rate=lambda d: np.where(np.arange(50) < 5, 0.0, d["rate"]))
    items.loc[:4, "ltd_mean"] = 0.0
    rows, _ = optimise_policy(items, 0.9)
    zero = rows.iloc[:5]
    assert (zero["distribution"] == "no_demand").all()
    assert (zero["reorder_point"] == 0).all()
    qmin, _ = allowed_quantity(zero["moq"].to_numpy(float), zero["order_multiple"].to_numpy(float))
    assert (zero["order_quantity"].to_numpy() == qmin).all()


def test_tradeoff_curve_spans_from_the_cheapest_to_the_best():
    items = _items(200, seed=9)
    opts = option_grid(
        items["ltd_mean"].to_numpy(), items["ltd_var"].to_numpy(), items["discrete"].to_numpy(),
        np.ones(200), np.ones(200),
    )  # fmt: skip
    w = items["rate"].to_numpy()
    res = allocate(
        opts.stock * items["unit_cost"].to_numpy()[:, None], opts.fill * w[:, None], w, np.zeros(200, np.int64), 0.9
    )
    curve = tradeoff_curve(res, np.array(["all"], object), points=21)
    assert len(curve) <= 22 and curve["point"].iloc[0] == 0  # start, 20 levels, the last step
    assert curve["service"].iloc[0] == pytest.approx(res.start_service[0])
    assert curve["service"].iloc[-1] == pytest.approx(res.steps["service"].iloc[-1])
    assert curve["stock_value"].iloc[-1] == pytest.approx(res.steps["value"].iloc[-1])


def test_undershoot_moments_match_a_simulated_renewal():
    """Position falls by one period's negative binomial demand until at or below s: the mean and
    variance of how far below s it lands agree with the renewal formulas."""
    rng = np.random.default_rng(11)
    mu, var = 2.0, 10.0
    n, p = mu**2 / (var - mu), mu / var
    pos = rng.integers(200, 260, 60_000).astype(float)  # start far above s = 0, spread over phases
    under = np.full(pos.shape, np.nan)
    while np.isnan(under).any():
        live = np.isnan(under)
        pos[live] -= rng.negative_binomial(n, p, live.sum())
        hit = live & (pos <= 0)
        under[hit] = -pos[hit]
    eu, vu = undershoot_moments(np.array([mu, 0.3, 0.0]), np.array([var, 0.3, 0.0]))
    assert eu[0] == pytest.approx(under.mean(), rel=0.03)
    assert vu[0] == pytest.approx(under.var(), rel=0.06)
    assert eu[1] == pytest.approx(0.15)  # Poisson: mu / 2
    assert eu[2] == 0.0 and vu[2] == 0.0


def test_undershoot_lowers_the_model_fill_of_the_same_option():
    m = np.array([6.0])
    plain = option_grid(m, 3 * m, np.array([True]), np.ones(1), np.ones(1), n_s=40, n_q=12)
    eu, vu = undershoot_moments(np.array([2.0]), np.array([6.0]))
    shifted = option_grid(m, 3 * m, np.array([True]), np.ones(1), np.ones(1), n_s=40, n_q=12, undershoot=(eu, vu))
    same = (plain.s[0][:, None] == shifted.s[0][None, :]) & (plain.q[0][:, None] == shifted.q[0][None, :])
    i, j = np.nonzero(same)
    assert len(i) > 10
    assert (shifted.fill[0, j] <= plain.fill[0, i] + 1e-9).mean() > 0.9


def _positions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sku": ["A", "B", "C", "D", "E"],
            "location": ["W1", "W1", "W2", "W1", "W1"],
            "demand_mean": [2.0, 1.0, 0.5, 0.0, 4.0],
            "reorder_point": [10.0, 10.0, 4.0, 2.0, 30.0],
            "order_up_to": [30.0, 25.0, 12.0, 6.0, 60.0],
            "on_hand": [8.0, 30.0, 9.0, 5.0, 20.0],
            "in_transit": [0.0, 0.0, 0.0, 0.0, 0.0],
            "reserved": [1.0, 0.0, 0.0, 0.0, 0.0],
            "review_period_days": [7.0, 7.0, 7.0, 7.0, 7.0],
            "lead_time_days": [5.0, 5.0, 5.0, 5.0, 5.0],
        }
    )


def _sourcing() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sku": ["A", "C", "C", "E"],
            "location": [None, None, "W2", "W1"],
            "supplier": ["Acme", "Bolt-any", "Bolt-W2", "Seal"],
            "lead_time_days": [10.0, 3.0, 4.5, 20.0],
            "moq": [25.0, 1.0, 1.0, 50.0],
            "order_multiple": [5.0, 1.0, 1.0, 10.0],
            "unit_cost": [2.0, 3.0, 3.0, 1.5],
            "fixed_order_cost": [10.0, 0.0, 0.0, 5.0],
        }
    )


def test_purchase_proposals_quantity_dates_cost_and_reasons():
    opened = pd.DataFrame({"sku": ["E"], "location": ["W1"], "quantity": [8.0]})
    out = purchase_proposals(_positions(), _sourcing(), "2026-03-01", opened).set_index("sku")
    # B (30 -> 10 in 20 days), C (9 -> 4 in 10 days) and D (no demand, above s) are not due
    assert sorted(out.index) == ["A", "E"]
    a = out.loc["A"]  # position 7 <= 10: order now, 30 - 7 = 23 -> MOQ 25 (multiple of 5)
    assert a["inventory_position"] == 7 and a["quantity"] == 25
    assert a["order_by"] == pd.Timestamp("2026-03-01") and a["expected_receipt"] == pd.Timestamp("2026-03-11")
    assert a["cost"] == pytest.approx(25 * 2.0 + 10.0) and a["supplier"] == "Acme"
    assert a["runs_out_before_receipt"]  # 7 - 2 x 10 < 0
    assert "MOQ 25" in a["explanation_en"] and "最小订购量 25" in a["explanation_zh"]
    e = out.loc["E"]  # position 20 + 8 on order = 28 <= 30: 60 - 28 = 32 -> 50 (MOQ, multiple 10)
    assert e["on_order"] == 8 and e["inventory_position"] == 28 and e["quantity"] == 50
    assert e["expected_receipt"] == pd.Timestamp("2026-03-21")
    for col in ("explanation_en", "explanation_zh"):
        assert out[col].str.len().min() > 40
    assert "Seal" in e["explanation_en"] and "Seal" in e["explanation_zh"] and "到货" in e["explanation_zh"]


def test_purchase_proposals_order_by_is_the_day_the_position_reaches_the_reorder_point():
    pos = _positions().iloc[[2]].assign(on_hand=6.0)  # C: 6 -> 4 at 0.5/day in 4 days
    out = purchase_proposals(pos, _sourcing(), "2026-03-01")
    row = out.iloc[0]
    assert row["order_by"] == pd.Timestamp("2026-03-05")
    assert row["supplier"] == "Bolt-W2" and row["lead_time_days"] == 5  # the location's row, 4.5 -> 5
    assert row["quantity"] == 8  # up to 12 from the projected 4
    assert not row["runs_out_before_receipt"]
    assert "will" not in row["explanation_en"] and "reaches within the review period" in row["explanation_en"]
    assert "检查周期内" in row["explanation_zh"]


def test_purchase_proposals_without_sourcing_or_anything_due():
    pos = _positions().iloc[[1, 3]]
    assert purchase_proposals(pos, _sourcing(), "2026-03-01").empty
    lone = _positions().iloc[[0]].assign(sku="Z")
    out = purchase_proposals(lone, _sourcing(), "2026-03-01")
    assert out["supplier"].isna().all() and out["quantity"].iloc[0] == 23 and out["lead_time_days"].iloc[0] == 5
    assert "none recorded" in out["explanation_en"].iloc[0] and "未记录" in out["explanation_zh"].iloc[0]


def test_optimise_cost_balances_holding_ordering_and_lost_sales():
    """Deterministic-ish demand (Poisson, mean 20 per period): with a large order cost the order
    quantity approaches the EOQ; a higher lost-sale penalty buys more service; the chosen option
    is the cheapest total among the item's full option grid."""
    n = 3
    items = pd.DataFrame(
        {
            "rate": [20.0, 20.0, 20.0],
            "ltd_mean": [40.0, 40.0, 40.0],
            "ltd_var": [40.0, 40.0, 40.0],
            "discrete": [True, True, True],
            "unit_cost": [10.0, 10.0, 10.0],
            "holding_cost": [0.1, 0.1, 0.1],
            "order_cost": [50.0, 50.0, 0.5],
            "lost_sale_cost": [20.0, 1.0, 20.0],
        }
    )
    rows = optimise_cost(items)
    eoq = np.sqrt(2 * 50.0 * 20.0 / 0.1)  # 141
    assert 0.6 * eoq <= rows["order_quantity"].iloc[0] <= 1.5 * eoq
    assert rows["order_quantity"].iloc[2] < rows["order_quantity"].iloc[0]
    assert rows["model_fill_rate"].iloc[0] > rows["model_fill_rate"].iloc[1]
    assert rows["expected_orders"].iloc[0] == pytest.approx(20.0 / rows["order_quantity"].iloc[0])
    opts = option_grid(
        items["ltd_mean"].to_numpy(), items["ltd_var"].to_numpy(), np.ones(n, bool), np.ones(n), np.ones(n),
        q_span=np.full(n, 2 * eoq),
    )  # fmt: skip
    total = opts.stock * 0.1 + 50.0 * 20.0 / opts.q + 20.0 * 20.0 * (1 - opts.fill)
    got = rows["expected_cost"].iloc[0] + 20.0 * 20.0 * (1 - rows["model_fill_rate"].iloc[0])
    assert got <= total[0].min() + 1e-6


def test_optimiser_inputs_use_the_calibrated_lead_time_demand_and_policy_targets():
    detail = pd.DataFrame(
        {
            "sku": ["A", "B", "C"],
            "location": ["W1", "W1", "W2"],
            "category": ["spare", "spare", "tools"],
            "abc_class": ["A", "A", "C"],
            "demand_mean": [0.5, 2.0, 1.0],
            "lead_time_std_days": [0.0, 1.0, 0.0],
            "review_period_days": [7.0, 7.0, 7.0],
            "lt_mean": [8.5, 34.0, 17.0],
            "lt_std": [3.0, 6.0, 4.0],
            "demand_pattern": ["lumpy", "smooth", "intermittent"],
            "ss_method": ["negbin", "normal", "poisson"],
            "unit_cost": [100.0, 5.0, 2.0],
            "service_level": [0.98, 0.98, 0.90],
            "fill_rate": [0.99, 0.99, np.nan],
        }
    )
    ltd = pd.DataFrame({"sku": ["A", "B"], "location": ["W1", "W1"], "mean": [5.0, 20.0], "dispersion": [4.0, 1.5]})
    src = pd.DataFrame({"sku": ["A"], "location": [None], "moq": [3.0], "order_multiple": [3.0]})
    items, targets = optimiser_inputs(detail, ltd, src)
    assert items["ltd_mean"].tolist() == pytest.approx([5.0 + 3.5, 20.0 + 14.0, 17.0])
    assert items["ltd_var"].tolist() == pytest.approx([4.0 * 8.5, 1.5 * 34.0 + 4.0, 16.0])
    assert items["discrete"].tolist() == [True, False, True]
    assert items["moq"].tolist() == [3.0, 1.0, 1.0]
    assert targets == {"spare/A": 0.99, "tools/C": 0.90}
    rows, curve = optimise_policy(items, targets, group="group")
    assert set(curve["group"]) == {"spare/A", "tools/C"}
    assert rows.loc[0, "order_quantity"] % 3 == 0


def test_allocate_on_precomputed_frontiers_matches_the_full_grid():
    items = _items(150, seed=4)
    opts = option_grid(
        items["ltd_mean"].to_numpy(), items["ltd_var"].to_numpy(), items["discrete"].to_numpy(),
        np.ones(150), np.ones(150),
    )  # fmt: skip
    w = items["rate"].to_numpy()
    cost, ben = opts.stock * items["unit_cost"].to_numpy()[:, None], opts.fill * w[:, None]
    full = allocate(cost, ben, w, np.zeros(150, np.int64), 0.93)
    vert, cnt = upper_hull(cost, ben)
    col = np.minimum(np.arange(vert.shape[1])[None, :], cnt[:, None] - 1)
    idx = np.take_along_axis(vert, col, axis=1)
    fast = allocate(
        np.take_along_axis(cost, idx, 1), np.take_along_axis(ben, idx, 1), w, np.zeros(150, np.int64), 0.93, cnt
    )
    assert fast.group_value[0] == pytest.approx(full.group_value[0])
    assert (np.take_along_axis(idx, fast.choice[:, None], 1)[:, 0] == full.choice).all()
