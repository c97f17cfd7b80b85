"""Fleet simulator: seeded, realistic AI-agent audit events with labelled attacks.

>>> from agentwatch.lab.simulator import simulate
>>> fleet = simulate(seed=7, sessions=40)
>>> {lb["label"] for lb in fleet.labels} == {"attack", "benign"}
True

See :func:`simulate` for the knobs, ``THREAT_CATEGORIES`` for the label strings, and
``attacks.VARIANTS`` / ``attacks.SUPPORTED`` for which variants occur on which agent type.
"""

from __future__ import annotations

from agentwatch.detect.detector_spec import THREAT_CATEGORIES
from agentwatch.lab.simulator.agents import AGENT_TYPES, HELD_OUT_AGENT_TYPES, TUNED_AGENT_TYPES
from agentwatch.lab.simulator.attacks import CATEGORY_AGENT_TYPES, VARIANTS
from agentwatch.lab.simulator.content import COMPANY_DOMAIN, INTERNAL_BUCKETS, INTERNAL_DOMAINS
from agentwatch.lab.simulator.fleet import DEFAULT_START_MS, Fleet, simulate, write_fleet

__all__ = [
    "AGENT_TYPES",
    "CATEGORY_AGENT_TYPES",
    "COMPANY_DOMAIN",
    "DEFAULT_START_MS",
    "HELD_OUT_AGENT_TYPES",
    "INTERNAL_BUCKETS",
    "INTERNAL_DOMAINS",
    "THREAT_CATEGORIES",
    "TUNED_AGENT_TYPES",
    "VARIANTS",
    "Fleet",
    "simulate",
    "write_fleet",
]
