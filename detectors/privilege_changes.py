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
from typing import ClassVar, Final, NamedTuple

import msgspec

from monitor.detector_spec import Detector, DetectorConfig, Finding, quote, supporting
from monitor.event import AuditEvent
from monitor.session_state import SessionState

__all__ = ["PrivilegeChanges", "PrivilegeChangesConfig"]

_encode = msgspec.json.Encoder().encode

PRIV: Final = "privilege_escalation"
GUARD: Final = "guardrail_circumvention"

#: Argument keys holding file content or prose rather than a command or a path.
CONTENT_KEYS: Final = frozenset(
    """
    content new_string old_string text body edits new_source description prompt message messages
    subject summary title comment notes todos
    """.split()
)
#: Tools that write a file (lower-cased; an MCP tool matches on its last ``__`` segment).
WRITE_TOOLS: Final = frozenset(
    """
    write edit multiedit notebookedit write_file edit_file create_file str_replace_editor
    apply_patch
    """.split()
)
#: Tools whose target is a search pattern or a path that is only read.
READ_ONLY_TOOLS: Final = frozenset({"read", "grep", "glob", "ls", "websearch", "webfetch", "notebookread"})
_BOUNDARY: Final = frozenset(" \t\n;&|(`'\"{$")
_SEGMENT_END: Final = re.compile(r"[;&|\n)`]")
_QUOTE_OWNER: Final = re.compile(
    r"(?:echo|printf|grep|rg|ag|-m|--message|comment|logger|format|pretty)\s*=?\s*$"
)
#: Text right before a command that runs it another way (a retry "via a different route").
_WRAPPED: Final = re.compile(
    r"(?:(?:ba|z|da)?sh\s+-c|eval|sudo(?:\s+-\S+)*|doas|xargs(?:\s+-\S+)*|nohup|setsid|env(?:\s+\S+=\S*)*"
    r"|ssh\s+(?:-\S+\s+)*\S+|(?:docker|kubectl)\s+exec\s+(?:-\S+\s+)*\S+(?:\s+--)?|python3?\s+-c|node\s+-e"
    r"|perl\s+-e|script\s+-c|timeout\s+\d+\w?)\s*[\"'`]?$"
)
#: Settings rules whose finding is guardrail circumvention rather than escalation.
_GUARD_VERDICTS: Final = frozenset({"self_disable_hooks", "self_disable_sandbox"})

Verdict = float | tuple[float, str, str] | None
#: A check returning this keeps the rule's own score.
RULE_SCORE: Final = 0.0
Check = Callable[[str, "re.Match[str]", AuditEvent], Verdict]


class _Rule(NamedTuple):
    rule: str
    category: str
    score: float
    what: str
    #: Cheap substring tests; the regex runs only when one of them is in the text.
    gates: tuple[str, ...]
    rx: re.Pattern[str]
    check: Check | None = None


def _starts_command(low: str, at: int) -> bool:
    """``at`` begins a command word, and not inside text quoted for echo/printf/grep/commit."""
    if at and low[at - 1] not in _BOUNDARY:
        return False
    line_start = low.rfind("\n", 0, at) + 1
    for q in ("'", '"'):
        opened = low.rfind(q, line_start, at)
        if opened >= 0 and low.count(q, line_start, at) % 2 == 1:
            return _QUOTE_OWNER.search(low, max(line_start, opened - 40), opened) is None
    return True


def _segment(low: str, start: int) -> str:
    end = _SEGMENT_END.search(low, start)
    return low[start : end.start() if end else len(low)]


_STOP_WORDS: Final = ("<", ">", "#", "2>", "1>", "&>")


def _words(low: str, start: int) -> list[str]:
    """The words of the shell command starting at ``start``, up to a redirection or a comment."""
    words = _segment(low, start).split()
    for i, word in enumerate(words):
        if word.startswith(_STOP_WORDS):
            return words[:i]
    return words


def _check_command(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    return RULE_SCORE if _starts_command(low, m.start()) else None


_ROOT_SHELL: Final = re.compile(r"(?:-\w+\s+)*(?:-i\b|-s\b|su\b|bash\b|sh\b|zsh\b|-u\s+root\s+(?:ba|z)?sh\b)")


def _check_sudo(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    if not _starts_command(low, m.start()):
        return None
    rest = _segment(low, m.end())
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
    if not _starts_command(low, m.start()):
        return None
    words = _words(low, m.end())
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
    loosening = (
        (digits and len(digits) >= 3 and digits[-2:] != "00") or "o+" in mode or "g+" in mode or "a+" in mode
    )
    if loosening and not all(t.endswith(".pub") for t in sensitive):
        return 0.7, "sensitive_chmod", "loosens permissions on SSH keys"
    return None


def _check_sudoers(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    if _leaf(event.tool) in WRITE_TOOLS:
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
    leaf = _leaf(event.tool)
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


#: A database tool's name contains one of these; elsewhere SQL runs through a named client.
_SQL_TOOL_WORDS: Final = tuple(
    """
    sql query database postgres mysql bigquery snowflake warehouse redshift clickhouse duckdb db.
    db_
    """.split()
)
_SQL_CLIENTS: Final = (
    "psql",
    "mysql",
    "sqlite3",
    "sqlcmd",
    "clickhouse",
    "bq query",
    "snowsql",
    "duckdb",
    "mariadb",
    "pgcli",
    "trino",
    "presto",
    "snowflake",
)


def _check_sql(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    """SQL sent to a database tool (outside a string literal) or through a SQL client."""
    tool = (event.tool or "").lower()
    if any(w in tool for w in _SQL_TOOL_WORDS):
        return RULE_SCORE if low.count("'", 0, m.start()) % 2 == 0 else None
    return RULE_SCORE if any(c in low for c in _SQL_CLIENTS) else None


def _check_no_sandbox(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    window = low[max(0, m.start() - 300) : m.end() + 100]
    if any(
        b in window
        for b in ("chrome", "chromium", "puppeteer", "playwright", "electron", "headless", "karma")
    ):
        return None  # headless browsers in containers routinely run without their own sandbox
    return RULE_SCORE


def _check_write_tool(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    return RULE_SCORE if _leaf(event.tool) in WRITE_TOOLS else None


_GRANT_TOOL_WORDS: Final = tuple("collaborator member role permission access grant invite team".split())


def _check_grant_tool(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    tool = (event.tool or "").lower()
    return RULE_SCORE if any(w in tool for w in _GRANT_TOOL_WORDS) else None


def _check_no_verify(low: str, m: re.Match[str], event: AuditEvent) -> Verdict:
    return RULE_SCORE if "git" in low[max(0, m.start() - 200) : m.start()] else None


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_CMD = r"[^;&|\n]*"
_SECURITY_AGENTS = (
    r"(?:falcon|crowdstrike|osquery|auditd|wazuh|sysdig|falco|carbonblack|cbagent|sentinel"
    r"|elastic-agent|auditbeat|mdatp|defender|clamd|tetragon|agentwatch|santa|cylance|qualys"
    r"|rapid7|ir_agent|datadog-agent|tanium)"
)

#: Rules on the lower-cased surface, highest score first.
_RULES: Final = (
    _Rule(
        "skip_permissions",
        GUARD,
        0.9,
        "skips every permission prompt",
        ("dangerously", "bypass"),
        _rx(r"--dangerously-(?:skip-permissions|bypass-approvals-and-sandbox)|bypasspermissions"),
    ),
    _Rule(
        "sudoers_edit", PRIV, 0.9, "edits the sudoers file", ("sudo",), _rx(r"/etc/sudoers"), _check_sudoers
    ),
    _Rule("sudoers_edit", PRIV, 0.9, "edits the sudoers file", ("sudo",), _rx(r"visudo\b"), _check_command),
    _Rule(
        "cloud_admin_grant",
        PRIV,
        0.9,
        "grants a cloud admin role",
        ("admin",),
        _rx(r"attach-(?:user|role|group)-policy\b" + _CMD + r"administratoraccess"),
    ),
    _Rule(
        "sql_superuser",
        PRIV,
        0.9,
        "makes a database role superuser",
        ("superuser",),
        _rx(r"(?:alter|create)\s+(?:role|user)\b[^;]*\bsuperuser\b"),
        _check_sql,
    ),
    _Rule(
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
    _Rule(
        "decode_and_run",
        GUARD,
        0.85,
        "runs decoded content through a shell",
        ("base64", "xxd", "openssl"),
        _rx(
            r"(?:base64\s+(?:-\w+\s+)*(?:-d|--decode|-D)\b|xxd\s+(?:-\w+\s+)*-r|openssl\s+(?:enc|base64)\s"
            + _CMD
            + r"-d\b)"
            + _CMD
            + r"\|\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\b"
        ),
    ),
    _Rule(
        "decode_and_run",
        GUARD,
        0.85,
        "runs decoded content through an interpreter",
        ("base64", "xxd"),
        _rx(
            r"(?:base64\s+(?:-\w+\s+)*(?:-d|--decode)|xxd\s+(?:-\w+\s+)*-r)"
            + _CMD
            + r"\|\s*(?:python[\d.]*|perl|ruby|node)(?:\s+-)?\s*(?:$|[;&|\n)])"
        ),
    ),
    _Rule(
        "eval_remote",
        GUARD,
        0.85,
        "evaluates downloaded or decoded code",
        ("eval",),
        _rx(r"eval\s+[\"']?(?:\$\(|`)[^)`]*(?:curl|wget|base64|xxd|openssl|nc\s)"),
    ),
    _Rule(
        "security_disabled",
        GUARD,
        0.85,
        "disables SELinux/AppArmor or auditing",
        ("setenforce", "apparmor", "aa-", "audit", "mppreference"),
        _rx(
            r"setenforce\s+(?:0|permissive)|(?:stop|disable|mask)\s+apparmor|aa-(?:teardown|disable)\b"
            r"|auditctl\s+(?:-e\s*0|-d\b)|set-mppreference\s" + _CMD + r"-disable\w+\s+\$?true"
        ),
    ),
    _Rule(
        "security_agent_killed",
        GUARD,
        0.85,
        "stops a security agent",
        ("kill", "stop", "disable", "mask", "unload", "bootout", "remove", "uninstall", "purge"),
        _rx(
            r"(?:kill|pkill|killall|stop|disable|mask|unload|bootout|remove|uninstall|purge)\s"
            + _CMD
            + _SECURITY_AGENTS
        ),
    ),
    _Rule("setuid_chmod", PRIV, 0.85, "changes file modes", ("chmod",), _rx(r"chmod\s"), _check_chmod),
    _Rule(
        "admin_group",
        PRIV,
        0.85,
        "adds a user to an admin group",
        ("user", "gpasswd", "group"),
        _rx(
            r"(?:usermod\s"
            + _CMD
            + r"-a?g\s*\S*|gpasswd\s+-a\s+\S+\s+|adduser\s+\S+\s+|useradd\s"
            + _CMD
            + r"-g\s*\S*|dseditgroup\s"
            + _CMD
            + r")\b(?:sudo|wheel|admin|root|docker)\b"
            r"|net\s+localgroup\s+administrators\s" + _CMD + r"/add"
        ),
    ),
    _Rule(
        "cloud_admin_grant",
        PRIV,
        0.85,
        "grants a cloud admin role",
        ("iam", "role"),
        _rx(
            r"add-iam-policy-binding\b" + _CMD + r"roles/(?:owner|editor|\w*admin\w*)\b"
            r"|clusterrolebinding\b" + _CMD + r"cluster-admin\b"
            r"|role\s+assignment\s+create\b" + _CMD + r"(?:owner|contributor|user access administrator)"
        ),
    ),
    _Rule(
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
    _Rule(
        "hooks_tampered",
        GUARD,
        0.85,
        "disables its hooks",
        ("hook", "husky", "pre-commit"),
        _rx(
            r"(?:rm|mv|truncate|unlink)\s"
            + _CMD
            + r"(?:\.claude/hooks|\.husky|\.git/hooks|\.pre-commit-config)"
            r"|disableallhooks\"?\s*[:=]\s*true|core\.hookspath[\s=]+(?:/dev/null|\"\"|'')"
        ),
    ),
    _Rule(
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
    _Rule(
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
    _Rule(
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
    _Rule(
        "code_host_admin",
        PRIV,
        0.85,
        "makes itself an admin of the code host",
        ("admin",),
        _rx(
            r"(?:gh\s+api|curl|http)\b[^;&|\n]*(?:role[=:]\s*\"?admin|permission[=:]\s*\"?admin|/teams/admins?/memberships)"
        ),
    ),
    _Rule(
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
    _Rule(
        "security_agent_killed",
        GUARD,
        0.85,
        "scales a security agent to zero",
        ("replicas",),
        _rx(
            r"scale\s"
            + _CMD
            + r"(?:falco|gatekeeper|kyverno|tetragon|sysdig|wazuh|crowdstrike|falcon|datadog|agentwatch)"
            + _CMD
            + r"--replicas[=\s]+0\b"
        ),
    ),
    _Rule(
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
    _Rule(
        "hooks_tampered",
        GUARD,
        0.85,
        "overwrites or disables its hooks",
        ("hook",),
        _rx(r">\s*\S*\.claude/hooks/|chmod\s+(?:-\w+\s+)*-x\s+\S*\.claude/hooks"),
    ),
    _Rule(
        "cluster_guardrail_removed",
        GUARD,
        0.8,
        "lets privileged pods into a namespace",
        ("pod-security",),
        _rx(r"pod-security\.kubernetes\.io/enforce=privileged"),
    ),
    _Rule(
        "cloud_admin_grant",
        PRIV,
        0.8,
        "grants itself cloud admin access",
        ("iam", "role"),
        _rx(
            r"iam\s+(?:add-user-to-group\b"
            + _CMD
            + r"admin|put-(?:user|role|group)-policy\b"
            + _CMD
            + r"\"action\"\s*:\s*\"\*\"|create-access-key|(?:create|update)-login-profile)"
            r"|clusterrole\b[^\n]*\"verbs\"\s*:\s*\[\s*\"\*\""
        ),
    ),
    _Rule(
        "history_evasion",
        GUARD,
        0.8,
        "hides its shell history",
        ("hist", "history"),
        _rx(
            r"set\s+\+o\s+history|unset\s+histfile|histfile=/dev/null|history\s+-c\b|histsize=0|histfilesize=0"
        ),
    ),
    _Rule(
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
    _Rule(
        "root_shell",
        PRIV,
        0.8,
        "switches to root",
        ("su ",),
        _rx(r"su\s+(?:-\s|-l\b|-\s*$|root\b|-c\b)"),
        _check_command,
    ),
    _Rule(
        "chown_root",
        PRIV,
        0.7,
        "gives files to root",
        ("chown",),
        _rx(r"chown\s+(?:-\w+\s+)*root(?::root)?\b"),
        _check_command,
    ),
    _Rule(
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
    _Rule(
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
    _Rule(
        "hooks_tampered",
        GUARD,
        0.7,
        "uninstalls commit hooks",
        ("pre-commit", "hook", "husky"),
        _rx(r"pre-commit\s+uninstall|chmod\s+-x\s+\S*(?:\.git/hooks|\.husky)"),
    ),
    _Rule(
        "sudo",
        PRIV,
        0.6,
        "runs a command as root",
        ("sudo", "doas", "pkexec", "runas"),
        _rx(r"(?:sudo|doas|pkexec)\s|runas\s+/user:"),
        _check_sudo,
    ),
    _Rule(
        "sandbox_disabled",
        GUARD,
        0.6,
        "turns off a sandbox",
        ("no-sandbox",),
        _rx(r"--no-sandbox\b"),
        _check_no_sandbox,
    ),
    _Rule(
        "sandbox_disabled",
        GUARD,
        0.6,
        "runs a privileged container or a new namespace",
        ("privileged", "unshare"),
        _rx(r"--privileged\b|unshare\s+(?:-\w+\s+)*-r\b"),
        _check_command,
    ),
    _Rule(
        "hooks_rewritten",
        GUARD,
        0.75,
        "rewrites its own hook scripts",
        ("hooks/",),
        _rx(r"\.claude/hooks/|\.git/hooks/|\.husky/"),
        _check_write_tool,
    ),
    _Rule(
        "admin_grant_tool",
        PRIV,
        0.8,
        "grants admin or owner rights through a tool",
        ("admin", "owner"),
        _rx(r"\b(?:admin|owner|administrator|maintain)\b"),
        _check_grant_tool,
    ),
    _Rule(
        "skip_verification",
        GUARD,
        0.5,
        "skips commit hooks",
        ("verify", "husky"),
        _rx(r"--no-verify\b|husky=0|husky_skip_hooks=1"),
        _check_no_verify,
    ),
)
_Hit = tuple[float, str, str, str, str]

# -- tool classes: which rule families can apply to a tool call ---------------------
SHELL: Final = "shell"
SQL: Final = "sql"
FILE: Final = "file"
DATA: Final = "data"
_SQL_NAME_WORDS: Final = tuple(
    """
    sql query database postgres mysql bigquery snowflake warehouse redshift clickhouse duckdb
    """.split()
)
_SHELL_NAME_WORDS: Final = tuple(
    """
    bash shell exec terminal command cmd run script code notebook cli kubectl terraform tofu helm
    docker ssh python console process aws gcloud
    """.split()
)
_FILE_NAME_WORDS: Final = tuple("read write edit grep glob file patch dir fs. fs_ path view".split())
_FILE_LEAVES: Final = frozenset({"ls", "cat", "find", "search_files", "list_directory"})
_SHELL_ARG_KEYS: Final = frozenset({"command", "cmd", "argv", "script", "code", "shell", "commands"})
_FILE_ARG_KEYS: Final = frozenset(
    {"file_path", "path", "paths", "filename", "file", "notebook_path", "directory", "dir", "source", "src"}
)
_CLASS_CACHE: dict[str, str] = {}


def _tool_class(tool: str | None, args: dict[str, object] | None) -> str:
    """``shell`` (runs commands or code), ``sql``, ``file`` (a path) or ``data`` (anything else).

    Decided from the tool's name (cached) and upgraded by its argument keys, so an
    unknown MCP tool taking ``{"command": …}`` is treated as a shell.
    """
    name = tool or ""
    cls = _CLASS_CACHE.get(name)
    if cls is None:
        low = name.lower()
        if any(w in low for w in _SQL_NAME_WORDS):
            cls = SQL
        elif any(w in low for w in _SHELL_NAME_WORDS):
            cls = SHELL
        elif low.rpartition("__")[2] in _FILE_LEAVES or any(w in low for w in _FILE_NAME_WORDS):
            cls = FILE
        else:
            cls = DATA
        if len(_CLASS_CACHE) >= 4096:
            _CLASS_CACHE.clear()
        _CLASS_CACHE[name] = cls
    if args and cls is not SHELL:
        if not _SHELL_ARG_KEYS.isdisjoint(args):
            return SHELL
        if cls is DATA and not _FILE_ARG_KEYS.isdisjoint(args):
            return FILE
    return cls


class _Gated(NamedTuple):
    """Rules (highest score first) and an index from cheap substring gates to the rules they open."""

    rules: tuple[_Rule, ...]
    index: tuple[tuple[str, tuple[int, ...]], ...]


def _gated(rules: Sequence[_Rule]) -> _Gated:
    ordered = tuple(
        sorted((r._replace(gates=tuple(g.lower() for g in r.gates)) for r in rules), key=lambda r: -r.score)
    )
    gates = sorted({g for r in ordered for g in r.gates}, key=len)
    kept: list[str] = []
    for gate in gates:  # a gate containing a shorter gate adds nothing: the shorter one is tested anyway
        if not any(g in gate for g in kept):
            kept.append(gate)
    index = tuple(
        (g, tuple(i for i, r in enumerate(ordered) if any(g in rg for rg in r.gates))) for g in kept
    )
    return _Gated(ordered, index)


def _candidates(gated: _Gated, text: str) -> list[_Rule]:
    """The rules whose gate is in ``text``, highest score first (usually none)."""
    hit: set[int] | None = None
    for gate, ids in gated.index:
        if gate in text:
            if hit is None:
                hit = set(ids)
            else:
                hit.update(ids)
    if hit is None:
        return []
    return [gated.rules[i] for i in sorted(hit)]


#: Rules that can fire on a file or data tool (its target is a path or a value, not a command).
_FILE_RULES: Final = frozenset(
    {"skip_permissions", "sudoers_edit", "self_settings_edit", "sandbox_disabled", "hooks_rewritten"}
)
_SQL_RULES: Final = frozenset({"sql_superuser", "sql_grant_admin", "sql_audit_off"})
_DATA_RULES: Final = frozenset({"skip_permissions", "sandbox_disabled", "admin_grant_tool"})
_NOT_FOR_SHELL: Final = frozenset({"hooks_rewritten", "admin_grant_tool"})
#: Rule families per tool class.
_TABLES: Final = {
    SHELL: _gated([r for r in _RULES if r.rule not in _NOT_FOR_SHELL]),
    FILE: _gated([r for r in _RULES if r.rule in _FILE_RULES]),
    SQL: _gated([r for r in _RULES if r.rule in _SQL_RULES]),
    DATA: _gated([r for r in _RULES if r.rule in _DATA_RULES]),
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
    sudo_score: float = 0.6
    max_scan_chars: int = 2048


class PrivilegeChanges(Detector):
    """Flags privilege escalation and attempts to get around the agent's guardrails.

    Scores: ``--dangerously-skip-permissions``, sudoers edits and admin grants ~0.9;
    setuid, sandbox off, decoded code run through a shell, security tooling disabled,
    admin groups ~0.85; firewall flush, hidden history, root shells ~0.8; proxy bypass,
    world-writable files, settings edits ~0.75; a plain ``sudo`` 0.6.

    Examples
    --------
    >>> from monitor.event import from_mapping
    >>> from monitor.session_state import SessionTable
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
    cost_us: ClassVar[float] = 2.0
    summary: ClassVar[str] = (
        "sudo, setuid, admin grants, self-granted permissions, sandbox/hook/proxy bypasses."
    )

    def __init__(self, config: PrivilegeChangesConfig | None = None) -> None:
        super().__init__(config)
        cfg: PrivilegeChangesConfig = self.config  # type: ignore[assignment]
        self._scan_cap = max(256, cfg.max_scan_chars)
        self._extra_settings = tuple(p.lower() for p in cfg.extra_settings_paths if p)
        self._retry_score = cfg.denied_retry_score
        self._max_denied = cfg.max_denied_remembered
        self._sudo_score = cfg.sudo_score

    def observe(self, event: AuditEvent, session: SessionState) -> Sequence[Finding]:
        if event.outcome == "denied":
            self._remember_denied(event, session)
            return ()
        kind = event.kind
        if kind != "tool_call" and (kind != "tool_result" or session.kind_counts.get("tool_call")):
            return ()
        surface = _clip(_surface(event), self._scan_cap)
        low = surface.lower()
        best: _Hit | None = None
        rules = _candidates(_TABLES[_tool_class(event.tool, event.args)], low)
        if rules:
            best = self._best(rules, low, surface, event)
        args = event.args
        if args and args.get("dangerouslyDisableSandbox") is True and (best is None or best[0] < 0.85):
            best = (0.85, "sandbox_disabled", GUARD, "runs a command outside the sandbox", surface[:200])
        if args and (best is None or best[0] < 0.85):
            best = _content_hit(event, args) or best
        if self._extra_settings and (best is None or best[0] < 0.75):
            best = self._extra_settings_hit(event, low, surface) or best
        event_ids = supporting(event)
        if self.name in session.scratch and (best is None or best[0] < self._retry_score):
            retry = self._denied_retry(event, session, low, surface)
            if retry is not None:
                best, denied_id = retry
                event_ids = (denied_id, event.event_id)
        if best is None:
            return ()
        score, rule, category, what, snippet = best
        return (
            Finding(
                score=score,
                reason=f"{rule}: the agent {what} with {quote(snippet)}.",
                event_ids=event_ids,
                category=category,
                rule=rule,
            ),
        )

    def _best(self, rules: Sequence[_Rule], low: str, surface: str, event: AuditEvent) -> _Hit | None:
        best: _Hit | None = None
        for rule in rules:
            if best is not None and rule.score <= best[0]:
                break
            m = rule.rx.search(low)
            tries = 4
            while m is not None:
                verdict = rule.score if rule.check is None else rule.check(low, m, event)
                if verdict is not None:
                    if isinstance(verdict, tuple):
                        score, name, what = verdict
                    else:
                        score, name, what = (verdict or rule.score), rule.rule, rule.what
                    if name == "sudo":
                        score = self._sudo_score
                    category = GUARD if name in _GUARD_VERDICTS else rule.category
                    if best is None or score > best[0]:
                        best = (score, name, category, what, _window(surface, low, m.start(), m.end()))
                    break
                tries -= 1
                m = rule.rx.search(low, m.end()) if tries else None
        return best

    def _extra_settings_hit(self, event: AuditEvent, low: str, surface: str) -> _Hit | None:
        if _leaf(event.tool) not in WRITE_TOOLS:
            return None
        for fragment in self._extra_settings:
            if fragment in low:
                verdict = _settings_verdict(event, low)
                if isinstance(verdict, tuple):
                    category = GUARD if verdict[1] in _GUARD_VERDICTS else PRIV
                    return verdict[0], verdict[1], category, verdict[2], surface[:200]
                return 0.75, "self_settings_edit", PRIV, "rewrites its own permission settings", surface[:200]
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

    def _denied_retry(
        self, event: AuditEvent, session: SessionState, low: str, surface: str
    ) -> tuple[_Hit, str] | None:
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
            hit = (self._retry_score, "denied_retry", GUARD, how, _window(surface, low, at, at + len(target)))
            return hit, denied_id
        return None


_BYPASS_SETTING: Final = re.compile(r"defaultMode\"?\s*[:=]\s*\"?bypassPermissions")
_PROSE_FILES: Final = (".md", ".rst", ".txt", ".adoc", ".html")


def _content_hit(event: AuditEvent, args: dict[str, object]) -> _Hit | None:
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
            return 0.85, "bypass_permissions_written", PRIV, "writes a bypass-permissions setting", snippet
        at = value.find("--dangerously-skip-permissions")
        if at >= 0 and not prose:
            snippet = value[max(0, at - 40) : at + 60]
            return (
                0.6,
                "skip_permissions_written",
                GUARD,
                "writes a command that skips permission prompts",
                snippet,
            )
    return None


def _leaf(tool: str | None) -> str:
    """``mcp__fs__write_file`` → ``write_file``, lower-cased."""
    if not tool:
        return ""
    return tool.rpartition("__")[2].lower()


def _surface(event: AuditEvent) -> str:
    """Target plus command-like argument values (lists of strings joined; content skipped)."""
    target = event.target or ""
    args = event.args
    if not args:
        return target
    parts = [target] if target else []
    for key, value in args.items():
        if key in CONTENT_KEYS:
            continue
        if type(value) is str:
            if value and value != target:
                parts.append(value)
        elif type(value) is list:
            if all(type(v) is str for v in value):
                joined = " ".join(value)
                if joined not in target:
                    parts.append(joined)
            else:
                parts.append(_encode(value).decode())
        elif type(value) is dict:
            parts.append(_encode(value).decode())
    return "\n".join(parts)


def _window(original: str, searched: str, start: int, end: int) -> str:
    source = original if len(original) == len(searched) else searched
    return source[max(0, start - 30) : end + 60]


def _clip(text: str, limit: int) -> str:
    """``text`` if short, else its head and tail (three quarters and one quarter of ``limit``).

    Bounds the per-event cost on very long commands; what sits in the middle of a longer
    text is not examined (raise ``max_scan_chars`` to trade cost for coverage).
    """
    if len(text) <= limit:
        return text
    return text[: limit - limit // 4] + "\n" + text[-(limit // 4) :]
