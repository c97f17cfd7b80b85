"""Joins for learned state, so that every monitor of a group converges to one baseline.

A detector shares its per-agent state through :meth:`~agentwatch.detect.detector_spec.Detector.export_learned`
and folds its peers' in with :meth:`~agentwatch.detect.detector_spec.Detector.merge_learned`. Each helper
here merges a peer's ``remote`` value into the ``local`` one *in place* as a join —
idempotent, commutative, associative (up to the caps) — and returns whether ``local``
holds something ``remote`` lacks, i.e. whether the merged result must be written back.

Counters merge with ``max``, not ``+``: a state is exchanged whole and merged again and
again, and only an idempotent merge can be applied any number of times. The price is an
undercount when two monitors learn the same agent at once (each count grows at the pace
of the faster of them, not of their sum) — a baseline that fills a little slower, never
one that counts an event twice.

>>> from collections import OrderedDict
>>> mine, theirs = OrderedDict.fromkeys(["a", "b"]), OrderedDict.fromkeys(["b", "c"])
>>> merge_lru(mine, theirs, cap=10), list(mine)
(True, ['c', 'a', 'b'])
>>> merge_lru(theirs, mine, cap=10), sorted(theirs)
(False, ['a', 'b', 'c'])
>>> counts = {"x": 3}
>>> merge_counts(counts, {"x": 5, "y": 1}, cap=10), counts
(False, {'x': 5, 'y': 1})
>>> better_of(4, 7, lambda: b"mine", b"theirs")
(True, False)
>>> better_of(7, 7, lambda: b"same", b"same")
(False, False)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)


def merge_lru(local: OrderedDict[Any, Any], remote: Mapping[Any, Any], cap: int) -> bool:
    """Union ``remote``'s keys into the LRU ``local`` (new ones as least recently used; their
    value from ``remote``), then trim ``local`` to ``cap``."""
    extra = any(key not in remote for key in local)
    new = [(key, value) for key, value in remote.items() if key not in local]
    for key, value in reversed(new):
        local[key] = value
        local.move_to_end(key, last=False)
    while len(local) > cap:
        local.popitem(last=False)
    return extra


def merge_counts(local: dict[K, int], remote: Mapping[K, int], cap: int) -> bool:
    """Per key, the larger count; keys new to ``local`` are added while it holds fewer than ``cap``."""
    extra = any(remote.get(key, 0) < count for key, count in local.items())
    for key, count in remote.items():
        have = local.get(key)
        if have is None:
            if len(local) < cap:
                local[key] = count
        elif count > have:
            local[key] = count
    return extra


def better_of(local_n: Any, remote_n: Any, local_bytes: Callable[[], bytes], remote_bytes: bytes) -> tuple[bool, bool]:
    """For state that cannot be merged (a model): the better-trained copy wins (``n``: how much
    it learned), ties broken by the serialised bytes (``local_bytes`` is called only then) so
    that every monitor picks the same copy.

    Returns ``(take_remote, local_has_extra)``.
    """
    if remote_n != local_n:
        return (True, False) if remote_n > local_n else (False, True)
    mine = local_bytes()
    if remote_bytes > mine:
        return True, False
    return False, mine != remote_bytes
