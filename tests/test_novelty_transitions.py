"""novelty learns order: per agent, the ``previous tool → tool`` transitions into its high-stakes calls (issue 12).

A never-seen transition of a baselined agent into a high-stakes tier, between tools it knows, is a
departure in order: reported low (never an alert alone), or named in the reason of another new item
of the same call (plus ``transition_bonus``, 0 by default, on a new other party). Bounded and LRU like
the other kinds, checkpointed, merged across monitors.
"""

from __future__ import annotations

import pickle

import pytest

from agentwatch.detect.detector_fixtures import fixture_path, load_cases, run_case
from agentwatch.detect.policy import DetectorPolicy
from agentwatch.detect.session_state import SessionTable
from agentwatch.detectors.novelty import SESSION_START, TRANSITION_SEP, Novelty, NoveltyConfig, _SessionNovelty
from agentwatch.events.audit_event import MAX_ID_CHARS, TRUNCATION_MARK, AuditEvent, from_mapping

T0 = 1_767_225_600_000
AGENT = "payables-1"

LIST = {"tool": "read_inbox", "args": {"folder": "invoices"}}
REVIEW = {"tool": "review_invoice", "args": {"invoice_id": "inv-7"}}
PAY = {"tool": "transfer_funds", "args": {"invoice_id": "inv-7", "amount": 120}}
ROUTINE = [LIST, REVIEW, PAY] * 4  # 12 calls: always review, then transfer


def session(sid: str, calls: list[dict], agent: str = AGENT) -> list[AuditEvent]:
    base = {"session_id": sid, "agent_id": agent, "principal": "ann@acme.example"}
    out = [from_mapping({"event_id": f"{sid}-0", "ts": T0, "kind": "session_start", **base})]
    for i, call in enumerate(calls, start=1):
        out.append(from_mapping({"event_id": f"{sid}-{i}", "ts": T0 + i * 1000, "kind": "tool_call", **base, **call}))
    return out


def run(detector: Novelty, events: list[AuditEvent], other_alert: bool = False) -> list:
    """One session through ``detector``; closed (clean unless ``other_alert``); its findings."""
    table = SessionTable()
    found: list = []
    for event in events:
        state = table.touch(event)[0]
        found += detector.observe(event, state)
    if other_alert:
        state.alerts["taint_flow"] = object()
    detector.close_session(state)
    return found


def baselined(**config) -> Novelty:
    detector = Novelty(NoveltyConfig(**config))
    for n in range(3):
        assert run(detector, session(f"w{n}", ROUTINE)) == []
    return detector


def pair(prev: str, tool: str) -> str:
    return prev + TRANSITION_SEP + tool


def transitions(detector: Novelty, agent: str = AGENT) -> set[str]:
    return set(detector._profiles["a:" + agent].items.get("transition", ()))


def test_transitions_into_high_stakes_calls_of_clean_sessions_are_learned() -> None:
    detector = baselined()
    # read_inbox and review_invoice are read-only: what leads into them is not kept
    assert transitions(detector) == {pair("review_invoice", "transfer_funds")}
    assert pair("review_invoice", "transfer_funds") in detector._fleet["transition"]
    assert pair("review_invoice", "transfer_funds") in detector._profiles["p:ann@acme.example"].items["transition"]


def test_a_never_seen_order_into_a_transfer_is_reported_low_and_learned_after_a_clean_session() -> None:
    detector = baselined()
    skip_review = session("skip", [LIST, PAY])
    [finding] = run(detector, skip_review)
    assert finding.rule == "transition"
    assert 0.3 <= finding.score <= 0.45  # tier financial 0.75 × transition_factor 0.6, × 1 − 0.5 × rate
    assert '"read_inbox → transfer_funds"' in finding.reason and '"review_invoice"' in finding.reason
    assert "financial" in finding.reason
    # below confirm_min_score: one clean session makes the order normal
    assert pair("read_inbox", "transfer_funds") in transitions(detector)
    assert run(detector, session("skip-again", [LIST, PAY])) == []


def test_a_never_seen_order_in_a_session_another_detector_alerted_on_is_not_learned() -> None:
    detector = baselined()
    assert run(detector, session("bad", [LIST, PAY]), other_alert=True)
    assert pair("read_inbox", "transfer_funds") not in transitions(detector)
    [again] = run(detector, session("bad-again", [LIST, PAY]))
    assert again.rule == "transition"


def test_orders_that_are_not_departures_are_learned_silently() -> None:
    detector = baselined()
    # into read-only calls: neither scored nor kept
    assert run(detector, session("ro", [REVIEW, LIST])) == []
    assert transitions(detector) == {pair("review_invoice", "transfer_funds")}
    # the session start is a known predecessor: a transfer as the very first call is a departure too
    assert [f.rule for f in run(baselined(), session("first-pay", [PAY]))] == ["transition"]
    # a new tool: the tool finding, not a transition one (its order is necessarily new)
    new_tool = {"tool": "wire_payment", "args": {"invoice_id": "inv-7", "amount": 120}}
    assert [f.rule for f in run(baselined(), session("new", [LIST, new_tool]))] == ["tool"]
    # cold start: nothing is reported
    cold = Novelty()
    assert run(cold, session("c0", [LIST, REVIEW, PAY])) == []
    assert run(cold, session("c1", [LIST, PAY])) == []
    # a baseline from before transitions were learned (tools known, no transitions): not judged
    old = baselined()
    for profile in old._profiles.values():
        profile.items.pop("transition", None)
    assert [f.rule for f in run(old, session("old", [LIST, PAY]))] == []
    assert pair("read_inbox", "transfer_funds") in transitions(old)


@pytest.mark.parametrize("bonus", [None, 0.05])
def test_a_never_seen_order_is_named_on_another_new_item_of_the_call(bonus: float | None) -> None:
    state = baselined().checkpoint()
    config = NoveltyConfig() if bonus is None else NoveltyConfig(transition_bonus=bonus)
    in_order, out_of_order = Novelty(config), Novelty(config)
    in_order.restore(state)
    out_of_order.restore(state)
    payee = {"tool": "transfer_funds", "args": {"invoice_id": "inv-8", "amount": 120, "payee": "globex-ltd"}}
    [usual] = run(in_order, session("a", [LIST, REVIEW, payee]))
    [unusual] = run(out_of_order, session("b", [LIST, payee]))
    assert usual.rule == unusual.rule == "counterparty"
    assert round(unusual.score - usual.score, 4) == (bonus or 0.0)  # 0 by default: context, not score
    assert 'in a never-seen order "read_inbox → transfer_funds"' in unusual.reason
    assert "never-seen order" not in usual.reason


def test_the_bonus_is_for_a_new_other_party_only_and_a_repeat_is_no_new_order() -> None:
    state = baselined().checkpoint()
    detector = Novelty(NoveltyConfig(transition_bonus=0.05))
    detector.restore(state)
    # the same transfer twice in a row: a run, not a departure in order — learned silently
    assert run(detector, session("twice", [LIST, REVIEW, PAY, PAY])) == []
    assert pair("transfer_funds", "transfer_funds") in transitions(detector)
    # a new host in a never-seen order: named, but no bonus (fetches and links are common)
    twin = Novelty(NoveltyConfig(transition_bonus=0.05))
    twin.restore(state)
    upload = {"tool": "transfer_funds", "args": {"invoice_id": "inv-9", "amount": 120, "url": "https://pay.example/x"}}
    found_in_order = Novelty(NoveltyConfig(transition_bonus=0.05))
    found_in_order.restore(state)
    [usual] = run(found_in_order, session("a", [LIST, REVIEW, upload]))
    [unusual] = run(twin, session("b", [LIST, upload]))
    assert usual.rule == unusual.rule == "domain"
    assert unusual.score == usual.score and "never-seen order" in unusual.reason


def test_transitions_are_bounded_least_recently_used_first() -> None:
    detector = Novelty(
        NoveltyConfig(max_items_per_kind=4, max_fleet_items=6, min_sessions_for_baseline=0, min_events_for_baseline=0)
    )
    for n in range(20):  # send_… tools are external communication: high stakes
        run(detector, session(f"s{n}", [{"tool": "send_report"}, {"tool": f"send_{n}"}, {"tool": "send_report"}]))
    learned = detector._profiles["a:" + AGENT].items["transition"]
    assert len(learned) == 4
    # in regular use, so kept; the oldest one-off transitions went first
    assert pair(SESSION_START, "send_report") in learned
    assert pair("send_report", "send_0") not in learned and pair("send_19", "send_report") in learned
    assert len(detector._fleet["transition"]) == 6
    # a hostile tool name is bounded where decoded, so is the transition
    long = session("long", [{"tool": "send_" + "x" * 10_000}, {"tool": "send_" + "y" * 10_000}])
    run(detector, long)
    x, y = (("send_" + c * 10_000)[:MAX_ID_CHARS] + TRUNCATION_MARK for c in "xy")
    assert pair(x, y) in learned
    assert all(len(t) <= 2 * (MAX_ID_CHARS + len(TRUNCATION_MARK)) + len(TRANSITION_SEP) for t in learned)


def test_checkpoint_restore_round_trip_keeps_what_order_was_learned() -> None:
    detector = baselined()
    restored = Novelty()
    restored.restore(detector.checkpoint())
    assert transitions(restored) == transitions(detector)
    assert [(f.rule, f.score, f.reason) for f in run(restored, session("x", [LIST, PAY]))] == [
        (f.rule, f.score, f.reason) for f in run(detector, session("x", [LIST, PAY]))
    ]


def test_a_checkpoint_from_before_transitions_restores() -> None:
    detector = baselined()
    for profile in detector._profiles.values():
        profile.items.pop("transition", None)
    del detector._fleet["transition"]
    restored = Novelty()
    restored.restore(detector.checkpoint())
    assert restored._fleet["transition"] == {}
    run(restored, session("after", [REVIEW, PAY]))
    assert pair("review_invoice", "transfer_funds") in transitions(restored)
    # a session's scratch pickled before `prev` existed: the next call counts as a session start
    scratch = _SessionNovelty(None, None, None, (), (), True)
    scratch.prev = "review_invoice"
    state = scratch.__getstate__()
    old = _SessionNovelty.__new__(_SessionNovelty)
    old.__setstate__(state[:-1])
    assert old.prev == SESSION_START
    assert pickle.loads(pickle.dumps(scratch)).prev == "review_invoice"


def test_transitions_merge_across_monitors() -> None:
    one, two = Novelty(), Novelty()
    run(one, session("a", [LIST, REVIEW, PAY]))
    run(two, session("b", [LIST, PAY]))
    run(two, session("c", [REVIEW, PAY], agent="payables-2"))
    shared = two.export_learned()
    assert "fleet:transition" in shared
    for key, state in shared.items():
        one.merge_learned(key, state)
    assert transitions(one) == {pair("review_invoice", "transfer_funds"), pair("read_inbox", "transfer_funds")}
    assert transitions(one, "payables-2") == transitions(two, "payables-2")
    assert set(one._fleet["transition"]) == transitions(one) | transitions(two, "payables-2")
    # a join: merging the same rows again changes nothing
    before = (transitions(one), dict(one._fleet["transition"]))
    for key, state in shared.items():
        one.merge_learned(key, state)
    assert (transitions(one), dict(one._fleet["transition"])) == before
    # and the other way round, both monitors hold the same order
    for key, state in one.export_learned().items():
        two.merge_learned(key, state)
    assert transitions(two) == transitions(one)


def test_the_fixture_hard_negative_is_reported_below_alert_not_missed() -> None:
    """The fixture's never-seen order passes as "none" because it scores low, not because nothing is found:
    with an operator's ``min_score`` of 0.3 the same case alerts, on the transition."""
    [case] = [c for c in load_cases(fixture_path(Novelty)) if "never-seen order into a known transfer" in c.case]
    assert case.expect == "none"
    result = run_case(Novelty, case, DetectorPolicy(mode="alert", min_score=0.3))
    assert not result.passed and "rules fired ['transition']" in result.detail
