"""``webhook``: every incident change as a JSON ``POST`` signed the Standard Webhooks way.

Headers (https://www.standardwebhooks.com/, so receivers can verify with any of its libraries)::

    webhook-id: msg_<incident_id>_<seq>      # the same on every retry: de-duplicate on it
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>

The secret is ``whsec_<base64 key>`` (``secret_env`` / ``secret_file``, never in the config).
The body is ``{"type": "incident.<change>", "timestamp": …, "data": {…}}``.

>>> signature("whsec_" + base64.b64encode(b"k" * 24).decode(), "msg_1", 1700000000, b'{"a":1}')
'v1,bYr7Rz93bX8WqNI5XVthzq7NE/LcYrDkos9dgSLYHOc='
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Any

import msgspec

from agentwatch.events.audit_event import rfc3339_ms
from agentwatch.notify.http import check_url, incident_link, post_json
from agentwatch.notify.spec import Notification, Notifier, NotifierContext, NotifierParams, secret

SECRET_PREFIX = "whsec_"


def secret_key(value: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret (the prefix is optional, the rest base64)."""
    try:
        key = base64.b64decode(value.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret must be whsec_<base64>") from None
    if len(key) < 16:
        raise ValueError("the webhook secret is too short (at least 16 bytes of key)")
    return key


def signature(secret_value: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = secret_key(secret_value)
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookParams(NotifierParams, kw_only=True, forbid_unknown_fields=True):
    url_env: str | None = None  #: the receiver's URL (it may carry a token: a secret, never logged)
    url_file: str | None = None
    secret_env: str | None = "AGENTWATCH_NOTIFY_WEBHOOK_SECRET"
    secret_file: str | None = None
    incident_url: str | None = None  #: base URL of the incident pages (``…/{incident_id}``)
    timeout_s: float = 10.0


class SignedWebhook(Notifier):
    name = "webhook"
    params_type = WebhookParams

    def __init__(self, params: WebhookParams, context: NotifierContext) -> None:
        self.params = params
        self.url = check_url(secret(params, "url", context) or "", "webhook url")
        self.secret = secret(params, "secret", context) or ""
        secret_key(self.secret)  # fails at start-up, not at the first incident
        if params.incident_url:
            check_url(params.incident_url, "incident_url")
        self.clock = time.time

    def body(self, note: Notification) -> bytes:
        data: dict[str, Any] = msgspec.to_builtins(note)
        data["incident_url"] = incident_link(self.params.incident_url, note.incident_id)
        return msgspec.json.encode(
            {"type": f"incident.{note.change}", "timestamp": rfc3339_ms(note.ts_ms), "data": data}
        )

    def send(self, note: Notification, state: dict[str, Any]) -> dict[str, Any]:
        body = self.body(note)
        msg_id = f"msg_{note.incident_id}_{note.seq}"
        timestamp = int(self.clock())
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(self.secret, msg_id, timestamp, body),
        }
        post_json(self.url, body, headers, self.params.timeout_s)
        return state
