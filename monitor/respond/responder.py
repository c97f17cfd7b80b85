"""The responder: alerts → incidents → playbook steps, each run once, state stored.

Inside the monitor's batch (:class:`~agentwatch.ingest.kafka_runner.KafkaMonitor`):

1. :meth:`Responder.prepare` — one transaction: attach each published alert to its
   incident, copy a new incident's look-back journal, write every matching playbook's
   steps as ``pending`` (idempotent by step key), append journal events of watched
   sessions, and run *urgent* steps (``terminate_session``) whose turn it is. Their
   messages join the batch's deliveries.
2. the batch is delivered (alerts, dead letters, control commands);
3. :meth:`Responder.confirm` — one transaction: those urgent steps become ``done`` and
   the incident ``contained``; only then are offsets committed.

A running step belongs to the monitor incarnation that claimed it (``actions.owner``,
:mod:`agentwatch.respond.liveness`). When that process dies between (1) and (3), any other
responder on the store — the restarted monitor, or a peer — sees the owner gone and
takes the step over at once on its worker thread, without a timer; before sending
again, it looks for the step's ``command_id`` on the control topic and does not send a
command that a dead incarnation already delivered. The grace period
(:data:`IN_FLIGHT_GRACE_MS`) remains only for rows whose owner cannot be asked.

Everything else (evidence, postmortem, webhooks) runs on the responder's worker
thread, step by step in playbook order, retried with backoff up to ``max_attempts``,
and resumed after a restart from the stored state. A failed step is visible
(``incidents show``), never silent, and does not stop the steps after it.

With ``external_worker`` (``[response] worker = "external"``) the monitor starts no worker
thread: it plans steps and runs the urgent ones in the batch as above, and
``agentwatch respond`` processes (:mod:`agentwatch.respond.worker_process`) — a
:class:`Responder` that only runs its worker — claim the rest from the store. Claims are
exclusive across processes, so any number of them can run.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import and_, select
from sqlalchemy.engine import Connection, Engine

from agentwatch import backoff
from agentwatch.approve.slack.notifier import SlackNotifier
from agentwatch.approve.worker import ApprovalWorker, approval_runtime
from agentwatch.detect.alerts import Alert
from agentwatch.events.audit_event import AuditEvent
from agentwatch.notify.dispatcher import NotificationWorker
from agentwatch.observe import metrics
from agentwatch.respond import audit_log
from agentwatch.respond.action_spec import ActionContext, ActionOutcome, OutgoingMessage
from agentwatch.respond.evidence import clean_staging
from agentwatch.respond.incident_lifecycle import IncidentSettings, add_timeline, attach_alert, set_status
from agentwatch.respond.incident_queries import OBSERVED_KEY, load_incident
from agentwatch.respond.journal import EventJournal
from agentwatch.respond.liveness import Liveness
from agentwatch.respond.playbook_engine import Playbook
from agentwatch.store import actions, incident_events, incidents, insert_ignoring_duplicates

log = logging.getLogger(__name__)

TERMINAL = ("done", "failed", "skipped")
LOOKBACK_MS = 3_600_000
#: A step "running" this long was abandoned — used only when its owner's liveness cannot be
#: asked (rows from before ``actions.owner``, a database without a liveness lock).
IN_FLIGHT_GRACE_MS = 30_000


def now_ms() -> int:
    return int(time.time() * 1000)


def _insert_pending(
    conn: Connection,
    key: str,
    incident_id: str,
    playbook: str,
    step: str,
    position: int,
    action: str,
    mode: str,
    params: dict[str, Any],
    now: int,
) -> None:
    """A playbook step, stored ``pending`` for a worker to claim."""
    conn.execute(
        actions.insert().values(
            action_key=key, incident_id=incident_id, playbook=playbook, step=step, position=position, action=action,
            mode=mode, status="pending", attempts=0, params=params, result={}, error=None, actor="agentwatch",
            created_ms=now,
        )
    )  # fmt: skip


@dataclass(slots=True)
class _Inline:
    action_key: str
    incident_id: str
    outcome: ActionOutcome


@dataclass(slots=True)
class Prepared:
    """What :meth:`Responder.prepare` produced for this batch."""

    messages: list[OutgoingMessage] = field(default_factory=list)
    inline: list[_Inline] = field(default_factory=list)


def _journal_row(incident_id: str, event: AuditEvent, observed_ms: int = 0) -> dict[str, Any]:
    body = msgspec.to_builtins(event.to_native())
    if observed_ms:  # when the event reached the input: the postmortem timeline's clock
        body[OBSERVED_KEY] = observed_ms
    return {"incident_id": incident_id, "event_id": event.event_id, "ts_ms": event.ts_ms, "body": body}


class Responder:
    """Incidents and playbooks for one monitor process.

    Parameters
    ----------
    engine
        The store.
    playbooks
        Loaded, validated playbooks.
    data_dir
        Where evidence bundles and postmortems are written.
    control_topic
        The topic control commands go to (``agent.control``).
    send
        Delivers messages produced by worker-thread actions (waits for the broker's
        ack); ``None`` when no worker action produces messages. If it has a
        ``find_delivered(topic, ids) -> set[str]`` method, a step run again after an
        attempt that may have delivered does not re-send a message whose ``dedup_id``
        is already on its topic.
    external_worker
        ``True``: :meth:`start` starts no worker thread (nor the approval worker) and
        :meth:`stop` does not drain — ``agentwatch respond`` processes run those steps.
    session_commands
        ``True`` (``agentwatch respond`` consuming the alerts topic, ``worker = "alerts"``):
        ``terminate_session`` uses the session's command id, the one ``run`` already sent in
        its batch (:mod:`agentwatch.respond.batch_containment`).
    """

    def __init__(
        self,
        engine: Engine,
        playbooks: list[Playbook],
        data_dir: Path,
        control_topic: str,
        settings: IncidentSettings | None = None,
        journal: EventJournal | None = None,
        send: Callable[[list[OutgoingMessage]], None] | None = None,
        clock: Callable[[], int] = now_ms,
        external_worker: bool = False,
        notifications: NotificationWorker | None = None,
        session_commands: bool = False,
    ) -> None:
        self.engine = engine
        #: Delivers incident changes to the notifiers (agentwatch.notify): a thread started and
        #: stopped with the worker, so ``run``'s own worker or ``agentwatch respond`` runs it.
        self.notifications = notifications
        self.external_worker = external_worker
        self.session_commands = session_commands
        self.playbooks = playbooks
        self.data_dir = data_dir
        self.control_topic = control_topic
        self.settings = settings or IncidentSettings()
        self.journal = journal or EventJournal()
        self.send = send
        self.clock = clock
        self._by_key = {
            (p.name, step.name): (p, step, action, params) for p in playbooks for step, action, params in p.actions
        }
        for _playbook, step, _action, _params in self._by_key.values():  # zero-valued series
            for outcome in ("done", "failed", "skipped"):
                metrics.ACTIONS.labels(step.action, outcome)
        self._watched: dict[str, str] = self._load_watched()
        #: This process's incarnation: owner of the steps it claims, held alive by a lock
        #: the OS or database drops when the process dies.
        self.liveness = Liveness(engine)
        #: Steps this incarnation is running now (claimed, not yet finished).
        self._in_flight: set[str] = set()
        self._in_flight_lock = threading.Lock()
        self._find_delivered: Callable[[str, set[str]], set[str]] | None = getattr(send, "find_delivered", None)
        # A crash mid-bundle leaves a staging directory of unredacted events: remove orphans now.
        clean_staging(data_dir / "evidence")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        #: Steps this process's worker loop claimed and ran (any outcome), for ``respond``'s summary.
        self.steps_run = 0
        #: Approved containment, expiries and Slack messages (agentwatch.approve.worker): its own
        #: threads, every 0.2 s, started and stopped with the worker.
        self.approvals = ApprovalWorker(
            approval_runtime(engine, data_dir, control_topic, send=send, notifier=SlackNotifier.from_env(), clock=clock)
        )

    def _load_watched(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(incidents.c.session_id, incidents.c.incident_id).where(incidents.c.status != "resolved")
            )
            return {row.session_id: row.incident_id for row in rows}

    # -- in the batch -----------------------------------------------------------------
    def prepare(
        self,
        events: list[AuditEvent],
        alerts: list[Alert],
        observed_ms: list[int] | None = None,
        now_ms: int | None = None,
    ) -> Prepared:
        """Record this batch's alerts and journal, start playbooks, run urgent steps.

        ``observed_ms``, parallel to ``events``, is when each reached the input (Kafka
        record time): the wall clock that time-to-detect and time-to-contain start from.
        ``now_ms`` (default: the clock) is when the alerts were raised — given by
        ``respond --consume``, which takes them after ``run`` published them.
        """
        self.journal.extend(events, observed_ms)
        prepared = Prepared()
        watched = self._watched
        watched_events: list[tuple[AuditEvent, int]] = []
        if watched:
            seen_at = observed_ms if observed_ms else itertools.repeat(0)
            watched_events = [(e, seen) for e, seen in zip(events, seen_at) if e.session_id in watched]  # noqa: B905
        if not alerts and not watched_events:
            return prepared
        now = self.clock() if now_ms is None else now_ms
        with self.engine.begin() as conn:
            journal_rows = [_journal_row(watched[e.session_id], e, seen) for e, seen in watched_events]
            touched: set[str] = set()
            for alert in alerts:
                incident_id = self._attach(conn, alert, now, journal_rows)
                touched.add(incident_id)
                for playbook in self._matching(conn, incident_id, alert):
                    self._plan(conn, incident_id, playbook, now)
            insert_ignoring_duplicates(conn, incident_events, journal_rows)
            for incident_id in sorted(touched):
                self._run_urgent(conn, incident_id, prepared)
        if alerts:
            self._wake.set()
            if self.notifications is not None:
                self.notifications.wake()
        return prepared

    def confirm(self, prepared: Prepared, now_ms: int | None = None) -> None:
        """The batch's messages were delivered: finish the urgent steps that produced them
        (``now_ms``, default the clock: when they were delivered)."""
        if not prepared.inline:
            return
        now = self.clock() if now_ms is None else now_ms
        with self.engine.begin() as conn:
            for item in prepared.inline:
                self._finish(conn, item.action_key, item.incident_id, "done", item.outcome, None, now)
        self._release(*(item.action_key for item in prepared.inline))
        self._wake.set()
        if self.notifications is not None:
            self.notifications.wake()

    def _attach(self, conn: Connection, alert: Alert, now: int, journal_rows: list[dict[str, Any]]) -> str:
        supporting = [e for e in self.journal.session_events(alert.session_id) if e.event_id in alert.event_ids]
        trigger_ts = next((e.ts_ms for e in supporting if e.event_id == alert.event_id), alert.updated_ts_ms)
        earliest = min((e.ts_ms for e in supporting), default=trigger_ts)
        # The first malicious event, in wall-clock time: when the earliest supporting event
        # reached the input; failing that, the raising event's input time moved back by
        # the event-time gap (agents' clocks may be off; the input clock is ours).
        first_malicious = self.journal.first_observed(alert.session_id, alert.event_ids)
        if first_malicious is None:
            first_malicious = (alert.observed_ms or now) - max(0, trigger_ts - earliest)
        change = attach_alert(conn, alert, self.settings, now, first_malicious)
        if change.raised:
            self._redraft_postmortems(conn, change.incident_id, change.severity, now)
        if change.created:
            since = earliest - LOOKBACK_MS
            journal_rows.extend(
                _journal_row(change.incident_id, e, seen)
                for e, seen in self.journal.session_entries(alert.session_id, since)
            )
            self._watched[alert.session_id] = change.incident_id
            metrics.INCIDENTS_OPENED.labels(change.severity).inc()
            metrics.TIME_TO_DETECT.observe(max(0, now - first_malicious) / 1000)
        return change.incident_id

    def _matching(self, conn: Connection, incident_id: str, alert: Alert) -> list[Playbook]:
        """The playbooks to plan for ``alert``: every matching one; a fallback (catch-all) only when
        none other matches and the incident has no other playbook's steps yet."""
        specific = [p for p in self.playbooks if not p.spec.fallback and p.matches(alert)]
        if specific:
            return specific
        fallbacks = [p for p in self.playbooks if p.spec.fallback and p.matches(alert)]
        if not fallbacks:
            return []
        names = [p.name for p in fallbacks]
        other = conn.execute(
            select(actions.c.action_key)
            .where(actions.c.incident_id == incident_id, actions.c.playbook.not_in(names))
            .limit(1)
        ).first()
        return [] if other is not None else fallbacks

    @staticmethod
    def _already_queued(conn: Connection, incident_id: str, action: str, params: dict[str, Any]) -> bool:
        """Whether the incident has a pending step of the same action with the same parameters.

        Two playbooks matching one incident (an enforce detector's ``contain_session`` and an
        alert-mode detector's ``record_incident``) both collect evidence and draft a
        postmortem; a pending step runs after both were planned, so one is enough. A step that
        already ran does not count: the incident changed since, and a new version is right.
        """
        rows = conn.execute(
            select(actions.c.params).where(
                actions.c.incident_id == incident_id, actions.c.action == action, actions.c.status == "pending"
            )
        )
        return any((row.params or {}) == (params or {}) for row in rows)

    def _plan(self, conn: Connection, incident_id: str, playbook: Playbook, now: int) -> None:
        for position, (step, _action, _params) in enumerate(playbook.actions):
            key = f"{incident_id}:{playbook.name}:{step.name}"
            if conn.execute(select(actions.c.action_key).where(actions.c.action_key == key)).first() is not None:
                continue
            if self._already_queued(conn, incident_id, step.action, step.params):
                continue  # another playbook's identical step has not run yet: it covers this one
            _insert_pending(conn, key, incident_id, playbook.name, step.name, position, step.action,
                            playbook.spec.mode, step.params, now)  # fmt: skip
            if position == 0:
                add_timeline(
                    conn,
                    incident_id,
                    now,
                    "action",
                    "agentwatch",
                    f"playbook {playbook.name} started ({playbook.spec.mode})",
                    {"playbook": playbook.name},
                )
                audit_log.append(
                    conn,
                    "agentwatch",
                    "playbook.started",
                    incident_id,
                    {"playbook": playbook.name, "mode": playbook.spec.mode},
                    now,
                )

    def _redraft_postmortems(self, conn: Connection, incident_id: str, severity: str, now: int) -> None:
        """The incident's severity rose: queue each postmortem step that already ran once more, so its
        draft gets a new version (a step still pending will see the new severity when it runs)."""
        rows = conn.execute(
            select(actions).where(actions.c.incident_id == incident_id, actions.c.action == "draft_postmortem")
        ).all()
        steps: dict[tuple[str, str], list[Any]] = {}
        for row in rows:
            steps.setdefault((row.playbook, row.step), []).append(row)
        for (playbook, step), runs in sorted(steps.items()):
            if any(r.status not in TERMINAL for r in runs) or not any(r.status == "done" for r in runs):
                continue
            key = f"{incident_id}:{playbook}:{step}@{severity}"[:200]
            if conn.execute(select(actions.c.action_key).where(actions.c.action_key == key)).first() is not None:
                continue
            first = runs[0]
            _insert_pending(conn, key, incident_id, playbook, step, first.position, first.action, first.mode,
                            first.params, now)  # fmt: skip
            add_timeline(
                conn,
                incident_id,
                now,
                "action",
                "agentwatch",
                f"severity raised to {severity}: {playbook}/{step} drafts a new postmortem version",
                {"playbook": playbook, "step": step},
            )

    def _run_urgent(self, conn: Connection, incident_id: str, prepared: Prepared) -> None:
        for row in self._ready_steps(conn, incident_id):
            _playbook, _step, action, _params = self._by_key[(row.playbook, row.step)]
            if not action.urgent:
                continue
            outcome = self._execute(conn, row)
            if outcome is not None and row.mode == "enforce":
                prepared.messages.extend(outcome.messages)
                prepared.inline.append(_Inline(row.action_key, incident_id, outcome))

    def _ready_steps(self, conn: Connection, incident_id: str) -> list:  # type: ignore[type-arg]
        """Per playbook of the incident, the first unfinished step if all before it are finished."""
        rows = conn.execute(
            select(actions).where(actions.c.incident_id == incident_id).order_by(actions.c.playbook, actions.c.position)
        ).all()
        ready = []
        current = None
        blocked = False
        for row in rows:
            if row.playbook != current:
                current, blocked = row.playbook, False
            if blocked or row.status in TERMINAL:
                continue
            blocked = True
            due = row.next_attempt_ms is None or row.next_attempt_ms <= self.clock()
            if due and (row.playbook, row.step) in self._by_key:
                ready.append(row)
        return ready

    def _execute(self, conn: Connection, row) -> ActionOutcome | None:  # type: ignore[no-untyped-def]
        """Claim and run one step inside ``conn``'s transaction (urgent steps only: quick)."""
        now = self.clock()
        if not self._claim(conn, row, now):
            return None
        ctx = self._context(conn, row, now)
        outcome, error = self._invoke(row, ctx)
        if error is not None:
            self._record_failure(conn, row, error, now)
            self._release(row.action_key)
        return outcome

    def _claim(self, conn: Connection, row, now: int, take_over: bool = False) -> bool:  # type: ignore[no-untyped-def]
        """Take the step: exactly one runner (batch loop, worker, another process) wins.

        A pending step is claimed by whoever gets there first. With ``take_over`` (the
        worker, which checks the control topic before sending again), a running step is
        claimed too when it was abandoned (:meth:`_abandoned`): compare-and-set on its
        attempt count, so of several takers exactly one wins. The claim records this
        incarnation as the owner. A shadow playbook's step is finished as ``skipped`` here
        instead.
        """
        if row.mode == "shadow":
            self._finish(
                conn,
                row.action_key,
                row.incident_id,
                "skipped",
                ActionOutcome(summary=f"shadow: would run {row.action}"),
                None,
                now,
            )
            return False
        if row.status == "pending":
            condition = actions.c.status == "pending"
        elif take_over and row.status == "running" and self._abandoned(row, now):
            condition = and_(actions.c.status == "running", actions.c.attempts == row.attempts)
        else:
            return False
        claimed = conn.execute(
            actions.update()
            .where(actions.c.action_key == row.action_key, condition)
            .values(
                status="running",
                attempts=actions.c.attempts + 1,
                started_ms=now,
                owner=self.liveness.incarnation,
            )
        ).rowcount
        if claimed != 1:
            return False
        with self._in_flight_lock:
            self._in_flight.add(row.action_key)
        if row.status == "running":
            log.warning("step %s was abandoned by monitor %s; taken over", row.action_key, row.owner or "(unknown)")
            add_timeline(
                conn,
                row.incident_id,
                now,
                "action",
                "agentwatch",
                f"{row.step}: attempt {row.attempts} was abandoned (its monitor stopped or its send "
                f"failed); attempt {row.attempts + 1} takes over",
                {"action_key": row.action_key},
            )
        return True

    def _abandoned(self, row, now: int) -> bool:  # type: ignore[no-untyped-def]
        """Whether a running step's runner is gone: no timer unless its owner cannot be asked."""
        owner = row.owner
        if owner == self.liveness.incarnation:
            with self._in_flight_lock:  # ours, but not running now: its send failed
                return row.action_key not in self._in_flight
        alive = self.liveness.alive(owner) if owner else None
        if alive is None:
            return row.started_ms is not None and row.started_ms < now - IN_FLIGHT_GRACE_MS
        return not alive

    def _release(self, *keys: str) -> None:
        with self._in_flight_lock:
            self._in_flight.difference_update(keys)

    def _context(self, conn: Connection | None, row, now: int) -> ActionContext:  # type: ignore[no-untyped-def]
        if conn is None:
            with self.engine.connect() as reader:
                incident = load_incident(reader, row.incident_id)
        else:
            incident = load_incident(conn, row.incident_id)
        return ActionContext(
            incident=incident,
            action_key=row.action_key,
            engine=self.engine,
            data_dir=self.data_dir,
            control_topic=self.control_topic,
            now_ms=now,
            connection=conn,
            settings={"command_scope": "session"} if self.session_commands else {},
        )

    def _invoke(self, row, ctx: ActionContext) -> tuple[ActionOutcome | None, str | None]:  # type: ignore[no-untyped-def]
        _playbook, _step, action, params = self._by_key[(row.playbook, row.step)]
        started = time.perf_counter()
        try:
            return action.execute(ctx, params), None
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin is stored with its step
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]
            log.warning("step %s failed (attempt %d): %s", row.action_key, row.attempts + 1, detail)
            return None, detail
        finally:
            metrics.ACTION_SECONDS.labels(row.action).observe(time.perf_counter() - started)

    def _record_failure(self, conn: Connection, row, error: str, now: int) -> None:  # type: ignore[no-untyped-def]
        step = self._by_key[(row.playbook, row.step)][1]
        if row.attempts + 1 >= step.max_attempts:
            self._finish(conn, row.action_key, row.incident_id, "failed", None, error, now)
            return
        delay_ms = round(1000 * backoff.delay(row.attempts, 1.0, 60.0))
        conn.execute(
            actions.update()
            .where(actions.c.action_key == row.action_key)
            .values(status="pending", error=error, next_attempt_ms=now + delay_ms)
        )
        add_timeline(
            conn,
            row.incident_id,
            now,
            "action",
            "agentwatch",
            f"{row.step}: attempt {row.attempts + 1} failed, retrying in {delay_ms // 1000}s: {error}",
            {"action_key": row.action_key},
        )

    def _finish(
        self,
        conn: Connection,
        key: str,
        incident_id: str,
        status: str,
        outcome: ActionOutcome | None,
        error: str | None,
        now: int,
    ) -> None:
        row = conn.execute(select(actions).where(actions.c.action_key == key)).first()
        if row is None or row.status in TERMINAL:
            return
        conn.execute(
            actions.update()
            .where(actions.c.action_key == key)
            .values(status=status, finished_ms=now, error=error, result=outcome.result if outcome else {})
        )
        text = outcome.summary if outcome else f"{row.action} failed: {error}"
        add_timeline(
            conn, incident_id, now, "action", "agentwatch", f"{row.step}: {text}", {"action_key": key, "status": status}
        )
        audit_log.append(
            conn,
            "agentwatch",
            f"action.{status}",
            incident_id,
            {"action_key": key, "action": row.action, "result": outcome.result if outcome else {}, "error": error},
            now,
        )
        metrics.ACTIONS.labels(row.action, status).inc()
        if outcome is not None and outcome.contains and status == "done":
            if set_status(conn, incident_id, "contained", "agentwatch", now, f"{row.action} ({row.step})"):
                row_inc = conn.execute(
                    select(incidents.c.first_malicious_ts_ms, incidents.c.first_alert_ts_ms).where(
                        incidents.c.incident_id == incident_id
                    )
                ).first()
                if row_inc is not None and row_inc.first_malicious_ts_ms is not None:
                    metrics.TIME_TO_CONTAIN.observe(max(0, now - row_inc.first_malicious_ts_ms) / 1000)

    # -- the worker -------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (resumes steps left pending by an earlier run); with
        ``external_worker``, nothing: other processes run the steps."""
        if self.external_worker:
            return
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="agentwatch-responder", daemon=True)
            self._worker.start()
            self._wake.set()
            self.approvals.start()
            if self.notifications is not None:
                self.notifications.start()

    def stop(self, timeout_s: float = 30.0, drain: bool = True) -> None:
        """Stop the worker; with ``drain`` (never with ``external_worker``), first finish the
        steps that are ready now. The step the worker is running is finished (joined up to
        ``timeout_s``); from then on this incarnation's unfinished steps are anyone's."""
        drain = drain and not self.external_worker
        self.approvals.stop()
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=timeout_s)
            self._worker = None
        if drain:
            self._stop.clear()
            try:
                self.run_pending()
            finally:
                self._stop.set()
        if self.notifications is not None:
            if drain:
                self.notifications.run_pending()  # the changes this drain made (contained) go out too
            self.notifications.stop()
        self.liveness.close()  # from here on, our unfinished steps are anyone's to take over
        close = getattr(self.send, "close", None)
        if close is not None:
            close()

    def run_pending(self) -> int:
        """Run every ready step once (the worker's loop body); return how many ran.

        Claims and results are short transactions; the action itself runs outside any
        transaction, so a slow step (a postmortem) never holds up the consume loop.
        """
        ran = 0
        with self.engine.connect() as conn:
            open_ids = [
                r.incident_id
                for r in conn.execute(
                    select(actions.c.incident_id).where(actions.c.status.in_(("pending", "running"))).distinct()
                )
            ]
        for incident_id in open_ids:
            while not self._stop.is_set():
                now = self.clock()
                with self.engine.begin() as conn:
                    claimed = [
                        r for r in self._ready_steps(conn, incident_id) if self._claim(conn, r, now, take_over=True)
                    ]
                if not claimed:
                    break
                for row in claimed:
                    ran += 1
                    self.steps_run += 1
                    try:
                        outcome, error = self._invoke(row, self._context(None, row, now))
                        if outcome is not None and outcome.messages:
                            if self.send is None:
                                error, outcome = f"{row.action} produced messages but no sender is configured", None
                            else:
                                self._send_once(row, outcome)
                        with self.engine.begin() as conn:
                            if outcome is not None:
                                self._finish(conn, row.action_key, incident_id, "done", outcome, None, self.clock())
                            else:
                                self._record_failure(conn, row, error or "unknown failure", self.clock())
                    finally:
                        self._release(row.action_key)  # if the send raised, the next round takes it over
        return ran

    def _send_once(self, row, outcome: ActionOutcome) -> None:  # type: ignore[no-untyped-def]
        """Send the step's messages; after an earlier attempt (``row.attempts``), leave out
        those whose ``dedup_id`` is already on their topic — that attempt delivered them."""
        assert self.send is not None
        messages = outcome.messages
        if row.attempts > 0 and self._find_delivered is not None:
            wanted: dict[str, set[str]] = {}
            for message in messages:
                if message.dedup_id is not None:
                    wanted.setdefault(message.topic, set()).add(message.dedup_id)
            found = {
                (topic, dedup_id) for topic, ids in wanted.items() for dedup_id in self._find_delivered(topic, ids)
            }
            if found:
                messages = [m for m in messages if (m.topic, m.dedup_id) not in found]
                outcome.result["already_delivered"] = sorted(dedup_id for _topic, dedup_id in found)
                outcome.summary += "; already delivered by an earlier attempt, not sent again"
                log.info(
                    "step %s: %d message(s) already delivered by an earlier attempt; not sent again",
                    row.action_key,
                    len(found),
                )
        if messages:
            self.send(messages)

    def _work(self) -> None:
        failures = 0  # rounds failed in a row: the wait grows from 0.5 s to 30 s
        while not self._stop.is_set():
            self._wake.wait(timeout=backoff.delay(failures, 0.5, 30.0))
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.run_pending()
                failures = 0
            except Exception:  # noqa: BLE001 - the worker must outlive one bad step; logged, retried
                log.exception("responder worker round failed; retrying")
                metrics.PLUGIN_ERRORS.labels("responder", "worker").inc()
                failures += 1
