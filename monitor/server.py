"""``agentwatch serve``: the HTTP side — metrics, health, session status.

``GET /metrics`` (Prometheus), ``GET /healthz`` (store reachable), ``GET
/v1/sessions/<session_id>`` (``{"status": "active"|"terminated", …}`` for hooks and
gateways). A small threaded stdlib server: it only answers lookups.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from monitor import metrics  # noqa: F401 - registers agentwatch_* metrics for /metrics
from monitor.session_guard import GuardUnavailable, status_from_store
from monitor.store_metrics import StoreCollector

log = logging.getLogger(__name__)
MAX_SESSION_ID = 256


def make_server(host: str, port: int, engine: Engine) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (call ``serve_forever``)."""

    store_registry = CollectorRegistry(auto_describe=False)
    store_registry.register(StoreCollector(engine))

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

        def _json(self, status: HTTPStatus, body: dict[str, object]) -> None:
            self._send(status, json.dumps(body).encode(), "application/json")

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
