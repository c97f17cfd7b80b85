"""Privilege changes and guardrail circumvention: the ``privilege_changes`` rule pack.

*Privilege escalation*: ``sudo``/``su``/``doas``, setuid and world-writable ``chmod``,
``chown root``, edits to the sudoers configuration, adding users to admin groups, cloud and
database admin grants, and the agent rewriting its own permission settings
(``.claude/settings.json``, ``.mcp.json``, ``.cursor/`` …).

*Guardrail circumvention*: ``--dangerously-skip-permissions``, disabling the sandbox,
tampering with hooks, bypassing the egress proxy, hiding shell history, running decoded or
downloaded code, flushing the firewall, disabling SELinux/AppArmor, killing security agents —
and retrying an action the user denied through another tool or a wrapper.

The rules are ``detectors/rules/privilege_changes.yaml`` (conditions over each action's typed
effects); the checks they name are :mod:`agentwatch.detectors.checks.privilege_changes_checks`.
A finding's category is its rule's. A denied action is never judged as an action (it did not
happen); it is remembered for ``denied_retry``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import msgspec

from agentwatch.detect.detector_spec import DetectorConfig, Finding
from agentwatch.detect.session_state import SessionState
from agentwatch.detectors.checks.privilege_changes_checks import LIMITS_TABLE, retry_of
from agentwatch.detectors.rule_pack import RuleOverride, RulePack, RulePackConfig
from agentwatch.events.audit_event import AuditEvent

__all__ = ["PrivilegeChanges", "PrivilegeChangesConfig"]

PRIV = "privilege_escalation"
GUARD = "guardrail_circumvention"


class PrivilegeChangesConfig(RulePackConfig):
    """Tunables of :class:`PrivilegeChanges` (with every rule pack's: ``builtin``, ``files``, ``rules`` …).

    Parameters
    ----------
    extra_settings_paths
        More path fragments (lower-case) of files that hold the agent's own permissions.
    denied_retry_score
        Score of retrying, through another tool or a wrapper, an action the user denied
        (rule ``denied_retry``; ``rules.denied_retry.score`` wins when both are set).
    max_denied_remembered
        Denied actions remembered per session (oldest forgotten first).
    sudo_score
        Score of a plain ``sudo``/``doas`` (rule ``sudo``; a root shell or piped password scores higher).
        This key and ``denied_retry_score`` rescore shipped rules: they apply while ``builtin`` is true.
    max_scan_chars
        Command, SQL and written text the checks read: longer text is read in its first three
        quarters and last quarter of this many characters (bounds the cost of pathological events).
    """

    extra_settings_paths: tuple[str, ...] = ()
    denied_retry_score: float = 0.7
    max_denied_remembered: int = 4
    sudo_score: float = 0.45
    max_scan_chars: int = 2048


class PrivilegeChanges(RulePack):
    """Flags privilege escalation and attempts to get around the agent's guardrails.

    Scores: ``--dangerously-skip-permissions``, sudoers edits and admin grants ~0.9;
    setuid, sandbox off, decoded code run through a shell, security tooling disabled,
    admin groups ~0.85; firewall flush, hidden history, root shells ~0.8; proxy bypass,
    world-writable files, settings edits ~0.75; a plain ``sudo`` 0.45 (low: sudo alone is ordinary administration).

    Examples
    --------
    >>> from agentwatch.events.audit_event import from_mapping
    >>> from agentwatch.detect.session_state import SessionTable
    >>> ev = from_mapping({"event_id": "e1", "ts": 1767225600000, "session_id": "s1",
    ...                    "agent_id": "coder", "kind": "tool_call", "tool": "Bash",
    ...                    "target": "claude --dangerously-skip-permissions -p 'fix the build'"})
    >>> [finding] = PrivilegeChanges().observe(ev, SessionTable().touch(ev)[0])
    >>> finding.rule, finding.score, finding.category
    ('skip_permissions', 0.9, 'guardrail_circumvention')
    """

    name: ClassVar[str] = "privilege_changes"
    categories: ClassVar[frozenset[str]] = frozenset({PRIV, GUARD})
    config_type: ClassVar[type[DetectorConfig]] = PrivilegeChangesConfig
    check_modules: ClassVar[tuple[str, ...]] = ("agentwatch.detectors.checks.privilege_changes_checks",)
    cost_us: ClassVar[float] = 29.0  # bench/detector_cost.py: 0.87× the 33 µs before check prefilters (same run)
    summary: ClassVar[str] = "sudo, setuid, admin grants, self-granted permissions, sandbox/hook/proxy bypasses."

    def __init__(self, config: PrivilegeChangesConfig | None = None) -> None:
        cfg = config if config is not None else PrivilegeChangesConfig()
        if isinstance(cfg, PrivilegeChangesConfig) and cfg.builtin:  # the two score keys name shipped rules
            cfg = msgspec.structs.replace(cfg, rules=_with_scores(cfg))
        super().__init__(cfg)

    def config_tables(self, config: RulePackConfig) -> dict[str, Any]:
        """``extra_settings_paths`` and the checks' bounds, from this detector's own keys."""
        assert isinstance(config, PrivilegeChangesConfig)
        return {
            LIMITS_TABLE: {
                "max_scan_chars": max(256, config.max_scan_chars),
                "max_denied_remembered": max(1, config.max_denied_remembered),
            },
            "extra_settings_paths": [p.lower() for p in config.extra_settings_paths if p],
        }

    def observe(self, event: AuditEvent, session: SessionState) -> Sequence[Finding]:
        findings = super().observe(event, session)
        if event.outcome == "denied":
            return ()  # not an action that happened; the denied_retry check has remembered it
        denied_id = retry_of(session.scratch, event.event_id) if findings else None
        if denied_id is None:
            return findings
        return [
            msgspec.structs.replace(f, event_ids=(denied_id, *f.event_ids)) if f.rule == "denied_retry" else f
            for f in findings
        ]


def _with_scores(cfg: PrivilegeChangesConfig) -> dict[str, RuleOverride]:
    """The operator's rule overrides, with ``sudo_score`` and ``denied_retry_score`` as the scores of their
    rules unless an override of that rule sets a score itself."""
    rules = dict(cfg.rules)
    for rule_id, score in (("sudo", cfg.sudo_score), ("denied_retry", cfg.denied_retry_score)):
        given = rules.get(rule_id, RuleOverride())
        if given.score is None:
            rules[rule_id] = msgspec.structs.replace(given, score=score)
    return rules
