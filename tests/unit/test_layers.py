"""Layering: no import cycle between cai's subpackages and top-level modules, no stage file importing another, and
only the registry loading plugins. Imports are read with `ast` (function-level ones included), so a lazy import
cannot hide a cycle."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set, Tuple

CAI = Path(__file__).resolve().parents[2] / "cai"


def module_name(path: Path, root: Path = CAI) -> str:
    """`cai.stages.sft` for cai/stages/sft.py (`cai.stages` for its __init__.py)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: Set[str]) -> List[Tuple[str, int]]:
    """cai modules `path` imports, at any depth, with line numbers (`from cai.x import y` counts cai.x.y when
    that is a module)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "cai":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.append((full if full in modules else node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "cai"]
    return found


def unit(module: str, root: Path = CAI) -> str:
    """The layer a module belongs to: its subpackage (cai.engines), or itself for a top-level module (cai.graph)."""
    parts = module.split(".")
    return f"cai.{parts[1]}" if len(parts) > 1 and (root / parts[1]).is_dir() else module


def import_graph(root: Path = CAI) -> Tuple[Dict[str, Set[str]], Dict[Tuple[str, str], str]]:
    """unit -> units it imports, and where each edge comes from (file:line)."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    edges: Dict[str, Set[str]] = {}
    where: Dict[Tuple[str, str], str] = {}
    for module, path in files.items():
        for target, line in imported(path, set(files)):
            a, b = unit(module, root), unit(target, root)
            if a != b:
                edges.setdefault(a, set()).add(b)
                where.setdefault((a, b), f"{path.relative_to(root.parent)}:{line}")
    return edges, where


def cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one unit (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def stage_imports(root: Path = CAI) -> List[str]:
    """`file:line -> module` for every stage file importing another stage file."""
    stages = root / "stages"
    names = {f"cai.stages.{p.stem}" for p in stages.glob("*.py") if p.stem != "__init__"}
    return [f"{p.name}:{line} -> {target}" for p in stages.glob("*.py")
            for target, line in imported(p, names) if target in names or target == "cai.stages"]


def test_no_cycle_between_subpackages():
    edges, where = import_graph()
    found = cycles(edges)
    detail = [f"{a} -> {b} ({where[a, b]})" for c in found for a in c for b in sorted(edges[a]) if b in c]
    assert not found, "import cycles:\n" + "\n".join(detail)


def test_no_stage_imports_another_stage():
    assert not stage_imports()


def test_only_the_registry_loads_stages_and_engines():
    edges, where = import_graph()
    # stage and engine modules are imported by name (cai/registry.py) or, for a stage body, by its launch string
    loaders = {a for a, targets in edges.items() if "cai.stages" in targets}
    assert not loaders, [where[a, "cai.stages"] for a in loaders]


def test_the_checks_fail_on_a_planted_cycle_and_a_stage_importing_a_stage(tmp_path):
    package = tmp_path / "cai"
    (package / "stages").mkdir(parents=True)
    (package / "engines").mkdir()
    (package / "__init__.py").write_text("")
    (package / "stages" / "__init__.py").write_text("")
    (package / "stages" / "a.py").write_text("from cai.stages.b import thing\nfrom cai.engines.e import x\n")
    (package / "stages" / "b.py").write_text("thing = 1\n")
    (package / "engines" / "__init__.py").write_text("")
    (package / "engines" / "e.py").write_text("def x():\n    from cai.stages import a\n")
    edges, _ = import_graph(package)
    assert cycles(edges) == [["cai.engines", "cai.stages"]]
    assert stage_imports(package) == ["a.py:1 -> cai.stages.b"]
