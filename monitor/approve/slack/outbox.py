"""The Slack outbox: one message per incident, kept in step with the approvals in the store.

Post once (``chat.postMessage``), then ``chat.update`` in place; votes, escalations and
results go to its thread. The store is written first and Slack told after, from the store:
an approval change bumps ``slack_rev``, and :meth:`SlackOutbox.flush` brings every incident
whose ``slack_synced_rev`` is behind up to date. A failed call is retried with backoff
(2 s doubling, at most :data:`SLACK_MAX_BACKOFF_MS`; a longer ``Retry-After`` wins) from the
store — nothing is lost and nothing is auto-approved. Several processes serialise on a claim
(``slack_claim_ms``), taken over after
:data:`~agentwatch.approve.request.IN_FLIGHT_GRACE_MS` when its owner crashed.

Implements :class:`agentwatch.approve.runtime.Outbox`; wired in by
:func:`agentwatch.approve.worker.approval_runtime`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine

from agentwatch import backoff
from agentwatch.approve.request import IN_FLIGHT_GRACE_MS, now_ms
from agentwatch.approve.slack.messages import details_text, incident_message, incident_view, state_note, vote_note
from agentwatch.approve.slack.notifier import SlackNotifier, SlackRejected, SlackUnavailable
from agentwatch.approve.views import to_view, to_vote_view
from agentwatch.respond import audit_log
from agentwatch.respond.incident_lifecycle import add_timeline
from agentwatch.respond.incident_queries import load_incident
from agentwatch.store import approval_votes, approvals, incidents

log = logging.getLogger(__name__)

SLACK_MAX_BACKOFF_MS = 300_000


@dataclass
class SlackOutbox:
    """Approval messages in one Slack channel (:class:`~agentwatch.approve.slack.notifier.SlackNotifier`)."""

    engine: Engine
    notifier: SlackNotifier
    clock: Callable[[], int] = now_ms

    def flush(self) -> int:
        """Sync every incident whose message is behind; returns how many were synced."""
        return sum(self.sync_incident(incident_id) for incident_id in self._due(self.clock()))

    def _due(self, now: int) -> list[str]:
        """Incidents whose message is behind the store, not backing off, not being synced."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(approvals)
                .join(incidents, incidents.c.incident_id == approvals.c.incident_id)
                .where(approvals.c.slack_rev > approvals.c.slack_synced_rev)
                .order_by(approvals.c.requested_ms)
            ).all()
        return list(
            dict.fromkeys(
                r.incident_id
                for r in rows
                if (r.slack_next_ms is None or r.slack_next_ms <= now)
                and (r.slack_claim_ms is None or r.slack_claim_ms < now - IN_FLIGHT_GRACE_MS)
            )
        )

    def sync_incident(self, incident_id: str) -> int:
        """Bring the incident's one message (and its thread) up to date; returns 1 when synced."""
        now = self.clock()
        with self.engine.begin() as conn:
            claimed = conn.execute(
                approvals.update()
                .where(
                    approvals.c.incident_id == incident_id,
                    or_(approvals.c.slack_claim_ms.is_(None), approvals.c.slack_claim_ms < now - IN_FLIGHT_GRACE_MS),
                    or_(approvals.c.slack_next_ms.is_(None), approvals.c.slack_next_ms <= now),
                )
                .values(slack_claim_ms=now)
            ).rowcount
        if not claimed:
            return 0
        try:
            self._sync(incident_id)
        except (SlackUnavailable, SlackRejected) as exc:
            self._failed(incident_id, exc, now)
            return 0
        finally:
            with self.engine.begin() as conn:
                conn.execute(
                    approvals.update()
                    .where(approvals.c.incident_id == incident_id, approvals.c.slack_claim_ms == now)
                    .values(slack_claim_ms=None)
                )
        return 1

    def _sync(self, incident_id: str) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(approvals)
                .where(approvals.c.incident_id == incident_id)
                .order_by(approvals.c.requested_ms, approvals.c.approval_id)
            ).all()
            votes = conn.execute(
                select(approval_votes)
                .where(approval_votes.c.approval_id.in_([r.approval_id for r in rows]))
                .order_by(approval_votes.c.ts_ms)
            ).all()
            incident = incident_view(load_incident(conn, incident_id))
        views = {r.approval_id: to_view(r, [v for v in votes if v.approval_id == r.approval_id]) for r in rows}
        text, blocks = incident_message(incident, list(views.values()), sum(r.slack_rev for r in rows))
        posted = next(((r.slack_channel, r.slack_ts) for r in rows if r.slack_ts), None)
        existed = posted is not None
        if posted is None:
            posted = self.notifier.post(text, blocks)
            with self.engine.begin() as conn:  # before anything else can fail: never post twice
                conn.execute(
                    approvals.update()
                    .where(approvals.c.incident_id == incident_id)
                    .values(slack_channel=posted[0], slack_ts=posted[1], slack_posted_ms=self.clock())
                )
            self.notifier.post(details_text(incident), thread_ts=posted[1])
        else:
            self.notifier.update(posted[0], posted[1], text, blocks)
        channel, ts = posted
        for vote in votes:
            if not vote.announced:
                view = views[vote.approval_id]
                self.notifier.post(vote_note(view, to_vote_view(vote)), thread_ts=ts)
                with self.engine.begin() as conn:
                    conn.execute(
                        approval_votes.update()
                        .where(approval_votes.c.approval_id == vote.approval_id, approval_votes.c.voter == vote.voter)
                        .values(announced=1)
                    )
        for row in rows:
            key = f"{row.status}:{row.escalation_level}"
            if key == row.slack_announced or row.status == "running":
                continue
            note = state_note(views[row.approval_id])
            if note is not None and (existed or key != "pending:0"):
                self.notifier.post(note[0], thread_ts=ts, broadcast=note[1])
            with self.engine.begin() as conn:
                conn.execute(
                    approvals.update().where(approvals.c.approval_id == row.approval_id).values(slack_announced=key)
                )
        with self.engine.begin() as conn:
            for row in rows:
                conn.execute(
                    approvals.update()
                    .where(approvals.c.approval_id == row.approval_id, approvals.c.slack_rev == row.slack_rev)
                    .values(
                        slack_synced_rev=row.slack_rev,
                        slack_attempts=0,
                        slack_next_ms=None,
                        slack_error=None,
                        slack_channel=channel,
                        slack_ts=ts,
                    )
                )

    def _failed(self, incident_id: str, exc: Exception, now: int) -> None:
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(approvals.c.approval_id, approvals.c.slack_attempts).where(
                    approvals.c.incident_id == incident_id
                )
            ).all()
            attempts = max((r.slack_attempts for r in rows), default=0)
            retry_after = getattr(exc, "retry_after_s", None)
            delay = round(1000 * backoff.delay(attempts, 2.0, SLACK_MAX_BACKOFF_MS / 1000))
            if retry_after:
                delay = max(delay, int(retry_after * 1000))
            conn.execute(
                approvals.update()
                .where(approvals.c.incident_id == incident_id)
                .values(slack_attempts=attempts + 1, slack_next_ms=now + delay, slack_error=str(exc)[:1000])
            )
            if attempts == 0:  # the first failure of a streak is worth a line; retries are counted
                add_timeline(
                    conn,
                    incident_id,
                    now,
                    "note",
                    "agentwatch",
                    f"Slack unreachable, approval message retried in the background: {exc}",
                    {"error": str(exc)[:500]},
                )
                audit_log.append(conn, "agentwatch", "slack.unreachable", incident_id, {"error": str(exc)[:500]}, now)
        log.warning("slack sync for %s failed (attempt %d): %s", incident_id, attempts + 1, exc)
