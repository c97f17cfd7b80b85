"""The session journal: recent events kept so an incident's evidence has its look-back.

Holding every session's whole history in memory would break the per-session memory
budget, so the monitor keeps a bounded journal: at most ``capacity`` events in all,
at most ``per_session`` of any one session, indexed by session so an incident's
look-back costs only that session's events. When full, the least recently active
session's events go first. When an incident opens, its session's journaled events
are copied to the store; from then on every event of that session is written to the
store as it arrives, until the incident is resolved.

>>> from agentwatch.events.audit_event import from_mapping
>>> j = EventJournal(capacity=3)  # the oldest session goes first when full
>>> j.extend([from_mapping({"event_id": f"e{i}", "ts": 1767225600000 + i, "session_id": f"s{i % 2}",
...                         "agent_id": "a", "kind": "tool_call"}) for i in range(4)])
>>> [e.event_id for e in j.session_events("s1")], len(j)
(['e1', 'e3'], 2)
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable

from agentwatch.events.audit_event import AuditEvent


class EventJournal:
    """Recent events by session, bounded in total and per session."""

    def __init__(self, capacity: int = 50_000, per_session: int = 1_000) -> None:
        if capacity <= 0 or per_session <= 0:
            raise ValueError("capacity and per_session must be positive")
        self.capacity = capacity
        self.per_session = per_session
        #: per session: (event, observed_ms) — when the event reached the monitor's input
        self._sessions: OrderedDict[str, deque[tuple[AuditEvent, int]]] = OrderedDict()
        self._total = 0

    def __len__(self) -> int:
        return self._total

    def extend(self, events: Iterable[AuditEvent], observed_ms: Iterable[int] | None = None) -> None:
        """Add ``events``; ``observed_ms`` (parallel to them) is each one's input time."""
        sessions = self._sessions
        observed = iter(observed_ms) if observed_ms is not None else None
        for event in events:
            seen = next(observed) if observed is not None else 0
            kept = sessions.get(event.session_id)
            if kept is None:
                kept = sessions[event.session_id] = deque(maxlen=self.per_session)
            else:
                sessions.move_to_end(event.session_id)
            if len(kept) < self.per_session:
                self._total += 1
            kept.append((event, seen))
        while self._total > self.capacity:
            self._total -= len(sessions.popitem(last=False)[1])

    def session_events(self, session_id: str, since_ts_ms: int = 0) -> list[AuditEvent]:
        """The journal's events of ``session_id`` at or after ``since_ts_ms``, in arrival order."""
        kept = self._sessions.get(session_id)
        if not kept:
            return []
        return [e for e, _ in kept if e.ts_ms >= since_ts_ms]

    def session_entries(self, session_id: str, since_ts_ms: int = 0) -> list[tuple[AuditEvent, int]]:
        """Like :meth:`session_events`, each with when it reached the input (0: unknown)."""
        kept = self._sessions.get(session_id)
        if not kept:
            return []
        return [(e, seen) for e, seen in kept if e.ts_ms >= since_ts_ms]

    def first_observed(self, session_id: str, event_ids: Iterable[str]) -> int | None:
        """The earliest input time among ``event_ids`` of the session still in the journal."""
        wanted = set(event_ids)
        times = [seen for e, seen in self._sessions.get(session_id, ()) if seen and e.event_id in wanted]
        return min(times) if times else None
