"""Shared fixtures: one real Kafka-protocol broker (Tansu) per test session, on loopback.

Broker tests never skip: the broker ships with the dev extra, and a missing binary is
an error, not a skip.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from agentwatch.config import Config, MonitorSettings
from agentwatch.lab.broker import EmbeddedBroker

_ids = itertools.count()

# Nothing a test does may write into the working tree: without a configured audit key, a
# PostgreSQL store would generate one in the default data directory (./agentwatch-data).
# tests/test_audit_key.py removes this to test key generation itself.
os.environ.setdefault("AGENTWATCH_AUDIT_KEY", secrets.token_hex(32))


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
        audit_anchor_topic=f"agentwatch.audit.anchor.{n}",
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


PG_ADMIN_URL = os.environ.get("AGENTWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped at the end).

    Skips with a visible reason only where no server can be had; under CI (``CI`` set)
    a missing server is a failure, never a skip.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"agentwatch_test_{os.getpid()}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(text(f"CREATE DATABASE {name}"))
    except OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN_URL}: {exc.__class__.__name__}")
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The store suite runs against both backends."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    from sqlalchemy import create_engine

    from agentwatch.store import drop_store

    engine = create_engine(base)
    drop_store(engine)  # each test starts empty
    engine.dispose()
    yield base
