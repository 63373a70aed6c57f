"""The Neo4j 5 Community server the tests (and `bench/ingest.py --neo4j`, `bench/query.py --neo4j`)
run against: the launcher in tests/neo4j (`make neo4j-server` builds it with Maven), started in a
temporary directory with authentication on, a fresh password, Bolt on 127.0.0.1 on a port the
system picks, and the settings of docker-compose.yml's neo4j service; or, when NEO4J_URI is set,
the server it names (with NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE).
"""

import os
import re
import secrets
import select
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).parent.parent
LAUNCHER = ROOT / "tests" / "neo4j" / "target" / "neo4j-test-server.jar"
START_SECONDS = 300  # a cold JVM on a busy machine: 25-50 s measured on 2 cores
HEAP = {"server.memory.heap.initial_size": "-Xms", "server.memory.heap.max_size": "-Xmx"}  # JVM options here
ENVIRONMENT = ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE")


def compose_service(name: str) -> str:
    """The text of one service of docker-compose.yml."""
    text = (ROOT / "docker-compose.yml").read_text()
    return re.search(rf"^  {name}:\n(.*?)(?=^  \S|^\S|\Z)", text, re.S | re.M).group(1)


def image_setting(variable: str) -> str:
    """The setting the neo4j image writes for an environment variable (its docker-entrypoint rule:
    drop NEO4J_, `__` -> `_`, `_` -> `.`)."""
    return variable.removeprefix("NEO4J_").replace("__", "\0").replace("_", ".").replace("\0", "_")


def compose_settings() -> dict[str, str]:
    """The Neo4j settings docker-compose.yml gives its neo4j service (heap, page cache, transaction
    memory, no LOAD CSV from files)."""
    found = re.findall(r"^      (NEO4J_\w+): \"?([^\s\"]+)", compose_service("neo4j"), re.M)
    return {image_setting(variable): value for variable, value in found if variable != "NEO4J_AUTH"}


def given() -> dict[str, str] | None:
    """The NEO4J_* variables of a server the user names in NEO4J_URI, if any."""
    if not os.environ.get("NEO4J_URI"):
        return None
    return {key: os.environ[key] for key in ENVIRONMENT if os.environ.get(key)}


GIVEN = given()  # as the environment was on import: the tests' embedded home takes NEO4J_URI away


def unavailable() -> str | None:
    """Why no Neo4j server can be had here (None: one can)."""
    if GIVEN:
        return None
    if not shutil.which("java"):
        return "needs a Neo4j 5 server: no `java` on PATH to run tests/neo4j's (install Java 17+), and no NEO4J_URI"
    if not LAUNCHER.exists():
        how = "`make neo4j-server` builds it, see tests/neo4j/build.log" if shutil.which("mvn") else "no `mvn` on PATH"
        return f"needs a Neo4j 5 server: {LAUNCHER.relative_to(ROOT)} is not built ({how}), and no NEO4J_URI"
    return None


class Neo4jServer:
    """The launcher's process in a directory of its own; `wait()` for its address, `stop()` it."""

    def __init__(self, settings: dict[str, str] | None = None):
        settings = compose_settings() if settings is None else settings
        self.dir = Path(tempfile.mkdtemp(prefix="nc-neo4j-", dir="/tmp"))
        self.password = secrets.token_urlsafe(24)
        (self.dir / "neo4j.conf").write_text("".join(f"{k}={v}\n" for k, v in settings.items() if k not in HEAP))
        self._log = self.dir / "launcher.log"
        heap = [HEAP[k] + v for k, v in settings.items() if k in HEAP]
        with open(self._log, "w") as log:
            self.process = subprocess.Popen(
                ["java", *heap, "-jar", str(LAUNCHER), str(self.dir)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env={**os.environ, "NEO4J_PASSWORD": self.password},
            )
        self._uri = None

    def wait(self, seconds: float = START_SECONDS) -> dict[str, str]:
        """The NEO4J_* variables that point neurocypher at the server, once it answers."""
        if self._uri is None:
            ready, _, _ = select.select([self.process.stdout], [], [], seconds)
            line = self.process.stdout.readline() if ready else ""
            if not line.startswith("READY "):
                why = self._log_tail()
                self.stop()
                raise RuntimeError(f"the Neo4j test server did not start in {seconds:g} s: {why}")
            self._uri = line.split()[1]
        return {"NEO4J_URI": self._uri, "NEO4J_USER": "neo4j", "NEO4J_PASSWORD": self.password}

    def stop(self) -> None:
        """Shut the server down (its standard input ends) and remove its directory."""
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _log_tail(self) -> str:
        lines = self._log.read_text(errors="replace").strip().splitlines() if self._log.exists() else []
        return " | ".join(lines[-5:]) or f"exit status {self.process.poll()}"


@contextmanager
def bench_store(neo4j: bool):
    """The store a benchmark measures, and its server's process id: a fresh embedded store, or with
    `neo4j` a Neo4jStore on the server of NEO4J_URI (process id None) or else on a fresh test server;
    a server started here is stopped afterwards."""
    from neurocypher.queries import Neo4jStore, scratch_store

    if not neo4j:
        with scratch_store() as store:
            yield store, store._db.connection.info("server")["process_id"]
        return
    if unavailable():
        raise SystemExit(unavailable())
    server = None if GIVEN else Neo4jServer()
    try:
        env = GIVEN or server.wait()
        user, password, database = (env.get(k) for k in ENVIRONMENT[1:])
        with Neo4jStore(env["NEO4J_URI"], user or "neo4j", password, database) as store:
            yield store, server and server.process.pid
    finally:
        if server:
            server.stop()
