"""Dead-letter records: the original bytes, why they were rejected, and where from.

The value is a JSON envelope so any Kafka tool can read it; the original message is
kept byte-for-byte (base64) so it can be fixed and re-driven, with a short escaped
preview for humans. Keyed like the input so the record lands beside its neighbours.

One dead letter per *message*, however many of its records were bad: an OTLP batch of
10,000 bad records becomes one letter carrying the original once, with the rejections
summarised (a count per reason and the first :data:`MAX_DETAILS` details). ``reason`` is
the commonest reason, ``detail`` the first record's. A letter is thus at most about
``MAX_KEPT_BYTES`` × 4/3 plus a few KiB, so a batch's letters never outweigh its input.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections import Counter
from collections.abc import Sequence
from typing import Final

import msgspec

from agentwatch.errors import DecodeError

PREVIEW_CHARS: Final = 200
#: Originals above this are kept truncated (with the digest of the whole) so the
#: dead letter itself stays under the broker's default 1 MiB message limit.
MAX_KEPT_BYTES: Final = 512 * 1024
#: Rejected records described one by one in a letter; the rest are only counted.
MAX_DETAILS: Final = 10


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
    records_rejected: int = 1
    records_accepted: int = 0
    reasons: dict[str, int] = {}
    details: list[str] = []


_encoder = msgspec.json.Encoder()


def dead_letter(raw: bytes, errors: Sequence[DecodeError], fmt: str, origin: Origin, accepted: int = 0) -> DeadLetter:
    """The one record for message ``raw``, whose ``errors`` (at least one) were rejected.

    ``accepted`` is how many events the same message gave (they were processed).
    """
    counts = Counter(error.reason for error in errors)
    reason = max(counts, key=lambda r: (counts[r], r == errors[0].reason))
    preview = raw[:PREVIEW_CHARS].decode("utf-8", errors="backslashreplace")
    return DeadLetter(
        reason=reason,
        detail=errors[0].detail,
        format=fmt,
        origin=origin,
        value_b64=base64.b64encode(raw[:MAX_KEPT_BYTES]).decode("ascii"),
        value_preview=preview.encode("unicode_escape").decode("ascii")[: PREVIEW_CHARS * 2],
        value_bytes=len(raw),
        value_sha256=hashlib.sha256(raw).hexdigest(),
        value_truncated=len(raw) > MAX_KEPT_BYTES,
        records_rejected=len(errors),
        records_accepted=accepted,
        reasons=dict(counts),
        details=[f"{error.reason}: {error.detail}" for error in itertools.islice(errors, MAX_DETAILS)],
    )


def encode(record: DeadLetter) -> bytes:
    return _encoder.encode(record)
