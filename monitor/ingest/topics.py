"""The topics agentwatch reads and writes, and creating them where they are missing."""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from agentwatch.config import MonitorSettings
from agentwatch.ingest.kafka_security import KafkaSecurity, client_kwargs

log = logging.getLogger(__name__)

#: How long start-up waits for a first broker before saying it cannot reach Kafka (kafka-python: 30 s).
BOOTSTRAP_TIMEOUT_MS = 10_000


def all_topics(settings: MonitorSettings) -> list[str]:
    """Input topics first, then the alert, dead-letter, control and audit-anchor topics."""
    topics = [*settings.inputs, settings.alerts_topic, settings.dlq_topic, settings.control_topic]
    return topics + ([settings.audit_anchor_topic] if settings.audit_anchor_s > 0 else [])


def ensure_topics(
    bootstrap_servers: str, topics: list[str], partitions: int = 4, security: KafkaSecurity | None = None
) -> list[str]:
    """Create the ``topics`` that do not exist yet; return the ones created."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=10_000,
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        **client_kwargs(security),
    )
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        created: list[str] = []
        for topic in missing:
            try:
                admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
                created.append(topic)
            except TopicAlreadyExistsError:
                log.info("topic %s was created concurrently", topic)
        return created
    finally:
        admin.close()
