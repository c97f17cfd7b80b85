"""deploy/otel-collector.yaml agrees with agentwatch and compose.yaml (no Collector binary here:
checked as data, with the exporter's wire format tested in tests/test_otlp_collector_path.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from agentwatch.config import DEFAULT_INPUTS
from agentwatch.formats import get_decoder
from agentwatch.formats.otlp_json import MAX_BATCH_BYTES

ROOT = Path(__file__).resolve().parent.parent
CONFIG_TEXT = (ROOT / "deploy" / "otel-collector.yaml").read_text()
CONFIG: dict[str, Any] = yaml.safe_load(CONFIG_TEXT)
SERVICES: dict[str, dict[str, Any]] = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]


def test_pipeline_components_are_all_defined() -> None:
    [pipeline] = CONFIG["service"]["pipelines"].values()
    for kind in ("receivers", "processors", "exporters"):
        for name in pipeline[kind]:
            assert name in CONFIG[kind], f"{kind}: {name}"
    for name in CONFIG["service"]["extensions"]:
        assert name in CONFIG["extensions"]


def test_otlp_grpc_and_http_both_require_the_token() -> None:
    protocols = CONFIG["receivers"]["otlp"]["protocols"]
    assert set(protocols) == {"grpc", "http"}
    for protocol in protocols.values():
        assert protocol["auth"]["authenticator"] == "bearertokenauth"
    assert CONFIG["extensions"]["bearertokenauth"]["token"] == "${env:AGENTWATCH_OTLP_TOKEN}"
    assert protocols["grpc"]["max_recv_msg_size_mib"] * 1024 * 1024 <= MAX_BATCH_BYTES
    assert protocols["http"]["max_request_body_size"] <= MAX_BATCH_BYTES


def test_sessions_are_grouped_before_the_exporter_keys_by_resource() -> None:
    [pipeline] = CONFIG["service"]["pipelines"].values()
    assert CONFIG["processors"]["groupbyattrs"]["keys"] == ["session.id"]
    assert pipeline["processors"][-1] == "groupbyattrs"  # after batch: batches regrouped per session
    kafka = CONFIG["exporters"]["kafka"]
    assert kafka["partition_logs_by_resource_attributes"] is True


def test_the_exporter_writes_what_rekey_reads_and_the_monitor_decodes() -> None:
    kafka = CONFIG["exporters"]["kafka"]
    rekey = SERVICES["rekey"]["command"]
    source, destination = rekey[rekey.index("--from") + 1], rekey[rekey.index("--to") + 1]
    assert kafka["logs"]["topic"] == source
    assert DEFAULT_INPUTS[destination] == "otlp"  # reads both of the exporter's OTLP encodings
    assert kafka["logs"]["encoding"] in {"otlp_proto", "otlp_json"}
    get_decoder(DEFAULT_INPUTS[destination])
    assert kafka["producer"]["compression"] in {"none", "gzip"}  # what kafka-python reads without extras
    assert kafka["producer"]["max_message_bytes"] <= MAX_BATCH_BYTES
    init = "\n".join(SERVICES["kafka-init"]["command"])
    for topic in (source, destination):
        assert f" {topic}:" in init, f"kafka-init does not create {topic}"


def test_compose_runs_this_config_with_its_variables() -> None:
    collector = SERVICES["otel-collector"]
    assert collector["image"].startswith("otel/opentelemetry-collector-contrib:")
    assert re.fullmatch(r"otel/opentelemetry-collector-contrib:\d+\.\d+\.\d+", collector["image"]), "pin a version"
    [mount] = collector["volumes"]
    assert mount.startswith("./deploy/otel-collector.yaml:") and mount.endswith(":ro")
    assert f"--config={mount.split(':')[1]}" in collector["command"]
    for variable in set(re.findall(r"\$\{env:(\w+)", CONFIG_TEXT)):
        assert variable in collector["environment"], variable
    # [HOST_IP:]HOST_PORT:CONTAINER_PORT, the host address ${AGENTWATCH_BIND:-127.0.0.1}
    assert {"4317:4317", "4318:4318"} <= {":".join(port.rsplit(":", 2)[-2:]) for port in collector["ports"]}


def test_kafka_has_an_external_listener_for_producers_outside_compose() -> None:
    env = SERVICES["kafka"]["environment"]
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert listeners["EXTERNAL"] == ":9094" and advertised["EXTERNAL"].endswith(":9094")
    assert advertised["PLAINTEXT"] == "kafka:9092" and "EXTERNAL" in protocols
    [published] = SERVICES["kafka"]["ports"]
    assert published.endswith(":9094:9094") and "127.0.0.1" in published  # loopback unless told otherwise
