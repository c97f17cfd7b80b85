"""A local fake of the Slack Web API (and a webhook receiver) for approval tests and the bench.

:class:`FakeSlack` listens on ``127.0.0.1:0`` and answers ``chat.postMessage``,
``chat.update``, ``users.info`` and ``usergroups.users.list`` under ``/api/`` the way
Slack does (JSON bodies, ``{"ok": …}``), records every call, keeps each message's
latest blocks and thread, and accepts ``response_url`` posts under ``/respond/``.
``fail = "500"`` or ``"ratelimited"`` simulates an outage. Point slack-sdk's
``WebClient`` at it with ``base_url=fake.api_url``.

:class:`WebhookReceiver` is the other end of :mod:`agentwatch.respond.webhook`: it verifies the
signature and records what it got.
"""

from __future__ import annotations

import itertools
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agentwatch.respond.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


@dataclass
class Call:
    method: str
    params: dict[str, Any]


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread: list[dict[str, Any]] = field(default_factory=list)
    updates: int = 0


class FakeSlack:
    def __init__(self, users: dict[str, str | None] | None = None, groups: dict[str, list[str]] | None = None) -> None:
        self.users: dict[str, str | None] = dict(users or {})
        self.groups: dict[str, list[str]] = dict(groups or {})
        self.calls: list[Call] = []
        self.messages: dict[str, Message] = {}
        self.responses: list[dict[str, Any]] = []
        self.fail: str | None = None
        self.retry_after = 1
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                parts = urllib.parse.urlsplit(self.path)
                self._answer(parts.path, dict(urllib.parse.parse_qsl(parts.query)))

            def do_POST(self) -> None:  # noqa: N802
                parts = urllib.parse.urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if "json" in (self.headers.get("Content-Type") or ""):
                    params = json.loads(raw or b"{}")
                else:
                    params = dict(urllib.parse.parse_qsl(raw.decode()))
                params.update(dict(urllib.parse.parse_qsl(parts.query)))
                self._answer(parts.path, params)

            def _answer(self, path: str, params: dict[str, Any]) -> None:
                status, body, headers = fake.dispatch(path, params, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.base + "/api/"

    def response_url(self, n: int = 1) -> str:
        return f"{self.base}/respond/{n}"

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what was asked ------------------------------------------------------------------
    def methods(self) -> list[str]:
        with self._lock:
            return [c.method for c in self.calls]

    def of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    # -- the API ----------------------------------------------------------------------
    def dispatch(
        self, path: str, params: dict[str, Any], auth: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if path.startswith("/respond/"):
            with self._lock:
                self.responses.append(params)
            return 200, {"ok": True}, {}
        method = path.removeprefix("/api/")
        with self._lock:
            self.calls.append(Call(method, params))
        if self.fail == "500":
            return 500, {"ok": False, "error": "internal_error"}, {}
        if self.fail == "ratelimited":
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(self.retry_after)}
        if not auth or not auth.startswith("Bearer xoxb-"):
            return 200, {"ok": False, "error": "not_authed"}, {}
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        return 200, handler(params), {}

    def _chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - Slack's name
        blocks = p.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        ts = f"1700000000.{next(self._ts):06d}"
        channel = p["channel"]
        with self._lock:
            if p.get("thread_ts"):
                parent = self.messages.get(p["thread_ts"])
                if parent is None:
                    return {"ok": False, "error": "thread_not_found"}
                parent.thread.append({"ts": ts, "text": p.get("text", ""), "broadcast": bool(p.get("reply_broadcast"))})
            else:
                self.messages[ts] = Message(channel, ts, p.get("text", ""), blocks)
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": p.get("text", "")}}

    def _chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            message = self.messages.get(p["ts"])
            if message is None:
                return {"ok": False, "error": "message_not_found"}
            blocks = p.get("blocks") or []
            message.blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
            message.text = p.get("text", "")
            message.updates += 1
        return {"ok": True, "channel": p["channel"], "ts": p["ts"]}

    def _users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user = p.get("user")
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        email = self.users[user]
        profile = {"real_name": user} | ({"email": email} if email else {})
        return {"ok": True, "user": {"id": user, "profile": profile}}

    def _usergroups_users_list(self, p: dict[str, Any]) -> dict[str, Any]:
        group = p.get("usergroup")
        if group not in self.groups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.groups[group])}


class WebhookReceiver:
    """Records signed webhook requests; ``status`` is what it answers."""

    def __init__(self, secret: bytes, status: int = 200) -> None:
        self.secret = secret
        self.status = status
        self.requests: list[dict[str, Any]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                valid = verify(
                    receiver.secret, self.headers.get(TIMESTAMP_HEADER), body, self.headers.get(SIGNATURE_HEADER)
                )
                receiver.requests.append(
                    {
                        "body": json.loads(body),
                        "valid": valid,
                        "request_id": self.headers.get("X-Agentwatch-Request-Id"),
                    }
                )
                receiver.arrived.set()
                self.send_response(receiver.status if valid else 401)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
