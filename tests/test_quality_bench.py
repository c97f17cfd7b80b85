"""bench/quality.py: the third-party quality bench, on a tiny slice of the real corpora.

The corpora live beside the repository (``../shared/corpora``); in CI they must be there,
so a missing folder fails the test under ``CI=1`` instead of skipping it.
"""

from __future__ import annotations

import doctest
import json
import os
from pathlib import Path

import pytest

from agentwatch.config import load_config
from agentwatch.formats import get_decoder
from bench import claude_code_otlp, corpus_art, corpus_assistants, corpus_tldr, quality

CORPORA = quality.DEFAULT_CORPORA


@pytest.fixture(scope="module")
def corpora() -> Path:
    if not (CORPORA / "atomic-red-team" / "SELECTED_TESTS.tsv").exists():
        message = f"third-party corpora not found at {CORPORA}"
        if os.environ.get("CI"):
            pytest.fail(message + " (they must exist beside the repository in CI)")
        pytest.skip(message)
    return CORPORA


@pytest.fixture(scope="module")
def report(corpora: Path) -> dict:
    options = quality.Options(corpora=corpora, limit=5, show_misses=3, show_flagged=3)
    return quality.run_quality(options, config=load_config(None, defaults=True))


def test_report_has_every_run_and_the_counts_add_up(report: dict, corpora: Path) -> None:
    runs = report["corpus"]
    assert set(runs) == {"art_inline", "art_write_then_run", "tldr", "assistants"}
    for name in ("art_inline", "art_write_then_run"):
        art = runs[name]
        assert art["tests"] == 5
        assert art["detected"] + art["misses"] == art["tests"]
        assert len(art["misses_shown"]) == min(3, art["misses"])
        assert 0 <= art["recall"] <= 1
        for tactic, cell in art["by_tactic"].items():
            assert tactic in quality.TACTIC_ORDER and tactic != "unmapped"
            assert 0 <= cell["detected"] <= cell["tests"] <= art["tests"]
        # a test counts once per tactic of its technique, never less than once
        assert sum(c["tests"] for c in art["by_tactic"].values()) >= art["tests"]
        assert sum(c["tests"] for c in art["by_technique"].values()) == art["tests"]
        assert sum(c["detected"] for c in art["by_technique"].values()) == art["detected"]
        assert art["run"]["sessions"] == 5
        assert art["run"]["decode_errors"] == 0 and art["run"]["plugin_errors"] == {}
        assert art["run"]["instrumented_pass_matches"] is True
    # inline: 13 records a session; write-then-run adds a Write call and a model request (+3)
    assert runs["art_inline"]["run"]["events"] == 5 * 13
    assert runs["art_write_then_run"]["run"]["events"] == 5 * 16

    tldr = runs["tldr"]
    examples = corpus_tldr.load_examples(corpora / "tldr", 5, report["seed"])
    assert tldr["benign"]["commands"] + tldr["offensive"]["commands"] == len(examples) > 0
    for group in ("benign", "offensive"):
        g = tldr[group]
        assert 0 <= g["flagged"] <= g["commands"]
        assert g["sessions_flagged"] <= g["sessions"]
        assert len(g["flagged_shown"]) == min(3, g["flagged"])
    # one prompt per session, then a model request, a decision and a result per command
    assert tldr["run"]["events"] == tldr["run"]["sessions"] + 3 * len(examples)
    assert report["replay"]["events"] == sum(r["run"]["events"] for r in runs.values())
    assert report["replay"]["events_per_second"] > 0
    json.dumps(report)  # --json prints exactly this


def test_a_detected_attack_and_a_clean_benign_step_are_told_apart() -> None:
    """The harness credits an alert to the attack's own events and not to the context around it."""
    test = corpus_art.AtomicTest(
        "guid-shadow",
        "T1003.008",
        "Access /etc/shadow",
        "bash",
        "sudo cat /etc/shadow > /tmp/T1003.008.txt\ncat /tmp/T1003.008.txt",
        True,
    )
    sessions = corpus_art.build_sessions([test], "inline", start_ms=quality.START_MS)
    scored = quality.replay_and_score(quality.CorpusRun("probe", "otlp-json", sessions), load_config(), "medium")
    attack, context = scored.items
    assert attack.item.kind == "attack" and attack.hit
    assert attack.events_to_detect == 0  # alerted on the tool_result that is the action's only record
    assert any(rule.startswith("secret_access/") for rule in attack.rules)
    assert context.item.kind == "context" and not context.hit
    assert scored.stats["instrumented_pass_matches"] is True
    # ignoring every rule that fired leaves the same alerts published but nothing credited
    ignored = quality.replay_and_score(
        quality.CorpusRun("probe", "otlp-json", sessions), load_config(), "medium", frozenset(attack.rules)
    )
    assert not ignored.items[0].hit and ignored.stats["alerts"] == scored.stats["alerts"]


def test_write_then_run_sessions_carry_the_script_and_label_both_calls() -> None:
    test = corpus_art.AtomicTest("g1", "T1059.004", "x", "sh", "echo hi", False)
    (session,) = corpus_art.build_sessions([test], "write_then_run", start_ms=quality.START_MS)
    events = get_decoder("otlp-json")(session.message, 0).events
    attack = session.items[0]
    tools = [(events[p].kind, events[p].tool) for p in attack.positions]
    assert tools == [("permission", "Write"), ("tool_result", "Write"), ("permission", "Bash"), ("tool_result", "Bash")]
    write, run = events[attack.positions[1]], events[attack.positions[3]]
    assert write.args == {"file_path": "/tmp/g1.sh", "content": "#!/bin/sh\necho hi\n"}
    assert run.target == "sh /tmp/g1.sh"
    assert {e.session_id for e in events} == {session.session_id}
    assert events[0].agent_id == claude_code_otlp.identity_pool("art-write-then-run", 8)[0].agent_id


def test_every_selected_technique_has_tactics(corpora: Path) -> None:
    tests = corpus_art.load_tests(corpora / "atomic-red-team")
    assert len(tests) == 503
    assert all("#{" not in t.command and "PathToAtomicsFolder" not in t.command for t in tests)
    assert not [t.technique for t in tests if t.tactics == ("unmapped",)]


def test_offensive_pages_are_labelled() -> None:
    assert corpus_tldr.is_offensive("nmap") and corpus_tldr.is_offensive("impacket-getst")
    assert not corpus_tldr.is_offensive("git") and not corpus_tldr.is_offensive("tar")


def test_missing_corpora_is_a_one_line_error_with_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert quality.main(["--corpora", str(tmp_path / "nope"), "--limit", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error:") and "hint:" in err and "--corpora" in err


@pytest.mark.parametrize("module", [corpus_art, corpus_tldr])
def test_module_doctests(module: object) -> None:
    """bench/ is outside pytest's doctest collection; its examples still have to hold."""
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0


def test_the_assistant_corpora_become_warm_up_then_scored_native_sessions(report: dict, corpora: Path) -> None:
    """ASB attacker-tool calls are attack items on their own events; warm-up sessions carry no items."""
    warm_asb, scored_asb = corpus_assistants.asb_sessions(corpora)
    built = corpus_assistants.timeline(warm_asb, scored_asb, quality.START_MS)
    warm, scored = built[: len(warm_asb)], built[len(warm_asb) :]
    assert warm and scored and all(not s.items for s in warm)
    decode = get_decoder("native")
    times = [decode(m, 0).events[0].ts_ms for s in built for m in s.messages()]
    assert times == sorted(times)  # one timeline: warm-up first, sessions never overlap
    attacks = [(s, i) for s in scored for i in s.items if i.kind == "attack"]
    # every attack run that called its attacker tool has exactly that call labelled
    assert len(attacks) > 400
    session, item = attacks[0]
    events = [decode(m, 0).events[0] for m in session.messages()]
    assert len(events) == session.events
    call, result = (events[p] for p in item.positions)
    assert (call.kind, result.kind) == ("tool_call", "tool_result")
    assert call.tool == result.tool == item.meta["tool"]
    assert call.agent_id.startswith("asb:") and call.principal and call.principal.startswith("desk:")
    for build in (corpus_assistants.tau_sessions, corpus_assistants.tau2_sessions):
        warm_sessions, scored_sessions = build(corpora)
        scored = corpus_assistants.timeline(warm_sessions, scored_sessions, quality.START_MS)[len(warm_sessions) :]
        assert warm_sessions and scored and all(i.kind == "benign" for s in scored for i in s.items)
        assert any(decode(m, 0).events[0].args for s in scored[:3] for m in s.messages())  # real arguments

    groups = report["corpus"]["assistants"]["groups"]
    assert {"asb/clean", "asb/direct_injection", "tau-bench/airline", "tau2-bench/retail"} <= set(groups)
    run = report["corpus"]["assistants"]["run"]
    assert run["decode_errors"] == 0 and run["instrumented_pass_matches"] is True
    for g in groups.values():
        assert 0 <= g["hit"] <= g["items"] and g["sessions_flagged"] <= g["sessions"]


def test_the_split_halves_are_disjoint_stable_and_cover_everything(corpora: Path) -> None:
    tests = corpus_art.load_tests(corpora / "atomic-red-team")
    dev = {t.guid for t in tests if quality.in_split(t.technique, "dev")}
    holdout = {t.guid for t in tests if quality.in_split(t.technique, "holdout")}
    assert dev and holdout and not dev & holdout and dev | holdout == {t.guid for t in tests}
    # a technique is on one side only
    sides: dict[str, set[str]] = {}
    for t in tests:
        sides.setdefault(t.technique, set()).add(quality.split_of(t.technique))
    assert all(len(v) == 1 for v in sides.values())
    assert quality.split_of("T1053") == "holdout" and quality.split_of("T1003") == "dev"  # stable across runs


def test_split_runs_only_its_half(corpora: Path) -> None:
    options = quality.Options(corpora=corpora, limit=40, split="dev", show_misses=0, show_flagged=0)
    report = quality.run_quality(options, ["art"], config=load_config(None, defaults=True))
    assert report["split"] == "dev"
    runs = report["corpus"]
    techniques = runs["art_inline"]["by_technique"]
    assert techniques and all(quality.split_of(t) == "dev" for t in techniques)


def test_assistant_sessions_split_by_attacker_tool_and_task(corpora: Path) -> None:
    """Every ASB attack run of one attacker tool lies on one side; clean and τ sessions split by task; each
    kind of session has both halves, so a rule read off dev misses is measured on tools nobody looked at."""
    sessions = [
        (build.__name__, s)
        for build in (corpus_assistants.asb_sessions, corpus_assistants.tau_sessions, corpus_assistants.tau2_sessions)
        for s in build(corpora)[1]
    ]
    sides: dict[str, set[str]] = {}
    for _, s in sessions:
        sides.setdefault(s.split_key, set()).add(quality.split_of(s.split_key))
        attackers = {i.meta["tool"] for i in s.items if i.kind == "attack"}
        if attackers:  # an attack run is keyed by the attacker tool it calls
            assert attackers == {s.split_key.removeprefix("asb-tool:")}
    assert all(len(v) == 1 for v in sides.values())
    kinds = {(source, s.split_key.split(":", 1)[0]) for source, s in sessions}
    assert kinds == {
        ("asb_sessions", "asb-tool"),
        ("asb_sessions", "asb-task"),
        ("tau_sessions", "tau-task"),
        ("tau2_sessions", "tau2-task"),
    }
    for kind in kinds:
        halves = {
            quality.split_of(s.split_key) for source, s in sessions if (source, s.split_key.split(":")[0]) == kind
        }
        assert halves == {"dev", "holdout"}, kind


def test_assistant_split_scores_only_its_half_and_the_halves_add_up(corpora: Path) -> None:
    adapter = quality.AssistantsAdapter()
    built = {
        split: adapter.runs(quality.Options(corpora=corpora, limit=6, split=split))[0].sessions
        for split in ("all", "dev", "holdout")
    }
    # the same sessions are replayed in every split (what the learned detectors see does not change) …
    assert (
        [s.message for s in built["dev"]] == [s.message for s in built["all"]] == [s.message for s in built["holdout"]]
    )
    items = {split: {i.key: i for s in sessions for i in s.items} for split, sessions in built.items()}
    # … and each split scores its half of the items: disjoint, together everything
    assert items["dev"] and items["holdout"] and not items["dev"].keys() & items["holdout"].keys()
    assert items["dev"].keys() | items["holdout"].keys() == items["all"].keys()
    for split in ("dev", "holdout"):
        attacks = [i for i in items[split].values() if i.kind == "attack"]
        assert attacks and all(quality.split_of(f"asb-tool:{i.meta['tool']}") == split for i in attacks)


def test_repeat_misses_counts_only_repeats_of_a_tool_detected_earlier_in_its_session() -> None:
    """A second call of an already-detected tool is folded into the session's alert: reported apart."""
    from bench.quality_model import Item

    def entry(session: str, tool: str, at: int, hit: bool) -> quality.ScoredItem:
        item = Item(key=f"{session}:{at}", kind="attack", positions=(at, at + 1), meta={"tool": tool})
        return quality.ScoredItem(item, session, {"novelty": "medium"} if hit else {})

    sessions = [
        # detected, then the same tool again (a repeat), then another tool missed (a real miss)
        [entry("s1", "Quackery", 3, False), entry("s1", "Quackery", 1, True), entry("s1", "Other", 5, False)],
        # missed first, detected later: the first call is a real miss, not a repeat
        [entry("s2", "Quackery", 1, False), entry("s2", "Quackery", 3, True)],
    ]
    assert quality._repeat_misses(sessions) == 1
