"""The fleet simulator: determinism, label/event consistency, validity, coverage, realism."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agentwatch.events.audit_event import from_mapping, parse_native
from agentwatch.lab.simulator import (
    AGENT_TYPES,
    CATEGORY_AGENT_TYPES,
    DEFAULT_START_MS,
    HELD_OUT_AGENT_TYPES,
    THREAT_CATEGORIES,
    TUNED_AGENT_TYPES,
    VARIANTS,
    Fleet,
    simulate,
    write_fleet,
)
from agentwatch.lab.simulator.attacks import SCENARIOS, SUPPORTED
from agentwatch.lab.simulator.content import HOSTILE_SNIPPETS
from agentwatch.lab.simulator.session import SessionBuilder

ALL_TYPES = TUNED_AGENT_TYPES + HELD_OUT_AGENT_TYPES


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return simulate(seed=42, sessions=300)


@pytest.fixture(scope="module")
def mixed_fleet() -> Fleet:
    return simulate(seed=9, sessions=400, agent_types=ALL_TYPES, attack_ratio=0.3)


def by_session(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in events:
        out[ev["session_id"]].append(ev)
    return out


# --------------------------------------------------------------------------- public contract


def test_public_constants() -> None:
    assert THREAT_CATEGORIES == (
        "injection_exfiltration",
        "secret_access",
        "destructive",
        "privilege_escalation",
        "guardrail_circumvention",
        "runaway_cost",
        "memory_poisoning",
        "supply_chain",
    )
    assert TUNED_AGENT_TYPES == ("coding", "email_assistant", "data_sql")
    assert HELD_OUT_AGENT_TYPES == ("devops", "support")
    assert set(AGENT_TYPES) == set(ALL_TYPES)


def test_category_mapping_is_sensible() -> None:
    assert set(CATEGORY_AGENT_TYPES) == set(THREAT_CATEGORIES)
    for cat in THREAT_CATEGORIES:
        assert len(VARIANTS[cat]) >= 3, cat
        for tname, variants in SUPPORTED[cat].items():
            assert tname in AGENT_TYPES
            assert variants and set(variants) <= set(SCENARIOS[cat])
    assert set(CATEGORY_AGENT_TYPES["injection_exfiltration"]) == set(ALL_TYPES)
    assert {"coding", "data_sql", "devops"} <= set(CATEGORY_AGENT_TYPES["destructive"])
    for tname in HELD_OUT_AGENT_TYPES:
        assert sum(tname in types for types in CATEGORY_AGENT_TYPES.values()) >= 3


# --------------------------------------------------------------------------- determinism


def test_same_seed_is_byte_identical(tmp_path: Path) -> None:
    a = simulate(seed=7, sessions=120, agent_types=ALL_TYPES)
    b = simulate(seed=7, sessions=120, agent_types=ALL_TYPES)
    assert a.events == b.events and a.labels == b.labels
    pa = write_fleet(a, tmp_path / "a")
    pb = write_fleet(b, tmp_path / "b")
    for x, y in zip(pa, pb, strict=True):
        assert x.read_bytes() == y.read_bytes()


def test_global_random_state_untouched() -> None:
    random.seed(123)
    expected = random.random()
    random.seed(123)
    simulate(seed=1, sessions=30)
    assert random.random() == expected


def test_different_seed_differs() -> None:
    a = simulate(seed=1, sessions=60)
    b = simulate(seed=2, sessions=60)
    assert a.events != b.events
    assert [lb["session_id"] for lb in a.labels] != [lb["session_id"] for lb in b.labels]


# --------------------------------------------------------------------------- labels


def test_every_category_present_when_enough_attacks() -> None:
    f = simulate(seed=3, sessions=64, attack_ratio=0.125)  # exactly 8 attacks
    cats = Counter(lb["category"] for lb in f.labels if lb["label"] == "attack")
    assert cats == Counter(THREAT_CATEGORIES)


def test_categories_spread_evenly(fleet: Fleet) -> None:
    attacks = [lb for lb in fleet.labels if lb["label"] == "attack"]
    assert len(attacks) == round(300 * 0.25)
    counts = Counter(lb["category"] for lb in attacks)
    assert set(counts) == set(THREAT_CATEGORIES)
    assert max(counts.values()) - min(counts.values()) <= 1


def test_labels_consistent_with_events(mixed_fleet: Fleet) -> None:
    sessions = by_session(mixed_fleet.events)
    assert len(mixed_fleet.labels) == len(sessions) == 400
    assert len({lb["session_id"] for lb in mixed_fleet.labels}) == 400
    for lb in mixed_fleet.labels:
        evs = sessions[lb["session_id"]]
        ids = {ev["event_id"]: ev for ev in evs}
        assert {ev["agent_id"] for ev in evs} == {lb["agent_id"]}
        assert all(ev["attributes"]["agent_type"] == lb["agent_type"] for ev in evs)
        if lb["label"] == "benign":
            assert lb["category"] is None and lb["variant"] is None
            assert lb["first_malicious_event_id"] is None and lb["first_malicious_ts"] is None
            assert lb["malicious_event_ids"] == []
            continue
        assert lb["label"] == "attack"
        assert lb["category"] in THREAT_CATEGORIES
        assert lb["variant"] in SUPPORTED[lb["category"]][lb["agent_type"]]
        assert lb["agent_type"] in CATEGORY_AGENT_TYPES[lb["category"]]
        assert lb["description"]
        first = lb["first_malicious_event_id"]
        assert first in ids
        assert ids[first]["ts"] == lb["first_malicious_ts"]
        assert lb["malicious_event_ids"][0] == first
        assert set(lb["malicious_event_ids"]) <= set(ids)
        assert min(ids[m]["ts"] for m in lb["malicious_event_ids"]) == lb["first_malicious_ts"]


def test_attacks_follow_benign_steps(mixed_fleet: Fleet) -> None:
    sessions = by_session(mixed_fleet.events)
    for lb in mixed_fleet.labels:
        if lb["label"] != "attack":
            continue
        before = [
            ev
            for ev in sessions[lb["session_id"]]
            if ev["ts"] < lb["first_malicious_ts"] and ev["kind"] in ("tool_call", "permission", "memory_write")
        ]
        assert len(before) >= 3, lb


def test_some_attacks_are_followed_by_benign_steps(mixed_fleet: Fleet) -> None:
    sessions = by_session(mixed_fleet.events)
    trailing = 0
    for lb in mixed_fleet.labels:
        if lb["label"] == "attack" and lb["category"] != "runaway_cost":
            last_mal = lb["malicious_event_ids"][-1]
            after = [ev for ev in sessions[lb["session_id"]] if ev["event_id"] > last_mal and ev["kind"] == "tool_call"]
            trailing += bool(after)
    assert trailing >= 10


def test_attack_ratio_zero_is_all_benign() -> None:
    f = simulate(seed=5, sessions=50, attack_ratio=0.0)
    assert all(lb["label"] == "benign" for lb in f.labels)


def test_category_subset() -> None:
    f = simulate(seed=5, sessions=40, attack_ratio=0.5, categories=("destructive", "supply_chain"))
    cats = Counter(lb["category"] for lb in f.labels if lb["label"] == "attack")
    assert cats == {"destructive": 10, "supply_chain": 10}


# --------------------------------------------------------------------------- events


def test_every_event_validates(fleet: Fleet) -> None:
    for ev in fleet.events:
        from_mapping(ev)  # raises DecodeError on a bad event


def test_every_event_validates_from_jsonl(mixed_fleet: Fleet, tmp_path: Path) -> None:
    events_path, labels_path = write_fleet(mixed_fleet, tmp_path)
    lines = events_path.read_bytes().splitlines()
    assert len(lines) == len(mixed_fleet.events)
    for line in lines:
        parse_native(line)
    labels = [msgspec.json.decode(x) for x in labels_path.read_bytes().splitlines()]
    assert labels == mixed_fleet.labels


def test_required_fields_and_kinds(mixed_fleet: Fleet) -> None:
    kinds = {
        "session_start",
        "prompt",
        "model_call",
        "tool_call",
        "tool_result",
        "permission",
        "memory_write",
        "message",
        "session_end",
    }
    ids = set()
    for ev in mixed_fleet.events:
        assert ev["kind"] in kinds
        assert isinstance(ev["ts"], int)
        assert ev["event_id"].startswith(ev["session_id"] + ":")
        ids.add(ev["event_id"])
        if ev["kind"] == "model_call":
            assert ev["tokens_in"] > 0 and ev["tokens_out"] > 0 and ev["cost_usd"] > 0
        if ev["kind"] in ("tool_call", "tool_result"):
            assert ev["tool"] and "target" in ev
        if ev.get("outcome") is not None:
            assert ev["outcome"] in ("ok", "error", "denied")
    assert len(ids) == len(mixed_fleet.events)
    assert {ev["kind"] for ev in mixed_fleet.events} == kinds


def test_sessions_start_and_end(mixed_fleet: Fleet) -> None:
    for evs in by_session(mixed_fleet.events).values():
        assert evs[0]["kind"] == "session_start"
        assert evs[-1]["kind"] == "session_end"
        assert sum(ev["kind"] == "session_start" for ev in evs) == 1
        assert sum(ev["kind"] == "session_end" for ev in evs) == 1


def test_timestamps_sorted_and_spaced(mixed_fleet: Fleet) -> None:
    ts = [ev["ts"] for ev in mixed_fleet.events]
    assert ts == sorted(ts)
    assert ts[0] >= DEFAULT_START_MS
    labels = {lb["session_id"]: lb for lb in mixed_fleet.labels}
    for sid, evs in by_session(mixed_fleet.events).items():
        seq = [int(ev["event_id"].rsplit(":", 1)[1]) for ev in evs]
        assert seq == list(range(len(evs)))  # within-session order preserved
        gaps = [b["ts"] - a["ts"] for a, b in zip(evs, evs[1:], strict=False)]
        assert all(g > 0 for g in gaps)
        if labels[sid]["category"] != "runaway_cost":
            assert all(200 <= g <= 30_000 for g in gaps[1:]), sid
    # sessions overlap in time (a concurrent fleet, not one session after another)
    starts = sorted(evs[0]["ts"] for evs in by_session(mixed_fleet.events).values())
    ends = sorted(evs[-1]["ts"] for evs in by_session(mixed_fleet.events).values())
    assert any(s < e for s, e in zip(starts[1:], ends[:-1], strict=True))


def test_agents_are_reused_with_stable_principals(fleet: Fleet) -> None:
    per_agent = defaultdict(list)
    for lb in fleet.labels:
        per_agent[lb["agent_id"]].append(lb["principal"])
    per_type = Counter(lb["agent_type"] for lb in fleet.labels)
    assert all(per_type[t] > 0 for t in TUNED_AGENT_TYPES)
    assert sum(len(v) >= 3 for v in per_agent.values()) >= 10
    for principals in per_agent.values():
        top = Counter(principals).most_common(1)[0][1]
        assert top / len(principals) >= 0.6


def test_held_out_types_produce_sessions_and_attacks() -> None:
    f = simulate(seed=11, sessions=160, agent_types=HELD_OUT_AGENT_TYPES)
    assert {lb["agent_type"] for lb in f.labels} == set(HELD_OUT_AGENT_TYPES)
    attacks = [lb for lb in f.labels if lb["label"] == "attack"]
    assert {lb["agent_type"] for lb in attacks} == set(HELD_OUT_AGENT_TYPES)
    assert {lb["category"] for lb in attacks} == set(THREAT_CATEGORIES)  # devops carries all eight
    for ev in f.events:
        from_mapping(ev)


def test_default_fleet_excludes_held_out(fleet: Fleet) -> None:
    assert {lb["agent_type"] for lb in fleet.labels} == set(TUNED_AGENT_TYPES)


def test_infeasible_or_unknown_arguments_raise() -> None:
    with pytest.raises(ValueError):
        simulate(sessions=10, agent_types=("support",), categories=("destructive",))
    with pytest.raises(ValueError):
        simulate(sessions=10, agent_types=("robot",))
    with pytest.raises(ValueError):
        simulate(sessions=10, categories=("bad_thing",))
    with pytest.raises(ValueError):
        simulate(sessions=10, attack_ratio=1.5)


# --------------------------------------------------------------------------- every variant


def _builder(rng: random.Random, tname: str) -> SessionBuilder:
    at = AGENT_TYPES[tname]
    principal = "alice.kim@acme.example"
    return SessionBuilder(
        rng,
        session_id=f"sess-{tname}",
        agent_id=f"{at.prefix}-1",
        agent_type=tname,
        principal=principal,
        start_ms=DEFAULT_START_MS,
        model="m",
        price_in=3.0,
        price_out=15.0,
        ws=at.workspace(rng, principal),
    )


@pytest.mark.parametrize(
    ("category", "tname", "variant"),
    [(cat, t, v) for cat, m in SUPPORTED.items() for t, vs in m.items() for v in vs],
)
def test_every_supported_variant_runs(category: str, tname: str, variant: str) -> None:
    rng = random.Random(f"{category}/{tname}/{variant}")
    for _ in range(4):  # several draws: variants branch on the rng
        b = _builder(rng, tname)
        b.in_attack = True
        desc = SCENARIOS[category][variant](b)
        b.in_attack = False
        assert desc and b.malicious
        tools = set(AGENT_TYPES[tname].tools) | {"memory"}
        for ev in b.events:
            from_mapping(ev)
            assert ev.get("tool") is None or ev["tool"] in tools, (ev["tool"], tname)


def test_benign_steps_use_own_tool_vocabulary(mixed_fleet: Fleet) -> None:
    labels = {lb["session_id"]: lb for lb in mixed_fleet.labels}
    for ev in mixed_fleet.events:
        tool = ev.get("tool")
        if tool is not None and tool != "memory":
            assert tool in AGENT_TYPES[labels[ev["session_id"]]["agent_type"]].tools


# --------------------------------------------------------------------------- realism


def test_egress_carries_bytes_out(mixed_fleet: Fleet) -> None:
    sessions = by_session(mixed_fleet.events)
    for lb in mixed_fleet.labels:
        if lb["category"] != "injection_exfiltration":
            continue
        mal = set(lb["malicious_event_ids"])
        sends = [ev for ev in sessions[lb["session_id"]] if ev["event_id"] in mal and ev["kind"] == "tool_call"]
        assert sends[-1].get("bytes_out", 0) > 0, lb
        assert sends[-1]["target"]


def test_injected_content_in_tool_result(mixed_fleet: Fleet) -> None:
    sessions = by_session(mixed_fleet.events)
    n = 0
    for lb in mixed_fleet.labels:
        if lb["category"] == "injection_exfiltration":
            ev = next(e for e in sessions[lb["session_id"]] if e["event_id"] == lb["first_malicious_event_id"])
            assert ev["kind"] == "tool_result"
            assert len(ev["attributes"]["content"]) <= 2_000
            n += 1
    assert n > 0


def test_runaway_is_fast_and_expensive(mixed_fleet: Fleet) -> None:
    sessions = by_session(mixed_fleet.events)
    benign_costs = sorted(
        sum(ev.get("cost_usd", 0.0) for ev in sessions[lb["session_id"]])
        for lb in mixed_fleet.labels
        if lb["label"] == "benign"
    )
    median = benign_costs[len(benign_costs) // 2]
    runaways = [lb for lb in mixed_fleet.labels if lb["category"] == "runaway_cost"]
    assert runaways
    for lb in runaways:
        evs = [ev for ev in sessions[lb["session_id"]] if ev["event_id"] in set(lb["malicious_event_ids"])]
        assert len(evs) >= 150
        assert sum(ev.get("cost_usd", 0.0) for ev in evs) > 10 * median
        assert evs[-1]["ts"] - evs[0]["ts"] < 15 * 60_000


def test_benign_sessions_contain_hard_negatives() -> None:
    f = simulate(seed=21, sessions=600, attack_ratio=0.0)
    targets = " \n ".join(str(ev.get("target", "")) for ev in f.events)
    for needle in (
        "rm -rf",
        ".env.example",
        "pip install requests",
        "git push --force",
        "chmod +x scripts/",
        "https://api.github.com/",
        ".gitconfig",
        "CLAUDE.md",
        "SELECT ",
        "s3://acme-",
    ):
        assert needle in targets, needle
    contents = " ".join(str(ev["attributes"].get("content", "")) for ev in f.events)
    assert "ignore my previous email" in contents.lower() or "should ignore" in contents


def test_hostile_content_does_not_change_labels() -> None:
    f = simulate(seed=4, sessions=600, attack_ratio=0.25)
    labels = {lb["session_id"]: lb for lb in f.labels}
    hostile_sessions: set[str] = set()
    for ev in f.events:
        text = str(ev.get("target", "")) + str(ev["attributes"].get("content", ""))
        if len(str(ev.get("target", ""))) > 4_000 or any(s in text for s in HOSTILE_SNIPPETS):
            hostile_sessions.add(ev["session_id"])
            assert ev["event_id"] not in labels[ev["session_id"]]["malicious_event_ids"]
    assert 0.02 * 600 <= len(hostile_sessions) <= 0.1 * 600
    kinds = Counter(labels[s]["label"] for s in hostile_sessions)
    assert kinds["benign"] > 0
    for ev in f.events:
        if ev["session_id"] in hostile_sessions:
            from_mapping(ev)


# --------------------------------------------------------------------------- scenarios.yaml


def test_fleet_bytes_are_pinned(tmp_path: Path) -> None:
    """A refactor of the simulator (e.g. scenarios moved between code and scenarios.yaml) keeps its bytes.

    Change the digest only when the simulated data is meant to change.
    """
    import hashlib

    f = simulate(seed=11, sessions=500, agent_types=ALL_TYPES, attack_ratio=1.0)
    paths = write_fleet(f, tmp_path)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()
    assert digest == "77f9e3c996c54d3b5383234d9be4fe4ad9b0cff12a08460b861648fc6859d8f5"


def test_one_call_scenarios_are_rows_of_the_table() -> None:
    from agentwatch.lab.simulator.attacks import ScriptedScenario

    assert all(isinstance(s, ScriptedScenario) for s in SCENARIOS["destructive"].values())
    scripted = {(cat, v) for cat, m in SCENARIOS.items() for v, s in m.items() if isinstance(s, ScriptedScenario)}
    assert ("privilege_escalation", "sudoers_edit") in scripted
    assert ("runaway_cost", "tool_retry_loop") not in scripted  # loops stay code


def test_per_agent_type_rows_pick_their_agent_type() -> None:
    rng = random.Random(5)
    sql, ops = _builder(rng, "data_sql"), _builder(rng, "devops")
    SCENARIOS["guardrail_circumvention"]["audit_off"](sql)
    SCENARIOS["guardrail_circumvention"]["audit_off"](ops)
    assert sql.events[0]["tool"] == "sql.query" and ops.events[0]["tool"] == "Bash"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("destructive:\n  x: {tool: Bash, target: a, says: b, sayz: c}\n", "destructive/x: unknown keys ['sayz']"),
        ("destructive:\n  x: {tool: Bash, target: a}\n", "destructive/x: unknown keys [], missing ['says']"),
        (
            "destructive:\n  x:\n    pick: {cmd: [rm -rf a: b]}\n    tool: Bash\n    target: a\n    says: b\n",
            "quote it",
        ),
        ("destructive:\n  x: {tool: terraform, target: a, says: b}\n", "give args for tool 'terraform'"),
        ("destructive:\n  x: {per_agent_type: {coding: {tool: Bash, target: a, says: b}}}\n", "needs a default"),
        ("sabotage:\n  x: {tool: Bash, target: a, says: b}\n", "unknown category 'sabotage'"),
    ],
)
def test_scenario_table_errors_name_the_row(text: str, error: str) -> None:
    from agentwatch.lab.simulator.attacks import load_scripted

    with pytest.raises(ValueError, match="scenarios.yaml") as info:
        load_scripted(text)
    assert error in str(info.value) and "\n" not in str(info.value)
