"""Check Cypher strings with Neo4j's own linter (npm ``@neo4j-cypher/language-support``, Cypher 5).

The pinned npm package is installed once per version under
``${XDG_CACHE_HOME:-~/.cache}/neurocypher/cypher-lint/<version>``; needs ``node`` and ``npm``.
"""

import fcntl
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

_DIR = Path(__file__).with_name("cypher_lint")
_PACKAGE = "@neo4j-cypher/language-support"
VERSION = json.loads((_DIR / "package.json").read_text())["dependencies"][_PACKAGE]


def _error_line(stderr: str) -> str:
    """First npm/JS error line of ``stderr`` (else its last line), for one-line messages."""
    lines = stderr.strip().splitlines() or ["no output"]
    return next((ln for ln in lines if re.match(r"npm error |\w*Error\b", ln)), lines[-1])


def _install_dir() -> Path:
    """Return the cache dir holding the pinned linter, running ``npm install`` there under a file lock if needed."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"Cypher lint needs `{tool}` on PATH: install Node.js 20+ with npm")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = cache / "neurocypher" / "cypher-lint" / VERSION
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "node_modules").is_dir():
            shutil.copy(_DIR / "package.json", target / "package.json")
            try:
                proc = subprocess.run(
                    ["npm", "install", "--no-audit", "--no-fund", "--omit=dev"],
                    cwd=target,
                    capture_output=True,
                    text=True,
                )
                if proc.returncode:
                    raise RuntimeError(
                        f"`npm install {_PACKAGE}@{VERSION}` failed in {target} "
                        f"({_error_line(proc.stderr)}): make the npm registry reachable"
                    )
            except BaseException:
                shutil.rmtree(target / "node_modules", ignore_errors=True)
                raise
    return target


def lint_cypher(queries: list[str], *, warnings: bool = False) -> list[list[str]]:
    """Lint all queries in one node call; per query, a list of "ERROR line:col message" strings.

    With ``warnings=True`` return all diagnostics, including "WARNING ..." ones (e.g. deprecations).
    Parameters are never reported as undefined; labels, properties, functions and procedures are not checked.
    """
    if not queries:
        return []
    proc = subprocess.run(
        ["node", str(_DIR / "lint.mjs")],
        input=json.dumps(queries),
        cwd=_install_dir(),
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise RuntimeError(f"Cypher lint (node lint.mjs) failed: {_error_line(proc.stderr)}")
    results = json.loads(proc.stdout)
    return [[d for d in diags if warnings or d.startswith("ERROR ")] for diags in results]
