"""Supply chain: running code from the network, untrusted package sources, typosquats — a rule pack.

The rules are ``detectors/rules/supply_chain.yaml``: conditions over each action's typed effects
(``execute … (downloaded)`` for ``curl … | sh``, ``connect``/``change_settings … (<manager> index)``
for another index or registry, ``install <package> (<manager>)``), with the judgements that need
code — edit distance to popular package names, host lists, what a written APT source says — as
checks in :mod:`agentwatch.detectors.checks.supply_chain_checks`. The engine, the per-rule
overrides and the way actions are judged (a ``tool_result`` that is the only record of a call is
the action) are :mod:`agentwatch.detectors.rule_pack`'s.

The popular-name lists and the default hosts are data tables of the rule file; this detector's
configuration replaces the host lists and adds to the name lists (:class:`SupplyChainConfig`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from agentwatch.detect.detector_spec import DetectorConfig
from agentwatch.detectors.checks.supply_chain_checks import (
    PopularIndex,
    damerau_levenshtein,
    normalise_pypi,
    prepared,
)
from agentwatch.detectors.rule_pack import RulePack, RulePackConfig

__all__ = ["PopularIndex", "SupplyChain", "SupplyChainConfig", "damerau_levenshtein", "normalise_pypi"]


class SupplyChainConfig(RulePackConfig):
    """Tunables of :class:`SupplyChain` (plus every rule pack's: ``builtin``, ``files``, ``rules``…).

    Scores are per rule now: ``[detectors.supply_chain.config.rules.typosquat] score = 0.6``.

    Parameters
    ----------
    allowed_pypi_hosts
        Hosts (optionally ``host/path`` prefixes) accepted as Python package indexes; unset keeps the
        rule file's ``allowed_pypi_hosts`` (pypi.org, files.pythonhosted.org, download.pytorch.org …).
    allowed_npm_hosts
        Hosts accepted as npm registries; unset keeps the rule file's list.
    trusted_script_hosts
        URL prefixes (``host[/path]``) of installers whose ``curl | sh`` scores low (0.45); unset keeps
        the rule file's list.
    extra_popular_pypi, extra_popular_npm
        More popular names to protect (and to accept as legitimate).
    known_packages
        Names that are never typosquats (internal packages close to a popular name).
    """

    allowed_pypi_hosts: tuple[str, ...] | None = None
    allowed_npm_hosts: tuple[str, ...] | None = None
    trusted_script_hosts: tuple[str, ...] | None = None
    extra_popular_pypi: tuple[str, ...] = ()
    extra_popular_npm: tuple[str, ...] = ()
    known_packages: tuple[str, ...] = ()


class SupplyChain(RulePack):
    """Flags remote scripts run in a shell, untrusted package sources and typosquatted installs.

    Examples
    --------
    >>> from agentwatch.events.audit_event import from_mapping
    >>> from agentwatch.detect.session_state import SessionTable
    >>> ev = from_mapping({"event_id": "e1", "ts": 1767225600000, "session_id": "s1",
    ...                    "agent_id": "coder", "kind": "tool_call", "tool": "Bash",
    ...                    "target": "pip install -q reqeusts pytest"})
    >>> [finding] = SupplyChain().observe(ev, SessionTable().touch(ev)[0])
    >>> finding.rule, finding.score, finding.category
    ('typosquat', 0.75, 'supply_chain')
    >>> print(finding.reason)
    typosquat: A package whose name is one edit from a popular PyPI or npm package is installed — \
install reqeusts (pip; 1 edit(s) from the popular PyPI package requests); install reqeusts (pip); install pytest (pip)
    """

    name: ClassVar[str] = "supply_chain"
    categories: ClassVar[frozenset[str]] = frozenset({"supply_chain"})
    config_type: ClassVar[type[DetectorConfig]] = SupplyChainConfig
    check_modules: ClassVar[tuple[str, ...]] = ("agentwatch.detectors.checks.supply_chain_checks",)
    cost_us: ClassVar[float] = 15.0  # measured: bench/detector_cost.py (effects computed in observe), 2-core machine
    summary: ClassVar[str] = "curl|sh, untrusted package indexes and typosquatted package installs (YAML rules)."

    def __init__(self, config: SupplyChainConfig | None = None) -> None:
        super().__init__(config)
        prepared(self._engine.data)  # the popular-name indexes, built now rather than on the first action

    def config_tables(self, config: RulePackConfig) -> dict[str, Any]:
        """The configuration's host lists (when set) replace the rule file's; its names are added to them."""
        cfg = config if isinstance(config, SupplyChainConfig) else SupplyChainConfig()
        tables: dict[str, Any] = {
            "extra_popular_pypi": [normalise_pypi(n) for n in cfg.extra_popular_pypi],
            "extra_popular_npm": [n.lower() for n in cfg.extra_popular_npm],
            "known_packages": [n.lower() for n in cfg.known_packages],
        }
        for key in ("allowed_pypi_hosts", "allowed_npm_hosts", "trusted_script_hosts"):
            hosts = getattr(cfg, key)
            if hosts is not None:
                tables[key] = [h.lower() for h in hosts]
        return tables
