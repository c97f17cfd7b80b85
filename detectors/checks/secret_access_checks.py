"""The checks the ``secret_access`` rules name: the judgements that need code.

* ``secret_token`` — a token of a known shape (:data:`agentwatch.secret_catalogue.TOKENS`) is in the
  action's arguments, and is not a placeholder (``AKIA…EXAMPLE``, ``xxxx``) nor the tail of a longer word;
* ``secret_variable_read`` — the environment variables the action reads whose names say they hold a
  secret (:data:`agentwatch.secret_catalogue.SECRET_VARIABLE`; ``$PWD`` is not one);
* ``command_mentions`` — the action's command names a word of a data table (``env | grep -i token``);
* ``credential_query`` — SQL sent to a database selects credential columns or tables;
* ``credential_search`` — a search of mail, chat or documents looks for credentials or login codes;
* ``configured_path`` — an effect's resource holds a fragment the operator listed (``extra_paths``).

Each is cheap (a substring gate before any regex) and bounded (it reads at most a few kilobytes of
agent-written text). The argument-reading checks judge an action once: a ``tool_result`` is judged
only in a session that has no ``tool_call`` records (then it is the action's only record).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from agentwatch.detect.effects.model import Effect
from agentwatch.detect.rules.checks import CheckContext, bounded_text, check
from agentwatch.secret_catalogue import SECRET_VARIABLE, TOKENS, SecretPattern

__all__ = ["argument_text", "clip", "secret_tokens"]

#: Argument keys holding file content or prose rather than a command or a path.
CONTENT_KEYS: Final = frozenset(
    """
    content new_string old_string text body edits new_source description prompt message messages
    subject summary title comment notes todos
    """.split()
)
#: At most this many characters of one argument value (before the scan caps apply).
MAX_VALUE_CHARS: Final = 65_536
#: At most this many argument values are read (a tool call with thousands of keys is hostile).
MAX_VALUES: Final = 64
_KNOWN_KINDS: Final = frozenset(t.kind for t in TOKENS)
_SECRET_VARIABLE: Final = re.compile(r"(?i)^" + SECRET_VARIABLE)
#: What a finding shows for a token: its kind, redacted as ``agentwatch.respond.redaction`` writes it.
_TOKEN_EVIDENCE: Final = {
    kind: Effect("read", f"[REDACTED:{kind}]", frozenset({"credential_store"}), "args", "token in the arguments")
    for kind in _KNOWN_KINDS
}
_TOKEN_SCAN_DEFAULTS: Final = {"max_scan_chars": 2048, "max_content_chars": 4096, "scan_contents": True}


# -- helpers --------------------------------------------------------------------------------------
def clip(text: str, limit: int) -> str:
    """``text`` if short, else its head and tail (three quarters and one quarter of ``limit``).

    >>> clip("abcdefgh", 4)
    'abc\\nh'
    """
    if len(text) <= limit:
        return text
    return text[: limit - limit // 4] + "\n" + text[-(limit // 4) :]


def _value_text(value: object) -> str:
    if isinstance(value, str):
        return value[:MAX_VALUE_CHARS]
    if value is None or isinstance(value, bool | int | float):
        return ""
    try:
        return msgspec.json.encode(value)[:MAX_VALUE_CHARS].decode("utf-8", "replace")
    except (TypeError, ValueError, OverflowError):
        return ""


def argument_text(ctx: CheckContext) -> tuple[str, str]:
    """(target plus command- and path-like argument values, content-like argument values), each bounded;
    computed once per action (the token scan and the SQL and search checks all read it)."""
    got = ctx.memo.get("secret_access.arguments")
    if got is None:
        got = ctx.memo["secret_access.arguments"] = _argument_text(ctx.event)
    return got  # type: ignore[no-any-return]


def _argument_text(event: Any) -> tuple[str, str]:
    target = bounded_text(event.target, MAX_VALUE_CHARS)
    surface = [target] if target else []
    content: list[str] = []
    args = event.args if isinstance(event.args, dict) else {}
    for n, (key, value) in enumerate(args.items()):
        if n >= MAX_VALUES:
            break
        text = _value_text(value)
        if text and text != target:
            (content if key in CONTENT_KEYS else surface).append(text)
    return "\n".join(surface), "\n".join(content)


def _judged_here(ctx: CheckContext) -> bool:
    """Whether this event is the action to judge: a tool call, or a tool result that is its call's only record."""
    kind = ctx.event.kind
    if kind == "tool_call":
        return True
    return kind == "tool_result" and not ctx.session.kind_counts.get("tool_call")


def _command_text(ctx: CheckContext, limit: int = 4096) -> str:
    """The action's surface text (target and command-like arguments), lower-cased, at most ``limit`` characters."""
    memo_key = ("secret_access.surface", limit)
    got = ctx.memo.get(memo_key)
    if got is None:
        got = ctx.memo[memo_key] = clip(argument_text(ctx)[0], limit).lower()
    return got  # type: ignore[no-any-return]


def _words_table(args: Mapping[str, Any], data: Mapping[str, Any], key: str) -> None:
    name = args.get(key)
    if not isinstance(name, str):
        raise ValueError(f"needs args.{key}, the name of a data table of words")
    table = data.get(name)
    if not isinstance(table, list) or not all(isinstance(w, str) and w for w in table):
        raise KeyError(f"data table {name!r} must be a list of non-empty strings")


# -- tokens ---------------------------------------------------------------------------------------
def _is_real_token(text: str, m: re.Match[str]) -> bool:
    """Not a documentation placeholder, and not the tail of a longer identifier (a key block may follow anything)."""
    found = m.group()
    if "EXAMPLE" in found or "example" in found or "xxxx" in found.lower():
        return False
    i = m.start()
    return not (i and (text[i - 1].isalnum() or text[i - 1] == "_") and not found.startswith("-----"))


def _token_kinds(text: str, entries: tuple[SecretPattern, ...] = TOKENS, max_matches: int = 16) -> set[str]:
    """The catalogue token kinds with a real match in ``text`` (a regex runs only when one of its hints is present)."""
    kinds: set[str] = set()
    for entry in entries:
        if entry.kind in kinds:
            continue
        for hint in entry.hints:  # a plain loop: most texts hold no hint, and a generator per entry costs more
            if hint in text:
                break
        else:
            continue
        for n, m in enumerate(entry.rx.finditer(text)):
            if n >= max_matches:
                break
            if _is_real_token(text, m):
                kinds.add(entry.kind)
                break
    return kinds


def secret_tokens(ctx: CheckContext) -> frozenset[str]:
    """The token kinds in this action's arguments (computed once per action; tables: ``token_scan``)."""
    got = ctx.memo.get("secret_access.tokens")
    if got is not None:
        return got  # type: ignore[no-any-return]
    kinds: set[str] = set()
    if _judged_here(ctx):
        limits = {**_TOKEN_SCAN_DEFAULTS, **(ctx.data.get("token_scan") or {})}
        surface, content = argument_text(ctx)
        if surface:
            kinds |= _token_kinds(clip(surface, max(256, int(limits["max_scan_chars"]))))
        if content and limits["scan_contents"] and int(limits["max_content_chars"]) > 0:
            kinds |= _token_kinds(clip(content, int(limits["max_content_chars"])))
    result = ctx.memo["secret_access.tokens"] = frozenset(kinds)
    return result


def _validate_kinds(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    kinds = args.get("kinds")
    if not isinstance(kinds, list) or not kinds:
        raise ValueError("needs args.kinds, a list of token kinds of agentwatch.secret_catalogue.TOKENS")
    unknown = sorted(set(map(str, kinds)) - _KNOWN_KINDS)
    if unknown:
        raise ValueError(f"unknown token kind(s) {unknown}; known: {', '.join(sorted(_KNOWN_KINDS))}")
    if set(args) - {"kinds"}:
        raise ValueError(f"unknown args {sorted(set(args) - {'kinds'})}")


def _any_token(ctx: CheckContext) -> bool:
    """Gate of ``secret_token`` (nine rules name it, one per token kind): some token is in the arguments."""
    return bool(secret_tokens(ctx))


@check("secret_token", validate=_validate_kinds, gate=_any_token)
def secret_token(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """A token of one of ``args.kinds`` is in the action's arguments; the evidence names its kind, never the token."""
    tokens = secret_tokens(ctx)
    if not tokens:
        return None  # the common case: nine rules ask, none has a token to find
    found = sorted(tokens.intersection(ctx.args["kinds"]))
    if not found:
        return None
    return tuple(_TOKEN_EVIDENCE[kind] for kind in found)


# -- environment variables --------------------------------------------------------------------------
def _secret_variable_reads(effects: tuple[Effect, ...]) -> tuple[Effect, ...]:
    return tuple(
        e
        for e in effects
        if e.op == "env" and e.detail == "read" and e.resource != "*" and _SECRET_VARIABLE.match(e.resource)
    )


def _reads_secret_variable(
    effects: tuple[Effect, ...], tool: str, args: Mapping[str, Any], data: Mapping[str, Any]
) -> bool:
    """Prefilter of ``secret_variable_read`` (the check is a function of the effects alone)."""
    return bool(_secret_variable_reads(effects))


@check("secret_variable_read", prefilter=_reads_secret_variable)
def secret_variable_read(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """The action reads environment variables whose names say they hold a secret (the evidence: those reads)."""
    return _secret_variable_reads(ctx.effects) or None


@check("command_mentions", validate=lambda args, data: _words_table(args, data, "table"))
def command_mentions(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """The action's command or target names a word of the data table ``args.table`` (case-insensitive)."""
    text = _command_text(ctx)
    return () if any(w in text for w in ctx.data[ctx.args["table"]]) else None


# -- databases ------------------------------------------------------------------------------------
_SELECT: Final = re.compile(r"\bselect\s")
_CREDENTIAL_COLUMNS: Final = re.compile(
    r"passw|secret|token|api_?key|private_?key|access_?key|credential|\bpin\b|\bssn\b|totp|mfa_seed"
)
_CREDENTIAL_TABLES: Final = re.compile(
    r"pg_shadow|pg_authid|mysql\.user|api_?keys|credentials|secrets|oauth_clients|access_tokens|auth_tokens|passwords"
)
_CREDENTIAL_GATES: Final = (
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
    "pin",
)


def _selects_credentials(low: str) -> bool:
    """Whether a lower-cased SQL text has a ``SELECT`` of credential columns, or from a credential table."""
    for n, m in enumerate(_SELECT.finditer(low)):
        if n >= 8:
            return False
        at = low.find(" from ", m.end() - 1)
        if at < 0 or at - m.end() > 400:
            continue
        columns = low[m.end() : at]
        rest = low[at + 6 : at + 80].split(None, 1)
        table = rest[0] if rest else ""
        if "count(" in columns and "," not in columns:
            continue
        if _CREDENTIAL_COLUMNS.search(columns) or _CREDENTIAL_TABLES.search(table):
            return True
    return False


def _validate_sql(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    _words_table(args, data, "tools")
    _words_table(args, data, "clients")


@check("credential_query", validate=_validate_sql)
def credential_query(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """SQL sent to a database tool, or run by a SQL client, selects credential columns or tables."""
    if not _judged_here(ctx):
        return None
    low = _command_text(ctx)
    if "select" not in low or not any(g in low for g in _CREDENTIAL_GATES):
        return None
    tool = (ctx.event.tool or "").lower()
    runs_sql = any(w in tool for w in ctx.data[ctx.args["tools"]]) or any(
        c in low for c in ctx.data[ctx.args["clients"]]
    )
    return () if runs_sql and _selects_credentials(low) else None


# -- message search -------------------------------------------------------------------------------
_SEARCH_GATES: Final = tuple("pass cred key token secret code 2fa mfa otp akia".split())
_CREDENTIAL_SEARCH: Final = re.compile(
    r"passw|credential|api[ _-]?key|access[ _-]?(?:key|token)|secret|verification code|one-time|passcode"
    r"|\b2fa\b|\bmfa\b|\botp\b|akia|private key|ssh key|recovery codes?"
    r"|\b(?:login|verification|security|sign-?in|auth\w*|confirmation)\s+codes?\b"
    r"|from:\S*(?:accounts|security|no-?reply|verify)\S*\s+codes?\b"
)


def _is_store_search(effects: tuple[Effect, ...], tool: str, args: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """Whether ``tool`` searches mail, chat or documents (its name: ``search`` and a word of ``args.stores``)."""
    low = tool.lower()
    return "search" in low and any(w in low for w in data[args["stores"]])


@check(
    "credential_search",
    validate=lambda args, data: _words_table(args, data, "stores"),
    prefilter=_is_store_search,
)
def credential_search(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """A search tool over mail, chat or documents (a word of ``args.stores`` in its name) looks for credentials."""
    if not _judged_here(ctx) or not _is_store_search(ctx.effects, ctx.event.tool or "", ctx.args, ctx.data):
        return None
    low = _command_text(ctx)
    if not any(g in low for g in _SEARCH_GATES):
        return None
    return () if _CREDENTIAL_SEARCH.search(low) else None


# -- operator's paths -----------------------------------------------------------------------------
def _validate_paths(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    name = args.get("table")
    if not isinstance(name, str):
        raise ValueError("needs args.table, the name of a data table of path fragments")
    table = data.get(name)
    if not isinstance(table, list | tuple) or not all(isinstance(w, str) for w in table):
        raise KeyError(f"data table {name!r} must be a list of path fragments")


def _configured_effects(effects: tuple[Effect, ...], fragments: Any) -> tuple[Effect, ...]:
    if not fragments:
        return ()
    return tuple(e for e in effects if any(f in e.resource.lower() for f in fragments))


def _touches_configured(
    effects: tuple[Effect, ...], tool: str, args: Mapping[str, Any], data: Mapping[str, Any]
) -> bool:
    """Prefilter of ``configured_path`` (the check is a function of the effects and the table alone)."""
    return bool(_configured_effects(effects, data[args["table"]]))


@check("configured_path", validate=_validate_paths, prefilter=_touches_configured)
def configured_path(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """An effect's resource contains a fragment of ``args.table`` (lower-case comparison); evidence: those effects."""
    return _configured_effects(ctx.effects, ctx.data[ctx.args["table"]]) or None
