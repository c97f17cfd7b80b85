"""Secret access: an agent reading, copying or handling credentials.

Looks at what a tool call acts on — its target and its path- or command-like arguments —
for credential stores: SSH private keys, cloud credentials, ``.env`` files, browser
cookie and keychain stores, cloud metadata endpoints, environment dumps. Every argument,
file content included, is also searched for token-shaped strings (AWS keys,
GitHub/Slack/Stripe/OpenAI/Anthropic/Google tokens, private key blocks, JWTs, Slack
webhook URLs). Stores and token shapes come from :mod:`agentwatch.secret_catalogue`, which
redaction and ``taint_flow`` share.

Using a credential the ordinary way (``ssh -i key``, ``kubectl --kubeconfig f``,
``curl --cert c.pem``) is not reading it, so option values like those are ignored.

Cost: the surface is lower-cased once; a rule's regex runs only when one of its cheap
substring *gates* is present, and only the rule families that can apply to the tool's
class (shell, SQL, file, other) are considered. Validators run only on a match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import ClassVar, Final

from agentwatch.detect.detector_spec import Detector, DetectorConfig, Finding, supporting
from agentwatch.detect.session_state import SessionState
from agentwatch.detectors._rulekit import (
    CONTENT_KEYS,
    DATA,
    FILE,
    SHELL,
    SQL,
    Hit,
    Rule,
    best_hit,
    candidates,
    clip,
    gated,
    is_sql_tool,
    is_write_tool,
    json_text,
    names_sql_client,
    report,
    tool_class,
    window,
)
from agentwatch.events.audit_event import AuditEvent
from agentwatch.secret_catalogue import SECRET_VARIABLE, TOKENS, SecretPattern, credential_read

__all__ = ["SecretAccess", "SecretAccessConfig"]

#: Characters that may precede a path component.
_BOUNDARY: Final = frozenset(" \t\n/'\"=:<>(|;&,`[{~")
#: Options whose value *uses* a credential file rather than reading it.
_USE_OPTION: Final = re.compile(
    r"(?:^|\s)(?:-i|--identity-file|identityfile|--kubeconfig|kubeconfig|--cert|--key|--cacert|--tls-?cert"
    r"|--tls-?key|--key-?file|--cert-?file|--private-key|ssh-add(?:\s+-\w+)*|-f"
    r"|google_application_credentials|aws_shared_credentials_file)[\s=]+['\"]?\S*$"
)
_ENV_BENIGN: Final = tuple(
    """
    .env.example .env.sample .env.template .env.dist .gitignore .dockerignore
    """.split()
)
_ENV_NOT_A_FILE: Final = frozenset(
    """
    .env.example .env.sample .env.template .env.dist .env.defaults .env.schema .env.tpl .env.ts
    .env.js .env.py .env.md
    """.split()
)
_PUBLIC_KEY_WORDS: Final = ("cert", "chain", "bundle", "public", "pub.", "dhparam", "ca.pem", "trust")
_SECRET_WORDS: Final = ("key", "token", "secret", "pass", "cred", "aws", "auth")
_EXFIL_SINKS: Final = ("curl", "wget", " nc ", "ncat", "base64", "tee", "mail", "scp", "ssh ", "http")

#: ``check(low, match, event)``: a score, or None to reject the match.
Check = Callable[[str, "re.Match[str]", AuditEvent], float | None]
_rx = re.compile


def _start_ok(low: str, m: re.Match[str]) -> bool:
    i = m.start()
    return i == 0 or low[i - 1] in _BOUNDARY


def _not_used_as_option(low: str, m: re.Match[str]) -> bool:
    before = low[max(0, m.start() - 48) : m.start()]
    hit = _USE_OPTION.search(before)
    if hit is None:
        return True
    return hit.group().strip().startswith("-f") and "ssh-keygen" not in low


def _check_ssh(low: str, m: re.Match[str], event: AuditEvent) -> float | None:
    if m.group()[0] == "i" and not _start_ok(low, m):
        return None
    return 0.9 if _not_used_as_option(low, m) else None


def _check_used(low: str, m: re.Match[str], event: AuditEvent) -> float | None:
    return 0.85 if _not_used_as_option(low, m) else None


def _check_bounded(score: float) -> Check:
    def check(low: str, m: re.Match[str], event: AuditEvent) -> float | None:
        return score if _start_ok(low, m) else None

    return check


#: Options (and ``>``) whose value is a key file the program *writes* (key generation, ``-out``) or *uses* in
#: place for TLS or signing (``-key``, ``--ssl-keyfile``, ``key=`` …): the key's content is not read out.
_KEY_WRITE_OR_USE: Final = re.compile(
    r"(?:^|[\s,])(?:(?:-out|-keyout|--outfile|--out|-o|--output|-key|-inkey|-signkey|--ssl-?key(?:-?file)?"
    r"|--load-privkey|--[\w-]*private-key|-keystore|--keystore|--ks|-keyfile|--keyfile|-k|-K)[\s=:]+|>>?\s*|key=)"
    r"['\"]?\S*$"
)


def _check_key_file(low: str, m: re.Match[str], event: AuditEvent) -> float | None:
    start = m.start()
    begin = start
    while begin > 0 and low[begin - 1] not in _BOUNDARY:
        begin -= 1
    name = low[begin : m.end()]
    if begin == start or any(w in name for w in _PUBLIC_KEY_WORDS):
        return None
    token_start = max(low.rfind(c, 0, start) for c in " \t\n'\"") + 1
    if "://" in low[token_start:start]:
        return None  # a URL: remote content, not a local key file
    if _KEY_WRITE_OR_USE.search(low[max(0, token_start - 40) : start]):
        return None
    if name.endswith(".key") and ((begin and low[begin - 1] in "([{,") or low[m.end() : m.end() + 1] in (")", "]")):
        return None  # `cfg.key` in code, not a file
    return 0.85 if _not_used_as_option(low, m) else None


def _check_env_file(low: str, m: re.Match[str], event: AuditEvent) -> float | None:
    if not _start_ok(low, m) or m.group() in _ENV_NOT_A_FILE:
        return None
    if any(b in low for b in _ENV_BENIGN):
        return None
    if is_write_tool(event.tool):
        return 0.45  # creating a .env is set-up work, not reading secrets
    return 0.8


def _check_authorized_keys(low: str, m: re.Match[str], event: AuditEvent) -> float | None:
    if is_write_tool(event.tool):
        return 0.85
    line = low[max(0, m.start() - 200) : m.start()]
    if ">" in line or "tee " in line or "cp " in line or "mv " in line or "install " in line:
        return 0.85
    return None


def _check_env_dump(low: str, m: re.Match[str], event: AuditEvent) -> float | None:
    if not (m.start() >= 5 and low.startswith("print", m.start() - 5)):
        before = low[: m.start()].rstrip()
        if before and before[-1] not in ";&|(`" and not before.endswith(("sudo", "$(")):
            return None
    rest = low[m.end() - 1 : m.end() + 160]
    if rest.startswith(">") or any(s in rest for s in _EXFIL_SINKS):
        return 0.8
    if any(w in rest for w in _SECRET_WORDS):
        return 0.75
    return 0.45  # `env | grep PATH`: a dump, but a common debugging idiom


def _check_secret_var(low: str, m: re.Match[str], event: AuditEvent) -> float | None:
    rest = low[m.end() : m.end() + 120]
    if "login" in rest or "--with-token" in rest or "--password-stdin" in rest:
        return None  # piping a token into the tool that consumes it
    return 0.75 if m.group().startswith("printenv") else 0.6


_CREDENTIAL_COLUMNS: Final = re.compile(
    r"passw|secret|token|api_?key|private_?key|access_?key|credential|\bpin\b|\bssn\b|totp|mfa_seed"
)
_CREDENTIAL_TABLES: Final = re.compile(
    r"pg_shadow|pg_authid|mysql\.user|api_?keys|credentials|secrets|oauth_clients"
    r"|access_tokens|auth_tokens|passwords"
)


def _check_credential_query(low: str, m: re.Match[str], event: AuditEvent) -> float | None:
    if not (is_sql_tool(event.tool) or names_sql_client(low)):
        return None
    at = low.find(" from ", m.end() - 1)
    if at < 0 or at - m.end() > 400:
        return None
    columns = low[m.end() : at]
    table = low[at + 6 : at + 80].split(None, 1)[0] if low[at + 6 : at + 80].strip() else ""
    if "count(" in columns and "," not in columns:
        return None
    if _CREDENTIAL_COLUMNS.search(columns) or _CREDENTIAL_TABLES.search(table):
        return 0.75
    return None


def _read(name: str, score: float, check: Check | None = None) -> Rule:
    """A rule for a credential store or command of :data:`agentwatch.secret_catalogue.CREDENTIAL_READS`."""
    entry = credential_read(name)
    return Rule(entry.kind, score, entry.what, entry.hints, entry.rx, check)


#: Rules on the lower-cased surface, highest score first. The stores and commands come from the
#: shared catalogue; the rest (writes, SQL, variables, listings) are this detector's own heuristics.
_PATH_RULES: Final = (
    _read("ssh_key_file", 0.9, _check_ssh),
    _read("cloud_credential_files", 0.9),
    _read("gcloud_credential_files", 0.9),
    _read("gcloud_access_token", 0.9),
    _read("metadata_address", 0.9),
    _read("metadata_gce", 0.9),
    _read("metadata_ec2_ipv6", 0.9),
    _read("shadow", 0.9),
    _read("keychain_command", 0.9),
    _read("keychain_file", 0.9),
    _read("keychains_dir", 0.9),
    _read("browser_store", 0.85),
    _read("kube_config_file", 0.85, _check_used),
    _read("kube_config_raw", 0.85),
    Rule(
        "authorized_keys_write",
        0.85,
        "writes an SSH authorized_keys file",
        ("authorized_keys",),
        _rx(r"authorized_keys"),
        _check_authorized_keys,
    ),
    _read("credential_files", 0.85, _check_bounded(0.85)),
    _read("git_credential_fill", 0.85),
    _read("private_key_file", 0.85, _check_key_file),
    _read("k8s_secret_values", 0.85, _check_bounded(0.85)),
    _read("gh_cli_token", 0.85),
    _read("process_environ", 0.8),
    _read("secrets_manager_read", 0.8),
    _read("env_file", 0.8, _check_env_file),
    _read("env_dump_shell", 0.8, _check_env_dump),
    _read("env_dump_code", 0.75),
    Rule(
        "credential_query",
        0.75,
        "selects credential columns from a database",
        (
            "passw",
            "secret",
            "token",
            "key",
            "cred",
            "shadow",
            "authid",
            "mysql.user",
            "ssn",
            "totp",
            "mfa_seed",
        ),
        _rx(r"select\s"),
        _check_credential_query,
    ),
    Rule(
        "secret_variable",
        0.75,
        "prints a secret environment variable",
        ("printenv",),
        _rx(r"printenv\s+" + SECRET_VARIABLE),
        _check_secret_var,
    ),
    Rule(
        "secret_variable",
        0.6,
        "prints a secret environment variable",
        ("echo",),
        _rx(r"echo\s+[\"']?\$\{?" + SECRET_VARIABLE),
        _check_secret_var,
    ),
    Rule(
        "ssh_directory_listing",
        0.5,
        "lists the SSH key directory",
        (".ssh",),
        _rx(r"ls\s[^|;&\n]*\.ssh/?(?=\s|$|[|;&])"),
        _check_bounded(0.5),
    ),
    Rule(
        "secrets_manager",
        0.5,
        "lists the secrets in a secrets manager",
        ("secret",),
        _rx(r"secretsmanager\s+list-secrets|gcloud\s+secrets\s+list|vault\s+kv\s+list"),
    ),
)


def _check_token(score: float) -> Check:
    def check(text: str, m: re.Match[str], event: AuditEvent) -> float | None:
        found = m.group()
        if "EXAMPLE" in found or "example" in found or "xxxx" in found.lower():
            return None
        i = m.start()
        if i and (text[i - 1].isalnum() or text[i - 1] == "_") and not found.startswith("-----"):
            return None
        return score

    return check


#: Rule names and scores of catalogue tokens whose finding differs from the defaults (kind, 0.75).
_TOKEN_RULE_NAMES: Final = {"private_key": "private_key_block", "anthropic_key": "api_key", "openai_key": "api_key"}
_TOKEN_SCORES: Final = {"private_key": 0.9, "jwt": 0.7}


def _token(entry: SecretPattern) -> Rule:
    score = _TOKEN_SCORES.get(entry.kind, 0.75)
    name = _TOKEN_RULE_NAMES.get(entry.kind, entry.kind)
    return Rule(name, score, "handles " + entry.what, entry.hints, entry.rx, _check_token(score))


#: Token shapes (agentwatch.secret_catalogue.TOKENS), matched case-sensitively on every argument (content included).
_TOKEN_RULES: Final = tuple(_token(entry) for entry in TOKENS)

#: Search tools over mail, chat and documents (a code search for ``api_key`` is normal work).
_MESSAGE_STORES: Final = tuple(
    """
    mail inbox outlook drive slack message docs notion confluence teams chat
    """.split()
)
_CREDENTIAL_SEARCH_GATES: Final = tuple("pass cred key token secret code 2fa mfa otp akia".split())
_CREDENTIAL_SEARCH: Final = re.compile(
    r"passw|credential|api[ _-]?key|access[ _-]?(?:key|token)|secret|verification code|one-time|passcode"
    r"|\b2fa\b"
    r"|\bmfa\b|\botp\b|akia|private key|ssh key|recovery codes?"
    r"|\b(?:login|verification|security|sign-?in|auth\w*|confirmation)\s+codes?\b"
    r"|from:\S*(?:accounts|security|no-?reply|verify)\S*\s+codes?\b"
)

#: Rules that can match a file tool's path (the rest are command-line or SQL idioms).
_FILE_RULES: Final = frozenset(
    """
    ssh_private_key cloud_credentials cloud_metadata shadow_file keychain browser_store kube_config
    authorized_keys_write credential_file private_key_file process_environ env_file
    ssh_directory_listing
    """.split()
)
#: Rule families per tool class.
_TABLES: Final = {
    SHELL: gated(_PATH_RULES),
    FILE: gated([r for r in _PATH_RULES if r.rule in _FILE_RULES]),
    SQL: gated([r for r in _PATH_RULES if r.rule == "credential_query"]),
    DATA: gated([r for r in _PATH_RULES if r.rule == "cloud_metadata"]),
}
#: Token shapes are case-sensitive: searched on the original text.
_TOKENS: Final = gated(_TOKEN_RULES, lower=False)


class SecretAccessConfig(DetectorConfig):
    """Tunables of :class:`SecretAccess`.

    Parameters
    ----------
    extra_paths
        More path fragments (lower-case substrings such as ``"/vault/secrets/"``) that
        count as credential stores; a hit scores ``extra_path_score``.
    extra_path_score
        Score of an ``extra_paths`` hit.
    ignore_paths
        Fragments whose presence silences the path rules (a directory of fake test keys).
    scan_contents
        Also look for token-shaped strings in the content the agent writes or sends.
    max_content_chars
        Content longer than this is scanned only in its head and tail (bounds the cost).
    max_scan_chars
        Longer target/argument text is examined only in its first three quarters and last
        quarter of this many characters (bounds the cost of pathological events).
    """

    extra_paths: tuple[str, ...] = ()
    extra_path_score: float = 0.8
    ignore_paths: tuple[str, ...] = ()
    scan_contents: bool = True
    max_content_chars: int = 4096
    max_scan_chars: int = 2048


class SecretAccess(Detector):
    """Flags reads of credential stores and token-shaped strings in tool arguments.

    Scores by sensitivity: private keys, cloud credentials, metadata endpoints and the
    keychain ~0.9; browser stores, kube config and credential files ~0.85; ``.env`` and
    environment dumps ~0.8; a token in the arguments ~0.75.

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
    """

    name: ClassVar[str] = "secret_access"
    categories: ClassVar[frozenset[str]] = frozenset({"secret_access"})
    config_type: ClassVar[type[DetectorConfig]] = SecretAccessConfig
    cost_us: ClassVar[float] = 5.2  # measured: bench/detector_cost.py, 2-core reference machine
    summary: ClassVar[str] = "Reads of credential stores, metadata endpoints and tokens in tool arguments."

    def __init__(self, config: SecretAccessConfig | None = None) -> None:
        super().__init__(config)
        cfg: SecretAccessConfig = self.config  # type: ignore[assignment]
        self._scan_cap = max(256, cfg.max_scan_chars)
        self._extra = tuple(p.lower() for p in cfg.extra_paths if p)
        self._ignore = tuple(p.lower() for p in cfg.ignore_paths if p)
        self._extra_score = cfg.extra_path_score
        self._content_cap = cfg.max_content_chars if cfg.scan_contents else 0

    def observe(self, event: AuditEvent, session: SessionState) -> Sequence[Finding]:
        kind = event.kind
        if kind != "tool_call" and (kind != "tool_result" or session.kind_counts.get("tool_call")):
            return ()
        surface, content = _split_args(event)
        surface = clip(surface, self._scan_cap)
        best: Hit | None = None
        if surface:
            low = surface.lower()
            tool = (event.tool or "").lower()
            if not (self._ignore and any(p in low for p in self._ignore)):
                rules = candidates(_TABLES[tool_class(event.tool, event.args)], low)
                if rules:
                    best = best_hit(rules, low, surface, event, before=40, after=40)
                if self._extra and (best is None or best[0] < self._extra_score):
                    best = self._extra_hit(low, surface) or best
            if (
                best is None
                and "search" in tool
                and any(w in tool for w in _MESSAGE_STORES)
                and any(w in low for w in _CREDENTIAL_SEARCH_GATES)
            ):
                hit = _CREDENTIAL_SEARCH.search(low)
                if hit is not None:
                    best = Hit(
                        0.7,
                        "credential_search",
                        "searches messages for credentials or login codes",
                        window(surface, low, hit.start(), hit.end(), 40, 40),
                    )
            rules = candidates(_TOKENS, surface)
            if rules:
                best = best_hit(rules, surface, surface, event, best, before=40, after=40)
        if content and self._content_cap:
            text = clip(content, self._content_cap)
            rules = candidates(_TOKENS, text)
            if rules:
                best = best_hit(rules, text, text, event, best, before=40, after=40)
        if best is None:
            return ()
        return report(best, supporting(event), "secret_access", joiner="in")

    def _extra_hit(self, low: str, surface: str) -> Hit | None:
        for fragment in self._extra:
            at = low.find(fragment)
            if at >= 0:
                return Hit(
                    self._extra_score,
                    "configured_path",
                    "touches a configured secret path",
                    window(surface, low, at, at + len(fragment), 40, 40),
                )
        return None


def _split_args(event: AuditEvent) -> tuple[str, str]:
    """(target plus path/command-like argument values, content-like argument values)."""
    target = event.target or ""
    args = event.args
    if not args:
        return target, ""
    if len(args) == 1:
        value = next(iter(args.values()))
        if value == target:
            return target, ""
    surface = [target] if target else []
    content: list[str] = []
    for key, value in args.items():
        if type(value) is str:
            if value and value != target:
                (content if key in CONTENT_KEYS else surface).append(value)
        elif value is not None and type(value) not in (bool, int, float):
            (content if key in CONTENT_KEYS else surface).append(json_text(value))
    return "\n".join(surface), "\n".join(content)
