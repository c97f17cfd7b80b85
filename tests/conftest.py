"""Shared fixtures: one real Kafka-protocol broker (Tansu) per test session, on loopback.

Broker tests never skip: the broker ships with the dev extra, and a missing binary is
an error, not a skip.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from monitor.broker import EmbeddedBroker
from monitor.config import Config, MonitorSettings

_ids = itertools.count()


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as embedded:
        yield embedded


@pytest.fixture
def isolated_config(tmp_path: Path) -> Config:
    """A config whose topics and group are unique to this test (the broker is shared)."""
    n = f"{os.getpid()}-{next(_ids)}"
    settings = MonitorSettings(
        data_dir=str(tmp_path / "data"),
        group_id=f"test-group-{n}",
        inputs={f"agent.audit.{n}": "native", f"otlp_logs.{n}": "otlp-json"},
        alerts_topic=f"agentwatch.alerts.{n}",
        dlq_topic=f"agentwatch.dlq.{n}",
        control_topic=f"agent.control.{n}",
    )
    return Config(monitor=settings)


def write_config(config: Config, path: Path) -> Path:
    """Write ``config`` as the TOML file the CLI reads."""
    import tomllib  # noqa: F401 - documents the format read back

    settings = msgspec.to_builtins(config.monitor)
    lines = ["[monitor]"]
    for key, value in settings.items():
        if value is None or isinstance(value, dict):
            continue
        lines.append(f"{key} = {msgspec.json.encode(value).decode()}")
    lines.append("[monitor.inputs]")
    for topic, fmt in config.monitor.inputs.items():
        lines.append(f'"{topic}" = "{fmt}"')
    for name, policy in config.detectors.items():
        lines.append(f"[detectors.{name}]")
        lines.append(f'mode = "{policy.mode}"')
    path.write_text("\n".join(lines) + "\n")
    return path
