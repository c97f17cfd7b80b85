"""Is this session still allowed to act? — the lookup behind the Claude Code hook.

``agentwatch hook claude-code`` is configured as a Claude Code ``PreToolUse`` hook. It
reads the hook's JSON on stdin, looks the session up — through ``agentwatch serve``'s
session-status endpoint (``--server``, authenticated with ``AGENTWATCH_API_TOKEN``) or
directly in the store, read-only — and exits 2 with the reason on stderr when the session
was terminated, which makes Claude Code block the tool call and show the reason.

Claude Code blocks only on exit 2: any other exit lets the tool run. So the only way to
exit 0 is an explicit allow — a well-formed answer that this very session is ``active``.
Everything else (input that is not a hook object, a ``session_id`` that is not a short
string, a store that does not exist, a server answering anything but that allow, a
timeout) is "cannot verify", which blocks when failing closed (the default) and allows
when failing open; a *terminated* session is blocked either way. Every message on stderr is
one line written here, never agent text.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]  # real (C or pure-Python); typeshed omits it
from pathlib import Path
from typing import Literal

from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from agentwatch.store import session_status

BLOCK = 2  # Claude Code: exit code 2 blocks the tool call and shows stderr
MAX_HOOK_INPUT_BYTES = 8 << 20  # a Write of a large file arrives whole in tool_input
MAX_SESSION_ID = 256
MAX_ANSWER_BYTES = 65_536
STATUSES = ("active", "terminated")
_SAFE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


class GuardUnavailable(RuntimeError):
    """The session's status could not be determined."""


class HookInputError(ValueError):
    """The hook's stdin is not a hook object with a usable ``session_id``."""


@dataclass(slots=True)
class SessionVerdict:
    session_id: str
    status: str  # active | terminated
    reason: str = ""
    incident_id: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "session_id": self.session_id,
            "status": self.status,
            "reason": self.reason,
            "incident_id": self.incident_id,
        }


# -- input -------------------------------------------------------------------------------
_WS = " \t\n\r"
_STRUCTURAL = re.compile(r'["{}\[\]]')
_SCALAR = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null")


def session_id_from_hook_input(raw: bytes) -> str:
    """The top-level ``session_id`` of a hook object, read without recursion.

    ``tool_input`` is whatever the agent proposed — nested as deep as it likes — so the
    other members are skipped by counting brackets instead of being parsed.
    """
    if len(raw) > MAX_HOOK_INPUT_BYTES:
        raise HookInputError(f"hook input is larger than {MAX_HOOK_INPUT_BYTES >> 20} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HookInputError("hook input is not valid UTF-8") from None
    pos = _skip_ws(text, 0)
    if not text.startswith("{", pos):
        raise HookInputError("hook input is not a JSON object")
    found: list[object] = []
    pos = _skip_ws(text, pos + 1)
    if text.startswith("}", pos):
        pos += 1
    else:
        while True:
            if not text.startswith('"', pos):
                raise HookInputError("hook input is not valid JSON")
            key, pos = _string(text, pos)
            pos = _skip_ws(text, pos)
            if not text.startswith(":", pos):
                raise HookInputError("hook input is not valid JSON")
            pos = _skip_ws(text, pos + 1)
            if key == "session_id" and text.startswith('"', pos):
                value, pos = _string(text, pos)
                found.append(value)
            else:
                end = _skip_value(text, pos)
                if key == "session_id":
                    found.append(None)  # null, a number, an object: not an id
                pos = end
            pos = _skip_ws(text, pos)
            if text.startswith(",", pos):
                pos = _skip_ws(text, pos + 1)
            elif text.startswith("}", pos):
                pos += 1
                break
            else:
                raise HookInputError("hook input is not valid JSON")
    if _skip_ws(text, pos) != len(text):
        raise HookInputError("hook input has trailing data after the JSON object")
    if len(found) != 1:
        raise HookInputError("hook input has no session_id" if not found else "hook input has two session_id keys")
    session_id = found[0]
    if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_SESSION_ID or not session_id.isprintable():
        raise HookInputError(f"hook input's session_id is not a string of 1–{MAX_SESSION_ID} printable characters")
    return session_id


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


def _string(text: str, pos: int) -> tuple[str, int]:
    try:
        return scanstring(text, pos + 1, True)
    except ValueError:
        raise HookInputError("hook input is not valid JSON") from None


def _skip_value(text: str, pos: int) -> int:
    """The end of the JSON value at ``pos``; containers by bracket counting (strings honoured)."""
    if text.startswith('"', pos):
        return _string(text, pos)[1]
    if not text.startswith(("{", "["), pos):
        match = _SCALAR.match(text, pos)
        if match is None:
            raise HookInputError("hook input is not valid JSON")
        return match.end()
    stack: list[str] = []
    while (match := _STRUCTURAL.search(text, pos)) is not None:
        ch, pos = match.group(), match.start()
        if ch == '"':
            pos = _string(text, pos)[1]
            continue
        if ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif not stack or stack.pop() != ch:
            raise HookInputError("hook input is not valid JSON")
        elif not stack:
            return pos + 1
        pos += 1
    raise HookInputError("hook input is not valid JSON (truncated)")


# -- lookups -----------------------------------------------------------------------------
def status_from_store(engine: Engine, session_id: str) -> SessionVerdict:
    try:
        with engine.connect() as conn:
            row = conn.execute(select(session_status).where(session_status.c.session_id == session_id)).first()
    except SQLAlchemyError as exc:
        raise GuardUnavailable(f"store unreachable: {exc.__class__.__name__}") from exc
    if row is None:
        return SessionVerdict(session_id, "active")
    return SessionVerdict(session_id, row.status, row.reason, row.incident_id)


def read_only_store(store_url: str, timeout_s: float) -> Engine:
    """The store, opened for reading only: nothing is created, no schema, no file.

    A SQLite file that does not exist (a mistyped data dir) is "unreachable", not an empty
    store in which every session looks active.
    """
    if store_url.startswith("sqlite:///"):
        path = Path(store_url.removeprefix("sqlite:///").partition("?")[0])
        if not path.is_file():
            raise GuardUnavailable(f"no store at {path}")
        uri = urllib.parse.quote(str(path.resolve()))
        return create_engine(
            f"sqlite:///file:{uri}?mode=ro&uri=true", connect_args={"timeout": timeout_s, "check_same_thread": False}
        )
    if store_url.startswith("sqlite:"):
        raise GuardUnavailable("an in-memory store has no sessions")
    try:
        engine = create_engine(store_url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise GuardUnavailable(f"store URL unusable: {exc.__class__.__name__}") from exc
    if engine.dialect.name == "postgresql":
        engine = create_engine(store_url, connect_args={"connect_timeout": max(1, int(timeout_s))})
    return engine


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the bearer token elsewhere; refuse it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        raise urllib.error.HTTPError(req.full_url, code, "redirect refused", headers, fp)


_opener = urllib.request.build_opener(_NoRedirects)


def status_from_server(server_url: str, session_id: str, timeout_s: float, token: str | None = None) -> SessionVerdict:
    """``GET /v1/sessions/<id>``; anything but a well-formed answer about this session is unavailable."""
    url = f"{server_url.rstrip('/')}/v1/sessions/{urllib.parse.quote(session_id, safe='')}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with _opener.open(request, timeout=timeout_s) as response:
            raw = response.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise GuardUnavailable(
            f"the server answered HTTP {exc.code}" + (" (set AGENTWATCH_API_TOKEN)" if exc.code in (401, 403) else "")
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise GuardUnavailable(f"server unreachable: {exc.__class__.__name__}") from None
    if len(raw) > MAX_ANSWER_BYTES:
        raise GuardUnavailable("the server's answer is too large")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise GuardUnavailable("the server's answer is not JSON") from None
    if not isinstance(body, dict) or body.get("session_id") != session_id or body.get("status") not in STATUSES:
        raise GuardUnavailable("the server's answer is not a status for this session")
    reason, incident_id = body.get("reason"), body.get("incident_id")
    return SessionVerdict(
        session_id,
        body["status"],
        reason if isinstance(reason, str) else "",
        incident_id if isinstance(incident_id, str) else None,
    )


def _within(timeout_s: float, lookup: Callable[[], SessionVerdict]) -> SessionVerdict:
    """Run ``lookup`` with a hard deadline: Claude Code runs the tool when a hook times out."""
    box: list[SessionVerdict | BaseException] = []

    def run() -> None:
        try:
            box.append(lookup())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, re-raised there
            box.append(exc)

    thread = threading.Thread(target=run, name="agentwatch-hook-lookup", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not box:
        raise GuardUnavailable(f"no answer within {timeout_s:g} s")
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


# -- the decision ------------------------------------------------------------------------
def _one_line(text: str, limit: int = 300) -> str:
    flat = "".join(ch if ch.isprintable() else " " for ch in text)
    return flat[:limit] + ("…" if len(flat) > limit else "")


def _terminated_message(verdict: SessionVerdict) -> str:
    if verdict.reason.startswith("agentwatch:"):  # written by terminate_session, from our words only
        return _one_line(verdict.reason)
    incident = verdict.incident_id if verdict.incident_id and _SAFE_ID.fullmatch(verdict.incident_id) else None
    return "agentwatch: this session was terminated" + (f" by incident {incident}" if incident else "")


def unverifiable(problem: str, fail: str) -> tuple[int, str]:
    """The answer when the session cannot be verified: block (closed) or allow (open)."""
    if fail == "open":
        return 0, _one_line(f"agentwatch: cannot verify this session ({problem}); allowing (fail open)")
    return BLOCK, _one_line(f"agentwatch: cannot verify this session ({problem}); blocking (fail closed)")


def hook_decision(
    stdin: bytes,
    *,
    server_url: str | None,
    store_url: str,
    fail: Literal["closed", "open"],
    timeout_s: float = 2.0,
    token: str | None = None,
) -> tuple[int, str]:
    """``(exit code, stderr text)`` for one hook invocation; exit 0 only for an explicit allow."""
    try:
        session_id = session_id_from_hook_input(stdin)
    except HookInputError as exc:
        return unverifiable(str(exc), fail)
    try:
        if server_url:
            verdict = _within(timeout_s, lambda: status_from_server(server_url, session_id, timeout_s, token))
        else:
            verdict = _within(timeout_s, lambda: status_from_store(read_only_store(store_url, timeout_s), session_id))
    except GuardUnavailable as exc:
        return unverifiable(str(exc), fail)
    if verdict.status == "terminated":
        return BLOCK, _terminated_message(verdict)
    if verdict.status == "active":
        return 0, ""
    return unverifiable("the store holds an unknown status", fail)
