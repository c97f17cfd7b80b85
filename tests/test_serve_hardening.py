"""``agentwatch serve`` under hostile clients: stalled connections cost no thread and are freed
after the request timeout, a connection cap answers 503 beyond it, header and body sizes are
capped, and everything but ``/healthz`` and the signed Slack endpoint needs the API token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentwatch.lab.broker import free_port
from agentwatch.observe.server import AgentwatchServer, ServeLimits, approval_service, make_server
from agentwatch.store import audit_log, open_store, session_status

TOKEN = "serve-test-token-4f9c2a7d1e"
FAST = ServeLimits(request_timeout_s=1.0, keep_alive_s=1, max_connections=400, worker_threads=4)


def start(engine: object, **kwargs: object) -> AgentwatchServer:
    server = make_server("127.0.0.1", 0, engine, **kwargs)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.uvicorn.started and time.monotonic() < deadline:
        time.sleep(0.01)
    return server


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.begin() as conn:
        conn.execute(
            session_status.insert().values(
                session_id="sess-1",
                agent_id="a",
                status="terminated",
                reason="agentwatch: terminated by inc-1",
                incident_id="inc-1",
                command_id="c",
                updated_ms=1,
            )
        )
    return engine


@pytest.fixture
def served(engine) -> Iterator[tuple[str, AgentwatchServer]]:  # type: ignore[no-untyped-def]
    server = start(engine, token=TOKEN, limits=FAST)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


def get(url: str, token: str | None = None, timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def stalled(port: int, count: int, first_bytes: bytes = b"") -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if first_bytes:
            sock.sendall(first_bytes)
        socks.append(sock)
    return socks


def closed_by_server(sock: socket.socket, timeout_s: float) -> bool:
    """Does the server close ``sock`` (EOF or reset) within ``timeout_s``?"""
    sock.settimeout(timeout_s)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_300_stalled_connections_hold_no_threads_and_are_freed(served: tuple[str, AgentwatchServer]) -> None:
    url, server = served
    port = server.server_address[1]
    assert get(f"{url}/healthz")[0] == 200
    threads_before = threading.active_count()
    socks = (
        stalled(port, 100)  # nothing at all
        + stalled(port, 100, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        + stalled(port, 100, b"POST /slack/interactions HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nab")
    )
    try:
        accepting = time.monotonic() + 5  # a loaded machine accepts 300 sockets in more than a fixed 0.3 s
        while len(server.uvicorn.server_state.connections) < 300 and time.monotonic() < accepting:
            time.sleep(0.05)
        assert len(server.uvicorn.server_state.connections) == 300
        assert threading.active_count() - threads_before <= FAST.worker_threads + 2
        started = time.monotonic()
        assert get(f"{url}/healthz")[0] == 200  # still answering while 300 clients stall
        assert time.monotonic() - started < 1.0
        assert all(closed_by_server(s, 5.0) for s in socks)  # freed by the request timeout
        assert time.monotonic() - started < 4.0
        deadline = time.monotonic() + 3
        while server.uvicorn.server_state.connections and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not server.uvicorn.server_state.connections
        assert threading.active_count() - threads_before <= FAST.worker_threads + 2
    finally:
        for sock in socks:
            sock.close()


def test_connections_beyond_the_cap_get_503_and_room_returns(engine) -> None:  # type: ignore[no-untyped-def]
    server = start(engine, token=TOKEN, limits=ServeLimits(request_timeout_s=1.0, keep_alive_s=1, max_connections=20))
    url, port = f"http://127.0.0.1:{server.server_address[1]}", server.server_address[1]
    try:
        socks = stalled(port, 20)
        time.sleep(0.2)
        status, body = get(f"{url}/healthz")
        assert status == 503 and b"too many connections" in body
        for sock in socks:
            assert closed_by_server(sock, 5.0)
        time.sleep(0.2)
        assert get(f"{url}/healthz")[0] == 200
    finally:
        server.shutdown()
        server.server_close()


def test_keep_alive_connections_that_trickle_a_second_request_are_cut(served: tuple[str, AgentwatchServer]) -> None:
    _, server = served
    sock = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    for _ in range(5):  # a byte every 0.4 s keeps the keep-alive timer away but not the request deadline
        try:
            sock.sendall(b"G")
        except OSError:
            break
        time.sleep(0.4)
    assert closed_by_server(sock, 5.0) and time.monotonic() - started < 3.5
    sock.close()


def test_header_size_is_capped(served: tuple[str, AgentwatchServer]) -> None:
    url, _ = served
    request = urllib.request.Request(f"{url}/healthz", headers={"X-Big": "a" * 20_000})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code in (400, 431)


def test_api_routes_need_the_token_and_health_does_not(served: tuple[str, AgentwatchServer]) -> None:
    url, _ = served
    assert get(f"{url}/healthz") == (200, b'{"status":"ok"}')
    for path in ("/v1/sessions/sess-1", "/metrics"):
        for token in (None, "wrong-token-wrong-token", TOKEN + "x", TOKEN[:-1]):
            status, body = get(url + path, token)
            assert status == 401 and json.loads(body)["error"] == "unauthorized", (path, token)
        assert get(url + path, TOKEN)[0] == 200
    status, body = get(f"{url}/v1/sessions/sess-1", TOKEN)
    assert json.loads(body)["status"] == "terminated"
    basic = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Basic {TOKEN}"})
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(basic, timeout=5)


def test_without_a_token_only_health_and_slack_are_served(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"AGENTWATCH_SLACK_SIGNING_SECRET": "s3cret-s3cret-s3cret"}
    server = start(engine, approvals=approval_service(engine, tmp_path, "agent.control", environ=env), limits=FAST)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert get(f"{url}/healthz")[0] == 200
        for path in ("/v1/sessions/sess-1", "/metrics"):
            status, body = get(url + path, "anything-anything-anything")
            assert status == 401 and "AGENTWATCH_API_TOKEN" in json.loads(body)["hint"]
        request = urllib.request.Request(f"{url}/slack/interactions", data=b"payload=%7B%7D", method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:  # reached the handler: its signature check refuses
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 401 and json.loads(caught.value.read()) == {"error": "bad_signature"}
    finally:
        server.shutdown()
        server.server_close()


def test_public_metrics_is_an_explicit_opt_out(engine) -> None:  # type: ignore[no-untyped-def]
    server = start(engine, token=TOKEN, public_metrics=True, limits=FAST)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        status, body = get(f"{url}/metrics")
        assert status == 200 and b"agentwatch_" in body
        assert get(f"{url}/v1/sessions/sess-1")[0] == 401
    finally:
        server.shutdown()
        server.server_close()


def test_a_slow_slack_body_is_cut_and_audited(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"AGENTWATCH_SLACK_SIGNING_SECRET": "s3cret-s3cret-s3cret"}
    server = start(engine, approvals=approval_service(engine, tmp_path, "agent.control", environ=env), limits=FAST)
    try:
        [sock] = stalled(
            server.server_address[1],
            1,
            b"POST /slack/interactions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npayload=",
        )
        assert closed_by_server(sock, 5.0)
        sock.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                rows = conn.execute(audit_log.select().where(audit_log.c.action == "slack.request_refused")).all()
            if rows:
                break
            time.sleep(0.05)
        assert [(r.actor, r.data["reason"]) for r in rows] == [("slack:unverified", "timeout")]
    finally:
        server.shutdown()
        server.server_close()


# -- the command as typed -------------------------------------------------------------------
def serve_process(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    config = tmp_path / "c.toml"
    config.write_text(f'[monitor]\ndata_dir = "{tmp_path / "data"}"\n')
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWATCH_")} | env
    return subprocess.Popen(
        [sys.executable, "-m", "agentwatch.cli.main", "--config", str(config), "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
    )


def test_serve_reads_the_token_file_and_the_hook_sends_the_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    proc = serve_process(tmp_path, {"AGENTWATCH_API_TOKEN_FILE": str(token_file)}, "--port", str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if get(f"{url}/healthz", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        assert get(f"{url}/v1/sessions/s", TOKEN)[0] == 200 and get(f"{url}/v1/sessions/s")[0] == 401
        hook = [sys.executable, "-m", "agentwatch.cli.main", "hook", "claude-code", "--server", url]
        stdin = b'{"session_id": "s", "tool_name": "Bash"}'
        base = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWATCH_")}
        done = subprocess.run(hook, input=stdin, capture_output=True, timeout=60, env=base)
        assert done.returncode == 2 and b"HTTP 401" in done.stderr  # no token: refused, so blocked
        done = subprocess.run(
            hook, input=stdin, capture_output=True, timeout=60, env=base | {"AGENTWATCH_API_TOKEN": TOKEN}
        )
        assert (done.returncode, done.stderr) == (0, b"")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_refuses_an_unusable_token(tmp_path: Path) -> None:
    proc = serve_process(tmp_path, {"AGENTWATCH_API_TOKEN": "short"}, "--port", str(free_port()))
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0 and b"openssl rand -hex 32" in stderr
