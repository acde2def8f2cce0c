"""The small array kernels of the transfers package, each on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import poisson

from pipelines.transfers.candidates import donor_risk_segments
from pipelines.transfers.lp import LinearProgram
from pipelines.transfers.milp import spread


def _poisson_loss_exact(m: float, c: float) -> float:
    k = np.arange(0, 200)
    return float(np.sum(np.maximum(k - c, 0.0) * poisson.pmf(k, m)))


def test_donor_risk_segments_price_exactly_the_expected_lost_sales() -> None:
    """A Poisson donor (need mean 6, no spread beyond Poisson) with 20 units: it gives freely above its
    p99.5 and, below it, each segment's width x slope adds up to the exact extra lost sales."""
    risk, give_all = donor_risk_segments(
        available=np.array([20.0]),
        onhand_free=np.array([20.0]),
        expiring=np.array([0.0]),
        need_mean=np.array([6.0]),
        transit_demand=np.array([0.0]),
        sigma=np.array([0.0]),
        disp=np.array([1.0]),
    )
    p995, median = poisson.ppf(0.995, 6.0), poisson.ppf(0.5, 6.0)
    assert risk.free[0] == 20.0 - p995 and give_all[0] == 20.0 - median
    assert risk.width.sum() == pytest.approx(give_all[0] - risk.free[0])
    priced = float(np.sum(risk.width * risk.slope))
    exact = _poisson_loss_exact(6.0, median) - _poisson_loss_exact(6.0, p995)
    assert priced == pytest.approx(exact, rel=1e-9)
    assert np.all((risk.slope >= 0) & (risk.slope <= 1))


def test_donor_risk_spread_from_the_safety_stock_widens_the_keep_level() -> None:
    base = dict(
        available=np.array([40.0]),
        onhand_free=np.array([40.0]),
        expiring=np.array([0.0]),
        need_mean=np.array([10.0]),
        transit_demand=np.array([0.0]),
        disp=np.array([1.0]),
    )
    narrow, _ = donor_risk_segments(sigma=np.array([0.0]), **base)
    wide, _ = donor_risk_segments(sigma=np.array([8.0]), **base)  # variance 64 > the Poisson 10
    assert wide.disp[0] == pytest.approx(6.4) and narrow.disp[0] == 1.0
    assert wide.free[0] < narrow.free[0]  # it keeps more before giving freely


def test_near_expiry_units_are_never_priced() -> None:
    risk, _ = donor_risk_segments(
        available=np.array([20.0]),
        onhand_free=np.array([20.0]),
        expiring=np.array([20.0]),  # all of it expires: the donor cannot sell it anyway
        need_mean=np.array([6.0]),
        transit_demand=np.array([0.0]),
        sigma=np.array([0.0]),
        disp=np.array([1.0]),
    )
    assert risk.width.sum() == 0.0


def test_linear_program_named_blocks_solve_a_small_knapsack() -> None:
    # maximise 3 x + 2 y: x + y <= 4, x <= 3, x integer -> x = 3, y = 1
    lp = LinearProgram()
    x = lp.variables("x", np.array([-3.0]), np.array([3.0]), integer=True)
    y = lp.variables("y", np.array([-2.0]), np.array([10.0]), integer=False)
    lp.constraints(
        "capacity", np.array([4.0]), [(np.array([0]), np.array([x]), 1.0), (np.array([0]), np.array([y]), 1.0)]
    )
    res = lp.solve(time_limit=5, mip_rel_gap=0.0)
    assert lp.block(res.x, "x").tolist() == [3.0] and lp.block(res.x, "y").tolist() == pytest.approx([1.0])
    assert lp.var_blocks == {"x": (0, 1), "y": (1, 1)} and lp.row_blocks == {"capacity": (0, 1)}


def test_spread_shares_a_group_total_pro_rata_to_units() -> None:
    got = spread(np.array([10.0, 6.0]), np.array([0, 0, 1, 1]), np.array([1.0, 3.0, 0.0, 0.0]))
    assert got.tolist() == [2.5, 7.5, 0.0, 0.0]  # group 1 ships nothing: nothing spread
