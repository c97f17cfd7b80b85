"""The append-only audit log: every decision and action, each record hash-chained.

Record *n* stores ``hash = SHA-256(prev_hash ‖ canonical JSON of (seq, ts_ms, actor,
action, subject, data))`` with ``prev_hash`` the hash of record *n − 1* (32 zero bytes
for the first). Editing, deleting or reordering any record breaks the chain from that
point on, which :func:`verify_chain` reports by sequence number.

Append inside the caller's transaction so the record commits (or not) with the change
it describes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine

from agentwatch.store import audit_log

GENESIS = bytes(32)
_canonical = msgspec.json.Encoder(order="sorted")
_ADVISORY_LOCK_ID = 0x61677477  # "agtw": serialises appends across PostgreSQL writers


def record_hash(prev_hash: bytes, seq: int, ts_ms: int, actor: str, action: str, subject: str,
                data: dict[str, Any]) -> bytes:
    body = _canonical.encode([seq, ts_ms, actor, action, subject, data])
    return hashlib.sha256(prev_hash + body).digest()


def append(conn: Connection, actor: str, action: str, subject: str, data: dict[str, Any] | None = None,
           ts_ms: int | None = None) -> int:
    """Append one record in ``conn``'s transaction; return its sequence number."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
    data = msgspec.json.decode(_canonical.encode(data or {}))  # what the database will give back
    ts_ms = int(time.time() * 1000) if ts_ms is None else ts_ms
    last = conn.execute(select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)).first()
    seq, prev = (1, GENESIS) if last is None else (last.seq + 1, bytes(last.hash))
    digest = record_hash(prev, seq, ts_ms, actor, action, subject, data)
    conn.execute(audit_log.insert().values(seq=seq, ts_ms=ts_ms, actor=actor, action=action, subject=subject,
                                           data=data, prev_hash=prev, hash=digest))
    return seq


@dataclass(slots=True)
class ChainVerdict:
    ok: bool
    records: int
    problem: str | None = None
    seq: int | None = None


def verify_chain(engine: Engine) -> ChainVerdict:
    """Walk the whole log; the first record that does not chain is reported."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    with engine.connect() as conn:
        for row in conn.execute(select(audit_log).order_by(audit_log.c.seq)):
            count += 1
            if row.seq != expected_seq:
                return ChainVerdict(False, count, f"record {expected_seq} is missing (next is {row.seq})", expected_seq)
            if bytes(row.prev_hash) != prev:
                return ChainVerdict(False, count, f"record {row.seq} does not point at record {row.seq - 1}", row.seq)
            digest = record_hash(prev, row.seq, row.ts_ms, row.actor, row.action, row.subject, row.data)
            if digest != bytes(row.hash):
                return ChainVerdict(False, count, f"record {row.seq} ({row.action} on {row.subject}) was altered",
                                    row.seq)
            prev = digest
            expected_seq += 1
    return ChainVerdict(True, count)
