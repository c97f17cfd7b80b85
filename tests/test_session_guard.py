"""The Claude Code hook and the session-status endpoint: deny terminated sessions, fail as configured."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentwatch.observe.server import make_server
from agentwatch.respond.session_guard import BLOCK, hook_decision
from agentwatch.store import open_store, session_status

TOKEN = "guard-test-token-0123456789"
HOOK_INPUT = json.dumps(
    {
        "session_id": "sess-1",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "ls"},
        "cwd": "/repo",
    }
).encode()


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_store(url).begin() as conn:
        conn.execute(
            session_status.insert().values(
                session_id="sess-1",
                agent_id="coder-1",
                status="terminated",
                reason="agentwatch: session terminated by incident inc-1 (critical; secret_access)",
                incident_id="inc-1",
                command_id="cmd-1",
                updated_ms=1,
            )
        )
    return url


@pytest.fixture
def server(store: str) -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, open_store(store), token=TOKEN)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_terminated_session_is_blocked_with_the_reason(store: str) -> None:
    code, message = hook_decision(HOOK_INPUT, server_url=None, store_url=store, fail="closed")
    assert code == BLOCK and "inc-1" in message


def test_other_sessions_pass(store: str) -> None:
    other = HOOK_INPUT.replace(b"sess-1", b"sess-2")
    assert hook_decision(other, server_url=None, store_url=store, fail="closed") == (0, "")


def test_through_the_server(server: str) -> None:
    assert hook_decision(HOOK_INPUT, server_url=server, store_url="", fail="open", token=TOKEN)[0] == BLOCK
    other = HOOK_INPUT.replace(b"sess-1", b"sess-2")
    assert hook_decision(other, server_url=server, store_url="", fail="closed", token=TOKEN) == (0, "")

    def get(path: str) -> bytes:
        request = urllib.request.Request(server + path, headers={"Authorization": f"Bearer {TOKEN}"})
        return urllib.request.urlopen(request, timeout=5).read()

    assert json.loads(get("/v1/sessions/sess-2"))["status"] == "active"
    assert json.loads(urllib.request.urlopen(f"{server}/healthz", timeout=5).read())["status"] == "ok"
    assert b"agentwatch_" in get("/metrics")
    odd = urllib.parse.quote("../../etc/passwd <x>", safe="")
    assert json.loads(get(f"/v1/sessions/{odd}"))["status"] == "active"


def test_the_server_refuses_the_hook_without_the_token(server: str) -> None:
    other = HOOK_INPUT.replace(b"sess-1", b"sess-2")
    code, message = hook_decision(other, server_url=server, store_url="", fail="closed")
    assert code == BLOCK and "HTTP 401" in message


@pytest.mark.parametrize("fail, expected", [("closed", BLOCK), ("open", 0)])
def test_unreachable_monitor_fails_as_configured(fail: str, expected: int) -> None:
    from agentwatch.lab.broker import free_port

    code, message = hook_decision(
        HOOK_INPUT, server_url=f"http://127.0.0.1:{free_port()}", store_url="", fail=fail, timeout_s=1
    )  # type: ignore[arg-type]
    assert code == expected and "cannot verify" in message


def test_garbage_on_stdin_fails_closed() -> None:
    assert hook_decision(b"not json", server_url=None, store_url="sqlite://", fail="closed")[0] == BLOCK


def test_the_cli_hook_exit_code_and_stderr(store: str, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[monitor]\nstore_url = "{store}"\n')
    done = subprocess.run(
        [sys.executable, "-m", "agentwatch.cli", "--config", str(config), "hook", "claude-code"],
        input=HOOK_INPUT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2 and b"inc-1" in done.stderr
