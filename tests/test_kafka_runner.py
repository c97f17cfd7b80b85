"""The run loop against the real embedded broker: alerts out, bad input to the DLQ, no duplicates."""

from __future__ import annotations

import base64

import msgspec
import pytest

from agentwatch.config import Config
from agentwatch.lab.broker import EmbeddedBroker
from agentwatch.lab.topic_io import publish_events, publish_raw
from tests.kafka_helpers import event, marker_monitor, read_json

pytestmark = pytest.mark.broker


def native_topic(config: Config) -> str:
    return next(t for t, f in config.monitor.inputs.items() if f == "native")


def test_events_become_alerts_and_one_alert_per_session(broker: EmbeddedBroker, isolated_config: Config) -> None:
    bootstrap = broker.bootstrap_servers
    monitor = marker_monitor(bootstrap, isolated_config)
    events = [event(i, session=f"s{i % 5}", target="cat EVIL" if i % 2 else "ls") for i in range(200)]
    publish_events(bootstrap, native_topic(isolated_config), events)
    stats = monitor.run()
    assert stats.events == 200
    alerts = read_json(bootstrap, isolated_config.monitor.alerts_topic)
    # Five sessions, all with markers, but one alert each: updated in place, not a flood.
    assert sorted(a["session_id"] for a in alerts) == [f"s{i}" for i in range(5)]
    assert {a["severity"] for a in alerts} == {"critical"}
    assert all(a["revision"] == 1 and a["alert_id"].startswith("al-") for a in alerts)


def test_malformed_input_goes_to_the_dlq_and_the_loop_keeps_going(
    broker: EmbeddedBroker, isolated_config: Config
) -> None:
    bootstrap = broker.bootstrap_servers
    topic = native_topic(isolated_config)
    bad = [
        (b"k1", b'{"event_id": "x"'),  # invalid JSON
        (b"k2", b"\xff\xfe\x00garbage"),  # invalid UTF-8
        (b"k3", msgspec.json.encode({**event(1), "kind": 5})),  # wrong type (a bad *optional* number is dropped)
        (b"k4", msgspec.json.encode({k: v for k, v in event(2).items() if k != "session_id"})),  # missing field
        (b"k5", msgspec.json.encode({**event(3), "target": "x" * 1_100_000})),  # oversized
        (b"k6", b""),  # empty / tombstone
    ]
    good = [(b"s9", msgspec.json.encode(event(10, session="s9", target="EVIL")))]
    publish_raw(bootstrap, topic, bad + good)
    stats = marker_monitor(bootstrap, isolated_config).run()
    letters = read_json(bootstrap, isolated_config.monitor.dlq_topic)
    assert sorted(letter["reason"] for letter in letters) == sorted(
        ["invalid_json", "invalid_utf8", "invalid_field", "missing_field", "oversized", "invalid_json"]
    )
    for letter in letters:
        assert letter["origin"]["topic"] == topic and letter["origin"]["offset"] >= 0
        original = base64.b64decode(letter["value_b64"])
        assert original == dict(bad)[next(k for k, v in bad if v.startswith(original[:64]))][: len(original)]
    assert stats.events == 1 and stats.dead_letters == 6
    assert [a["session_id"] for a in read_json(bootstrap, isolated_config.monitor.alerts_topic)] == ["s9"]


def test_reprocessing_after_a_lost_commit_publishes_no_duplicate(
    broker: EmbeddedBroker, isolated_config: Config
) -> None:
    """Simulate a crash after publishing but before committing: a new group re-reads all."""
    bootstrap = broker.bootstrap_servers
    events = [event(i, session=f"s{i}", target="EVIL") for i in range(20)]
    publish_events(bootstrap, native_topic(isolated_config), events)
    first = marker_monitor(bootstrap, isolated_config).run()
    assert first.alerts_published == 20
    # Same store (ledger), new consumer group: every event is consumed again.
    again = msgspec.structs.replace(
        isolated_config, monitor=msgspec.structs.replace(isolated_config.monitor, group_id="another-group")
    )
    second = marker_monitor(bootstrap, again).run()
    assert second.events == 20 and second.alerts_published == 0 and second.alerts_suppressed == 20
    assert len(read_json(bootstrap, isolated_config.monitor.alerts_topic)) == 20


def test_alerts_published_before_a_crash_are_recovered_from_the_topic(
    broker: EmbeddedBroker, isolated_config: Config
) -> None:
    """Crash between flush and ledger write: the ledger lost them, the alerts topic did not."""
    from sqlalchemy import delete

    from agentwatch.store import alert_log_positions, open_store, published_alerts

    bootstrap = broker.bootstrap_servers
    events = [event(i, session=f"s{i}", target="EVIL") for i in range(10)]
    publish_events(bootstrap, native_topic(isolated_config), events)
    assert marker_monitor(bootstrap, isolated_config).run().alerts_published == 10
    with open_store(isolated_config.store_url).begin() as conn:  # forget, as a crash would
        conn.execute(delete(published_alerts))
        conn.execute(delete(alert_log_positions))
    again = msgspec.structs.replace(
        isolated_config, monitor=msgspec.structs.replace(isolated_config.monitor, group_id="after-crash")
    )
    second = marker_monitor(bootstrap, again).run()
    assert second.events == 10 and second.alerts_published == 0
    assert len(read_json(bootstrap, isolated_config.monitor.alerts_topic)) == 10


def test_the_loop_survives_the_broker_going_away_and_carries_on_when_it_returns(isolated_config: Config) -> None:
    """Tansu keeps everything in memory, so the broker that returns is empty: the monitor
    must reconnect, rejoin its group and process what arrives afterwards."""
    import threading
    import time

    from agentwatch.ingest.topics import all_topics, ensure_topics
    from agentwatch.lab.broker import free_port

    port = free_port()
    first = EmbeddedBroker(port=port).start()
    monitor = marker_monitor(first.bootstrap_servers, isolated_config, exit_on_idle_s=None)  # type: ignore[arg-type]
    thread = threading.Thread(target=monitor.run, daemon=True)
    thread.start()
    second = None
    try:
        publish_events(
            first.bootstrap_servers,
            native_topic(isolated_config),
            [event(i, session=f"before{i}", target="EVIL") for i in range(5)],
        )
        deadline = time.monotonic() + 60
        while monitor.stats.events < 5:
            assert time.monotonic() < deadline, "nothing processed before the outage"
            time.sleep(0.1)
        first.stop()
        time.sleep(3)  # the monitor polls a dead broker meanwhile
        assert thread.is_alive()
        second = EmbeddedBroker(port=port).start()
        ensure_topics(second.bootstrap_servers, all_topics(isolated_config.monitor), partitions=3)
        publish_events(
            second.bootstrap_servers,
            native_topic(isolated_config),
            [event(i, session=f"after{i}", target="EVIL") for i in range(5)],
        )
        deadline = time.monotonic() + 90
        while monitor.stats.events < 10:
            assert thread.is_alive() and time.monotonic() < deadline, "the monitor did not carry on"
            time.sleep(0.2)
        alerts = read_json(second.bootstrap_servers, isolated_config.monitor.alerts_topic)
        assert sorted(a["session_id"] for a in alerts) == [f"after{i}" for i in range(5)]
    finally:
        monitor.stop_event.set()
        thread.join(timeout=30)
        if second is not None:
            second.stop()
