"""Regenerate the generated docs (``python -m pipelines.docs``, ``make docs``).

- ``docs/data-contract.md`` from the contract (:mod:`pipelines.contract`);
- the flow block of ``docs/architecture.md`` (between the ``flow`` markers) from the stage graph
  (:mod:`pipelines.stages`). Unit tests fail when either is stale."""

from __future__ import annotations

from pathlib import Path

from pipelines import contract, stages

DOCS = Path(__file__).resolve().parents[1] / "docs"
FLOW_START = "<!-- flow:start (generated from pipelines/stages.py by `make docs`) -->"
FLOW_END = "<!-- flow:end -->"

HEADER = """# The data contract

Generated from `pipelines/contract.py` by `make docs`; a unit test fails when this file is stale.
Every stage reads and writes through these definitions: extraction casts each source query's
columns to them, validation checks them, and the reporting database's schema matches the output
tables (a unit test compares the migrated schema with the contract).

Conventions: a run for business date D sees sales up to D-1 and the stock snapshot dated D.
Text is UTF-8 (Chinese names allowed). Returns are a separate column, never negative sales.

## Canonical input tables

"""


def render() -> str:
    inputs = contract.markdown(contract.INPUT_TABLES.values())
    outputs = contract.markdown(contract.OUTPUT_TABLES.values())
    return HEADER + inputs + "\n## Output tables (reporting database)\n\n" + outputs


def flow_block() -> str:
    """The generated part of docs/architecture.md: the nightly and the weekly stage graphs."""
    return "\n".join(
        [
            FLOW_START,
            "### Nightly (`dags/tiaobo_nightly.py`, `tiaobo run`)",
            "",
            stages.flow_markdown(stages.NIGHTLY),
            "",
            "### Weekly retrain (`dags/tiaobo_retrain.py`, `tiaobo retrain`)",
            "",
            stages.flow_markdown(stages.WEEKLY),
            FLOW_END,
        ]
    )


def with_flow(text: str) -> str:
    """``text`` (docs/architecture.md) with its flow block replaced by :func:`flow_block`."""
    head, _, rest = text.partition(FLOW_START)
    _, _, tail = rest.partition(FLOW_END)
    return head + flow_block() + tail


def main() -> None:
    target = DOCS / "data-contract.md"
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
    arch = DOCS / "architecture.md"
    arch.write_text(with_flow(arch.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {arch}")


if __name__ == "__main__":
    main()
