"""What containment applies to a Claude Code session right now, read from the store with a short cache.

The hook endpoint (:mod:`agentwatch.observe.hook_gate`) denies a proposed tool call when

* its session was terminated (``session_status``, written by ``terminate_session``);
* its agent is quarantined — an executed ``quarantine_agent`` approval whose subject names the agent;
* its tool is disabled for the agent — an executed ``disable_tool`` approval listing the tool;
* it reaches a blocked destination — an executed ``block_egress`` approval listing the host.

Gated containment holds while its incident is not ``resolved``: resolving the incident lifts it. The
session lookup is per session, the gated containment one snapshot of the (few) executed approvals;
each is kept ``ttl_s`` seconds, so a decision costs a store round trip at most once per ``ttl_s``.
A store that cannot be read is reported as :class:`~agentwatch.respond.session_guard.GuardUnavailable`
(the endpoint then answers 503, and the fail-closed hook blocks).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from agentwatch.respond.session_guard import GuardUnavailable, SessionVerdict, status_from_store
from agentwatch.store import approvals, incidents

GATED = ("quarantine_agent", "disable_tool", "block_egress")
MAX_CACHED_SESSIONS = 50_000


@dataclass(frozen=True, slots=True)
class Containment:
    """Executed gated containment, by agent id."""

    quarantined: dict[str, str] = field(default_factory=dict)  # agent → incident id
    disabled_tools: dict[str, dict[str, str]] = field(default_factory=dict)  # agent → {tool: incident id}
    blocked_hosts: dict[str, dict[str, str]] = field(default_factory=dict)  # agent → {host: incident id}


def load_containment(engine: Engine) -> Containment:
    """The executed ``quarantine_agent`` / ``disable_tool`` / ``block_egress`` of unresolved incidents."""
    query = (
        select(approvals.c.action, approvals.c.subject, approvals.c.incident_id, incidents.c.agent_id)
        .join(incidents, incidents.c.incident_id == approvals.c.incident_id)
        .where(approvals.c.status == "executed", approvals.c.action.in_(GATED), incidents.c.status != "resolved")
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise GuardUnavailable(f"store unreachable: {exc.__class__.__name__}") from exc
    out = Containment()
    for row in rows:
        subject = row.subject if isinstance(row.subject, dict) else {}
        named = subject.get("agent")
        agent: str = named if isinstance(named, str) else row.agent_id
        if row.action == "quarantine_agent":
            out.quarantined[agent] = row.incident_id
        elif row.action == "disable_tool":
            tools = out.disabled_tools.setdefault(agent, {})
            for tool in subject.get("tools") or ():
                if isinstance(tool, str):
                    tools[tool] = row.incident_id
        else:
            hosts = out.blocked_hosts.setdefault(agent, {})
            for host in subject.get("destinations") or ():
                if isinstance(host, str):
                    hosts[host.lower()] = row.incident_id
    return out


class ContainmentCache:
    """:func:`status_from_store` per session and :func:`load_containment`, each cached ``ttl_s`` seconds.

    Thread-safe (lookups run on serve's worker threads). A terminated session stays terminated, so
    that answer is kept for as long as the session is in the cache.
    """

    def __init__(self, engine: Engine, ttl_s: float = 2.0) -> None:
        self.engine, self.ttl_s = engine, ttl_s
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, tuple[float, SessionVerdict]] = OrderedDict()
        self._containment: tuple[float, Containment] | None = None

    def cached(self, session_id: str) -> tuple[SessionVerdict, Containment] | None:
        """Both answers if fresh in the cache (no store access), else ``None``."""
        now = time.monotonic()
        with self._lock:
            hit = self._sessions.get(session_id)
            held = self._containment
        if hit is None or held is None or now - held[0] > self.ttl_s:
            return None
        if hit[1].status != "terminated" and now - hit[0] > self.ttl_s:
            return None
        return hit[1], held[1]

    def lookup(self, session_id: str) -> tuple[SessionVerdict, Containment]:
        """Both answers, from the store where the cache is stale; :class:`GuardUnavailable` if it cannot be read."""
        now = time.monotonic()
        with self._lock:
            hit = self._sessions.get(session_id)
            held = self._containment
        if hit is None or (hit[1].status != "terminated" and now - hit[0] > self.ttl_s):
            verdict = status_from_store(self.engine, session_id)
            with self._lock:
                self._sessions[session_id] = (now, verdict)
                self._sessions.move_to_end(session_id)
                while len(self._sessions) > MAX_CACHED_SESSIONS:
                    self._sessions.popitem(last=False)
        else:
            verdict = hit[1]
        if held is None or now - held[0] > self.ttl_s:
            containment = load_containment(self.engine)
            with self._lock:
                self._containment = (now, containment)
        else:
            containment = held[1]
        return verdict, containment
