"""Who is who: approver ids, identity lookups, and the approvals file for the CLI.

Approvers are listed by Slack user ids (``U…``/``W…``) and user-group ids (``S…``) — the ids
people already have — but nothing here talks to Slack: a :class:`Directory` answers "which
id is this name", "what is this user's e-mail" and "who is in this group", and every lookup
that cannot tell raises :class:`IdentityUnavailable` so the vote is refused (fail closed).
Slack's directory (``users.info``, ``usergroups.users.list``) is
:class:`agentwatch.approve.slack.notifier.SlackDirectory`.

The CLI's identity (``agentwatch approve … --as NAME``) comes from the approvals file
(:class:`ApprovalsFile`; ``$AGENTWATCH_APPROVALS_FILE``, default
``<data_dir>/approvals.toml``)::

    [users.U012ALICE]              # the id approvers are listed by (a Slack user id)
    email = "alice@example.com"    # compared with the incident's principal
    names = ["alice"]              # what --as may say instead of the id

    [groups.S0SECOPS]              # members of a user group, for when Slack is not configured
    members = ["U012ALICE", "U034BOB"]

``--as`` takes a Slack user id or one of its ``names``; without an entry, a Slack user
id is looked up in Slack when a bot token is configured, else refused.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Protocol

import msgspec

from agentwatch.errors import ConfigError

#: An approver listed as a person (Slack user id) …
USER_ID: Final = re.compile(r"^[UW][A-Z0-9]{2,20}$")
#: … or as a group of people (Slack user-group id).
GROUP_ID: Final = re.compile(r"^S[A-Z0-9]{2,20}$")


class IdentityUnavailable(LookupError):
    """A user's e-mail or a group's members could not be established (fail closed)."""


class Directory(Protocol):
    """Identity lookups; every method raises :class:`IdentityUnavailable` when it cannot tell."""

    def resolve(self, name: str) -> str:
        """The approver id a CLI ``--as`` name stands for."""

    def email(self, user_id: str) -> str:
        """The user's e-mail address."""

    def group_members(self, group_id: str) -> frozenset[str]:
        """User ids in a user group."""


class UserEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: str
    names: list[str] = msgspec.field(default_factory=list)


class GroupEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    members: list[str] = msgspec.field(default_factory=list)


class ApprovalsFile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``approvals.toml``: identities for the CLI (and for groups when Slack is not configured)."""

    users: dict[str, UserEntry] = msgspec.field(default_factory=dict)
    groups: dict[str, GroupEntry] = msgspec.field(default_factory=dict)


def approvals_file_path(data_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("AGENTWATCH_APPROVALS_FILE") or data_dir / "approvals.toml")


def load_approvals_file(path: Path) -> ApprovalsFile:
    """The file's identities; an absent file is empty, a malformed one a :class:`ConfigError`."""
    if not path.is_file():
        return ApprovalsFile()
    try:
        return msgspec.convert(tomllib.loads(path.read_text()), ApprovalsFile)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise ConfigError(f"approvals file {path}: {exc}") from None


class FileDirectory:
    """Identities from :class:`ApprovalsFile`, falling back to another directory (Slack)."""

    def __init__(self, file: ApprovalsFile, fallback: Directory | None = None) -> None:
        self.file = file
        self.fallback = fallback
        self._names = {n.casefold(): uid for uid, u in file.users.items() for n in u.names}

    def resolve(self, name: str) -> str:
        if name in self.file.users:
            return name
        if name.casefold() in self._names:
            return self._names[name.casefold()]
        if USER_ID.match(name):
            return name
        raise IdentityUnavailable(f"{name!r} is neither a Slack user id nor a name in the approvals file")

    def email(self, user_id: str) -> str:
        entry = self.file.users.get(user_id)
        if entry is not None:
            return entry.email
        if self.fallback is not None:
            return self.fallback.email(user_id)
        raise IdentityUnavailable(f"no e-mail known for {user_id} (add it to the approvals file)")

    def group_members(self, group_id: str) -> frozenset[str]:
        entry = self.file.groups.get(group_id)
        if entry is not None:
            return frozenset(entry.members)
        if self.fallback is not None:
            return self.fallback.group_members(group_id)
        raise IdentityUnavailable(f"members of {group_id} unknown (add it to the approvals file)")
