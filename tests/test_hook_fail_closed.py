"""``agentwatch hook claude-code`` as Claude Code runs it: every way out that is not an explicit
allow is exit 2 when failing closed, with one line on stderr written by agentwatch.

Claude Code blocks a tool call only on exit 2; exit 1 (a crash) or 0 lets it run. Each case
drives the command as typed (click's runner, or a subprocess where the process matters) against
a real store or a real HTTP server on loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentwatch.cli.main import main
from agentwatch.lab.broker import free_port
from agentwatch.store import open_store, session_status

TERMINATED, ACTIVE = "sess-dead", "sess-live"
TOKEN = "t0ken-0123456789abcdef"


def hook_input(session_id: object = TERMINATED, **extra: object) -> bytes:
    return json.dumps(
        {
            "session_id": session_id,
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": "ls"},
            **extra,
        }
    ).encode()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose store has one terminated session."""
    data = tmp_path / "data"
    with open_store(f"sqlite:///{data / 'agentwatch.db'}").begin() as conn:
        conn.execute(
            session_status.insert().values(
                session_id=TERMINATED,
                agent_id="coder-1",
                status="terminated",
                reason="agentwatch: session terminated by incident inc-7 (critical; secret_access)",
                incident_id="inc-7",
                command_id="cmd-7",
                updated_ms=1,
            )
        )
    path = tmp_path / "agentwatch.toml"
    path.write_text(f'[monitor]\ndata_dir = "{data}"\n')
    return path


def run_hook(
    stdin: bytes, *args: str, config: Path | None = None, env: dict[str, str] | None = None
) -> tuple[int, str]:
    argv = (["--config", str(config)] if config else []) + ["hook", "claude-code", *args]
    result = CliRunner().invoke(main, argv, input=stdin, env={"AGENTWATCH_API_TOKEN": None, **(env or {})})
    return result.exit_code, result.stderr


def assert_blocked(outcome: tuple[int, str], *words: str) -> None:
    code, stderr = outcome
    assert code == 2, outcome
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentwatch: "), stderr
    for word in words:
        assert word in lines[0], stderr


# -- the store path ----------------------------------------------------------------------
def test_terminated_session_with_tool_input_nested_1500_deep_is_blocked(config: Path) -> None:
    deep = b'{"session_id": "%s", "tool_name": "Bash", "tool_input": %s%s}' % (
        TERMINATED.encode(),
        b'{"a": ' * 1500 + b"1",
        b"}" * 1500,
    )
    assert_blocked(run_hook(deep, config=config), "inc-7")
    assert_blocked(run_hook(deep, "--fail", "open", config=config), "inc-7")  # terminated beats fail-open
    shallow_active = b'{"tool_input": %s, "session_id": "%s"}' % (b"[" * 1500 + b"]" * 1500, ACTIVE.encode())
    assert run_hook(shallow_active, config=config) == (0, "")


def test_active_session_is_allowed_silently(config: Path) -> None:
    assert run_hook(hook_input(ACTIVE), config=config) == (0, "")


def test_missing_data_dir_blocks_and_creates_nothing(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[monitor]\ndata_dir = "{tmp_path / "nowhere"}"\n')
    assert_blocked(run_hook(hook_input(), config=config), "cannot verify", "fail closed")
    assert not (tmp_path / "nowhere").exists()
    code, stderr = run_hook(hook_input(), "--fail", "open", config=config)
    assert code == 0 and "allowing (fail open)" in stderr
    assert not (tmp_path / "nowhere").exists()


def test_a_store_without_the_schema_is_unreachable_not_empty(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "agentwatch.db").write_bytes(b"")
    config = tmp_path / "c.toml"
    config.write_text(f'[monitor]\ndata_dir = "{tmp_path / "data"}"\n')
    assert_blocked(run_hook(hook_input(), config=config), "cannot verify")
    assert (tmp_path / "data" / "agentwatch.db").read_bytes() == b""  # no schema was created


@pytest.mark.parametrize(
    "session_id",
    [None, {"id": TERMINATED}, [TERMINATED], 7, "", "x" * 257, "a\nb"],
    ids=["null", "object", "list", "number", "empty", "over-long", "newline"],
)
def test_bad_session_id_blocks(config: Path, session_id: object) -> None:
    assert_blocked(run_hook(hook_input(session_id), config=config), "session_id", "fail closed")


def test_missing_session_id_blocks(config: Path) -> None:
    assert_blocked(run_hook(b'{"tool_name": "Bash"}', config=config), "session_id")


def test_duplicate_session_id_keys_block(config: Path) -> None:
    two = b'{"session_id": "%s", "session_id": "%s"}' % (ACTIVE.encode(), TERMINATED.encode())
    assert_blocked(run_hook(two, config=config), "session_id")


@pytest.mark.parametrize(
    "stdin",
    [
        b"not json",
        b"",
        b"   ",
        b"[]",
        b'"sess"',
        b"{",
        b'{"session_id": "s1"} x',
        b'{"session_id": "s1", "tool_input": [}',
    ],
    ids=["text", "empty", "blank", "array", "string", "truncated", "trailing", "broken-nested"],
)
def test_stdin_that_is_not_a_hook_object_blocks(config: Path, stdin: bytes) -> None:
    assert_blocked(run_hook(stdin, config=config), "fail closed")


def test_invalid_utf8_blocks(config: Path) -> None:
    assert_blocked(run_hook(b'{"session_id": "\xff\xfe"}', config=config), "UTF-8")


def test_bad_config_blocks_instead_of_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[monitor\n")
    assert_blocked(run_hook(hook_input(ACTIVE), config=config), "fail closed")


# -- the process as Claude Code starts it ---------------------------------------------------
def hook_process(
    stdin: bytes, *args: str, config: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWATCH_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "agentwatch.cli.main", "--config", str(config), "hook", "claude-code", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        env=environ,
    )


def test_huge_stdin_is_capped_and_blocks(config: Path) -> None:
    huge = b'{"session_id": "%s", "tool_input": "%s"}' % (ACTIVE.encode(), b"A" * (9 << 20))
    done = hook_process(huge, config=config)
    assert done.returncode == 2 and b"larger than" in done.stderr and len(done.stderr.splitlines()) == 1


def test_an_unexpected_exception_still_blocks(config: Path, tmp_path: Path) -> None:
    # A module that raises on import stands in for any bug: the top-level guard turns it into exit 2.
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\nclass Boom:\n    def find_spec(self, name, *a):\n"
        "        if name == 'agentwatch.respond.session_guard':\n            raise ZeroDivisionError('boom')\n"
        "sys.meta_path.insert(0, Boom())\n"
    )
    done = hook_process(hook_input(ACTIVE), config=config, env={"PYTHONPATH": str(tmp_path)})
    assert (
        done.returncode == 2
        and done.stderr.decode().startswith("agentwatch: ")
        and b"ZeroDivisionError" in done.stderr
        and len(done.stderr.splitlines()) == 1
    )
    done = hook_process(hook_input(ACTIVE), "--fail", "open", config=config, env={"PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0 and b"fail open" in done.stderr


# -- through a server ----------------------------------------------------------------------
class Canned(BaseHTTPRequestHandler):
    """Answers every GET with the class's canned (status, body), after ``delay_s``."""

    status = 200
    body = b"null"
    delay_s = 0.0
    seen_auth: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).seen_auth.append(self.headers.get("Authorization"))
        time.sleep(self.delay_s)
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def canned() -> Iterator[tuple[str, type[Canned]]]:
    handler = type("Handler", (Canned,), {"seen_auth": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(
    "status, body",
    [
        (200, b"null"),
        (200, b"[]"),
        (200, b'"terminated"'),
        (200, b"{not json"),
        (200, b""),
        (200, b'{"status": "paused", "session_id": "sess-live"}'),  # not an explicit allow
        (200, b'{"status": "active", "session_id": "someone-else"}'),  # an answer about another session
        (200, b'{"status": "active"}'),
        (500, b'{"status": "active", "session_id": "sess-live"}'),
        (401, b'{"error": "unauthorized"}'),
        (302, b""),
    ],
    ids=[
        "null",
        "list",
        "string",
        "malformed",
        "empty",
        "unknown-status",
        "other-session",
        "no-session-id",
        "500",
        "401",
        "redirect",
    ],
)
def test_server_answers_that_are_not_an_allow_block(canned: tuple[str, type[Canned]], status: int, body: bytes) -> None:
    url, handler = canned
    handler.status, handler.body = status, body
    assert_blocked(run_hook(hook_input(ACTIVE), "--server", url), "cannot verify", "fail closed")
    code, stderr = run_hook(hook_input(ACTIVE), "--server", url, "--fail", "open")
    assert code == 0 and "allowing (fail open)" in stderr


def test_server_allow_and_terminated(canned: tuple[str, type[Canned]]) -> None:
    url, handler = canned
    handler.body = b'{"status": "active", "session_id": "sess-live", "reason": "", "incident_id": null}'
    assert run_hook(hook_input(ACTIVE), "--server", url, env={"AGENTWATCH_API_TOKEN": TOKEN}) == (0, "")
    assert handler.seen_auth == [f"Bearer {TOKEN}"]  # the hook authenticates to serve
    handler.body = json.dumps(
        {
            "status": "terminated",
            "session_id": ACTIVE,
            "incident_id": "inc-9",
            "reason": "agentwatch: session terminated by incident inc-9\n\x1b[31mfake",
        }
    ).encode()
    for fail in ("closed", "open"):
        code, stderr = run_hook(hook_input(ACTIVE), "--server", url, "--fail", fail)
        assert_blocked((code, stderr), "inc-9")
        assert "\x1b" not in stderr


def test_server_timeout_blocks_within_the_deadline(canned: tuple[str, type[Canned]]) -> None:
    url, handler = canned
    handler.delay_s, handler.body = 3.0, b'{"status": "active", "session_id": "sess-live"}'
    started = time.monotonic()
    assert_blocked(run_hook(hook_input(ACTIVE), "--server", url, "--timeout", "0.5"), "cannot verify")
    assert time.monotonic() - started < 2.5
    code, _ = run_hook(hook_input(ACTIVE), "--server", url, "--timeout", "0.5", "--fail", "open")
    assert code == 0


def test_unreachable_server_fails_as_configured() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert_blocked(run_hook(hook_input(ACTIVE), "--server", url, "--timeout", "1"), "cannot verify")
    code, stderr = run_hook(hook_input(ACTIVE), "--server", url, "--timeout", "1", "--fail", "open")
    assert code == 0 and "allowing (fail open)" in stderr
