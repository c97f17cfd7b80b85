"""Destructive operations: irreversible deletion of data, history or infrastructure — a rule pack.

The rules are ``detectors/rules/destructive_ops.yaml``: conditions over what an action does (the effects
layer's typed effects, :mod:`agentwatch.detect.effects`), not over its text. The effects layer reads
shell commands (``rm``, ``find -delete``, ``mkfs``, ``dd``, ``git push``, ``kubectl``, ``terraform``,
``aws``/``gcloud``/``az``, SQL and Redis/MongoDB clients), structured tools named for a program
(``kubectl`` with an ``argv``, ``aws.cli``) and database tools (``sql.query``); the rules say which
deletion is which kind of destruction and how much it matters. Protected branches, the session's working
tree, production markers and bulk deletion through a tool (``gmail.delete`` with a broad query,
``drive.delete`` of many files) are Python checks (:mod:`agentwatch.detectors.checks.destructive_ops_checks`)
reading tables the configuration can replace.

Routine clean-up is not destruction: ``rm -rf build/ node_modules .venv``, ``find . -name __pycache__
-exec rm -rf {} +``, ``kubectl delete pod`` of one pod, ``terraform plan -destroy``, ``git push --force``
to a feature branch, ``DROP TABLE`` of a temp table, ``find / -perm -0002`` (a read, not a delete).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from agentwatch.detect.detector_spec import DetectorConfig, Finding
from agentwatch.detect.effects import ACTION_KINDS
from agentwatch.detect.session_state import SessionState
from agentwatch.detectors.checks import destructive_ops_checks  # registers the checks the rule file names
from agentwatch.detectors.rule_pack import RulePack, RulePackConfig
from agentwatch.events.audit_event import AuditEvent

__all__ = ["DestructiveOps", "DestructiveOpsConfig"]


class DestructiveOpsConfig(RulePackConfig):
    """Tunables of :class:`DestructiveOps` (besides every rule pack's: ``builtin``, ``files``, ``rules``).

    Each one left unset (``None``) keeps the rule file's table of the same name.

    Parameters
    ----------
    protected_branches
        Branch names a force-push or a branch deletion must not touch (exact, compared lower-case).
    protected_branch_prefixes
        Branch name prefixes that are protected too (``release/1.2``, ``prod-eu``).
    protected_paths
        More recursive-delete targets treated like the working tree (compared lower-case, as the
        effects layer writes paths: ``~`` for the home directory).
    prod_markers
        Words that mark an action as aimed at production (a whole word of a resource, namespace,
        context or argument, or the word followed by digits: ``prod``, ``prd1``; not ``products``).
    bulk_delete_threshold
        A deletion tool given at least this many ids is a bulk deletion (a count or limit of five
        times as many, too).
    """

    protected_branches: tuple[str, ...] | None = None
    protected_branch_prefixes: tuple[str, ...] | None = None
    protected_paths: tuple[str, ...] | None = None
    prod_markers: tuple[str, ...] | None = None
    bulk_delete_threshold: int | None = None

    def __post_init__(self) -> None:
        if self.bulk_delete_threshold is not None and self.bulk_delete_threshold < 1:
            raise ValueError(f"bulk_delete_threshold must be at least 1, got {self.bulk_delete_threshold}")


class DestructiveOps(RulePack):
    """Flags irreversible deletions: ``rm -rf /``, ``DROP TABLE``, force-push to main, ``terraform destroy``.

    Scores ~0.9–0.95 for the root filesystem, a home or system directory, disks and anything aimed at
    production; ~0.85 for protected branches, infrastructure, clusters, cloud resources, dropped tables
    and bulk deletions; ~0.8 for the working tree, truncation and ``DELETE`` without ``WHERE``.

    Examples
    --------
    >>> from agentwatch.events.audit_event import from_mapping
    >>> from agentwatch.detect.session_state import SessionTable
    >>> push = "git push --force origin main"
    >>> ev = from_mapping({"event_id": "e1", "ts": 1767225600000, "session_id": "s1", "agent_id": "coder",
    ...                    "kind": "tool_call", "tool": "Bash", "target": push, "args": {"command": push}})
    >>> [finding] = DestructiveOps().observe(ev, SessionTable().touch(ev)[0])
    >>> finding.rule, finding.score, finding.category
    ('git-force-push-protected', 0.85, 'destructive')
    >>> print(finding.reason)
    git-force-push-protected: A protected branch is force-pushed over (its remote history is rewritten) — \
delete git:branch/main (force push)
    """

    name: ClassVar[str] = "destructive_ops"
    categories: ClassVar[frozenset[str]] = frozenset({"destructive"})
    config_type: ClassVar[type[DetectorConfig]] = DestructiveOpsConfig
    check_modules: ClassVar[tuple[str, ...]] = (destructive_ops_checks.__name__,)
    # measured: bench/detector_cost.py (35 µs first in its order, shell parsing of the fleet included; 8 µs warm)
    kinds: ClassVar[frozenset[str] | None] = frozenset({"session_start", *ACTION_KINDS})
    cost_us: ClassVar[float] = 32.0  # bench/detector_cost.py: 0.92× the 35 µs before check prefilters (same run)
    summary: ClassVar[str] = "Irreversible deletions of files, history, databases, clusters and cloud resources."

    def config_tables(self, config: RulePackConfig) -> dict[str, Any]:
        """The configured tunables, over the rule file's tables of the same names."""
        tables: dict[str, Any] = {}
        for key in (
            "protected_branches",
            "protected_branch_prefixes",
            "protected_paths",
            "prod_markers",
            "bulk_delete_threshold",
        ):
            value = getattr(config, key, None)
            if value is not None:
                tables[key] = list(value) if isinstance(value, tuple) else value
        return tables

    def observe(self, event: AuditEvent, session: SessionState) -> Sequence[Finding]:
        if event.kind == "session_start":
            cwd = event.attributes.get("cwd") if isinstance(event.attributes, dict) else None
            if isinstance(cwd, str) and cwd.startswith("/"):
                # so that `rm -rf /abs/path/of/the/repo` later in the session is the working tree
                session.scratch[destructive_ops_checks.CWD_KEY] = cwd[:1024]
            return ()
        if event.kind not in ACTION_KINDS:
            return ()  # prompts, model calls, messages: no action to judge
        return super().observe(event, session)
