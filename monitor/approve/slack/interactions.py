"""``POST /slack/interactions``: Slack's button clicks, verified, de-duplicated, decided.

Every request is checked before anything in it is believed:

1. **signature** — ``X-Slack-Signature: v0=<hex>`` must equal HMAC-SHA256 of
   ``v0:{X-Slack-Request-Timestamp}:{raw body}`` under the app's signing secret (over the
   raw bytes, compared in constant time);
2. **freshness** — a timestamp more than :data:`WINDOW_S` (5 minutes) away from now is
   refused;
3. **replay** — the signature and the payload's identity (user, ``trigger_id``,
   ``action_ts``) are inserted into ``slack_requests_seen`` in the store, whose primary
   key makes a second delivery fail in every ``serve`` process sharing the store; rows
   older than twice the window are pruned.

Refusals answer 401 (signature, stale), 409 (replay), 413 (oversize, refused by the server
before reading it), 400 (malformed, or a button click without a user id) and every one is
written to the audit log (``slack.request_refused``; a vote the approval rules refuse is
``approval.refused``). A verified ``block_actions`` payload's first action decides:
``agentwatch_approve`` / ``agentwatch_deny`` become a vote
(:func:`agentwatch.approve.votes.cast_vote`, with its authorisation and separation-of-duties
rules), ``agentwatch_details`` answers with the incident's details. The person who
clicked is told privately (``response_url``, ephemeral) when their vote was refused.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from agentwatch.approve.directory import Directory
from agentwatch.approve.slack.messages import (
    APPROVE,
    BUTTON_ACTIONS,
    DENY,
    DETAILS,
    details_text,
    incident_view,
    refusal_text,
)
from agentwatch.approve.slack.notifier import SlackNotifier, SlackRejected, SlackUnavailable
from agentwatch.approve.views import approval_view
from agentwatch.approve.votes import audited, cast_vote
from agentwatch.observe import metrics
from agentwatch.respond import audit_log
from agentwatch.respond.incident_queries import load_incident
from agentwatch.store import approvals, slack_requests_seen

log = logging.getLogger(__name__)

WINDOW_S = 300
MAX_BODY_BYTES = 1_048_576
PRUNE_EVERY_S = 60.0
#: Refusals decided before the signature held: the audit record's actor is not Slack.
UNVERIFIED = ("bad_signature", "stale", "oversize", "timeout")


@dataclass(slots=True)
class InteractionResponse:
    status: int
    body: bytes = b""
    #: Work to do after the HTTP answer went out (ephemeral replies): Slack waits 3 s at most.
    after: Callable[[], None] | None = None


class InteractionHandler:
    """Turns verified Slack interaction requests into approval decisions.

    Parameters
    ----------
    signing_secret
        The Slack app's signing secret.
    directory
        Identity lookups for :func:`~agentwatch.approve.votes.cast_vote` (Slack's).
    notifier
        For ephemeral answers (``response_url``); optional.
    on_decision
        Called after an accepted vote (wakes the approval executor).
    """

    def __init__(
        self,
        engine: Engine,
        signing_secret: str,
        directory: Directory,
        notifier: SlackNotifier | None = None,
        on_decision: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self._secret = signing_secret.encode()
        self.directory = directory
        self.notifier = notifier
        self.on_decision = on_decision
        self.clock = clock
        self._last_prune = 0.0
        self._prune_lock = threading.Lock()

    def handle(
        self, body: bytes, headers: Mapping[str, str], received_ms: int | None = None, remote: str = ""
    ) -> InteractionResponse:
        now_s = self.clock()
        received_ms = int(now_s * 1000) if received_ms is None else received_ms
        lower = {k.lower(): v for k, v in headers.items()}
        timestamp, signature = lower.get("x-slack-request-timestamp"), lower.get("x-slack-signature")
        if not self._signed(body, timestamp, signature):
            return self._reject(401, "bad_signature", remote, timestamp, received_ms)
        assert timestamp is not None and signature is not None
        if abs(now_s - int(timestamp)) > WINDOW_S:
            return self._reject(401, "stale", remote, timestamp, received_ms)
        payload = _parse(body)
        if payload is None:
            return self._reject(400, "malformed", remote, timestamp, received_ms)
        user_id = str((payload.get("user") or {}).get("id") or "")
        action = (payload.get("actions") or [{}])[0]
        if not user_id and payload.get("type") == "block_actions" and action.get("action_id") in BUTTON_ACTIONS:
            return self._reject(
                400, "missing_user", remote, timestamp, received_ms, {"approval_id": str(action.get("value", ""))[:64]}
            )
        if not self._first_sighting(signature, payload, user_id, action, received_ms):
            return self._reject(
                409,
                "replay",
                remote,
                timestamp,
                received_ms,
                {"user_id": user_id[:64], "approval_id": str(action.get("value", ""))[:64]},
            )
        self._prune(now_s)
        if payload.get("type") != "block_actions" or action.get("action_id") not in BUTTON_ACTIONS or not user_id:
            metrics.APPROVAL_INTERACTIONS.labels("ignored").inc()
            return InteractionResponse(200)
        metrics.APPROVAL_INTERACTIONS.labels("accepted").inc()
        approval_id = str(action.get("value") or "")[:64]
        response_url = payload.get("response_url")
        if action["action_id"] == DETAILS:
            return InteractionResponse(200, after=lambda: self._details(approval_id, response_url))
        decision: Literal["approve", "deny"] = "approve" if action["action_id"] == APPROVE else "deny"
        assert action["action_id"] in (APPROVE, DENY)
        result = cast_vote(
            self.engine,
            approval_id,
            user_id,
            decision,
            directory=self.directory,
            channel="slack",
            now=int(self.clock() * 1000),
            received_ms=received_ms,
            context={"remote": remote, "trigger_id": str(payload.get("trigger_id", ""))[:64]},
        )
        if result.accepted:
            if self.on_decision is not None:
                self.on_decision()
            return InteractionResponse(200)
        text = refusal_text(result.action, result.message)
        return InteractionResponse(200, after=lambda: self._respond(response_url, text))

    # -- checks ------------------------------------------------------------------------
    def _signed(self, body: bytes, timestamp: str | None, signature: str | None) -> bool:
        if (
            not timestamp
            or not signature
            or not timestamp.isdigit()
            or len(timestamp) > 20
            or len(body) > MAX_BODY_BYTES
        ):
            return False
        digest = hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(f"v0={digest}".encode(), signature.encode("utf-8", "replace"))

    def _first_sighting(
        self, signature: str, payload: dict[str, Any], user_id: str, action: dict[str, Any], now_ms: int
    ) -> bool:
        identity = "|".join(
            [
                user_id,
                str(payload.get("trigger_id", "")),
                str(action.get("action_ts", "")),
                str(action.get("action_id", "")),
                str(action.get("value", "")),
            ]
        )
        keys = [
            "sig:" + hashlib.sha256(signature.encode()).hexdigest(),
            "payload:" + hashlib.sha256(identity.encode()).hexdigest(),
        ]
        try:
            with self.engine.begin() as conn:
                for key in keys:
                    conn.execute(slack_requests_seen.insert().values(request_key=key, seen_ms=now_ms))
        except IntegrityError:
            return False
        return True

    def _prune(self, now_s: float) -> None:
        with self._prune_lock:
            if now_s - self._last_prune < PRUNE_EVERY_S:
                return
            self._last_prune = now_s
        with self.engine.begin() as conn:
            conn.execute(
                delete(slack_requests_seen).where(slack_requests_seen.c.seen_ms < int((now_s - 2 * WINDOW_S) * 1000))
            )

    def refuse(
        self, status: int, reason: str, headers: Mapping[str, str], received_ms: int, remote: str = ""
    ) -> InteractionResponse:
        """A request the server refused before handing it over (``oversize``): audited like the rest."""
        timestamp = {k.lower(): v for k, v in headers.items()}.get("x-slack-request-timestamp")
        return self._reject(status, reason, remote, timestamp, received_ms)

    def _reject(
        self,
        status: int,
        reason: str,
        remote: str,
        timestamp: str | None,
        now_ms: int,
        data: dict[str, Any] | None = None,
    ) -> InteractionResponse:
        metrics.APPROVAL_INTERACTIONS.labels(reason).inc()
        audited(
            self.engine,
            lambda conn: audit_log.append(
                conn,
                "slack:unverified" if reason in UNVERIFIED else "slack",
                "slack.request_refused",
                "slack/interactions",
                {"reason": reason, "remote": remote[:64], "timestamp": (timestamp or "")[:20], **(data or {})},
                now_ms,
            ),
        )
        log.warning("slack interaction refused (%s) from %s", reason, remote)
        return InteractionResponse(status, msgspec.json.encode({"error": reason}))

    # -- answers after the response ------------------------------------------------------
    def _details(self, approval_id: str, response_url: object) -> None:
        with self.engine.connect() as conn:
            view = approval_view(conn, approval_id)
            incident_id = conn.execute(
                approvals.select()
                .with_only_columns(approvals.c.incident_id)
                .where(approvals.c.approval_id == approval_id)
            ).scalar()
            record = load_incident(conn, incident_id) if incident_id else None
        if record is None:
            return
        self._respond(response_url, details_text(incident_view(record), view))

    def _respond(self, response_url: object, text: str) -> None:
        if self.notifier is None or not isinstance(response_url, str):
            return
        try:
            self.notifier.respond(response_url, text)
        except (SlackUnavailable, SlackRejected) as exc:
            log.warning("could not answer the click privately: %s", exc)


def _parse(body: bytes) -> dict[str, Any] | None:
    """The ``payload`` form field's JSON object, or ``None``."""
    try:
        form = urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = msgspec.json.decode(form["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, msgspec.DecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    actions = payload.get("actions")
    if actions is not None and not (isinstance(actions, list) and all(isinstance(a, dict) for a in actions)):
        return None
    if not isinstance(payload.get("user") or {}, dict):
        return None
    return payload
