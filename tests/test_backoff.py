"""One retry delay for every retry loop (``agentwatch.backoff.delay``), and no loop with its own formula."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentwatch import backoff

ROOT = Path(__file__).resolve().parent.parent
#: What a hand-written exponential backoff looks like: ``2 ** n`` / ``2**n`` or doubling a delay.
FORMULA = re.compile(r"\b2\s*\*\*\s*[A-Za-z_(]|\b(?:delay|backoff|wait)\w*\s*\*=\s*2\b|\*\s*2\)\s*$")


@pytest.mark.parametrize(
    ("base", "cap", "expected"),
    [
        (1.0, 60.0, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]),  # responder steps, approval executor (× 1000 ms)
        (2.0, 300.0, [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),  # the Slack outbox (× 1000 ms)
        (0.25, 30.0, [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]),  # kafka_runner delivery and commit
        (0.5, 30.0, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]),  # the responder's worker after failed rounds
    ],
)
def test_the_call_sites_schedules_are_the_old_formulas(base: float, cap: float, expected: list[float]) -> None:
    assert [backoff.delay(n, base, cap) for n in range(8)] == expected
    assert [backoff.delay(n, base, cap) for n in range(8)] == [min(cap, base * 2**n) for n in range(8)]


def test_huge_attempt_counts_stay_at_the_cap_without_overflow() -> None:
    assert backoff.delay(10**9, 0.25, 30.0) == 30.0


def test_jitter_stays_within_its_fraction_and_is_off_by_default() -> None:
    assert backoff.delay(3, 1.0, 60.0, jitter=0.5, rand=lambda: 0.0) == 8.0
    assert backoff.delay(3, 1.0, 60.0, jitter=0.5, rand=lambda: 1.0) == 4.0
    assert all(4.0 <= backoff.delay(3, 1.0, 60.0, jitter=0.5) <= 8.0 for _ in range(100))
    with pytest.raises(ValueError, match="jitter"):
        backoff.delay(1, 1.0, 60.0, jitter=1.5)


def test_no_retry_loop_keeps_its_own_formula() -> None:
    own = []
    for folder in ("monitor", "playbooks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "monitor" / "backoff.py" or "lab" in path.relative_to(ROOT).parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if FORMULA.search(code) and "backoff.delay" not in code:
                    own.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert own == [], "use agentwatch.backoff.delay:\n" + "\n".join(own)
