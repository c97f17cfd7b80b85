"""One JSON ``POST`` for the HTTP notifiers (webhook, Alertmanager), standard library only.

A non-2xx answer, a refused connection or a timeout raises
:class:`~agentwatch.notify.spec.NotifyError` (with ``Retry-After`` on 429/503). The URL is never
part of the message: webhook URLs carry secrets (``?token=``, Slack/Discord paths).
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from typing import Final

from agentwatch.incident_links import incident_link as public_incident_link
from agentwatch.notify.spec import NotifyError

MAX_RESPONSE_BYTES: Final = 4096


def check_url(url: str, what: str) -> str:
    """``url`` if it is an absolute http(s) URL, else ``ValueError`` naming ``what`` (not the URL)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in url for c in " <>|\n\r\t"):
        raise ValueError(f"{what} must be an absolute http(s) URL")
    return url


def post_json(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - http(s) checked
            response.read(MAX_RESPONSE_BYTES)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        retry_after = _retry_after(exc.headers.get("Retry-After")) if exc.code in (429, 503) else None
        raise NotifyError(f"HTTP {exc.code}", retry_after) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NotifyError(f"unreachable: {type(reason).__name__}: {str(reason)[:200]}") from None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def incident_link(base: str | None, incident_id: str) -> str | None:
    """The incident's page: ``base`` with ``{incident_id}`` filled in, or ``<base>/<incident_id>``;
    without ``base``, the incident on serve's API when ``AGENTWATCH_PUBLIC_URL`` is set
    (:func:`agentwatch.incident_links.incident_link`, the link the approval messages use).

    >>> incident_link("https://soc.example/agentwatch/incidents/", "inc-1")
    'https://soc.example/agentwatch/incidents/inc-1'
    >>> incident_link("https://soc.example/i?id={incident_id}", "inc-1")
    'https://soc.example/i?id=inc-1'
    """
    if not base:
        return public_incident_link(incident_id)
    quoted = urllib.parse.quote(incident_id, safe="")
    if "{incident_id}" in base:
        return base.replace("{incident_id}", quoted)
    return f"{base.rstrip('/')}/{quoted}"
