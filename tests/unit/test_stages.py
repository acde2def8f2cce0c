"""The declared stage graph: every read has a writer, the runner holds stages to their declaration."""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd
import pytest

from pipelines import contract, stages
from pipelines.context import RunContext, StageResult
from pipelines.docs import DOCS, with_flow
from pipelines.runner import check_contract


@pytest.mark.parametrize("pipeline", sorted(stages.PIPELINES))
def test_every_read_has_an_earlier_writer_and_every_function_exists(pipeline):
    g = stages.graph(stages.PIPELINES[pipeline])
    for s in g.stages:
        module, func = s.func.split(":")
        assert callable(getattr(importlib.import_module(module), func)), s.func
        for r in s.required_reads:
            assert r in g.writer, f"{s.name} reads {r} with no writer"


def test_a_read_without_a_writer_or_a_file_with_two_writers_is_refused():
    a = stages.Stage("a", "m:f", writes=("x",))
    with pytest.raises(stages.StageContractError, match="reads 'y', which no earlier stage writes"):
        stages.graph((a, stages.Stage("b", "m:f", reads=("x", "y"))))
    stages.graph((a, stages.Stage("b", "m:f", reads=("x", "?y"))))  # optional: fine
    with pytest.raises(stages.StageContractError, match="written by both 'a' and 'b'"):
        stages.graph((a, stages.Stage("b", "m:f", writes=("x",))))
    with pytest.raises(stages.StageContractError, match="runs after 'c'"):
        stages.graph((a, stages.Stage("b", "m:f", after=("c",))))


def test_edges_follow_the_files_and_redundant_edges_are_dropped():
    a = stages.Stage("a", "m:f", writes=("x",))
    b = stages.Stage("b", "m:f", reads=("x",), writes=("y",))
    c = stages.Stage("c", "m:f", reads=("x", "y"))
    g = stages.graph((a, b, c))
    assert g.upstream == {"a": (), "b": ("a",), "c": ("b",)}  # c -> a is implied by c -> b -> a


def test_declared_tables_are_the_contract_tables():
    assert set(stages.PUBLISHED) == set(contract.OUTPUT_TABLES)
    assert set(stages.VALIDATED) == set(contract.INPUT_TABLES)
    load = stages.BY_NAME["load"]
    assert set(stages.PUBLISHED) <= set(load.all_reads)


def test_architecture_doc_shows_the_generated_flow():
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    assert text == with_flow(text), "run `make docs`"


def _ctx(tmp_path: Path) -> RunContext:
    from datetime import date

    from pipelines.config import load_config

    cfg = load_config(overrides={"staging_dir": str(tmp_path / "staging")})
    return RunContext(cfg, date(2026, 1, 5))


def test_a_stage_reading_an_undeclared_file_or_missing_a_write_breaks_its_contract(tmp_path):
    ctx = _ctx(tmp_path)
    ctx.write("x", pd.DataFrame({"a": [1]}))
    stage = stages.Stage("s", "m:f", reads=("x",), writes=("y", "?z"))
    ctx.accessed.clear()
    ctx.read("x")
    ctx.write("y", pd.DataFrame({"a": [1]}))
    check_contract(stage, ctx)  # reads x, writes y, z optional: kept
    ctx.exists("secret")
    with pytest.raises(stages.StageContractError, match="read 'secret', which it does not declare"):
        check_contract(stage, ctx)
    ctx.accessed.clear()
    (ctx.run_dir / "y.parquet").unlink()
    with pytest.raises(stages.StageContractError, match="did not write 'y'"):
        check_contract(stage, ctx)


def test_run_stage_checks_the_declaration(tmp_path, monkeypatch):
    """The runner raises when a real stage function reads what its declaration does not list."""
    from pipelines import runner

    ctx = _ctx(tmp_path)
    ctx.write("thing", pd.DataFrame({"sku": ["A"]}))

    def sneaky(c: RunContext) -> StageResult:
        c.exists("transfers")
        return StageResult(stage="sneaky")

    monkeypatch.setitem(stages.BY_NAME, "sneaky", stages.Stage("sneaky", "m:f", reads=("thing",)))
    monkeypatch.setattr(runner, "stage_function", lambda stage: sneaky)
    with pytest.raises(stages.StageContractError, match="'transfers'"):
        runner.run_stage("sneaky", ctx)
