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

import functools
import re
from collections.abc import Callable
from typing import Any, Final

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


# Order matters: multi-line blocks and URLs first, labelled assignments last (they
# skip values an earlier rule already redacted, so specific kinds survive).
_RULES: Final[list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]] = [
    (
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
            r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)"
        ),
        _whole("private_key"),
    ),
    (
        re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]+"),
        _whole("slack_webhook"),
    ),
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
    # Identifiers glue secrets to other text (``agent_ghp_…``, ``xxRTLAKIA…``), so the
    # distinctive prefixes match anywhere — no word boundary, which ``_`` and letters
    # defeat — and a match takes every character of its alphabet that follows: when in
    # doubt, redact more. Short generic prefixes (``sk-``, ``sk_``, ``eyJ``) only need
    # no letter or digit before them.
    (
        re.compile(r"(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16,}"),
        _whole("aws_access_key"),
    ),
    (
        re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}"),
        _whole("github_token"),
    ),
    (re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}"), _whole("slack_token")),
    (re.compile(r"sk-ant-[A-Za-z0-9_-]{20,}"), _whole("anthropic_key")),
    (
        re.compile(
            r"(?<![A-Za-z0-9])sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{32,}(?![A-Za-z0-9-]))"
        ),
        _whole("openai_key"),
    ),
    (re.compile(r"(?<![A-Za-z0-9])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"), _whole("stripe_key")),
    (re.compile(r"AIza[0-9A-Za-z_-]{35,}"), _whole("google_api_key")),
    (re.compile(r"(?<![A-Za-z0-9])eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), _whole("jwt")),
]

# `password=…`, `passwd: …`, `"api_key": "…"`, `GITHUB_TOKEN=…`: label kept, value redacted.
_ASSIGNMENT: Final = re.compile(
    r"(?P<pre>(?<![A-Za-z0-9])(?P<key>(?i:password|passwd|passphrase|pwd|secret|client_secret|token"
    r"|access_token|refresh_token|auth_token|api[_-]?key|apikey))"
    r"\\?[\"']?[ \t]*[:=][ \t]*)" + _NOT_REDACTED + r"(?:(?P<q>\\?[\"'])(?P<quoted>(?:(?!(?P=q)).){1,512})(?P=q)"
    r"|(?P<bare>[^\s\"'&,;<>)}\]]+))"
)

_KEY_KINDS: Final = (
    ("password", "password"),
    ("passwd", "password"),
    ("passphrase", "password"),
    ("pwd", "password"),
    ("secret", "secret"),
    ("apikey", "api_key"),
    ("authorization", "authorization"),
    ("cookie", "cookie"),
    ("privatekey", "private_key"),
    ("credential", "credential"),
    ("token", "token"),
)
_KEY_WORDS: Final = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

# Substrings (lower case) without which no rule above can match: the fast path.
_HINTS: Final = (
    "private key",
    "hooks.slack.com",
    "://",
    "authorization",
    "bearer",
    "aws_secret",
    "secretaccesskey",
    "akia",
    "asia",
    "aida",
    "aroa",
    "agpa",
    "anpa",
    "anva",
    "aipa",
    "abia",
    "acca",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xox",
    "sk-",
    "sk_",
    "rk_",
    "aiza",
    "eyj",
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


def _assignment(m: re.Match[str]) -> str:
    kind = _kind_for_key(m.group("key")) or "secret"
    if m.group("bare") is not None:
        return m.group("pre") + _mark(kind)
    q = m.group("q")
    return m.group("pre") + q + _mark(kind) + q


@functools.lru_cache(maxsize=4096)
def _kind_for_key(key: str) -> str | None:
    """The kind of secret a mapping key or label names, or ``None`` for an ordinary key.

    Matches whole words of the key (``db_password``, ``X-Api-Key``, ``accessToken``),
    so ``tokens_in`` or ``max_tokens`` are not secrets.

    >>> [_kind_for_key(k) for k in ("DB_PASSWORD", "X-Api-Key", "accessToken", "tokens_in", "Set-Cookie")]
    ['password', 'api_key', 'token', None, 'cookie']
    """
    words = [w.lower() for w in _KEY_WORDS.findall(key)]
    joined = "".join(words)
    for needle, kind in _KEY_KINDS:
        if needle in words or (len(needle) > 6 and needle in joined):
            return kind
    for a, b, kind in (
        ("api", "key", "api_key"),
        ("private", "key", "private_key"),
        ("access", "key", "api_key"),
    ):
        if any(words[i] == a and words[i + 1] == b for i in range(len(words) - 1)):
            return kind
    return None


def redact_obj(obj: Any) -> Any:
    """A copy of ``obj`` (dicts, lists, tuples, strings) with secrets redacted.

    Strings are passed through :func:`redact`. A mapping value whose key names a
    secret (password, secret, token, api key, authorization, cookie, credential,
    private key) is replaced outright when it is a scalar; containers under such a
    key are redacted recursively. ``None``, booleans and empty strings are kept.

    >>> redact_obj({"Authorization": "Bearer x", "max_tokens": 5, "args": ["ok", "sk_live_" + "a" * 24]})
    {'Authorization': '[REDACTED:authorization]', 'max_tokens': 5, 'args': ['ok', '[REDACTED:stripe_key]']}
    """
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            kind = _kind_for_key(key) if isinstance(key, str) else None
            if kind is not None and _is_secret_scalar(value, kind):
                out[key] = _mark(kind)
            else:
                out[key] = redact_obj(value)
        return out
    if isinstance(obj, list | tuple):
        return type(obj)(redact_obj(v) for v in obj)
    return obj


def _is_secret_scalar(value: Any, kind: str) -> bool:
    """Strings and bytes under a secret key are secrets; numbers only as passwords (PINs)."""
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, str):
        return value != "" and not value.startswith("[REDACTED:")
    if isinstance(value, bytes):
        return True
    return kind == "password" and isinstance(value, int | float)
