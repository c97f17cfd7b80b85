"""``agentwatch respond``: a process that only runs response steps, claimed from the store.

``agentwatch run`` with ``[response] worker = "external"`` keeps in its batch only what stops
the bleeding — it attaches alerts to incidents, plans playbook steps (``pending`` rows) and
runs the urgent ones (``terminate_session``) before the batch's offsets are committed. Every
other step (evidence bundles, postmortems, approval requests, webhooks) and the approval
worker (approved containment, expiries, Slack messages) run here, in as many processes as
the load needs: a step is claimed by a compare-and-set on its row and owned by the claiming
incarnation (:mod:`agentwatch.respond.liveness`), so two processes never run it at once, and
a process that dies mid-step has it taken over by any other at once. The same
:class:`~agentwatch.respond.responder.Responder` code runs the steps as ``run``'s own worker
thread does: same order, retries, backoff and ``max_attempts``.

With ``[response] worker = "alerts"`` ``run`` does not even plan: ``respond --consume`` (the
default in that mode) reads the alerts and input topics as its own consumer group, keeps
incidents and journals and plans the steps (:mod:`agentwatch.respond.alert_consumer`), while
its worker thread — and any plain ``respond --no-consume`` — runs them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from agentwatch.config import Config
from agentwatch.notify.dispatcher import NotificationWorker
from agentwatch.notify.loader import build_notifiers
from agentwatch.notify.spec import NotifierContext
from agentwatch.respond.action_spec import OutgoingMessage
from agentwatch.respond.journal import EventJournal
from agentwatch.respond.playbook_engine import Playbook, load_playbooks
from agentwatch.respond.responder import Responder
from agentwatch.store import open_store

log = logging.getLogger(__name__)


def build_responder(
    config: Config,
    send: Callable[[list[OutgoingMessage]], None] | None,
    *,
    external_worker: bool = False,
    engine: Engine | None = None,
    session_commands: bool = False,
) -> Responder:
    """The responder ``run`` and ``respond`` share: store (``engine``, or opened from the config),
    playbooks, data directory, Slack from the environment, the configured notifiers, and ``send``
    for the commands worker steps produce (``KafkaSender``; ``None`` when no Kafka was given)."""
    settings = config.monitor
    engine = engine if engine is not None else open_store(config.store_url)
    playbooks = load_playbooks(Path(settings.playbooks_dir) if settings.playbooks_dir else None)
    notifiers = build_notifiers(config.notifiers, NotifierContext(data_dir=config.data_dir.resolve(), send=send))
    return Responder(
        engine,
        playbooks,
        config.data_dir.resolve(),
        settings.control_topic,
        config.incidents,
        EventJournal(settings.journal_events),
        send=send,
        external_worker=external_worker,
        notifications=NotificationWorker(engine, notifiers) if notifiers else None,
        session_commands=session_commands,
    )


def steps_that_send(playbooks: list[Playbook]) -> list[str]:
    """``playbook/step (action)`` of every step that delivers control commands — a retried
    ``terminate_session`` or an approved gated action — and so needs Kafka."""
    return [
        f"{playbook.name}/{step.name} ({step.action})"
        for playbook in playbooks
        for step, action, _params in playbook.actions
        if action.urgent or action.gated
    ]


@dataclass(slots=True)
class WorkerStats:
    steps: int = 0


def run_worker(
    responder: Responder, stop: threading.Event, poll_s: float = 0.5, beside: threading.Thread | None = None
) -> WorkerStats:
    """Run ``responder``'s worker (and approval worker) until ``stop`` is set, then stop it:
    the step being run is finished, nothing new is claimed, and this process's liveness lock
    is released so whatever it still owned is anyone's to take over. ``beside`` (the alerts
    consumer's thread, which stops on the same event) is joined first: its poll finishes
    before the liveness lock goes."""
    responder.start()
    try:
        while not stop.wait(poll_s):
            pass
    finally:
        if beside is not None:
            beside.join(timeout=60)
        responder.stop(drain=False)
    return WorkerStats(steps=responder.steps_run)
