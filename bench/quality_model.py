"""What a corpus adapter hands the quality bench: labelled sessions, one message each.

An :class:`Item` is the unit that is scored — one Atomic Red Team test, one tldr example
command, the benign context around an attack — and names its *own* events by position in
the session's message. After decoding, position *i* is the *i*-th decoded event, so the
bench can tell whether an alert names an item's own events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

#: ``attack``: recall is measured on it; ``benign``: false positives are; ``context``:
#: benign steps around an attack, reported only as a diagnostic.
ITEM_KINDS: Final = ("attack", "benign", "context")


@dataclass(frozen=True, slots=True)
class Item:
    key: str
    kind: str
    positions: tuple[int, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    #: Where time to detect counts from: the first record of the action itself (e.g. the
    #: ``tool_result`` after its ``tool_decision``); default the first own position.
    anchor: int | None = None

    @property
    def start(self) -> int:
        return self.anchor if self.anchor is not None else min(self.positions)

    def __post_init__(self) -> None:
        if self.kind not in ITEM_KINDS:
            raise ValueError(f"item kind {self.kind!r} is not one of {ITEM_KINDS}")


@dataclass(frozen=True, slots=True)
class LabelledSession:
    """One session: its id, the message (format of the corpus) and the items in it."""

    session_id: str
    message: bytes
    events: int
    items: list[Item]
    #: ``message`` holds one record per line (native JSON events), each its own message on the wire
    lines: bool = False

    def messages(self) -> list[bytes]:
        """The messages the session is sent as: the one message, or one per line."""
        return self.message.split(b"\n") if self.lines else [self.message]
