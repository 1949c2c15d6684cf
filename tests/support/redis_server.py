"""A redis-server of a test's own (Debian's redis-server), to stop and start at will."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

from tests.support.ports import free_port


class PrivateRedis:
    """A redis-server of the test's own, so stopping it disturbs nothing else."""

    def __init__(self):
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for this test (Debian package redis-server)"
        self.binary, self.port, self.process = binary, free_port(), None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
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
