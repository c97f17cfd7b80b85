"""The one retry delay every retry loop uses: exponential from ``base``, capped at ``cap``.

Callers keep their own ``base`` and ``cap`` (and their own unit: the store-scheduled retries
multiply by 1000 for milliseconds):

==========================================================  ======  =======
retry                                                       base    cap
==========================================================  ======  =======
responder steps (``next_attempt_ms``)                       1 s     60 s
approved gated actions (approval executor)                  1 s     60 s
the Slack outbox (``slack_next_ms``; ``Retry-After`` wins)  2 s     300 s
one Slack Web API call, inside the call                     0.25 s  none
Kafka delivery and commit (``kafka_runner``)                0.25 s  30 s
the responder's worker after a failed round                 0.5 s   30 s
a notifier's delivery (``notifier_cursors``; configurable)  2 s     300 s
the notification worker after a failed round                0.5 s   30 s
==========================================================  ======  =======
"""

from __future__ import annotations

import random
from collections.abc import Callable

#: The exponent stops growing here: ``2 ** 64`` times any sensible base is past any cap.
MAX_EXPONENT = 64


def delay(
    attempt: int, base: float, cap: float, jitter: float = 0.0, rand: Callable[[], float] = random.random
) -> float:
    """Seconds (or whatever unit ``base`` is in) to wait before retry number ``attempt``.

    ``min(cap, base * 2 ** attempt)``: attempt 0 waits ``base``; negative attempts count as 0.
    ``jitter`` (0…1) takes up to that fraction off at random (``rand`` in ``[0, 1)``), so that
    processes that failed together do not retry together; 0, the default, is deterministic.

    >>> [delay(n, 1.0, 60.0) for n in range(8)]
    [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    >>> delay(10**9, 0.25, 30.0)  # no overflow: still the cap
    30.0
    >>> delay(-1, 0.5, 30.0)
    0.5
    >>> delay(3, 1.0, 60.0, jitter=0.5, rand=lambda: 0.5)  # 8 s, a quarter taken off
    6.0
    """
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter must be within 0..1, not {jitter}")
    exponent = min(max(attempt, 0), MAX_EXPONENT)
    value = min(cap, base * 2.0**exponent)
    return value * (1.0 - jitter * rand()) if jitter else value
