"""Loading plugins from entry points — detectors and actions alike, built-ins included.

A plugin that cannot be imported, breaks its contract, or is registered under a name
other than its own stops start-up with a message naming it: a plugin that fails
quietly is a blind spot.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from agentwatch.errors import PluginLoadError


def load_group(group: str, validate: Callable[[Any], list[str]]) -> dict[str, Any]:
    """Every class registered under ``group``, by name, each checked by ``validate``."""
    found: dict[str, Any] = {}
    for ep in entry_points(group=group):
        try:
            cls = ep.load()
        except (ImportError, AttributeError, SyntaxError) as exc:
            raise PluginLoadError(f"{group} entry point {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        problems = validate(cls)
        if not problems and cls.name != ep.name:
            problems.append(f"class name {cls.name!r} differs from entry point name {ep.name!r}")
        if problems:
            raise PluginLoadError(f"{group} entry point {ep.name!r} ({ep.value}): " + "; ".join(problems))
        if ep.name in found and found[ep.name] is not cls:
            raise PluginLoadError(f"two {group} plugins registered as {ep.name!r}")
        found[ep.name] = cls
    return dict(sorted(found.items()))
