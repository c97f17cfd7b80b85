"""A reference agent gateway: obeys ``agent.control`` and really stops sessions.

Real deployments put this logic in their agent gateway or runtime. Here it serves the
demo, the tests and the benchmark, which need *true* time-to-contain: the wall time
from the first malicious event being produced to the session being stopped.

:class:`ReferenceGateway` reads every partition of the control topic (no consumer
group, so no join delay), de-duplicates commands by ``command_id`` and remembers when
each session was stopped. It matches a command to a session by ``session_key`` — the
SHA-256 of the real session id — never by the published ``session_id``, which is
redacted when the agent put a secret in it (:func:`agentwatch.respond.control.public_command`).
:func:`drive_fleet` plays a fleet's events through it: an event of a stopped session is
never produced — the agent was stopped.

With a :class:`~agentwatch.respond.control_signing.ControlVerifier` (the same
``AGENTWATCH_CONTROL_SIGNING_KEY`` the monitor signs with), the gateway obeys only commands
signed by agentwatch, recently: unsigned, forged, unknown-key and stale commands are counted
in :attr:`ReferenceGateway.rejected` by reason and ignored — what a real gateway should do.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from agentwatch.ingest.kafka_security import KafkaSecurity, client_kwargs
from agentwatch.respond.control import ControlCommand, identity_key
from agentwatch.respond.control_signing import ControlVerifier, RejectedCommand

log = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class Stop:
    command: ControlCommand
    received_ms: int


class ReferenceGateway:
    """Consumes control commands in a background thread; call :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        bootstrap_servers: str,
        control_topic: str,
        *,
        security: KafkaSecurity | None = None,
        verifier: ControlVerifier | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.control_topic = control_topic
        self.security = security
        #: ``None``: every well-formed command is obeyed (no key configured).
        self.verifier = verifier
        #: Commands refused by the verifier, by :data:`~agentwatch.respond.control_signing.REJECT_REASONS`.
        self.rejected: collections.Counter[str] = collections.Counter()
        #: By session_key (SHA-256 of the session id, hex): see :meth:`stop_for`.
        self.stopped: dict[str, Stop] = {}
        self.duplicate_commands = 0
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ReferenceGateway:
        self._thread = threading.Thread(target=self._consume, name="reference-gateway", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError(f"gateway could not attach to {self.control_topic}")
        return self

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def is_stopped(self, session_id: str) -> bool:
        return identity_key(session_id) in self.stopped

    def stop_for(self, session_id: str) -> Stop | None:
        """How ``session_id`` (the real one, as the agent runtime knows it) was stopped, if it was."""
        return self.stopped.get(identity_key(session_id))

    def wait_for(self, session_id: str, timeout_s: float) -> Stop | None:
        key = identity_key(session_id)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stop = self.stopped.get(key)
            if stop is not None:
                return stop
            time.sleep(0.01)
        return None

    def _consume(self) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, **client_kwargs(self.security)
        )
        try:
            partitions = None
            while not partitions and not self._halt.is_set():
                partitions = consumer.partitions_for_topic(self.control_topic)
                if not partitions:
                    time.sleep(0.1)
            tps = [TopicPartition(self.control_topic, p) for p in sorted(partitions or ())]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            self._ready.set()
            while not self._halt.is_set():
                for records in consumer.poll(timeout_ms=50).values():
                    now = int(time.time() * 1000)
                    for record in records:
                        command = self._accept(record.value, now)
                        if command is not None:
                            self._obey(command, now)
        finally:
            consumer.close()

    def _accept(self, value: bytes | None, now_ms: int) -> ControlCommand | None:
        """The command if it may be obeyed: well-formed and, with a verifier, signed, known and fresh."""
        try:
            if self.verifier is not None:
                self.verifier.verify(value or b"", now_ms)
            return msgspec.json.decode(value or b"", type=ControlCommand)
        except RejectedCommand as exc:
            reason = exc.reason
        except msgspec.DecodeError:
            reason = "malformed"
        with self._lock:
            self.rejected[reason] += 1
        log.warning("control command refused (%s)", reason)
        return None

    def _obey(self, command: ControlCommand, now_ms: int) -> None:
        with self._lock:
            if command.command_id in self._seen:
                self.duplicate_commands += 1
                return
            self._seen.add(command.command_id)
            # Commands from before session_key existed carry only the (then unredacted) id.
            key = command.session_key or identity_key(command.session_id)
            if command.type == "terminate_session" and key not in self.stopped:
                self.stopped[key] = Stop(command, now_ms)


@dataclass(slots=True)
class FleetRun:
    """What happened when a fleet was driven through the gateway."""

    produced: int = 0
    blocked: int = 0
    produced_ms: dict[str, int] = field(default_factory=dict)


def drive_fleet(
    bootstrap_servers: str,
    topic: str,
    events: Iterable[dict[str, Any]],
    gateway: ReferenceGateway,
    *,
    rate: float | None = None,
    on_progress: Callable[[FleetRun], None] | None = None,
    security: KafkaSecurity | None = None,
) -> FleetRun:
    """Produce each event unless the gateway has stopped its session; record send times."""
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks=1, linger_ms=1, **client_kwargs(security))
    run = FleetRun()
    started = time.perf_counter()
    sent = 0
    try:
        for event in events:
            sent += 1
            if rate:
                ahead = sent / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
            if gateway.is_stopped(event["session_id"]):
                run.blocked += 1
                continue
            run.produced_ms[event["event_id"]] = int(time.time() * 1000)
            producer.send(topic, key=str(event["session_id"]).encode(), value=_encoder.encode(event))
            run.produced += 1
            if on_progress is not None and sent % 500 == 0:
                on_progress(run)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    return run


def time_to_contain(run: FleetRun, gateway: ReferenceGateway, labels: Iterable[dict[str, Any]]) -> list[float]:
    """Seconds from each attack's first malicious event being produced to its session stopping."""
    out = []
    for label in labels:
        if label["label"] != "attack":
            continue
        produced = run.produced_ms.get(label.get("first_malicious_event_id") or "")
        stop = gateway.stop_for(label["session_id"])
        if produced is not None and stop is not None:
            out.append(max(0, stop.received_ms - produced) / 1000)
    return sorted(out)
