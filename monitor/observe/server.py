"""``agentwatch serve``: the HTTP side — metrics, health, session status, Slack approvals.

``GET /healthz`` (store reachable; open), ``POST /slack/interactions`` (Slack's
Approve/Deny/Details buttons, authenticated by Slack's signature, see
:mod:`agentwatch.approve.slack.interactions`), and — only with the API token as ``Authorization:
Bearer <token>`` — ``GET /v1/sessions/<session_id>`` (``{"status": "active"|"terminated",
…}`` for hooks and gateways), ``GET /v1/incidents`` and ``GET /v1/incidents/<id>``
(incidents, paginated, redacted: :mod:`agentwatch.observe.incident_api`) and ``GET /metrics``
(Prometheus; ``--public-metrics`` opts out of the token for it). Without a token configured,
the token-guarded routes answer 401: ``serve`` then offers only ``/healthz`` and Slack,
whatever address it is bound to.

``POST /v1/hooks/claude-code`` (same token) takes Claude Code hook inputs — ``PreToolUse``,
``PostToolUse``, ``UserPromptSubmit``, ``SessionStart``, ``SessionEnd`` — scores each with the monitor's
detection in its session's context, publishes it to Kafka and answers a ``PreToolUse`` with
``permissionDecision`` allow / ask / deny (:mod:`agentwatch.observe.hook_gate`). Bodies are capped at
1 MiB (413); an input that is not a hook object is 400; a store that cannot be read is 503.

It runs on uvicorn (asyncio, one event loop) with starlette routing; blocking work (the
store, the Slack handler, the store-derived metrics) runs on a small bounded thread pool.
A connection must deliver its whole request (headers and body) within
``request_timeout_s`` of its first byte or of being opened, idle keep-alive connections
close after ``keep_alive_s``, connections beyond ``max_connections`` are answered 503 and
closed, request headers are capped at 16 KiB and the Slack body at 1 MiB. Stalled
clients therefore cost a file descriptor for a bounded time, never a thread.

``serve`` also runs the approval worker (:class:`agentwatch.approve.worker.ApprovalWorker`):
approved containment is executed, overdue approvals escalate or expire, and the Slack
messages are kept up to date — alongside (and agreeing with, through the store) the
monitor's own responder.

Environment
-----------
``AGENTWATCH_API_TOKEN`` or ``AGENTWATCH_API_TOKEN_FILE``
    The bearer token for ``/v1/…`` and ``/metrics`` (see :mod:`agentwatch.observe.api_token`).
``AGENTWATCH_PUBLIC_URL``
    Where people reach ``serve`` (e.g. ``https://agentwatch.example.com``): Slack messages
    link each incident to ``<url>/v1/incidents/<id>`` instead of naming server file paths.
``AGENTWATCH_HOOK_TOKENS_FILE``
    Per-installation tokens for ``/v1/hooks/claude-code`` (SHA-256s with the identity each one
    carries, see :mod:`agentwatch.observe.hook_tokens`); accepted there beside the API token.
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
    ``<data_dir>/approvals.toml``; see :mod:`agentwatch.approve.directory`).
``AGENTWATCH_APPROVERS``, ``AGENTWATCH_ESCALATION_APPROVERS``
    Comma-separated Slack user/user-group ids the shipped ``contain_session`` playbook
    asks (read by the monitor when it requests an approval).
``AGENTWATCH_REVOKE_WEBHOOK_URL``, ``AGENTWATCH_QUARANTINE_WEBHOOK_URL``, ``AGENTWATCH_WEBHOOK_SECRET``
    Where the gated actions' signed webhooks go and their HMAC secret.
``AGENTWATCH_BOOTSTRAP_SERVERS`` (or ``serve --bootstrap-servers``)
    Kafka, so that ``serve`` can publish approved control commands itself
    (``quarantine_agent``, ``block_egress``, ``disable_tool``); without it the monitor
    (``agentwatch run``) publishes them. Hook events are published there too (``[hooks] topic``);
    without a broker they are decided on but not published, and ``serve`` says so at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import anyio
import h11
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from agentwatch.approve.directory import Directory, FileDirectory, approvals_file_path, load_approvals_file
from agentwatch.approve.runtime import ApprovalRuntime
from agentwatch.approve.slack.interactions import MAX_BODY_BYTES, InteractionHandler
from agentwatch.approve.slack.notifier import SlackDirectory, SlackNotifier
from agentwatch.approve.worker import ApprovalWorker, approval_runtime
from agentwatch.ingest.kafka_security import KafkaSecurity
from agentwatch.observe import metrics
from agentwatch.observe.api_token import bearer_matches
from agentwatch.observe.hook_containment import ContainmentCache
from agentwatch.observe.hook_gate import MAX_BODY_BYTES as MAX_HOOK_BODY_BYTES
from agentwatch.observe.hook_gate import HookGate, HookRefused, answer, prepare
from agentwatch.observe.hook_tokens import identity_for
from agentwatch.observe.incident_api import BadQuery, incident_document, incident_page, parse_query
from agentwatch.observe.store_metrics import StoreCollector
from agentwatch.respond.session_guard import MAX_SESSION_ID, GuardUnavailable, status_from_store

log = logging.getLogger(__name__)
INTERACTIONS_PATH = "/slack/interactions"
HOOKS_PATH = "/v1/hooks/claude-code"
MAX_HEADER_BYTES = 16_384

REFUSED_CONNECTIONS = Counter(
    "agentwatch_serve_refused_connections_total",
    "Connections serve closed without an answer from the app: over the connection cap, or too slow to send "
    "their request.",
    ["reason"],
)
UNAUTHORISED = Counter(
    "agentwatch_serve_unauthorised_requests_total", "Requests refused for a missing or wrong API token.", ["route"]
)


@dataclass(frozen=True, slots=True)
class ServeLimits:
    """How much any client may hold of ``serve``: time, connections, bytes, threads."""

    #: The whole request (headers and body) must arrive within this, from the connection's
    #: opening or the request's first byte.
    request_timeout_s: float = 10.0
    #: Idle keep-alive connections close after this.
    keep_alive_s: int = 5
    #: Open connections beyond this are answered 503 and closed.
    max_connections: int = 512
    #: Threads for blocking work (the store, Slack's handler, store-derived metrics).
    worker_threads: int = 8
    #: How long a graceful shutdown waits for requests in flight.
    shutdown_grace_s: int = 5


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


def approval_service(
    engine: Engine,
    data_dir: Path,
    control_topic: str,
    bootstrap_servers: str | None = None,
    environ: Mapping[str, str] | None = None,
    security: KafkaSecurity | None = None,
) -> ApprovalService:
    """Build the approval side of ``serve`` from the environment (see the module docstring)."""
    env = dict(os.environ if environ is None else environ)
    notifier = SlackNotifier.from_env(env)
    send = None
    if bootstrap_servers:
        from agentwatch.ingest.monitor_process import KafkaSender
        from agentwatch.respond.control_signing import ControlSigner

        send = KafkaSender(bootstrap_servers, security, ControlSigner.from_env(control_topic, env))
    runtime = approval_runtime(engine, data_dir, control_topic, send=send, notifier=notifier)
    worker = ApprovalWorker(runtime)
    secret = env.get("AGENTWATCH_SLACK_SIGNING_SECRET")
    interactions = None
    if secret:
        # Votes from Slack are identified by Slack alone: users.info e-mails, usergroups.users.list.
        directory: Directory = (
            SlackDirectory(notifier)
            if notifier is not None
            else FileDirectory(load_approvals_file(approvals_file_path(data_dir, env)))
        )
        interactions = InteractionHandler(engine, secret, directory, notifier, on_decision=worker.wake)
    return ApprovalService(runtime, worker, interactions)


def _zero_approval_attempts() -> None:
    """Every gated action × outcome as a zero-valued series: "no refusals", not "no data"."""
    from agentwatch.approve.votes import REFUSALS
    from agentwatch.respond.playbook_engine import discover_actions

    for name, cls in discover_actions().items():
        if cls.gated:
            for outcome in ("approve", "deny", *REFUSALS):
                metrics.APPROVAL_ATTEMPTS.labels(name, outcome)


# -- the application ----------------------------------------------------------------------
def make_app(
    engine: Engine,
    approvals: ApprovalService | None = None,
    *,
    token: str | None = None,
    public_metrics: bool = False,
    limits: ServeLimits = ServeLimits(),
    hooks: HookGate | None = None,
) -> Starlette:
    """The routes. ``token`` guards ``/v1/sessions/…``, ``/v1/hooks/claude-code`` and (unless
    ``public_metrics``) ``/metrics``; with no token those routes answer 401. Without ``hooks`` the
    hook endpoint answers 404."""
    store_registry = CollectorRegistry(auto_describe=False)
    store_registry.register(StoreCollector(engine))
    _zero_approval_attempts()
    threads = anyio.CapacityLimiter(limits.worker_threads)

    async def blocking(fn: Callable[[], Any]) -> Any:
        return await anyio.to_thread.run_sync(fn, limiter=threads)

    def refused(route: str, request: Request) -> Response | None:
        """401 unless the request carries the API token."""
        if token is not None and bearer_matches(request.headers.get("authorization"), token):
            return None
        UNAUTHORISED.labels(route).inc()
        hint = (
            "send Authorization: Bearer <AGENTWATCH_API_TOKEN>"
            if token is not None
            else "serve has no API token configured (AGENTWATCH_API_TOKEN); this route is off"
        )
        return JSONResponse(
            {"error": "unauthorized", "hint": hint},
            HTTPStatus.UNAUTHORIZED,
            headers={"WWW-Authenticate": 'Bearer realm="agentwatch"'},
        )

    async def healthz(request: Request) -> Response:
        def probe() -> Response:
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            except SQLAlchemyError as exc:
                return JSONResponse({"status": "error", "store": type(exc).__name__}, HTTPStatus.SERVICE_UNAVAILABLE)
            return JSONResponse({"status": "ok"})

        return await blocking(probe)

    async def prometheus_metrics(request: Request) -> Response:
        if not public_metrics and (denied := refused("metrics", request)) is not None:
            return denied
        body = await blocking(lambda: generate_latest() + generate_latest(store_registry))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def session(request: Request) -> Response:
        if (denied := refused("sessions", request)) is not None:
            return denied
        session_id = request.path_params["session_id"]
        if not session_id or len(session_id) > MAX_SESSION_ID:
            return JSONResponse({"error": "bad session id"}, HTTPStatus.BAD_REQUEST)
        try:
            verdict = await blocking(lambda: status_from_store(engine, session_id))
        except GuardUnavailable as exc:
            return JSONResponse({"error": str(exc)}, HTTPStatus.SERVICE_UNAVAILABLE)
        return JSONResponse(verdict.to_json())

    async def incident_list(request: Request) -> Response:
        if (denied := refused("incidents", request)) is not None:
            return denied
        try:
            query = parse_query(request.query_params)
        except BadQuery as exc:
            return JSONResponse({"error": str(exc)}, HTTPStatus.BAD_REQUEST)

        def read() -> dict[str, Any]:
            with engine.connect() as conn:
                return incident_page(conn, query)

        try:
            return JSONResponse(await blocking(read))
        except SQLAlchemyError as exc:
            log.warning("incident list failed on the store: %s", exc.__class__.__name__)
            return JSONResponse({"error": "store unavailable"}, HTTPStatus.SERVICE_UNAVAILABLE)

    async def incident_detail(request: Request) -> Response:
        if (denied := refused("incidents", request)) is not None:
            return denied
        incident_id = request.path_params["incident_id"]

        def read() -> dict[str, Any]:
            with engine.connect() as conn:
                return incident_document(conn, incident_id)

        try:
            return JSONResponse(await blocking(read))
        except KeyError:
            return JSONResponse({"error": "no such incident"}, HTTPStatus.NOT_FOUND)
        except SQLAlchemyError as exc:
            log.warning("incident read failed on the store: %s", exc.__class__.__name__)
            return JSONResponse({"error": "store unavailable"}, HTTPStatus.SERVICE_UNAVAILABLE)

    async def slack_interactions(request: Request) -> Response:
        received_ms = int(time.time() * 1000)
        handler = approvals.interactions if approvals is not None else None
        if handler is None:
            return JSONResponse(
                {"error": "slack interactions are not configured (AGENTWATCH_SLACK_SIGNING_SECRET)"},
                HTTPStatus.NOT_FOUND,
            )
        remote = request.client.host if request.client else ""
        headers = dict(request.headers.items())
        body, problem = await _bounded_body(request, MAX_BODY_BYTES)
        try:
            if problem is not None:  # refused before it could be verified; audited like every refusal
                status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if problem == "oversize" else HTTPStatus.REQUEST_TIMEOUT
                answer = await blocking(lambda: handler.refuse(status, problem, headers, received_ms, remote))
            else:
                answer = await blocking(lambda: handler.handle(body, headers, received_ms, remote))
        except SQLAlchemyError as exc:
            log.warning("slack interaction failed on the store: %s", exc.__class__.__name__)
            return JSONResponse({"error": "store unavailable"}, HTTPStatus.SERVICE_UNAVAILABLE)
        if answer.after is not None:
            after = answer.after
            return Response(
                answer.body,
                answer.status,
                media_type="application/json",
                background=BackgroundTask(blocking, after),  # async: awaited on the loop, `after` on a worker
            )
        return Response(answer.body, answer.status, media_type="application/json")

    containment = ContainmentCache(engine, hooks.settings.containment_cache_s) if hooks is not None else None

    async def claude_code_hook(request: Request) -> Response:
        installation = identity_for(request.headers.get("authorization"), hooks.tokens) if hooks is not None else None
        if installation is None and (denied := refused("hooks", request)) is not None:
            return denied
        if hooks is None or containment is None:
            return JSONResponse({"error": "the hook endpoint is not configured"}, HTTPStatus.NOT_FOUND)
        body, problem = await _bounded_body(request, MAX_HOOK_BODY_BYTES)
        if problem is not None:
            metrics.HOOK_EVENTS.labels("any", problem).inc()
            if problem == "oversize":
                return JSONResponse(
                    {"error": f"hook input larger than {MAX_HOOK_BODY_BYTES} bytes"},
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                )
            return JSONResponse({"error": "request incomplete"}, HTTPStatus.REQUEST_TIMEOUT)
        started = time.perf_counter()
        received_ms = int(time.time() * 1000)
        try:
            prepared = prepare(body, request.headers, received_ms, installation)
        except HookRefused as exc:
            metrics.HOOK_EVENTS.labels("any", "refused").inc()
            return JSONResponse({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
        held = None
        if prepared.hook == "PreToolUse":
            session_id = prepared.event.session_id
            held = containment.cached(session_id)
            if held is None:
                try:
                    held = await blocking(lambda: containment.lookup(session_id))
                except GuardUnavailable as exc:
                    metrics.HOOK_EVENTS.labels("PreToolUse", "store_unavailable").inc()
                    return JSONResponse({"error": str(exc)}, HTTPStatus.SERVICE_UNAVAILABLE)
        decision = hooks.observe(prepared, received_ms, held)
        metrics.HOOK_DECISION_SECONDS.observe(time.perf_counter() - started)
        return JSONResponse(answer(decision))

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "not found"}, HTTPStatus.NOT_FOUND)

    async def wrong_method(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "method not allowed"}, HTTPStatus.METHOD_NOT_ALLOWED)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", prometheus_metrics, methods=["GET"]),
            Route("/v1/sessions/{session_id:path}", session, methods=["GET"]),
            Route("/v1/incidents", incident_list, methods=["GET"]),
            Route("/v1/incidents/{incident_id}", incident_detail, methods=["GET"]),
            Route(INTERACTIONS_PATH, slack_interactions, methods=["POST"]),
            Route(HOOKS_PATH, claude_code_hook, methods=["POST"]),
        ],
        exception_handlers={404: not_found, 405: wrong_method},
        middleware=[Middleware(_HeaderCap)],
    )


class _HeaderCap:
    """431 for a request whose headers add up to more than :data:`MAX_HEADER_BYTES`.

    (h11 caps a request head that arrives in pieces; one that arrives whole is checked here.)
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and sum(len(k) + len(v) for k, v in scope["headers"])
            + len(scope.get("raw_path") or b"")
            + len(scope.get("query_string") or b"")
            > MAX_HEADER_BYTES
        ):
            response = JSONResponse(
                {"error": "request headers too large"},
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _bounded_body(request: Request, limit: int) -> tuple[bytes, str | None]:
    """``(body, None)``, or ``(b"", "oversize")`` past ``limit`` bytes (declared or sent), or
    ``(b"", "timeout")`` when the client went away or missed the request deadline mid-body."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return b"", "oversize"
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return b"", "oversize"
            chunks.append(chunk)
    except ClientDisconnect:
        return b"", "timeout"
    return b"".join(chunks), None


# -- the connection layer -------------------------------------------------------------------
def _guarded_protocol(limits: ServeLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol plus a connection cap and a deadline for receiving each request."""
    busy_body = b'{"error":"too many connections"}'
    busy = (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(busy_body)).encode() + b"\r\n\r\n" + busy_body
    )

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                # uvicorn writes a response's head and body separately: without this, Nagle holds the
                # body until the client's delayed ACK of the head (~40 ms on Linux) — every answer.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if len(self.connections) > limits.max_connections:
                REFUSED_CONNECTIONS.labels("over_capacity").inc()
                transport.write(busy)
                transport.close()
                return
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._arm()  # a request begins or continues: it has until the deadline to be complete
            super().data_received(data)
            if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
                self._disarm()  # the whole request is in (or the connection is done)

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(limits.request_timeout_s, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
                REFUSED_CONNECTIONS.labels("request_timeout").inc()
                if self.cycle is not None and not self.cycle.response_complete:
                    self.cycle.disconnected = True  # the app waiting for the body sees a disconnect
                    self.cycle.message_event.set()
                self.transport.close()

    return GuardedH11Protocol


class AgentwatchServer:
    """uvicorn on a socket bound up front (so ``server_address`` is known before serving).

    ``serve_forever`` blocks (in any thread); ``shutdown`` stops it from another thread;
    ``server_close`` releases the socket and stops the approval worker.
    """

    def __init__(
        self,
        app: Starlette,
        sock: socket.socket,
        limits: ServeLimits,
        approvals: ApprovalService | None,
        hooks: HookGate | None = None,
    ) -> None:
        self.app, self.socket, self.limits, self.approvals, self.hooks = app, sock, limits, approvals, hooks
        self.server_address: tuple[str, int] = sock.getsockname()[:2]
        config = uvicorn.Config(
            app,
            http=_guarded_protocol(limits),
            ws="none",
            lifespan="off",
            access_log=False,
            log_config=None,
            timeout_keep_alive=limits.keep_alive_s,
            limit_concurrency=limits.max_connections + 1,
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
            timeout_graceful_shutdown=limits.shutdown_grace_s,
            server_header=False,
        )
        self.uvicorn = uvicorn.Server(config)
        self._stopped = threading.Event()

    def serve_forever(self, poll_interval: float | None = None) -> None:  # noqa: ARG002 - http.server's signature
        try:
            self.uvicorn.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self, timeout_s: float = 30.0) -> None:
        self.uvicorn.should_exit = True
        if self.uvicorn.started:
            self._stopped.wait(timeout_s)

    def server_close(self) -> None:
        self.socket.close()
        if self.approvals is not None:
            self.approvals.stop()
        if self.hooks is not None:
            self.hooks.publisher.close()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def make_server(
    host: str,
    port: int,
    engine: Engine,
    approvals: ApprovalService | None = None,
    *,
    token: str | None = None,
    public_metrics: bool = False,
    limits: ServeLimits = ServeLimits(),
    hooks: HookGate | None = None,
) -> AgentwatchServer:
    """A server bound to ``host:port`` (call ``serve_forever``); starts the approval worker."""
    app = make_app(engine, approvals, token=token, public_metrics=public_metrics, limits=limits, hooks=hooks)
    server = AgentwatchServer(app, bind(host, port), limits, approvals, hooks)
    if approvals is not None:
        approvals.worker.start()
    return server
