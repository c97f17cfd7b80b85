"""Anchoring the audit chain's head outside the store, so cutting off its newest records shows.

A hash chain proves every record it holds is unaltered and in order, but not that
records were not removed from its *end*: delete the newest and what is left still
verifies. Whoever kept an older head can tell (``agentwatch audit verify --expect-head``),
so the monitor publishes the head on a timer to two places the store's administrators
do not control:

* a log line (logger ``agentwatch.audit_anchor``, always at INFO and shown by the CLI
  whatever ``-v``), for the log pipeline to keep;
* a record on the anchor topic (``[monitor] audit_anchor_topic``, key ``audit-head``),
  JSON ``{"head": "SEQ:HEX", "seq": …, "anchored_ms": …}``.

Only a head that moved since the last anchor is published. Anchoring is best effort:
a failure is counted in ``agentwatch_pipeline_best_effort_failures_total{step="audit_anchor"}``
and logged, never raised into the consume loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

import msgspec
from sqlalchemy.engine import Engine

from agentwatch.best_effort import best_effort
from agentwatch.respond.audit_log import chain_head, format_head

#: The logger anchors go to; :func:`agentwatch.log_format.install` shows it at INFO.
LOGGER_NAME: Final = "agentwatch.audit_anchor"
ANCHOR_KEY: Final = b"audit-head"

log = logging.getLogger(LOGGER_NAME)

#: ``send(topic, key, value)``; raises if the record cannot be handed to Kafka.
Send = Callable[[str, bytes, bytes], object]


class AnchorRecord(msgspec.Struct, frozen=True):
    head: str
    seq: int
    anchored_ms: int


class AuditAnchor:
    """Publishes the chain's head every ``every_s`` seconds when it moved (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        topic: str,
        every_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.topic = topic
        self.every_s = every_s
        self.clock = clock
        self._next = 0.0
        self._last: tuple[int, bytes] | None = None
        self.published = 0

    def maybe_anchor(self, send: Send | None) -> None:
        """Anchor if the timer is due; never raises."""
        now = self.clock()
        if now < self._next:
            return
        self._next = now + self.every_s
        best_effort("audit_anchor", lambda: self.anchor(send), default=None)

    def anchor(self, send: Send | None) -> str | None:
        """Publish the head now if it moved; return it (``None``: empty chain or unchanged). May raise."""
        head = chain_head(self.engine)
        if head is None or head == self._last:
            return None
        text = format_head(*head)
        log.info("audit head %s", text)
        if send is not None:
            record = AnchorRecord(head=text, seq=head[0], anchored_ms=int(time.time() * 1000))
            send(self.topic, ANCHOR_KEY, msgspec.json.encode(record))
        self._last = head
        self.published += 1
        return text
