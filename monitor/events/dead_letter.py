"""Dead-letter records: the original bytes, why they were rejected, and where from.

The value is a JSON envelope so any Kafka tool can read it; the original message is
kept byte-for-byte (base64) so it can be fixed and re-driven, with a short escaped
preview for humans. Keyed like the input so the record lands beside its neighbours.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

import msgspec

from agentwatch.errors import DecodeError

PREVIEW_CHARS: Final = 200
#: Originals above this are kept truncated (with the digest of the whole) so the
#: dead letter itself stays under the broker's default 1 MiB message limit.
MAX_KEPT_BYTES: Final = 512 * 1024


class Origin(msgspec.Struct, kw_only=True, frozen=True):
    """Where a message came from: Kafka coordinates, or a file and line for replay."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int


class DeadLetter(msgspec.Struct, kw_only=True):
    reason: str
    detail: str
    format: str
    origin: Origin
    value_b64: str
    value_preview: str
    value_bytes: int
    value_sha256: str
    value_truncated: bool


_encoder = msgspec.json.Encoder()


def dead_letter(raw: bytes, error: DecodeError, fmt: str, origin: Origin) -> DeadLetter:
    """Build the record for ``raw`` rejected with ``error``."""
    preview = raw[:PREVIEW_CHARS].decode("utf-8", errors="backslashreplace")
    return DeadLetter(
        reason=error.reason,
        detail=error.detail,
        format=fmt,
        origin=origin,
        value_b64=base64.b64encode(raw[:MAX_KEPT_BYTES]).decode("ascii"),
        value_preview=preview.encode("unicode_escape").decode("ascii")[: PREVIEW_CHARS * 2],
        value_bytes=len(raw),
        value_sha256=hashlib.sha256(raw).hexdigest(),
        value_truncated=len(raw) > MAX_KEPT_BYTES,
    )


def encode(record: DeadLetter) -> bytes:
    return _encoder.encode(record)
