"""Tool-using assistants from public corpora, as native agentwatch sessions for the quality bench.

Three sources from ``../shared/corpora`` (read in place; see its README for licences and caveats):

* **ASB** (Agent Security Bench): ten assistant agents (system admin, finance, medical …). Clean
  runs are benign; direct-injection, observation-injection and memory-attack runs are attacks, and
  each call of the run's *attacker tool* is one attack item (its own events: the ``tool_call``
  and its ``tool_result``). Tool calls there carry no arguments.
* **τ-bench** airline trajectories: real arguments (bookings, payments, cancellations), benign.
* **τ²-bench** airline and retail task actions: the expected tool calls of each task, benign.

Each source yields *warm-up* sessions (the learned detectors see them, nothing is scored) and
*evaluation* sessions; :func:`timeline` puts every warm-up session first, then every evaluation
session, one after another in event time, so each closes on idle time before the next begins.
The warm-up is other sessions of the same agents: ASB's clean runs of the even-numbered
repetitions, τ-bench's tasks 0–24, τ²-bench's first half of each domain's tasks. What is scored
comes after, in the same pipeline.

Each session carries a ``split_key`` for ``bench/quality.py --split``: an ASB attack run's is its
attacker tool (every run of ``InsiderTrading`` on one side, so a rule read off a dev miss is measured
on attacker tools nobody looked at), a clean ASB run's its agent and task, a τ/τ² session's its task.

Sessions are native JSON, one event per line (``LabelledSession.lines``). A session's events:
``prompt`` (the user's request, with its text), then per tool use a ``tool_call`` (tool, args) and
a ``tool_result`` (the observation as ``attributes.content``). The agent is the corpus's agent
(``asb:<agent>``, ``tau:airline``, ``tau2:retail``); the principal is the operator the assistant
serves (one per agent: its desk), so per-principal baselines have something to learn.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from bench.quality_model import Item, LabelledSession

ASB_LOGS: Final = {
    "clean": "logs/clean/gpt-4o-mini/dynamic_prompt_rewriting/combined_attack-all_.csv",
    "direct_injection": "logs/direct_prompt_injection/gpt-4o-mini/no_memory/naive-all_.csv",
    "observation_injection": "logs/observation_prompt_injection/gpt-4o-mini/no_memory/naive-all_.csv",
    "memory_attack": "logs/memory_attack/gpt-4o-mini/new_memory/naive-all_.csv",
}
TAU_FILE: Final = "tau-bench/historical_trajectories/gpt-4o-airline.json"
TAU2_FILES: Final = {
    "airline": "tau2-bench/data/tau2/domains/airline/tasks.json",
    "retail": "tau2-bench/data/tau2/domains/retail/tasks.json",
}
_ACTION: Final = re.compile(r"\[Action\]: I will call the (\S+?) with the params as (.*?);\[Observation\]:(.*)", re.S)
#: Observation text kept per tool result (the corpora's are short; the cap bounds a bad file).
MAX_CONTENT: Final = 4000
SPACING_MS: Final = 15_000


class _Session:
    """One native session under construction: events with times relative to its start, items by position."""

    def __init__(self, session_id: str, agent: str, principal: str, split_key: str) -> None:
        self.session_id, self.agent, self.principal = session_id, agent, principal
        #: what decides the session's half of ``--split`` (``bench.quality.split_of``): sessions sharing a key
        #: fall on one side (an ASB attack run's attacker tool, a clean run's task, a τ task)
        self.split_key = split_key
        self.events: list[dict[str, Any]] = []
        self.items: list[Item] = []

    def add(self, kind: str, **fields: Any) -> int:
        event = {
            "event_id": f"{self.session_id}-{len(self.events)}",
            "ts": (len(self.events) + 1) * SPACING_MS,
            "session_id": self.session_id,
            "agent_id": self.agent,
            "principal": self.principal,
            "kind": kind,
        } | {k: v for k, v in fields.items() if v is not None}
        self.events.append(event)
        return len(self.events) - 1

    def tool_use(self, tool: str, args: Mapping[str, Any] | None, result: str, use_id: str) -> tuple[int, int]:
        attributes = {"tool_use_id": use_id}
        call = self.add("tool_call", tool=tool, args=dict(args) if args else None, attributes=attributes)
        content = attributes | {"content": result[:MAX_CONTENT]}
        done = self.add("tool_result", tool=tool, outcome="ok", attributes=content)
        return call, done

    @property
    def duration_ms(self) -> int:
        return (len(self.events) + 1) * SPACING_MS

    def build(self, start_ms: int, scored: bool) -> LabelledSession:
        """The session's message, its events timed from ``start_ms``; a warm-up session carries no items."""
        lines = [json.dumps(e | {"ts": start_ms + e["ts"]}, ensure_ascii=False).encode() for e in self.events]
        return LabelledSession(self.session_id, b"\n".join(lines), len(lines), self.items if scored else [], lines=True)


def timeline(
    warm: list[_Session], scored: list[_Session], start_ms: int, gap_ms: int = 60_000
) -> list[LabelledSession]:
    """Every warm-up session, then every scored one, one after another in event time (never overlapping,
    never going back), so a session closes on idle time before the next begins."""
    out: list[LabelledSession] = []
    clock = start_ms
    for group, is_scored in ((warm, False), (scored, True)):
        for session in group:
            out.append(session.build(clock, is_scored))
            clock += session.duration_ms + gap_ms
    return out


def _sid(*parts: str) -> str:
    return "s-" + hashlib.blake2b("/".join(parts).encode(), digest_size=8).hexdigest()


# --- ASB ---------------------------------------------------------------------------------------


def _asb_rows(root: Path, log: str) -> Iterator[dict[str, str]]:
    csv.field_size_limit(1 << 30)
    with open(root / ASB_LOGS[log], newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def _asb_turns(messages: list[dict[str, Any]]) -> tuple[str, list[tuple[str, str]]]:
    """The user's task (the first plain user message after the tool list) and the tool uses in order."""
    task = ""
    uses: list[tuple[str, str]] = []
    for m in messages:
        text = m.get("content") or m.get("thinking") or ""
        if not isinstance(text, str):
            continue
        if m.get("role") == "user" and not task and not text.startswith("You are given the available tools"):
            task = text
        if m.get("role") == "assistant":
            for chunk in text.split("[Action]:")[1:]:
                match = _ACTION.match("[Action]:" + chunk)
                if match:
                    uses.append((match.group(1), match.group(3).strip()))
    return task, uses


def asb_sessions(root: Path) -> tuple[list[_Session], list[_Session]]:
    """(warm-up, evaluation) sessions of ASB. Evaluation: odd clean repetitions (benign) and every attack run."""
    warm: list[_Session] = []
    scored: list[_Session] = []
    seen: dict[str, int] = {}
    for log in ASB_LOGS:
        for index, row in enumerate(_asb_rows(root / "asb", log)):
            agent = row["Agent Name"].rsplit("/", 1)[-1]
            attacker = row["Attack Tool"]
            task, uses = _asb_turns(ast.literal_eval(row["messages"]))
            sid = _sid("asb", log, str(index))
            key = f"asb-task:{agent}/{task}" if log == "clean" else f"asb-tool:{attacker}"
            session = _Session(sid, f"asb:{agent}", f"desk:{agent}", key)
            session.add("prompt", attributes={"content": task[:MAX_CONTENT], "source": "user"})
            items = session.items
            for n, (tool, observation) in enumerate(uses):
                call, done = session.tool_use(tool, None, observation, f"{sid}-{n}")
                if log != "clean" and tool == attacker:
                    meta = {"source": "asb", "log": log, "agent": agent, "tool": tool, "aggressive": row["Aggressive"]}
                    items.append(Item(f"{sid}:{n}", "attack", (call, done), meta))
                elif log == "clean":
                    meta = {"source": "asb", "log": log, "agent": agent, "tool": tool}
                    items.append(Item(f"{sid}:{n}", "benign", (call, done), meta))
            if log == "clean":
                repetition = seen[agent] = seen.get(agent, -1) + 1
                if repetition % 2 == 0:
                    warm.append(session)
                    continue
            scored.append(session)
    return warm, scored


# --- τ-bench ------------------------------------------------------------------------------------


def tau_sessions(root: Path) -> tuple[list[_Session], list[_Session]]:
    """(warm-up: tasks 0–24, evaluation: tasks 25–49) of the τ-bench airline trajectories, all benign."""
    with open(root / TAU_FILE, encoding="utf-8") as handle:
        trajectories = json.load(handle)
    warm: list[_Session] = []
    scored: list[_Session] = []
    for trajectory in trajectories:
        sid = _sid("tau", str(trajectory["task_id"]), str(trajectory["trial"]))
        session = _Session(sid, "tau:airline", "desk:airline", f"tau-task:{trajectory['task_id']}")
        results = {m.get("tool_call_id"): m.get("content") or "" for m in trajectory["traj"] if m["role"] == "tool"}
        items = session.items
        for message in trajectory["traj"]:
            if message["role"] == "user" and isinstance(message.get("content"), str):
                session.add("prompt", attributes={"content": message["content"][:MAX_CONTENT], "source": "user"})
            for call in message.get("tool_calls") or []:
                function = call["function"]
                try:
                    args = json.loads(function.get("arguments") or "{}")
                except json.JSONDecodeError:
                    args = {"raw": function.get("arguments")}
                positions = session.tool_use(function["name"], args, str(results.get(call["id"], "")), call["id"])
                meta = {"source": "tau-bench", "domain": "airline", "tool": function["name"]}
                items.append(Item(f"{sid}:{call['id']}", "benign", positions, meta))
        (warm if int(trajectory["task_id"]) < 25 else scored).append(session)
    return warm, scored


# --- τ²-bench -----------------------------------------------------------------------------------


def tau2_sessions(root: Path) -> tuple[list[_Session], list[_Session]]:
    """(warm-up: first half of each domain's tasks, evaluation: second half), all benign."""
    warm: list[_Session] = []
    scored: list[_Session] = []
    for domain, path in TAU2_FILES.items():
        with open(root / path, encoding="utf-8") as handle:
            tasks = json.load(handle)
        half = len(tasks) // 2
        for index, task in enumerate(tasks):
            actions = (task.get("evaluation_criteria") or {}).get("actions") or []
            if not actions:
                continue
            sid = _sid("tau2", domain, str(task["id"]))
            session = _Session(sid, f"tau2:{domain}", f"desk:{domain}", f"tau2-task:{domain}/{task['id']}")
            reason = ((task.get("user_scenario") or {}).get("instructions") or {}).get("reason_for_call") or ""
            session.add("prompt", attributes={"content": str(reason)[:MAX_CONTENT], "source": "user"})
            items = session.items
            for action in actions:
                positions = session.tool_use(action["name"], action.get("arguments") or {}, "ok", action["action_id"])
                meta = {"source": "tau2-bench", "domain": domain, "tool": action["name"]}
                items.append(Item(f"{sid}:{action['action_id']}", "benign", positions, meta))
            (warm if index < half else scored).append(session)
    return warm, scored
