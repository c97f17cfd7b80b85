"""Where people open an incident: ``serve``'s public URL (``AGENTWATCH_PUBLIC_URL``).

Slack messages and notifications link an incident to ``<url>/v1/incidents/<id>``
(:mod:`agentwatch.observe.incident_api`) instead of naming files on the server.
"""

from __future__ import annotations

import functools
import logging
import os
import urllib.parse
from collections.abc import Mapping

log = logging.getLogger(__name__)

PUBLIC_URL_ENV = "AGENTWATCH_PUBLIC_URL"


def public_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``AGENTWATCH_PUBLIC_URL`` (where people reach ``serve``), when it is an http(s) URL.

    >>> public_url({"AGENTWATCH_PUBLIC_URL": "https://agentwatch.example.com/"})
    'https://agentwatch.example.com'
    >>> public_url({"AGENTWATCH_PUBLIC_URL": "javascript:alert(1)"}) is None
    True
    """
    raw = (os.environ if environ is None else environ).get(PUBLIC_URL_ENV, "").strip()
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in raw for c in "<>| \n"):
        if raw:
            _warn_unusable(raw[:80])
        return None
    return raw.rstrip("/")


@functools.cache
def _warn_unusable(raw: str) -> None:
    log.warning("%s=%r is not an http(s) URL; incident links are left out", PUBLIC_URL_ENV, raw)


def incident_link(incident_id: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The incident's URL on ``serve``'s API, or ``None`` without ``AGENTWATCH_PUBLIC_URL``.

    >>> incident_link("inc-1", {"AGENTWATCH_PUBLIC_URL": "https://aw.example.com"})
    'https://aw.example.com/v1/incidents/inc-1'
    """
    base = public_url(environ)
    return None if base is None else f"{base}/v1/incidents/{urllib.parse.quote(incident_id, safe='')}"
