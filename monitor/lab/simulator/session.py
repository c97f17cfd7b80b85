"""The session builder: turns agent actions into native audit-event dicts with timing.

One :class:`SessionBuilder` per simulated session. It owns the session clock, the
event counter (event ids are ``f"{session_id}:{n:04d}"``), the growing model
context, and the list of event ids marked malicious while an attack runs.
"""

from __future__ import annotations

import random
from typing import Any

#: Rough tokens of context a byte of tool output adds.
_BYTES_PER_TOKEN = 4
#: Past this, the agent "compacts" its context back down.
_MAX_CONTEXT_TOKENS = 160_000


class SessionBuilder:
    """Accumulates one session's events.

    Parameters
    ----------
    rng
        The fleet's random generator (shared; draws are sequential per session).
    session_id, agent_id, agent_type, principal
        Identity fields copied onto every event.
    start_ms
        Epoch-millisecond time of ``session_start``.
    model, price_in, price_out
        Model name and USD prices per million input / output tokens.
    ws
        Agent-type specific workspace facts (repo paths, namespaces, schemas, …).
    """

    __slots__ = (
        "rng",
        "session_id",
        "agent_id",
        "agent_type",
        "principal",
        "t",
        "events",
        "malicious",
        "in_attack",
        "ctx_tokens",
        "model",
        "price_in",
        "price_out",
        "ws",
        "total_cost",
        "fast",
    )

    def __init__(
        self,
        rng: random.Random,
        *,
        session_id: str,
        agent_id: str,
        agent_type: str,
        principal: str,
        start_ms: int,
        model: str,
        price_in: float,
        price_out: float,
        ws: dict[str, Any],
    ) -> None:
        self.rng = rng
        self.session_id = session_id
        self.agent_id = agent_id
        self.agent_type = agent_type
        self.principal = principal
        self.t = start_ms
        self.events: list[dict[str, Any]] = []
        self.malicious: list[str] = []
        self.in_attack = False
        self.ctx_tokens = rng.randrange(3_000, 12_000)
        self.model = model
        self.price_in = price_in
        self.price_out = price_out
        self.ws = ws
        self.total_cost = 0.0
        self.fast = False  # runaway loops: sub-second spacing

    # ------------------------------------------------------------------ clock

    def gap(self) -> float:
        """A default inter-event gap in seconds (0.2–30, skewed short; faster in loops)."""
        if self.fast:
            return 0.03 + self.rng.random() * 0.4
        return 0.2 + min(29.8, self.rng.expovariate(0.35))

    def think(self) -> float:
        """A short gap between a model decision and the tool call it makes."""
        if self.fast:
            return 0.02 + self.rng.random() * 0.1
        return 0.2 + self.rng.random() * 1.5

    # ------------------------------------------------------------------ emit

    def emit(
        self,
        kind: str,
        *,
        gap_s: float | None = None,
        mal: bool | None = None,
        tool: str | None = None,
        target: str | None = None,
        args: dict[str, Any] | None = None,
        outcome: str | None = None,
        bytes_in: int | None = None,
        bytes_out: int | None = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        cost_usd: float | None = None,
        duration_ms: float | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> str:
        """Append one event ``gap_s`` seconds after the previous; return its id.

        ``mal`` marks the event malicious (default: whether an attack is running).
        """
        self.t += max(1, int((self.gap() if gap_s is None else gap_s) * 1000))
        eid = f"{self.session_id}:{len(self.events):04d}"
        ev: dict[str, Any] = {
            "event_id": eid,
            "ts": self.t,
            "session_id": self.session_id,
            "agent_id": self.agent_id,
            "kind": kind,
            "principal": self.principal,
        }
        if tool is not None:
            ev["tool"] = tool
        if target is not None:
            ev["target"] = target
        if args is not None:
            ev["args"] = args
        if outcome is not None:
            ev["outcome"] = outcome
        if bytes_in is not None:
            ev["bytes_in"] = bytes_in
        if bytes_out is not None:
            ev["bytes_out"] = bytes_out
        if tokens_in is not None:
            ev["tokens_in"] = tokens_in
        if tokens_out is not None:
            ev["tokens_out"] = tokens_out
        if cost_usd is not None:
            ev["cost_usd"] = cost_usd
        if duration_ms is not None:
            ev["duration_ms"] = duration_ms
        attrs = {"agent_type": self.agent_type}
        if attributes:
            attrs.update(attributes)
        ev["attributes"] = attrs
        self.events.append(ev)
        if self.in_attack if mal is None else mal:
            self.malicious.append(eid)
        return eid

    def tool(
        self,
        tool: str,
        target: str,
        *,
        args: dict[str, Any] | None = None,
        content: str | None = None,
        outcome: str = "ok",
        bytes_in: int | None = None,
        bytes_out: int | None = None,
        dur_s: float | None = None,
        mal: bool | None = None,
        mal_call: bool | None = None,
        result: bool = True,
        result_attrs: dict[str, Any] | None = None,
    ) -> str:
        """A ``tool_call`` and (unless ``result`` is false) its ``tool_result``.

        ``bytes_out`` goes on the call (what was sent), ``bytes_in`` and the returned
        text (``attributes["content"]``, ≤ 2,000 chars) on the result. Returns the
        call's event id. ``mal_call`` overrides ``mal`` for the call only.
        """
        call_id = self.emit(
            "tool_call",
            gap_s=self.think(),
            mal=mal if mal_call is None else mal_call,
            tool=tool,
            target=target,
            args=args,
            bytes_out=bytes_out,
        )
        if not result:
            return call_id
        if dur_s is None:
            dur_s = (0.03 + self.rng.random() * 0.2) if self.fast else 0.2 + min(29.8, self.rng.expovariate(0.8))
        attrs = dict(result_attrs) if result_attrs else {}
        if content is not None:
            content = content[:2000]
            attrs["content"] = content
            if bytes_in is None:
                bytes_in = len(content.encode())
        self.emit(
            "tool_result",
            gap_s=dur_s,
            mal=mal,
            tool=tool,
            target=target,
            outcome=outcome,
            bytes_in=bytes_in,
            duration_ms=round(dur_s * 1000.0, 1),
            attributes=attrs or None,
        )
        if bytes_in:
            self.ctx_tokens += min(bytes_in, 40_000) // _BYTES_PER_TOKEN
        return call_id

    def model_call(
        self,
        *,
        mal: bool | None = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        gap_s: float | None = None,
    ) -> str:
        """One model completion; cost from the session's model prices."""
        rng = self.rng
        tin = self.ctx_tokens if tokens_in is None else tokens_in
        tout = int(30 + rng.expovariate(1 / 300)) if tokens_out is None else tokens_out
        if gap_s is None:
            gap_s = min(30.0, 0.4 + tout * (0.008 + rng.random() * 0.02))
        cost = round(tin * self.price_in / 1e6 + tout * self.price_out / 1e6, 6)
        self.total_cost += cost
        self.ctx_tokens += tout + rng.randrange(20, 200)
        if self.ctx_tokens > _MAX_CONTEXT_TOKENS:
            self.ctx_tokens = rng.randrange(15_000, 30_000)
        return self.emit(
            "model_call",
            gap_s=gap_s,
            mal=mal,
            tokens_in=tin,
            tokens_out=tout,
            cost_usd=cost,
            duration_ms=round(gap_s * 1000.0, 1),
            attributes={"model": self.model},
        )
