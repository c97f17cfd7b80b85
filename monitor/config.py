"""Operator configuration: one TOML file, typed, unknown keys rejected.

Example ``agentwatch.toml``::

    [monitor]
    data_dir = "/var/lib/agentwatch"
    session_ttl_s = 1800

    [detectors.secret_access]
    mode = "enforce"
    min_score = 0.6

    [detectors.rates]
    mode = "shadow"            # new detections roll out in shadow first
    [detectors.rates.config]
    calls_per_minute = 120
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

from agentwatch.detect.policy import DetectorPolicy
from agentwatch.errors import ConfigError
from agentwatch.ingest.kafka_security import SECRET_NAMES, KafkaSettings
from agentwatch.respond.incident_lifecycle import IncidentSettings

DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")

#: Topic → input format, as DESIGN.md lays out the flow.
DEFAULT_INPUTS = {
    "agent.audit": "native",
    "otlp_logs": "otlp",  # otlp: protobuf or JSON, as the Collector writes
    "agent.audit.claude-hook": "claude-hook",
}


class MonitorSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Runtime settings shared by ``run`` and ``replay``."""

    data_dir: str = "agentwatch-data"
    #: SQLAlchemy URL of the store; default: SQLite at ``<data_dir>/agentwatch.db``.
    store_url: str | None = None
    session_ttl_s: float = 1800.0
    max_sessions: int = 200_000
    #: Last events each session keeps for detectors: the built-ins read only the last one, so only it is
    #: kept by default (each kept event holds its own target, args and attributes); raise it for a plugin
    #: that reads ``session.recent`` further back.
    recent_events: int = 1
    group_id: str = "agentwatch-monitor"
    inputs: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_INPUTS))
    alerts_topic: str = "agentwatch.alerts"
    dlq_topic: str = "agentwatch.dlq"
    control_topic: str = "agent.control"
    #: Where the monitor publishes the audit chain's head (``agentwatch.respond.audit_anchor``).
    audit_anchor_topic: str = "agentwatch.audit.anchor"
    #: Seconds between audit-head anchors (a log line and a record on ``audit_anchor_topic``); 0: never.
    audit_anchor_s: float = 60.0
    max_poll_records: int = 2000
    #: Events kept in memory across all sessions for an incident's look-back.
    journal_events: int = 50_000
    #: Playbook directory; default: the built-in ``playbooks/``.
    playbooks_dir: str | None = None
    #: Run incidents and playbooks in this process (``false``: detection only).
    respond: bool = True
    #: Checkpoint session state with the consumed position after every batch, and restore it
    #: when a partition is assigned (``false``: state in memory only, lost on restart).
    durable_state: bool = True
    #: Seconds between learned-baseline syncs with the store (and the other monitors of the group).
    state_sync_s: float = 10.0


class HookSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``serve``'s Claude Code hook endpoint (``POST /v1/hooks/claude-code``): how an alert on a proposed tool
    call becomes Claude Code's ``permissionDecision``.

    ``deny`` — an alert from a detector whose mode is in ``deny_modes`` at ``deny_min_severity`` or above
    (the hard boundaries: enforce-mode rules, high and critical); ``ask`` — any other alert, whatever the
    detector's mode (shadow and learned detectors included), at ``ask_min_severity`` or above; ``allow`` —
    nothing (or only alerts below ``ask_min_severity``).
    """

    deny_min_severity: Literal["info", "low", "medium", "high", "critical"] = "high"
    deny_modes: list[Literal["shadow", "alert", "enforce"]] = msgspec.field(default_factory=lambda: ["enforce"])
    ask_min_severity: Literal["info", "low", "medium", "high", "critical"] = "medium"
    #: Where serve publishes every hook event it receives (format ``claude-hook``, keyed by session).
    topic: str = "agent.audit.claude-hook"
    #: Seconds a containment lookup (terminated session, quarantined agent, disabled tool, blocked host) is cached.
    containment_cache_s: float = 2.0
    #: Distinct agent ids the per-agent decision counter names; later ones are counted as ``other``.
    max_agent_labels: int = 100


#: Where a monitor's non-urgent response steps run (``[response] worker``).
WorkerMode = Literal["inline", "external", "alerts"]
WORKER_MODES: tuple[WorkerMode, ...] = ("inline", "external", "alerts")


class ResponseSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Who runs the response steps that are not urgent (evidence, postmortems, approval requests, webhooks)."""

    #: ``inline``: ``run``'s own worker thread runs them (and drains them when it stops);
    #: ``external``: ``run`` only plans them and runs the urgent ones (``terminate_session``) in
    #: the batch, and ``agentwatch respond`` processes on the same store claim and run the rest;
    #: ``alerts``: ``run``'s batch touches no incident or journal row — it publishes alerts and
    #: ``terminate_session`` only — and ``agentwatch respond`` (consuming the alerts and input
    #: topics as its own group) keeps incidents, journals and every other step.
    worker: WorkerMode = "inline"


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The whole file: monitor settings, response workers, incident grouping, one policy per detector, notifiers."""

    monitor: MonitorSettings = msgspec.field(default_factory=MonitorSettings)
    response: ResponseSettings = msgspec.field(default_factory=ResponseSettings)
    #: TLS/SASL for every Kafka client (:mod:`agentwatch.ingest.kafka_security`); secrets: env or files.
    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)
    incidents: IncidentSettings = msgspec.field(default_factory=IncidentSettings)
    hooks: HookSettings = msgspec.field(default_factory=HookSettings)
    detectors: dict[str, DetectorPolicy] = msgspec.field(default_factory=lambda: shipped_policies())
    #: ``[notifiers.<name>]``: where incident changes go (agentwatch.notify); each table is checked
    #: against its plugin's settings when the responder is built.
    notifiers: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return Path(self.monitor.data_dir)

    @property
    def store_url(self) -> str:
        if self.monitor.store_url:
            return self.monitor.store_url
        return f"sqlite:///{self.data_dir.resolve() / 'agentwatch.db'}"


def shipped_policies() -> dict[str, DetectorPolicy]:
    """The detector policies ``monitor/defaults.toml`` ships (what an empty config means)."""
    raw = tomllib.loads(DEFAULTS_FILE.read_text()).get("detectors", {})
    return msgspec.convert(raw, dict[str, DetectorPolicy])


def load_config(path: str | os.PathLike[str] | None = None, *, defaults: bool = True) -> Config:
    """The shipped defaults (``monitor/defaults.toml``) overlaid with ``path`` (or
    ``$AGENTWATCH_CONFIG``), key by key; then ``$AGENTWATCH_DATA_DIR``,
    ``$AGENTWATCH_STORE_URL`` and ``$AGENTWATCH_RESPONSE_WORKER`` override the file.
    """
    merged: dict[str, Any] = tomllib.loads(DEFAULTS_FILE.read_text()) if defaults else {}
    path = path or os.environ.get("AGENTWATCH_CONFIG")
    if path:
        try:
            user = tomllib.loads(Path(path).read_bytes().decode())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        merged = _overlay(merged, user)
        kafka = user.get("kafka")
        for name in SECRET_NAMES:
            if isinstance(kafka, dict) and name in kafka:
                raise ConfigError(
                    f"config file {path}: [kafka] {name} — secrets do not go in the config file; hint: set "
                    f'AGENTWATCH_KAFKA_{name.upper()} or {name}_file = "/run/secrets/…"'
                )
    try:
        config = msgspec.convert(merged, Config)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ConfigError(f"config{f' file {path}' if path else ''}: {exc}") from None
    data_dir = os.environ.get("AGENTWATCH_DATA_DIR")
    if data_dir:
        config.monitor.data_dir = data_dir
    store_url = os.environ.get("AGENTWATCH_STORE_URL")
    if store_url:
        config.monitor.store_url = store_url
    worker = os.environ.get("AGENTWATCH_RESPONSE_WORKER")
    if worker:
        if worker not in WORKER_MODES:
            raise ConfigError(f"AGENTWATCH_RESPONSE_WORKER={worker[:40]!r}: expected one of {', '.join(WORKER_MODES)}")
        config.response.worker = worker  # type: ignore[assignment]  # checked against WORKER_MODES above
    _check(config, path)
    return config


def _check(config: Config, path: str | os.PathLike[str] | None) -> None:
    """What every command (``replay`` as much as ``run``) must refuse before it starts."""
    from agentwatch.formats import DECODERS

    where = f"config file {path}" if path else "config"
    for topic, fmt in config.monitor.inputs.items():
        if fmt not in DECODERS:
            raise ConfigError(
                f"{where}: [monitor.inputs] {topic[:80]!r} = {fmt[:40]!r} is not a known input format; "
                f"known: {', '.join(sorted(DECODERS))}"
            )
    playbooks = config.monitor.playbooks_dir
    if playbooks and not Path(playbooks).is_dir():
        raise ConfigError(f"{where}: [monitor] playbooks_dir {playbooks[:200]!r} is not a directory")


def _overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, recursively for tables (``detectors.x.config`` included)."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _overlay(out[key], value)
        else:
            out[key] = value
    return out
