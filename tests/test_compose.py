"""compose.yaml is checked without Docker: files exist, commands are real CLI commands,
ports and environment variables agree with the README, Prometheus and Grafana wiring."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from agentwatch.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
README = (ROOT / "README.md").read_text()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def agentwatch_commands() -> list[tuple[str, list[str]]]:
    """(service, argv after `agentwatch`) for every agentwatch invocation in compose.yaml."""
    out = []
    for name, service in SERVICES.items():
        if service.get("image") not in {"agentwatch:latest", "agentwatch-lab:latest"}:
            continue
        command = service["command"]
        if service.get("entrypoint"):  # a shell script: find its agentwatch lines
            for line in "\n".join(command).splitlines():
                line = line.strip()
                if line.startswith("agentwatch "):
                    # shell variables ($$seed in compose, $seed to the shell) stand for a number here
                    out.append((name, shlex.split(re.sub(r"\$\$\w+", "1", line))[1:]))
        else:
            out.append((name, list(command)))
    return out


def test_every_agentwatch_service_command_parses_against_the_real_cli() -> None:
    commands = agentwatch_commands()
    assert {name for name, _ in commands} >= {"monitor", "responder", "server", "simulator"}
    for name, argv in commands:
        command: click.Command = main
        args = list(argv)
        while isinstance(command, click.Group):
            sub = command.get_command(click.Context(command), args[0])
            assert sub is not None, f"{name}: `agentwatch {' '.join(argv)}`: no command {args[0]!r}"
            command, args = sub, args[1:]
        # Required options the service sets through their environment variable count as given.
        env = SERVICES[name].get("environment", {})
        for param in command.params:
            if isinstance(param, click.Option) and param.required and param.envvar in env:
                args += [param.opts[0], str(env[param.envvar])]
        command.make_context(command.name or "", args)  # raises on unknown options or bad values


def test_only_the_demo_profile_uses_the_lab_image() -> None:
    """The runtime image installs without the lab; the simulator builds the ``lab`` target."""
    targets = {name: s["build"]["target"] for name, s in SERVICES.items() if "build" in s}
    assert targets["simulator"] == "lab"
    assert {targets[name] for name in targets if name != "simulator"} == {"runtime"}
    dockerfile = (ROOT / "Dockerfile").read_text()
    last_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert last_stage.startswith("source AS runtime") and "[postgres]" in last_stage and "lab]" not in last_stage


def test_referenced_files_exist() -> None:
    assert (ROOT / "Dockerfile").is_file()
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), source
    for path in (
        "prometheus/prometheus.yml",
        "prometheus/rules.yml",
        "grafana/provisioning/datasources/prometheus.yml",
        "grafana/provisioning/dashboards/agentwatch.yml",
        "grafana/dashboards/soc-overview.json",
    ):
        assert (ROOT / path).is_file(), path


def test_prometheus_scrapes_the_ports_the_services_listen_on() -> None:
    scrape = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
    [workers] = [sd for job in scrape["scrape_configs"] for sd in job.get("dns_sd_configs", [])]
    workers_cmd = SERVICES["workers"]["command"]
    assert workers["names"] == ["workers"]
    assert str(workers["port"]) == workers_cmd[workers_cmd.index("--metrics-port") + 1]
    monitor_port = SERVICES["monitor"]["environment"]["AGENTWATCH_METRICS_PORT"]
    responder_cmd = SERVICES["responder"]["command"]
    responder_port = responder_cmd[responder_cmd.index("--metrics-port") + 1]
    assert SERVICES["responder"]["environment"]["AGENTWATCH_METRICS_PORT"] == responder_port
    server_cmd = SERVICES["server"]["command"]
    server_port = server_cmd[server_cmd.index("--port") + 1]
    assert targets == {f"monitor:{monitor_port}", f"responder:{responder_port}", f"server:{server_port}"}
    assert f"{server_port}:{server_port}" in SERVICES["server"]["ports"]


def test_grafana_datasource_uid_matches_the_dashboards() -> None:
    source = yaml.safe_load((ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"][0]
    import json

    for board in (ROOT / "grafana/dashboards").glob("*.json"):
        for panel in json.loads(board.read_text())["panels"]:
            assert panel["datasource"]["uid"] == source["uid"], board.name
    assert source["url"] == "http://prometheus:9090" and "prometheus" in SERVICES


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_long_running_services_have_restart_policies_and_healthchecks(name: str) -> None:
    service = SERVICES[name]
    if name in {"kafka-init", "simulator"}:
        return
    assert service.get("restart") == "unless-stopped"
    assert "healthcheck" in service


def test_environment_variables_and_ports_are_documented() -> None:
    variables = set()
    for service in SERVICES.values():
        variables |= {k for k in service.get("environment", {}) if k.startswith("AGENTWATCH_")}
    undocumented = sorted(v for v in variables if v not in README)
    assert undocumented == []
    for service in SERVICES.values():
        for mapping in service.get("ports", []):
            assert re.search(rf"\b{mapping.split(':')[0]}\b", README), f"port {mapping} not in README"


@pytest.mark.parametrize("name", ["responder", "workers"])
def test_the_monitor_leaves_the_incidents_to_the_responder_on_the_same_store(name: str) -> None:
    """`run --worker alerts`, one consuming `respond` and scalable step workers beside it: same image,
    store, data volume and Kafka."""
    from agentwatch.config import WORKER_MODES

    monitor, responder = SERVICES["monitor"], SERVICES[name]
    assert monitor["environment"]["AGENTWATCH_RESPONSE_WORKER"] == "alerts" in WORKER_MODES
    assert responder["environment"]["AGENTWATCH_RESPONSE_WORKER"] == "alerts"
    assert responder["command"][:2] == ["respond", "--consume" if name == "responder" else "--no-consume"]
    for key in ("AGENTWATCH_STORE_URL", "AGENTWATCH_DATA_DIR", "AGENTWATCH_BOOTSTRAP_SERVERS"):
        assert responder["environment"][key] == monitor["environment"][key], key
    assert responder["volumes"] == monitor["volumes"] and responder["image"] == monitor["image"]
    assert responder["depends_on"] == monitor["depends_on"]
    # what its steps need: Slack for approval requests, the gated actions' webhooks
    for key in ("AGENTWATCH_SLACK_BOT_TOKEN", "AGENTWATCH_SLACK_CHANNEL", "AGENTWATCH_APPROVERS"):
        assert key in responder["environment"], key
