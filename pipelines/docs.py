"""Regenerate docs/data-contract.md from the contract (``python -m pipelines.docs``)."""

from __future__ import annotations

from pathlib import Path

from pipelines import contract

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


def main() -> None:
    target = Path(__file__).resolve().parents[1] / "docs" / "data-contract.md"
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
