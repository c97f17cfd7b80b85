"""The detection path shared by ``replay`` (a file) and ``run`` (Kafka).

Bytes in, alerts and rejected records out: :meth:`Pipeline.ingest` decodes a raw
message with the topic's format, updates session state, computes the event's typed
effects once (``session.effects``, :mod:`agentwatch.detect.effects`), runs the detectors that
read the event's kind (each declares ``kinds``; the per-kind lists are computed once, when the
pipeline is built) and lets each detector's policy decide. Session bookkeeping (state, closing
on ``session_end``, expiry) and ``close_session`` are the same for every detector whatever it
declares. Nothing here knows where the bytes came from.

A detector that raises is isolated: the exception is logged with its traceback,
counted (``agentwatch_plugin_errors_total``) and kept in :attr:`Pipeline.plugin_errors`;
the other detectors and the loop carry on.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentwatch.best_effort import best_effort
from agentwatch.config import Config
from agentwatch.detect.alerts import Alert, raise_or_update
from agentwatch.detect.detector_registry import ActiveDetector, active_detectors
from agentwatch.detect.detector_spec import OTHER_KINDS, Finding, reads_kind
from agentwatch.detect.effects import effects_of
from agentwatch.detect.session_state import SessionState, SessionTable
from agentwatch.errors import DecodeError
from agentwatch.events.audit_event import KNOWN_KINDS, AuditEvent
from agentwatch.formats import Decoder, tool_details
from agentwatch.observe import metrics

log = logging.getLogger(__name__)

#: Time each detector on one event in this many (timing every event costs more than
#: the cheapest detectors themselves).
TIMING_SAMPLE_EVERY = 64
#: Look for idle sessions every this many events.
EXPIRY_EVERY = 1024
MAX_LOGGED_ERRORS_PER_PLUGIN = 5
#: Re-estimate session-state memory every this many expiry rounds (it pickles a sample).
STATE_SAMPLE_EVERY = 16


@dataclass(slots=True)
class IngestResult:
    """What one raw message produced."""

    events: list[AuditEvent] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    errors: list[DecodeError] = field(default_factory=list)


class Pipeline:
    """Session state, detectors and policies — one instance per monitor process."""

    def __init__(self, detectors: Sequence[ActiveDetector], sessions: SessionTable) -> None:
        self.detectors = list(detectors)
        self.sessions = sessions
        self.events_seen = 0
        self._expiries = 0
        #: Input time of the message being processed (Kafka record time, or file time).
        self.observed_ms = 0
        self.plugin_errors: Counter[tuple[str, str]] = Counter()
        #: Events whose effects could not be computed (logged, then treated as having none).
        self.effects_errors = 0
        self.shadow_alerts: Counter[str] = Counter()
        self._timers = {d.name: metrics.DETECTOR_SECONDS.labels(d.name) for d in self.detectors}
        self._by_kind, self._other_kinds = _dispatch_table(self.detectors)
        for d in self.detectors:  # zero-valued series from the start: "no errors", not "no data"
            for hook in ("observe", "close_session"):
                metrics.PLUGIN_ERRORS.labels(d.name, hook)
        self._findings = {d.name: metrics.FINDINGS.labels(d.name, d.policy.mode) for d in self.detectors}
        # metric children, created on first use and kept (labels are small closed sets: see metrics)
        self._alert_counters: dict[tuple[str, str, str, str], Any] = {}
        #: When a list (``serve``'s hook endpoint sets one per decision): every finding that qualified under its
        #: detector's policy, as ``(detector, category, severity, mode)`` — shadow ones and ones folded into an
        #: alert already raised included, which :meth:`process` does not return.
        self.qualified: list[tuple[str, str, str, str]] | None = None
        self._closed_counters: dict[str, Any] = {}

    def observers(self, kind: str) -> tuple[Observer, ...]:
        """The detectors (with their ``observe``) that read events of ``kind``, in configuration order."""
        return self._by_kind.get(kind, self._other_kinds)

    # -- entry points ---------------------------------------------------------------
    def ingest(self, raw: bytes, decoder: Decoder, received_ms: int) -> IngestResult:
        """Decode one raw message and process every event it holds."""
        decoded = decoder(raw, received_ms)
        result = IngestResult(events=decoded.events, errors=decoded.errors)
        self.observed_ms = received_ms
        for event in decoded.events:
            if event.attributes and event.attributes.get(tool_details.FLAG) is True:
                tool_details.note(event)
            result.alerts.extend(self.process(event))
        return result

    def process(self, event: AuditEvent) -> list[Alert]:
        """Run one event through session state and every detector."""
        session, evicted = self.sessions.touch(event)
        alerts: list[Alert] = []
        for old in evicted:
            alerts.extend(self._close(old, "evicted"))
        self.events_seen += 1
        session.effects = self._effects(event, session)
        observers = self._by_kind.get(event.kind, self._other_kinds)
        if self.events_seen % TIMING_SAMPLE_EVERY == 0:
            return self._process_timed(event, session, alerts, observers)
        for observe, active in observers:
            try:
                found = observe(event, session)
            except Exception as exc:  # noqa: BLE001 - isolate the plugin; counted and logged below
                self._plugin_failed(active, "observe", exc)
                continue
            if found:
                alerts.extend(self._decide(active, found, session, event))
        return self._after(event, session, alerts)

    def _effects(self, event: AuditEvent, session: SessionState) -> tuple[object, ...]:
        """The event's effects, once, before any detector (``()`` for events that record no action)."""
        try:
            return effects_of(event, session)
        except Exception as exc:  # noqa: BLE001 - agent-written input must not stop detection; counted, logged
            self.effects_errors += 1
            if self.effects_errors <= MAX_LOGGED_ERRORS_PER_PLUGIN:
                log.error(
                    "effects of event %s could not be computed (%d so far)",
                    event.event_id[:80],
                    self.effects_errors,
                    exc_info=exc,
                )
            return ()

    def _process_timed(
        self, event: AuditEvent, session: SessionState, alerts: list[Alert], observers: tuple[Observer, ...]
    ) -> list[Alert]:
        """:meth:`process`, timing each detector (one event in ``TIMING_SAMPLE_EVERY``)."""
        for observe, active in observers:
            started = time.perf_counter()
            try:
                found = observe(event, session)
            except Exception as exc:  # noqa: BLE001 - isolate the plugin; counted and logged below
                self._plugin_failed(active, "observe", exc)
                continue
            finally:
                self._timers[active.name].observe(time.perf_counter() - started)
            if found:
                alerts.extend(self._decide(active, found, session, event))
        return self._after(event, session, alerts)

    def _after(self, event: AuditEvent, session: SessionState, alerts: list[Alert]) -> list[Alert]:
        if session.ended:
            self.sessions.pop(session.session_id)
            alerts.extend(self._close(session, "ended"))
        if self.events_seen % EXPIRY_EVERY == 0:
            alerts.extend(self.expire())
        return alerts

    def expire(self, now_ms: int | None = None) -> list[Alert]:
        """Close sessions idle past the TTL (event time); return any alerts that raises."""
        alerts: list[Alert] = []
        for session in self.sessions.expired(now_ms):
            alerts.extend(self._close(session, "idle"))
        metrics.SESSIONS_ACTIVE.set(len(self.sessions))
        self._expiries += 1
        if self._expiries % STATE_SAMPLE_EVERY == 1:
            # Pickles recent events an agent wrote: a figure for a dashboard, never worth the loop.
            estimate = best_effort("session_state_bytes", self.sessions.estimated_bytes, default=None)
            if estimate is not None:
                metrics.SESSION_STATE_BYTES.set(estimate)
        return alerts

    def drain(self) -> list[Alert]:
        """Close every live session (end of a replay)."""
        alerts: list[Alert] = []
        for session in self.sessions.drain():
            alerts.extend(self._close(session, "drained"))
        metrics.SESSIONS_ACTIVE.set(0)
        return alerts

    # -- internals ------------------------------------------------------------------
    def _close(self, session: SessionState, reason: str) -> list[Alert]:
        counter = self._closed_counters.get(reason)
        if counter is None:
            counter = self._closed_counters[reason] = metrics.SESSIONS_CLOSED.labels(reason)
        counter.inc()
        if not session.recent:
            return []
        last = session.recent[-1]
        alerts: list[Alert] = []
        for active in self.detectors:
            try:
                found = active.detector.close_session(session)
            except Exception as exc:  # noqa: BLE001 - isolate the plugin; counted and logged below
                self._plugin_failed(active, "close_session", exc)
                continue
            if found:
                alerts.extend(self._decide(active, found, session, last))
        return alerts

    def _decide(
        self, active: ActiveDetector, found: Sequence[Finding], session: SessionState, event: AuditEvent
    ) -> list[Alert]:
        policy = active.policy
        name = active.name
        self._findings[name].inc(len(found))
        out: list[Alert] = []
        for finding in found:
            if not policy.qualifies(finding.score):
                continue
            if policy.min_count > 1:
                key = "policy:" + name
                reached, session.scratch[key] = policy.count_reached(session.scratch.get(key), event.ts_ms)
                if not reached:
                    continue
            severity = policy.severity_for(finding.score)
            if self.qualified is not None:
                self.qualified.append((name, finding.category, severity, policy.mode))
            alert = raise_or_update(session, name, finding, severity, policy.mode, event, self.observed_ms)
            if alert is None:
                continue
            labels = (name, finding.category, severity, policy.mode)
            counter = self._alert_counters.get(labels)
            if counter is None:
                counter = self._alert_counters[labels] = metrics.ALERTS.labels(*labels)
            counter.inc()
            if policy.mode == "shadow":
                self.shadow_alerts[name] += 1
            else:
                out.append(alert)
        return out

    def _plugin_failed(self, active: ActiveDetector, hook: str, exc: Exception) -> None:
        key = (active.name, hook)
        self.plugin_errors[key] += 1
        metrics.PLUGIN_ERRORS.labels(active.name, hook).inc()
        count = self.plugin_errors[key]
        if count <= MAX_LOGGED_ERRORS_PER_PLUGIN:
            log.error(
                "detector %s raised in %s (%d so far; isolated, the others carry on)",
                active.name,
                hook,
                count,
                exc_info=exc,
            )
        elif count == MAX_LOGGED_ERRORS_PER_PLUGIN + 1:
            log.error("detector %s keeps raising in %s; further errors are only counted", active.name, hook)


#: A detector's ``observe`` and the detector it belongs to.
Observer = tuple[Callable[[AuditEvent, SessionState], Sequence[Finding]], ActiveDetector]


def _dispatch_table(
    detectors: Sequence[ActiveDetector],
) -> tuple[dict[str, tuple[Observer, ...]], tuple[Observer, ...]]:
    """Per event kind (every known kind and every kind a detector names), the detectors that read it; and,
    for any other kind, those that read every kind or declare :data:`OTHER_KINDS`."""
    declared: list[tuple[Observer, frozenset[str] | None]] = []
    for d in detectors:
        kinds = getattr(d.detector, "kinds", None)
        declared.append(((d.detector.observe, d), None if kinds is None else frozenset(kinds)))
    named = set(KNOWN_KINDS).union(*(kinds for _, kinds in declared if kinds is not None)) - {OTHER_KINDS}
    by_kind = {kind: tuple(observer for observer, kinds in declared if reads_kind(kinds, kind)) for kind in named}
    other = tuple(observer for observer, kinds in declared if kinds is None or OTHER_KINDS in kinds)
    return by_kind, other


def build_pipeline(config: Config, only: list[str] | None = None) -> Pipeline:
    """The pipeline ``run`` and ``replay`` both use: configured detectors, bounded sessions."""
    settings = config.monitor
    sessions = SessionTable(
        ttl_s=settings.session_ttl_s, max_sessions=settings.max_sessions, recent_size=settings.recent_events
    )
    return Pipeline(active_detectors(config, only=only), sessions)
