"""Signed control commands: a gateway can check that a command on ``agent.control`` came from agentwatch.

Whoever may write the control topic can stop (or quarantine) any agent; Kafka ACLs limit who
that is, and a signature lets the gateway check it too. With ``AGENTWATCH_CONTROL_SIGNING_KEY``
(or ``…_FILE``) set, every command agentwatch publishes carries::

    "signature": {"alg": "HMAC-SHA256", "kid": "<key id>", "ts": <ms since epoch>, "sig": "<base64url>"}

``sig`` is HMAC-SHA256, under the shared key, of the UTF-8 bytes of::

    agentwatch-control-v1 \\n <kid> \\n <ts> \\n <canonical command>

where the canonical command is the command's JSON object *without* ``signature``, keys sorted,
no whitespace, non-ASCII characters as themselves (every value is a string or a list of strings,
so this is RFC 8785 JSON canonicalisation). ``ts`` is when the command was sent (a retried send
is signed again), so a gateway rejects a command older than a few minutes — a replay — and
deduplicates the rest by ``command_id``.

``kid`` names the key (``AGENTWATCH_CONTROL_SIGNING_KEY_ID``; default: derived from the key) so
gateways can hold the old and the new key while it rotates. :class:`ControlVerifier` is the
gateway side (:mod:`agentwatch.lab.reference_gateway` uses it).

>>> signer = ControlSigner(b"k" * 32, key_id="2026-11")
>>> signed = signer.sign(b'{"command_id":"cmd-1","type":"terminate_session"}', now_ms=1_000)
>>> ControlVerifier({"2026-11": b"k" * 32}).verify(signed, now_ms=2_000)["command_id"]
'cmd-1'
>>> ControlVerifier({"2026-11": b"k" * 32}).verify(signed.replace(b"cmd-1", b"cmd-2"), now_ms=2_000)
Traceback (most recent call last):
agentwatch.respond.control_signing.RejectedCommand: bad_signature: the signature does not match the command
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from agentwatch.errors import ConfigError
from agentwatch.respond.action_spec import OutgoingMessage

ALGORITHM: Final = "HMAC-SHA256"
CONTEXT: Final = b"agentwatch-control-v1"
KEY_VAR: Final = "AGENTWATCH_CONTROL_SIGNING_KEY"
KEY_ID_VAR: Final = "AGENTWATCH_CONTROL_SIGNING_KEY_ID"
MIN_KEY_BYTES: Final = 32
MAX_KEY_BYTES: Final = 4096
#: A gateway refuses commands signed longer ago than this, or this far in the future (clock skew).
DEFAULT_MAX_AGE_S: Final = 300.0
DEFAULT_MAX_SKEW_S: Final = 30.0
MAX_COMMAND_BYTES: Final = 64 * 1024

#: Why a gateway refused a command: a closed set (metric label, log field).
REJECT_REASONS: Final = frozenset({"malformed", "unsigned", "unknown_key", "bad_signature", "stale", "future"})


class RejectedCommand(ValueError):
    """A control command that must not be obeyed; ``reason`` is one of :data:`REJECT_REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REJECT_REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def canonical(command: Mapping[str, Any]) -> bytes:
    """The signed form of a command: without ``signature``, sorted keys, no whitespace, UTF-8."""
    body = {k: v for k, v in command.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


def _mac(key: bytes, key_id: str, ts: int, command: Mapping[str, Any]) -> str:
    message = b"\n".join((CONTEXT, key_id.encode(), str(ts).encode(), canonical(command)))
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=").decode()


def default_key_id(key: bytes) -> str:
    """A key's id when none is configured: a fingerprint that reveals nothing usable about it."""
    return "k-" + hashlib.sha256(b"agentwatch-control-key-id\x00" + key).hexdigest()[:16]


def load_key(environ: Mapping[str, str] | None = None) -> tuple[str, bytes] | None:
    """``(key id, key)`` from ``AGENTWATCH_CONTROL_SIGNING_KEY`` or ``…_FILE``; ``None`` when unset."""
    env = os.environ if environ is None else environ
    value = env.get(KEY_VAR) or None
    path = env.get(KEY_VAR + "_FILE") or None
    if value is not None and path is not None:
        raise ConfigError(f"set {KEY_VAR} or {KEY_VAR}_FILE, not both")
    if path is not None:
        try:
            value = Path(path).read_bytes()[: MAX_KEY_BYTES + 1].decode("utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{KEY_VAR}_FILE {path}: cannot read it ({exc.__class__.__name__})") from None
    if value is None:
        return None
    key = value.strip().encode()
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ConfigError(
            f"the control signing key must be {MIN_KEY_BYTES}–{MAX_KEY_BYTES} bytes (hint: `openssl rand -hex 32`)"
        )
    key_id = (env.get(KEY_ID_VAR) or "").strip() or default_key_id(key)
    if len(key_id) > 64 or not key_id.isascii() or not key_id.isprintable() or " " in key_id:
        raise ConfigError(f"{KEY_ID_VAR}: at most 64 printable ASCII characters without spaces")
    return key_id, key


class ControlSigner:
    """Signs the commands agentwatch sends to ``topic`` (the control topic)."""

    def __init__(self, key: bytes, key_id: str | None = None, topic: str = "agent.control") -> None:
        self._key = key
        self.key_id = key_id or default_key_id(key)
        self.topic = topic

    def __repr__(self) -> str:
        return f"ControlSigner(key_id={self.key_id!r}, topic={self.topic!r})"

    @classmethod
    def from_env(cls, topic: str, environ: Mapping[str, str] | None = None) -> ControlSigner | None:
        loaded = load_key(environ)
        return None if loaded is None else cls(loaded[1], loaded[0], topic)

    def sign(self, value: bytes, now_ms: int | None = None) -> bytes:
        """``value`` (a command's JSON object) with ``signature`` set, as JSON."""
        command = json.loads(value)
        if not isinstance(command, dict):
            raise ValueError("a control command is a JSON object")
        ts = int(time.time() * 1000) if now_ms is None else now_ms
        command.pop("signature", None)
        command["signature"] = {
            "alg": ALGORITHM,
            "kid": self.key_id,
            "ts": ts,
            "sig": _mac(self._key, self.key_id, ts, command),
        }
        text = json.dumps(command, separators=(",", ":"), ensure_ascii=False)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate in an id: escaped, the JSON (and its MAC) unchanged
            return json.dumps(command, separators=(",", ":")).encode("ascii")

    def sign_messages(self, messages: list[OutgoingMessage], now_ms: int | None = None) -> list[OutgoingMessage]:
        """The messages for the control topic signed (now: at send time), the others as they are."""
        return [replace(m, value=self.sign(m.value, now_ms)) if m.topic == self.topic else m for m in messages]


def sign_outgoing(signer: ControlSigner | None, messages: list[OutgoingMessage]) -> list[OutgoingMessage]:
    return messages if signer is None else signer.sign_messages(messages)


class ControlVerifier:
    """The gateway side: checks a command's signature, key and age before it is obeyed.

    ``keys`` maps key ids to keys (two while a key rotates)."""

    def __init__(
        self,
        keys: Mapping[str, bytes],
        max_age_s: float = DEFAULT_MAX_AGE_S,
        max_skew_s: float = DEFAULT_MAX_SKEW_S,
    ) -> None:
        if not keys:
            raise ValueError("a verifier needs at least one key")
        self._keys = dict(keys)
        self.max_age_ms = int(max_age_s * 1000)
        self.max_skew_ms = int(max_skew_s * 1000)

    def __repr__(self) -> str:
        return f"ControlVerifier(key_ids={sorted(self._keys)!r})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ControlVerifier | None:
        loaded = load_key(environ)
        return None if loaded is None else cls({loaded[0]: loaded[1]})

    def verify(self, value: bytes, now_ms: int | None = None) -> dict[str, Any]:
        """The command as a dict when it is signed by a known key and fresh; :class:`RejectedCommand` otherwise."""
        if len(value) > MAX_COMMAND_BYTES:
            raise RejectedCommand("malformed", f"over {MAX_COMMAND_BYTES} bytes")
        try:
            command = json.loads(value)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise RejectedCommand("malformed", "not JSON") from None
        if not isinstance(command, dict):
            raise RejectedCommand("malformed", "not a JSON object")
        signature = command.get("signature")
        if signature is None:
            raise RejectedCommand("unsigned", "the command carries no signature")
        if not isinstance(signature, dict):
            raise RejectedCommand("malformed", "signature is not an object")
        kid, ts, sig, alg = signature.get("kid"), signature.get("ts"), signature.get("sig"), signature.get("alg")
        if alg != ALGORITHM or not isinstance(kid, str) or not isinstance(sig, str):
            raise RejectedCommand("malformed", "signature needs alg HMAC-SHA256, kid and sig")
        if not isinstance(ts, int) or isinstance(ts, bool):
            raise RejectedCommand("malformed", "signature ts is not an integer")
        key = self._keys.get(kid)
        if key is None:
            raise RejectedCommand("unknown_key", "signed with a key this gateway does not hold")
        if not hmac.compare_digest(_mac(key, kid, ts, command).encode(), sig.encode("utf-8", "replace")):
            raise RejectedCommand("bad_signature", "the signature does not match the command")
        now = int(time.time() * 1000) if now_ms is None else now_ms
        if now - ts > self.max_age_ms:
            raise RejectedCommand("stale", f"signed {(now - ts) // 1000} s ago (limit {self.max_age_ms // 1000} s)")
        if ts - now > self.max_skew_ms:
            raise RejectedCommand("future", f"signed {(ts - now) // 1000} s in the future")
        return command
