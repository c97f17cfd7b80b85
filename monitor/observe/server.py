"""``agentwatch serve``: the HTTP side — metrics, health, session status, Slack approvals.

``GET /metrics`` (Prometheus), ``GET /healthz`` (store reachable), ``GET
/v1/sessions/<session_id>`` (``{"status": "active"|"terminated", …}`` for hooks and
gateways), ``POST /slack/interactions`` (Slack's Approve/Deny/Details buttons, see
:mod:`agentwatch.approve.slack.interactions`). A small threaded stdlib server.

``serve`` also runs the approval worker (:class:`agentwatch.approve.approvals.ApprovalWorker`):
approved containment is executed, overdue approvals escalate or expire, and the Slack
messages are kept up to date — alongside (and agreeing with, through the store) the
monitor's own responder.

Environment
-----------
``AGENTWATCH_SLACK_SIGNING_SECRET``
    The Slack app's signing secret; without it ``/slack/interactions`` answers 404.
``AGENTWATCH_SLACK_BOT_TOKEN``
    Bot token (scopes ``chat:write``, ``users:read``, ``users:read.email``,
    ``usergroups:read``): posting and updating approval messages, approver e-mails and
    user-group members. Without it no message is sent (approvals stay visible in
    ``agentwatch incidents show`` and can be decided with ``agentwatch approve/deny``).
``AGENTWATCH_SLACK_CHANNEL``
    Channel id for incident messages (needed with the token).
``AGENTWATCH_SLACK_API_URL``
    Slack Web API base URL override (default ``https://slack.com/api/``; tests use a fake).
``AGENTWATCH_APPROVALS_FILE``
    Identities for the CLI and for groups when Slack is not configured (default
    ``<data_dir>/approvals.toml``; see :mod:`agentwatch.approve.approvals`).
``AGENTWATCH_APPROVERS``, ``AGENTWATCH_ESCALATION_APPROVERS``
    Comma-separated Slack user/user-group ids the shipped ``contain_session`` playbook
    asks (read by the monitor when it requests an approval).
``AGENTWATCH_REVOKE_WEBHOOK_URL``, ``AGENTWATCH_QUARANTINE_WEBHOOK_URL``, ``AGENTWATCH_WEBHOOK_SECRET``
    Where the gated actions' signed webhooks go and their HMAC secret.
``AGENTWATCH_BOOTSTRAP_SERVERS`` (or ``serve --bootstrap-servers``)
    Kafka, so that ``serve`` can publish approved control commands itself
    (``quarantine_agent``, ``block_egress``, ``disable_tool``); without it the monitor
    (``agentwatch run``) publishes them.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from agentwatch.approve.approvals import (
    ApprovalRuntime,
    ApprovalWorker,
    Directory,
    FileDirectory,
    approvals_file_path,
    load_approvals_file,
)
from agentwatch.approve.slack.interactions import MAX_BODY_BYTES, InteractionHandler
from agentwatch.approve.slack.notifier import SlackDirectory, SlackNotifier
from agentwatch.observe import metrics  # noqa: F401 - registers agentwatch_* metrics for /metrics
from agentwatch.observe.store_metrics import StoreCollector
from agentwatch.respond.session_guard import GuardUnavailable, status_from_store

log = logging.getLogger(__name__)
MAX_SESSION_ID = 256
INTERACTIONS_PATH = "/slack/interactions"


@dataclass
class ApprovalService:
    """The approval worker and, with a signing secret, the Slack interactions endpoint."""

    runtime: ApprovalRuntime
    worker: ApprovalWorker
    interactions: InteractionHandler | None

    def stop(self) -> None:
        self.worker.stop()
        close = getattr(self.runtime.send, "close", None)
        if close is not None:
            close()


def approval_service(engine: Engine, data_dir: Path, control_topic: str, bootstrap_servers: str | None = None,
                     environ: Mapping[str, str] | None = None) -> ApprovalService:
    """Build the approval side of ``serve`` from the environment (see the module docstring)."""
    env = dict(os.environ if environ is None else environ)
    notifier = SlackNotifier.from_env(env)
    send = None
    if bootstrap_servers:
        from agentwatch.ingest.monitor_process import KafkaSender

        send = KafkaSender(bootstrap_servers)
    runtime = ApprovalRuntime(engine, data_dir, control_topic, send=send, notifier=notifier)
    worker = ApprovalWorker(runtime)
    secret = env.get("AGENTWATCH_SLACK_SIGNING_SECRET")
    interactions = None
    if secret:
        # Votes from Slack are identified by Slack alone: users.info e-mails, usergroups.users.list.
        directory: Directory = SlackDirectory(notifier) if notifier is not None else FileDirectory(
            load_approvals_file(approvals_file_path(data_dir, env)))
        interactions = InteractionHandler(engine, secret, directory, notifier, on_decision=worker.wake)
    return ApprovalService(runtime, worker, interactions)


class AgentwatchServer(ThreadingHTTPServer):
    daemon_threads = True
    approvals: ApprovalService | None = None

    def server_close(self) -> None:
        super().server_close()
        if self.approvals is not None:
            self.approvals.stop()


def _zero_approval_attempts() -> None:
    """Every gated action × outcome as a zero-valued series: "no refusals", not "no data"."""
    from agentwatch.approve.approvals import REFUSALS
    from agentwatch.respond.playbook_engine import discover_actions

    for name, cls in discover_actions().items():
        if cls.gated:
            for outcome in ("approve", "deny", *REFUSALS):
                metrics.APPROVAL_ATTEMPTS.labels(name, outcome)


def make_server(host: str, port: int, engine: Engine, approvals: ApprovalService | None = None) -> AgentwatchServer:
    """A server bound to ``host:port`` (call ``serve_forever``); starts the approval worker."""

    store_registry = CollectorRegistry(auto_describe=False)
    store_registry.register(StoreCollector(engine))
    _zero_approval_attempts()

    class Handler(BaseHTTPRequestHandler):
        server_version = "agentwatch"

        def log_message(self, fmt: str, *args: object) -> None:  # route access logs through logging
            log.debug("%s %s", self.address_string(), fmt % args)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = urllib.parse.urlsplit(self.path).path
            if path == "/metrics":
                self._send(HTTPStatus.OK, generate_latest() + generate_latest(store_registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                try:
                    with engine.connect() as conn:
                        conn.execute(text("SELECT 1"))
                except SQLAlchemyError as exc:
                    self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "error", "store": type(exc).__name__})
                    return
                self._json(HTTPStatus.OK, {"status": "ok"})
            elif path.startswith("/v1/sessions/"):
                session_id = urllib.parse.unquote(path.removeprefix("/v1/sessions/"))
                if not session_id or len(session_id) > MAX_SESSION_ID:
                    self._json(HTTPStatus.BAD_REQUEST, {"error": "bad session id"})
                    return
                try:
                    verdict = status_from_store(engine, session_id)
                except GuardUnavailable as exc:
                    self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
                    return
                self._json(HTTPStatus.OK, verdict.to_json())
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            received_ms = int(time.time() * 1000)
            path = urllib.parse.urlsplit(self.path).path
            if path != INTERACTIONS_PATH:
                self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
                return
            handler = approvals.interactions if approvals is not None else None
            if handler is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": "slack interactions are not configured "
                                                           "(AGENTWATCH_SLACK_SIGNING_SECRET)"})
                return
            try:
                length = int(self.headers.get("Content-Length") or "0")
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY_BYTES:
                self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large or no length"})
                return
            body = self.rfile.read(length)
            try:
                answer = handler.handle(body, dict(self.headers.items()), received_ms, self.client_address[0])
            except SQLAlchemyError as exc:
                log.warning("slack interaction failed on the store: %s", exc)
                self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "store unavailable"})
                return
            self._send(HTTPStatus(answer.status), answer.body, "application/json")
            if answer.after is not None:
                answer.after()

        def _json(self, status: HTTPStatus, body: dict[str, object]) -> None:
            self._send(status, json.dumps(body).encode(), "application/json")

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = AgentwatchServer((host, port), Handler)
    server.approvals = approvals
    if approvals is not None:
        approvals.worker.start()
    return server
