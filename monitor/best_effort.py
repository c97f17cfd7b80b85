"""Steps the consume loop takes on the side — metrics, estimates, lag — that must never stop it.

Such a step reads state an agent shaped (a session-memory estimate pickles recent events),
or asks the broker something while it may be away. If it raises, its figure is skipped
this time: the failure is counted in ``agentwatch_pipeline_best_effort_failures_total{step}``
and logged with its traceback once, then at most once a minute per step with the count,
so a step failing on every batch cannot flood the log either.

>>> best_effort("doctest", lambda: 1 // 0, default=-1)
-1
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final, TypeVar

from agentwatch.observe import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Least time between two log lines about the same failing step.
LOG_EVERY_S: Final = 60.0

_lock = threading.Lock()
_last_logged: dict[str, float] = {}
_unlogged: dict[str, int] = {}


def best_effort(step: str, fn: Callable[[], T], default: T) -> T:
    """``fn()``, or ``default`` if it raises; ``step`` names it in the metric and the log (a closed set)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a side step must not stop the loop; counted and logged below
        failed(step, exc)
        return default


def failed(step: str, exc: BaseException) -> None:
    """Count a failure of ``step`` and log it, rate-limited."""
    metrics.BEST_EFFORT_FAILURES.labels(step).inc()
    now = time.monotonic()
    with _lock:
        last = _last_logged.get(step)
        if last is not None and now - last < LOG_EVERY_S:
            _unlogged[step] = _unlogged.get(step, 0) + 1
            return
        _last_logged[step] = now
        skipped = _unlogged.pop(step, 0)
    if last is None:
        log.warning("%s failed and was skipped (the loop carries on): %s", step, exc, exc_info=exc)
    else:
        log.warning("%s failed again (%d more since the last report; skipped): %s", step, skipped + 1, exc)
