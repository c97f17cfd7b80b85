"""`run`/`respond --metrics-port` listen on loopback unless `--metrics-host` says otherwise."""

from __future__ import annotations

import socket
from pathlib import Path

import click
import pytest

from agentwatch.cli.main import _metrics_server, main
from agentwatch.lab.broker import free_port


def listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses with a socket listening on ``port`` (Linux's /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, _remote, state = line.split()[1:4]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_metrics_bind_to_loopback_by_default_and_to_the_host_given() -> None:
    default = free_port()
    _metrics_server(default)
    assert listening_addresses(default) == {"127.0.0.1"}
    everywhere = free_port()
    _metrics_server(everywhere, "0.0.0.0")
    assert listening_addresses(everywhere) == {"0.0.0.0"}


def test_run_and_respond_default_to_loopback() -> None:
    for name in ("run", "respond"):
        command = main.get_command(click.Context(main), name)
        assert command is not None
        [option] = [p for p in command.params if p.name == "metrics_host"]
        assert option.default == "127.0.0.1" and option.envvar == "AGENTWATCH_METRICS_HOST"


def test_an_unusable_metrics_address_is_one_line_with_a_hint() -> None:
    with pytest.raises(click.ClickException) as raised:
        _metrics_server(free_port(), "192.0.2.1")  # TEST-NET-1: not an address of this host
    assert "hint:" in raised.value.message and "\n" not in raised.value.message
