"""
`RedisServer`: a throwaway ``redis-server`` on 127.0.0.1, for tests and benchmarks.

It runs the real server binary on a free port with persistence off and stops it on
exit, so tests of `bitget_keys.redis_limits` talk to Redis itself, not to a mock.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType
from typing import Final, Self

__all__ = ["RedisServer", "find_redis_server"]

_HOST: Final = "127.0.0.1"
#: How long a starting server may take to answer PING, in seconds.
_START_TIMEOUT: Final = 10.0


def find_redis_server() -> str | None:
    """The ``redis-server`` binary: ``$REDIS_SERVER``, the PATH, or Debian's location."""
    found = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if found:
        return found
    for path in ("/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"):
        if os.access(path, os.X_OK):
            return path
    return None


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((_HOST, port))
        except OSError:
            return False
        return True


def _free_port(*, cluster: bool) -> int:
    """A free port; for a cluster node also its bus port (port + 10000), below 65536."""
    if not cluster:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((_HOST, 0))
            port: int = probe.getsockname()[1]
            return port
    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(20_000, 55_000)
        if _bindable(port) and _bindable(port + 10_000):
            return port
    msg = "no free port pair for a Redis Cluster node"
    raise RuntimeError(msg)


def _command(*words: str) -> bytes:
    """A RESP array of bulk strings."""
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RedisServer:
    """
    Starts ``redis-server`` on 127.0.0.1 (a free port unless given) and stops it.

    Use ``with RedisServer() as server:`` and connect to ``server.url``. ``stop()`` and
    ``start()`` again (same port) simulate an outage. With ``cluster=True`` the server
    is a one-node Redis Cluster that owns every slot, which is enough to prove that
    every script's keys share a slot.

    Raises:
        FileNotFoundError: no ``redis-server`` binary was found.
        RuntimeError: the server did not answer within ten seconds.
    """

    __slots__ = ("_dir", "_process", "cluster", "executable", "password", "port")

    def __init__(
        self, *, port: int | None = None, password: str | None = None, cluster: bool = False
    ) -> None:
        executable = find_redis_server()
        if executable is None:
            msg = "redis-server is not installed (apt-get install redis-server)"
            raise FileNotFoundError(msg)
        self.executable = executable
        self.port = port or _free_port(cluster=cluster)
        self.password = password
        self.cluster = cluster
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer {_HOST}:{self.port} {state}>"

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:port/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{_HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def start(self) -> Self:
        """Start the server (again) and wait until it answers."""
        if self.running:
            return self
        process = self._process = subprocess.Popen(  # noqa: S603 - our own argv, no shell
            self._argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                self._call("PING")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    msg = f"redis-server on port {self.port} did not start"
                    raise RuntimeError(msg) from None
                time.sleep(0.02)
        if self.cluster:
            self._call("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
            while b"cluster_state:ok" not in self._call("CLUSTER", "INFO"):
                if time.monotonic() > deadline:
                    msg = f"redis-server on port {self.port} did not form its cluster"
                    raise RuntimeError(msg)
                time.sleep(0.02)
        return self

    def _argv(self) -> list[str]:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="bitget-keys-redis-")
        argv = [
            self.executable,
            "--save",
            "",
            "--appendonly",
            "no",
            "--port",
            str(self.port),
            "--bind",
            _HOST,
            "--dir",
            self._dir.name,
        ]
        if self.password:
            argv += ["--requirepass", self.password]
        if self.cluster:
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        return argv

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after five seconds). Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _call(self, *words: str) -> bytes:
        """Send one command on a new connection and return the raw answer."""
        with socket.create_connection((_HOST, self.port), timeout=1.0) as connection:
            if self.password:
                connection.sendall(_command("AUTH", self.password))
                connection.recv(1024)
            connection.sendall(_command(*words))
            answer = connection.recv(65536)
        if not answer:
            raise ConnectionResetError
        return answer
