"""``agentwatch replay``: a file of messages through the same pipeline ``run`` uses.

One line is one message in the chosen format (a native event, or a whole OTLP JSON
batch). Lines are processed in file order; when the file ends every live session is
closed, so window detectors get their last look. A line with rejected records is
written as one dead letter (the same record ``run`` sends to ``agentwatch.dlq``), with
the line number as the offset.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import msgspec

from agentwatch.detect.alerts import Alert, public_alert
from agentwatch.detect.pipeline import Pipeline
from agentwatch.events import dead_letter
from agentwatch.formats import get_decoder

_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class ReplayStats:
    lines: int = 0
    events: int = 0
    alerts: int = 0
    dead_letters: int = 0
    seconds: float = 0.0


def replay_file(
    events_path: Path,
    alerts_out: BinaryIO,
    pipeline: Pipeline,
    fmt: str = "native",
    dead_letters_out: BinaryIO | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayStats:
    """Process ``events_path``; write alert lines to ``alerts_out``; return counts."""
    decoder = get_decoder(fmt)
    received_ms = int(os.stat(events_path).st_mtime * 1000)
    stats = ReplayStats()
    started = time.perf_counter()
    origin_topic = f"file:{events_path.name}"

    def write(alerts: list[Alert]) -> None:
        for alert in alerts:
            alerts_out.write(_encoder.encode(public_alert(alert)) + b"\n")
        stats.alerts += len(alerts)

    with open(events_path, "rb") as source:
        for number, line in enumerate(source, start=1):
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            stats.lines += 1
            result = pipeline.ingest(raw, decoder, received_ms)
            stats.events += len(result.events)
            if result.alerts:
                write(result.alerts)
            if result.errors:  # one dead letter per line, its bad records summarised
                stats.dead_letters += 1
                if dead_letters_out is not None:
                    origin = dead_letter.Origin(
                        topic=origin_topic, partition=0, offset=number, timestamp_ms=received_ms
                    )
                    letter = dead_letter.dead_letter(raw, result.errors, fmt, origin, accepted=len(result.events))
                    dead_letters_out.write(dead_letter.encode(letter) + b"\n")
            if on_progress is not None and number % 5000 == 0:
                on_progress(source.tell())
    write(pipeline.drain())
    stats.seconds = time.perf_counter() - started
    return stats
