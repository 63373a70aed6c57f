"""The modules of `ingest` import one another without a cycle, counting the imports made inside
functions too: each module can be read (and loaded) after the ones it needs."""

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> set[str]:
    """The modules of `modules` that the file at `path` imports, anywhere in it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = ".".join(filter(None, [base, node.module])) if node.level else node.module
            found |= {target} | {f"{target}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return (found & modules) - {name}


def test_ingest_modules_import_one_another_without_a_cycle():
    paths = sorted((ROOT / "ingest").rglob("*.py"))
    modules = {module_name(path) for path in paths}
    graph = {module_name(path): imported(path, modules) for path in paths}
    assert graph["ingest.stages"] >= {"ingest.analysis", "ingest.context", "ingest.methods"}  # the walk sees imports
    graphlib.TopologicalSorter(graph).prepare()  # a cycle raises CycleError, naming it
