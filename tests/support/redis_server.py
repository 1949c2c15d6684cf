"""A redis-server of a test's own (Debian's redis-server), to stop and start at will."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.ports import free_port


class PrivateRedis:
    """A redis-server of the test's own, so stopping it disturbs nothing else."""

    def __init__(self, *extra: str):
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for this test (Debian package redis-server)"
        self.binary, self.port, self.process = binary, free_port(), None
        self.extra = list(extra)  # more redis-server arguments (--replicaof host port, ...)
        # Its own working folder: a replica's full sync writes dump.rdb there, which a later
        # server started in the same folder would load.
        self.folder = tempfile.mkdtemp(prefix="idp-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        os.makedirs(self.folder, exist_ok=True)
        self.process = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no", "--dir", self.folder,
                                         *self.extra],
                                        stdout=subprocess.DEVNULL)
        self._wait_for_port()

    def _wait_for_port(self):
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateSentinel(PrivateRedis):
    """A Redis Sentinel of the test's own, watching ``primary`` as service ``name``, quick to
    call a failover (one sentinel is the quorum)."""

    def __init__(self, folder: Path, name: str, primary: PrivateRedis):
        super().__init__()
        self.config = folder / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndaemonize no\n"
            f"sentinel monitor {name} 127.0.0.1 {primary.port} 1\n"
            f"sentinel down-after-milliseconds {name} 1000\n"
            f"sentinel failover-timeout {name} 10000\n")

    def start(self):
        self.process = subprocess.Popen([self.binary, str(self.config), "--sentinel"],
                                        stdout=subprocess.DEVNULL)
        self._wait_for_port()


@contextmanager
def shared_redis(redis_url: str | None) -> Iterator[str]:
    """A Redis that several apps or processes can share: the test backend's (``redis_url``),
    or on the embedded run, whose store lives inside one process, a redis-server of its own."""
    if redis_url:
        yield redis_url
        return
    server = PrivateRedis()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
