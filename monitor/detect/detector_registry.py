"""Detector plugins: discovery (entry points, built-ins included) and configuration."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from agentwatch.config import Config
from agentwatch.detect.detector_spec import Detector, validate_detector_class
from agentwatch.detect.policy import DetectorPolicy
from agentwatch.errors import ConfigError, PluginLoadError  # noqa: F401 - PluginLoadError re-exported
from agentwatch.plugin_loader import load_group

DETECTORS_GROUP = "agentwatch.detectors"


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
    return load_group(DETECTORS_GROUP, validate_detector_class)


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
