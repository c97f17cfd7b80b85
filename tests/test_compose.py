"""compose.yaml is checked without Docker: files exist, commands are real CLI commands,
ports and environment variables agree with the README, Prometheus and Grafana wiring."""

from __future__ import annotations

import re
import shlex
import subprocess
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
    rekey_cmd = SERVICES["rekey"]["command"]
    rekey_port = rekey_cmd[rekey_cmd.index("--metrics-port") + 1]
    assert targets == {
        f"monitor:{monitor_port}",
        f"responder:{responder_port}",
        f"rekey:{rekey_port}",
        f"server:{server_port}",
    }
    assert [published(m, {})[1:] for m in SERVICES["server"]["ports"]] == [(server_port, server_port)]


def test_grafana_datasources_match_the_dashboards_variables() -> None:
    import json

    provisioned = {}
    for name in ("prometheus.yml", "store.yml"):
        source = yaml.safe_load((ROOT / "grafana/provisioning/datasources" / name).read_text())["datasources"][0]
        provisioned[source["type"]] = source
    assert provisioned["prometheus"]["url"] == "http://prometheus:9090" and "prometheus" in SERVICES
    store = provisioned["grafana-postgresql-datasource"]
    assert store["url"] == "postgres:5432" and store["user"] == "agentwatch_dashboard"
    password_var = store["secureJsonData"]["password"].lstrip("$")
    assert password_var in SERVICES["grafana"]["environment"] and password_var in SERVICES["postgres"]["environment"]
    assert "./deploy/postgres-init:/docker-entrypoint-initdb.d:ro" in SERVICES["postgres"]["volumes"]
    for board in (ROOT / "grafana/dashboards").glob("*.json"):
        data = json.loads(board.read_text())
        variables = {v["name"]: v for v in data["templating"]["list"]}
        for panel in data["panels"]:
            name = panel["datasource"]["uid"].removeprefix("${").removesuffix("}")
            variable = variables[name]  # every panel's datasource is a dashboard variable …
            assert variable["query"] == panel["datasource"]["type"], board.name
            assert variable["current"]["value"] == provisioned[variable["query"]]["uid"]  # … defaulting to compose's


def test_the_dashboard_role_script_is_valid_shell() -> None:
    script = ROOT / "deploy/postgres-init/10-dashboard-role.sh"
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    assert "CREATE ROLE agentwatch_dashboard LOGIN PASSWORD :'password'" in script.read_text()


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_long_running_services_have_restart_policies_and_healthchecks(name: str) -> None:
    service = SERVICES[name]
    if name in {"kafka-init", "simulator"}:
        return
    assert service.get("restart") == "unless-stopped"
    if name == "otel-collector":  # distroless: nothing inside to probe with; its health_check extension instead
        assert "13133" in service["expose"]
        return
    assert "healthcheck" in service


def test_environment_variables_and_ports_are_documented() -> None:
    variables = set()
    for service in SERVICES.values():
        variables |= {k for k in service.get("environment", {}) if k.startswith("AGENTWATCH_")}
    undocumented = sorted(v for v in variables if v not in README)
    assert undocumented == []
    for service in SERVICES.values():
        for mapping in service.get("ports", []):
            port = published(mapping, {})[1]
            assert re.search(rf"\b{port}\b", README), f"port {mapping} not in README"
            for variable in re.findall(r"\$\{(\w+)", mapping):
                assert variable in README, f"{variable} (compose port {mapping}) not in README"


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


# -- compose as a deployment: secrets, bind addresses, what the playbooks read ----------------
_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation (``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}``, ``$$``) —
    what ``docker compose config`` does first, for where there is no Docker client."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        value = env.get(name)
        unset_or_empty = not value if op and op.startswith(":") else value is None
        if op in (":?", "?") and unset_or_empty:
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and unset_or_empty:
            return arg
        return value or ""

    return _VAR.sub(one, text)


def published(mapping: str, env: dict[str, str]) -> tuple[str, str, str]:
    """(host address, published port, container port) of a short-syntax ``ports`` entry."""
    host, port, target = interpolate(mapping, env).rsplit(":", 2)
    return host, port, target


ENV_EXAMPLE = ROOT / ".env.example"
REQUIRED = {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "AGENTWATCH_DASHBOARD_DB_PASSWORD", "AGENTWATCH_OTLP_TOKEN"}


def _example_env() -> dict[str, str]:
    env = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def test_required_secrets_fail_fast_instead_of_defaulting() -> None:
    text = (ROOT / "compose.yaml").read_text()
    for name in REQUIRED:
        uses = re.findall(rf"\$\{{{name}([^}}]*)\}}", text)
        assert uses and all(use.startswith(":?") for use in uses), (name, uses)
    assert "admin}" not in text and ":-agentwatch}" not in text  # the old demo defaults
    with pytest.raises(MissingVariable, match="|".join(REQUIRED)):
        interpolate(text, {})
    for name in REQUIRED:  # each one alone stops it
        with pytest.raises(MissingVariable, match=name):
            interpolate(text, {k: "x" for k in REQUIRED - {name}})
    # the example environment names every required variable (values to replace) and then interpolates
    example = _example_env()
    assert REQUIRED | {"AGENTWATCH_API_TOKEN"} <= set(example)
    yaml.safe_load(interpolate(text, {k: "set" for k in example}))


def test_published_ports_bind_to_loopback_unless_configured() -> None:
    mappings = [m for service in SERVICES.values() for m in service.get("ports", [])]
    assert len(mappings) >= 3
    for mapping in mappings:
        assert published(mapping, {})[0] == "127.0.0.1", mapping
        # Kafka's unauthenticated external listener has its own switch, so opening the UIs never opens it
        switch = "KAFKA_EXTERNAL_BIND" if "KAFKA_EXTERNAL_BIND" in mapping else "AGENTWATCH_BIND"
        assert published(mapping, {switch: "0.0.0.0"})[0] == "0.0.0.0", mapping
    # the metrics ports are not published at all; they listen on the compose network only
    for name in ("monitor", "responder"):
        assert "ports" not in SERVICES[name] and SERVICES[name]["environment"]["AGENTWATCH_METRICS_HOST"] == "0.0.0.0"


def playbook_variables() -> set[str]:
    """Every environment variable the shipped playbooks name (``$VAR`` approvers, ``*_env`` params)."""
    names: set[str] = set()
    for path in (ROOT / "playbooks").glob("*.yaml"):
        names |= set(re.findall(r"\$(AGENTWATCH_[A-Z_]+)", path.read_text()))
        names |= set(re.findall(r"_env:\s*(AGENTWATCH_[A-Z_]+)", path.read_text()))
    return names


def test_monitor_responder_and_server_receive_what_the_playbooks_need() -> None:
    wanted = playbook_variables()
    assert {"AGENTWATCH_APPROVERS", "AGENTWATCH_ESCALATION_APPROVERS", "AGENTWATCH_WEBHOOK_SECRET"} <= wanted
    assert {"AGENTWATCH_REVOKE_WEBHOOK_URL", "AGENTWATCH_QUARANTINE_WEBHOOK_URL"} <= wanted
    # and what approvals and control commands read beside the playbooks
    wanted |= {"AGENTWATCH_APPROVALS_FILE", "AGENTWATCH_SLACK_BOT_TOKEN", "AGENTWATCH_SLACK_CHANNEL"}
    wanted |= {"AGENTWATCH_CONTROL_SIGNING_KEY"}
    for name in ("monitor", "responder", "server"):
        env = SERVICES[name]["environment"]
        assert sorted(wanted - set(env)) == [], name
        for key in wanted:  # passed through from the operator's environment, not hard-coded
            assert str(env[key]).startswith(f"${{{key}:-"), (name, key)
    assert "AGENTWATCH_SLACK_SIGNING_SECRET" in SERVICES["server"]["environment"]


APPROVAL_SETTINGS = (
    "AGENTWATCH_APPROVERS",
    "AGENTWATCH_ESCALATION_APPROVERS",
    "AGENTWATCH_APPROVALS_FILE",
    "AGENTWATCH_REVOKE_WEBHOOK_URL",
    "AGENTWATCH_QUARANTINE_WEBHOOK_URL",
    "AGENTWATCH_WEBHOOK_SECRET",
)


@pytest.mark.parametrize("name", ["responder", "server"])
def test_the_services_that_request_and_carry_out_approvals_get_the_approval_settings(name: str) -> None:
    """Issue 15: the demo configures approvers; compose passes the same settings to the responder
    (which requests approvals) and the server (whose approval worker runs approved containment)."""
    environment = SERVICES[name]["environment"]
    missing = [key for key in APPROVAL_SETTINGS if key not in environment]
    assert missing == [], f"{name} lacks {missing}"


def test_compose_creates_every_topic_the_monitor_uses() -> None:
    """The monitor runs with --no-create-topics, so the init job must create them all (the audit
    anchor topic included: a missing one would only show as failed anchors)."""
    from agentwatch.config import MonitorSettings
    from agentwatch.ingest.topics import all_topics

    created = set(
        re.findall(r"([\w.-]+):\d+", " ".join(re.findall(r"for spec in ([^;]+);", (ROOT / "compose.yaml").read_text())))
    )
    assert set(all_topics(MonitorSettings())) <= created


def test_the_stack_validates_against_the_compose_specification() -> None:
    """No ``docker compose`` client here (the docker CLI has no compose plugin): the file, interpolated
    with .env.example, is parsed by the ``compose_spec`` models (Rust, strict: unknown keys and bad
    values are errors), YAML merge keys resolved first as compose does."""
    import json

    from compose_spec import PyCompose

    text = interpolate((ROOT / "compose.yaml").read_text(), _example_env())
    document = yaml.safe_load(text)
    parsed = PyCompose.from_json(json.dumps(document))
    assert set(parsed.service_names()) == set(SERVICES)
    document["services"]["kafka"]["healthcheks"] = {}  # the check is real: a misspelt key fails
    with pytest.raises(ValueError, match="healthcheks"):
        PyCompose.from_json(json.dumps(document))
