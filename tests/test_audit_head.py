"""The audit chain's head (issue 15): `audit verify` prints it, `--expect-head` catches the
newest records being cut off (which a chain alone cannot show), and the monitor anchors the
head outside the store — a log line and the anchor topic — without ever stopping its loop."""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from sqlalchemy import delete

from agentwatch import log_format
from agentwatch.cli.main import main
from agentwatch.config import Config
from agentwatch.lab.broker import EmbeddedBroker
from agentwatch.lab.topic_io import publish_events, read_records
from agentwatch.observe import metrics
from agentwatch.respond import audit_log
from agentwatch.respond.audit_anchor import AuditAnchor
from agentwatch.store import audit_log as audit_table
from agentwatch.store import open_store
from tests.conftest import write_config
from tests.kafka_helpers import event, marker_monitor


@pytest.fixture(autouse=True)
def a_configured_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTWATCH_AUDIT_KEY", "k" * 40)
    monkeypatch.delenv("AGENTWATCH_AUDIT_KEY_FILE", raising=False)


def fill(engine, start: int, n: int) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        for i in range(start, start + n):
            audit_log.append(conn, "human:ana", "approval.granted", f"inc-{i}", {"n": i}, 1000 + i)


def verify(config_path: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--config", str(config_path), "audit", "verify", *args])


def test_verify_prints_the_head_and_expect_head_catches_the_newest_records_cut_off(
    isolated_config: Config, tmp_path: Path
) -> None:
    config_path = write_config(isolated_config, tmp_path / "agentwatch.toml")
    engine = open_store(isolated_config.store_url)
    fill(engine, 0, 70)
    first = verify(config_path)
    assert first.exit_code == 0, first.output
    head = audit_log.verify_chain(engine).head
    assert head is not None and head.startswith("70:") and head in first.output
    as_json = msgspec.json.decode(verify(config_path, "--json").stdout)
    assert as_json["head"] == head

    fill(engine, 70, 5)  # the chain grew since the head was kept: still proven
    grown = verify(config_path, "--expect-head", head)
    assert grown.exit_code == 0, grown.output
    assert "75:" in grown.output

    with engine.begin() as conn:  # someone with write access cuts off the 61 newest records
        conn.execute(delete(audit_table).where(audit_table.c.seq > 14))
    assert verify(config_path).exit_code == 0  # what a chain alone cannot tell
    cut = verify(config_path, "--expect-head", head)
    assert cut.exit_code == 1
    assert "ends at record 14" in cut.output and "56 records were cut off" in cut.output
    bare = verify(config_path, "--expect-head", head.split(":", 1)[1])  # the hash alone works too
    assert bare.exit_code == 1 and "not in the chain" in bare.output


def test_a_rewritten_chain_of_the_same_length_fails_expect_head(isolated_config: Config, tmp_path: Path) -> None:
    config_path = write_config(isolated_config, tmp_path / "agentwatch.toml")
    engine = open_store(isolated_config.store_url)
    fill(engine, 0, 5)
    head = audit_log.verify_chain(engine).head
    assert head is not None
    with engine.begin() as conn:  # the key holder re-writes the last record: chain intact, head differs
        conn.execute(delete(audit_table).where(audit_table.c.seq == 5))
    fill(engine, 99, 1)
    result = verify(config_path, "--expect-head", head)
    assert result.exit_code == 1 and "not in the chain" in result.output


def test_a_malformed_expect_head_is_a_usage_error(isolated_config: Config, tmp_path: Path) -> None:
    config_path = write_config(isolated_config, tmp_path / "agentwatch.toml")
    result = verify(config_path, "--expect-head", "12:nothex")
    assert result.exit_code == 2 and "SEQ:HEX" in result.output and "Traceback" not in result.output


def test_the_anchor_logs_and_publishes_only_a_moved_head_and_never_raises(
    isolated_config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_store(isolated_config.store_url)
    now = [0.0]
    anchor = AuditAnchor(engine, "anchors", every_s=60, clock=lambda: now[0])
    sent: list[tuple[str, bytes, bytes]] = []
    anchor.maybe_anchor(lambda *m: sent.append(m))
    assert sent == []  # an empty chain has no head
    fill(engine, 0, 3)
    now[0] = 61
    with caplog.at_level(logging.INFO, logger="agentwatch.audit_anchor"):
        anchor.maybe_anchor(lambda *m: sent.append(m))
    head = audit_log.verify_chain(engine).head
    assert [(t, k) for t, k, _ in sent] == [("anchors", b"audit-head")]
    assert msgspec.json.decode(sent[0][2])["head"] == head
    assert f"audit head {head}" in caplog.text
    now[0] = 70
    fill(engine, 3, 1)
    anchor.maybe_anchor(lambda *m: sent.append(m))
    assert len(sent) == 1  # not due yet
    now[0] = 200
    anchor.maybe_anchor(lambda *m: sent.append(m))
    anchor.maybe_anchor(lambda *m: sent.append(m))
    assert len(sent) == 2  # moved once, published once

    def broken(*_: object) -> None:
        raise ConnectionError("broker gone")

    failures = metrics.BEST_EFFORT_FAILURES.labels("audit_anchor")
    before = failures._value.get()
    fill(engine, 4, 1)
    now[0] = 400
    anchor.maybe_anchor(broken)  # does not raise
    assert failures._value.get() == before + 1
    now[0] = 500
    anchor.maybe_anchor(lambda *m: sent.append(m))  # not marked anchored by the failure: retried
    assert len(sent) == 3


def test_the_anchor_line_shows_at_the_cli_default_verbosity() -> None:
    root, anchor_logger = logging.getLogger(), logging.getLogger("agentwatch.audit_anchor")
    saved = root.handlers[:], root.level, anchor_logger.level
    try:
        log_format.install(logging.WARNING)
        assert anchor_logger.isEnabledFor(logging.INFO)
        assert not logging.getLogger("agentwatch.respond.responder").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        anchor_logger.setLevel(saved[2])


@pytest.mark.broker
def test_the_monitor_publishes_the_head_to_the_anchor_topic(broker: EmbeddedBroker, isolated_config: Config) -> None:
    engine = open_store(isolated_config.store_url)
    fill(engine, 0, 4)
    monitor = marker_monitor(broker.bootstrap_servers, isolated_config, exit_on_idle_s=2.0)
    monitor.anchor = AuditAnchor(engine, isolated_config.monitor.audit_anchor_topic, every_s=0.5)
    native = next(t for t, f in isolated_config.monitor.inputs.items() if f == "native")
    publish_events(broker.bootstrap_servers, native, [event(1)])
    monitor.run()
    records = read_records(broker.bootstrap_servers, isolated_config.monitor.audit_anchor_topic)
    heads = [msgspec.json.decode(r.value)["head"] for r in records]
    assert heads and heads[-1] == audit_log.verify_chain(engine).head
    assert {r.key for r in records} == {b"audit-head"}
