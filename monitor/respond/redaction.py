"""Secret redaction for the human-facing (shareable) views of incidents.

Forensic copies keep the raw text; summaries, postmortems and shared journals go
through :func:`redact` / :func:`redact_obj`, which replace a secret with
``[REDACTED:<kind>]``. Where a secret sits behind a label (``password=``, a URL's
``user:``, ``Authorization: Bearer``) the label is kept and only the value goes.

>>> redact("curl -H 'Authorization: Bearer abc.def.ghi' https://bob:hunter2@db.example.com/x")
"curl -H 'Authorization: Bearer [REDACTED:bearer_token]' https://bob:[REDACTED:password]@db.example.com/x"
>>> redact("export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE")
'export AWS_ACCESS_KEY_ID=[REDACTED:aws_access_key]'
>>> redact("commit 3f2c1a9e8b7d6c5f4e3a2b1c0d9e8f7a6b5c4d3e: reset the password flow")
'commit 3f2c1a9e8b7d6c5f4e3a2b1c0d9e8f7a6b5c4d3e: reset the password flow'
>>> redact_obj({"user": "ana", "password": "hunter2", "headers": [{"Cookie": "sid=1"}]})
{'user': 'ana', 'password': '[REDACTED:password]', 'headers': [{'Cookie': '[REDACTED:cookie]'}]}

Redaction is idempotent: ``redact(redact(x)) == redact(x)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from agentwatch.secret_catalogue import SECRET_URLS, TOKENS, SecretPattern, secret_name_kind, token

_NOT_REDACTED: Final = r"(?!\\?[\"']?\[REDACTED:)"


def _mark(kind: str) -> str:
    return f"[REDACTED:{kind}]"


def _whole(kind: str) -> Callable[[re.Match[str]], str]:
    """Replace the whole match."""
    return lambda m: _mark(kind)


def _value(kind: str) -> Callable[[re.Match[str]], str]:
    """Keep group ``pre`` (and ``post`` when present), replace the value between."""

    def repl(m: re.Match[str]) -> str:
        post = m.groupdict().get("post") or ""
        return m.group("pre") + _mark(kind) + post

    return repl


def _token_rule(name: str) -> tuple[re.Pattern[str], Callable[[re.Match[str]], str]]:
    """A rule replacing a catalogue token, extended over its whole secret."""
    entry = token(name)
    return re.compile(f"(?:{entry.pattern}){entry.tail}"), _whole(entry.kind)


#: Tokens matched before the labelled rules: blocks and URLs, which those would cut apart.
_BEFORE_LABELS: Final = ("private_key", "slack_webhook")


def _url_rule(entry: SecretPattern) -> tuple[re.Pattern[str], Callable[[re.Match[str]], str]]:
    """A rule for a URL carrying a secret: the URL up to the secret (``pattern``) is kept, the secret
    (``tail``) replaced."""
    return re.compile(f"(?P<pre>{entry.pattern})" + _NOT_REDACTED + entry.tail), _value(entry.kind)


# Order matters: multi-line blocks and URLs first, labelled assignments last (they
# skip values an earlier rule already redacted, so specific kinds survive).
_RULES: Final[list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]] = [
    *(_token_rule(name) for name in _BEFORE_LABELS),
    *(_url_rule(entry) for entry in SECRET_URLS if entry.name != "url_secret"),
    (
        # scheme://user:password@host  → keep scheme and user.
        re.compile(
            r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s:/@'\"<>\[\]]{1,256}:)"
            + _NOT_REDACTED
            + r"[^\s@/'\"<>]{1,256}(?P<post>@)"
        ),
        _value("password"),
    ),
    (
        re.compile(
            r"(?P<pre>(?i:\bauthorization)\\?[\"']?\s*[:=]\s*\\?[\"']?\s*"
            r"(?>(?:(?i:bearer|basic|token|digest)\s+)?))" + _NOT_REDACTED + r"[A-Za-z0-9._~+/=-]+"
        ),
        _value("bearer_token"),
    ),
    (
        re.compile(r"(?P<pre>\bBearer\s+)" + _NOT_REDACTED + r"[A-Za-z0-9._~+/-]{16,}=*"),
        _value("bearer_token"),
    ),
    (
        re.compile(
            r"(?P<pre>(?i:aws_secret_access_key|aws_secret_key|secretaccesskey)\\?[\"']?\s*[:=]\s*\\?[\"']?)"
            r"[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"
        ),
        _value("aws_secret_key"),
    ),
    # The secrets recognisable by their shape (agentwatch.secret_catalogue.TOKENS).
    *(_token_rule(t.name) for t in TOKENS if t.name not in _BEFORE_LABELS),
    # A signed or keyed link's query credential, after the tokens so a known kind keeps its name.
    # A parameter that names its secret (``token``, ``api_key``) keeps that kind, as in ``token=…``.
    (_url_rule(token("url_secret"))[0], lambda m: m.group("pre") + _mark(_query_kind(m.group("pre")))),
]

# `password=…`, `passwd: …`, `"api_key": "…"`, `GITHUB_TOKEN=…`: label kept, value redacted.
_ASSIGNMENT: Final = re.compile(
    r"(?P<pre>(?<![A-Za-z0-9])(?P<key>(?i:password|passwd|passphrase|pwd|secret|client_secret|token"
    r"|access_token|refresh_token|auth_token|api[_-]?key|apikey))"
    r"\\?[\"']?[ \t]*[:=][ \t]*)" + _NOT_REDACTED + r"(?:(?P<q>\\?[\"'])(?P<quoted>(?:(?!(?P=q)).){1,512})(?P=q)"
    r"|(?P<bare>[^\s\"'&,;<>)}\]]+))"
)

# Substrings (lower case) without which no rule above can match: the fast path.
_HINTS: Final = (
    *dict.fromkeys(h.lower() for t in (*TOKENS, *SECRET_URLS) for h in t.hints),
    "://",
    "authorization",
    "bearer",
    "aws_secret",
    "secretaccesskey",
    "pass",
    "pwd",
    "secret",
    "token",
    "api_key",
    "api-key",
    "apikey",
)


def might_contain_secret(text: str) -> bool:
    """Cheap precheck: ``False`` means :func:`redact` would return ``text`` unchanged.

    >>> might_contain_secret("ls -la /tmp"), might_contain_secret("token=abc")
    (False, True)
    """
    low = text.lower()
    return any(h in low for h in _HINTS)


def redact(text: str) -> str:
    """``text`` with every recognised secret replaced by ``[REDACTED:<kind>]``.

    >>> redact("password=hunter2 and a plain password")
    'password=[REDACTED:password] and a plain password'
    >>> redact('{"api_key": "k-123 456"}')
    '{"api_key": "[REDACTED:api_key]"}'
    >>> redact("id 123e4567-e89b-12d3-a456-426614174000")
    'id 123e4567-e89b-12d3-a456-426614174000'
    """
    if len(text) < 6 or not might_contain_secret(text):
        return text
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return _ASSIGNMENT.sub(_assignment, text)


def _query_kind(pre: str) -> str:
    """The kind for a URL query credential: what its parameter name says (``?token=``), else ``url_secret``."""
    return secret_name_kind(pre[1:-1]) or "url_secret"


def _assignment(m: re.Match[str]) -> str:
    kind = _kind_for_key(m.group("key")) or "secret"
    if m.group("bare") is not None:
        return m.group("pre") + _mark(kind)
    q = m.group("q")
    return m.group("pre") + q + _mark(kind) + q


#: The kind of secret a mapping key or label names, or ``None`` (whole words: ``max_tokens`` is not).
_kind_for_key: Final = secret_name_kind


def redact_obj(obj: Any) -> Any:
    """A copy of ``obj`` (dicts, lists, tuples, strings) with secrets redacted.

    Strings — mapping keys included (event ids key some maps) — are passed through
    :func:`redact`. A mapping value whose key names a secret (password, secret, token,
    api key, authorization, cookie, credential, private key) is replaced outright when it
    is a scalar; containers under such a key are redacted recursively. ``None``, booleans and empty strings are kept.

    >>> redact_obj({"Authorization": "Bearer x", "max_tokens": 5, "args": ["ok", "sk_live_" + "a" * 24]})
    {'Authorization': '[REDACTED:authorization]', 'max_tokens': 5, 'args': ['ok', '[REDACTED:stripe_key]']}
    """
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            kind = _kind_for_key(key) if isinstance(key, str) else None
            shown = _redacted_key(key, out) if isinstance(key, str) else key  # ids used as keys are ids too
            if kind is not None and _is_secret_scalar(value, kind):
                out[shown] = _mark(kind)
            else:
                out[shown] = redact_obj(value)
        return out
    if isinstance(obj, list | tuple):
        return type(obj)(redact_obj(v) for v in obj)
    return obj


def _redacted_key(key: str, taken: dict[Any, Any]) -> str:
    """``key`` redacted; two keys that redact alike stay apart (``…#2``), so no entry is lost.

    >>> _redacted_key("e-ghp_" + "a" * 36, {"e-[REDACTED:github_token]": 1})
    'e-[REDACTED:github_token]#2'
    """
    shown = redact(key)
    if shown == key or shown not in taken:
        return shown
    n = 2
    while f"{shown}#{n}" in taken:
        n += 1
    return f"{shown}#{n}"


def _is_secret_scalar(value: Any, kind: str) -> bool:
    """Strings and bytes under a secret key are secrets; numbers only as passwords (PINs)."""
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, str):
        return value != "" and not value.startswith("[REDACTED:")
    if isinstance(value, bytes):
        return True
    return kind == "password" and isinstance(value, int | float)
