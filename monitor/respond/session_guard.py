"""Is this session still allowed to act? — the lookup behind the Claude Code hook.

``agentwatch hook claude-code`` is configured as a Claude Code ``PreToolUse`` hook. It
reads the hook's JSON on stdin, looks the session up — through ``agentwatch serve``'s
session-status endpoint (``--server``) or directly in the store — and exits 2 with the
reason on stderr when the session was terminated, which makes Claude Code block the
tool call and show the reason. When the monitor cannot be reached it fails closed
(exit 2) or open (exit 0), as configured.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from agentwatch.store import open_store, session_status

BLOCK = 2  # Claude Code: exit code 2 blocks the tool call and shows stderr


class GuardUnavailable(RuntimeError):
    """The session's status could not be determined."""


@dataclass(slots=True)
class SessionVerdict:
    session_id: str
    status: str  # active | terminated
    reason: str = ""
    incident_id: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"session_id": self.session_id, "status": self.status, "reason": self.reason,
                "incident_id": self.incident_id}


def status_from_store(engine: Engine, session_id: str) -> SessionVerdict:
    try:
        with engine.connect() as conn:
            row = conn.execute(select(session_status).where(session_status.c.session_id == session_id)).first()
    except SQLAlchemyError as exc:
        raise GuardUnavailable(f"store unreachable: {exc.__class__.__name__}") from exc
    if row is None:
        return SessionVerdict(session_id, "active")
    return SessionVerdict(session_id, row.status, row.reason, row.incident_id)


def status_from_server(server_url: str, session_id: str, timeout_s: float) -> SessionVerdict:
    url = f"{server_url.rstrip('/')}/v1/sessions/{urllib.parse.quote(session_id, safe='')}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - operator-given URL
            body = json.loads(response.read(65536))
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise GuardUnavailable(f"{server_url} unreachable: {exc}") from exc
    return SessionVerdict(session_id, str(body.get("status", "active")), str(body.get("reason", "")),
                          body.get("incident_id"))


def hook_decision(
    stdin: bytes,
    *,
    server_url: str | None,
    store_url: str,
    fail: Literal["closed", "open"],
    timeout_s: float = 2.0,
) -> tuple[int, str]:
    """``(exit code, stderr text)`` for one hook invocation."""
    try:
        payload = json.loads(stdin or b"{}")
        session_id = str(payload["session_id"])
    except (ValueError, KeyError, TypeError):
        return (BLOCK if fail == "closed" else 0,
                "agentwatch: hook input has no session_id" + ("; blocking (fail closed)" if fail == "closed" else ""))
    try:
        if server_url:
            verdict = status_from_server(server_url, session_id, timeout_s)
        else:
            try:
                engine = open_store(store_url)
            except SQLAlchemyError as exc:
                raise GuardUnavailable(f"store unreachable: {exc.__class__.__name__}") from exc
            verdict = status_from_store(engine, session_id)
    except GuardUnavailable as exc:
        if fail == "closed":
            return BLOCK, f"agentwatch: cannot verify this session ({exc}); blocking (fail closed)"
        return 0, f"agentwatch: cannot verify this session ({exc}); allowing (fail open)"
    if verdict.status == "terminated":
        return BLOCK, f"agentwatch: {verdict.reason or 'this session was terminated'}"
    return 0, ""
