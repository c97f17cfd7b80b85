"""The append-only audit log: every decision and action, each record sealed and chained.

Record *n* stores ``hash = HMAC-SHA256(key, prev_hash ‖ canonical JSON of (seq, ts_ms,
actor, action, subject, data))`` with ``prev_hash`` the hash of record *n − 1* (32 zero
bytes for the first). Editing, deleting or reordering any record breaks the chain from
that point on, which :func:`verify_chain` reports by sequence number — and because the
seal is keyed, someone who can write to the store but does not hold the key cannot
recompute the chain after an edit.

**The key lives outside the store**, found in this order (:func:`load_key`):

1. ``$AGENTWATCH_AUDIT_KEY`` — the key itself (at least 32 characters);
2. ``$AGENTWATCH_AUDIT_KEY_FILE`` — a file holding it;
3. ``audit.key`` beside the SQLite database (the data directory by default) or, for
   other stores, in the configured data directory — generated (256 random bits, mode
   0600) by the first append that needs it.

Production deployments keep the key where the store's administrators cannot read it
(option 1 or 2); every process that appends or verifies must use the same key.

Chains written before the key existed were sealed with plain SHA-256 (``record_hash``).
:func:`verify_chain` never accepts such records — anyone with write access could forge
them — and names them; :func:`seal_legacy` (``agentwatch audit seal``), run once after
upgrading, checks the unkeyed part as it stands and re-seals the whole chain under the key.

Append inside the caller's transaction so the record commits (or not) with the change
it describes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec
from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection, Engine

from agentwatch.errors import ConfigError
from agentwatch.respond.redaction import redact
from agentwatch.store import audit_log

GENESIS = bytes(32)
ALGORITHM: Final = "hmac-sha256"
KEY_ENV: Final = "AGENTWATCH_AUDIT_KEY"
KEY_FILE_ENV: Final = "AGENTWATCH_AUDIT_KEY_FILE"
KEY_FILE_NAME: Final = "audit.key"
MIN_KEY_CHARS: Final = 32
_canonical = msgspec.json.Encoder(order="sorted")
_ADVISORY_LOCK_ID = 0x61677477  # "agtw": serialises appends across PostgreSQL writers

log = logging.getLogger(__name__)
#: Caches for the per-append key lookup: key files by path (with the stat they were read
#: at) and, for non-SQLite stores, the configured data directory.
_KEY_FILES: dict[str, tuple[tuple[int, int, int], AuditKey]] = {}
_DATA_DIRS: dict[tuple[str | None, str | None, str], Path] = {}


class AuditKeyError(ConfigError):
    """The audit key is configured but unusable (too short, unreadable)."""


@dataclass(frozen=True, slots=True)
class AuditKey:
    """The HMAC key and where it came from (``source`` names the variable or the file)."""

    secret: bytes = field(repr=False)
    source: str

    @property
    def key_id(self) -> str:
        """A fingerprint that names the key in records and messages without revealing it."""
        return hashlib.sha256(b"agentwatch audit key id\x00" + self.secret).hexdigest()[:16]


def key_file_for(engine: Engine) -> Path:
    """Where the generated key lives when none is configured (see the module docstring)."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        return Path(str(engine.url.database)).resolve().parent / KEY_FILE_NAME
    where = (os.environ.get("AGENTWATCH_CONFIG"), os.environ.get("AGENTWATCH_DATA_DIR"), os.getcwd())
    found = _DATA_DIRS.get(where)
    if found is None:
        from agentwatch.config import load_config

        found = _DATA_DIRS[where] = load_config().data_dir.resolve()
    return found / KEY_FILE_NAME


def load_key(engine: Engine, *, create: bool = True) -> AuditKey | None:
    """The audit key for ``engine``'s chain; generated when ``create`` and none exists.

    ``None`` only when nothing is configured, no key file exists and ``create`` is false.
    """
    configured = os.environ.get(KEY_ENV)
    if configured:
        return AuditKey(_checked(configured.strip(), f"${KEY_ENV}"), f"${KEY_ENV}")
    path_text = os.environ.get(KEY_FILE_ENV)
    path = Path(path_text) if path_text else key_file_for(engine)
    if path.is_file():
        return _read_key(path)
    if path_text:
        raise AuditKeyError(
            f"${KEY_FILE_ENV} names {path}, which does not exist; create it with a random key "
            f"of at least {MIN_KEY_CHARS} characters"
        )
    if not create:
        return None
    return _generate_key(path)


def _checked(value: str, where: str) -> bytes:
    if len(value) < MIN_KEY_CHARS:
        raise AuditKeyError(
            f"the audit key in {where} is {len(value)} characters; it needs at least "
            f"{MIN_KEY_CHARS} (e.g. `openssl rand -hex 32`)"
        )
    return value.encode("utf-8")


def _read_key(path: Path) -> AuditKey:
    """The key in ``path``, re-read only when the file changed (every append asks)."""
    try:
        info = path.stat()
        signature = (info.st_ino, info.st_size, info.st_mtime_ns)
        cached = _KEY_FILES.get(str(path))
        if cached is not None and cached[0] == signature:
            return cached[1]
        value = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditKeyError(f"cannot read the audit key {path}: {exc}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the audit key %s is readable by others (mode %o); chmod 600 it", path, stat.S_IMODE(info.st_mode))
    key = AuditKey(_checked(value, str(path)), str(path))
    _KEY_FILES[str(path)] = (signature, key)
    return key


def _generate_key(path: Path) -> AuditKey:
    """Write a new random key to ``path`` (0600) unless another process was first; use the winner's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = None
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (secrets.token_hex(32) + "\n").encode())
        os.fsync(fd)
        os.close(fd)
        fd = None
        try:
            os.link(tmp, path)  # atomic, and never replaces a key another process wrote
            log.warning(
                "generated the audit key %s; keep it away from the store's administrators (or set $%s / $%s)",
                path,
                KEY_ENV,
                KEY_FILE_ENV,
            )
        except FileExistsError:
            pass
    finally:
        if fd is not None:
            os.close(fd)
        tmp.unlink(missing_ok=True)
    return _read_key(path)


def record_hash(
    prev_hash: bytes, seq: int, ts_ms: int, actor: str, action: str, subject: str, data: dict[str, Any]
) -> bytes:
    """The unkeyed seal of chains written before the audit log was keyed (verification of legacy records)."""
    body = _canonical.encode([seq, ts_ms, actor, action, subject, data])
    return hashlib.sha256(prev_hash + body).digest()


def record_mac(
    key: AuditKey, prev_hash: bytes, seq: int, ts_ms: int, actor: str, action: str, subject: str, data: dict[str, Any]
) -> bytes:
    """The keyed seal of one record: HMAC-SHA256 over the previous hash and the canonical record."""
    body = _canonical.encode([seq, ts_ms, actor, action, subject, data])
    return hmac.new(key.secret, prev_hash + body, hashlib.sha256).digest()


def append(
    conn: Connection,
    actor: str,
    action: str,
    subject: str,
    data: dict[str, Any] | None = None,
    ts_ms: int | None = None,
) -> int:
    """Append one record in ``conn``'s transaction; return its sequence number."""
    key = load_key(conn.engine)
    assert key is not None  # create=True
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
    data = msgspec.json.decode(_canonical.encode(data or {}))  # what the database will give back
    ts_ms = int(time.time() * 1000) if ts_ms is None else ts_ms
    last = conn.execute(select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)).first()
    seq, prev = (1, GENESIS) if last is None else (last.seq + 1, bytes(last.hash))
    digest = record_mac(key, prev, seq, ts_ms, actor, action, subject, data)
    conn.execute(
        audit_log.insert().values(
            seq=seq, ts_ms=ts_ms, actor=actor, action=action, subject=subject, data=data, prev_hash=prev, hash=digest
        )
    )
    return seq


@dataclass(slots=True)
class ChainVerdict:
    ok: bool
    records: int
    problem: str | None = None
    seq: int | None = None
    #: ``SEQ:HEX`` of the newest record verified (:func:`format_head`); ``None`` for an empty chain.
    head: str | None = None


def format_head(seq: int, digest: bytes) -> str:
    """The head of the chain as users keep it: ``SEQ:HEX`` (the newest record's number and seal).

    >>> format_head(3, bytes(32))[:10]
    '3:00000000'
    """
    return f"{seq}:{digest.hex()}"


def parse_head(text_value: str) -> tuple[int | None, bytes]:
    """A kept head, ``SEQ:HEX`` or just ``HEX`` (64 hex digits); ``ValueError`` names what is wrong.

    >>> parse_head("7:" + "ab" * 32)[0]
    7
    """
    seq_text, _, hex_text = text_value.strip().rpartition(":")
    try:
        seq = int(seq_text) if seq_text else None
        digest = bytes.fromhex(hex_text)
    except ValueError:
        raise ValueError("a head is SEQ:HEX as `agentwatch audit verify` prints it") from None
    if len(digest) != 32 or (seq is not None and seq < 1):
        raise ValueError("a head is SEQ:HEX (64 hex digits) as `agentwatch audit verify` prints it")
    return seq, digest


def chain_head(engine: Engine) -> tuple[int, bytes] | None:
    """The newest record's ``(seq, hash)`` as stored (not verified): what an anchor publishes."""
    with engine.connect() as conn:
        last = conn.execute(select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)).first()
    return None if last is None else (int(last.seq), bytes(last.hash))


def verify_chain(engine: Engine, key: AuditKey | None = None, expect_head: str | None = None) -> ChainVerdict:
    """Walk the whole log; the first record that does not chain, or is not sealed with
    ``key`` (default: :func:`load_key`, never generated here), is reported.

    ``expect_head`` is a head kept from an earlier verify or anchor (``SEQ:HEX``): the
    chain must still hold that record with that seal, or its newest records were cut
    off (or the chain rewritten) since — which a chain alone cannot show.
    """
    expected = parse_head(expect_head) if expect_head is not None else None
    if key is None:
        key = load_key(engine, create=False)
    prev = GENESIS
    expected_seq = 1
    count = 0
    anchored = expected is None
    with engine.connect() as conn:
        for row in conn.execute(select(audit_log).order_by(audit_log.c.seq)):
            count += 1
            if key is None:
                return ChainVerdict(
                    False,
                    count,
                    f"no audit key to verify with: {key_file_for(engine)} does not "
                    f"exist and neither ${KEY_ENV} nor ${KEY_FILE_ENV} is set",
                    None,
                )
            if row.seq != expected_seq:
                return ChainVerdict(False, count, f"record {expected_seq} is missing (next is {row.seq})", expected_seq)
            if bytes(row.prev_hash) != prev:
                return ChainVerdict(False, count, f"record {row.seq} does not point at record {row.seq - 1}", row.seq)
            fields = (row.seq, row.ts_ms, row.actor, row.action, row.subject, row.data)
            digest = record_mac(key, prev, *fields)
            if digest != bytes(row.hash):
                what = f"record {row.seq} ({row.action} on {redact(row.subject)})"
                if record_hash(prev, *fields) == bytes(row.hash):
                    return ChainVerdict(
                        False,
                        count,
                        f"{what} is sealed without the key: written before the audit "
                        "log was keyed (run `agentwatch audit seal` once after "
                        "upgrading) or rewritten by someone who does not hold it",
                        row.seq,
                    )
                return ChainVerdict(
                    False,
                    count,
                    f"{what} was altered, or sealed with another key (this one: {key.key_id} from {key.source})",
                    row.seq,
                )
            if expected is not None and digest == expected[1] and expected[0] in (None, row.seq):
                anchored = True
            prev = digest
            expected_seq += 1
    head = format_head(expected_seq - 1, prev) if count else None
    if not anchored:
        assert expected is not None and expect_head is not None
        kept_seq = expected[0]
        if kept_seq is not None and kept_seq > count:
            why = (
                f"the chain ends at record {count} but the head you kept is record {kept_seq}: "
                f"the newest {kept_seq - count} records were cut off"
            )
        else:
            why = "the head you kept is not in the chain: records were cut off or the chain was rewritten"
        problem = f"{why} (kept {expect_head.strip()[:80]}, now {head or 'empty'})"
        return ChainVerdict(False, count, problem, kept_seq, head)
    return ChainVerdict(True, count, head=head)


@dataclass(slots=True)
class SealResult:
    ok: bool
    resealed: int
    problem: str | None = None


def seal_legacy(engine: Engine, actor: str, now_ms: int | None = None) -> SealResult:
    """Re-seal a chain begun before the audit log was keyed: the one-time migration.

    The chain must be intact as it stands: records sealed with plain SHA-256 first, then
    (records appended since the upgrade) records sealed with the key, each pointing at the
    one before. Then every record is re-sealed with the key and an ``audit.sealed`` record
    notes it. Refused when the chain is broken, or when it holds an ``audit.sealed`` record
    without the key — a chain that was keyed once and rewritten since. Nothing to do (``ok``,
    0) when every record is already keyed.
    """
    key = load_key(engine)
    assert key is not None
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).all()
        prev, legacy, keyed_seen = GENESIS, 0, False
        for expected, row in enumerate(rows, start=1):
            fields = (row.seq, row.ts_ms, row.actor, row.action, row.subject, row.data)
            if row.seq != expected or bytes(row.prev_hash) != prev:
                return SealResult(
                    False,
                    0,
                    f"refused: the chain is broken at record {expected}; `agentwatch audit verify` names the problem",
                )
            if record_mac(key, prev, *fields) == bytes(row.hash):
                keyed_seen = True
            elif not keyed_seen and record_hash(prev, *fields) == bytes(row.hash):
                if row.action == "audit.sealed":
                    return SealResult(
                        False,
                        0,
                        f"refused: record {row.seq} (audit.sealed) is not sealed with the "
                        "key, so this chain was keyed once and rewritten since",
                    )
                legacy += 1
            else:
                return SealResult(False, 0, f"refused: record {row.seq} is altered or sealed with another key")
            prev = bytes(row.hash)
        if legacy == 0:
            return SealResult(True, 0)
        prev = GENESIS
        for row in rows:
            digest = record_mac(key, prev, row.seq, row.ts_ms, row.actor, row.action, row.subject, row.data)
            conn.execute(update(audit_log).where(audit_log.c.seq == row.seq).values(prev_hash=prev, hash=digest))
            prev = digest
        append(
            conn,
            actor,
            "audit.sealed",
            "audit_log",
            {"records": len(rows), "unkeyed": legacy, "algorithm": ALGORITHM, "key_id": key.key_id},
            now_ms,
        )
    log.warning("re-sealed %d audit records (%d unkeyed) under key %s", len(rows), legacy, key.key_id)
    return SealResult(True, len(rows))
