"""A broker outage is reported: one log line when Kafka goes away, one when it is back, a counter."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from agentwatch.config import Config
from agentwatch.ingest.topics import all_topics, ensure_topics
from agentwatch.lab.broker import EmbeddedBroker, free_port
from agentwatch.lab.topic_io import publish_events
from agentwatch.observe import metrics
from tests.kafka_helpers import event, marker_monitor

pytestmark = pytest.mark.broker


def wait_for(condition, what: str, timeout_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_broker_outage_is_logged_once_each_way_and_counted(
    isolated_config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="kafka")  # as the CLI runs it: kafka-python's own spam muted
    caplog.set_level(logging.WARNING, logger="agentwatch.ingest.kafka_runner")  # last: it also sets the handler's level
    port = free_port()
    first = EmbeddedBroker(port=port).start()
    topic = next(t for t, f in isolated_config.monitor.inputs.items() if f == "native")
    monitor = marker_monitor(first.bootstrap_servers, isolated_config, exit_on_idle_s=None)  # type: ignore[arg-type]
    reconnects = metrics.KAFKA_RECONNECTS._value.get()
    thread = threading.Thread(target=monitor.run, daemon=True)
    thread.start()
    second = None
    try:
        publish_events(first.bootstrap_servers, topic, [event(i, session=f"before{i}") for i in range(3)])
        wait_for(lambda: monitor.stats.events >= 3, "nothing processed before the outage")
        first.stop()

        def lost() -> list[logging.LogRecord]:
            return [r for r in caplog.records if "lost the connection to Kafka" in r.getMessage()]

        wait_for(lambda: bool(lost()), "the outage was not logged", timeout_s=30)
        assert metrics.KAFKA_CONNECTED._value.get() == 0
        time.sleep(4)  # several reconnect attempts meanwhile: still one line
        second = EmbeddedBroker(port=port).start()
        ensure_topics(second.bootstrap_servers, all_topics(isolated_config.monitor), partitions=3)
        publish_events(second.bootstrap_servers, topic, [event(i, session=f"after{i}") for i in range(3)])
        wait_for(lambda: monitor.stats.events >= 6, "the monitor did not carry on", timeout_s=90)

        def restored() -> list[logging.LogRecord]:
            return [r for r in caplog.records if "connection to Kafka restored" in r.getMessage()]

        wait_for(lambda: bool(restored()), "the reconnect was not logged", timeout_s=30)
        assert len(lost()) == 1 and len(restored()) == 1
        assert metrics.KAFKA_RECONNECTS._value.get() - reconnects >= 1
        assert metrics.KAFKA_CONNECTED._value.get() == 1
    finally:
        monitor.stop_event.set()
        thread.join(timeout=30)
        if second is not None:
            second.stop()
