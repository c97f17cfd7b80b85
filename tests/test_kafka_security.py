"""TLS/SASL settings → kafka-python client arguments: the mapping, the secrets' sources and
redaction, the one-line errors, and that every client agentwatch creates takes them."""

from __future__ import annotations

import ast
import base64
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentwatch.cli.main import main
from agentwatch.config import load_config
from agentwatch.errors import ConfigError
from agentwatch.ingest.kafka_security import (
    ClientCredentialsTokenProvider,
    KafkaSettings,
    Secret,
    resolve_security,
)

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    """Stand-in PEM files: the resolver checks they exist; kafka-python reads them at connect."""
    for name in ("ca.pem", "client.pem", "client.key", "crl.pem"):
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n")
    return tmp_path


def test_plaintext_by_default_adds_nothing() -> None:
    assert resolve_security(KafkaSettings(), {}).client_kwargs() == {}


def test_mutual_tls_from_the_config_file_and_a_key_password_file(pem: Path) -> None:
    (pem / "key-password").write_text(PASSWORD + "\n")
    settings = KafkaSettings(
        security_protocol="SSL",
        ssl_cafile=str(pem / "ca.pem"),
        ssl_certfile=str(pem / "client.pem"),
        ssl_keyfile=str(pem / "client.key"),
        ssl_key_password_file=str(pem / "key-password"),
        ssl_crlfile=str(pem / "crl.pem"),
    )
    assert resolve_security(settings, {}).client_kwargs() == {
        "security_protocol": "SSL",
        "ssl_check_hostname": True,
        "ssl_cafile": str(pem / "ca.pem"),
        "ssl_certfile": str(pem / "client.pem"),
        "ssl_keyfile": str(pem / "client.key"),
        "ssl_crlfile": str(pem / "crl.pem"),
        "ssl_password": PASSWORD,  # the file's content, whitespace stripped
    }


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "scram-sha-512"])
def test_sasl_over_tls_from_the_environment(mechanism: str, pem: Path) -> None:
    env = {
        "AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "AGENTWATCH_KAFKA_SASL_MECHANISM": mechanism,
        "AGENTWATCH_KAFKA_SASL_USERNAME": "agentwatch-monitor",
        "AGENTWATCH_KAFKA_SASL_PASSWORD": PASSWORD,
        "AGENTWATCH_KAFKA_SSL_CAFILE": str(pem / "ca.pem"),
    }
    assert resolve_security(KafkaSettings(), env).client_kwargs() == {
        "security_protocol": "SASL_SSL",
        "ssl_check_hostname": True,
        "ssl_cafile": str(pem / "ca.pem"),
        "sasl_mechanism": mechanism.upper(),
        "sasl_plain_username": "agentwatch-monitor",
        "sasl_plain_password": PASSWORD,
    }


def test_the_environment_overrides_the_file_key_by_key(pem: Path) -> None:
    (pem / "password").write_text(PASSWORD)
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="from-file",
        sasl_password_file=str(pem / "password"),
        ssl_check_hostname=True,
    )
    env = {"AGENTWATCH_KAFKA_SASL_USERNAME": "from-env", "AGENTWATCH_KAFKA_SSL_CHECK_HOSTNAME": "false"}
    kwargs = resolve_security(settings, env).client_kwargs()
    assert kwargs["sasl_plain_username"] == "from-env" and kwargs["ssl_check_hostname"] is False
    assert kwargs["sasl_plain_password"] == PASSWORD and kwargs["sasl_mechanism"] == "PLAIN"


def test_a_password_file_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(f"  {PASSWORD}\n")
    env = {
        "AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "AGENTWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "AGENTWATCH_KAFKA_SASL_USERNAME": "u",
        "AGENTWATCH_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "pw"),
    }
    assert resolve_security(KafkaSettings(), env).client_kwargs()["sasl_plain_password"] == PASSWORD


def test_secrets_never_show_in_repr_str_describe_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",  # also logs a warning: PLAIN in clear
        "AGENTWATCH_KAFKA_SASL_MECHANISM": "PLAIN",
        "AGENTWATCH_KAFKA_SASL_USERNAME": "u",
        "AGENTWATCH_KAFKA_SASL_PASSWORD": PASSWORD,
    }
    with caplog.at_level(logging.DEBUG):
        security = resolve_security(KafkaSettings(), env)
        logging.getLogger("test").warning("security: %s %r", security, security)
    assert PASSWORD not in repr(security) + str(security) + security.describe() + caplog.text
    assert "unencrypted" in caplog.text and "[REDACTED]" in repr(security)
    assert repr(Secret(PASSWORD)) == "Secret('[REDACTED]')"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "TLS"}, "is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
        ({"AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs a SASL mechanism; hint: set"),
        ({"AGENTWATCH_KAFKA_SASL_MECHANISM": "PLAIN"}, "security_protocol is PLAINTEXT; hint: set"),
        (
            {"AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "AGENTWATCH_KAFKA_SASL_MECHANISM": "GSSAPI"},
            "GSSAPI and AWS_MSK_IAM are not",
        ),
        (
            {
                "AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "AGENTWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "AGENTWATCH_KAFKA_SASL_USERNAME": "u",
            },
            "needs a password; hint: set AGENTWATCH_KAFKA_SASL_PASSWORD or AGENTWATCH_KAFKA_SASL_PASSWORD_FILE",
        ),
        (
            {
                "AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "AGENTWATCH_KAFKA_SASL_MECHANISM": "PLAIN",
                "AGENTWATCH_KAFKA_SASL_PASSWORD": PASSWORD,
            },
            "needs a username",
        ),
        (
            {"AGENTWATCH_KAFKA_SASL_PASSWORD": PASSWORD, "AGENTWATCH_KAFKA_SASL_PASSWORD_FILE": "/run/secrets/x"},
            "are both set; hint: keep one",
        ),
        ({"AGENTWATCH_KAFKA_SSL_CAFILE": "/etc/ssl/ca.pem"}, "(no TLS); hint: set AGENTWATCH_KAFKA_SECURITY_PROTOCOL"),
        (
            {"AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SSL", "AGENTWATCH_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
            "ssl_cafile /nonexistent/ca.pem: no such file; hint",
        ),
        (
            {"AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SSL", "AGENTWATCH_KAFKA_SSL_KEYFILE": "/x/client.key"},
            "ssl_keyfile without ssl_certfile",
        ),
        (
            {"AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SSL", "AGENTWATCH_KAFKA_SSL_CHECK_HOSTNAME": "maybe"},
            "expected true or false",
        ),
        (
            {
                "AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "AGENTWATCH_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
                "AGENTWATCH_KAFKA_OAUTH_TOKEN_URL": "https://idp.example/token",
            },
            "OAUTHBEARER needs AGENTWATCH_KAFKA_OAUTH_CLIENT_ID, AGENTWATCH_KAFKA_OAUTH_CLIENT_SECRET",
        ),
        (
            {
                "AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "AGENTWATCH_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
                "AGENTWATCH_KAFKA_OAUTH_TOKEN_URL": "http://idp.example/token",
                "AGENTWATCH_KAFKA_OAUTH_CLIENT_ID": "agentwatch",
                "AGENTWATCH_KAFKA_OAUTH_CLIENT_SECRET": PASSWORD,
            },
            "must be https",
        ),
    ],
)
def test_combinations_that_cannot_work_are_one_line_with_a_hint(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        resolve_security(KafkaSettings(), env)
    message = str(raised.value)
    assert expected in message and "\n" not in message
    assert "hint" in message or "expected true or false" in message
    assert PASSWORD not in message


def test_a_secret_in_the_config_file_is_refused_with_where_it_goes(tmp_path: Path) -> None:
    path = tmp_path / "agentwatch.toml"
    path.write_text(f'[kafka]\nsecurity_protocol = "SASL_SSL"\nsasl_password = "{PASSWORD}"\n')
    with pytest.raises(
        ConfigError, match="secrets do not go in the config file; hint: set AGENTWATCH_KAFKA_SASL_PASSWORD"
    ):
        load_config(path)


def test_the_cli_reports_a_bad_combination_in_one_line_before_connecting(tmp_path: Path) -> None:
    env = {
        "AGENTWATCH_DATA_DIR": str(tmp_path),
        "AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "AGENTWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "AGENTWATCH_KAFKA_SASL_USERNAME": "agentwatch",
    }
    for argv in (
        ["run", "--bootstrap-servers", "127.0.0.1:1"],
        ["respond", "--bootstrap-servers", "127.0.0.1:1"],
        ["simulate", "--sessions", "1", "--bootstrap-servers", "127.0.0.1:1"],
    ):
        result = CliRunner().invoke(main, argv, env=env)
        assert result.exit_code == 1, (argv, result.output)
        lines = result.output.strip().splitlines()
        assert lines == [lines[0]] and "needs a password; hint:" in lines[0], (argv, result.output)
        assert "Traceback" not in result.output


# -- OAUTHBEARER: client credentials against a local token endpoint ---------------------------
class _TokenEndpoint(BaseHTTPRequestHandler):
    calls: list[tuple[str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.calls.append((self.headers.get("Authorization", ""), body))
        expected = "Basic " + base64.b64encode(f"agentwatch:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.end_headers()
            return
        answer = json.dumps({"access_token": f"token-{len(self.calls)}", "expires_in": 3600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        """Quiet: the test reads :attr:`calls`."""


@pytest.fixture
def token_url() -> Iterator[str]:
    _TokenEndpoint.calls = []
    server = HTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/token"
    server.shutdown()
    server.server_close()


def test_oauthbearer_fetches_a_token_with_client_credentials_and_reuses_it(token_url: str) -> None:
    from kafka.net.sasl.oauth import AbstractTokenProvider

    env = {
        "AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "AGENTWATCH_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
        "AGENTWATCH_KAFKA_OAUTH_TOKEN_URL": token_url,  # http allowed on loopback only
        "AGENTWATCH_KAFKA_OAUTH_CLIENT_ID": "agentwatch",
        "AGENTWATCH_KAFKA_OAUTH_CLIENT_SECRET": PASSWORD,
        "AGENTWATCH_KAFKA_OAUTH_SCOPE": "kafka",
    }
    kwargs = resolve_security(KafkaSettings(), env).client_kwargs()
    provider = kwargs["sasl_oauth_token_provider"]
    assert isinstance(provider, AbstractTokenProvider) and kwargs["sasl_mechanism"] == "OAUTHBEARER"
    assert "sasl_plain_password" not in kwargs and PASSWORD not in repr(provider)
    assert provider.token() == "token-1" == provider.token()  # one fetch, reused
    [(_, body)] = _TokenEndpoint.calls
    assert body == "grant_type=client_credentials&scope=kafka"
    # every client of the process shares the provider (one token, not one per client)
    assert resolve_security(KafkaSettings(), env).client_kwargs()["sasl_oauth_token_provider"] is provider


def test_oauthbearer_refusal_is_a_connection_error_without_the_secret(token_url: str) -> None:
    from agentwatch.ingest.kafka_security import Secret

    provider = ClientCredentialsTokenProvider(token_url, "agentwatch", Secret("wrong-secret-value"))
    with pytest.raises(ConnectionError, match="refused the client credentials \\(HTTP 401\\)") as raised:
        provider.token()
    assert "wrong-secret-value" not in str(raised.value)


# -- every client -----------------------------------------------------------------------------
CLIENTS = {"KafkaConsumer", "KafkaProducer", "KafkaAdminClient"}
#: Clients that only ever talk to the embedded, loopback, plaintext broker (the lab's own).
EMBEDDED_ONLY = {
    "monitor/lab/broker.py",  # the readiness probe of the Tansu process it started
    "bench/approval_latency.py",  # runs only against its own embedded broker
}


def test_every_kafka_client_agentwatch_creates_takes_the_security_settings() -> None:
    """Each KafkaConsumer/KafkaProducer/KafkaAdminClient built in monitor/, bench/ and tools/ is
    given ``**client_kwargs(…)`` (or another ``**`` of the resolved settings)."""
    missing, found = [], 0
    for folder in ("monitor", "bench", "tools", "detectors", "playbooks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text(), relative)):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name not in CLIENTS:
                    continue
                found += 1
                if relative in EMBEDDED_ONLY:
                    continue
                if not any(k.arg is None for k in node.keywords):
                    missing.append(f"{relative}:{node.lineno} {name}")
    assert found >= 12  # the scan sees the clients (it would pass vacuously otherwise)
    assert missing == []
