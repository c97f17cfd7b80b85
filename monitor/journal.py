"""The session journal: recent events kept so an incident's evidence has its look-back.

Holding every session's history in memory would break the per-session memory budget,
so the monitor keeps one bounded ring of the most recent events across all sessions.
When an incident opens, its session's events still in the ring (within the look-back
window) are copied to the store; from then on every event of that session is written
to the store as it arrives, until the incident is resolved.
"""

from __future__ import annotations

from collections import deque

from monitor.event import AuditEvent


class EventJournal:
    """The last ``capacity`` events across all sessions, in arrival order."""

    def __init__(self, capacity: int = 50_000) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._ring: deque[AuditEvent] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._ring)

    def extend(self, events: list[AuditEvent]) -> None:
        self._ring.extend(events)

    def session_events(self, session_id: str, since_ts_ms: int = 0) -> list[AuditEvent]:
        """The ring's events of ``session_id`` at or after ``since_ts_ms``, oldest first."""
        return [e for e in self._ring if e.session_id == session_id and e.ts_ms >= since_ts_ms]
