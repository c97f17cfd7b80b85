"""A live agentwatch stack on loopback: broker, `run`, `serve`, a fleet, and real Prometheus.

Used by tests/test_prometheus_live.py and docs/render_dashboard.py (which draws the SOC
dashboard picture in the README from the same live data).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentwatch.ingest.topics import ensure_topics
from agentwatch.lab import simulator
from agentwatch.lab.broker import EmbeddedBroker, free_port
from agentwatch.lab.reference_gateway import ReferenceGateway, drive_fleet

ROOT = Path(__file__).resolve().parent.parent
AGENTWATCH = [sys.executable, "-m", "agentwatch.cli"]


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


@dataclass
class LiveStack:
    """Start with :meth:`start`, feed with :meth:`feed`, query with :meth:`query`, then :meth:`stop`."""

    workdir: Path
    scrape_interval_s: float = 1.0
    broker: EmbeddedBroker = field(default_factory=EmbeddedBroker)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    prometheus_url: str = ""
    metrics_port: int = 0
    serve_port: int = 0
    #: serve's API token (its /metrics needs it); Prometheus reads it from a credentials file.
    api_token: str = field(default_factory=lambda: secrets.token_hex(24))

    def start(self) -> LiveStack:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LiveStack:
        self.broker.start()
        bootstrap = self.broker.bootstrap_servers
        ensure_topics(bootstrap, ["agent.audit", "otlp_logs", "agentwatch.alerts", "agentwatch.dlq", "agent.control"])
        config = self.workdir / "agentwatch.toml"
        config.write_text(f'[monitor]\ndata_dir = "{self.workdir / "data"}"\n')
        self.metrics_port, self.serve_port, prom_port = free_port(), free_port(), free_port()
        token_file = self.workdir / "api-token"
        token_file.write_text(self.api_token + "\n")
        token_file.chmod(0o600)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        log = open(self.workdir / "agentwatch.log", "wb")  # noqa: SIM115 - closed with the processes
        self.processes.append(
            subprocess.Popen(
                [
                    *AGENTWATCH,
                    "--config",
                    str(config),
                    "run",
                    "--bootstrap-servers",
                    bootstrap,
                    "--quiet",
                    "--metrics-port",
                    str(self.metrics_port),
                ],
                stdout=log,
                stderr=log,
                env=env,
            )
        )
        self.processes.append(
            subprocess.Popen(
                [*AGENTWATCH, "--config", str(config), "serve", "--port", str(self.serve_port)],
                stdout=log,
                stderr=log,
                env={**env, "AGENTWATCH_API_TOKEN_FILE": str(token_file)},
            )
        )
        prom_dir = self.workdir / "prometheus"
        prom_dir.mkdir(exist_ok=True)
        shutil.copy(ROOT / "prometheus" / "rules.yml", prom_dir / "rules.yml")
        (prom_dir / "prometheus.yml").write_text(
            json.dumps(
                {
                    "global": {
                        "scrape_interval": f"{int(self.scrape_interval_s * 1000)}ms",
                        "evaluation_interval": "1s",
                    },
                    "rule_files": ["rules.yml"],
                    "scrape_configs": [
                        {
                            "job_name": "agentwatch-monitor",
                            "static_configs": [{"targets": [f"127.0.0.1:{self.metrics_port}"]}],
                        },
                        {
                            "job_name": "agentwatch-server",
                            "static_configs": [{"targets": [f"127.0.0.1:{self.serve_port}"]}],
                            "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                        },
                    ],
                }
            )
        )
        binary = prometheus_binary()
        if binary is None:
            raise RuntimeError("no prometheus binary (Debian package `prometheus`; .ci/run installs it)")
        self.processes.append(
            subprocess.Popen(
                [
                    binary,
                    f"--config.file={prom_dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={prom_dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                stdout=log,
                stderr=log,
            )
        )
        self.prometheus_url = f"http://127.0.0.1:{prom_port}"
        self.wait_for(lambda: self._ready(), 60, "prometheus ready")
        return self

    def feed(self, sessions: int = 150, seed: int = 3, rate: float = 400.0, attack_ratio: float = 0.3) -> None:
        """Play a simulated fleet through a reference gateway, event time ending now."""
        fleet = simulator.simulate(seed=seed, sessions=sessions, attack_ratio=attack_ratio)
        shift = int(time.time() * 1000) - max(e["ts"] for e in fleet.events)
        events = [{**e, "ts": e["ts"] + shift} for e in fleet.events]
        gateway = ReferenceGateway(self.broker.bootstrap_servers, "agent.control").start()
        try:
            drive_fleet(self.broker.bootstrap_servers, "agent.audit", events, gateway, rate=rate)
        finally:
            gateway.stop()
        self.post_hooks()

    def post_hooks(self) -> None:
        """Claude Code's hook inputs (tests/fixtures/claude_code_hooks) to serve's hook endpoint, as Claude Code
        sends them: one allowed, one asked and two denied calls per session, for the hook panels."""
        fixtures = Path(__file__).parent / "fixtures" / "claude_code_hooks"
        for n in range(5):
            for path in sorted(fixtures.glob("*.json")):
                body = json.loads(path.read_text())
                body["session_id"] = f"live-hooks-{n}"
                request = urllib.request.Request(
                    f"http://127.0.0.1:{self.serve_port}/v1/hooks/claude-code",
                    data=json.dumps(body).encode(),
                    headers={
                        "Authorization": f"Bearer {self.api_token}",
                        "Content-Type": "application/json",
                        "X-Agentwatch-Installation": f"live-laptop-{n}",
                    },
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()

    def feed_in_background(self, **kwargs: Any) -> threading.Thread:
        thread = threading.Thread(target=self.feed, kwargs=kwargs, daemon=True)
        thread.start()
        return thread

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} | ({"time": str(at)} if at else {})
        with urllib.request.urlopen(
            f"{self.prometheus_url}/api/v1/query?{urllib.parse.urlencode(params)}", timeout=10
        ) as response:
            body = json.loads(response.read())
        if body["status"] != "success":
            raise RuntimeError(f"{expr}: {body}")
        return body["data"]["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        params = {"query": expr, "start": str(start), "end": str(end), "step": str(step)}
        with urllib.request.urlopen(
            f"{self.prometheus_url}/api/v1/query_range?{urllib.parse.urlencode(params)}", timeout=20
        ) as response:
            body = json.loads(response.read())
        if body["status"] != "success":
            raise RuntimeError(f"{expr}: {body}")
        return body["data"]["result"]

    def exposition(self) -> str:
        text = ""
        serve_auth = {"Authorization": f"Bearer {self.api_token}"}
        for port, headers in ((self.metrics_port, {}), (self.serve_port, serve_auth)):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                text += response.read().decode()
        return text

    def scrapes(self) -> int:
        result = self.query("min(count_over_time(up[10m]))")
        return int(float(result[0]["value"][1])) if result else 0

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.prometheus_url}/-/ready", timeout=2):
                return True
        except OSError:
            return False

    @staticmethod
    def wait_for(condition: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.25)
        raise TimeoutError(f"timed out waiting for {what}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.broker.stop()
