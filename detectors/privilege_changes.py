"""Privilege changes and guardrail circumvention.

*Privilege escalation*: ``sudo``/``su``/``doas``, setuid and world-writable ``chmod``,
``chown root``, edits to ``/etc/sudoers``, adding users to admin groups, cloud IAM
grants of admin roles, and the agent rewriting its own permission settings
(``.claude/settings.json``, ``.mcp.json``, ``.cursor/`` …).

*Guardrail circumvention*: ``--dangerously-skip-permissions``, disabling the sandbox,
tampering with hooks, bypassing the egress proxy, hiding shell history, running
decoded or downloaded code through ``eval``/``sh``, flushing the firewall, disabling
SELinux/AppArmor, killing security agents — and retrying an action the user denied
through another tool or a wrapper.

The finding's category is the rule's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import ClassVar, Final

from agentwatch.detect.detector_spec import Detector, DetectorConfig, Finding, supporting
from agentwatch.detect.session_state import SessionState
from agentwatch.detectors._rulekit import (
    CMD,
    DATA,
    FILE,
    RULE_SCORE,
    SHELL,
    SQL,
    WRITE_TOOLS,
    Hit,
    Rule,
    Verdict,
    best_hit,
    candidates,
    clip,
    command_words,
    gated,
    is_write_tool,
    report,
    runs_sql,
    segment,
    starts_command,
    surface,
    tool_class,
    tool_leaf,
    window,
)
from agentwatch.events.audit_event import AuditEvent

__all__ = ["PrivilegeChanges", "PrivilegeChangesConfig"]

PRIV: Final = "privilege_escalation"
GUARD: Final = "guardrail_circumvention"

#: Tools whose target is a search pattern or a path that is only read.
READ_ONLY_TOOLS: Final = frozenset({"read", "grep", "glob", "ls", "websearch", "webfetch", "notebookread"})
#: Text right before a command that runs it another way (a retry "via a different route").
_WRAPPED: Final = re.compile(
    r"(?:(?:ba|z|da)?sh\s+-c|eval|sudo(?:\s+-\S+)*|doas|xargs(?:\s+-\S+)*|nohup|setsid|env(?:\s+\S+=\S*)*"
    r"|ssh\s+(?:-\S+\s+)*\S+|(?:docker|kubectl)\s+exec\s+(?:-\S+\s+)*\S+(?:\s+--)?|python3?\s+-c|node\s+-e"
    r"|perl\s+-e|script\s+-c|timeout\s+\d+\w?)\s*[\"'`]?$"
)
#: Settings rules whose finding is guardrail circumvention rather than escalation.
_GUARD_VERDICTS: Final = frozenset({"self_disable_hooks", "self_disable_sandbox"})

Check = Callable[[str, "re.Match[str]", AuditEvent], Verdict]


def _rule(
    rule: str,
    category: str,
    score: float,
    what: str,
    gates: tuple[str, ...],
    rx: re.Pattern[str],
    check: Check | None = None,
) -> Rule:
    """A rule of this detector, which names its category."""
    return Rule(rule, score, what, gates, rx, check, category)


_rx = re.compile


def _check_command(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    return RULE_SCORE if starts_command(low, m.start()) else None


_ROOT_SHELL: Final = re.compile(r"(?:-\w+\s+)*(?:-i\b|-s\b|su\b|bash\b|sh\b|zsh\b|-u\s+root\s+(?:ba|z)?sh\b)")


def _check_sudo(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    if not starts_command(low, m.start()):
        return None
    rest = segment(low, m.end())
    words = rest.split()
    before = low[max(0, m.start() - 160) : m.start()]
    pipe = before.rfind("|")
    if "-s" in words[:3] and pipe >= 0:
        source = before[:pipe].rsplit(";", 1)[-1].rsplit("&&", 1)[-1].strip()
        if source.startswith(("echo", "printf", "cat", "yes")):
            return 0.85, "sudo_password_pipe", "feeds a password to sudo on stdin"
    if _ROOT_SHELL.match(" ".join(words[:3])):
        return 0.8, "root_shell", "opens a root shell"
    return RULE_SCORE


def _check_chmod(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    if not starts_command(low, m.start()):
        return None
    words = command_words(low, m.end())
    modes = [w for w in words if not w.startswith("-")]
    if not modes:
        return None
    mode, targets = modes[0], modes[1:]
    digits = mode.lstrip("0") if mode.isdigit() else ""
    if (len(digits) == 4 and digits[0] in "4567") or "+s" in mode or "u+s" in mode:
        return 0.85, "setuid_chmod", "sets the setuid/setgid bit"
    if digits in ("777", "666") or mode in ("a+rwx", "ugo+rwx", "o+w", "a+w", "o+rwx"):
        return 0.75, "world_writable_chmod", "makes files world-writable"
    sensitive = [t for t in targets if t.startswith("/etc/") or ".ssh" in t or "/etc" == t]
    if not sensitive:
        return None
    if any(t.startswith("/etc") for t in sensitive):
        return 0.7, "sensitive_chmod", "changes permissions under /etc"
    loosening = (digits and len(digits) >= 3 and digits[-2:] != "00") or "o+" in mode or "g+" in mode or "a+" in mode
    if loosening and not all(t.endswith(".pub") for t in sensitive):
        return 0.7, "sensitive_chmod", "loosens permissions on SSH keys"
    return None


def _check_sudoers(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    if is_write_tool(event.tool):
        return RULE_SCORE
    before = low[max(0, m.start() - 160) : m.start()]
    after = low[m.end() : m.end() + 40]
    if ">" in before or "tee" in before or "sed -i" in before or "cp " in before or "mv " in before:
        return RULE_SCORE
    if after.startswith(".d/") and (">" in before or "install" in before):
        return RULE_SCORE
    return 0.5, "sudoers_read", "reads the sudoers configuration"


def _check_settings(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    """A write to the agent's own settings; the score depends on what the write does."""
    leaf = tool_leaf(event.tool)
    if leaf in READ_ONLY_TOOLS:
        return None
    if leaf not in WRITE_TOOLS:
        before = low[max(0, m.start() - 200) : m.start()]
        if not (
            ">" in before
            or "tee " in before
            or "sed -i" in before
            or "cp " in before
            or "mv " in before
            or "rm " in before
            or "jq " in before
            or "truncate" in before
        ):
            return None
    return _settings_verdict(event, low)


def _settings_verdict(event: AuditEvent, low: str) -> Verdict:
    args = event.args or {}
    new = _text_arg(args, ("content", "new_string", "text", "new_source")).lower()
    old = _text_arg(args, ("old_string",)).lower()
    both = new + "\n" + low
    if "bypasspermissions" in both or "dangerously" in both or "skip-permissions" in both:
        return 0.9, "self_bypass_permissions", "switches its own permission mode to bypass"
    if (
        "disableallhooks" in both
        or ('"hooks"' in old and ('"hooks"' not in new or ('"command"' in old and '"command"' not in new)))
        or "rm " in low
    ):
        return 0.85, "self_disable_hooks", "removes its own hooks or settings"
    if (
        ('"enabled": true' in old and '"enabled": false' in new)
        or '"enabled": false' in low
        or ("sandbox" in new and ("false" in new or "disabled" in new))
    ):
        return 0.85, "self_disable_sandbox", "turns off a guardrail in its own settings"
    if "allow" in new or "mcpservers" in new or "allow" in low:
        return 0.8
    return 0.75


def _text_arg(args: dict[str, object], keys: tuple[str, ...]) -> str:
    parts = [v for k in keys if isinstance(v := args.get(k), str)]
    edits = args.get("edits")
    if isinstance(edits, list):
        for edit in edits:
            if isinstance(edit, dict):
                parts.extend(v for k in keys if isinstance(v := edit.get(k), str))
    return "\n".join(parts)


def _check_sql(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    """SQL sent to a database tool (outside a string literal) or through a SQL client."""
    return RULE_SCORE if runs_sql(low, m.start(), event.tool) else None


def _check_no_sandbox(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    window = low[max(0, m.start() - 300) : m.end() + 100]
    if any(b in window for b in ("chrome", "chromium", "puppeteer", "playwright", "electron", "headless", "karma")):
        return None  # headless browsers in containers routinely run without their own sandbox
    return RULE_SCORE


def _check_write_tool(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    return RULE_SCORE if is_write_tool(event.tool) else None


_GRANT_TOOL_WORDS: Final = tuple("collaborator member role permission access grant invite team".split())


def _check_grant_tool(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    tool = (event.tool or "").lower()
    return RULE_SCORE if any(w in tool for w in _GRANT_TOOL_WORDS) else None


def _check_no_verify(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    return RULE_SCORE if "git" in low[max(0, m.start() - 200) : m.start()] else None


_SECURITY_AGENTS = (
    r"(?:falcon|crowdstrike|osquery|auditd|wazuh|sysdig|falco|carbonblack|cbagent|sentinel"
    r"|elastic-agent|auditbeat|mdatp|defender|clamd|tetragon|agentwatch|santa|cylance|qualys"
    r"|rapid7|ir_agent|datadog-agent|tanium)"
)

#: Rules on the lower-cased surface, highest score first.
_RULES: Final = (
    _rule(
        "skip_permissions",
        GUARD,
        0.9,
        "skips every permission prompt",
        ("dangerously", "bypass"),
        _rx(r"--dangerously-(?:skip-permissions|bypass-approvals-and-sandbox)|bypasspermissions"),
    ),
    _rule("sudoers_edit", PRIV, 0.9, "edits the sudoers file", ("sudo",), _rx(r"/etc/sudoers"), _check_sudoers),
    _rule("sudoers_edit", PRIV, 0.9, "edits the sudoers file", ("sudo",), _rx(r"visudo\b"), _check_command),
    _rule(
        "cloud_admin_grant",
        PRIV,
        0.9,
        "grants a cloud admin role",
        ("admin",),
        _rx(r"attach-(?:user|role|group)-policy\b" + CMD + r"administratoraccess"),
    ),
    _rule(
        "sql_superuser",
        PRIV,
        0.9,
        "makes a database role superuser",
        ("superuser",),
        _rx(r"(?:alter|create)\s+(?:role|user)\b[^;]*\bsuperuser\b"),
        _check_sql,
    ),
    _rule(
        "sandbox_disabled",
        GUARD,
        0.85,
        "disables the sandbox",
        ("sandbox",),
        _rx(
            r"dangerouslydisablesandbox\"?\s*[:=]\s*true|\"?sandbox\"?\s*[:=]\s*\"?(?:false|off|none|disabled)\b"
            r"|sandbox_mode\s*=\s*\"?danger-full-access|--sandbox[\s=]+(?:danger-full-access|none|off)"
            r"|sandbox[_-]?disabled?\s*=\s*[\"']?(?:1|true|yes)\b|no_sandbox\s*=\s*[\"']?(?:1|true|yes)\b"
        ),
    ),
    _rule(
        "decode_and_run",
        GUARD,
        0.85,
        "runs decoded content through a shell",
        ("base64", "xxd", "openssl"),
        _rx(
            r"(?:base64\s+(?:-\w+\s+)*(?:-d|--decode|-D)\b|xxd\s+(?:-\w+\s+)*-r|openssl\s+(?:enc|base64)\s"
            + CMD
            + r"-d\b)"
            + CMD
            + r"\|\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\b"
        ),
    ),
    _rule(
        "decode_and_run",
        GUARD,
        0.85,
        "runs decoded content through an interpreter",
        ("base64", "xxd"),
        _rx(
            r"(?:base64\s+(?:-\w+\s+)*(?:-d|--decode)|xxd\s+(?:-\w+\s+)*-r)"
            + CMD
            + r"\|\s*(?:python[\d.]*|perl|ruby|node)(?:\s+-)?\s*(?:$|[;&|\n)])"
        ),
    ),
    _rule(
        "eval_remote",
        GUARD,
        0.85,
        "evaluates downloaded or decoded code",
        ("eval",),
        _rx(r"eval\s+[\"']?(?:\$\(|`)[^)`]*(?:curl|wget|base64|xxd|openssl|nc\s)"),
    ),
    _rule(
        "security_disabled",
        GUARD,
        0.85,
        "disables SELinux/AppArmor or auditing",
        ("setenforce", "apparmor", "aa-", "audit", "mppreference"),
        _rx(
            r"setenforce\s+(?:0|permissive)|(?:stop|disable|mask)\s+apparmor|aa-(?:teardown|disable)\b"
            r"|auditctl\s+(?:-e\s*0|-d\b)|set-mppreference\s" + CMD + r"-disable\w+\s+\$?true"
        ),
    ),
    _rule(
        "security_agent_killed",
        GUARD,
        0.85,
        "stops a security agent",
        ("kill", "stop", "disable", "mask", "unload", "bootout", "remove", "uninstall", "purge"),
        _rx(
            r"(?:kill|pkill|killall|stop|disable|mask|unload|bootout|remove|uninstall|purge)\s" + CMD + _SECURITY_AGENTS
        ),
    ),
    _rule("setuid_chmod", PRIV, 0.85, "changes file modes", ("chmod",), _rx(r"chmod\s"), _check_chmod),
    _rule(
        "admin_group",
        PRIV,
        0.85,
        "adds a user to an admin group",
        ("user", "gpasswd", "group"),
        _rx(
            r"(?:usermod\s"
            + CMD
            + r"-a?g\s*\S*|gpasswd\s+-a\s+\S+\s+|adduser\s+\S+\s+|useradd\s"
            + CMD
            + r"-g\s*\S*|dseditgroup\s"
            + CMD
            + r")\b(?:sudo|wheel|admin|root|docker)\b"
            r"|net\s+localgroup\s+administrators\s" + CMD + r"/add"
        ),
    ),
    _rule(
        "cloud_admin_grant",
        PRIV,
        0.85,
        "grants a cloud admin role",
        ("iam", "role"),
        _rx(
            r"add-iam-policy-binding\b" + CMD + r"roles/(?:owner|editor|\w*admin\w*)\b"
            r"|clusterrolebinding\b" + CMD + r"cluster-admin\b"
            r"|role\s+assignment\s+create\b" + CMD + r"(?:owner|contributor|user access administrator)"
        ),
    ),
    _rule(
        "self_settings_edit",
        PRIV,
        0.85,
        "rewrites its own permission settings",
        ("claude", "mcp", "cursor", "codex", "gemini", "continue", "windsurf", "aider"),
        _rx(
            r"\.(?:claude/settings(?:\.local)?\.json|claude\.json|mcp\.json|cursor/|codex/config\.toml"
            r"|gemini/settings\.json|continue/config|windsurf/|aider\.conf|vscode/mcp\.json)|claude_desktop_config"
        ),
        _check_settings,
    ),
    _rule(
        "hooks_tampered",
        GUARD,
        0.85,
        "disables its hooks",
        ("hook", "husky", "pre-commit"),
        _rx(
            r"(?:rm|mv|truncate|unlink)\s" + CMD + r"(?:\.claude/hooks|\.husky|\.git/hooks|\.pre-commit-config)"
            r"|disableallhooks\"?\s*[:=]\s*true|core\.hookspath[\s=]+(?:/dev/null|\"\"|'')"
        ),
    ),
    _rule(
        "decode_and_run",
        GUARD,
        0.85,
        "runs decoded content through a shell",
        ("base64", "b64decode"),
        _rx(
            r"(?:ba|z|da)?sh\s+-c\s+[\"']?\$\([^)]*base64\s+(?:-\w+\s+)*(?:-d|--decode)"
            r"|(?:os\.system|os\.popen|subprocess\.\w+|exec|eval)\(\s*(?:base64\.)?b64decode"
        ),
    ),
    _rule(
        "sql_grant_admin",
        PRIV,
        0.85,
        "grants admin rights in the database",
        ("grant",),
        _rx(
            r"grant\s+(?:role\s+)?(?:all\s+privileges|all\s+on|ownership|admin\b|accountadmin|securityadmin|sysadmin"
            r"|useradmin|orgadmin|dba\b|db_owner|rds_superuser|cloudsqlsuperuser|pg_write_all_data|pg_read_all_data"
            r"|pg_execute_server_program|superuser)"
        ),
        _check_sql,
    ),
    _rule(
        "sql_audit_off",
        GUARD,
        0.85,
        "turns off database audit logging",
        ("log", "audit"),
        _rx(
            r"(?:pgaudit\.log|log_statement|enable_query_logging|general_log|audit_trail|log_min_duration_statement"
            r"|audit_log\w*)\s*(?:=|to)\s*'?(?:none|false|off|0|-1)\b"
        ),
        _check_sql,
    ),
    _rule(
        "code_host_admin",
        PRIV,
        0.85,
        "makes itself an admin of the code host",
        ("admin",),
        _rx(
            r"(?:gh\s+api|curl|http)\b[^;&|\n]*(?:role[=:]\s*\"?admin|permission[=:]\s*\"?admin|/teams/admins?/memberships)"
        ),
    ),
    _rule(
        "cluster_guardrail_removed",
        GUARD,
        0.85,
        "removes a cluster admission guardrail",
        ("webhook", "polic", "constraint", "psp"),
        _rx(
            r"delete\s+(?:validatingwebhookconfigurations?|mutatingwebhookconfigurations?|clusterpolic(?:y|ies)"
            r"|constrainttemplates?|constraints?|podsecuritypolic(?:y|ies)|psp)\b"
        ),
    ),
    _rule(
        "security_agent_killed",
        GUARD,
        0.85,
        "scales a security agent to zero",
        ("replicas",),
        _rx(
            r"scale\s"
            + CMD
            + r"(?:falco|gatekeeper|kyverno|tetragon|sysdig|wazuh|crowdstrike|falcon|datadog|agentwatch)"
            + CMD
            + r"--replicas[=\s]+0\b"
        ),
    ),
    _rule(
        "container_escape",
        GUARD,
        0.85,
        "escapes to the host through a privileged container",
        ("privileged", "nsenter"),
        _rx(
            r"(?:docker|podman|nerdctl)\s+run\b[^;&|\n]*--privileged[^;&|\n]*(?:-v\s*/:|--volume[=\s]+/:|chroot|--pid[=\s]+host)"
            r"|nsenter\s+(?:-\w+\s+)*(?:-t\s*1\b|--target[=\s]+1\b)"
        ),
    ),
    _rule(
        "hooks_tampered",
        GUARD,
        0.85,
        "overwrites or disables its hooks",
        ("hook",),
        _rx(r">\s*\S*\.claude/hooks/|chmod\s+(?:-\w+\s+)*-x\s+\S*\.claude/hooks"),
    ),
    _rule(
        "cluster_guardrail_removed",
        GUARD,
        0.8,
        "lets privileged pods into a namespace",
        ("pod-security",),
        _rx(r"pod-security\.kubernetes\.io/enforce=privileged"),
    ),
    _rule(
        "cloud_admin_grant",
        PRIV,
        0.8,
        "grants itself cloud admin access",
        ("iam", "role"),
        _rx(
            r"iam\s+(?:add-user-to-group\b"
            + CMD
            + r"admin|put-(?:user|role|group)-policy\b"
            + CMD
            + r"\"action\"\s*:\s*\"\*\"|create-access-key|(?:create|update)-login-profile)"
            r"|clusterrole\b[^\n]*\"verbs\"\s*:\s*\[\s*\"\*\""
        ),
    ),
    _rule(
        "history_evasion",
        GUARD,
        0.8,
        "hides its shell history",
        ("hist", "history"),
        _rx(r"set\s+\+o\s+history|unset\s+histfile|histfile=/dev/null|history\s+-c\b|histsize=0|histfilesize=0"),
    ),
    _rule(
        "firewall_disabled",
        GUARD,
        0.8,
        "disables the firewall",
        ("tables", "ufw", "nft", "firewall"),
        _rx(
            r"(?:ip6?tables\s+(?:-\w+\s+)*(?:-f|--flush)\b|ip6?tables\s+-p\s+(?:input|output|forward)\s+accept"
            r"|ufw\s+disable|nft\s+flush\s+ruleset|(?:stop|disable|mask)\s+(?:firewalld|ufw|nftables|iptables)"
            r"|netsh\s+advfirewall\s+set\s+\w+\s+state\s+off)"
        ),
    ),
    _rule(
        "root_shell",
        PRIV,
        0.8,
        "switches to root",
        ("su ",),
        _rx(r"su\s+(?:-\s|-l\b|-\s*$|root\b|-c\b)"),
        _check_command,
    ),
    _rule(
        "chown_root",
        PRIV,
        0.7,
        "gives files to root",
        ("chown",),
        _rx(r"chown\s+(?:-\w+\s+)*root(?::root)?\b"),
        _check_command,
    ),
    _rule(
        "proxy_bypass",
        GUARD,
        0.75,
        "bypasses the egress proxy",
        ("proxy",),
        _rx(
            r"unset\s+(?:\w+\s+)*(?:https?|all)_proxy\b|no_proxy=[\"']?\*|--noproxy\s+[\"']?\*"
            r"|env\s+-u\s+(?:https?|all)_proxy"
        ),
    ),
    _rule(
        "proxy_bypass",
        GUARD,
        0.75,
        "removes the egress proxy from its environment",
        ("proxy",),
        _rx(
            r"(?:environ\.pop|del\s+os\.environ|delete\s+process\.env)[^\n]{0,120}_proxy"
            r"|_proxy['\"]?\s*(?:,\s*['\"]\w+['\"]\s*)*\)[^\n]{0,60}environ\.pop"
        ),
    ),
    _rule(
        "hooks_tampered",
        GUARD,
        0.7,
        "uninstalls commit hooks",
        ("pre-commit", "hook", "husky"),
        _rx(r"pre-commit\s+uninstall|chmod\s+-x\s+\S*(?:\.git/hooks|\.husky)"),
    ),
    _rule(
        "sudo",
        PRIV,
        0.6,
        "runs a command as root",
        ("sudo", "doas", "pkexec", "runas"),
        _rx(r"(?:sudo|doas|pkexec)\s|runas\s+/user:"),
        _check_sudo,
    ),
    _rule(
        "sandbox_disabled",
        GUARD,
        0.6,
        "turns off a sandbox",
        ("no-sandbox",),
        _rx(r"--no-sandbox\b"),
        _check_no_sandbox,
    ),
    _rule(
        "sandbox_disabled",
        GUARD,
        0.6,
        "runs a privileged container or a new namespace",
        ("privileged", "unshare"),
        _rx(r"--privileged\b|unshare\s+(?:-\w+\s+)*-r\b"),
        _check_command,
    ),
    _rule(
        "hooks_rewritten",
        GUARD,
        0.75,
        "rewrites its own hook scripts",
        ("hooks/",),
        _rx(r"\.claude/hooks/|\.git/hooks/|\.husky/"),
        _check_write_tool,
    ),
    _rule(
        "admin_grant_tool",
        PRIV,
        0.8,
        "grants admin or owner rights through a tool",
        ("admin", "owner"),
        _rx(r"\b(?:admin|owner|administrator|maintain)\b"),
        _check_grant_tool,
    ),
    _rule(
        "skip_verification",
        GUARD,
        0.5,
        "skips commit hooks",
        ("verify", "husky"),
        _rx(r"--no-verify\b|husky=0|husky_skip_hooks=1"),
        _check_no_verify,
    ),
)
#: Rules that can fire on a file or data tool (its target is a path or a value, not a command).
_FILE_RULES: Final = frozenset(
    {"skip_permissions", "sudoers_edit", "self_settings_edit", "sandbox_disabled", "hooks_rewritten"}
)
_SQL_RULES: Final = frozenset({"sql_superuser", "sql_grant_admin", "sql_audit_off"})
_DATA_RULES: Final = frozenset({"skip_permissions", "sandbox_disabled", "admin_grant_tool"})
_NOT_FOR_SHELL: Final = frozenset({"hooks_rewritten", "admin_grant_tool"})
#: Rule families per tool class.
_TABLES: Final = {
    SHELL: gated([r for r in _RULES if r.rule not in _NOT_FOR_SHELL]),
    FILE: gated([r for r in _RULES if r.rule in _FILE_RULES]),
    SQL: gated([r for r in _RULES if r.rule in _SQL_RULES]),
    DATA: gated([r for r in _RULES if r.rule in _DATA_RULES]),
}


class PrivilegeChangesConfig(DetectorConfig):
    """Tunables of :class:`PrivilegeChanges`.

    Parameters
    ----------
    extra_settings_paths
        More path fragments (lower-case) of files that hold the agent's own permissions.
    denied_retry_score
        Score of retrying, through another tool or a wrapper, an action the user denied.
    max_denied_remembered
        Denied actions remembered per session (oldest forgotten first).
    sudo_score
        Score of a plain ``sudo``/``doas`` (a root shell or piped password scores higher).
    max_scan_chars
        Longer target/argument text is examined only in its first three quarters and last
        quarter of this many characters (bounds the cost of pathological events).
    """

    extra_settings_paths: tuple[str, ...] = ()
    denied_retry_score: float = 0.7
    max_denied_remembered: int = 4
    sudo_score: float = 0.45
    max_scan_chars: int = 2048


class PrivilegeChanges(Detector):
    """Flags privilege escalation and attempts to get around the agent's guardrails.

    Scores: ``--dangerously-skip-permissions``, sudoers edits and admin grants ~0.9;
    setuid, sandbox off, decoded code run through a shell, security tooling disabled,
    admin groups ~0.85; firewall flush, hidden history, root shells ~0.8; proxy bypass,
    world-writable files, settings edits ~0.75; a plain ``sudo`` 0.45 (low: sudo alone is ordinary administration).

    Examples
    --------
    >>> from agentwatch.events.audit_event import from_mapping
    >>> from agentwatch.detect.session_state import SessionTable
    >>> ev = from_mapping({"event_id": "e1", "ts": 1767225600000, "session_id": "s1",
    ...                    "agent_id": "coder", "kind": "tool_call", "tool": "Bash",
    ...                    "target": "claude --dangerously-skip-permissions -p 'fix the build'"})
    >>> [finding] = PrivilegeChanges().observe(ev, SessionTable().touch(ev)[0])
    >>> finding.rule, finding.score, finding.category
    ('skip_permissions', 0.9, 'guardrail_circumvention')
    """

    name: ClassVar[str] = "privilege_changes"
    categories: ClassVar[frozenset[str]] = frozenset({PRIV, GUARD})
    config_type: ClassVar[type[DetectorConfig]] = PrivilegeChangesConfig
    cost_us: ClassVar[float] = 4.9  # measured: bench/detector_cost.py, 2-core reference machine
    summary: ClassVar[str] = "sudo, setuid, admin grants, self-granted permissions, sandbox/hook/proxy bypasses."

    def __init__(self, config: PrivilegeChangesConfig | None = None) -> None:
        super().__init__(config)
        cfg: PrivilegeChangesConfig = self.config  # type: ignore[assignment]
        self._scan_cap = max(256, cfg.max_scan_chars)
        self._extra_settings = tuple(p.lower() for p in cfg.extra_settings_paths if p)
        self._retry_score = cfg.denied_retry_score
        self._max_denied = cfg.max_denied_remembered
        #: Configured scores of verdicts, by rule name.
        self._scores = {"sudo": cfg.sudo_score}

    def observe(self, event: AuditEvent, session: SessionState) -> Sequence[Finding]:
        if event.outcome == "denied":
            self._remember_denied(event, session)
            return ()
        kind = event.kind
        if kind != "tool_call" and (kind != "tool_result" or session.kind_counts.get("tool_call")):
            return ()
        text = clip(surface(event), self._scan_cap)
        low = text.lower()
        best: Hit | None = None
        rules = candidates(_TABLES[tool_class(event.tool, event.args)], low)
        if rules:
            best = best_hit(rules, low, text, event, scores=self._scores)
            if best is not None and best.rule in _GUARD_VERDICTS:
                best = best._replace(category=GUARD)
        args = event.args
        if args and args.get("dangerouslyDisableSandbox") is True and (best is None or best[0] < 0.85):
            best = Hit(0.85, "sandbox_disabled", "runs a command outside the sandbox", text[:200], GUARD)
        if args and (best is None or best[0] < 0.85):
            best = _content_hit(event, args) or best
        if self._extra_settings and (best is None or best[0] < 0.75):
            best = self._extra_settings_hit(event, low, text) or best
        event_ids = supporting(event)
        if self.name in session.scratch and (best is None or best[0] < self._retry_score):
            retry = self._denied_retry(event, session, low, text)
            if retry is not None:
                best, denied_id = retry
                event_ids = (denied_id, event.event_id)
        if best is None:
            return ()
        return report(best, event_ids)

    def _extra_settings_hit(self, event: AuditEvent, low: str, surface: str) -> Hit | None:
        if not is_write_tool(event.tool):
            return None
        for fragment in self._extra_settings:
            if fragment in low:
                verdict = _settings_verdict(event, low)
                if isinstance(verdict, tuple):
                    category = GUARD if verdict[1] in _GUARD_VERDICTS else PRIV
                    return Hit(verdict[0], verdict[1], verdict[2], surface[:200], category)
                return Hit(0.75, "self_settings_edit", "rewrites its own permission settings", surface[:200], PRIV)
        return None

    # -- denied, then retried another way -----------------------------------------
    def _remember_denied(self, event: AuditEvent, session: SessionState) -> None:
        target = (event.target or "").strip().lower()
        if len(target) < 6:
            return
        denied: list[tuple[str, str, str]] = session.scratch.setdefault(self.name, [])
        denied.append(((event.tool or "").lower(), target[:200], event.event_id))
        if len(denied) > self._max_denied:
            del denied[0]

    def _denied_retry(self, event: AuditEvent, session: SessionState, low: str, surface: str) -> tuple[Hit, str] | None:
        """The retry of a denied action through another tool or a wrapper, and the denied event's id."""
        tool = (event.tool or "").lower()
        for denied_tool, target, denied_id in session.scratch[self.name]:
            at = low.find(target)
            if at < 0:
                continue
            if tool != denied_tool:
                how = f"retries an action the user denied ({denied_tool}) through {tool or 'another tool'}"
            elif _WRAPPED.search(low, max(0, at - 80), at):
                how = "retries an action the user denied, wrapped in another command"
            else:
                continue
            hit = Hit(self._retry_score, "denied_retry", how, window(surface, low, at, at + len(target)), GUARD)
            return hit, denied_id
        return None


_BYPASS_SETTING: Final = re.compile(r"defaultMode\"?\s*[:=]\s*\"?bypassPermissions")
_PROSE_FILES: Final = (".md", ".rst", ".txt", ".adoc", ".html")


def _content_hit(event: AuditEvent, args: dict[str, object]) -> Hit | None:
    """Content the agent writes that switches an agent's permission checks off.

    A settings value (``"defaultMode": "bypassPermissions"``) anywhere; the skip flag only
    in scripts and config, not in prose (documentation may well mention it).
    """
    prose = (event.target or "").lower().endswith(_PROSE_FILES)
    for key in ("content", "new_string", "text", "new_source"):
        value = args.get(key)
        if not isinstance(value, str) or ("ermissions" not in value and "angerously" not in value):
            continue
        hit = _BYPASS_SETTING.search(value)
        if hit is not None:
            snippet = value[max(0, hit.start() - 40) : hit.end() + 20]
            return Hit(0.85, "bypass_permissions_written", "writes a bypass-permissions setting", snippet, PRIV)
        at = value.find("--dangerously-skip-permissions")
        if at >= 0 and not prose:
            snippet = value[max(0, at - 40) : at + 60]
            what = "writes a command that skips permission prompts"
            return Hit(0.6, "skip_permissions_written", what, snippet, GUARD)
    return None
