"""MITRE ATT&CK technique ids from the shipped rules' ``tags`` (``T1552.001``, ``T1485`` …).

Rule-pack rules (``detectors/rules/*.yaml``) carry their techniques as tags; an alert names the
rules that fired (``Alert.rules``), so an incident's techniques are the union of those rules'
technique tags. Other tags (``ASI10``, OWASP's agentic threats) are not ATT&CK and are left out.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

import yaml

TECHNIQUE: Final = re.compile(r"T\d{4}(?:\.\d{3})?")


@lru_cache(maxsize=1)
def rule_techniques() -> dict[tuple[str, str], tuple[str, ...]]:
    """``{(detector, rule id): technique ids}`` for every shipped rule pack (only ids and tags are
    read from the YAML: the rules' conditions are the detectors' business)."""
    from agentwatch.detectors.rule_pack import RULES_DIR

    index: dict[tuple[str, str], tuple[str, ...]] = {}
    for path in sorted(RULES_DIR.glob("*.yaml")):
        detector = path.name.split(".", 1)[0]
        raw = yaml.safe_load(path.read_text()) or {}
        for item in raw.get("rules") or []:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            techniques = tuple(str(t) for t in item.get("tags") or [] if TECHNIQUE.fullmatch(str(t)))
            if techniques:
                index[(detector, item["id"])] = techniques
    return index


def techniques_for(detector: str, rules: list[str]) -> list[str]:
    """The ATT&CK technique ids of ``rules`` of ``detector``, in first-seen order.

    >>> techniques_for("secret_access", ["no-such-rule"])
    []
    """
    index = rule_techniques()
    out: list[str] = []
    for rule in rules:
        for technique in index.get((detector, rule), ()):
            if technique not in out:
                out.append(technique)
    return out
