"""Input formats: raw message bytes → validated :class:`~agentwatch.events.audit_event.AuditEvent` s.

One message may hold several events (an OTLP batch) and several bad records; a
decoder returns both, so one bad record never costs its neighbours.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec

from agentwatch.errors import DecodeError
from agentwatch.events.audit_event import AuditEvent, parse_native


class DecodeResult(msgspec.Struct, gc=False):
    """What one raw message became: events, and the records that were rejected."""

    events: list[AuditEvent]
    errors: list[DecodeError]


#: ``decoder(raw, received_ms) -> DecodeResult``; ``received_ms`` is the broker (or file)
#: time, used only where a format carries no timestamp of its own.
Decoder = Callable[[bytes, int], DecodeResult]


def _native(raw: bytes, received_ms: int) -> DecodeResult:
    try:
        return DecodeResult([parse_native(raw)], [])
    except DecodeError as exc:
        return DecodeResult([], [exc])


def _otlp_json(raw: bytes, received_ms: int) -> DecodeResult:
    from agentwatch.formats.otlp_json import decode_otlp_json

    return decode_otlp_json(raw, received_ms)


def _otlp_proto(raw: bytes, received_ms: int) -> DecodeResult:
    from agentwatch.formats.otlp_proto import decode_otlp_proto

    return decode_otlp_proto(raw, received_ms)


def _otlp(raw: bytes, received_ms: int) -> DecodeResult:
    from agentwatch.formats.otlp_proto import decode_otlp

    return decode_otlp(raw, received_ms)


def _claude_hook(raw: bytes, received_ms: int) -> DecodeResult:
    from agentwatch.formats.claude_hook import decode_claude_hook

    return decode_claude_hook(raw, received_ms)


DECODERS: Final[dict[str, Decoder]] = {
    "native": _native,
    "otlp-json": _otlp_json,
    "otlp-proto": _otlp_proto,
    "otlp": _otlp,  # either of the two, told apart by the first byte (the Collector's Kafka exporter writes both)
    "claude-hook": _claude_hook,
}


#: Formats whose messages may be binary: a JSON-lines file cannot hold them (``replay``).
BINARY_FORMATS: Final = frozenset({"otlp-proto", "otlp"})


def get_decoder(name: str) -> Decoder:
    """The decoder for a format name; a clear error lists the known ones."""
    try:
        return DECODERS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(DECODERS)}") from None
