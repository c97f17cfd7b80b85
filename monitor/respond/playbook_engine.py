"""Playbooks: declarative YAML — a match and ordered steps, each an action plugin.

Example (``playbooks/contain_session.yaml``)::

    name: contain_session
    mode: enforce            # shadow: record what would be done, do nothing
    match:
      min_severity: high
      alert_modes: [enforce] # only alerts from detectors rolled out to `enforce`
      categories: [secret_access, injection_exfiltration]   # any of (empty: all)
      detectors: []          # any of (empty: all)
      agents: ["coder-*"]    # agent_id glob patterns (empty: all)
    fallback: false          # true: only when no other playbook matches (default_incident.yaml)
    steps:
      - name: terminate
        action: terminate_session
      - name: evidence
        action: collect_evidence
        params: {lookback_s: 3600}

Files are validated when loaded: unknown keys, unknown actions and bad parameters stop
start-up with the file and field named.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

import agentwatch.playbooks as builtin_playbooks
from agentwatch.detect.alerts import Alert
from agentwatch.detect.policy import SEVERITY_RANK
from agentwatch.errors import ConfigError
from agentwatch.plugin_loader import load_group
from agentwatch.respond.action_spec import Action, ActionParams, validate_action_class

ACTIONS_GROUP = "agentwatch.actions"
BUILTIN_PLAYBOOKS = Path(builtin_playbooks.__file__).resolve().parent  # playbooks/, installed as agentwatch.playbooks


class Match(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    min_severity: Literal["info", "low", "medium", "high", "critical"] = "high"
    alert_modes: list[Literal["alert", "enforce"]] = msgspec.field(default_factory=lambda: ["enforce"])
    categories: list[str] = msgspec.field(default_factory=list)
    detectors: list[str] = msgspec.field(default_factory=list)
    agents: list[str] = msgspec.field(default_factory=list)


class Step(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    action: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    max_attempts: int = 5


class PlaybookSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    description: str = ""
    mode: Literal["shadow", "enforce"] = "enforce"
    #: A catch-all: planned for an alert only when no other (non-fallback) playbook matches it and
    #: the incident has no steps of another playbook yet — so its steps never duplicate theirs.
    fallback: bool = False
    match: Match = msgspec.field(default_factory=Match)
    steps: list[Step]


@dataclass(slots=True)
class Playbook:
    """A validated playbook: its spec, and per step the action instance and typed params."""

    spec: PlaybookSpec
    actions: list[tuple[Step, Action, ActionParams]]
    source: Path

    @property
    def name(self) -> str:
        return self.spec.name

    def matches(self, alert: Alert) -> bool:
        m = self.spec.match
        if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[m.min_severity]:
            return False
        if alert.mode not in m.alert_modes:
            return False
        if m.categories and alert.category not in m.categories:
            return False
        if m.detectors and alert.detector not in m.detectors:
            return False
        return not m.agents or any(fnmatch.fnmatchcase(alert.agent_id, pattern) for pattern in m.agents)


def discover_actions() -> dict[str, type[Action]]:
    """Every action class registered under ``agentwatch.actions``, by name."""
    return load_group(ACTIONS_GROUP, validate_action_class)


def load_playbooks(directory: Path | None = None, actions: dict[str, type[Action]] | None = None) -> list[Playbook]:
    """Every ``*.yaml`` playbook in ``directory`` (default: the built-in ``playbooks/``)."""
    directory = directory or BUILTIN_PLAYBOOKS
    if not directory.is_dir():
        raise ConfigError(f"playbook directory {directory} does not exist")
    actions = discover_actions() if actions is None else actions
    playbooks: list[Playbook] = []
    for path in sorted(directory.glob("*.yaml")):
        playbooks.append(load_playbook(path, actions))
    names = [p.name for p in playbooks]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigError(f"playbook names used twice in {directory}: {sorted(duplicates)}")
    return playbooks


def load_playbook(path: Path, actions: dict[str, type[Action]]) -> Playbook:
    try:
        raw = yaml.safe_load(path.read_text())
        spec = msgspec.convert(raw, PlaybookSpec)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not spec.steps:
        raise ConfigError(f"{path}: a playbook needs at least one step")
    seen: set[str] = set()
    resolved = []
    for step in spec.steps:
        if step.name in seen:
            raise ConfigError(f"{path}: step name {step.name!r} used twice")
        seen.add(step.name)
        cls = actions.get(step.action)
        if cls is None:
            raise ConfigError(
                f"{path}: step {step.name!r} uses unknown action {step.action!r}; installed: {sorted(actions)}"
            )
        try:
            params = msgspec.convert(step.params, cls.params_type)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"{path}: step {step.name!r} params: {exc}") from None
        resolved.append((step, cls(), params))
    return Playbook(spec=spec, actions=resolved, source=path)
