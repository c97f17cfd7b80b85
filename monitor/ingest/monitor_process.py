"""Assembling a monitor process: topics, store, ledger, pipeline, responder, Kafka loop."""

from __future__ import annotations

import threading
from pathlib import Path

from kafka import KafkaProducer

from agentwatch.config import Config
from agentwatch.detect.pipeline import build_pipeline
from agentwatch.ingest.kafka_runner import KafkaMonitor, recover_ledger
from agentwatch.ingest.topics import all_topics, ensure_topics
from agentwatch.respond.action_spec import OutgoingMessage
from agentwatch.respond.journal import EventJournal
from agentwatch.respond.playbook_engine import load_playbooks
from agentwatch.respond.responder import Responder
from agentwatch.store import AlertLedger, open_store


def start_monitor(
    bootstrap_servers: str,
    config: Config,
    *,
    exit_on_idle_s: float | None = None,
    create_topics: bool = True,
    respond: bool | None = None,
) -> KafkaMonitor:
    """A ready-to-run :class:`KafkaMonitor` configured by ``config``.

    ``respond`` overrides ``[monitor] respond`` (incidents and playbooks in this process).
    """
    settings = config.monitor
    if create_topics:
        ensure_topics(bootstrap_servers, all_topics(settings))
    engine = open_store(config.store_url)
    ledger = AlertLedger(engine)
    recover_ledger(ledger, bootstrap_servers, settings.alerts_topic)
    responder = None
    if config.monitor.respond if respond is None else respond:
        playbooks = load_playbooks(Path(settings.playbooks_dir) if settings.playbooks_dir else None)
        responder = Responder(
            engine, playbooks, config.data_dir.resolve(), settings.control_topic, config.incidents,
            EventJournal(settings.journal_events), send=KafkaSender(bootstrap_servers),
        )
    return KafkaMonitor(bootstrap_servers, settings, build_pipeline(config), ledger,
                        exit_on_idle_s=exit_on_idle_s, responder=responder)


class KafkaSender:
    """Delivery for worker-thread actions: its own producer; raises unless all are acked."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()  # the responder's and the approvals' threads share it

    def __call__(self, messages: list[OutgoingMessage]) -> None:
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all",
                                               max_block_ms=10_000, enable_idempotence=False)
            producer = self._producer
        futures = [producer.send(m.topic, key=m.key, value=m.value) for m in messages]
        producer.flush(timeout=15)
        for future in futures:
            future.get(timeout=0)  # raises the delivery error, failing (and retrying) the step

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
