"""Idle session state: memory per live session with every default detector; learned state per agent.

    python bench/session_memory.py [--sessions 100000] [--agents 20000] [--json]

Opens N sessions (session_start, a prompt, two tool calls and their results — then
idle, not ended), runs them through the same pipeline `run` uses, and reports the
process's resident memory growth per session against DESIGN.md's budget (≤ 4 KiB per
idle session; 100,000 sessions in ≤ 500 MiB RSS).

Then, per agent baseline: M more sessions, one each for M agents never seen before (the same
events, then ``session_end``, so every detector's ``close_session`` learns the agent), and
reports what the detectors keep per agent once the sessions are gone: the growth of the
process's RSS per agent (``bytes_per_agent_baseline``: the learned profiles and baselines in
memory, with whatever the closed sessions' freed memory did not give back — an upper bound)
and the growth of the detectors' checkpoints per agent (``checkpoint_bytes_per_agent``: the
learned state as it is persisted). Each new agent's principal is one of 200 already seen, so
per-principal profiles are not counted as the agent's.
"""

from __future__ import annotations

import argparse
import gc
import sys

import msgspec

from agentwatch.config import Config
from agentwatch.detect.pipeline import Pipeline, build_pipeline
from agentwatch.events.audit_event import from_mapping


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def session_events(n: int, start_ms: int, agent: str | None = None, end: bool = False) -> list[dict]:  # type: ignore[type-arg]
    """One session's events; ``agent`` (default: one of 500 coders) and ``end`` (close it with ``session_end``)."""
    sid, agent = f"mem-{n:07d}", agent or f"coder-{n % 500}"
    steps = [
        ("session_start", None, None),
        ("prompt", None, None),
        ("tool_call", "Read", f"/repo/src/module_{n % 97}.py"),
        ("tool_result", "Read", None),
        ("tool_call", "Bash", "pytest -q tests/"),
        ("tool_result", "Bash", None),
    ]
    if end:
        steps.append(("session_end", None, None))
    return [
        {
            "event_id": f"{sid}:{i}",
            "ts": start_ms + n * 10 + i,
            "session_id": sid,
            "agent_id": agent,
            "principal": f"dev{n % 200}@acme.example",
            "kind": kind,
            "tool": tool,
            "target": target,
            "outcome": "ok" if kind == "tool_result" else None,
        }
        for i, (kind, tool, target) in enumerate(steps)
    ]


def checkpoint_bytes(pipeline: Pipeline) -> int:
    """The detectors' learned state as persisted: the sum of their checkpoints' sizes."""
    return sum(len(active.detector.checkpoint()) for active in pipeline.detectors)


def per_agent(pipeline: Pipeline, first: int, agents: int) -> dict[str, int]:
    """Learned state per agent: ``agents`` new agents, one ended session each (see the module docstring)."""
    gc.collect()
    rss0, checkpoint0 = rss_bytes(), checkpoint_bytes(pipeline)
    live = len(pipeline.sessions)
    for m in range(agents):
        for event in session_events(first + m, 1_767_225_600_000, agent=f"agent-{m:06d}", end=True):
            pipeline.process(from_mapping({k: v for k, v in event.items() if v is not None}))
    if len(pipeline.sessions) != live:
        raise RuntimeError("the per-agent sessions did not all close")
    gc.collect()
    rss1, checkpoint1 = rss_bytes(), checkpoint_bytes(pipeline)
    return {
        "agents": agents,
        "bytes_per_agent_baseline": round((rss1 - rss0) / agents),
        "checkpoint_bytes_per_agent": round((checkpoint1 - checkpoint0) / agents),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=20_000, help="new agents for the per-agent baseline figure")
    parser.add_argument("--recent-events", type=int, default=None, help="override [monitor] recent_events")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config = Config()
    config.monitor.max_sessions = max(config.monitor.max_sessions, args.sessions)
    if args.recent_events is not None:
        config.monitor.recent_events = args.recent_events
    pipeline = build_pipeline(config)
    # Warm up (imports, learned models' first allocations) before the baseline.
    for event in session_events(0, 1_767_225_600_000):
        pipeline.process(from_mapping(event))
    gc.collect()
    before = rss_bytes()
    for n in range(1, args.sessions + 1):
        for event in session_events(n, 1_767_225_600_000):
            pipeline.process(from_mapping({k: v for k, v in event.items() if v is not None}))
    gc.collect()
    after = rss_bytes()
    live = len(pipeline.sessions)
    estimated = pipeline.sessions.estimated_bytes()
    agents = per_agent(pipeline, args.sessions + 1, args.agents) if args.agents > 0 else None
    result = {
        "sessions": live,
        "rss_growth_mib": round((after - before) / 2**20, 1),
        "bytes_per_session": round((after - before) / live),
        "estimated_state_bytes_per_session": round(estimated / live),
        "rss_total_mib": round(after / 2**20, 1),
        "budget_bytes_per_session": 4096,
        **(agents or {}),
    }
    if args.json:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    else:
        for key, value in result.items():
            print(f"{key:36} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
