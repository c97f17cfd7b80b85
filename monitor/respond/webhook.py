"""Signed webhooks: the HTTP adapter behind gated actions (``revoke_credentials``, …).

The request is a JSON ``POST`` with

``X-Agentwatch-Timestamp: <unix seconds>``
``X-Agentwatch-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>``
``X-Agentwatch-Request-Id: <idempotency key>`` (the same on every retry of one action)

A receiver recomputes the HMAC over the raw body with the shared secret, compares in
constant time (:func:`verify`), rejects timestamps older than a few minutes, and
de-duplicates on the request id. Anything but a 2xx answer raises :class:`WebhookError`,
so the caller's retry and failure bookkeeping sees it.

>>> sig = sign(b"k", 1700000000, b'{"a":1}')
>>> sig
'sha256=1b6ad1bc9bf48c52ce01939866d5877c6cc4e87ddad27e16673cb8c4964394a3'
>>> verify(b"k", "1700000000", b'{"a":1}', sig, now_s=1700000010)
True
>>> verify(b"k", "1700000000", b'{"a":2}', sig, now_s=1700000010)
False
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from agentwatch.respond.action_spec import ActionParams

TIMESTAMP_HEADER = "X-Agentwatch-Timestamp"
SIGNATURE_HEADER = "X-Agentwatch-Signature"
REQUEST_ID_HEADER = "X-Agentwatch-Request-Id"
TOLERANCE_S = 300
MAX_RESPONSE_BYTES = 4096


class WebhookError(RuntimeError):
    """The receiver did not accept the request (non-2xx, refused connection, timeout)."""


@dataclass(slots=True, frozen=True)
class WebhookResult:
    status: int
    body: str


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` over ``{timestamp}.{body}``."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(
    secret: bytes,
    timestamp: str | None,
    body: bytes,
    signature: str | None,
    *,
    now_s: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """What a receiver checks: a fresh timestamp and a matching signature (constant time)."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    now_s = time.time() if now_s is None else now_s
    if abs(now_s - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def post_signed(
    url: str,
    payload: dict[str, Any],
    secret: bytes,
    *,
    request_id: str,
    timeout_s: float = 5.0,
    now_s: float | None = None,
) -> WebhookResult:
    """POST ``payload`` as JSON, signed; return the answer or raise :class:`WebhookError`."""
    if not url.startswith(("https://", "http://")):
        raise WebhookError(f"webhook URL must be http(s): {url[:80]!r}")
    body = msgspec.json.encode(payload)
    timestamp = int(time.time() if now_s is None else now_s)
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "agentwatch-webhook",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            REQUEST_ID_HEADER: request_id,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - scheme checked above
            return WebhookResult(response.status, response.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        detail = exc.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace")
        raise WebhookError(f"webhook answered HTTP {exc.code}: {detail[:200]}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebhookError(f"webhook unreachable: {reason}") from None


class WebhookConfig(ActionParams, kw_only=True):
    """A webhook action's parameters: ``url`` or ``url_env`` (one of them), and ``secret_env``."""

    url: str | None = None
    url_env: str | None = None
    secret_env: str
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0

    def __post_init__(self) -> None:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url and url_env")

    def resolve(self, environ: Mapping[str, str] | None = None) -> tuple[str, bytes]:
        """``(url, secret)`` now; :class:`WebhookError` naming what is missing."""
        env = os.environ if environ is None else environ
        url = self.url or env.get(self.url_env or "", "")
        if not url:
            raise WebhookError(f"environment variable {self.url_env} (the webhook URL) is not set")
        return url, _secret(self.secret_env, env)


class OptionalWebhookConfig(ActionParams, kw_only=True):
    """Like :class:`WebhookConfig` for actions whose webhook is an extra: unset means skipped."""

    webhook_url: str | None = None
    webhook_url_env: str | None = None
    secret_env: str | None = None
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0

    def __post_init__(self) -> None:
        if (self.webhook_url or self.webhook_url_env) and not self.secret_env:
            raise ValueError("a webhook needs secret_env")

    def resolve_optional(self, environ: Mapping[str, str] | None = None) -> tuple[str, bytes] | None:
        """``(url, secret)`` when a URL is configured (or its variable set), else ``None``."""
        env = os.environ if environ is None else environ
        url = self.webhook_url or env.get(self.webhook_url_env or "", "")
        if not url:
            return None
        return url, _secret(self.secret_env or "", env)


def _secret(name: str, env: Mapping[str, str]) -> bytes:
    value = env.get(name, "")
    if not value:
        raise WebhookError(f"environment variable {name} (the webhook secret) is not set")
    return value.encode()
