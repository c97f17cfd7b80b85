"""Assembling a monitor process: topics, store, ledger, pipeline, Kafka loop."""

from __future__ import annotations

from monitor.config import Config
from monitor.kafka_runner import KafkaMonitor, recover_ledger
from monitor.pipeline import build_pipeline
from monitor.store import AlertLedger, open_store
from monitor.topics import all_topics, ensure_topics


def start_monitor(
    bootstrap_servers: str,
    config: Config,
    *,
    exit_on_idle_s: float | None = None,
    create_topics: bool = True,
) -> KafkaMonitor:
    """A ready-to-run :class:`KafkaMonitor` configured by ``config``."""
    if create_topics:
        ensure_topics(bootstrap_servers, all_topics(config.monitor))
    ledger = AlertLedger(open_store(config.store_url))
    recover_ledger(ledger, bootstrap_servers, config.monitor.alerts_topic)
    return KafkaMonitor(
        bootstrap_servers, config.monitor, build_pipeline(config), ledger, exit_on_idle_s=exit_on_idle_s
    )
