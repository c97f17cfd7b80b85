"""Secret access: an agent reading, copying or handling credentials — a rule pack.

The rules are ``detectors/rules/secret_access.yaml``: conditions over what an action does (the effects
layer's typed effects, :mod:`agentwatch.detect.effects`), not over its text. Where credentials live is
the effects layer's knowledge — the ``credential_store`` class of a path (SSH and private keys, cloud and
tool credentials, ``.env`` files, keychains, browser stores, ``/etc/shadow``), the ``net_cloud_metadata``
class of an endpoint, ``env`` reads of the environment — and the rules say which read is which kind of
secret and how much it matters. Token-shaped strings anywhere in the arguments, file content included
(AWS keys, GitHub/Slack/Stripe/OpenAI/Anthropic/Google tokens, private key blocks, JWTs, Slack webhook
URLs: :data:`agentwatch.secret_catalogue.TOKENS`), SQL that selects credential columns and searches of
mail for login codes are Python checks (:mod:`agentwatch.detectors.checks.secret_access_checks`).

Using a credential the ordinary way (``ssh -i key``, ``kubectl --kubeconfig f``, ``curl --cert c.pem``)
is not reading it: the effects layer records no read for those, or one marked as an identity, which the
rules except.

One judgement per action, one finding per action by default (the worst thing it did): a ``tool_result``
is judged only in a session with no ``tool_call`` records, where it is the action's only record
(Claude Code's OpenTelemetry path).
"""

from __future__ import annotations

import functools
import re
from typing import Any, ClassVar

import msgspec

from agentwatch.detect.detector_spec import DetectorConfig
from agentwatch.detect.rules import load_files
from agentwatch.detectors.checks import secret_access_checks  # registers the checks the rule file names
from agentwatch.detectors.rule_pack import RuleOverride, RulePack, RulePackConfig, shipped_rule_files

__all__ = ["SecretAccess", "SecretAccessConfig"]


class SecretAccessConfig(RulePackConfig):
    """Tunables of :class:`SecretAccess` (besides every rule pack's: ``builtin``, ``files``, ``rules``).

    Parameters
    ----------
    extra_paths
        More path fragments (substrings such as ``"/vault/secrets/"``, compared lower-case) whose
        touching counts as secret access (rule ``configured_path``).
    extra_path_score
        Score of a ``configured_path`` hit (a score given under ``rules.configured_path`` wins).
    ignore_paths
        Fragments that silence every rule on an effect whose resource contains one (a directory of
        fake test keys).
    scan_contents
        Also look for token-shaped strings in the content the agent writes or sends.
    max_content_chars
        Content longer than this is scanned only in its head and tail (bounds the cost).
    max_scan_chars
        Longer target/argument text is scanned for tokens only in its first three quarters and last
        quarter of this many characters (bounds the cost of pathological events).
    max_findings_per_action
        At most this many rules reported per action, highest score first (one: the worst thing it did).
    """

    extra_paths: tuple[str, ...] = ()
    extra_path_score: float = 0.8
    ignore_paths: tuple[str, ...] = ()
    scan_contents: bool = True
    max_content_chars: int = 4096
    max_scan_chars: int = 2048
    max_findings_per_action: int = 1


class SecretAccess(RulePack):
    """Flags reads of credential stores and token-shaped strings in tool arguments.

    Scores by sensitivity: private keys, cloud credentials, metadata endpoints and the
    keychain 0.9; browser stores, kube config and credential files 0.85; ``.env`` files and
    secrets managers 0.8; environment dumps and a token in the arguments 0.75.

    Examples
    --------
    >>> from agentwatch.events.audit_event import from_mapping
    >>> from agentwatch.detect.session_state import SessionTable
    >>> ev = from_mapping({"event_id": "e1", "ts": 1767225600000, "session_id": "s1",
    ...                    "agent_id": "coder", "kind": "tool_call", "tool": "Read",
    ...                    "target": "/home/dev/.aws/credentials"})
    >>> [finding] = SecretAccess().observe(ev, SessionTable().touch(ev)[0])
    >>> finding.rule, finding.score, finding.category
    ('cloud_credentials', 0.9, 'secret_access')
    >>> print(finding.reason)
    cloud_credentials: Cloud provider credentials are read (AWS, Google Cloud, Azure files, or an access token \
printed) — read /home/dev/.aws/credentials [credential_store,home]
    """

    name: ClassVar[str] = "secret_access"
    categories: ClassVar[frozenset[str]] = frozenset({"secret_access"})
    config_type: ClassVar[type[DetectorConfig]] = SecretAccessConfig
    cost_us: ClassVar[float] = 20.0  # bench/detector_cost.py: 0.84× the 24 µs before check prefilters (same run)
    summary: ClassVar[str] = "Reads of credential stores, metadata endpoints and tokens in tool arguments."
    check_modules: ClassVar[tuple[str, ...]] = (secret_access_checks.__name__,)

    def __init__(self, config: SecretAccessConfig | None = None) -> None:
        cfg = config if config is not None else SecretAccessConfig()
        if not isinstance(cfg, SecretAccessConfig):
            raise TypeError(f"{self.name} takes SecretAccessConfig, got {type(cfg).__name__}")
        super().__init__(msgspec.structs.replace(cfg, rules=_with_config_overrides(cfg, self.name)))
        self.config = cfg  # as the operator wrote it

    def config_tables(self, config: RulePackConfig) -> dict[str, Any]:
        cfg = config if isinstance(config, SecretAccessConfig) else SecretAccessConfig()
        return {
            "extra_paths": [p.lower() for p in cfg.extra_paths if p],
            "token_scan": {
                "max_scan_chars": max(256, cfg.max_scan_chars),
                "max_content_chars": max(0, cfg.max_content_chars),
                "scan_contents": cfg.scan_contents,
            },
        }


@functools.lru_cache(maxsize=8)
def _rule_ids(files: tuple[str, ...]) -> tuple[str, ...]:
    """The ids of the rules in ``files`` (loaded once per set of files)."""
    return tuple(rule.id for rule in load_files(files).rules)


def _with_config_overrides(cfg: SecretAccessConfig, detector: str) -> dict[str, RuleOverride]:
    """The operator's per-rule overrides plus what ``ignore_paths`` and ``extra_path_score`` mean per rule:
    every rule excepts effects on an ignored path; ``configured_path`` scores ``extra_path_score``."""
    rules = dict(cfg.rules)
    files = tuple(str(p) for p in shipped_rule_files(detector)) if cfg.builtin else ()
    ids = _rule_ids((*files, *cfg.files))
    if "configured_path" in ids:
        base = rules.get("configured_path", RuleOverride())
        if base.score is None:
            rules["configured_path"] = msgspec.structs.replace(base, score=cfg.extra_path_score)
    fragments = [p for p in cfg.ignore_paths if p]
    if fragments:
        ignored = {"resource_regex": "(?i)" + "|".join(re.escape(p) for p in fragments)}
        for rid in ids:
            base = rules.get(rid, RuleOverride())
            rules[rid] = msgspec.structs.replace(base, exceptions=[*base.exceptions, ignored])
    return rules
