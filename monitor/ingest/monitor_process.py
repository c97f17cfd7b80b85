"""Assembling a monitor process: topics, store, ledger, pipeline, responder, Kafka loop."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import msgspec
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from agentwatch.config import Config, WorkerMode
from agentwatch.detect.pipeline import build_pipeline
from agentwatch.ingest.kafka_runner import KafkaMonitor
from agentwatch.ingest.kafka_security import KafkaSecurity, client_kwargs, resolve_security
from agentwatch.ingest.state_checkpoint import DurableState
from agentwatch.ingest.topics import all_topics, ensure_topics
from agentwatch.respond.action_spec import OutgoingMessage
from agentwatch.respond.audit_anchor import AuditAnchor
from agentwatch.respond.batch_containment import BatchContainment
from agentwatch.respond.control_signing import ControlSigner, sign_outgoing
from agentwatch.respond.playbook_engine import load_playbooks
from agentwatch.respond.worker_process import build_responder
from agentwatch.store import AlertLedger, open_store

log = logging.getLogger(__name__)


def start_monitor(
    bootstrap_servers: str,
    config: Config,
    *,
    exit_on_idle_s: float | None = None,
    create_topics: bool = True,
    respond: bool | None = None,
    worker: WorkerMode | None = None,
    security: KafkaSecurity | None = None,
    signer: ControlSigner | None = None,
) -> KafkaMonitor:
    """A ready-to-run :class:`KafkaMonitor` configured by ``config``.

    ``respond`` overrides ``[monitor] respond`` (incidents and playbooks in this process);
    ``worker`` overrides ``[response] worker`` (``external``: no worker thread here, the
    non-urgent steps are left to ``agentwatch respond``; ``alerts``: no responder at all — the
    batch publishes ``terminate_session`` itself and ``agentwatch respond`` keeps incidents).
    ``security`` defaults to ``[kafka]`` and ``AGENTWATCH_KAFKA_*``
    (:func:`~agentwatch.ingest.kafka_security.resolve_security`); ``signer`` to
    ``AGENTWATCH_CONTROL_SIGNING_KEY`` (:mod:`agentwatch.respond.control_signing`).
    """
    settings = config.monitor
    pipeline = build_pipeline(config)  # configuration errors first, before Kafka is asked anything
    if security is None:
        security = resolve_security(config.kafka)
    if signer is None:
        signer = ControlSigner.from_env(settings.control_topic)
    log.info(
        "kafka %s: %s; control commands %s",
        bootstrap_servers,
        security.describe(),  # protocol, mechanism, user: never a secret
        f"signed (key {signer.key_id})" if signer else "unsigned",
    )
    engine = open_store(config.store_url)
    ledger = AlertLedger(engine)  # caught up with the alerts topic when partitions are assigned
    responder = None
    containment = None
    if config.monitor.respond if respond is None else respond:
        mode = worker or config.response.worker
        if mode == "alerts":
            playbooks = load_playbooks(Path(settings.playbooks_dir) if settings.playbooks_dir else None)
            containment = BatchContainment(playbooks, settings.control_topic, config.incidents)
        else:
            responder = build_responder(
                config,
                KafkaSender(bootstrap_servers, security, signer),
                external_worker=mode == "external",
                engine=engine,
            )
    if create_topics:
        ensure_topics(bootstrap_servers, all_topics(settings), security=security)
    state = (
        DurableState(engine, settings.group_id, pipeline, sync_every_s=settings.state_sync_s)
        if settings.durable_state
        else None
    )
    anchor = None
    if settings.audit_anchor_s > 0:
        anchor = AuditAnchor(engine, settings.audit_anchor_topic, settings.audit_anchor_s)
    return KafkaMonitor(
        bootstrap_servers,
        settings,
        pipeline,
        ledger,
        exit_on_idle_s=exit_on_idle_s,
        responder=responder,
        state=state,
        security=security,
        signer=signer,
        anchor=anchor,
        containment=containment,
    )


class KafkaSender:
    """Delivery for worker-thread actions: its own producer; raises unless all are acked."""

    def __init__(
        self, bootstrap_servers: str, security: KafkaSecurity | None = None, signer: ControlSigner | None = None
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.security = security
        self.signer = signer
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()  # the responder's and the approvals' threads share it

    def __call__(self, messages: list[OutgoingMessage]) -> None:
        messages = sign_outgoing(self.signer, messages)  # signed at send time: a retry is signed afresh
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap_servers,
                    acks="all",
                    max_block_ms=10_000,
                    enable_idempotence=False,
                    **client_kwargs(self.security),
                )
            producer = self._producer
        futures = [producer.send(m.topic, key=m.key, value=m.value) for m in messages]
        producer.flush(timeout=15)
        for future in futures:
            future.get(timeout=0)  # raises the delivery error, failing (and retrying) the step

    def find_delivered(self, topic: str, ids: set[str], timeout_s: float = 30.0) -> set[str]:
        """Which of ``ids`` (control-command ids) are already on ``topic``.

        Asked only when a step runs again after an attempt that may have delivered (its
        monitor died between delivery and confirmation): the whole topic is read — it
        holds a few commands per incident, within its retention — so nothing delivered
        is missed. Raises (and the step is retried) if the end cannot be reached.
        """
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, **client_kwargs(self.security)
        )
        try:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            if not tps:
                return set()
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            end = consumer.end_offsets(tps)
            found: set[str] = set()
            deadline = time.monotonic() + timeout_s
            while any(consumer.position(tp) < end[tp] for tp in tps):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {topic} for delivered commands took over {timeout_s}s")
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        try:
                            command_id = _command_id.decode(record.value or b"null").command_id
                        except msgspec.DecodeError:
                            log.debug("%s[%d]@%d is not a control command", topic, record.partition, record.offset)
                            continue
                        if command_id in ids:
                            found.add(command_id)
            return found
        finally:
            consumer.close()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


class _CommandId(msgspec.Struct):
    command_id: str


_command_id = msgspec.json.Decoder(_CommandId)
