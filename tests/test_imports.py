"""The package has one import name, `neurocypher`: no file of the repository imports the folders
`ingest`, `queries` or `app` by their own names, and the modules of `neurocypher` import one another
without a cycle and in one direction (the store side never imports the model side), counting the
imports made inside functions and the method registry's (each module can be read, and loaded, after
the ones it needs). The wheel built from the sources holds that one name and every module, and runs
from wherever it is installed."""

import ast
import functools
import graphlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from neurocypher.ingest.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {  # folder: the import name of its package
    "neurocypher": "neurocypher",
    "ingest": "neurocypher.ingest",
    "queries": "neurocypher.queries",
    "app": "neurocypher.app",
}
OLD_NAMES = {"ingest", "queries", "app"}
GROUND_FLOOR = {"neurocypher.errors", "neurocypher.progress", "neurocypher.config", "neurocypher.output"}


def module_name(path: Path) -> str:
    folder, *parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PACKAGES[folder], *parts])


def imports(tree: ast.AST, package: str | None) -> list[tuple[str, list[str]]]:
    """Each import of the code `tree`: the module it names (relative ones resolved in `package`; left
    out when `package` is None) and the names it takes from it (none for `import x`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not (node.level and package is None):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = ".".join(filter(None, [base, node.module])) if node.level else node.module
            found.append((target, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
    return found


def imported(path: Path, modules: set[str]) -> set[str]:
    """The modules of `modules` that the file at `path` imports, anywhere in it: `from p import m`
    imports the module p.m where there is one, and p itself where some name is not a module."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for target, names in imports(ast.parse(path.read_text()), package):
        submodules = {f"{target}.{n}" for n in names} & modules
        found |= submodules | ({target} if len(submodules) < max(len(names), 1) else set())
    return (found & modules) - {name}


def import_graph() -> dict[str, set[str]]:
    """Each module of `neurocypher`: the modules of it that it imports, the method registry's
    (`neurocypher.ingest.methods`, which imports a method's module by name when it runs) included."""
    paths = sorted(path for folder in PACKAGES for path in (ROOT / folder).rglob("*.py"))
    modules = {module_name(path) for path in paths}
    graph = {module_name(path): imported(path, modules) for path in paths}
    graph["neurocypher.ingest.methods"] |= {method.module for method in METHODS.values()}
    return graph


def test_neurocypher_modules_import_one_another_without_a_cycle():
    graph = import_graph()
    stages, cli = graph["neurocypher.ingest.stages"], graph["neurocypher.cli"]
    assert stages >= {"neurocypher.ingest.analysis", "neurocypher.ingest.context", "neurocypher.ingest.methods"}
    assert cli >= {"neurocypher.ingest.cli", "neurocypher.app.cli"}  # the commands loaded when first needed
    assert "neurocypher.ingest.methods.neurflow" in graph["neurocypher.ingest.methods"]
    assert "neurocypher.cli" not in graph["neurocypher.ingest.cli"]  # its output helpers: neurocypher.output
    graphlib.TopologicalSorter(graph).prepare()  # a cycle raises CycleError, naming it


def above(module: str) -> tuple[str, ...]:
    """The subpackages `module` must not import: the store side imports neither the model side nor
    the explorer; the ground floor's modules (but the command line's root and `__init__`) none."""
    if module.startswith("neurocypher.queries"):
        return ("neurocypher.ingest", "neurocypher.app")
    return ("neurocypher.ingest", "neurocypher.queries", "neurocypher.app") if module in GROUND_FLOOR else ()


def test_the_imports_point_one_way():
    graph = import_graph()
    assert "neurocypher.queries.graph" in graph["neurocypher.ingest.writer"]  # the model side imports the store's
    upward = {(module, name) for module, names in graph.items() for name in names if name.startswith(above(module))}
    assert upward == set()


def python_sources() -> dict[str, str]:
    """The Python code of the repository: every .py file outside hidden folders, and the code cells of
    the notebooks under docs/."""
    sources = {
        str(path.relative_to(ROOT)): path.read_text()
        for path in ROOT.rglob("*.py")
        if not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
    }
    for notebook in (ROOT / "docs").rglob("*.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        code = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
        lines = [line for c in code for line in c.splitlines() if not line.startswith("%")]  # IPython magics
        sources[str(notebook.relative_to(ROOT))] = "\n".join(lines)
    return sources


def old_names(source: str) -> set[str]:
    """The folders' own names (`ingest`, `queries`, `app`) that `source` imports as top-level modules
    (a relative import names a module of its own package)."""
    return {target.split(".")[0] for target, _ in imports(ast.parse(source), None)} & OLD_NAMES


def test_nothing_imports_the_folders_by_their_own_names():
    sources = python_sources()
    assert {"ingest/cli.py", "bench/ingest.py", "tests/conftest.py", "docs/tour.ipynb"} <= set(sources)
    assert {path: found for path, source in sources.items() if (found := old_names(source))} == {}


def test_the_old_name_check_finds_each_form():
    source = "import ingest\nimport queries.store as s\nfrom app.views import x\nfrom .app import y\nimport apps"
    assert old_names(source) == {"ingest", "queries", "app"}


def test_the_built_wheel_holds_one_import_name_that_runs_from_anywhere(tmp_path):
    # built from a copy of the sources, not the editable install, so that the package-dir mapping is
    # what is tested (and no stale build/ folder of the checkout slips into the wheel)
    source = tmp_path / "source"
    for folder in PACKAGES:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    run = functools.partial(subprocess.run, capture_output=True, text=True, check=True, cwd=tmp_path)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source), "-w", "wheel"])
    (wheel,) = (tmp_path / "wheel").glob("neurocypher-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"neurocypher", "-".join(wheel.name.split("-")[:2]) + ".dist-info"}
    repository = {module_name(path) for folder in PACKAGES for path in (ROOT / folder).rglob("*.py")}
    wheel_modules = {module_name_in_wheel(name) for name in names if name.endswith(".py")}
    assert wheel_modules == repository
    run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", "site", str(wheel)])
    loaded = run(
        [
            sys.executable,
            "-c",
            "import neurocypher.ingest.methods.flow as m, neurocypher.app.tables; print(m.__file__)",
        ],
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
    )
    assert loaded.stdout.strip() == str(tmp_path / "site" / "neurocypher" / "ingest" / "methods" / "flow.py")


def module_name_in_wheel(name: str) -> str:
    parts = name.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
