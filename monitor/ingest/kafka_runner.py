"""``agentwatch run``: the pipeline against Kafka, at-least-once, effects idempotent.

One poll → one batch. For each batch, in this order:

1. every record is decoded and processed by the shared :class:`~agentwatch.detect.pipeline.Pipeline`;
2. alerts not yet in the ledger and dead letters are produced, and the producer is
   flushed — failed sends are retried with backoff until the broker takes them;
3. the published alert revisions are written to the ledger (the store);
4. the state of every session the batch touched and each partition's next offset are
   written to the store in one transaction (:mod:`agentwatch.ingest.state_checkpoint`);
5. only then are the batch's offsets committed to Kafka.

A crash anywhere before (4) means the batch is consumed again: its effects are
re-derived, and the ledger keeps a re-processed alert from being published twice.
A crash after (4) resumes from the stored position, with the stored sessions: session
state never counts an event twice or never. When a partition is assigned (start-up or
a rebalance), the ledger first catches up with alerts its previous owner published,
then its sessions are loaded and the consumer seeks to the stored position. The next
batch is polled only after (5), so a rebalance never revokes a partition with
processed-but-unsaved records. When the broker goes away, kafka-python
reconnects with backoff; this loop retries its own delivery and commit steps and
carries on when the broker returns.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError, MessageSizeTooLargeError
from kafka.structs import OffsetAndMetadata

from agentwatch import backoff
from agentwatch.best_effort import best_effort
from agentwatch.config import MonitorSettings
from agentwatch.detect.alerts import Alert, public_alert
from agentwatch.detect.pipeline import IngestResult, Pipeline
from agentwatch.detect.policy import SEVERITY_RANK
from agentwatch.errors import DECODE_REASONS, DecodeError
from agentwatch.events import dead_letter
from agentwatch.formats import get_decoder
from agentwatch.ingest.kafka_security import KafkaSecurity, client_kwargs
from agentwatch.ingest.state_checkpoint import DurableState
from agentwatch.observe import metrics
from agentwatch.respond.action_spec import OutgoingMessage
from agentwatch.respond.audit_anchor import AuditAnchor
from agentwatch.respond.batch_containment import BatchContainment
from agentwatch.respond.control_signing import ControlSigner
from agentwatch.respond.responder import Responder
from agentwatch.store import AlertLedger

log = logging.getLogger(__name__)

#: kafka-python's defaults make a group join take ~23 s on Tansu; these bring it to ~3 s
#: and are sane for Apache Kafka too.
GROUP_TIMEOUTS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}
MAX_BACKOFF_S = 30.0
#: How often the loop looks at whether its consumer still reaches Kafka.
CONNECTION_CHECK_EVERY_S = 1.0

_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class RunStats:
    """Counters a progress display or a test reads while ``run`` goes."""

    messages: int = 0
    events: int = 0
    alerts_published: int = 0
    alerts_suppressed: int = 0
    dead_letters: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)
    last_record: float = field(default_factory=time.monotonic)
    assigned: bool = False


class _Rebalance(ConsumerRebalanceListener):
    """Runs inside ``poll``, before any record of a newly assigned partition is fetched.

    On assignment: the ledger catches up with alerts published by the partition's previous
    owner (:meth:`KafkaMonitor.recover_alerts`), then the partition's sessions are loaded
    and the consumer seeks to the stored position (:mod:`agentwatch.ingest.state_checkpoint`). An
    error here is kept and re-raised by ``run``: processing a partition without its state
    would count events twice or never.
    """

    def __init__(self, monitor: KafkaMonitor) -> None:
        self.monitor = monitor
        self.stats = monitor.stats

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # The previous batch was checkpointed and committed before this poll began.
        log.info("partitions revoked: %s", sorted((tp.topic, tp.partition) for tp in revoked))
        if self.monitor.state is not None:
            self.monitor.state.revoked(revoked)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.stats.assigned = True
        self.stats.last_record = time.monotonic()
        log.info("partitions assigned: %s", sorted((tp.topic, tp.partition) for tp in assigned))
        monitor = self.monitor
        try:
            monitor.recover_alerts()
            if monitor.state is not None and assigned:
                monitor.state.assigned(monitor._consumer, assigned)  # type: ignore[arg-type]
        except Exception as exc:
            monitor._fatal = exc  # re-raised by run(), whatever poll does with it
            raise


class KafkaMonitor:
    """The consume → detect → publish → commit loop.

    Parameters
    ----------
    bootstrap_servers
        ``HOST:PORT[,HOST:PORT…]`` of the Kafka cluster.
    settings
        Topics, group id and batching (``[monitor]`` in the config file).
    pipeline
        The same pipeline ``replay`` uses.
    ledger
        Published alert revisions; makes re-processing idempotent.
    exit_on_idle_s
        Stop after this many seconds without a record (after the first assignment).
    on_batch
        Called after each committed batch with the running :class:`RunStats`.
    responder
        Incidents and playbooks; ``None`` runs detection only.
    state
        Durable session and learned state (:mod:`agentwatch.ingest.state_checkpoint`); ``None``
        keeps state in memory only (a restart starts sessions over).
    security
        TLS/SASL for the consumer and producer (:mod:`agentwatch.ingest.kafka_security`); ``None``: plaintext.
    signer
        Signs the control commands it publishes (:mod:`agentwatch.respond.control_signing`); ``None``: unsigned.
    anchor
        Publishes the audit chain's head on a timer (:mod:`agentwatch.respond.audit_anchor`);
        best effort, and only while Kafka is reachable.
    containment
        ``[response] worker = "alerts"``: no responder in this process; the batch publishes
        ``terminate_session`` for the alerts a playbook answers with it
        (:mod:`agentwatch.respond.batch_containment`) and ``agentwatch respond`` keeps the
        incidents from the alerts topic.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        settings: MonitorSettings,
        pipeline: Pipeline,
        ledger: AlertLedger,
        *,
        exit_on_idle_s: float | None = None,
        on_batch: Callable[[RunStats], None] | None = None,
        responder: Responder | None = None,
        state: DurableState | None = None,
        security: KafkaSecurity | None = None,
        signer: ControlSigner | None = None,
        anchor: AuditAnchor | None = None,
        containment: BatchContainment | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.security = security
        self.signer = signer
        self.anchor = anchor
        self.settings = settings
        self.pipeline = pipeline
        self.ledger = ledger
        self.exit_on_idle_s = exit_on_idle_s
        self.on_batch = on_batch
        self.responder = responder
        self.state = state
        self.containment = containment
        self._fatal: BaseException | None = None
        self.stats = RunStats()
        self.stop_event = threading.Event()
        self._decoders = {topic: (fmt, get_decoder(fmt)) for topic, fmt in settings.inputs.items()}
        #: per input topic, its (events, messages) metric children: created once, not per record
        self._counters = {
            topic: (metrics.EVENTS.labels(topic, fmt), metrics.MESSAGES.labels(topic, fmt))
            for topic, fmt in settings.inputs.items()  # zero-valued series from the start
        }
        for fmt in settings.inputs.values():
            for reason in sorted(DECODE_REASONS):
                metrics.DECODE_FAILURES.labels(fmt, reason)
        for reason in sorted(DECODE_REASONS):
            metrics.DLQ_WRITES.labels(reason)
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None

    # -- lifecycle --------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT finish the current batch, commit it and stop."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())

    def run(self) -> RunStats:
        self._consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.max_poll_records,
            reconnect_backoff_max_ms=5000,
            **GROUP_TIMEOUTS,
            **client_kwargs(self.security),
        )
        if self.state is not None:
            self.state.start()
        self._consumer.subscribe(list(self._decoders), listener=_Rebalance(self))
        self._producer = self._new_producer()
        if self.responder is not None:
            self.responder.start()
        try:
            while not self.stop_event.is_set():
                batch = self._consumer.poll(timeout_ms=200)
                self._watch_connection()
                if self._fatal is not None:  # the rebalance listener failed: never process without state
                    raise self._fatal
                if batch:
                    self._handle(batch)
                elif self._idle_expired():
                    break
                if self.state is not None:
                    self.state.maybe_sync()
                if self.anchor is not None and self._lost_at is None:
                    self.anchor.maybe_anchor(self._send_anchor)
            if self.state is not None:
                self.state.close()  # a clean stop: the last learned-state sync
            if self.anchor is not None and self._lost_at is None:  # the head as this process leaves it
                best_effort("audit_anchor", lambda: self.anchor.anchor(self._send_anchor), default=None)  # type: ignore[union-attr]
        finally:
            self._close()
        return self.stats

    def recover_alerts(self) -> int:
        """Catch the ledger up with alerts published by other monitors — the previous owner of
        a partition handed over, killed after its producer flushed but before its ledger
        write: re-read the ledger from the store, then the alerts topic past its positions."""
        self.ledger.reload()
        return recover_ledger(self.ledger, self.bootstrap_servers, self.settings.alerts_topic, security=self.security)

    def _new_producer(self) -> KafkaProducer:
        # Idempotent production is off on purpose: a broker that comes back without the
        # producer's state (a restarted in-memory broker, a failed-over cluster) makes an
        # idempotent kafka-python producer fail fatally for good. Our effects are
        # idempotent by id (alert ids, the ledger, command ids), so a retried send is safe.
        return KafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            acks="all",
            linger_ms=2,
            reconnect_backoff_max_ms=5000,
            max_block_ms=10_000,
            enable_idempotence=False,
            **client_kwargs(self.security),
        )

    def _send_anchor(self, topic: str, key: bytes, value: bytes) -> object:
        """Hand an audit anchor to the producer (flushed with the next batch or at close)."""
        if self._producer is None:
            raise RuntimeError("no Kafka producer at the moment")
        return self._producer.send(topic, key=key, value=value)

    def _idle_expired(self) -> bool:
        if self.exit_on_idle_s is None or not self.stats.assigned:
            return False
        return time.monotonic() - self.stats.last_record >= self.exit_on_idle_s

    def _close(self) -> None:
        """Stop everything; a step that raises is logged and the next one still runs."""
        consumer, producer, self._producer = self._consumer, self._producer, None
        if self.responder is not None:
            best_effort("responder_stop", self.responder.stop, default=None)
        if consumer is not None:
            best_effort("consumer_close", lambda: consumer.close(autocommit=False), default=None)
        if producer is not None:
            best_effort("producer_close", lambda: producer.close(timeout=5), default=None)

    # -- broker connection --------------------------------------------------------------
    #: When the consumer lost Kafka (monotonic seconds), None while connected.
    _lost_at: float | None = None
    _next_watch: float = 0.0
    _reachable_streak: int = 0

    def _watch_connection(self) -> None:
        """Log losing Kafka and getting it back once each (not per retry); count each return.

        kafka-python reconnects by itself and, with its loggers muted as the CLI runs it,
        silently. The consumer's own metrics say whether it holds any broker connection
        (``connection-count``) and when it last heartbeated the group coordinator: Kafka
        is back once a connection is held on two checks in a row and a heartbeat went
        out since the loss (a connection attempt in progress is not a return).
        """
        now = time.monotonic()
        if now < self._next_watch or self._consumer is None:
            return
        self._next_watch = now + CONNECTION_CHECK_EVERY_S
        reachable = best_effort("kafka_connection_state", lambda: self._reachable(now), default=None)
        if reachable is None:
            return
        self._reachable_streak = self._reachable_streak + 1 if reachable else 0
        if self._lost_at is None and not reachable:
            self._lost_at = now
            metrics.KAFKA_CONNECTED.set(0)
            log.error(
                "lost the connection to Kafka (%s); reconnecting with backoff, nothing is consumed meanwhile",
                self.bootstrap_servers,
            )
        elif self._lost_at is None:
            metrics.KAFKA_CONNECTED.set(1)
        elif self._reachable_streak >= 2:
            log.warning("connection to Kafka restored after %.0fs (%s)", now - self._lost_at, self.bootstrap_servers)
            self._lost_at = None
            metrics.KAFKA_RECONNECTS.inc()
            metrics.KAFKA_CONNECTED.set(1)

    def _reachable(self, now: float) -> bool | None:
        consumer = self._consumer
        assert consumer is not None
        figures = consumer.metrics()
        count = figures.get("consumer-metrics", {}).get("connection-count")
        if count is None:
            return None  # this kafka-python does not say: report nothing rather than guess
        if not count:
            return False
        if self._lost_at is None:
            return True
        since = figures.get("consumer-coordinator-metrics", {}).get("last-heartbeat-seconds-ago")
        return since is not None and since < now - self._lost_at

    # -- one batch --------------------------------------------------------------------
    def _handle(self, batch: dict[TopicPartition, list]) -> None:  # type: ignore[type-arg]
        started = time.perf_counter()
        outgoing: list[OutgoingMessage] = []
        ledger_entries: dict[str, tuple[int, int]] = {}
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        published: list[Alert] = []
        events = []
        observed: list[int] = []
        stats = self.stats
        for tp, records in batch.items():
            fmt, decoder = self._decoders[tp.topic]
            events_counter, messages_counter = self._counters[tp.topic]
            decoded = 0
            for record in records:
                raw = record.value if record.value is not None else b""
                if raw:
                    result = self.pipeline.ingest(raw, decoder, record.timestamp)
                else:
                    result = IngestResult(errors=[DecodeError("invalid_json", "empty message (tombstone?)")])
                if result.errors:  # one dead letter per message, its bad records summarised
                    origin = dead_letter.Origin(
                        topic=tp.topic, partition=tp.partition, offset=record.offset, timestamp_ms=record.timestamp
                    )
                    letter = dead_letter.dead_letter(raw, result.errors, fmt, origin, accepted=len(result.events))
                    for reason, count in letter.reasons.items():
                        metrics.DECODE_FAILURES.labels(fmt, reason).inc(count)
                    metrics.DLQ_WRITES.labels(letter.reason).inc()
                    outgoing.append(OutgoingMessage(self.settings.dlq_topic, record.key, dead_letter.encode(letter)))
                    stats.dead_letters += 1
                for alert in result.alerts:
                    self._gate(alert, ledger_entries, outgoing, published)
                events.extend(result.events)
                if self.state is not None and result.events:
                    self.state.note(tp.partition, [e.session_id for e in result.events])
                observed.extend([record.timestamp] * len(result.events))
                decoded += len(result.events)
            stats.events += decoded
            events_counter.inc(decoded)
            messages_counter.inc(len(records))
            stats.messages += len(records)
            offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
        for alert in self.pipeline.expire():
            self._gate(alert, ledger_entries, outgoing, published)
        if self.containment is not None and published:
            outgoing.extend(self.containment.commands(published, int(time.time() * 1000)))
        prepared = self.responder.prepare(events, published, observed) if self.responder is not None else None
        if prepared is not None:
            outgoing.extend(prepared.messages)
        delivered = self._deliver(outgoing)
        if delivered is None:
            return  # stopping with undelivered effects: do not commit; the batch is re-read
        self.ledger.record(ledger_entries, self.settings.alerts_topic, delivered)
        if prepared is not None:
            self.responder.confirm(prepared)  # type: ignore[union-attr]
        if self.state is not None and not self.state.checkpoint({tp: om.offset for tp, om in offsets.items()}):
            return  # fenced: these partitions have a new owner, which re-reads from the stored position
        self._commit(offsets)
        self._report_lag(offsets)
        stats.batches += 1
        stats.last_record = time.monotonic()
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        if self.on_batch is not None:
            self.on_batch(stats)

    def _gate(
        self, alert: Alert, entries: dict[str, tuple[int, int]], outgoing: list[OutgoingMessage], published: list[Alert]
    ) -> None:
        """Queue an alert for publishing unless this severity was already published."""
        rank = SEVERITY_RANK[alert.severity]
        pending = entries.get(alert.alert_id)
        if pending is not None:
            revision = pending[0] + 1 if rank > pending[1] else None
        else:
            revision = self.ledger.next_revision(alert.alert_id, rank)
        if revision is None:
            self.stats.alerts_suppressed += 1
            return
        alert = msgspec.structs.replace(alert, revision=revision)
        entries[alert.alert_id] = (revision, rank)
        self.stats.alerts_published += 1
        published.append(alert)
        public = public_alert(alert)  # the responder gets the real ids; the topic gets them redacted
        outgoing.append(
            OutgoingMessage(self.settings.alerts_topic, public.session_id.encode(), _encoder.encode(public))
        )

    def _deliver(self, outgoing: list[OutgoingMessage]) -> dict[int, int] | None:
        """Produce everything and wait for acks, retrying until done or stopping.

        Returns, per partition of the alerts topic, the offset after our last alert
        there (for the ledger); ``None`` if stopping before everything was delivered.
        """
        pending = outgoing
        attempt = 0
        positions: dict[int, int] = {}
        while pending:
            futures, unsent = self._send(pending)
            for message, future in futures:
                if message.topic == self.settings.alerts_topic and future.is_done and future.succeeded():
                    meta = future.value
                    positions[meta.partition] = max(positions.get(meta.partition, 0), meta.offset + 1)
            pending = [m for m, f in futures if not (f.is_done and f.succeeded())] + unsent
            if pending:
                attempt += 1
                if self.stop_event.is_set() and attempt > 3:
                    log.error("stopping with %d undelivered messages; their batch will be re-read", len(pending))
                    return None
                self._backoff(attempt, f"{len(pending)} messages not yet delivered")
                if attempt % 3 == 0 or self._producer is None:
                    self._replace_producer(attempt)
        return positions

    def _send(self, pending: list[OutgoingMessage]) -> tuple[list[tuple[OutgoingMessage, Any]], list[OutgoingMessage]]:
        """Send and flush once: the futures, and the messages not handed to the producer at all."""
        producer = self._producer
        if producer is None:
            return [], pending
        futures: list[tuple[OutgoingMessage, Any]] = []
        handed = 0
        try:
            for message in pending:
                try:
                    # control commands are signed per attempt: a gateway's freshness window counts from the send
                    value = message.value if self.signer is None else self.signer.sign_messages([message])[0].value
                    futures.append((message, producer.send(message.topic, value=value, key=message.key)))
                except MessageSizeTooLargeError as exc:  # never deliverable: retrying it would wedge the loop
                    metrics.BEST_EFFORT_FAILURES.labels("deliver_oversized").inc()
                    log.error(
                        "dropped an undeliverable %d-byte message for %s: %s",
                        len(message.value or b""),
                        message.topic,
                        exc,
                    )
                handed += 1
            producer.flush(timeout=15)
        except Exception as exc:  # noqa: BLE001 - KafkaError or a broken producer: retried, replaced every 3rd time
            log.warning("delivery of %d messages failed: %s", len(pending), exc)
        return futures, pending[handed:]

    def _replace_producer(self, attempt: int) -> None:
        """Close a producer that keeps failing (a wedged one does not recover) and make a new one.

        Neither step may raise out of delivery: a close that fails is logged and the old
        producer dropped; a producer that cannot be built yet is tried again next attempt.
        """
        old, self._producer = self._producer, None
        if old is not None:
            log.warning("replacing the Kafka producer after %d failed delivery attempts", attempt)
            best_effort("producer_close", lambda: old.close(timeout=1), default=None)
        self._producer = best_effort("producer_create", self._new_producer, default=None)

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        consumer = self._consumer
        assert consumer is not None
        attempt = 0
        while True:
            try:
                consumer.commit(offsets)
                return
            except CommitFailedError as exc:
                # The group rebalanced under us: the new owner re-reads from the last
                # commit, and the ledger suppresses alerts we already published.
                log.warning("commit refused after a rebalance (%s); the batch will be re-read", exc)
                return
            except KafkaError as exc:
                attempt += 1
                if self.stop_event.is_set() and attempt > 3:
                    log.error("stopping without committing (%s); the batch will be re-read", exc)
                    return
                self._backoff(attempt, f"commit failed: {exc}")

    def _backoff(self, attempt: int, why: str) -> None:
        delay = backoff.delay(attempt, 0.25, MAX_BACKOFF_S)
        log.warning("%s; retrying in %.1fs (attempt %d)", why, delay, attempt)
        self._watch_connection()  # an outage met while delivering or committing is reported too
        self.stop_event.wait(delay)

    def _report_lag(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        consumer = self._consumer
        assert consumer is not None

        def report() -> None:
            for tp, committed in offsets.items():
                high = consumer.highwater(tp)
                if high is not None:
                    metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, high - committed.offset))

        best_effort("consumer_lag", report, default=None)  # a dashboard figure: never worth the loop


def recover_ledger(
    ledger: AlertLedger,
    bootstrap_servers: str,
    alerts_topic: str,
    timeout_s: float = 60.0,
    security: KafkaSecurity | None = None,
) -> int:
    """Catch the ledger up with alerts published after its last record.

    A monitor killed after its producer flushed but before the ledger was written has
    published alerts the ledger does not know. They sit in the alerts topic past the
    ledger's recorded positions; reading that tail at start-up closes the window, so a
    re-processed batch never publishes them twice. Returns how many were recovered.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, **client_kwargs(security))
    try:
        partitions = consumer.partitions_for_topic(alerts_topic) or set()
        tps = [TopicPartition(alerts_topic, p) for p in sorted(partitions)]
        if not tps:
            return 0
        consumer.assign(tps)
        known = ledger.positions(alerts_topic)
        for tp in tps:
            consumer.seek(tp, known.get(tp.partition, 0))
        end = consumer.end_offsets(tps)
        seen: dict[str, tuple[int, int]] = {}
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading the tail of {alerts_topic} took over {timeout_s}s")
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    try:
                        alert = msgspec.json.decode(record.value, type=_LedgerView)
                    except msgspec.DecodeError as exc:
                        log.warning(
                            "%s[%d]@%d is not an alert (%s); skipped in ledger recovery",
                            alerts_topic,
                            record.partition,
                            record.offset,
                            exc,
                        )
                        continue
                    rank = SEVERITY_RANK.get(alert.severity, 0)
                    if alert.alert_id not in seen or seen[alert.alert_id][0] < alert.revision:
                        seen[alert.alert_id] = (alert.revision, rank)
        fresh = ledger.merge(seen)
        ledger.record(fresh, alerts_topic, {tp.partition: end[tp] for tp in tps})
        return len(fresh)
    finally:
        consumer.close()


class _LedgerView(msgspec.Struct):
    alert_id: str
    revision: int
    severity: str
