"""Delivering incident changes to the configured notifiers, off the consume path.

The store's ``incident_changes`` table is the outbox: :mod:`agentwatch.respond.incident_lifecycle`
appends a row in the same transaction as each change (opened, severity raised, contained,
resolved). :class:`NotificationWorker` — a thread of the responder's worker (``run``'s own, or
``agentwatch respond``'s) — delivers, per notifier and per incident, every change after the last
one it delivered, in order:

* a change below the notifier's ``min_severity`` is passed over (``filtered``);
* a failed delivery is retried after ``backoff.delay(attempt, backoff_base_s, backoff_cap_s)``
  (or the receiver's ``Retry-After``), stored in ``notifier_cursors`` so a restart resumes it;
  after ``max_attempts`` the change is ``dropped`` — logged, counted, never silent — and the
  next one is tried;
* one notifier failing never holds up another: each has its own cursor and schedule.

Claims are leases on the cursor row (``claim_ms``), so any number of workers on one store deliver
each change once in the normal case; a worker that dies mid-delivery leaves a lease that expires
after :data:`LEASE_MS`, and the change may then be delivered twice (at-least-once: receivers
de-duplicate on the webhook id / finding uid + seq).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine

from agentwatch import backoff
from agentwatch.detect.policy import SEVERITY_RANK
from agentwatch.notify.build import IncidentFacts
from agentwatch.notify.spec import Notifier, NotifierParams, NotifyError
from agentwatch.observe import metrics
from agentwatch.respond.redaction import redact
from agentwatch.store import incident_changes, insert_ignoring_duplicates, notifier_cursors

log = logging.getLogger(__name__)

#: A claimed (notifier, incident) is another worker's to take after this long.
LEASE_MS: Final = 120_000
#: The cursor row holding a notifier's floor: changes up to it predate the notifier.
FLOOR: Final = "*"
#: Incidents looked at per notifier and round.
BATCH: Final = 100


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class ConfiguredNotifier:
    """One ``[notifiers.<name>]`` entry: its name, common settings and the plugin instance."""

    name: str
    params: NotifierParams
    plugin: Notifier


class NotificationWorker:
    """Delivers the outbox to ``notifiers``; :meth:`run_pending` is one round, :meth:`start` a thread."""

    def __init__(
        self,
        engine: Engine,
        notifiers: list[ConfiguredNotifier],
        clock: Callable[[], int] = now_ms,
        poll_s: float = 0.5,
    ) -> None:
        self.engine = engine
        self.notifiers = notifiers
        self.clock = clock
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        for notifier in notifiers:
            for outcome in ("sent", "failed", "dropped", "filtered"):
                metrics.NOTIFICATIONS.labels(notifier.name, outcome)
        self._floors = self._ensure_floors()

    def _ensure_floors(self) -> dict[str, int]:
        """Each notifier's floor: the newest change when it was first configured on this store."""
        now = self.clock()
        with self.engine.begin() as conn:
            newest = conn.execute(select(func.max(incident_changes.c.seq))).scalar() or 0
            insert_ignoring_duplicates(
                conn,
                notifier_cursors,
                [
                    {
                        "notifier": n.name,
                        "incident_id": FLOOR,
                        "delivered_seq": newest,
                        "attempts": 0,
                        "state": {},
                        "updated_ms": now,
                    }
                    for n in self.notifiers
                ],
            )
            rows = conn.execute(
                select(notifier_cursors.c.notifier, notifier_cursors.c.delivered_seq).where(
                    notifier_cursors.c.incident_id == FLOOR
                )
            )
            return {r.notifier: r.delivered_seq for r in rows}

    # -- the thread --------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None and self.notifiers:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="agentwatch-notify", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None
        for notifier in self.notifiers:
            try:
                notifier.plugin.close()
            except Exception as exc:  # noqa: BLE001 - closing one notifier must not stop the others
                log.warning("notifier %s: close failed: %s", notifier.name, type(exc).__name__)

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.wait(timeout=backoff.delay(failures, self.poll_s, 30.0))
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.run_pending()
                failures = 0
            except Exception:  # noqa: BLE001 - the worker outlives a store hiccup; logged, retried
                log.exception("notification round failed; retrying")
                metrics.PLUGIN_ERRORS.labels("notify", "worker").inc()
                failures += 1

    # -- one round ---------------------------------------------------------------------
    def run_pending(self) -> int:
        """Deliver what is due for every notifier; returns the changes sent."""
        sent = 0
        for notifier in self.notifiers:
            for incident_id in self._due(notifier):
                if self._stop.is_set() and self._thread is not None:
                    return sent
                if self._claim(notifier, incident_id):
                    sent += self._deliver(notifier, incident_id)
        return sent

    def _due(self, notifier: ConfiguredNotifier) -> list[str]:
        now = self.clock()
        c, n = incident_changes.c, notifier_cursors.c
        joined = incident_changes.outerjoin(
            notifier_cursors, and_(n.notifier == notifier.name, n.incident_id == c.incident_id)
        )
        query = (
            select(c.incident_id, func.min(c.seq).label("first"))
            .select_from(joined)
            .where(
                c.seq > self._floors.get(notifier.name, 0),
                c.seq > func.coalesce(n.delivered_seq, 0),
                or_(n.next_attempt_ms.is_(None), n.next_attempt_ms <= now),
                or_(n.claim_ms.is_(None), n.claim_ms < now - LEASE_MS),
            )
            .group_by(c.incident_id)
            .order_by(func.min(c.seq))
            .limit(BATCH)
        )
        with self.engine.connect() as conn:
            return [r.incident_id for r in conn.execute(query)]

    def _claim(self, notifier: ConfiguredNotifier, incident_id: str) -> bool:
        now = self.clock()
        n = notifier_cursors.c
        with self.engine.begin() as conn:
            insert_ignoring_duplicates(
                conn,
                notifier_cursors,
                [
                    {
                        "notifier": notifier.name,
                        "incident_id": incident_id,
                        "delivered_seq": self._floors.get(notifier.name, 0),
                        "attempts": 0,
                        "state": {},
                        "updated_ms": now,
                    }
                ],
            )
            claimed = conn.execute(
                notifier_cursors.update()
                .where(
                    n.notifier == notifier.name,
                    n.incident_id == incident_id,
                    or_(n.claim_ms.is_(None), n.claim_ms < now - LEASE_MS),
                    or_(n.next_attempt_ms.is_(None), n.next_attempt_ms <= now),
                )
                .values(claim_ms=now)
            ).rowcount
        return claimed == 1

    def _deliver(self, notifier: ConfiguredNotifier, incident_id: str) -> int:
        n = notifier_cursors.c
        key = and_(n.notifier == notifier.name, n.incident_id == incident_id)
        with self.engine.connect() as conn:
            cursor = conn.execute(select(notifier_cursors).where(key)).one()
            changes = conn.execute(
                select(incident_changes)
                .where(incident_changes.c.incident_id == incident_id, incident_changes.c.seq > cursor.delivered_seq)
                .order_by(incident_changes.c.seq)
            ).all()
            facts = IncidentFacts(conn, incident_id) if changes else None
        delivered, attempts = cursor.delivered_seq, cursor.attempts
        state: dict[str, Any] = dict(cursor.state or {})
        next_attempt: int | None = None
        error: str | None = None
        sent = 0
        minimum = SEVERITY_RANK[notifier.params.min_severity]
        for change in changes:
            if SEVERITY_RANK.get(change.severity, 0) < minimum:
                metrics.NOTIFICATIONS.labels(notifier.name, "filtered").inc()
                delivered = change.seq
                continue
            assert facts is not None
            note = facts.notification(change, first=not state.get("sent"))
            try:
                state = dict(notifier.plugin.send(note, dict(state)) or {}) | {"sent": int(state.get("sent") or 0) + 1}
            except Exception as exc:  # noqa: BLE001 - any plugin failure is retried, then dropped; never fatal
                attempts += 1
                error = redact(f"{type(exc).__name__}: {exc}")[:500]
                if attempts >= notifier.params.max_attempts:
                    metrics.NOTIFICATIONS.labels(notifier.name, "dropped").inc()
                    log.warning(
                        "notifier %s: %s of %s dropped after %d attempts: %s",
                        notifier.name,
                        change.change,
                        incident_id,
                        attempts,
                        error,
                    )
                    delivered, attempts = change.seq, 0
                    continue
                metrics.NOTIFICATIONS.labels(notifier.name, "failed").inc()
                retry_after = exc.retry_after_s if isinstance(exc, NotifyError) else None
                wait_s = backoff.delay(attempts - 1, notifier.params.backoff_base_s, notifier.params.backoff_cap_s)
                if retry_after is not None:
                    wait_s = max(wait_s, min(retry_after, notifier.params.backoff_cap_s))
                next_attempt = self.clock() + round(wait_s * 1000)
                log.info(
                    "notifier %s: %s of %s failed (attempt %d), retrying in %.1fs: %s",
                    notifier.name,
                    change.change,
                    incident_id,
                    attempts,
                    wait_s,
                    error,
                )
                break
            metrics.NOTIFICATIONS.labels(notifier.name, "sent").inc()
            delivered, attempts, error = change.seq, 0, None
            sent += 1
        with self.engine.begin() as conn:
            conn.execute(
                notifier_cursors.update()
                .where(key)
                .values(
                    delivered_seq=delivered,
                    attempts=attempts,
                    next_attempt_ms=next_attempt,
                    claim_ms=None,
                    error=error,
                    state=state,
                    updated_ms=self.clock(),
                )
            )
        return sent
