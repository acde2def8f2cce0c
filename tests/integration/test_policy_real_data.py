"""Our policy on the real spare-parts data (../shared/data/spare_parts): MAN dead stock and the oil
replay against the recorded min / max. Skips with the reason when the data is absent (fails under
CI=true, where the data must be there)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.factories import benchmark_script, spare_parts_dir

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spare():
    mod = benchmark_script("policy_spare_parts")
    return mod, spare_parts_dir(mod)


def test_man_never_sold_skus_are_all_dead_stock(spare) -> None:
    mod, base = spare
    r = mod.man_dead_stock(base)
    assert r["skus"] == 3451 and r["never_sold"] == 1510
    assert r["never_sold_flagged_dead"] == r["never_sold"]
    assert r["example_en"].startswith("Dead stock:") and "呆滞库存" in r["example_zh"]


def test_oil_policy_and_replay(spare) -> None:
    mod, base = spare
    mats, fit, rep = mod.load_oil(base)
    assert len(mats) > 1000 and rep.shape[1] == 20 and not np.isnan(rep).any()
    ours = mod.oil_policy(mats, fit)
    assert (ours["reorder_point"] >= 0).all() and (ours["order_up_to"] > ours["reorder_point"]).all()
    # the replay kernel on a hand case: s = 1, S = 3, lead 1 month, demand 2, 2, 0
    r = mod.replay(np.array([[2.0, 2.0, 0.0]]), np.array([1.0]), np.array([3.0]), np.array([1]))
    # m0: 3 on hand, serve 2 -> 1, order 2; m1: +2 = 3, serve 2 -> 1, order 2; m2: +2 = 3
    assert r == {"cycle_service_level": 1.0, "fill_rate": 1.0, "avg_stock_units": pytest.approx(5 / 3)}
    table, facts = mod.oil_report(base)
    assert list(table["policy"]) == ["recorded (min / max)", "ours"]
    assert ((table["cycle service level"] > 0.5) & (table["cycle service level"] <= 1.0)).all()
    assert facts["materials"] == len(mats)
