"""Errors without tracebacks (issue 15): a missing broker, a store that will not open, a port
in use, a config naming something that does not exist — one line with a hint and a non-zero
exit; `-v` adds the traceback. A replay that scores nothing fails; `incidents list` names its store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agentwatch.cli.main import main
from agentwatch.lab.broker import BrokerError, EmbeddedBroker

AGENTWATCH = [sys.executable, "-m", "agentwatch.cli"]
EVENT = (
    b'{"event_id":"a","ts":1767225600000,"session_id":"s","agent_id":"a","kind":"tool_call","tool":"Bash",'
    b'"target":"ls"}\n'
)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGENTWATCH_DATA_DIR", str(tmp_path / "data"))
    for name in ("AGENTWATCH_CONFIG", "AGENTWATCH_STORE_URL", "AGENTWATCH_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def refused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def one_error_line(result: Result) -> str:
    """The result failed with exactly one `Error:` line and no traceback; that line."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_no_broker_is_one_line_with_a_hint_not_a_traceback(env: Path) -> None:
    proc = subprocess.run(
        [*AGENTWATCH, "run", "--bootstrap-servers", f"127.0.0.1:{refused_port()}", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "cannot reach Kafka" in lines[0] and "hint:" in lines[0] and "AGENTWATCH_BOOTSTRAP_SERVERS" in lines[0]


def test_a_postgres_url_suggests_the_psycopg_scheme_without_the_password(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTWATCH_STORE_URL", "postgres://agentwatch:s3cret@127.0.0.1/test")
    line = one_error_line(cli("incidents", "list"))
    assert "hint: write postgresql+psycopg://agentwatch:***@127.0.0.1/test" in line
    assert "s3cret" not in line


def test_an_unreachable_postgres_is_one_line_and_v_shows_the_traceback(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTWATCH_STORE_URL", f"postgresql+psycopg://agentwatch@127.0.0.1:{refused_port()}/test")
    line = one_error_line(cli("incidents", "list"))
    assert "cannot open the store" in line and "hint:" in line
    verbose = cli("-v", "incidents", "list")
    assert verbose.exit_code == 1 and "Traceback" in verbose.output and "OperationalError" in verbose.output


def test_a_metrics_port_in_use_is_one_line(env: Path, busy_port: int) -> None:
    line = one_error_line(cli("run", "--bootstrap-servers", "127.0.0.1:1", "--metrics-port", str(busy_port)))
    assert f"cannot serve metrics on 127.0.0.1:{busy_port}" in line and "hint:" in line


def test_a_serve_port_in_use_is_one_line(env: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTWATCH_API_TOKEN", raising=False)
    monkeypatch.delenv("AGENTWATCH_API_TOKEN_FILE", raising=False)
    result = cli("serve", "--port", str(busy_port))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"cannot listen on 127.0.0.1:{busy_port}" in result.output


def test_the_lab_broker_refuses_a_port_in_use_instead_of_saying_listening(env: Path, busy_port: int) -> None:
    with pytest.raises(BrokerError, match="cannot listen on .*hint:"):
        EmbeddedBroker(port=busy_port, startup_timeout_s=2).start()
    result = cli("broker", "--port", str(busy_port))
    line = one_error_line(result)
    assert "listening" not in result.output and "cannot listen on" in line


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('[detectors.no_such_detector]\nmode = "alert"\n', "unknown detectors ['no_such_detector']"),
        ('[monitor.inputs]\n"agent.audit" = "no-such-format"\n', "is not a known input format; known: claude-hook"),
        ('[monitor]\nplaybooks_dir = "/no/such/playbooks"\n', "playbooks_dir '/no/such/playbooks' is not a directory"),
    ],
    ids=["unknown-detector", "unknown-format", "missing-playbooks-dir"],
)
def test_replay_refuses_what_run_refuses(env: Path, config: str, expected: str) -> None:
    (env / "agentwatch.toml").write_text(config)
    (env / "events.jsonl").write_bytes(EVENT)
    args = ("--config", str(env / "agentwatch.toml"))
    line = one_error_line(cli(*args, "replay", str(env / "events.jsonl"), "--alerts", str(env / "alerts.jsonl")))
    assert expected in line and "hint: fix the configuration" in line
    run = one_error_line(cli(*args, "run", "--bootstrap-servers", f"127.0.0.1:{refused_port()}"))
    assert expected in run  # refused before Kafka is asked anything


def test_a_replay_whose_every_line_dead_letters_warns_and_fails(env: Path) -> None:
    (env / "events.jsonl").write_bytes(b"not json\n{}\n")
    result = cli("replay", str(env / "events.jsonl"), "--alerts", str(env / "alerts.jsonl"))
    assert result.exit_code == 1 and "every line (2) was dead-lettered" in result.output and "--format" in result.output
    (env / "events.jsonl").write_bytes(EVENT + b"not json\n")
    assert cli("replay", str(env / "events.jsonl"), "--alerts", str(env / "alerts.jsonl")).exit_code == 0


def test_incidents_list_says_which_store_it_read(env: Path) -> None:
    result = cli("incidents", "list")
    assert result.exit_code == 0
    store = f"sqlite:///{env / 'data' / 'agentwatch.db'}"
    assert f"store: {store}" in result.output.replace("\n", "")
    assert "no incidents in the store" in result.output
