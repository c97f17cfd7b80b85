"""Per-session state, bounded: a TTL after the last event and a cap on live sessions.

All of one session's events arrive on one Kafka partition (messages are keyed by
``session_id``), so its state lives in exactly one monitor process. "Forget well":
a session idle for ``ttl_s`` is closed (its window detectors get a last look) and
dropped; past ``max_sessions`` the least recently active session is closed early.

``run`` keeps session state durable (:mod:`agentwatch.ingest.state_checkpoint`): each session is
tagged with the input partition its events arrive on, the table reports the sessions
it closed (:attr:`SessionTable.closed`), and a partition's sessions are put back
(:meth:`SessionTable.restore`) or dropped (:meth:`SessionTable.discard_partitions`)
when the partition is assigned or revoked.
"""

from __future__ import annotations

import itertools
import pickle
from collections import OrderedDict
from typing import Any

from agentwatch.events.audit_event import AuditEvent


class SessionState:
    """What the monitor remembers about one live session.

    ``scratch`` holds per-detector session-scoped state under the detector's name;
    it is dropped with the session, which is what keeps detectors bounded.

    ``effects`` is the current event's typed effects (:func:`agentwatch.detect.effects.effects_of`),
    set by the pipeline once per event before any detector runs; ``None`` until then (a detector
    driven outside the pipeline computes them itself). Not checkpointed: it is per event.

    ``recent`` is the last ``recent_size`` events, oldest first: a list trimmed on append (a deque's
    first block alone costs ~600 bytes, more than the events it would hold for an idle session).
    """

    __slots__ = (
        "session_id",
        "agent_id",
        "principal",
        "first_ts_ms",
        "last_ts_ms",
        "event_count",
        "recent",
        "recent_size",
        "kind_counts",
        "scratch",
        "alerts",
        "ended",
        "partition",
        "effects",
    )

    def __init__(self, event: AuditEvent, recent_size: int) -> None:
        self.session_id = event.session_id
        self.agent_id = event.agent_id
        self.principal = event.principal
        self.first_ts_ms = event.ts_ms
        self.last_ts_ms = event.ts_ms
        self.event_count = 0
        self.recent: list[AuditEvent] = []
        self.recent_size = recent_size
        self.kind_counts: dict[str, int] = {}
        self.scratch: dict[str, Any] = {}
        #: detector name → the alert this session holds for it (see agentwatch.detect.alerts)
        self.alerts: dict[str, Any] = {}
        self.ended = False
        #: Input partition number the session's events arrive on (-1: not from Kafka).
        self.partition = -1
        #: The current event's effects (set by the pipeline before detectors run; None: not computed).
        self.effects: tuple[Any, ...] | None = None

    def record(self, event: AuditEvent) -> None:
        """Account for ``event`` (called once per event, before detectors run)."""
        self.event_count += 1
        self.effects = None
        if event.ts_ms > self.last_ts_ms:
            self.last_ts_ms = event.ts_ms
        if event.principal and not self.principal:
            self.principal = event.principal
        self.kind_counts[event.kind] = self.kind_counts.get(event.kind, 0) + 1
        recent = self.recent
        recent.append(event)
        if len(recent) > self.recent_size:
            del recent[0]
        if event.kind == "session_end":
            self.ended = True

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__ if name != "effects"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.effects = None
        for name, value in state.items():
            setattr(self, name, value)
        if not isinstance(self.recent, list):  # a deque(maxlen) in state saved before ``recent`` was a list
            self.recent_size = self.recent.maxlen or max(1, len(self.recent))
            self.recent = list(self.recent)


class SessionTable:
    """Live sessions, least recently active first; bounded by TTL and count."""

    def __init__(self, ttl_s: float = 1800.0, max_sessions: int = 200_000, recent_size: int = 16):
        if ttl_s <= 0 or max_sessions <= 0 or recent_size <= 0:
            raise ValueError("ttl_s, max_sessions and recent_size must be positive")
        self.ttl_ms = int(ttl_s * 1000)
        self.max_sessions = max_sessions
        self.recent_size = recent_size
        self._sessions: OrderedDict[str, SessionState] = OrderedDict()
        self.watermark_ms = 0
        #: When a list (``run`` sets it), sessions popped, expired or evicted are appended
        #: here so their durable state can be deleted; ``None``: not tracked.
        self.closed: list[SessionState] | None = None

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._sessions.values())

    def get(self, session_id: str) -> SessionState | None:
        return self._sessions.get(session_id)

    def touch(self, event: AuditEvent) -> tuple[SessionState, list[SessionState]]:
        """The session for ``event`` (created if new) and any sessions evicted for room."""
        sessions = self._sessions
        state = sessions.get(event.session_id)
        evicted: list[SessionState] = []
        if state is None:
            state = SessionState(event, self.recent_size)
            sessions[event.session_id] = state
            while len(sessions) > self.max_sessions:
                evicted.append(sessions.popitem(last=False)[1])
            if evicted and self.closed is not None:
                self.closed.extend(evicted)
        else:
            sessions.move_to_end(event.session_id)
        state.record(event)
        if event.ts_ms > self.watermark_ms:
            self.watermark_ms = event.ts_ms
        return state, evicted

    def pop(self, session_id: str) -> SessionState | None:
        state = self._sessions.pop(session_id, None)
        if state is not None and self.closed is not None:
            self.closed.append(state)
        return state

    def expired(self, now_ms: int | None = None) -> list[SessionState]:
        """Remove and return sessions idle past the TTL (event time, not wall time)."""
        now = self.watermark_ms if now_ms is None else now_ms
        out: list[SessionState] = []
        sessions = self._sessions
        while sessions:
            oldest = next(iter(sessions.values()))
            if now - oldest.last_ts_ms < self.ttl_ms:
                break
            out.append(sessions.popitem(last=False)[1])
        if out and self.closed is not None:
            self.closed.extend(out)
        return out

    def estimated_bytes(self, sample: int = 100) -> int:
        """Live session state in bytes, estimated from the pickled size of a sample."""
        if not self._sessions:
            return 0
        taken = list(itertools.islice(reversed(self._sessions.values()), sample))
        size = sum(len(pickle.dumps(s, protocol=5)) for s in taken)
        return size * len(self._sessions) // len(taken)

    def drain(self) -> list[SessionState]:
        """Remove and return every live session (end of a replay, or shutdown)."""
        out = list(self._sessions.values())
        self._sessions.clear()
        if self.closed is not None:
            self.closed.extend(out)
        return out

    def restore(self, states: list[SessionState]) -> None:
        """Put back sessions loaded from a checkpoint (not closed, not counted as new).

        The table stays ordered by last activity, which is what TTL expiry walks.
        """
        if not states:
            return
        merged = sorted([*self._sessions.values(), *states], key=lambda s: s.last_ts_ms)
        self._sessions = OrderedDict((s.session_id, s) for s in merged)
        self.watermark_ms = max(self.watermark_ms, merged[-1].last_ts_ms)

    def discard_partitions(self, partitions: set[int]) -> int:
        """Forget, without closing them, the sessions of ``partitions`` (handed to another
        monitor, whose copy comes from the checkpoint); returns how many."""
        gone = [sid for sid, s in self._sessions.items() if s.partition in partitions]
        for sid in gone:
            del self._sessions[sid]
        return len(gone)
