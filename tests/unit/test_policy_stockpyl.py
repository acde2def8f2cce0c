"""The safety-stock formulas checked against an independent implementation (stockpyl, test-only).

Same inputs on both sides: a base-stock (order-up-to) level for a critical ratio equal to the
cycle service level is stockpyl's newsvendor solution (holding cost 1 - CSL, stockout cost CSL)
for the lead-time demand; the loss functions behind the fill-rate targets are stockpyl's.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.policy import _normal_loss, discrete_loss, negbin_params, safety_stock_kernel

newsvendor = pytest.importorskip("stockpyl.newsvendor", reason="stockpyl is a test-only dependency")
loss_functions = pytest.importorskip("stockpyl.loss_functions", reason="stockpyl is a test-only dependency")

CASES = [
    # mu/day, sigma_d, L, sigma_L, R, CSL
    (2.0, 1.5, 4.0, 1.0, 5.0, 0.95),
    (12.5, 6.0, 10.0, 3.0, 7.0, 0.98),
    (0.4, 0.9, 21.0, 0.0, 7.0, 0.90),
    (30.0, 4.0, 2.0, 0.5, 1.0, 0.80),
]


def _kernel(mu, sd, lead, lead_sd, review, csl, discrete=False, fill_rate=np.nan):
    return safety_stock_kernel(
        np.array([mu]),
        np.array([sd]),
        np.array([lead]),
        np.array([lead_sd]),
        np.array([review]),
        np.array([csl]),
        np.array([fill_rate]),
        np.array([discrete]),
        np.zeros(1),
        np.full(1, np.nan),
    )


@pytest.mark.parametrize(("mu", "sd", "lead", "lead_sd", "review", "csl"), CASES)
def test_normal_order_up_to_equals_stockpyl_newsvendor(mu, sd, lead, lead_sd, review, csl) -> None:
    k = _kernel(mu, sd, lead, lead_sd, review, csl)
    m = mu * (lead + review)
    sigma = np.sqrt((lead + review) * sd**2 + mu**2 * lead_sd**2)
    base_stock, _cost = newsvendor.newsvendor_normal(1 - csl, csl, m, sigma)
    assert m + k["safety_stock"][0] == pytest.approx(float(base_stock), rel=1e-9)


@pytest.mark.parametrize("m", [0.3, 2.0, 4.5, 17.0, 60.0])
@pytest.mark.parametrize("csl", [0.8, 0.9, 0.95, 0.99])
def test_poisson_order_up_to_equals_stockpyl(m, csl) -> None:
    # sigma_d = 0, sigma_L = 0: variance 0 < mean -> Poisson(m) with m = mu * (L + R)
    k = _kernel(m / 10.0, 0.0, 6.0, 0.0, 4.0, csl, discrete=True)
    assert k["ss_method"][0] == "poisson"
    base_stock, _cost = newsvendor.newsvendor_poisson(1 - csl, csl, m)
    assert m + k["safety_stock"][0] == pytest.approx(float(base_stock))


@pytest.mark.parametrize("z", [-2.0, -0.5, 0.0, 0.7, 1.645, 3.1])
def test_standard_normal_loss_equals_stockpyl(z) -> None:
    ours = _normal_loss(np.array([z]))[0]
    theirs, _complement = loss_functions.standard_normal_loss(z)
    assert ours == pytest.approx(float(theirs), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("m", "v"), [(4.5, 18.0), (1.2, 5.0), (23.0, 64.0)])
@pytest.mark.parametrize("s", [0, 1, 5, 14, 30])
def test_discrete_losses_equal_stockpyl(m, v, s) -> None:
    n, p = negbin_params(np.array([m]), np.array([v]))
    ours_nb = discrete_loss(np.array([s]), np.array([m]), n, p, np.array([True]))[0]
    theirs_nb, _ = loss_functions.negative_binomial_loss(s, mean=m, sd=np.sqrt(v))
    assert ours_nb == pytest.approx(float(theirs_nb), rel=1e-9, abs=1e-12)
    ours_p = discrete_loss(np.array([s]), np.array([m]), np.ones(1), np.full(1, 0.5), np.array([False]))[0]
    theirs_p, _ = loss_functions.poisson_loss(s, m)
    assert ours_p == pytest.approx(float(theirs_p), rel=1e-9, abs=1e-12)


def test_negative_binomial_order_up_to_matches_stockpyl_discrete_newsvendor() -> None:
    from scipy.stats import nbinom

    mu, sd, lead, review, csl = 0.5, np.sqrt(2.0), 4.0, 5.0, 0.9
    k = _kernel(mu, sd, lead, 0.0, review, csl, discrete=True)
    m, v = mu * 9.0, 9.0 * sd**2
    n, p = m**2 / (v - m), m / v
    base_stock, _cost = newsvendor.newsvendor_discrete(1 - csl, csl, demand_distrib=nbinom(n, p))
    assert k["ss_method"][0] == "negbin"
    assert m + k["safety_stock"][0] == pytest.approx(float(base_stock))
