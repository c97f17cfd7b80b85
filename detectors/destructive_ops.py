"""Destructive operations: irreversible deletion of data, history or infrastructure.

Shell commands (any tool whose target or arguments carry a command line: ``Bash``,
``kubectl``, ``terraform``, ``aws.cli`` …), SQL sent through a database tool or a SQL
client on the command line, and bulk deletions through SaaS tools (``gmail.delete``
with a broad query, ``drive.delete`` of many files).

Routine clean-up is not destruction: ``rm -rf build/ node_modules .venv``, ``find .
-name __pycache__ -exec rm -rf {} +``, ``kubectl delete pod`` of one pod, ``terraform
plan -destroy``, ``git push --force`` to a feature branch, ``DROP TABLE`` of a temp table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Final, NamedTuple

from agentwatch.detect.detector_spec import Detector, DetectorConfig, Finding, supporting
from agentwatch.detect.session_state import SessionState
from agentwatch.detectors._rulekit import (
    CMD,
    RULE_SCORE,
    SHELL,
    SQL,
    Hit,
    Rule,
    Verdict,
    best_hit,
    candidates,
    clip,
    command_words,
    gated,
    json_text,
    report,
    runs_sql,
    segment,
    starts_command,
    surface,
    tool_class,
)
from agentwatch.events.audit_event import AuditEvent

__all__ = ["DestructiveOps", "DestructiveOpsConfig"]

_TEMP_TABLE: Final = re.compile(r"(?:^|\.)[\"`\[]?(?:tmp|temp|scratch|test|staging_tmp)[_\w]*[\"`\]]?$")

_ROOT_TARGETS: Final = frozenset({"/", "/*", "/.", "/.*"})
_HOME_TARGETS: Final = frozenset(
    """
    ~ ~/ ~/* ~/.* $home ${home} $home/ $home/* ${home}/ ${home}/* /root /root/ /root/*
    """.split()
)
_REPO_TARGETS: Final = frozenset(
    """
    . ./ .. ../ * ./* .* ../* .git .git/ ./.git $pwd ${pwd} $(pwd) `pwd` $pwd/* $(pwd)/*
    """.split()
)
_SYSTEM_DIR: Final = re.compile(
    r"/(?:etc|usr|var|bin|sbin|lib|lib64|boot|opt|srv|sys|dev|system|library|applications|private|home|users)/?\*?"
)
_HOME_DIR: Final = re.compile(r"/(?:home|users)/[^/\s]+/?\*?")

#: ``check(low, match, ctx)``, as :func:`agentwatch.detectors._rulekit.best_hit` calls it.
Check = Callable[[str, "re.Match[str]", "_Ctx"], Verdict]


class _Ctx(NamedTuple):
    """What a rule check may consult besides the text: the event, the detector's settings, the session's cwd."""

    event: AuditEvent
    det: DestructiveOps
    cwd: str


_rx = re.compile


def _check_rm(low: str, m: re.Match[str], ctx: _Ctx) -> Verdict:
    if not starts_command(low, m.start()):
        return None
    words = command_words(low, m.end())
    recursive = False
    no_preserve = False
    targets: list[str] = []
    for word in words:
        if word.startswith("--"):
            recursive = recursive or word == "--recursive"
            no_preserve = no_preserve or word == "--no-preserve-root"
        elif word.startswith("-") and len(word) > 1:
            recursive = recursive or "r" in word or "R" in word
        else:
            targets.append(word.strip("'\""))
    if no_preserve:
        return 0.95, "rm_rf_root", "recursively deletes the root filesystem"
    if not recursive:
        return None
    cwd = _cwd(ctx.event) or ctx.cwd
    parent_hop = "cd .." in low[max(0, m.start() - 60) : m.start()]
    best: tuple[float, str, str] | None = None
    for target in targets:
        if target in _ROOT_TARGETS:
            return 0.95, "rm_rf_root", "recursively deletes the root filesystem"
        if target in _HOME_TARGETS or _HOME_DIR.fullmatch(target):
            verdict = (0.9, "rm_rf_home", "recursively deletes the home directory")
        elif _SYSTEM_DIR.fullmatch(target):
            verdict = (0.9, "rm_rf_system", "recursively deletes a system directory")
        elif (
            target in _REPO_TARGETS
            or target.endswith(("/.git", "/.git/"))
            or (cwd and target.rstrip("/*").rstrip("/") == cwd)
            or target in ctx.det._protected_paths
            or (parent_hop and "/" not in target.rstrip("/") and not target.startswith(("-", "$")))
        ):
            verdict = (0.8, "rm_rf_repo", "recursively deletes the working tree or its history")
        else:
            continue
        if best is None or verdict[0] > best[0]:
            best = verdict
    return best


def _cwd(event: AuditEvent) -> str:
    attrs = event.attributes
    if attrs:
        cwd = attrs.get("cwd")
        if isinstance(cwd, str) and len(cwd) > 1:
            return cwd.lower().rstrip("/")
    return ""


def _check_find(low: str, m: re.Match[str], ctx: _Ctx) -> Verdict:
    if not starts_command(low, m.start()):
        return None
    seg = segment(low, m.start())
    if "-delete" not in seg and "rm " not in low[m.start() : m.start() + 400]:
        return None
    root = m.group(1)
    if root in ("/", "/*"):
        return 0.9
    return 0.85, "find_delete", "deletes everything under the home directory with find"


def _check_command(low: str, m: re.Match[str], ctx: _Ctx) -> Verdict:
    return None if not starts_command(low, m.start()) else RULE_SCORE


def _check_sql(low: str, m: re.Match[str], ctx: _Ctx) -> Verdict:
    if not runs_sql(low, m.start(), ctx.event.tool):
        return None
    name = m.group(1).rstrip(";,)")
    if _TEMP_TABLE.search(name):
        return 0.4, "drop_temp_table", "drops a temporary table"
    if "prod" in low or "prod" in name:
        return 0.9
    return RULE_SCORE


def _check_truncate(low: str, m: re.Match[str], ctx: _Ctx) -> Verdict:
    name = m.group(1)
    if name.startswith("-") or not runs_sql(low, m.start(), ctx.event.tool):
        return None
    if _TEMP_TABLE.search(name):
        return None
    return 0.9 if "prod" in low else RULE_SCORE


def _check_delete_from(low: str, m: re.Match[str], ctx: _Ctx) -> Verdict:
    if not runs_sql(low, m.start(), ctx.event.tool):
        return None
    end = low.find(";", m.end())
    statement = low[m.end() : end if end >= 0 else m.end() + 400]
    if "where" in statement or "limit" in statement or _TEMP_TABLE.search(m.group(1)):
        return None
    return 0.9 if "prod" in low else RULE_SCORE


def _check_push(low: str, m: re.Match[str], ctx: _Ctx) -> Verdict:
    if not starts_command(low, m.start()):
        return None
    words = command_words(low, m.end())
    force = mirror = delete = False
    positional: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word.startswith("--"):
            force = force or word.startswith(("--force", "--force-with-lease"))
            mirror = mirror or word == "--mirror"
            delete = delete or word in ("--delete", "-d")
            skip_next = word in ("--repo", "--push-option", "--receive-pack", "--exec")
        elif word.startswith("-") and len(word) > 1:
            force = force or "f" in word
            delete = delete or "d" in word
            skip_next = word in ("-o",)
        else:
            positional.append(word.strip("'\""))
    refs = positional[1:]
    if mirror:
        return 0.85, "git_push_mirror", "overwrites every remote ref with git push --mirror"
    protected = [r for r in refs if ctx.det._is_protected(r)]
    deleting = [r for r in refs if r.startswith(":") and ctx.det._is_protected(r[1:])]
    if deleting or (delete and protected):
        return 0.85, "git_delete_protected_branch", "deletes a protected remote branch"
    forced_refs = [r for r in refs if r.startswith("+") and ctx.det._is_protected(r[1:])]
    if forced_refs or (force and protected):
        return 0.85
    if force and not refs:
        branch = _attr_branch(ctx.event)
        if branch and ctx.det._is_protected(branch):
            return 0.85
        if not branch:
            return 0.45, "git_force_push_unknown_branch", "force-pushes without naming the branch"
    return None


def _attr_branch(event: AuditEvent) -> str:
    attrs = event.attributes
    if attrs:
        for key in ("git_branch", "branch"):
            value = attrs.get(key)
            if isinstance(value, str):
                return value.lower()
    return ""


def _check_reset_push(low: str, m: re.Match[str], ctx: _Ctx) -> Verdict:
    rest = low[m.end() : m.end() + 400]
    at = rest.find("git push")
    if at < 0:
        return None
    push = segment(rest, at)
    if "-f" in push or "--force" in push or " +" in push:
        return RULE_SCORE
    return 0.55, "git_reset_hard_push", "hard-resets and pushes"


def _check_terraform(low: str, m: re.Match[str], ctx: _Ctx) -> Verdict:
    seg = segment(low, m.start())
    if " plan" in seg and " apply" not in seg:
        return None
    if "-auto-approve" in seg or "--auto-approve" in seg or "--yes" in seg or " -y" in seg:
        return 0.9
    return RULE_SCORE


def _check_helm(low: str, m: re.Match[str], ctx: _Ctx) -> Verdict:
    if not starts_command(low, m.start()):
        return None
    if ctx.det._in_prod(low):
        return RULE_SCORE
    return 0.45, "helm_uninstall", "uninstalls a Helm release outside production"


def _check_kubectl_all(low: str, m: re.Match[str], ctx: _Ctx) -> Verdict:
    seg = segment(low, m.start())
    padded = seg + " "
    if " --all " in padded or " -a " in padded or "--all-namespaces" in padded or " --all=true" in padded:
        return 0.9 if ctx.det._in_prod(low) else RULE_SCORE
    return None


def _check_prod(low: str, m: re.Match[str], ctx: _Ctx) -> Verdict:
    return 0.9 if ctx.det._in_prod(low) else RULE_SCORE


#: Rules on the lower-cased surface, highest score first.
_RULES: Final = (
    Rule("rm_rf_root", 0.95, "recursively deletes a critical directory", ("rm",), _rx(r"rm\s"), _check_rm),
    Rule(
        "find_delete",
        0.9,
        "deletes everything under / with find",
        ("find",),
        _rx(r"find\s+(/\*?|~/?|\$home/?|\$\{home\}/?)(?=\s|$)"),
        _check_find,
    ),
    Rule("mkfs", 0.9, "formats a filesystem", ("mkfs",), _rx(r"mkfs(?:\.\w+)?\s"), _check_command),
    Rule(
        "disk_overwrite",
        0.9,
        "overwrites a block device",
        ("/dev/",),
        _rx(r"(?:of=|>\s*)/dev/(?:sd[a-z]|nvme\d|hd[a-z]|xvd[a-z]|vd[a-z]|disk\d|mmcblk\d|dm-\d|mapper/)"),
    ),
    Rule(
        "disk_overwrite",
        0.9,
        "wipes a block device",
        ("/dev/",),
        _rx(r"(?:shred|wipefs|blkdiscard)\s" + CMD + r"/dev/"),
        _check_command,
    ),
    Rule(
        "drop_database",
        0.85,
        "drops a database object",
        ("drop",),
        _rx(r"drop\s+(?:table|database|schema)\s+(?:if\s+exists\s+)?([\w.\"`\[\]-]+)"),
        _check_sql,
    ),
    Rule(
        "mongo_drop",
        0.85,
        "drops a MongoDB collection or database",
        ("drop", "deletemany"),
        _rx(r"\.(?:dropdatabase\(\)|drop\(\)|deletemany\(\s*\{\s*\}\s*\))"),
    ),
    Rule("redis_flush", 0.85, "flushes a Redis database", ("flush",), _rx(r"flush(?:all|db)\b"), _check_command),
    Rule(
        "git_force_push_protected",
        0.85,
        "force-pushes to a protected branch",
        ("push",),
        _rx(r"git\s+(?:-c\s+\S+\s+)*push\b"),
        _check_push,
    ),
    Rule(
        "terraform_destroy",
        0.85,
        "destroys infrastructure",
        ("destroy",),
        _rx(r"(?:terraform|terragrunt|tofu)\b" + CMD + r"\s(?:destroy\b|apply\b" + CMD + r"-destroy\b)"),
        _check_terraform,
    ),
    Rule(
        "terraform_destroy",
        0.85,
        "destroys infrastructure",
        ("destroy",),
        _rx(r"(?:pulumi|cdk|cdktf|sst|serverless|sls)\s+(?:\S+\s+)*?(?:destroy|remove)\b"),
        _check_prod,
    ),
    Rule(
        "kubectl_delete_namespace",
        0.85,
        "deletes a Kubernetes namespace",
        ("delete",),
        _rx(r"kubectl\b" + CMD + r"\sdelete\s+(?:ns|namespaces?)\b"),
        _check_prod,
    ),
    Rule(
        "kubectl_delete_all",
        0.85,
        "deletes all resources of a kind",
        ("delete",),
        _rx(r"kubectl\b" + CMD + r"\sdelete\b"),
        _check_kubectl_all,
    ),
    Rule(
        "helm_uninstall_prod",
        0.85,
        "uninstalls a production Helm release",
        ("helm",),
        _rx(r"helm\s+(?:\S+\s+)*?(?:uninstall|delete|del)\b"),
        _check_helm,
    ),
    Rule(
        "cloud_delete",
        0.9,
        "deletes a production database",
        ("delete",),
        _rx(
            r"aws\s+rds\s+delete-db-(?:instance|cluster)|gcloud\s+(?:beta\s+)?sql\s+instances\s+delete"
            r"|gcloud\s+projects\s+delete"
        ),
    ),
    Rule(
        "cloud_delete",
        0.85,
        "deletes cloud resources",
        ("aws", "gsutil", "gcloud"),
        _rx(
            r"aws\s+s3\s+(?:rm\s" + CMD + r"--recursive|rb\s" + CMD + r"--force)|gsutil\s+(?:-m\s+)?rm\s+-r"
            r"|gcloud\s+storage\s+rm\s" + CMD + r"(?:-r\b|--recursive)"
        ),
        _check_prod,
    ),
    Rule(
        "cloud_delete",
        0.85,
        "deletes cloud resources",
        ("delete", "terminate", "schedule-key"),
        _rx(
            r"aws\s+(?:ec2\s+terminate-instances|dynamodb\s+delete-table|cloudformation\s+delete-stack"
            r"|eks\s+delete-cluster|s3api\s+delete-bucket|route53\s+delete-hosted-zone|ecr\s+delete-repository"
            r"|kms\s+schedule-key-deletion|secretsmanager\s+delete-secret|iam\s+delete-(?:user|role))"
            r"|az\s+group\s+delete"
        ),
        _check_prod,
    ),
    Rule(
        "cloud_delete",
        0.8,
        "deletes cloud resources",
        ("delete",),
        _rx(r"gcloud\s" + CMD + r"\sdelete\b"),
        _check_prod,
    ),
    Rule(
        "truncate_table",
        0.8,
        "truncates a table",
        ("truncate",),
        _rx(r"truncate\s+(?:table\s+)?([\w.\"`\[\]-]+)"),
        _check_truncate,
    ),
    Rule(
        "delete_without_where",
        0.8,
        "deletes every row of a table",
        ("delete",),
        _rx(r"delete\s+from\s+([\w.\"`\[\]-]+)"),
        _check_delete_from,
    ),
    Rule(
        "update_without_where",
        0.75,
        "overwrites a column in every row of a table",
        ("update",),
        _rx(r"update\s+([\w.\"`\[\]-]+)\s+set\s"),
        _check_delete_from,
    ),
    Rule(
        "git_reset_hard_push",
        0.8,
        "hard-resets and force-pushes",
        ("reset",),
        _rx(r"git\s+reset\s+--hard\b"),
        _check_reset_push,
    ),
)
_SQL_RULES: Final = frozenset({"drop_database", "truncate_table", "delete_without_where", "update_without_where"})
#: Rule families per tool class (file and data tools carry no command line).
_TABLES: Final = {SHELL: gated(_RULES), SQL: gated([r for r in _RULES if r.rule in _SQL_RULES])}
_BULK_WORDS: Final = ("delete", "trash", "remove", "purge", "destroy", "wipe", "empty", "erase")
_BROAD_OPERATORS: Final = tuple(
    """
    in: is: label: older_than: newer_than: before: after: category: has: larger: smaller:
    """.split()
)
_BROAD_QUERIES: Final = frozenset({"", "*", "all", "everything", "any", "in:anywhere", "*:*", "%"})
_QUERY_KEYS: Final = ("query", "q", "filter", "search", "selector", "where")
_ID_LIST_KEYS: Final = tuple(
    """
    ids message_ids file_ids ids_to_delete keys objects items paths files messages threads
    thread_ids event_ids records
    """.split()
)


class DestructiveOpsConfig(DetectorConfig):
    """Tunables of :class:`DestructiveOps`.

    Parameters
    ----------
    protected_branches
        Branch names a force-push must not rewrite (exact, lower-case).
    protected_branch_prefixes
        Branch name prefixes that are protected too (``release/1.2``, ``prod-eu``).
    protected_paths
        More ``rm -rf`` targets treated like the repository root (lower-case, as typed).
    prod_markers
        Substrings that mark a command as aimed at production (namespace, context, account).
    bulk_delete_threshold
        A deletion tool given at least this many ids is a bulk deletion.
    max_scan_chars
        Longer target/argument text is examined only in its first three quarters and last
        quarter of this many characters (bounds the cost of pathological events).
    """

    protected_branches: tuple[str, ...] = (
        "main",
        "master",
        "trunk",
        "develop",
        "production",
        "prod",
        "release",
        "stable",
        "live",
    )
    protected_branch_prefixes: tuple[str, ...] = (
        "release/",
        "release-",
        "releases/",
        "prod/",
        "prod-",
        "production/",
        "hotfix/",
    )
    protected_paths: tuple[str, ...] = ()
    prod_markers: tuple[str, ...] = ("prod", "live", "prd")
    bulk_delete_threshold: int = 20
    max_scan_chars: int = 2048


class DestructiveOps(Detector):
    """Flags irreversible deletions: ``rm -rf /``, ``DROP TABLE``, force-push to main, ``terraform destroy``.

    Scores ~0.9–0.95 for the root filesystem, a home directory, block devices and
    production databases; ~0.85 for protected branches, infrastructure and bulk
    deletions; ~0.8 for the working tree, truncation and ``DELETE`` without ``WHERE``.

    Examples
    --------
    >>> from agentwatch.events.audit_event import from_mapping
    >>> from agentwatch.detect.session_state import SessionTable
    >>> ev = from_mapping({"event_id": "e1", "ts": 1767225600000, "session_id": "s1",
    ...                    "agent_id": "coder", "kind": "tool_call", "tool": "Bash",
    ...                    "target": "git push --force origin main"})
    >>> [finding] = DestructiveOps().observe(ev, SessionTable().touch(ev)[0])
    >>> finding.rule, finding.score, finding.category
    ('git_force_push_protected', 0.85, 'destructive')
    """

    name: ClassVar[str] = "destructive_ops"
    categories: ClassVar[frozenset[str]] = frozenset({"destructive"})
    config_type: ClassVar[type[DetectorConfig]] = DestructiveOpsConfig
    cost_us: ClassVar[float] = 3.7  # measured: bench/detector_cost.py, 2-core reference machine
    summary: ClassVar[str] = "Irreversible deletions of files, history, databases, clusters and cloud resources."

    def __init__(self, config: DestructiveOpsConfig | None = None) -> None:
        super().__init__(config)
        cfg: DestructiveOpsConfig = self.config  # type: ignore[assignment]
        self._scan_cap = max(256, cfg.max_scan_chars)
        self._protected = frozenset(b.lower() for b in cfg.protected_branches)
        self._protected_prefixes = tuple(p.lower() for p in cfg.protected_branch_prefixes)
        self._protected_paths = frozenset(p.lower() for p in cfg.protected_paths)
        self._prod_markers = tuple(p.lower() for p in cfg.prod_markers)
        self._bulk_threshold = cfg.bulk_delete_threshold

    def observe(self, event: AuditEvent, session: SessionState) -> Sequence[Finding]:
        kind = event.kind
        if kind != "tool_call":
            if kind == "session_start" and (cwd := _cwd(event)):
                session.scratch[self.name] = cwd  # so `rm -rf /abs/path/of/the/repo` is recognised
            if kind != "tool_result" or session.kind_counts.get("tool_call"):
                return ()
        best: Hit | None = None
        table = _TABLES.get(tool_class(event.tool, event.args))
        if table is not None:
            text = clip(surface(event), self._scan_cap)
            low = text.lower()
            rules = candidates(table, low)
            if rules:
                best = best_hit(rules, low, text, _Ctx(event, self, session.scratch.get(self.name, "")))
        if best is None and event.args:
            leaf = (event.tool or "").rpartition("__")[2].lower()  # tool_leaf(), inlined: every call passes here
            if any(w in leaf for w in _BULK_WORDS):
                best = self._bulk(event, leaf)
        if best is None:
            return ()
        return report(best, supporting(event), "destructive")

    # -- helpers used by the rule checks ------------------------------------------
    def _is_protected(self, ref: str) -> bool:
        ref = ref.strip("'\"").lstrip("+")
        dst = ref.rpartition(":")[2] if ":" in ref else ref
        if dst.startswith("refs/heads/"):
            dst = dst[len("refs/heads/") :]
        return dst in self._protected or dst.startswith(self._protected_prefixes)

    def _in_prod(self, low: str) -> bool:
        return any(marker in low for marker in self._prod_markers)

    def _bulk(self, event: AuditEvent, leaf: str) -> Hit | None:
        """A deletion tool (``gmail.delete``, ``drive.delete``) aimed at a broad query or many ids."""
        args: dict[str, Any] = event.args or {}
        for key in _ID_LIST_KEYS:
            value = args.get(key)
            if isinstance(value, list) and len(value) >= self._bulk_threshold:
                return Hit(
                    0.8,
                    "bulk_delete",
                    f"deletes {len(value)} items at once through {leaf}",
                    f"{event.tool} {key}=[{len(value)} items]",
                )
        for key in _QUERY_KEYS:
            value = args.get(key)
            if isinstance(value, str) and _broad_query(value):
                return Hit(
                    0.85,
                    "bulk_delete",
                    f"deletes everything matching a broad query through {leaf}",
                    f"{event.tool} {key}={value!r}",
                )
        if args.get("all") is True or args.get("delete_all") is True or args.get("recursive") is True:
            return Hit(
                0.85,
                "bulk_delete",
                f"deletes everything through {leaf}",
                f"{event.tool} {json_text(args)}",
            )
        count = args.get("count") or args.get("max_results") or args.get("limit")
        if isinstance(count, int) and not isinstance(count, bool) and count >= self._bulk_threshold * 5:
            return Hit(
                0.8,
                "bulk_delete",
                f"deletes up to {count} items through {leaf}",
                f"{event.tool} count={count}",
            )
        return None


def _broad_query(query: str) -> bool:
    """``in:anywhere``, ``*``, ``older_than:1d``: no sender, subject or words narrow it."""
    q = query.strip().lower()
    if q in _BROAD_QUERIES:
        return True
    return all(word.startswith(_BROAD_OPERATORS) for word in q.split())
