"""Money-optimising replenishment on the real spare-parts data (issue 18): on the oil set, the
setting chosen on 1999 reaches at least the recorded min / max's fill rate on Jan-2000 .. Aug-2001
with at least 20 % less stock value; on the MAN set, less total cost than the ERP-style min / max.
Skips with the reason when the data is absent (fails under CI=true, where it must be there)."""

from __future__ import annotations

import pytest

from tests.factories import benchmark_script as _script
from tests.factories import spare_parts_dir as _base

pytestmark = pytest.mark.integration


def test_oil_target_met_with_a_fifth_less_stock_value(monkeypatch) -> None:
    mod = _script("policy_tradeoff")
    data = mod.read_oil(_base(mod))
    # the protocol on a coarse grid of targets (the benchmark's own run searches 48 of them, about
    # 30 s here): chosen on the 1999 validation window, then reported on 2000-2001
    monkeypatch.setattr(mod, "GRID", (0.95, 0.97, 0.98, 0.99, 0.995))
    setting, table, rec_val = mod.choose_target(data, 18)
    assert len(table) == 5 * len(mod.VARIANTS)
    chosen = table[(table["variant"] == setting[0]) & (table["target"] == setting[1])].iloc[0]
    assert chosen["fill_5pct"] >= mod.AIM and chosen["fill_rate"] >= rec_val["fill_rate"]
    r = mod.report(data, setting, boot=0, seed=18, curves=False)
    rec, ours = r["main"]["recorded"], r["main"]["ours"]
    assert r["materials"] == 1173
    assert rec["fill_rate"] == pytest.approx(0.908, abs=5e-4)  # the doc's recorded figure
    assert ours["fill_rate"] >= rec["fill_rate"]
    assert ours["stock_value"] <= 0.8 * rec["stock_value"]


def test_man_total_cost_below_the_erp_min_max() -> None:
    mod = _script("policy_cost_man")
    raw, y = mod.read_man(_base(mod))
    variant, _ = mod.choose_variant(raw, y, 1.0)
    r = mod.run_window(raw, y, mod.REPORT, variant, 1.0)
    assert r["skus"] > 1000
    assert r["ours"]["total"] < r["erp4"]["total"] and r["ours"]["total"] < r["erp8"]["total"]
