"""The notifier plugin contract (entry-point group ``agentwatch.notifiers``).

A notifier class has a ``name`` (its entry-point name and its ``type`` in the config), a
``params_type`` (a msgspec Struct: its own settings, unknown keys rejected) and is built with
``cls(params, context)``. :meth:`Notifier.send` delivers one :class:`Notification` and returns
what it wants kept for the next one of the same incident (the Slack message's channel and ts);
raising :class:`NotifyError` (or anything else) makes the dispatcher retry with backoff.

Every text field of a :class:`Notification` is redacted before a notifier sees it; it is still
agent-written, so each notifier escapes it for its own medium (Slack mrkdwn, JSON).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import msgspec

from agentwatch.respond.action_spec import OutgoingMessage

NOTIFIERS_GROUP = "agentwatch.notifiers"

Severity = Literal["info", "low", "medium", "high", "critical"]
Change = Literal["opened", "severity_raised", "contained", "resolved"]


class NotifyError(RuntimeError):
    """Delivery failed; the dispatcher retries (``retry_after_s`` overrides its backoff)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Notification(msgspec.Struct, kw_only=True):
    """One incident change as every notifier sees it (agent-written text already redacted)."""

    seq: int  #: the change's position in the store's outbox: unique, increasing
    change: Change
    first: bool  #: no earlier change of this incident reached this notifier
    incident_id: str
    title: str
    severity: str
    status: str
    ts_ms: int  #: when the change happened (wall clock)
    actor: str
    session_id: str
    agent_id: str
    principal: str | None
    mode: str
    opened_ms: int
    contained_ms: int | None
    resolved_ms: int | None
    detectors: list[str]
    categories: list[str]
    summaries: list[str]  #: the incident's alert summaries, highest severity first (at most 5)
    rules: list[str]  #: ``detector/rule`` ids that fired
    techniques: list[str]  #: MITRE ATT&CK technique ids from those rules' tags
    resources: list[str]  #: targets of the alerts' supporting events (paths, tools' objects)
    destinations: list[str]  #: hosts, buckets and addresses those events reach


class NotifierParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Settings every notifier has (``[notifiers.<name>]``), besides its own."""

    type: str
    enabled: bool = True
    min_severity: Severity = "medium"
    #: Tries per change before it is dropped (counted in ``agentwatch_notifications_total{outcome="dropped"}``).
    max_attempts: int = 8
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 300.0


@dataclass(slots=True)
class NotifierContext:
    """What a notifier may use: the data directory and the Kafka sender (``None`` without Kafka)."""

    data_dir: Path
    send: Callable[[list[OutgoingMessage]], None] | None = None
    environ: dict[str, str] | None = None

    def env(self) -> dict[str, str]:
        return dict(os.environ) if self.environ is None else self.environ


class Notifier:
    """Base class of notifier plugins."""

    name: ClassVar[str] = ""
    params_type: ClassVar[type[msgspec.Struct]] = msgspec.Struct

    def send(self, note: Notification, state: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release what the notifier holds (files, connections)."""


def validate_notifier_class(cls: Any) -> list[str]:
    problems = []
    if not isinstance(cls, type) or not issubclass(cls, Notifier):
        return [f"{cls!r} is not a subclass of agentwatch.notify.spec.Notifier"]
    if not cls.name:
        problems.append("no name")
    if not (isinstance(cls.params_type, type) and issubclass(cls.params_type, msgspec.Struct)):
        problems.append("params_type is not a msgspec Struct")
    return problems


def secret(params: Any, field: str, context: NotifierContext, required: bool = True) -> str | None:
    """A secret named in the config by ``<field>_env`` (an environment variable) or ``<field>_file``
    (a file whose first line is the value) — never the value itself, so it stays out of config
    files, command lines and logs."""
    env_name = getattr(params, f"{field}_env", None)
    file_name = getattr(params, f"{field}_file", None)
    if file_name:
        try:
            value = Path(file_name).read_text().strip()
        except OSError as exc:
            raise ValueError(f"{field}_file {file_name}: {exc.strerror or exc}") from None
        if value:
            return value
    if env_name:
        value = context.env().get(env_name, "").strip()
        if value:
            return value
    if required:
        where = " or ".join(x for x in (f"${env_name}" if env_name else "", file_name or "") if x) or "nothing"
        raise ValueError(f"{field} is not set (looked in {where})")
    return None
