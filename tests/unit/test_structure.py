"""The shape of the code: stages never import each other, no private names cross modules, no cycles."""

from __future__ import annotations

import ast
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


def _imports(path: Path, module: str) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
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
