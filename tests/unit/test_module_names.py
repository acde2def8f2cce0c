"""A module-level name bound twice in the production code silently replaces the first binding (a
template constant overwritten by a later one with the same name, say): none is allowed."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _rebound(path: Path, root: Path = ROOT) -> list[str]:
    seen: dict[str, int] = {}
    twice = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [node.name]
        for name in names:
            if name in seen and name != "__all__":
                twice.append(f"{path.relative_to(root)}:{node.lineno} binds {name} again (first on line {seen[name]})")
            seen.setdefault(name, node.lineno)
    return twice


def test_no_module_level_name_is_bound_twice() -> None:
    files = sorted([*(ROOT / "pipelines").rglob("*.py"), *(ROOT / "models").rglob("*.py")])
    assert files
    assert [msg for f in files for msg in _rebound(f)] == []


def test_the_check_sees_a_rebinding(tmp_path: Path) -> None:
    f = ROOT / "pipelines" / "__init__.py"
    assert _rebound(f) == []
    bad = tmp_path / "bad.py"
    bad.write_text('_T = "a {x}"\n\n\ndef f():\n    pass\n\n\n_T = "b"\n', encoding="utf-8")
    assert _rebound(bad, tmp_path) == ["bad.py:8 binds _T again (first on line 1)"]
