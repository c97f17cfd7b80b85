"""How agentwatch's Kafka clients authenticate and encrypt: TLS and SASL, from config and environment.

``[kafka]`` in the config file holds what is not secret; the environment overrides it key by key
(``AGENTWATCH_KAFKA_<KEY>``, e.g. ``AGENTWATCH_KAFKA_SECURITY_PROTOCOL=SASL_SSL``). Secrets — the
SASL password, the client key's password, the OAuth client secret — come only from the
environment (``AGENTWATCH_KAFKA_SASL_PASSWORD``) or a file (``AGENTWATCH_KAFKA_SASL_PASSWORD_FILE``,
or ``sasl_password_file`` in ``[kafka]``): never from the command line, where ``ps`` shows them,
and never from the config file itself. They are held in :class:`Secret`, whose ``repr`` is
redacted, so a logged or printed :class:`KafkaSecurity` shows no secret.

What kafka-python 3.x supports and this maps (every client: monitor, respond, serve, approvals,
simulate, the lab and bench):

- ``SSL``: server verified against ``ssl_cafile`` (else the system CAs), hostname checked unless
  ``ssl_check_hostname = false``; a client certificate (``ssl_certfile`` + ``ssl_keyfile``, key
  password optional) for mutual TLS; ``ssl_crlfile``.
- ``SASL_PLAINTEXT`` / ``SASL_SSL`` with ``PLAIN``, ``SCRAM-SHA-256``, ``SCRAM-SHA-512``
  (``sasl_username`` + password) or ``OAUTHBEARER`` (OAuth 2.0 client credentials:
  ``oauth_token_url``, ``oauth_client_id``, the client secret, optional ``oauth_scope``; tokens
  are fetched and refreshed by :class:`ClientCredentialsTokenProvider`).

Not mapped: GSSAPI (Kerberos needs the ``gssapi`` package and a keytab set-up) and
``AWS_MSK_IAM`` (needs ``botocore``); MSK also offers SASL/SCRAM and mutual TLS, which are.

>>> security = resolve_security(KafkaSettings(), {"AGENTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
...     "AGENTWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "AGENTWATCH_KAFKA_SASL_USERNAME": "agentwatch",
...     "AGENTWATCH_KAFKA_SASL_PASSWORD": "hunter2-hunter2"})
>>> sorted(security.client_kwargs())
['sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username', 'security_protocol', 'ssl_check_hostname']
>>> "hunter2" in repr(security)
False
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec

from agentwatch.errors import ConfigError

log = logging.getLogger(__name__)

PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
ENV_PREFIX: Final = "AGENTWATCH_KAFKA_"
#: The secrets: each from ``AGENTWATCH_KAFKA_<NAME>`` or ``…_<NAME>_FILE`` / ``<name>_file`` in ``[kafka]``.
SECRET_NAMES: Final = ("sasl_password", "ssl_key_password", "oauth_client_secret")
MAX_SECRET_BYTES: Final = 64 * 1024


class KafkaSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[kafka]``: security settings shared by every client (no secrets: those are env or files)."""

    #: ``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL``.
    security_protocol: str = "PLAINTEXT"
    #: PEM bundle of the CAs that sign the brokers' certificates (default: the system's).
    ssl_cafile: str | None = None
    #: Client certificate (PEM) and its private key, for brokers that require mutual TLS.
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    #: File holding the client key's password (or ``AGENTWATCH_KAFKA_SSL_KEY_PASSWORD``).
    ssl_key_password_file: str | None = None
    #: Certificate revocation list (PEM) checked against the broker's certificate.
    ssl_crlfile: str | None = None
    #: Check that the broker's certificate names the host connected to (leave on).
    ssl_check_hostname: bool = True
    #: ``PLAIN``, ``SCRAM-SHA-256``, ``SCRAM-SHA-512`` or ``OAUTHBEARER`` (with ``SASL_*`` only).
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    #: File holding the SASL password (or ``AGENTWATCH_KAFKA_SASL_PASSWORD``).
    sasl_password_file: str | None = None
    #: OAUTHBEARER: the OAuth 2.0 token endpoint (client credentials grant), client id and scope.
    oauth_token_url: str | None = None
    oauth_client_id: str | None = None
    oauth_scope: str | None = None
    #: File holding the OAuth client secret (or ``AGENTWATCH_KAFKA_OAUTH_CLIENT_SECRET``).
    oauth_client_secret_file: str | None = None


class Secret:
    """A secret string that never shows itself in ``repr``/``str`` (logs, tracebacks, ``print``)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('[REDACTED]')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


class KafkaSecurity(msgspec.Struct, frozen=True, kw_only=True):
    """Resolved and checked security settings; :meth:`client_kwargs` for kafka-python's clients."""

    security_protocol: str = "PLAINTEXT"
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_key_password: Secret | None = None
    ssl_crlfile: str | None = None
    ssl_check_hostname: bool = True
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    oauth_token_url: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: Secret | None = None
    oauth_scope: str | None = None

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def describe(self) -> str:
        """One line for logs and ``--help``-level messages: protocol, mechanism, user — no secret."""
        parts = [self.security_protocol]
        if self.sasl_mechanism:
            parts.append(self.sasl_mechanism + (f" as {self.sasl_username}" if self.sasl_username else ""))
        if self.ssl_certfile:
            parts.append("client certificate")
        return ", ".join(parts)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``KafkaConsumer``, ``KafkaProducer`` and ``KafkaAdminClient``."""
        kwargs: dict[str, Any] = {}
        if self.security_protocol == "PLAINTEXT":
            return kwargs
        kwargs["security_protocol"] = self.security_protocol
        kwargs["ssl_check_hostname"] = self.ssl_check_hostname
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_crlfile"):
            value = getattr(self, key)
            if value:
                kwargs[key] = value
        if self.ssl_key_password is not None:
            kwargs["ssl_password"] = self.ssl_key_password.reveal()
        if self.sasl_mechanism:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
        if self.sasl_mechanism == "OAUTHBEARER":
            assert self.oauth_token_url and self.oauth_client_id and self.oauth_client_secret  # checked at resolve
            kwargs["sasl_oauth_token_provider"] = _token_provider(
                self.oauth_token_url, self.oauth_client_id, self.oauth_client_secret, self.oauth_scope
            )
        elif self.sasl_mechanism:
            assert self.sasl_password is not None  # checked at resolve
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password.reveal()
        return kwargs


#: No security: what the embedded lab broker and an unconfigured deployment use.
PLAINTEXT: Final = KafkaSecurity()

_ENV_KEYS: Final = {
    name: ENV_PREFIX + name.upper()
    for name in KafkaSettings.__struct_fields__
    if not name.endswith("_password_file") and not name.endswith("_secret_file")
}


def resolve_security(settings: KafkaSettings | None = None, environ: Mapping[str, str] | None = None) -> KafkaSecurity:
    """``[kafka]`` overlaid with ``AGENTWATCH_KAFKA_*``, secrets read, combinations checked.

    Raises :class:`ConfigError` — one line with a hint — for what cannot work (SASL without a
    password, a client key without its certificate, a missing CA file, …)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = msgspec.structs.asdict(settings or KafkaSettings())
    for name, var in _ENV_KEYS.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        if name == "ssl_check_hostname":
            lowered = raw.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"{var}={raw[:20]!r}: expected true or false")
            values[name] = lowered in ("true", "1", "yes")
        else:
            values[name] = raw.strip()
    protocol = str(values["security_protocol"]).upper()
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"kafka security_protocol {str(values['security_protocol'])[:40]!r} is not one of {', '.join(PROTOCOLS)} "
            f"(hint: {ENV_PREFIX}SECURITY_PROTOCOL or [kafka] security_protocol)"
        )
    mechanism = str(values["sasl_mechanism"]).upper() if values["sasl_mechanism"] else None
    secrets = {name: _secret(name, values.get(f"{name}_file"), env) for name in SECRET_NAMES}
    security = KafkaSecurity(
        security_protocol=protocol,
        ssl_cafile=values["ssl_cafile"],
        ssl_certfile=values["ssl_certfile"],
        ssl_keyfile=values["ssl_keyfile"],
        ssl_key_password=secrets["ssl_key_password"],
        ssl_crlfile=values["ssl_crlfile"],
        ssl_check_hostname=values["ssl_check_hostname"],
        sasl_mechanism=mechanism,
        sasl_username=values["sasl_username"],
        sasl_password=secrets["sasl_password"],
        oauth_token_url=values["oauth_token_url"],
        oauth_client_id=values["oauth_client_id"],
        oauth_client_secret=secrets["oauth_client_secret"],
        oauth_scope=values["oauth_scope"],
    )
    _check(security)
    if security.security_protocol == "SASL_PLAINTEXT" and security.sasl_mechanism == "PLAIN":
        log.warning("Kafka SASL PLAIN over SASL_PLAINTEXT sends the password unencrypted; use SASL_SSL")
    return security


def _secret(name: str, configured_file: str | None, env: Mapping[str, str]) -> Secret | None:
    var = ENV_PREFIX + name.upper()
    value = env.get(var) or None
    path = env.get(var + "_FILE") or configured_file or None
    if value is not None and path is not None:
        raise ConfigError(f"{var} and {var}_FILE (or [kafka] {name}_file) are both set; hint: keep one")
    if path is not None:
        try:
            data = Path(path).read_bytes()[: MAX_SECRET_BYTES + 1]
        except OSError as exc:
            raise ConfigError(
                f"{var}_FILE {path}: cannot read it ({exc.strerror or exc.__class__.__name__}); "
                "hint: mount the secret file there or fix the path"
            ) from None
        if len(data) > MAX_SECRET_BYTES:
            raise ConfigError(f"{var}_FILE {path}: over {MAX_SECRET_BYTES} bytes, not a secret file")
        try:
            value = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ConfigError(f"{var}_FILE {path}: not UTF-8 text") from None
    if value is None:
        return None
    if not value:
        raise ConfigError(f"{var}{'_FILE ' + str(path) if path else ''} is empty; hint: put the secret in it")
    return Secret(value)


def _check(s: KafkaSecurity) -> None:
    """Combinations that cannot work, each one line with a hint."""
    p = ENV_PREFIX
    sasl = s.security_protocol.startswith("SASL_")
    if sasl and not s.sasl_mechanism:
        raise ConfigError(
            f"kafka security_protocol {s.security_protocol} needs a SASL mechanism; "
            f"hint: set {p}SASL_MECHANISM to one of {', '.join(MECHANISMS)}"
        )
    if s.sasl_mechanism and not sasl:
        raise ConfigError(
            f"kafka sasl_mechanism {s.sasl_mechanism[:30]} is set but security_protocol is {s.security_protocol}; "
            f"hint: set {p}SECURITY_PROTOCOL=SASL_SSL"
        )
    if s.sasl_mechanism and s.sasl_mechanism not in MECHANISMS:
        raise ConfigError(
            f"kafka sasl_mechanism {s.sasl_mechanism[:30]!r} is not supported; hint: one of {', '.join(MECHANISMS)} "
            "(GSSAPI and AWS_MSK_IAM are not: MSK also takes SCRAM or mutual TLS)"
        )
    if s.sasl_mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        if not s.sasl_username:
            raise ConfigError(f"kafka SASL {s.sasl_mechanism} needs a username; hint: set {p}SASL_USERNAME")
        if s.sasl_password is None:
            raise ConfigError(
                f"kafka SASL {s.sasl_mechanism} needs a password; hint: set {p}SASL_PASSWORD or "
                f"{p}SASL_PASSWORD_FILE (never on the command line)"
            )
    if s.sasl_mechanism == "OAUTHBEARER":
        missing = [
            var
            for var, value in (
                ("OAUTH_TOKEN_URL", s.oauth_token_url),
                ("OAUTH_CLIENT_ID", s.oauth_client_id),
                ("OAUTH_CLIENT_SECRET", s.oauth_client_secret),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"kafka SASL OAUTHBEARER needs {', '.join(p + m for m in missing)}; hint: set them")
        assert s.oauth_token_url is not None
        scheme = urllib.parse.urlsplit(s.oauth_token_url).scheme
        if scheme != "https" and not _loopback_url(s.oauth_token_url):
            raise ConfigError(
                f"{p}OAUTH_TOKEN_URL must be https (the client secret is sent to it); hint: use the https endpoint"
            )
    if s.sasl_mechanism != "OAUTHBEARER" and (s.oauth_token_url or s.oauth_client_id or s.oauth_client_secret):
        raise ConfigError(
            "kafka oauth_* settings are set but sasl_mechanism is not OAUTHBEARER; "
            f"hint: set {p}SASL_MECHANISM=OAUTHBEARER"
        )
    if not s.sasl_mechanism and (s.sasl_username or s.sasl_password):
        raise ConfigError(
            "a kafka SASL username or password is set but no SASL; "
            f"hint: set {p}SECURITY_PROTOCOL=SASL_SSL and {p}SASL_MECHANISM"
        )
    tls_files = [k for k in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_crlfile") if getattr(s, k)]
    if not s.uses_tls and (tls_files or s.ssl_key_password):
        raise ConfigError(
            f"kafka {(tls_files or ['ssl_key_password'])[0]} is set but security_protocol is {s.security_protocol} "
            f"(no TLS); hint: set {p}SECURITY_PROTOCOL=SSL or SASL_SSL"
        )
    if s.ssl_keyfile and not s.ssl_certfile:
        raise ConfigError(
            f"kafka ssl_keyfile without ssl_certfile; hint: set {p}SSL_CERTFILE to the client certificate"
        )
    if s.ssl_key_password is not None and not s.ssl_certfile:
        raise ConfigError(f"kafka ssl key password without a client certificate; hint: set {p}SSL_CERTFILE")
    for key in tls_files:
        path = getattr(s, key)
        if not Path(path).is_file():
            raise ConfigError(f"kafka {key} {path}: no such file; hint: mount it or fix {p}{key.upper()}")


def _loopback_url(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")


@functools.lru_cache(maxsize=4)
def _token_provider(url: str, client_id: str, secret: Secret, scope: str | None) -> Any:
    # kafka-python checks the provider's type, so the class derives from its ABC (imported lazily:
    # this module is imported by the config, which runs without a broker).
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class _Provider(ClientCredentialsTokenProvider, AbstractTokenProvider):
        pass

    return _Provider(url, client_id, secret, scope)


class ClientCredentialsTokenProvider:
    """OAuth 2.0 client credentials (RFC 6749 §4.4) for SASL/OAUTHBEARER: one token, reused until a
    minute before it expires, then fetched again. Thread-safe (a consumer and a producer share it).

    The grant is one form POST and a JSON answer; stdlib ``urllib`` does it, which spares a
    dependency (authlib, requests-oauthlib) for a single request."""

    REFRESH_MARGIN_S: Final = 60.0
    TIMEOUT_S: Final = 10.0

    def __init__(self, url: str, client_id: str, secret: Secret, scope: str | None = None) -> None:
        self.url = url
        self.client_id = client_id
        self._secret = secret
        self.scope = scope
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClientCredentialsTokenProvider(url={self.url!r}, client_id={self.client_id!r})"

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                self._token, lifetime = self._fetch()
                self._expires_at = time.monotonic() + max(0.0, lifetime - self.REFRESH_MARGIN_S)
            return self._token

    def extensions(self) -> dict[str, str]:
        return {}

    def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        request = urllib.request.Request(
            self.url,
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                # RFC 6749 §2.3.1: client_secret_basic, the method every provider supports
                "Authorization": "Basic " + _basic(self.client_id, self._secret.reveal()),
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.TIMEOUT_S) as response:  # noqa: S310 (https checked at resolve)
                body = response.read(1024 * 1024)
        except urllib.error.HTTPError as exc:
            raise ConnectionError(
                f"OAuth token endpoint {self.url} refused the client credentials (HTTP {exc.code})"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ConnectionError(f"OAuth token endpoint {self.url} unreachable ({exc.__class__.__name__})") from None
        try:
            answer = json.loads(body)
            token = answer["access_token"]
            lifetime = float(answer.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise ConnectionError(f"OAuth token endpoint {self.url} answered without an access_token") from None
        if not isinstance(token, str) or not token or not token.isprintable():
            raise ConnectionError(f"OAuth token endpoint {self.url} answered with an unusable access_token")
        return token, lifetime


def _basic(client_id: str, secret: str) -> str:
    import base64

    quote = urllib.parse.quote  # RFC 6749 §2.3.1: form-encode both before Basic
    return base64.b64encode(f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()


def client_kwargs(security: KafkaSecurity | None) -> dict[str, Any]:
    """``security``'s client keyword arguments; ``None`` is :data:`PLAINTEXT` (the lab's embedded broker)."""
    return (security or PLAINTEXT).client_kwargs()
