"""Plugin discovery through entry points — built-ins are registered the same way.

A plugin that cannot be loaded, or that breaks the contract, stops start-up with a
message naming it: a detector that fails quietly is a blind spot.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points

import msgspec

from monitor.config import Config
from monitor.detector_spec import Detector, validate_detector_class
from monitor.errors import ConfigError
from monitor.policy import DetectorPolicy

DETECTORS_GROUP = "agentwatch.detectors"


class PluginLoadError(RuntimeError):
    """A registered plugin that cannot be imported or breaks the contract."""


@dataclass(slots=True)
class ActiveDetector:
    """A configured detector instance and the policy that decides its findings."""

    detector: Detector
    policy: DetectorPolicy

    @property
    def name(self) -> str:
        return self.detector.name


def discover_detectors() -> dict[str, type[Detector]]:
    """Every detector class registered under ``agentwatch.detectors``, by name."""
    found: dict[str, type[Detector]] = {}
    for ep in entry_points(group=DETECTORS_GROUP):
        try:
            cls = ep.load()
        except (ImportError, AttributeError, SyntaxError) as exc:
            raise PluginLoadError(f"detector entry point {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        problems = validate_detector_class(cls)
        if not problems and cls.name != ep.name:
            problems.append(f"class name {cls.name!r} differs from entry point name {ep.name!r}")
        if problems:
            raise PluginLoadError(f"detector {ep.name!r} ({ep.value}): " + "; ".join(problems))
        if ep.name in found and found[ep.name] is not cls:
            raise PluginLoadError(f"two detectors registered as {ep.name!r}")
        found[ep.name] = cls
    return dict(sorted(found.items()))


def build_detector(cls: type[Detector], policy: DetectorPolicy) -> Detector:
    """Instantiate ``cls`` with its typed config from ``policy.config``."""
    try:
        config = msgspec.convert(policy.config, cls.config_type)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"detectors.{cls.name}.config: {exc}") from None
    return cls(config)


def active_detectors(
    config: Config, available: dict[str, type[Detector]] | None = None, only: list[str] | None = None
) -> list[ActiveDetector]:
    """The enabled detectors with their policies; unknown names in config are an error."""
    available = discover_detectors() if available is None else available
    unknown = set(config.detectors) - set(available)
    if unknown:
        raise ConfigError(f"config names unknown detectors {sorted(unknown)}; installed: {sorted(available)}")
    if only is not None:
        missing = set(only) - set(available)
        if missing:
            raise ConfigError(f"unknown detectors {sorted(missing)}; installed: {sorted(available)}")
    out: list[ActiveDetector] = []
    for name, cls in available.items():
        if only is not None and name not in only:
            continue
        policy = config.detectors.get(name) or DetectorPolicy()
        if policy.enabled:
            out.append(ActiveDetector(build_detector(cls, policy), policy))
    return out
