"""Shards change how the night is split into tasks, never what it publishes: one shard and several
(by store, by item) publish identical rows, table by table (a content hash per table)."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.config import load_config
from pipelines.demo.source import DEMO_END_DATE, generate
from pipelines.runner import run_pipeline
from tests.factories import published_hashes

pytestmark = pytest.mark.integration  # whole nights through the runner on a demo ERP

RUN = DEMO_END_DATE + timedelta(days=1)


def _night(
    tmp_path: Path, erp: Path, models: Path, tag: str, shards: dict, method: str = "moving_average"
) -> tuple[dict[str, str], Path]:
    src = tmp_path / f"erp-{tag}.sqlite"
    shutil.copy(erp, src)
    cfg = load_config(
        overrides={
            "source": {"url": f"sqlite:///{src}"},
            "reporting": {"url": f"sqlite:///{tmp_path / f'reporting-{tag}.sqlite'}"},
            "staging_dir": str(tmp_path / tag / "staging"),
            "output_dir": str(tmp_path / tag / "output"),
            "forecast": {"history_days": 120, "model_dir": str(models), "method": method},
            "shards": shards,
        }
    )
    run_pipeline(cfg, RUN)
    return published_hashes(cfg.reporting_url()), Path(cfg.staging_dir) / RUN.isoformat()


def test_one_shard_and_many_publish_the_same_rows(tmp_path):
    erp = tmp_path / "erp.sqlite"
    generate(f"sqlite:///{erp}", n_skus=24, days=150)
    models = tmp_path / "models"  # the first night trains the model, the others apply it (as a DC would)
    one, _ = _night(tmp_path, erp, models, "one", {"count": 1})
    stores, staged = _night(tmp_path, erp, models, "stores", {"by": "location", "count": 3})
    items, staged_items = _night(tmp_path, erp, models, "items", {"by": "category", "count": 4})
    plan = json.loads((staged / "shards.json").read_text())
    assert len(plan["series"]) == 3 and len(plan["items"]) == 3  # the split did happen
    assert (staged / "shards" / "forecast-002" / "forecasts.parquet").exists()
    assert (staged / "shards" / "policy-002" / "inventory_policy.parquet").exists()
    assert json.loads((staged_items / "shards.json").read_text())["series"][0]["axis"] == "sku"
    assert all(int(h.split(":")[0]) > 0 for k, h in one.items() if k in ("forecasts", "inventory_policy", "alerts"))
    diff = {k: (one[k], stores[k]) for k in one if one[k] != stores[k]}
    assert not diff, f"3 store shards published other rows than 1 shard: {diff}"
    diff = {k: (one[k], items[k]) for k in one if one[k] != items[k]}
    assert not diff, f"category shards published other rows than 1 shard: {diff}"


def test_shards_with_the_global_model_publish_the_same_rows(tmp_path):
    """The global model pools levels over a SKU's stores and over a store's SKUs: store shards split
    the first, category shards the second. The model stage computes them over the whole panel and
    every forecast shard predicts with those, so both splits publish what one shard does."""
    erp = tmp_path / "erp.sqlite"
    generate(f"sqlite:///{erp}", n_skus=24, days=150)
    models = tmp_path / "models"
    one, staged_one = _night(tmp_path, erp, models, "one", {"count": 1}, method="selected")
    assert (staged_one / "pooled_levels.parquet").exists()
    for tag, shards in (("stores", {"by": "location", "count": 3}), ("cats", {"by": "category", "count": 4})):
        got, staged = _night(tmp_path, erp, models, tag, shards, method="selected")
        plan = json.loads((staged / "shards.json").read_text())
        assert len(plan["forecast"]) == len(plan["series"]) > 1, plan["forecast"]
        assert json.loads((staged / "model.json").read_text())["version"]  # one model for the night
        diff = {k: (one[k], got[k]) for k in one if one[k] != got[k]}
        assert not diff, f"{tag} shards published other rows than 1 shard: {diff}"
