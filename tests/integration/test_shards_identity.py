"""Shards change how the night is split into tasks, never what it publishes: one shard and several
(by store, by item) publish identical rows, table by table (a content hash per table)."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import load_config
from pipelines.demo.source import DEMO_END_DATE, generate
from pipelines.reporting import publication_digest
from pipelines.runner import run_pipeline

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
    return publication_digest(cfg.reporting_url()), Path(cfg.staging_dir) / RUN.isoformat()


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
    assert all(h["rows"] > 0 for k, h in one.items() if k in ("forecasts", "inventory_policy", "alerts"))
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


def test_one_model_per_store_shard_when_the_config_says_so(tmp_path):
    """``forecast.model_per_shard``: each forecast shard trains (the first night) and then loads its
    own model, on its own stores' series, in its own folder; the weekly retrain retrains each."""
    from pipelines.context import RunContext
    from pipelines.forecast import retrain_stage
    from pipelines.runner import run_pipeline
    from pipelines.shards import scope
    from pipelines.stages import BY_NAME

    erp = tmp_path / "erp.sqlite"
    generate(f"sqlite:///{erp}", n_skus=24, days=150)
    models = tmp_path / "models"
    shards = {"by": "location", "count": 3}
    cfg = load_config(
        overrides={
            "source": {"url": f"sqlite:///{erp}"},
            "reporting": {"url": f"sqlite:///{tmp_path / 'reporting.sqlite'}"},
            "staging_dir": str(tmp_path / "staging"),
            "output_dir": str(tmp_path / "output"),
            "forecast": {"history_days": 120, "model_dir": str(models), "model_per_shard": True},
            "shards": shards,
        }
    )
    run_pipeline(cfg, RUN)
    staged = Path(cfg.staging_dir) / RUN.isoformat()
    plan = json.loads((staged / "shards.json").read_text())
    assert len(plan["forecast"]) == 3
    assert not (staged / "pooled_levels.parquet").exists()  # each model pools over its own shard
    from models import artifacts

    versions = {}
    for k in range(3):
        sc = scope(plan, BY_NAME["forecast"], k)
        root = models / "shards" / sc.key
        model, meta = artifacts.load_current(root)
        assert set(model.series_["location"]) <= set(sc.values), (sc.values, set(model.series_["location"]))
        versions[sc.key] = meta["version"]
    assert artifacts.current_version(models) is None  # no panel model
    forecasts = pd.read_parquet(staged / "forecasts.parquet")
    assert set(forecasts["location"]) == {v for s in plan["series"] for v in s["values"]}

    run_pipeline(cfg, RUN)  # the next night loads each shard's model: no new version
    assert {k: artifacts.current_version(models / "shards" / k) for k in versions} == versions
    counts = {k: len([p for p in (models / "shards" / k).iterdir() if p.is_dir()]) for k in versions}
    result = retrain_stage(RunContext(cfg, RUN))
    assert len(result.notes) == 3 and all("shard location-" in n for n in result.notes)
    after = {k: len([p for p in (models / "shards" / k).iterdir() if p.is_dir()]) for k in versions}
    assert after == {k: n + 1 for k, n in counts.items()}  # one new version per shard
