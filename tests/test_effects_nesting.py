"""Wrappers inside wrappers (sudo env nohup … thousands deep) are bounded, not a RecursionError."""

from __future__ import annotations

import pytest

from agentwatch.detect.effects import effects_of
from agentwatch.detect.effects.shell import MAX_NESTING
from agentwatch.detect.session_state import SessionTable
from agentwatch.events.audit_event import from_mapping


def _effects(command: str) -> tuple:
    event = from_mapping(
        {
            "event_id": "e",
            "ts": 1767225600000,
            "session_id": "s",
            "agent_id": "a",
            "kind": "tool_call",
            "tool": "Bash",
            "args": {"command": command},
        }
    )
    return effects_of(event, SessionTable().touch(event)[0])


@pytest.mark.parametrize("wrapper", ["sudo ", "env ", "nohup ", "sudo env ", "timeout 5 "])
def test_thousands_of_wrappers_end_in_an_unparsed_execute(wrapper: str) -> None:
    effects = _effects(wrapper * 1600 + "rm -rf /")
    assert any(e.op == "execute" and e.detail == "unparsed" for e in effects)


def test_a_few_wrappers_still_reach_the_command() -> None:
    effects = _effects("sudo env nohup " * (MAX_NESTING // 4) + "rm -rf /")
    assert any(e.op == "delete" and e.resource == "/" for e in effects)
