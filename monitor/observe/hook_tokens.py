"""Per-installation hook tokens: an identity the laptop cannot choose.

With the API token alone (one per organisation) the agent id and principal come from the
``X-Agentwatch-Installation`` / ``X-Agentwatch-Principal`` headers, which anyone holding the token
can set. ``AGENTWATCH_HOOK_TOKENS_FILE`` names a TOML file of installations, each with its own token
— stored only as its SHA-256, so the file holds no secret::

    [[installation]]
    id = "dana-mbp"                      # the agent id becomes claude-code/dana-mbp
    principal = "dana@example.com"
    token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

A request bearing one of these tokens is accepted on the hook endpoint (only there) and gets that
installation's identity whatever its headers say. ``printf %s "$TOKEN" | sha256sum`` gives the hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec

from agentwatch.errors import ConfigError

_HEX64 = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[A-Za-z0-9._@+-]{1,64}")


class _Installation(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    token_sha256: str
    principal: str | None = None


class _File(msgspec.Struct, forbid_unknown_fields=True):
    installation: list[_Installation] = msgspec.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class InstallationIdentity:
    installation: str
    principal: str | None


def load_hook_tokens(environ: Mapping[str, str] | None = None) -> dict[str, InstallationIdentity]:
    """``{sha256 hex: identity}`` from ``AGENTWATCH_HOOK_TOKENS_FILE`` (``{}`` when unset)."""
    env = os.environ if environ is None else environ
    path = env.get("AGENTWATCH_HOOK_TOKENS_FILE")
    if not path:
        return {}
    try:
        parsed = msgspec.convert(tomllib.loads(Path(path).read_text(encoding="utf-8")), _File)
    except OSError as exc:
        raise ConfigError(f"AGENTWATCH_HOOK_TOKENS_FILE {path}: cannot read it ({exc.__class__.__name__})") from None
    except (tomllib.TOMLDecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise ConfigError(f"AGENTWATCH_HOOK_TOKENS_FILE {path}: {exc}") from None
    out: dict[str, InstallationIdentity] = {}
    for entry in parsed.installation:
        digest = entry.token_sha256.strip().lower()
        if not _HEX64.fullmatch(digest):
            raise ConfigError(
                f"AGENTWATCH_HOOK_TOKENS_FILE {path}: installation {entry.id[:64]!r}: token_sha256 must be 64 hex "
                'digits (hint: printf %s "$TOKEN" | sha256sum)'
            )
        if not _ID.fullmatch(entry.id):
            raise ConfigError(
                f"AGENTWATCH_HOOK_TOKENS_FILE {path}: installation id {entry.id[:64]!r} must be 1–64 of "
                "A-Z a-z 0-9 ._@+-"
            )
        if digest in out:
            raise ConfigError(f"AGENTWATCH_HOOK_TOKENS_FILE {path}: two installations share a token")
        principal = entry.principal if entry.principal and entry.principal.isprintable() else None
        out[digest] = InstallationIdentity(entry.id, principal[:128] if principal else None)
    return out


def identity_for(authorization: str | None, tokens: Mapping[str, InstallationIdentity]) -> InstallationIdentity | None:
    """The installation whose token an ``Authorization: Bearer …`` header carries, else ``None``.

    Looked up by the token's SHA-256: what is compared is a digest the caller cannot steer, so the
    lookup leaks nothing useful about any stored token.
    """
    if not tokens or not authorization:
        return None
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    return tokens.get(hashlib.sha256(given.strip().encode("utf-8", "replace")).hexdigest())
