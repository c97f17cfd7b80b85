"""agentwatch's Kafka clients over TLS against a real broker on loopback.

Tansu cannot terminate TLS itself, so :class:`tests.tls_broker.TlsBroker` puts a TLS proxy in
front of it (advertised as the broker's address): every client connection is TLS, verified
against a throwaway CA made for the test. An event goes through; a client that trusts another
CA, or speaks plaintext, gets nothing; the whole monitor → signed command → gateway path runs
over TLS.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from agentwatch.config import Config
from agentwatch.ingest.kafka_security import KafkaSecurity, KafkaSettings, client_kwargs, resolve_security
from agentwatch.ingest.monitor_process import start_monitor
from agentwatch.ingest.topics import all_topics, ensure_topics
from agentwatch.lab.reference_gateway import ReferenceGateway, drive_fleet
from agentwatch.lab.topic_io import publish_events, read_records, read_topic
from agentwatch.respond.control_signing import ControlSigner, ControlVerifier
from tests.test_response_e2e import SESSION, exfiltration_session
from tests.tls_broker import CLIENT_KEY_PASSWORD, Pki, TlsBroker, make_ca

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_ca(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_broker(pki: Pki) -> Iterator[TlsBroker]:
    with TlsBroker(pki) as broker:
        yield broker


def tls(ca_file: Path) -> KafkaSecurity:
    """What an operator sets: the environment, read by the same resolver every command uses."""
    return resolve_security(
        KafkaSettings(),
        {"AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SSL", "AGENTWATCH_KAFKA_SSL_CAFILE": str(ca_file)},
    )


def native_event(session: str) -> dict:  # type: ignore[type-arg]
    return {
        "event_id": f"{session}:1",
        "ts": 1_767_225_600_000,
        "session_id": session,
        "agent_id": "coder-1",
        "kind": "tool_call",
        "tool": "Read",
        "target": "README.md",
    }


def test_an_event_is_produced_and_consumed_over_tls(tls_broker: TlsBroker, pki: Pki) -> None:
    security = tls(pki.ca_file)
    topic = f"tls.audit.{uuid.uuid4().hex[:8]}"
    assert ensure_topics(tls_broker.bootstrap_servers, [topic], partitions=1, security=security) == [topic]
    before = tls_broker.connections
    event = native_event("tls-1")
    assert publish_events(tls_broker.bootstrap_servers, topic, [event], security=security) == 1
    [record] = read_records(tls_broker.bootstrap_servers, topic, security=security)
    assert msgspec.json.decode(record.value) == event and record.key == b"tls-1"
    assert tls_broker.connections > before  # they went through the TLS listener


def test_a_broker_certificate_from_another_ca_is_refused(tls_broker: TlsBroker, pki: Pki, tmp_path: Path) -> None:
    impostor = make_ca(tmp_path / "other", name="not the broker's CA")
    before = tls_broker.connections
    with pytest.raises(KafkaError):
        admin(tls_broker, tls(impostor.ca_file))
    with pytest.raises(KafkaError):  # and a plaintext client gets no Kafka answer from the TLS port
        admin(tls_broker, None)
    assert tls_broker.connections == before  # no handshake completed
    admin(tls_broker, tls(pki.ca_file)).close()  # the right CA still gets in
    assert tls_broker.connections > before


def admin(tls_broker: TlsBroker, security: KafkaSecurity | None) -> KafkaAdminClient:
    """An admin client as agentwatch builds them, giving up after 3 s instead of kafka-python's 30."""
    return KafkaAdminClient(
        bootstrap_servers=tls_broker.bootstrap_servers, bootstrap_timeout_ms=3000, **client_kwargs(security)
    )


@pytest.fixture(scope="module")
def mtls_broker(pki: Pki) -> Iterator[TlsBroker]:
    with TlsBroker(pki, mutual=True) as broker:
        yield broker


def test_mutual_tls_with_a_password_protected_client_key(mtls_broker: TlsBroker, pki: Pki, tmp_path: Path) -> None:
    """The broker requires a client certificate: the client key's password comes from a file."""
    (tmp_path / "key-password").write_text(CLIENT_KEY_PASSWORD + "\n")
    env = {
        "AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SSL",
        "AGENTWATCH_KAFKA_SSL_CAFILE": str(pki.ca_file),
        "AGENTWATCH_KAFKA_SSL_CERTFILE": str(pki.client_cert_file),
        "AGENTWATCH_KAFKA_SSL_KEYFILE": str(pki.client_key_file),
        "AGENTWATCH_KAFKA_SSL_KEY_PASSWORD_FILE": str(tmp_path / "key-password"),
    }
    security = resolve_security(KafkaSettings(), env)
    topic = f"mtls.audit.{uuid.uuid4().hex[:8]}"
    ensure_topics(mtls_broker.bootstrap_servers, [topic], partitions=1, security=security)
    assert publish_events(mtls_broker.bootstrap_servers, topic, [native_event("mtls-1")], security=security) == 1
    [record] = read_records(mtls_broker.bootstrap_servers, topic, security=security)
    assert record.key == b"mtls-1"
    with pytest.raises(KafkaError):  # the same CA, no client certificate: the broker refuses
        admin(mtls_broker, tls(pki.ca_file))


def test_the_monitor_contains_a_session_over_tls_with_a_signed_command(
    tls_broker: TlsBroker, pki: Pki, isolated_config: Config
) -> None:
    """run → terminate_session (signed) → a verifying gateway, every client over TLS."""
    bootstrap, config, security = tls_broker.bootstrap_servers, isolated_config, tls(pki.ca_file)
    key = b"0123456789abcdef0123456789abcdef"
    topic = next(t for t, f in config.monitor.inputs.items() if f == "native")
    ensure_topics(bootstrap, all_topics(config.monitor), security=security)
    gateway = ReferenceGateway(
        bootstrap, config.monitor.control_topic, security=security, verifier=ControlVerifier({"k1": key})
    ).start()
    try:
        monitor = start_monitor(
            bootstrap,
            config,
            exit_on_idle_s=3.0,
            security=security,
            signer=ControlSigner(key, "k1", config.monitor.control_topic),
        )
        thread = threading.Thread(target=monitor.run, daemon=True)
        thread.start()
        while not monitor.stats.assigned and thread.is_alive():
            thread.join(0.05)
        events = exfiltration_session(int(time.time() * 1000) - 60_000)
        run = drive_fleet(bootstrap, topic, events, gateway, rate=8.0, security=security)
        thread.join(timeout=60)
        stop = gateway.wait_for(SESSION, timeout_s=5)
    finally:
        gateway.stop()
    assert stop is not None and stop.command.type == "terminate_session"
    assert 0 < run.blocked < len(events) and not gateway.rejected
    [command] = [msgspec.json.decode(v) for v in read_topic(bootstrap, config.monitor.control_topic, security=security)]
    assert command["signature"]["kid"] == "k1" and command["signature"]["alg"] == "HMAC-SHA256"
