"""``POST /v1/hooks/claude-code`` driven the way Claude Code drives it: recorded hook inputs of each event
against a real ``serve`` on loopback with a real store and the real broker; and the README's documented
``PreToolUse`` command run with a recorded payload on stdin against each way the server can fail."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agentwatch.config import Config, HookSettings
from agentwatch.errors import ConfigError
from agentwatch.formats import get_decoder
from agentwatch.lab.broker import free_port
from agentwatch.lab.topic_io import read_records
from agentwatch.observe import metrics
from agentwatch.observe.hook_gate import HookGate, Publisher, hook_identity
from agentwatch.observe.hook_tokens import load_hook_tokens
from agentwatch.observe.server import HOOKS_PATH, AgentwatchServer, ServeLimits, make_server
from agentwatch.store import approvals, incidents, open_store, session_status

FIXTURES = Path(__file__).parent / "fixtures" / "claude_code_hooks"
README = Path(__file__).parent.parent / "README.md"
TOKEN = "hook-test-token-8b1d4f0c2e9a"
FAST = ServeLimits(request_timeout_s=2.0, keep_alive_s=1, max_connections=64, worker_threads=4)
HEADERS = {"X-Agentwatch-Installation": "dev-laptop-17", "X-Agentwatch-Principal": "dana"}


def fixture(name: str, **changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    obj.update(changes)
    return obj


def post(url: str, body: bytes, token: str | None = TOKEN, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url + HOOKS_PATH, data=body, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def decision(answer: Any) -> tuple[str, str]:
    out = answer["hookSpecificOutput"]
    assert out["hookEventName"] == "PreToolUse"
    return out["permissionDecision"], out["permissionDecisionReason"]


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    return open_store(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def hook_config(isolated_config: Config) -> Config:
    topic = "agent.audit.claude-hook." + isolated_config.monitor.group_id.removeprefix("test-group-")
    isolated_config.hooks = HookSettings(topic=topic, containment_cache_s=0.2)
    return isolated_config


@pytest.fixture
def served(engine, hook_config: Config, broker) -> Iterator[tuple[str, AgentwatchServer]]:  # type: ignore[no-untyped-def]
    gate = HookGate(hook_config, Publisher(broker.bootstrap_servers, hook_config.hooks.topic))
    server = make_server("127.0.0.1", 0, engine, token=TOKEN, limits=FAST, hooks=gate)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.uvicorn.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


def _count(metric: Any, **labels: str) -> float:
    return metric.labels(**labels)._value.get()  # type: ignore[no-any-return]


def test_a_session_as_claude_code_sends_it(served: tuple[str, AgentwatchServer], hook_config: Config, broker) -> None:  # type: ignore[no-untyped-def]
    url, server = served
    denied_before = _count(metrics.HOOK_DECISIONS, decision="deny", rule="secret_access")
    sequence = [
        ("session_start", None),
        ("user_prompt_submit", None),
        ("pre_tool_use_allow", "allow"),
        ("post_tool_use", None),
        ("pre_tool_use_deny_ssh_key", "deny"),
        ("pre_tool_use_deny_curl_sh", "deny"),
        ("pre_tool_use_ask_upload", "ask"),
        ("session_end", None),
    ]
    for name, expected in sequence:
        status, answer = post(url, json.dumps(fixture(name)).encode(), headers=HEADERS)
        assert status == 200, (name, answer)
        if expected is None:
            assert answer == {}, name
            continue
        got, reason = decision(answer)
        assert got == expected, (name, reason)
        assert reason.startswith("agentwatch: ")
    _, answer = post(url, json.dumps(fixture("pre_tool_use_deny_ssh_key", session_id="s-2")).encode(), headers=HEADERS)
    got, reason = decision(answer)
    assert got == "deny" and "secret_access" in reason and "critical" in reason
    assert "id_rsa" not in reason and ".ssh" not in reason  # our words, not the agent's
    _, answer = post(url, json.dumps(fixture("pre_tool_use_ask_upload", session_id="s-3")).encode(), headers=HEADERS)
    got, reason = decision(answer)
    assert got == "ask" and "medium" in reason and "203.0.113.7" not in reason
    assert _count(metrics.HOOK_DECISIONS, decision="deny", rule="secret_access") == denied_before + 2

    # every event reached the broker, keyed by session, with serve's identity, in the claude-hook format
    assert server.hooks is not None and server.hooks.publisher.flush()
    records = read_records(broker.bootstrap_servers, hook_config.hooks.topic)
    assert len(records) == len(sequence) + 2
    decode = get_decoder("claude-hook")
    kinds = []
    for record in records:
        events = decode(record.value, record.timestamp).events
        assert len(events) == 1
        ev = events[0]
        assert record.key == ev.session_id.encode()
        assert (ev.agent_id, ev.principal) == ("claude-code/dev-laptop-17", "dana")
        kinds.append((ev.session_id, ev.kind))
    main = fixture("session_start")["session_id"]
    assert [k for s, k in kinds if s == main] == [
        "session_start",
        "prompt",
        "tool_call",
        "tool_result",
        "tool_call",
        "tool_call",
        "tool_call",
        "session_end",
    ]


def test_terminated_session_and_quarantined_agent_are_denied(served: tuple[str, AgentwatchServer], engine) -> None:  # type: ignore[no-untyped-def]
    url, _ = served
    with engine.begin() as conn:
        conn.execute(
            session_status.insert().values(
                session_id="sess-dead",
                agent_id="claude-code/dev-laptop-17",
                status="terminated",
                reason="agentwatch: session terminated by incident inc-9 (critical; secret_access)",
                incident_id="inc-9",
                command_id="cmd-9",
                updated_ms=1,
            )
        )
    # a normal call, refused because of what happened before
    status, answer = post(
        url, json.dumps(fixture("pre_tool_use_allow", session_id="sess-dead")).encode(), headers=HEADERS
    )
    got, reason = decision(answer)
    assert status == 200 and got == "deny" and "inc-9" in reason

    # quarantine of another laptop's agent does not touch this one; this agent's does, in every session
    _quarantine(engine, "claude-code/other-laptop", "inc-10")
    _, answer = post(url, json.dumps(fixture("pre_tool_use_allow", session_id="sess-q")).encode(), headers=HEADERS)
    assert decision(answer)[0] == "allow"
    _quarantine(engine, "claude-code/dev-laptop-17", "inc-11")
    time.sleep(0.3)  # the containment cache (0.2 s here)
    _, answer = post(url, json.dumps(fixture("pre_tool_use_allow", session_id="sess-q2")).encode(), headers=HEADERS)
    got, reason = decision(answer)
    assert got == "deny" and "quarantined" in reason and "inc-11" in reason


def test_disabled_tool_and_blocked_egress(served: tuple[str, AgentwatchServer], engine) -> None:  # type: ignore[no-untyped-def]
    url, _ = served
    agent = "claude-code/dev-laptop-17"
    _approval(engine, "inc-20", agent, "disable_tool", {"agent": agent, "tools": ["WebFetch"]})
    _approval(engine, "inc-21", agent, "block_egress", {"agent": agent, "destinations": ["example-tools.sh"]})
    fetch = fixture("pre_tool_use_allow", tool_name="WebFetch", tool_input={"url": "https://docs.example.com/x"})
    _, answer = post(url, json.dumps(fetch).encode(), headers=HEADERS)
    got, reason = decision(answer)
    assert got == "deny" and "WebFetch is disabled" in reason
    egress = fixture(
        "pre_tool_use_allow", tool_input={"command": "curl -s https://cdn.example-tools.sh/v.json -o v.json"}
    )
    _, answer = post(url, json.dumps(egress).encode(), headers=HEADERS)
    got, reason = decision(answer)
    assert got == "deny" and "blocked destination" in reason
    # resolving the incident lifts its containment
    with engine.begin() as conn:
        conn.execute(incidents.update().where(incidents.c.incident_id == "inc-21").values(status="resolved"))
    time.sleep(0.3)
    _, answer = post(url, json.dumps(egress).encode(), headers=HEADERS)
    assert decision(answer)[0] == "allow"


def test_unauthenticated_and_malformed_requests_get_no_decision(served: tuple[str, AgentwatchServer]) -> None:
    url, _ = served
    body = json.dumps(fixture("pre_tool_use_allow")).encode()
    for token in (None, "wrong-token-0123456789"):
        status, answer = post(url, body, token=token)
        assert status == 401 and "hookSpecificOutput" not in answer
    status, _ = post(url, b"not json")
    assert status == 400
    status, _ = post(url, json.dumps({"hook_event_name": "PreToolUse"}).encode())
    assert status == 400
    # over 1 MiB: refused on its declared length, before the body is read
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST {HOOKS_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {(1 << 20) + 1}\r\n\r\n".encode()
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")


def test_identity_is_bounded() -> None:
    assert hook_identity({"x-agentwatch-installation": "mbp-7"}) == ("claude-code/mbp-7", None)
    agent, principal = hook_identity({"x-agentwatch-installation": "Dana's MacBook Pro", "x-agentwatch-principal": "p"})
    assert re.fullmatch(r"claude-code/h-[0-9a-f]{16}", agent) and principal == "p"
    assert re.fullmatch(r"claude-code/h-[0-9a-f]{16}", hook_identity({"x-agentwatch-installation": "x" * 80})[0])
    assert hook_identity({"x-agentwatch-installation": "mbp\u202e-7"})[0] == "claude-code/unknown"
    assert hook_identity({})[0] == "claude-code/unknown"
    assert hook_identity({"x-agentwatch-principal": "x\x00y"})[1] is None


def test_agent_labels_are_capped(hook_config: Config) -> None:
    hook_config.hooks.max_agent_labels = 3
    gate = HookGate(hook_config, Publisher(None, "unused"))
    labels = {gate.agent_labels(f"claude-code/host-{i}") for i in range(50)}
    assert len(labels) == 4 and "other" in labels
    assert all(label == "other" or re.fullmatch(r"a-[0-9a-f]{10}", label) for label in labels)


def _approval(engine: Any, incident_id: str, agent: str, action: str, subject: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(
            incidents.insert().values(
                incident_id=incident_id,
                group_key=incident_id,
                session_id="sess-x",
                agent_id=agent,
                principal=None,
                severity="critical",
                status="contained",
                title="t",
                opened_ms=1,
                updated_ms=1,
                detectors=[],
                categories=[],
                mode="enforce",
            )
        )
        conn.execute(
            approvals.insert().values(
                approval_id="ap-" + incident_id,
                incident_id=incident_id,
                step_key=f"{incident_id}:contain:approve",
                action=action,
                action_params={},
                subject=subject,
                approvers=[],
                escalate_to=[],
                escalation_level=0,
                quorum=1,
                timeout_ms=1,
                on_timeout="expire",
                reading_time_ms=0,
                status="executed",
                requested_ms=1,
                expires_ms=2,
                touched_ms=1,
                attempts=1,
                result={},
                slack_rev=0,
                slack_synced_rev=0,
                slack_announced="",
                slack_attempts=0,
            )
        )


def _quarantine(engine: Any, agent: str, incident_id: str) -> None:
    _approval(engine, incident_id, agent, "quarantine_agent", {"agent": agent, "all_sessions": True})


# -- the documented fail-closed command ---------------------------------------------------------
def documented_settings() -> dict[str, Any]:
    text = README.read_text()
    section = text[text.index("### Verdicts before the tool runs (hooks)") :]
    block = re.search(r"\*\*The settings\*\*.*?```json\n(.*?)\n```", section, re.S)
    assert block is not None
    return msgspec.json.decode(block.group(1))  # type: ignore[no-any-return]


def documented_command(event: str = "PreToolUse") -> str:
    (hook,) = documented_settings()["hooks"][event][0]["hooks"]
    assert hook["type"] == "command"
    return hook["command"]  # type: ignore[no-any-return]


def run_hook(
    command: str, url: str, token: str = TOKEN, path: str | None = None, shell: str = "/bin/sh"
) -> subprocess.CompletedProcess[bytes]:
    """As Claude Code runs a command hook: through the shell, the hook input on stdin."""
    env = {"PATH": path if path is not None else os.environ["PATH"], "HOME": "/tmp", "USER": "dana"}
    env |= {"AGENTWATCH_URL": url, "AGENTWATCH_HOOK_TOKEN": token}
    return subprocess.run(  # noqa: S603 - the documented command, run as Claude Code runs it
        [shell, "-c", command],
        input=json.dumps(fixture("pre_tool_use_deny_ssh_key")).encode(),
        capture_output=True,
        env=env,
        timeout=30,
    )


@pytest.mark.skipif(shutil.which("curl") is None, reason="the documented hook needs curl")
@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_documented_command_relays_verdicts(served: tuple[str, AgentwatchServer], shell: str) -> None:
    url, _ = served
    done = run_hook(documented_command(), url, shell=shell)
    assert done.returncode == 0, done.stderr
    got, reason = decision(json.loads(done.stdout))
    assert got == "deny" and "secret_access" in reason
    telemetry = run_hook(documented_command("PostToolUse"), url)
    assert telemetry.returncode == 0 and telemetry.stdout == b""


class _Answer(BaseHTTPRequestHandler):
    status, body, delay = 500, b'{"error": "boom"}', 0.0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        time.sleep(self.delay)
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def _fake(status: int, body: bytes, delay: float = 0.0) -> ThreadingHTTPServer:
    handler = type("H", (_Answer,), {"status": status, "body": body, "delay": delay})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.skipif(shutil.which("curl") is None, reason="the documented hook needs curl")
@pytest.mark.parametrize(
    ("case", "status", "body", "delay"),
    [
        ("server error", 500, b'{"error": "boom"}', 0.0),
        ("2xx that is not a verdict", 200, b"<html>proxy login</html>", 0.0),
        ("2xx with an empty object", 200, b"{}", 0.0),
        ("timeout", 200, b"{}", 6.0),
    ],
)
def test_documented_command_blocks_when_the_server_fails(case: str, status: int, body: bytes, delay: float) -> None:
    server = _fake(status, body, delay)
    try:
        done = run_hook(documented_command(), f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    assert done.returncode == 2, case
    assert done.stdout == b""
    assert done.stderr.decode().startswith("agentwatch: ") and "blocking (fail closed)" in done.stderr.decode()


@pytest.mark.skipif(shutil.which("curl") is None, reason="the documented hook needs curl")
def test_documented_command_blocks_on_wrong_token_unreachable_and_no_curl(
    served: tuple[str, AgentwatchServer], tmp_path: Path
) -> None:
    url, _ = served
    assert run_hook(documented_command(), url, token="wrong-token-0123456789").returncode == 2
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert run_hook(documented_command(), f"http://127.0.0.1:{closed}").returncode == 2
    assert run_hook(documented_command(), f"http://127.0.0.1:{free_port()}").returncode == 2
    empty = tmp_path / "bin"
    empty.mkdir()
    for tool in ("uname",):  # what the command needs besides curl
        found = shutil.which(tool)
        assert found is not None
        (empty / tool).symlink_to(found)
    done = run_hook(documented_command(), url, path=str(empty))
    assert done.returncode == 2 and b"curl not found" in done.stderr
    # the telemetry hooks never block, even then
    assert run_hook(documented_command("SessionStart"), url, path=str(empty)).returncode == 0


def test_installation_token_fixes_the_identity(engine, hook_config: Config, tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    own = "laptop-token-5e0c9d2b7a41f3"
    tokens_file = tmp_path / "hook-tokens.toml"
    digest = hashlib.sha256(own.encode()).hexdigest()
    tokens_file.write_text(
        f'[[installation]]\nid = "dana-mbp"\nprincipal = "dana@example.com"\ntoken_sha256 = "{digest}"\n'
    )
    tokens = load_hook_tokens({"AGENTWATCH_HOOK_TOKENS_FILE": str(tokens_file)})
    gate = HookGate(hook_config, Publisher(broker.bootstrap_servers, hook_config.hooks.topic), tokens=tokens)
    server = make_server("127.0.0.1", 0, engine, token=None, limits=FAST, hooks=gate)  # no API token at all
    threading.Thread(target=server.serve_forever, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.uvicorn.started and time.monotonic() < deadline:
        time.sleep(0.01)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        spoofing = {"X-Agentwatch-Installation": "someone-else", "X-Agentwatch-Principal": "ceo@example.com"}
        body = json.dumps(fixture("pre_tool_use_allow", session_id="tok-1")).encode()
        status, answer = post(url, body, token=own, headers=spoofing)
        assert status == 200 and decision(answer)[0] == "allow"
        assert post(url, body, token="not-a-known-token-123456")[0] == 401
        assert gate.publisher.flush()
        (record,) = [r for r in read_records(broker.bootstrap_servers, hook_config.hooks.topic) if r.key == b"tok-1"]
        ev = get_decoder("claude-hook")(record.value, record.timestamp).events[0]
        assert (ev.agent_id, ev.principal) == ("claude-code/dana-mbp", "dana@example.com")
    finally:
        server.shutdown()
        server.server_close()


def test_hook_tokens_file_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "t.toml"
    bad.write_text('[[installation]]\nid = "x"\ntoken_sha256 = "abc"\n')
    with pytest.raises(ConfigError, match="64 hex digits"):
        load_hook_tokens({"AGENTWATCH_HOOK_TOKENS_FILE": str(bad)})
    with pytest.raises(ConfigError, match="cannot read"):
        load_hook_tokens({"AGENTWATCH_HOOK_TOKENS_FILE": str(tmp_path / "missing.toml")})


def test_serve_says_when_hook_events_are_not_published(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "AGENTWATCH_API_TOKEN": TOKEN, "AGENTWATCH_DATA_DIR": str(tmp_path / "data")}
    env.pop("AGENTWATCH_BOOTSTRAP_SERVERS", None)
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "agentwatch.cli", "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE
    )
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline().decode() for _ in range(2)]
    finally:
        proc.terminate()
        proc.wait(15)
    assert any("NOT published" in line and "agent.audit.claude-hook" in line for line in lines), lines


def test_the_monitor_reads_what_serve_publishes_and_its_termination_reaches_the_hook(
    broker, isolated_config: Config
) -> None:  # type: ignore[no-untyped-def]
    """The whole loop: serve publishes the hook events, `run` decodes them (claude-hook), alerts and
    terminates the session in the store, and serve denies that session's next (harmless) call."""
    from agentwatch.ingest.monitor_process import start_monitor
    from agentwatch.ingest.topics import all_topics, ensure_topics

    config = isolated_config
    topic = "agent.audit.claude-hook." + config.monitor.group_id.removeprefix("test-group-")
    config.hooks = HookSettings(topic=topic, containment_cache_s=0.2)
    config.monitor.inputs[topic] = "claude-hook"
    ensure_topics(broker.bootstrap_servers, all_topics(config.monitor))
    monitor = start_monitor(broker.bootstrap_servers, config, exit_on_idle_s=4.0)
    thread = threading.Thread(target=monitor.run, daemon=True)
    thread.start()
    while not monitor.stats.assigned and thread.is_alive():
        thread.join(0.05)
    gate = HookGate(config, Publisher(broker.bootstrap_servers, topic))
    server = make_server("127.0.0.1", 0, open_store(config.store_url), token=TOKEN, limits=FAST, hooks=gate)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while not server.uvicorn.started:
        time.sleep(0.01)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for name in ("session_start", "user_prompt_submit", "pre_tool_use_allow", "post_tool_use"):
            assert post(url, json.dumps(fixture(name)).encode(), headers=HEADERS)[0] == 200
        _, answer = post(url, json.dumps(fixture("pre_tool_use_deny_ssh_key")).encode(), headers=HEADERS)
        assert decision(answer)[0] == "deny"  # stopped before it ran; the monitor still sees the attempt
        deadline, reason = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            _, answer = post(url, json.dumps(fixture("pre_tool_use_allow")).encode(), headers=HEADERS)
            got, reason = decision(answer)
            if got == "deny":
                break
            time.sleep(0.3)
        assert "terminated" in reason, reason
    finally:
        server.shutdown()
        server.server_close()
        thread.join(30)
