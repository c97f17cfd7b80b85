"""``/v1/incidents`` and ``/v1/incidents/<id>`` on ``serve``: incidents for a SOC's tools.

Authenticated like every ``/v1`` route (``Authorization: Bearer <AGENTWATCH_API_TOKEN>``).
The list is newest first and paginated by an opaque cursor (keyset on opened time and id,
so a page never repeats or skips an incident while new ones open); ``status`` and
``severity`` filter it. The detail is what ``agentwatch incidents show --json`` prints:
alerts, journal, playbook steps, timeline, approvals.

Every string an agent could have written — identifiers included — is secret-redacted
before it leaves the process (:func:`agentwatch.respond.redaction.redact_obj`); the store
keeps the forensic original. Incident links in Slack point here
(:func:`agentwatch.incident_links.incident_link`, from ``AGENTWATCH_PUBLIC_URL``).
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import Mapping
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from agentwatch.approve.views import annotate_list, approval_rows
from agentwatch.events.audit_event import rfc3339_ms
from agentwatch.respond.incident_queries import list_incidents, load_incident
from agentwatch.respond.redaction import redact_obj
from agentwatch.store import incidents

STATUSES = ("open", "contained", "resolved")
SEVERITIES = ("low", "medium", "high", "critical")
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
MAX_CURSOR = 400
MAX_INCIDENT_ID = 64


class BadQuery(ValueError):
    """A query parameter the API refuses (answered 400 with this message)."""


def parse_query(params: Mapping[str, str]) -> dict[str, Any]:
    """``status``, ``severity``, ``limit``, ``cursor`` of a list request, checked.

    >>> parse_query({"status": "open", "limit": "2"})["limit"]
    2
    >>> parse_query({"limit": "0"})
    Traceback (most recent call last):
    ...
    agentwatch.observe.incident_api.BadQuery: limit must be an integer from 1 to 200
    """
    unknown = set(params) - {"status", "severity", "limit", "cursor"}
    if unknown:
        raise BadQuery(f"unknown parameter {sorted(unknown)[0][:40]!r}; known: status, severity, limit, cursor")
    status, severity = params.get("status"), params.get("severity")
    if status is not None and status not in STATUSES:
        raise BadQuery(f"status must be one of {', '.join(STATUSES)}")
    if severity is not None and severity not in SEVERITIES:
        raise BadQuery(f"severity must be one of {', '.join(SEVERITIES)}")
    raw_limit = params.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise BadQuery(f"limit must be an integer from 1 to {MAX_LIMIT}")
    cursor = params.get("cursor")
    return {
        "status": status,
        "severity": severity,
        "limit": int(raw_limit),
        "after": decode_cursor(cursor) if cursor else None,
    }


def encode_cursor(opened_ms: int, incident_id: str) -> str:
    """The position after an incident, opaque to clients.

    >>> decode_cursor(encode_cursor(1_700_000_000_000, "inc-1"))
    (1700000000000, 'inc-1')
    """
    return base64.urlsafe_b64encode(msgspec.json.encode([opened_ms, incident_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    if len(cursor) > MAX_CURSOR:
        raise BadQuery("cursor too long; pass back the next_cursor a page gave")
    try:
        opened_ms, incident_id = msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, msgspec.DecodeError, ValueError, TypeError):
        raise BadQuery("malformed cursor; pass back the next_cursor a page gave") from None
    if not isinstance(opened_ms, int) or not isinstance(incident_id, str) or len(incident_id) > MAX_INCIDENT_ID:
        raise BadQuery("malformed cursor; pass back the next_cursor a page gave")
    return opened_ms, incident_id


def incident_page(conn: Connection, query: dict[str, Any], base_path: str = "/v1/incidents") -> dict[str, Any]:
    """One page of incidents (newest first), the total matching the filters, and the next cursor."""
    rows = list_incidents(conn, query["status"], query["limit"] + 1, severity=query["severity"], after=query["after"])
    more = len(rows) > query["limit"]
    rows = rows[: query["limit"]]
    annotate_list(conn, rows)
    count = select(func.count()).select_from(incidents)
    if query["status"]:
        count = count.where(incidents.c.status == query["status"])
    if query["severity"]:
        count = count.where(incidents.c.severity == query["severity"])
    total = conn.execute(count).scalar_one()
    items = []
    for row in rows:
        items.append(
            {
                **row,
                "opened": rfc3339_ms(row["opened_ms"]),
                "url": f"{base_path}/{urllib.parse.quote(row['incident_id'], safe='')}",
            }
        )
    next_cursor = encode_cursor(rows[-1]["opened_ms"], rows[-1]["incident_id"]) if more and rows else None
    return redact_obj(
        {
            "incidents": items,
            "count": len(items),
            "total": total,
            "next_cursor": next_cursor,
        }
    )


def incident_document(conn: Connection, incident_id: str) -> dict[str, Any]:
    """The whole incident, redacted (``KeyError`` if unknown)."""
    if not incident_id or len(incident_id) > MAX_INCIDENT_ID:
        raise KeyError(incident_id)
    record = load_incident(conn, incident_id)
    return redact_obj({**msgspec.to_builtins(record), "approvals": approval_rows(conn, incident_id)})
