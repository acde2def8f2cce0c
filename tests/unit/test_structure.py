"""The shape of the code: stages never import each other, no private names cross modules, no cycles."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from pipelines import stages

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipelines", "models")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            parts = p.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = p
    return out


@cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


@cache
def _imports(path: Path, module: str) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import in the file, at any depth."""
    tree = _parse(path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level] if not path.name == "__init__.py" else module.split(".")
                base = ".".join([*parent, base] if base else parent)
            for a in node.names:
                found.append((base, a.name, node.lineno))
    return found


def _internal(target: str, modules: dict[str, Path]) -> str | None:
    return target if target in modules else None


def test_no_stage_module_imports_another_stage_module():
    stage_modules = {s.func.split(":")[0] for p in stages.PIPELINES.values() for s in p} - {"pipelines.runner"}
    modules = _modules()
    bad = []
    for mod in stage_modules:
        for target, name, line in _imports(modules[mod], mod):
            full = f"{target}.{name}" if name and f"{target}.{name}" in modules else target
            if full in stage_modules and full != mod:
                bad.append(f"{mod}:{line} imports {full}")
    assert not bad, "stages must share code through pipelines/frames.py & co, not import each other: " + "; ".join(bad)


def test_no_private_name_is_imported_across_modules():
    modules = _modules()
    bad = []
    for mod, path in modules.items():
        for target, name, line in _imports(path, mod):
            if name and name.startswith("_") and name != "__version__" and _internal(target, modules):
                bad.append(f"{mod}:{line} imports {target}.{name}")
    assert not bad, "; ".join(bad)


def test_no_import_cycle_between_modules():
    modules = _modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for target, name, _ in _imports(path, mod):
            full = f"{target}.{name}" if name and f"{target}.{name}" in modules else target
            if full in modules and full != mod and not mod.startswith(full + "."):
                edges[mod].add(full)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                return [*stack[stack.index(n) :], n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(modules):
        if m not in state and (cycle := visit(m)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))


def test_the_nightly_code_does_not_import_the_demo_or_the_evaluation_code():
    modules = _modules()
    allowed = ("pipelines.cli", "pipelines.demo", "pipelines.eval")
    bad = [
        f"{mod}:{line} imports {target}"
        for mod, path in modules.items()
        if not mod.startswith(allowed)
        for target, _, line in _imports(path, mod)
        if target.startswith(("pipelines.demo", "pipelines.eval"))
    ]
    assert not bad, "; ".join(bad)


# -- the tests themselves (issue 21) ---------------------------------------------------------------
#
# Shared test code lives in tests/factories.py (builders), tests/conftest.py (fixtures) and
# tests/fixtures_erp.py; a test module never imports another one, and never redefines a builder.
# The unit tier stays pure: no database engine, Great Expectations, Airflow, rendering or subprocess.

TESTS = ROOT / "tests"
UNIT_FORBIDDEN = (
    "great_expectations",
    "alembic",
    "airflow",
    "matplotlib",
    "subprocess",
    "sqlite3",
    "psycopg",
    "pymysql",
    "aiosmtpd",
    "sqlalchemy",
)
UNIT_FORBIDDEN_INTERNAL = ("pipelines.airflow_support",)  # imports Airflow
UNIT_ALLOWED = ("sqlalchemy.dialects",)  # compiling SQL text for a dialect needs no engine
SERVER_FIXTURES = {"pg_url", "mysql_url", "airflow_db", "tmp_config"}


def _test_modules(root: Path) -> dict[str, Path]:
    return {".".join(p.relative_to(root.parent).with_suffix("").parts): p for p in sorted(root.rglob("test_*.py"))}


def _defined_functions(path: Path) -> list[tuple[str, int]]:
    tree = _parse(path)
    return [(n.name, n.lineno) for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def cross_test_problems(root: Path) -> list[str]:
    """Imports of a test module by a test module, and functions that shadow a builder of factories.py."""
    factories = {name for name, _ in _defined_functions(root / "factories.py")}
    bad = []
    for mod, path in _test_modules(root).items():
        for target, name, line in _imports(path, mod):
            for full in (target, f"{target}.{name}" if name else target):
                if full.split(".")[0] == root.name and full.split(".")[-1].startswith("test_"):
                    bad.append(f"{mod}:{line} imports the test module {full}")
                    break
        bad += [
            f"{mod}:{line} defines {name}(), a builder of {root.name}/factories.py"
            for name, line in _defined_functions(path)
            if name in factories
        ]
    return bad


def unit_tier_problems(root: Path) -> list[str]:
    """Imports of heavy machinery, and server/config fixtures, in the unit tier's modules."""
    bad = []
    for mod, path in _test_modules(root).items():
        if not mod.startswith(f"{root.name}.unit."):
            continue
        for target, name, line in _imports(path, mod):
            full = f"{target}.{name}" if name else target
            heavy = target.split(".")[0] in UNIT_FORBIDDEN or full.startswith(UNIT_FORBIDDEN_INTERNAL)
            if heavy and not full.startswith(UNIT_ALLOWED):
                bad.append(f"{mod}:{line} imports {full}")
        tree = _parse(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                used = SERVER_FIXTURES & {a.arg for a in node.args.args}
                bad += [f"{mod}:{node.lineno} {node.name} uses the fixture {f}" for f in sorted(used)]
    return bad


def unmarked_integration_modules(root: Path) -> list[str]:
    """Modules of tests/integration and tests/e2e without a module-level integration/e2e mark."""
    bad = []
    for mod, path in _test_modules(root).items():
        if not mod.startswith((f"{root.name}.integration.", f"{root.name}.e2e.")):
            continue
        tree = _parse(path)
        marks = [
            ast.unparse(n.value)
            for n in tree.body
            if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in n.targets)
        ]
        if not any("mark.integration" in m or "mark.e2e" in m for m in marks):
            bad.append(f"{mod} has no pytestmark = pytest.mark.integration")
    return bad


def test_no_test_module_imports_another_or_shadows_a_builder():
    bad = cross_test_problems(TESTS)
    assert not bad, "share test code through tests/factories.py or tests/conftest.py: " + "; ".join(bad)


def test_the_unit_tier_imports_no_database_engine_gx_airflow_rendering_or_subprocess():
    bad = unit_tier_problems(TESTS)
    assert not bad, "such tests belong in tests/integration (DEVELOPERS.md, Tests): " + "; ".join(bad)


def test_every_integration_and_e2e_module_is_marked():
    bad = unmarked_integration_modules(TESTS)
    assert not bad, "; ".join(bad)


def test_the_test_tree_checks_catch_what_they_are_for(tmp_path):
    root = tmp_path / "tests"
    for sub in ("unit", "integration"):
        (root / sub).mkdir(parents=True)
    (root / "factories.py").write_text("def items():\n    pass\n", encoding="utf-8")
    (root / "unit" / "test_a.py").write_text(
        "import sqlalchemy as sa\nfrom sqlalchemy.dialects import mysql\n"
        "from pipelines.airflow_support import CONFIG_ENV\ndef test_a(pg_url):\n    pass\n",
        encoding="utf-8",
    )
    (root / "unit" / "test_b.py").write_text(
        "from tests.unit.test_a import test_a\nfrom .test_a import test_a as again\n"
        "from tests import factories\ndef items():\n    pass\n",
        encoding="utf-8",
    )
    (root / "integration" / "test_c.py").write_text("import pytest\n", encoding="utf-8")
    (root / "integration" / "test_d.py").write_text(
        "import pytest\npytestmark = pytest.mark.integration\n", encoding="utf-8"
    )
    assert cross_test_problems(root) == [
        "tests.unit.test_b:1 imports the test module tests.unit.test_a",
        "tests.unit.test_b:2 imports the test module tests.unit.test_a",
        "tests.unit.test_b:4 defines items(), a builder of tests/factories.py",
    ]
    assert unit_tier_problems(root) == [
        "tests.unit.test_a:1 imports sqlalchemy",
        "tests.unit.test_a:3 imports pipelines.airflow_support.CONFIG_ENV",
        "tests.unit.test_a:4 test_a uses the fixture pg_url",
    ]
    assert unmarked_integration_modules(root) == [
        "tests.integration.test_c has no pytestmark = pytest.mark.integration"
    ]
