"""``agentwatch respond --consume``: incidents and journals from the topics, out of ``run``'s batch.

With ``[response] worker = "alerts"``, ``run`` touches no incident or journal row: it
publishes alerts and, in the same batch, ``terminate_session``
(:mod:`agentwatch.respond.batch_containment`). This process does the bookkeeping, as its own
consumer group (``<group_id>-respond``) on the alerts topic *and* the input (audit) topics:

1. a poll's audit events go to the in-memory journal (the look-back an incident's evidence
   starts from) and, for sessions with an open incident, to the store's journal;
2. its alerts are taken only once the audit topics were read up to where they ended when the
   alerts were read — an alert is published after the events that raised it, so those
   events are in the journal by then;
3. one store transaction (:meth:`Responder.prepare`): alerts attached to incidents, the new
   incidents' look-back journal copied, playbook steps planned, journal rows appended; the
   incident's ``terminate_session`` step runs with the session's command id — the one ``run``
   sent — and the control topic is read for it: a command already there is recorded as
   delivered and not sent again; one that is not (``run``'s send failed for good, or the
   alert was re-read after ``run`` crashed before its command was acked) is sent now;
4. :meth:`Responder.confirm` marks those steps done, and only then are this group's offsets
   committed.

A crash anywhere before (4) re-reads the poll: attaching is idempotent per alert revision,
steps per key, journal rows per (incident, event), and a terminate step left ``running``
by the dead process is taken over (and its command looked up by id first) by any
``respond``'s worker. Evidence, postmortems, approvals and webhooks run on the same process's
worker thread, and on any number of plain ``respond`` processes (steps are claimed).

Why the journal comes from the audit topic rather than from ``run``: the journal is the
events of watched sessions, and ``run`` would have to write them (the store in its batch —
what this mode removes) or re-publish them (a second copy of attacked sessions' events
produced in the hot path). Reading the topic the events are already on costs ``run``
nothing; the decode happens here, on another core. On assignment each audit partition is
re-read from the look-back window (``offsets_for_times``, one hour) or its committed
offset, whichever is earlier, so a restarted ``respond`` has the look-back again.

Published alerts are redacted (:func:`~agentwatch.detect.alerts.public_alert`). The real
session id, agent and event ids come back from the journal: ``session_key`` is the SHA-256
of the real session id, and an event id matches when its redaction equals the published
one. An alert whose session is not in the journal keeps the published values (the session
id is the real one whenever it held no secret, which ``session_key`` confirms).

Limit: one ``respond --consume`` per group holds all partitions' look-back only if it is the
only member; several members split the topics by partition, and an alert and its session's
audit partition may land on different members (the alerts topic is keyed by the redacted
session id). Run one consuming ``respond`` and scale the step workers (plain ``respond``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from agentwatch import backoff
from agentwatch.config import MonitorSettings
from agentwatch.detect.alerts import Alert
from agentwatch.events.audit_event import AuditEvent
from agentwatch.formats import get_decoder
from agentwatch.ingest.kafka_runner import GROUP_TIMEOUTS
from agentwatch.ingest.kafka_security import KafkaSecurity, client_kwargs
from agentwatch.respond.control import identity_key
from agentwatch.respond.redaction import redact
from agentwatch.respond.responder import LOOKBACK_MS, Prepared, Responder, now_ms

log = logging.getLogger(__name__)

#: How long taking alerts may wait for the audit topics to be read up to them.
CATCH_UP_TIMEOUT_S = 30.0
#: Sessions whose real identity (from ``session_key``) is remembered.
KNOWN_SESSIONS = 200_000

_alert_decoder = msgspec.json.Decoder(Alert)


@dataclass(slots=True)
class ConsumeStats:
    alerts: int = 0
    events: int = 0
    batches: int = 0
    commands_sent: int = 0
    commands_already_sent: int = 0


@dataclass(slots=True, frozen=True)
class _Identity:
    session_id: str
    agent_id: str
    principal: str | None


class _Lookback(ConsumerRebalanceListener):
    """On assignment, audit partitions are paused until the loop positions them (a listener runs
    on kafka-python's IO thread and must not block): from the look-back window, or from the
    committed offset if that is earlier."""

    def __init__(self, owner: AlertConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        log.info("respond: partitions revoked: %s", sorted((tp.topic, tp.partition) for tp in revoked))
        self.owner._unpositioned.difference_update(revoked)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        audit = [tp for tp in assigned if tp.topic != self.owner.settings.alerts_topic]
        if audit and self.owner._consumer is not None:
            self.owner._consumer.pause(*audit)
            self.owner._unpositioned.update(audit)


class AlertConsumer:
    """Alerts and audit events → the responder's store transaction → offsets committed."""

    def __init__(
        self,
        bootstrap_servers: str,
        settings: MonitorSettings,
        responder: Responder,
        *,
        group_id: str | None = None,
        lookback_ms: int = LOOKBACK_MS,
        catch_up_timeout_s: float = CATCH_UP_TIMEOUT_S,
        security: KafkaSecurity | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.security = security
        self.settings = settings
        self.responder = responder
        self.group_id = group_id or f"{settings.group_id}-respond"
        self.lookback_ms = lookback_ms
        self.catch_up_timeout_s = catch_up_timeout_s
        self.stats = ConsumeStats()
        self._decoders = {topic: get_decoder(fmt) for topic, fmt in settings.inputs.items()}
        self._identities: OrderedDict[str, _Identity] = OrderedDict()  # session_key → real identity
        self._keys: dict[str, str] = {}  # session id → session_key (computed once per session)
        self._consumer: KafkaConsumer | None = None
        #: Audit partitions assigned but not yet positioned (paused meanwhile).
        self._unpositioned: set[TopicPartition] = set()
        #: Crash points for tests: after the store transaction (before delivery), after
        #: ``confirm`` (before the commit).
        self.after_prepare: Callable[[], None] | None = None
        self.after_confirm: Callable[[], None] | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def run(self, stop: threading.Event) -> ConsumeStats:
        consumer = self._consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1000,
            reconnect_backoff_max_ms=5000,
            **GROUP_TIMEOUTS,
            **client_kwargs(self.security),
        )
        try:
            consumer.subscribe([self.settings.alerts_topic, *self._decoders], listener=_Lookback(self))
            failures = 0
            while not stop.is_set():
                batch = consumer.poll(timeout_ms=200)
                if self._unpositioned:
                    batch = self._position(batch)
                if not batch:
                    continue
                try:
                    self._handle(batch, stop)
                    failures = 0
                except Exception as exc:  # noqa: BLE001 - the store or Kafka is away: logged, the poll re-read
                    failures += 1
                    delay = backoff.delay(failures, 0.5, 30.0)
                    log.error("respond: a poll failed (%s); re-read in %.1fs", exc, delay)
                    stop.wait(delay)
                    self._reread()
        finally:
            consumer.close(autocommit=False)
            self._consumer = None
        return self.stats

    def _position(self, batch):  # type: ignore[no-untyped-def]
        """Position the newly assigned audit partitions and resume them; records polled from
        them before that are dropped (they are read again from the new position)."""
        consumer = self._consumer
        assert consumer is not None
        todo = [tp for tp in self._unpositioned if tp in consumer.assignment()]
        self._unpositioned.clear()
        self._rewind(todo)
        consumer.resume(*todo)
        return {tp: records for tp, records in batch.items() if tp not in todo}

    def _reread(self) -> None:
        """After a failed poll: every partition back to its committed offset (audit: the look-back too)."""
        consumer = self._consumer
        assert consumer is not None
        audit = []
        for tp in consumer.assignment():
            if tp.topic == self.settings.alerts_topic:
                committed = consumer.committed(tp)
                if committed is None:
                    consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, committed)
            else:
                audit.append(tp)
        self._rewind(audit)

    def _rewind(self, audit: list[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is None or not audit:
            return
        since = consumer.offsets_for_times({tp: max(0, now_ms() - self.lookback_ms) for tp in audit})
        ends = consumer.end_offsets(audit)
        for tp in audit:
            committed = consumer.committed(tp)
            found = since.get(tp)
            window = found.offset if found is not None else ends[tp]  # nothing that recent: from the end
            consumer.seek(tp, window if committed is None else min(committed, window))

    # -- one poll -------------------------------------------------------------------------
    def _handle(self, batch: dict[TopicPartition, list], stop: threading.Event) -> None:  # type: ignore[type-arg]
        consumer = self._consumer
        assert consumer is not None
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        events: list[AuditEvent] = []
        observed: list[int] = []
        alert_records: list[Any] = []
        self._take(batch, offsets, events, observed, alert_records)
        if alert_records:
            self._catch_up(offsets, events, observed, stop)
        for event in events:
            self._remember(event)
        alerts = [a for a in (self._alert(r, events) for r in alert_records) if a is not None]
        # Incident times are run's, not ours: the alerts (and run's commands, in the same
        # delivery) went out when the first of these records was written.
        raised = min((r.timestamp for r in alert_records), default=None)
        prepared = self.responder.prepare(events, alerts, observed, now_ms=raised)
        if self.after_prepare is not None:
            self.after_prepare()
        all_sent_by_run = self._deliver(prepared)
        self.responder.confirm(prepared, now_ms=raised if all_sent_by_run else None)
        if self.after_confirm is not None:
            self.after_confirm()
        self._commit(offsets)
        self.stats.alerts += len(alerts)
        self.stats.events += len(events)
        self.stats.batches += 1

    def _take(self, batch, offsets, events, observed, alert_records) -> None:  # type: ignore[no-untyped-def]
        for tp, records in batch.items():
            if not records:
                continue
            offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
            if tp.topic == self.settings.alerts_topic:
                alert_records.extend(records)
                continue
            decoder = self._decoders[tp.topic]
            for record in records:
                if not record.value:
                    continue
                decoded = decoder(record.value, record.timestamp).events  # bad records: run's dead letters
                events.extend(decoded)
                observed.extend([record.timestamp] * len(decoded))

    def _catch_up(self, offsets, events, observed, stop: threading.Event) -> None:  # type: ignore[no-untyped-def]
        """Read the audit partitions up to where they end now: the events behind the alerts in hand."""
        consumer = self._consumer
        assert consumer is not None
        audit = [tp for tp in consumer.assignment() if tp.topic != self.settings.alerts_topic]
        if not audit:
            return
        target = consumer.end_offsets(audit)
        paused = [tp for tp in consumer.assignment() if tp.topic == self.settings.alerts_topic]
        consumer.pause(*paused)
        deadline = time.monotonic() + self.catch_up_timeout_s
        try:
            while any(consumer.position(tp) < target[tp] for tp in audit):
                if stop.is_set() or time.monotonic() > deadline:
                    log.warning("respond: the audit topics were not read up to the alerts in time; taking them anyway")
                    return
                more = consumer.poll(timeout_ms=200)
                if self._unpositioned:
                    more = self._position(more)
                self._take(more, offsets, events, observed, [])
        finally:
            consumer.resume(*paused)

    def _remember(self, event: AuditEvent) -> None:
        key = self._keys.get(event.session_id)
        if key is None:
            key = self._keys[event.session_id] = identity_key(event.session_id)
        identities = self._identities
        identities[key] = _Identity(event.session_id, event.agent_id, event.principal)
        identities.move_to_end(key)
        if len(identities) > KNOWN_SESSIONS:
            _key, gone = identities.popitem(last=False)
            self._keys.pop(gone.session_id, None)

    def _alert(self, record, polled: list[AuditEvent]) -> Alert | None:  # type: ignore[no-untyped-def]
        """The published (redacted) alert with its real identifiers restored from the journal."""
        try:
            public = _alert_decoder.decode(record.value or b"")
        except msgspec.DecodeError as exc:
            log.warning("%s[%d]@%d is not an alert (%s); skipped", record.topic, record.partition, record.offset, exc)
            return None
        known = self._identities.get(public.session_key)
        if known is None:
            if public.session_key and identity_key(public.session_id) != public.session_key:
                log.warning("alert %s: its session is not in the journal; its redacted ids are kept", public.alert_id)
            return public
        event_ids = set(public.event_ids) | {public.event_id}
        real = {}
        if any("[REDACTED" in e for e in event_ids):
            session = known.session_id
            candidates = [
                *self.responder.journal.session_events(session),
                *(e for e in polled if e.session_id == session),
            ]
            for event in candidates:
                shown = redact(event.event_id)
                if shown in event_ids:
                    real[shown] = event.event_id
        return msgspec.structs.replace(
            public,
            session_id=known.session_id,
            agent_id=known.agent_id,
            principal=known.principal,
            event_id=real.get(public.event_id, public.event_id),
            event_ids=[real.get(e, e) for e in public.event_ids],
        )

    def _deliver(self, prepared: Prepared) -> bool:
        """Send the urgent steps' commands that ``run`` did not already put on their topic;
        whether ``run`` had sent them all."""
        if not prepared.messages:
            return True
        responder = self.responder
        find = getattr(responder.send, "find_delivered", None)
        wanted: dict[str, set[str]] = {}
        for message in prepared.messages:
            if message.dedup_id is not None:
                wanted.setdefault(message.topic, set()).add(message.dedup_id)
        found = {(topic, d) for topic, ids in wanted.items() for d in find(topic, ids)} if find is not None else set()
        for item in prepared.inline:
            sent = sorted(m.dedup_id for m in item.outcome.messages if (m.topic, m.dedup_id) in found and m.dedup_id)
            if sent:
                item.outcome.result["already_delivered"] = sent
                item.outcome.summary += "; already sent by run in its batch, not sent again"
        rest = [m for m in prepared.messages if (m.topic, m.dedup_id) not in found]
        self.stats.commands_already_sent += len(prepared.messages) - len(rest)
        if rest:
            if responder.send is None:
                raise RuntimeError("a terminate_session step must be sent but respond has no Kafka sender")
            responder.send(rest)
            self.stats.commands_sent += len(rest)
        return not rest

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        consumer = self._consumer
        assert consumer is not None
        for attempt in range(1, 6):
            try:
                consumer.commit(offsets)
                return
            except CommitFailedError as exc:  # rebalanced: the new owner re-reads; every effect is idempotent
                log.warning("respond: commit refused after a rebalance (%s); the poll will be re-read", exc)
                return
            except KafkaError as exc:
                delay = backoff.delay(attempt, 0.25, 10.0)
                log.warning("respond: commit failed (%s); retrying in %.1fs", exc, delay)
                time.sleep(delay)
        log.error("respond: commit failed 5 times; the poll will be re-read after a restart (effects are idempotent)")
