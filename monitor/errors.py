"""Errors that are data: every rejection carries a reason from a small, closed set.

The reason is a Prometheus label value and a dead-letter field, so it must stay
bounded; the free-text ``detail`` explains the specific case to a human.
"""

from __future__ import annotations

from typing import Final

DECODE_REASONS: Final = frozenset(
    {
        "invalid_json",
        "invalid_utf8",
        "invalid_protobuf",
        "invalid_field",
        "missing_field",
        "oversized",
        "unsupported_format",
        "empty_batch",
    }
)


class DecodeError(ValueError):
    """An input message that cannot become audit events; it goes to the DLQ."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in DECODE_REASONS:
            raise ValueError(f"unknown decode reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail[:1000]


class ConfigError(ValueError):
    """Operator configuration that cannot be used; raised at start-up, never mid-stream."""


class PluginLoadError(ConfigError):
    """A registered plugin that cannot be imported or breaks its contract."""
