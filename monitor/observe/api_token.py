"""The bearer token that guards ``agentwatch serve``'s API (everything but ``/healthz`` and Slack).

``AGENTWATCH_API_TOKEN`` holds the token, or ``AGENTWATCH_API_TOKEN_FILE`` names a file that
does (surrounding whitespace stripped; a container secret, Prometheus' ``credentials_file``).
Both ``serve`` and its clients (the Claude Code hook) read it the same way. Tokens are compared
in constant time.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from pathlib import Path

from agentwatch.errors import ConfigError

MIN_TOKEN_CHARS = 16
MAX_TOKEN_CHARS = 512


def load_api_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The configured token, ``None`` when neither variable is set; :class:`ConfigError` when unusable."""
    env = os.environ if environ is None else environ
    token = env.get("AGENTWATCH_API_TOKEN") or None
    path = env.get("AGENTWATCH_API_TOKEN_FILE") or None
    if token is not None and path is not None:
        raise ConfigError("set AGENTWATCH_API_TOKEN or AGENTWATCH_API_TOKEN_FILE, not both")
    if path is not None:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"AGENTWATCH_API_TOKEN_FILE {path}: cannot read it ({exc.__class__.__name__})") from None
    if token is None:
        return None
    token = token.strip()
    if (
        not MIN_TOKEN_CHARS <= len(token) <= MAX_TOKEN_CHARS
        or not token.isascii()
        or not token.isprintable()
        or " " in token
    ):
        raise ConfigError(
            f"the API token must be {MIN_TOKEN_CHARS}–{MAX_TOKEN_CHARS} printable ASCII characters "
            "without spaces (hint: `openssl rand -hex 32`)"
        )
    return token


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Does an ``Authorization`` header carry ``Bearer <token>``? Constant time in the token."""
    if not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode())
