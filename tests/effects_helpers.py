"""Shared helpers for the effects tests: find one effect by its parts, build events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentwatch.detect.effects import Effect
from agentwatch.events.audit_event import AuditEvent, from_mapping


def find(
    effects: Iterable[Effect],
    op: str,
    resource: str | None = None,
    classes: Iterable[str] = (),
    detail: str | None = None,
    via: str | None = None,
) -> Effect | None:
    """The first effect with ``op`` (and ``resource``, all of ``classes``, ``detail`` substring, ``via`` prefix)."""
    want = frozenset(classes)
    for e in effects:
        if e.op != op or (resource is not None and e.resource != resource) or not want <= e.classes:
            continue
        if detail is not None and (e.detail is None or detail not in e.detail):
            continue
        if via is not None and not e.via.startswith(via):
            continue
        return e
    return None


def assert_effect(
    effects: tuple[Effect, ...],
    op: str,
    resource: str | None = None,
    classes: Iterable[str] = (),
    detail: str | None = None,
    via: str | None = None,
) -> Effect:
    found = find(effects, op, resource, classes, detail, via)
    assert found is not None, f"no {op} {resource} {sorted(classes)} {detail} {via} in:\n" + "\n".join(
        f"  {e.op} {e.resource} {sorted(e.classes)} {e.via} {e.detail}" for e in effects
    )
    return found


def event(n: int, tool: str | None, kind: str = "tool_result", **args: Any) -> AuditEvent:
    return from_mapping(
        {
            "event_id": f"e{n}",
            "ts": 1767225600000 + n,
            "session_id": "s1",
            "agent_id": "coder",
            "kind": kind,
            "tool": tool,
            "args": args or None,
        }
    )


def shell_effects(command: str) -> tuple[Effect, ...]:
    """What the shell analyser makes of one command line."""
    from agentwatch.detect.effects.shell import analyse_shell

    return tuple(analyse_shell(command).effects)


def rules_fired(command: str) -> set[str]:
    """Rules of effect_rules that reach medium (score ≥ 0.5) on one Bash action run in a project."""
    from agentwatch.detect.session_state import SessionTable
    from agentwatch.detectors.effect_rules import EffectRules

    action = from_mapping(
        {
            "event_id": "e1",
            "ts": 1767225600000,
            "session_id": "s-rules",
            "agent_id": "coder",
            "kind": "tool_result",
            "tool": "Bash",
            "cwd": "/home/dev/project",
            "args": {"command": command},
        }
    )
    session = SessionTable().touch(action)[0]
    return {f.rule for f in EffectRules().observe(action, session) if f.score >= 0.5}
