"""The ``privilege_changes`` rule pack: fixtures, contract, tricky negatives, denied retries, config, checks."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from agentwatch.detect.detector_fixtures import fixture_path, load_cases
from agentwatch.detect.session_state import SessionTable
from agentwatch.detectors.checks.privilege_changes_checks import DENIED_KEY, segments, settings_change_kind
from agentwatch.detectors.privilege_changes import PrivilegeChanges, PrivilegeChangesConfig
from agentwatch.detectors.rule_pack import RuleOverride
from agentwatch.errors import ConfigError
from tests.rule_pack_helpers import bash
from tests.rule_pack_helpers import events as _events
from tests.rule_pack_helpers import run as _run
from tests.rule_pack_helpers import top as _top

PRIV, GUARD = "privilege_escalation", "guardrail_circumvention"


def _rules(det: PrivilegeChanges, *raw: dict[str, Any]) -> set[str]:
    return {f.rule for f in _run(det, *raw)}


def denied(tool: str, target: str) -> dict[str, Any]:
    return {"kind": "permission", "tool": tool, "target": target, "outcome": "denied"}


# -- contract and fixtures -----------------------------------------------------------
def test_fixture_shape() -> None:
    cases = load_cases(fixture_path(PrivilegeChanges))
    positives = [c for c in cases if c.expect == "alert"]
    negatives = [c for c in cases if c.expect == "none"]
    assert len(positives) >= 30 and len(negatives) >= 10
    assert all(c.on_event and c.trigger_rules for c in positives)  # every positive names the rule it pins
    assert all(c.trigger_rules == [] for c in negatives)
    assert any("hostile" in c.case for c in negatives)
    known = {rule.id for rule in PrivilegeChanges().rules}
    pinned = {r for c in cases for r in c.trigger_rules or ()}
    assert pinned <= known
    assert len(known - pinned - {"sudo"}) <= 3, sorted(known - pinned)  # nearly every rule has a positive case


def test_findings_are_well_formed() -> None:
    det = PrivilegeChanges()
    for case in load_cases(fixture_path(PrivilegeChanges)):
        for finding in _run(det, *case.events):
            assert 0.0 < finding.score <= 1.0
            assert finding.category in (PRIV, GUARD)
            assert finding.rule and finding.event_ids
            assert finding.reason.startswith(f"{finding.rule}: "), finding.reason
            assert finding.reason.isprintable() and len(finding.reason) < 800, finding.reason


def test_every_rule_is_tagged_and_scored() -> None:
    for rule in PrivilegeChanges().rules:
        assert rule.category in (PRIV, GUARD), rule.id
        assert rule.tags and rule.status in ("stable", "test"), rule.id


def test_checkpoint_roundtrip() -> None:
    fresh = PrivilegeChanges()
    fresh.restore(PrivilegeChanges().checkpoint())
    case = load_cases(fixture_path(PrivilegeChanges))[0]
    assert [f.score for f in _run(fresh, *case.events)] == [f.score for f in _run(PrivilegeChanges(), *case.events)]


def test_odd_argument_shapes_do_not_crash() -> None:
    odd = [
        {"tool": None, "target": None, "args": {"a": [1, {"b": None}], "c": True, "d": 3.5, "e": None}},
        {"tool": "Bash", "args": {"command": ["sudo", "-i"], "x": {"y": "z"}}},
        {"kind": "tool_result", "tool": "WebFetch", "attributes": {"content": 42}},
        {"kind": "memory_write", "args": {"content": None}},
        {"kind": "message", "attributes": {"source": 7, "content": None}},
        {"kind": "permission", "outcome": "denied"},
        {"kind": "permission", "outcome": "denied", "tool": None, "target": "x" * 5000},
        {"tool": "Edit", "target": ".claude/settings.json", "args": {"edits": [{"new_string": 1}, "x", None]}},
        {"tool": "sql.query", "args": {"sql": {"nested": ["grant all on x"], "n": [None, 2.5]}}},
        {"tool": "team.add_member", "args": {"role": ["admin", 3], "user": None}},
        {"tool": "Bash", "args": {"command": "ls", "dangerouslyDisableSandbox": "true"}},
    ]
    findings = _run(PrivilegeChanges(), *odd)
    assert {f.rule for f in findings} <= {"root_shell", "admin_grant_tool", "self_settings_edit"}


def test_pathological_inputs_stay_cheap() -> None:
    """8,000-character repetitions a regex could backtrack on (timing is bench/detector_cost.py's job).

    (A long chain of wrapper words — ``sudo sudo …`` — overflows the effects layer's recursion; the pipeline
    isolates that error, and it is the effects layer's to bound, so it is not repeated here.)
    """
    units = ("A", "sudo -i ; ", "chmod 777 ", "eval $(", "'\"", "grant all on ", "--no-verify ", "(((", "\u00e9 ")
    det, table = PrivilegeChanges(), SessionTable()
    for unit in units:
        text = (unit * (8000 // len(unit) + 1))[:8000]
        events = _events(
            bash(text),
            {"tool": "sql.query", "args": {"sql": text}},
            {"tool": "Write", "args": {"file_path": ".claude/settings.json", "content": text}},
        )
        for ev in events:
            for finding in det.observe(ev, table.touch(ev)[0]):
                assert 0.0 < finding.score <= 1.0


# -- tricky cases --------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        "chmod +x scripts/build.sh",
        "chmod 644 ~/.ssh/id_rsa.pub",
        "chmod go-rwx ~/.ssh/id_rsa",
        'eval "$(direnv hook bash)"',
        'eval "$(/opt/homebrew/bin/brew shellenv)"',
        "pre-commit run --all-files",
        "git log --format='%an sudo rm'",
        "grep -rn 'sudo' docs/",
        "grep -rn 'setenforce 0' docs/",
        "echo 'do not chmod 777 /etc'",
        "find / -perm -4000 -type f",
        "sudo visudo -c",
        "visudo -V",
        "su --help",
        "npx puppeteer browsers install chrome && node shot.js --no-sandbox",
        "kubectl scale deploy/api --replicas=0",
        "kubectl get validatingwebhookconfigurations",
        "systemctl start ufw",
        "aws iam list-attached-user-policies --user-name ci",
    ],
)
def test_negatives(command: str) -> None:
    assert _top(PrivilegeChanges(), bash(command)) < 0.5


def test_a_plain_sudo_is_low_and_what_is_done_as_root_decides() -> None:
    assert _run(PrivilegeChanges(), bash("sudo apt-get update"))[0].score == 0.45
    assert _rules(PrivilegeChanges(), bash("sudo -i")) == {"root_shell"}
    assert _rules(PrivilegeChanges(), bash("echo hunter2 | sudo -S whoami")) == {"sudo_password_pipe"}
    assert _rules(PrivilegeChanges(), bash("sudo chmod u+s /usr/bin/find")) == {"setuid_chmod", "sudo"}


def test_categories_per_rule() -> None:
    [escalation] = [f for f in _run(PrivilegeChanges(), bash("sudo usermod -aG sudo agent")) if f.score >= 0.5]
    [guardrail] = _run(PrivilegeChanges(), bash("set +o history; unset HISTFILE"))
    assert (escalation.rule, escalation.category) == ("admin_group", PRIV)
    assert (guardrail.rule, guardrail.category) == ("history_evasion", GUARD)


def test_arguments_count_only_for_the_program_they_are_given_to() -> None:
    """A flag is judged where it is an argument of the program named by the rule, not anywhere in the text."""
    assert _rules(PrivilegeChanges(), bash("claude --dangerously-skip-permissions -p 'x'")) == {"skip_permissions"}
    assert _top(PrivilegeChanges(), bash("echo claude; ls --dangerously-skip-permissions")) == 0.0
    assert _top(PrivilegeChanges(), bash("git commit -m 'x' && ./ci.sh --no-verify")) == 0.0
    assert _rules(PrivilegeChanges(), bash("git commit --no-verify -m x")) == {"skip_verification"}


def test_settings_writes_are_judged_by_what_they_change() -> None:
    path = "/home/u/app/.claude/settings.json"

    def edit(old: str, new: str) -> dict[str, Any]:
        return {"tool": "Edit", "target": path, "args": {"file_path": path, "old_string": old, "new_string": new}}

    assert _rules(PrivilegeChanges(), edit('"theme": "dark"', '"theme": "light"')) == {"self_settings_edit"}
    assert _rules(PrivilegeChanges(), edit('"allow": []', '"allow": ["Bash(*)"]')) == {"self_permissions_widened"}
    hooks = edit('"hooks": {"Stop": [{"command": "audit"}]}', '"hooks": {}')
    assert _rules(PrivilegeChanges(), hooks) == {"self_disable_hooks"}
    assert _rules(PrivilegeChanges(), bash("rm ~/.claude/settings.json")) == {"self_disable_hooks"}
    assert _top(PrivilegeChanges(), {"tool": "Read", "target": path, "args": {"file_path": path}}) == 0.0


def test_settings_change_kind() -> None:
    assert settings_change_kind("", '"sandbox": {"enabled": true}', '"enabled": false', False) == "sandbox_off"
    assert settings_change_kind('"mcpservers": {"x": {}}', "", "", False) == "widened"
    assert settings_change_kind('"model": "x"', "", "", False) == "other"


def test_segments_keep_quoted_and_substituted_text_together() -> None:
    text = "a 'b; c' && d \"$(e | f)\" || g\nh"
    assert [text[x:y].strip() for x, y in segments(text)] == ["a 'b; c'", 'd "$(e | f)"', "g", "h"]


# -- denied, then retried --------------------------------------------------------------
def test_denied_then_retried_elsewhere() -> None:
    retried = bash("echo 'alias ls=rm' >> /home/u/.bashrc")
    findings = _run(PrivilegeChanges(), denied("Write", "/home/u/.bashrc"), retried)
    assert [f.rule for f in findings] == ["denied_retry"]
    assert findings[0].event_ids == ("e1", "e2")
    wrapped = _run(PrivilegeChanges(), denied("Bash", "rm -rf dist"), bash("bash -c 'rm -rf dist'"))
    assert [(f.rule, f.event_ids) for f in wrapped] == [("denied_retry", ("e1", "e2"))]


def test_a_denied_action_is_not_judged_and_a_plain_retry_is_not_evasion() -> None:
    assert _run(PrivilegeChanges(), {**bash("sudo -i"), "outcome": "denied"}) == []
    again = _run(PrivilegeChanges(), denied("Bash", "pytest -q tests/"), bash("pytest -q tests/"))
    assert again == []


def test_denied_memory_is_bounded() -> None:
    det = PrivilegeChanges(PrivilegeChangesConfig(max_denied_remembered=2))
    table = SessionTable()
    for ev in _events(*(denied("Bash", f"make target-{i}") for i in range(10))):
        session = table.touch(ev)[0]
        det.observe(ev, session)
    assert [d[1] for d in session.scratch[DENIED_KEY]["denied"]] == ["make target-8", "make target-9"]


# -- configuration -------------------------------------------------------------------
def test_config() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"no_such_option": 1}, PrivilegeChangesConfig)
    assert _top(PrivilegeChanges(PrivilegeChangesConfig(sudo_score=0.6)), bash("sudo apt update")) == 0.6
    retry = (denied("Write", "/home/u/.bashrc"), bash("echo x >> /home/u/.bashrc"))
    assert _top(PrivilegeChanges(PrivilegeChangesConfig(denied_retry_score=0.9)), *retry) == 0.9
    extra = {"tool": "Write", "target": "/etc/agent/policy.json", "args": {"file_path": "/etc/agent/policy.json"}}
    assert _top(PrivilegeChanges(), extra) == 0.0
    configured = PrivilegeChanges(PrivilegeChangesConfig(extra_settings_paths=("/etc/agent/",)))
    assert _rules(configured, extra) == {"self_settings_edit"}


def test_operator_overrides_win_over_the_score_keys() -> None:
    cfg = PrivilegeChangesConfig(sudo_score=0.6, rules={"sudo": RuleOverride(score=0.3)})
    assert _top(PrivilegeChanges(cfg), bash("sudo apt update")) == 0.3
    off = PrivilegeChangesConfig(rules={"root_shell": RuleOverride(enabled=False)})
    assert _rules(PrivilegeChanges(off), bash("sudo -i")) == set()
    with pytest.raises(ConfigError):
        PrivilegeChanges(PrivilegeChangesConfig(rules={"no_such_rule": RuleOverride()}))
    # without the shipped rules, the score keys have no rule to rescore (and are not an error)
    assert PrivilegeChanges(PrivilegeChangesConfig(builtin=False, sudo_score=0.6)).rules == ()
