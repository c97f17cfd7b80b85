"""rates counts a tool_result as the call when it is the only record of it (Claude Code's OpenTelemetry path)."""

from __future__ import annotations

import pickle
from typing import Any

from agentwatch.detect.session_state import SessionTable
from agentwatch.detectors.rates import MAX_PENDING_CALLS, Rates, _SessionRates
from agentwatch.events.audit_event import from_mapping

_TS = 1_767_225_600_000


def _run(raw: list[dict[str, Any]]) -> list[tuple[str, str]]:
    detector, table, found = Rates(), SessionTable(), []
    for i, r in enumerate(raw):
        base = {"event_id": f"e{i}", "ts": _TS + i * 1000, "session_id": "s", "agent_id": "bot", "kind": "tool_call"}
        ev = from_mapping({**base, **r})
        found += [(f.rule, f.event_ids[-1]) for f in detector.observe(ev, table.touch(ev)[0])]
    return found


POLL = {"tool": "kubectl", "target": "kubectl rollout status deploy/app"}


def test_a_loop_of_tool_results_alone_alerts_like_a_loop_of_tool_calls() -> None:
    calls = _run([POLL] * 150)
    results = _run([{**POLL, "kind": "tool_result"}] * 150)
    assert calls == results == [("loop", "e99")]


def test_a_call_and_its_result_are_counted_once() -> None:
    pairs: list[dict[str, Any]] = []
    for i in range(150):
        use = {"attributes": {"tool_use_id": f"t{i}"}} if i % 3 else {}
        pairs += [{**POLL, **use}, {"kind": "tool_result", "tool": "kubectl", **use}]
    assert _run(pairs) == [("loop", "e198")]  # the 100th call (event 2 * 99), not the 50th


def test_pairing_prefers_the_same_id_and_never_pairs_another_tool() -> None:
    st = _SessionRates([0.0] * 5)
    st.remember_call("Read", "a")
    st.remember_call("Read", "b")
    assert not st.is_only_record("Read", "b") and st.pending == [("Read", "a")]
    assert st.is_only_record("Bash", None)  # no pending Bash call: the result is the only record
    assert st.is_only_record("Read", "z")  # a different id contradicts the pending call
    assert not st.is_only_record("Read", None) and st.pending == []
    for i in range(MAX_PENDING_CALLS + 5):
        st.remember_call("Read", str(i))
    assert len(st.pending) == MAX_PENDING_CALLS


def test_session_state_saved_before_pending_existed_restores() -> None:
    st = _SessionRates([1.0] * 5)
    st.run = 7
    old = st.__getstate__()[:-1]  # what a checkpoint written by the previous version holds
    restored = _SessionRates.__new__(_SessionRates)
    restored.__setstate__(old)
    assert restored.run == 7 and restored.pending == []
    assert pickle.loads(pickle.dumps(st)).run == 7
