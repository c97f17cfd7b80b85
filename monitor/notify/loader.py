"""Building the configured notifiers (``[notifiers.<name>]``) from the ``agentwatch.notifiers`` plugins.

Each table names its plugin with ``type`` (default: the table's name) and sets the common settings
(:class:`~agentwatch.notify.spec.NotifierParams`) and the plugin's own; unknown keys, an unknown
type or a missing secret stop start-up with one line naming the notifier. ``enabled = false``
leaves one out; ``optional = true`` leaves it out (logged once) when its secrets are not set —
how the shipped Slack notifier follows the approval settings.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from agentwatch.errors import ConfigError
from agentwatch.notify.dispatcher import ConfiguredNotifier
from agentwatch.notify.spec import NOTIFIERS_GROUP, NotifierContext, NotifierParams, validate_notifier_class
from agentwatch.plugin_loader import load_group

log = logging.getLogger(__name__)


def discover_notifiers() -> dict[str, Any]:
    def validate(cls: Any) -> list[str]:
        problems = validate_notifier_class(cls)
        if not problems and not issubclass(cls.params_type, NotifierParams):
            problems.append("params_type does not extend NotifierParams")
        return problems

    return load_group(NOTIFIERS_GROUP, validate)


def build_notifiers(config: dict[str, dict[str, Any]], context: NotifierContext) -> list[ConfiguredNotifier]:
    if not config:
        return []
    plugins = discover_notifiers()
    built: list[ConfiguredNotifier] = []
    for name, raw in sorted(config.items()):
        if not isinstance(raw, dict):
            raise ConfigError(f"notifiers.{name}: expected a table")
        raw = dict(raw)
        optional = bool(raw.pop("optional", False))
        kind = str(raw.setdefault("type", name))
        cls = plugins.get(kind)
        if cls is None:
            raise ConfigError(f"notifiers.{name}: unknown type {kind!r}; installed: {', '.join(plugins)}")
        try:
            params = msgspec.convert(raw, cls.params_type)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"notifiers.{name}: {exc}") from None
        if not params.enabled:
            continue
        try:
            plugin = cls(params, context)
        except ValueError as exc:
            if optional:
                log.info("notifier %s (%s) left out: %s", name, kind, exc)
                continue
            raise ConfigError(f"notifiers.{name} ({kind}): {exc}") from None
        built.append(ConfiguredNotifier(name=name, params=params, plugin=plugin))
    return built
