"""The response-action plugin contract — everything an action may implement, in one file.

A playbook step names an action (entry point group ``agentwatch.actions``) and gives it
typed parameters. The responder calls :meth:`Action.execute` at most once per
successful run of a step: every step has a key (``<incident>:<playbook>:<step>``)
and a stored state (pending, running, done, failed, skipped), so a replayed alert or
a restarted monitor never runs a done step again.

Who calls what
--------------
``execute(ctx, params)``
    The responder, when the step's turn comes (earlier steps of the playbook are
    finished). Return an :class:`ActionOutcome`; raise :class:`ActionFailed` (or any
    exception — it is caught, stored with the step and retried up to the step's
    ``max_attempts``) when the effect did not happen.
``urgent``
    ``True`` runs the step inside the monitor's consume loop, in the same batch as
    the alert that triggered it, with its messages delivered before the batch's
    offsets are committed (``terminate_session``). ``False`` runs it on the
    responder's worker thread (evidence, postmortem, webhooks).
``gated``
    ``True`` for containment that needs a human decision first: subclass
    :class:`agentwatch.respond.gated_action_spec.GatedAction` (the gated-action contract).

Registering::

    [project.entry-points."agentwatch.actions"]
    my_action = "my_package.actions:MyAction"
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import msgspec
from sqlalchemy.engine import Connection, Engine

from agentwatch.respond.incident_record import IncidentRecord


class ActionParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base class of an action's typed parameters; unknown keys are an error."""


class ActionFailed(RuntimeError):
    """The action's effect did not happen; the step is marked failed (and retried)."""


@dataclass(slots=True)
class OutgoingMessage:
    """A Kafka message an action wants delivered (the control topic, usually)."""

    topic: str
    key: bytes | None
    value: bytes
    #: The ``command_id`` in ``value`` (control commands). When a step is run again after
    #: an attempt that may have delivered (a crash, a failed send), a message whose id is
    #: already on its topic is not sent twice.
    dedup_id: str | None = None


@dataclass(slots=True)
class ActionContext:
    """What an action may use. ``now_ms`` is the responder's clock for this step."""

    incident: IncidentRecord
    action_key: str
    engine: Engine
    data_dir: Path
    control_topic: str
    now_ms: int
    #: The responder's open transaction: write state that must commit with the step.
    connection: Connection | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ActionOutcome:
    """What happened: a short result for the timeline, and messages to deliver."""

    summary: str
    result: dict[str, Any] = field(default_factory=dict)
    messages: list[OutgoingMessage] = field(default_factory=list)
    #: Set when the action stopped the bleeding (the incident becomes ``contained``).
    contains: bool = False


class Action(abc.ABC):
    """Base class of every response action, built-in or third-party."""

    name: ClassVar[str]
    params_type: ClassVar[type[ActionParams]] = ActionParams
    urgent: ClassVar[bool] = False
    gated: ClassVar[bool] = False
    summary: ClassVar[str] = ""

    @abc.abstractmethod
    def execute(self, ctx: ActionContext, params: ActionParams) -> ActionOutcome:
        """Carry the action out for ``ctx.incident``; idempotent for the same ``ctx.action_key``."""


def validate_action_class(cls: Any) -> list[str]:
    """Problems with an action class, as sentences (empty when it is well-formed)."""
    if not (isinstance(cls, type) and issubclass(cls, Action)):
        return [f"{cls!r} is not a subclass of agentwatch.respond.action_spec.Action"]
    problems = []
    if getattr(cls, "__abstractmethods__", None):
        problems.append(f"does not implement {sorted(cls.__abstractmethods__)}")
    if not isinstance(getattr(cls, "name", None), str) or not cls.name.isidentifier():
        problems.append("`name` must be a Python identifier string")
    if not (isinstance(cls.params_type, type) and issubclass(cls.params_type, ActionParams)):
        problems.append("`params_type` must subclass ActionParams")
    return problems


def data_path(ctx: ActionContext, *parts: str) -> Path:
    """A path under the run's data directory (created)."""
    path = ctx.data_dir.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
