"""The fleet: many concurrent sessions, interleaved by time, with per-session labels.

>>> fleet = simulate(seed=1, sessions=20, attack_ratio=0.5)
>>> len(fleet.labels), sum(lb["label"] == "attack" for lb in fleet.labels)
(20, 10)
>>> fleet.events == sorted(fleet.events, key=lambda e: e["ts"])
True
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from agentwatch.lab.simulator import content as c
from agentwatch.lab.simulator.agents import AGENT_TYPES, TUNED_AGENT_TYPES, AgentType, benign_step
from agentwatch.lab.simulator.attacks import CATEGORY_AGENT_TYPES, THREAT_CATEGORIES, run_attack
from agentwatch.lab.simulator.session import SessionBuilder

#: 2026-01-01T00:00:00Z.
DEFAULT_START_MS: Final = 1_767_225_600_000
#: Share of sessions (benign and attack alike) carrying hostile free text.
HOSTILE_RATE: Final = 0.05
#: Share of benign sessions that are unusually long (a hard negative for runaway detectors).
LONG_BENIGN_RATE: Final = 0.03
#: Mean spacing of session starts; the fleet's time window is ``sessions *`` this.
_MS_PER_SESSION: Final = 20_000


@dataclass(slots=True)
class Fleet:
    """A simulated fleet: native event dicts (time-ordered) and one label per session."""

    events: list[dict[str, Any]]
    labels: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Agent:
    agent_id: str
    principal: str
    model: tuple[str, float, float]


def simulate(
    seed: int = 0,
    sessions: int = 200,
    attack_ratio: float = 0.25,
    agent_types: Sequence[str] = TUNED_AGENT_TYPES,
    start_ms: int = DEFAULT_START_MS,
    categories: Sequence[str] = THREAT_CATEGORIES,
) -> Fleet:
    """Generate a seeded fleet of agent sessions with labelled attacks.

    Parameters
    ----------
    seed
        Seed for the single ``random.Random`` behind everything; same seed, same output.
    sessions
        Number of sessions.
    attack_ratio
        Share of sessions that carry an attack (rounded to a whole number of sessions).
    agent_types
        Agent types to draw sessions from (see ``TUNED_AGENT_TYPES`` / ``HELD_OUT_AGENT_TYPES``).
    start_ms
        Epoch-millisecond start of the time window.
    categories
        Threat categories to draw from, round-robin then shuffled. Categories that none
        of ``agent_types`` can carry (e.g. ``destructive`` on ``support`` alone) are skipped.

    Returns
    -------
    Fleet
        Events sorted by ``ts`` (ties: session order, then event order) and labels in
        session-start order.

    Raises
    ------
    ValueError
        On an unknown agent type or category, a bad count/ratio, or attacks requested
        with no category possible on the given agent types.
    """
    agent_types = tuple(agent_types)
    categories = tuple(categories)
    _check_args(sessions, attack_ratio, agent_types, categories)
    # Hundreds of thousands of acyclic dicts: the cyclic GC only costs time here.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _simulate(random.Random(seed), sessions, attack_ratio, agent_types, start_ms, categories)
    finally:
        if gc_was_enabled:
            gc.enable()


def _simulate(
    rng: random.Random,
    sessions: int,
    attack_ratio: float,
    agent_types: tuple[str, ...],
    start_ms: int,
    categories: tuple[str, ...],
) -> Fleet:
    feasible = [cat for cat in categories if any(t in CATEGORY_AGENT_TYPES[cat] for t in agent_types)]
    n_attack = min(sessions, round(sessions * attack_ratio))
    if n_attack and not feasible:
        raise ValueError(f"no category in {categories} can occur on agent types {agent_types}")
    plan: list[str | None] = [None] * sessions
    cats = [feasible[i % len(feasible)] for i in range(n_attack)]
    rng.shuffle(cats)
    for idx, attack_cat in zip(rng.sample(range(sessions), n_attack), cats, strict=True):
        plan[idx] = attack_cat

    pools = _agent_pools(rng, agent_types, sessions)
    window = max(60_000, sessions * _MS_PER_SESSION)
    starts = sorted(start_ms + rng.randrange(window) for _ in range(sessions))
    events: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    used_ids: set[str] = set()
    for idx in range(sessions):
        cat = plan[idx]
        if cat is None:
            tname = rng.choice(agent_types)
        else:
            tname = rng.choice([t for t in agent_types if t in CATEGORY_AGENT_TYPES[cat]])
        pool = pools[tname]
        agent = rng.choice(pool)
        principal = agent.principal if rng.random() < 0.92 else rng.choice(pool).principal
        sid = f"sess-{rng.getrandbits(48):012x}"
        while sid in used_ids:
            sid = f"sess-{rng.getrandbits(48):012x}"
        used_ids.add(sid)
        session_events, label = _session(rng, AGENT_TYPES[tname], agent, principal, sid, starts[idx], cat)
        labels.append(label)
        events.extend(session_events)
    # Stable sort: ties keep session order, then event order within the session.
    events.sort(key=_ts)
    return Fleet(events=events, labels=labels)


def _ts(ev: dict[str, Any]) -> int:
    return ev["ts"]


def write_fleet(fleet: Fleet, out_dir: Path) -> tuple[Path, Path]:
    """Write ``events.jsonl`` and ``labels.jsonl`` into ``out_dir``; return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    enc = msgspec.json.Encoder()
    events_path, labels_path = out_dir / "events.jsonl", out_dir / "labels.jsonl"
    events_path.write_bytes(enc.encode_lines(fleet.events))
    labels_path.write_bytes(enc.encode_lines(fleet.labels))
    return events_path, labels_path


def _check_args(sessions: int, attack_ratio: float, agent_types: tuple[str, ...], categories: tuple[str, ...]) -> None:
    if sessions < 0:
        raise ValueError(f"sessions must be >= 0, got {sessions}")
    if not 0.0 <= attack_ratio <= 1.0:
        raise ValueError(f"attack_ratio must be in [0, 1], got {attack_ratio}")
    if not agent_types:
        raise ValueError("agent_types is empty")
    unknown = [t for t in agent_types if t not in AGENT_TYPES]
    if unknown:
        raise ValueError(f"unknown agent types {unknown}; known: {sorted(AGENT_TYPES)}")
    bad = [cat for cat in categories if cat not in CATEGORY_AGENT_TYPES]
    if bad:
        raise ValueError(f"unknown categories {bad}; known: {list(THREAT_CATEGORIES)}")


def _agent_pools(rng: random.Random, agent_types: tuple[str, ...], sessions: int) -> dict[str, list[_Agent]]:
    """Several agent instances per type, each with a stable principal and model."""
    per_type = max(1, sessions) / len(agent_types)
    pools: dict[str, list[_Agent]] = {}
    for tname in agent_types:
        at = AGENT_TYPES[tname]
        n = max(3, min(250, round(math.sqrt(per_type))))
        agents = []
        for k in range(1, n + 1):
            if tname == "data_sql" and rng.random() < 0.35:
                principal = f"svc-{c.word(rng)}-etl@{c.COMPANY_DOMAIN}"
            else:
                principal = c.person(rng)[2]
            model = at.models[0] if rng.random() < 0.6 else rng.choice(at.models)
            agents.append(_Agent(f"{at.prefix}-{k}", principal, model))
        pools[tname] = agents
    return pools


def _session(
    rng: random.Random,
    at: AgentType,
    agent: _Agent,
    principal: str,
    session_id: str,
    start: int,
    category: str | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Build one session's events and its label."""
    model, p_in, p_out = agent.model
    ws = at.workspace(rng, principal)
    b = SessionBuilder(
        rng,
        session_id=session_id,
        agent_id=agent.agent_id,
        agent_type=at.name,
        principal=principal,
        start_ms=start,
        model=model,
        price_in=p_in,
        price_out=p_out,
        ws=ws,
    )
    start_attrs: dict[str, Any] = {"model": model, "client_version": rng.choice(("1.4.2", "1.5.0", "1.5.1"))}
    if "cwd" in ws:
        start_attrs["cwd"] = ws["cwd"]
    b.emit("session_start", gap_s=0.0, attributes=start_attrs)
    prompt = at.prompt(b)
    b.emit("prompt", gap_s=0.2 + rng.random() * 3, attributes={"content": prompt})

    lo, hi = at.n_steps
    n_steps = rng.randint(lo, hi)
    attack_at = -1
    if category is not None:
        n_steps = max(n_steps, 4)
        attack_at = rng.randint(3, n_steps)  # at least three benign steps first
    elif rng.random() < LONG_BENIGN_RATE:
        n_steps *= 3
    variant: str | None = None
    description = f"benign {at.name} session: {prompt}"
    for i in range(n_steps + 1):
        if i == attack_at and category is not None:
            variant, description = run_attack(b, category)
            if category == "runaway_cost" or rng.random() < 0.4:
                break
        if i == n_steps:
            break
        benign_step(b, at, first=i == 0)

    runaway = category == "runaway_cost"
    if not runaway:
        b.model_call(mal=False)
        b.emit("message", mal=False, target=principal, attributes={"content": at.reply(b)})
    b.emit(
        "session_end",
        mal=False,
        gap_s=rng.uniform(5, 90) if runaway else None,
        outcome="error" if runaway else "ok",
        attributes={
            "reason": rng.choice(("budget_exceeded", "max_turns")) if runaway else "completed",
            "total_cost_usd": round(b.total_cost, 4),
        },
    )
    if rng.random() < HOSTILE_RATE:
        _add_hostile(rng, b.events, set(b.malicious))

    first = b.malicious[0] if b.malicious else None
    label = {
        "session_id": session_id,
        "agent_id": agent.agent_id,
        "agent_type": at.name,
        "principal": principal,
        "label": "attack" if category is not None else "benign",
        "category": category,
        "variant": variant,
        "first_malicious_event_id": first,
        "first_malicious_ts": b.events[int(first.rsplit(":", 1)[1])]["ts"] if first else None,
        "malicious_event_ids": list(b.malicious),
        "description": description,
    }
    return b.events, label


def _add_hostile(rng: random.Random, events: list[dict[str, Any]], malicious: set[str]) -> None:
    """Put hostile strings into one or two non-malicious free-text fields (label unchanged)."""
    cands = [
        ev
        for ev in events
        if ev["kind"] in ("prompt", "tool_call", "tool_result", "message") and ev["event_id"] not in malicious
    ]
    for ev in rng.sample(cands, min(len(cands), rng.randint(1, 2))):
        if ev["kind"] == "tool_call" and "target" in ev:
            ev["target"] = ev["target"] + " " + (c.long_string(rng) if rng.random() < 0.5 else c.hostile_snippet(rng))
            continue
        attrs = dict(ev.get("attributes") or {})
        text = c.hostile_snippet(rng)
        if rng.random() < 0.15:
            text += " " + c.long_string(rng)[:6_000]
        attrs["content"] = text + "\n" + str(attrs.get("content", ""))
        ev["attributes"] = attrs
