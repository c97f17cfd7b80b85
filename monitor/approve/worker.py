"""The approval worker: two threads per process, and the wiring of how approvers are reached.

:func:`approval_runtime` assembles an :class:`~agentwatch.approve.runtime.ApprovalRuntime` for
``agentwatch run``, ``agentwatch serve`` and ``agentwatch approve|deny``: the domain
(executor, sweeper) plus the outbox — Slack's, when a notifier is configured. This is the
one place the approval domain and Slack meet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from agentwatch.approve.executor import Send
from agentwatch.approve.request import now_ms
from agentwatch.approve.runtime import ApprovalRuntime
from agentwatch.observe import metrics
from agentwatch.respond.action_spec import Action

if TYPE_CHECKING:
    from agentwatch.approve.slack.notifier import SlackNotifier

log = logging.getLogger(__name__)


def approval_runtime(
    engine: Engine,
    data_dir: Path,
    control_topic: str,
    *,
    send: Send | None = None,
    notifier: SlackNotifier | None = None,
    registry: dict[str, type[Action]] | None = None,
    clock: Callable[[], int] = now_ms,
) -> ApprovalRuntime:
    """The runtime for one process; ``notifier`` (Slack) becomes its outbox, ``None`` leaves messages unsent."""
    outbox = None
    if notifier is not None:
        from agentwatch.approve.slack.outbox import SlackOutbox

        outbox = SlackOutbox(engine, notifier, clock)
    return ApprovalRuntime(engine, data_dir, control_topic, send=send, outbox=outbox, registry=registry, clock=clock)


class ApprovalWorker:
    """Two threads for one :class:`ApprovalRuntime`, every ``interval_s`` and at once on :meth:`wake`:
    one executes and sweeps, the other does the after-effects (postmortems, the outbox) — so a
    slow or unreachable Slack never delays containment."""

    def __init__(self, runtime: ApprovalRuntime, interval_s: float = 0.2) -> None:
        self.runtime = runtime
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._wake_after = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if not self._threads:
            self._stop.clear()
            self._threads = [
                threading.Thread(
                    target=self._loop, args=(self._wake, self._execute), name="agentwatch-approvals", daemon=True
                ),
                threading.Thread(
                    target=self._loop,
                    args=(self._wake_after, self._after),
                    name="agentwatch-approvals-slack",
                    daemon=True,
                ),
            ]
            for thread in self._threads:
                thread.start()

    def wake(self) -> None:
        """A decision was recorded: execute now, and update what approvers see."""
        self._wake.set()
        self._wake_after.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._wake_after.set()
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        self._threads = []

    def _loop(self, event: threading.Event, body: Callable[[], object]) -> None:
        while not self._stop.is_set():
            event.wait(timeout=self.interval_s)
            event.clear()
            if self._stop.is_set():
                return
            guarded(body)

    def _execute(self) -> None:
        stats = self.runtime.tick(after_effects=False)
        if stats.executed or stats.failed or stats.escalated or stats.expired or stats.cancelled:
            self._wake_after.set()

    def _after(self) -> None:
        self.runtime.after_effects()


def guarded(body: Callable[[], object]) -> object:
    """Run one round; a failure of the store is logged and counted, and the next round retries."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return body()
    except (SQLAlchemyError, OSError) as exc:
        log.warning("approval round failed; retrying: %s", exc)
        metrics.PLUGIN_ERRORS.labels("approvals", "worker").inc()
        return None
