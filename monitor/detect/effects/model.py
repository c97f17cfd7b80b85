"""The effect model: what one action does, as a small closed vocabulary rules can match on.

An :class:`Effect` is ``(op, resource, classes, via, detail)``:

``op`` — one of :data:`OPS` (a closed set, documented below);
``resource`` — what it acts on: a path (``~`` kept for the home directory, relative paths as
given), a URL or ``host[:port]``, a package name, a process (pid or name), a variable name, a
setting (``firewall``, ``shell_history``, ``service:auditd``…), capped at :data:`MAX_RESOURCE_CHARS`;
``classes`` — a frozenset drawn from :data:`CLASSES`, what kind of resource it is;
``via`` — how the effect was found: ``tool`` (a structured tool's own arguments), ``shell``,
``python``, ``args`` (best effort from an unknown or MCP tool's argument names), or
``script:<path>`` (the effect of a file the session wrote earlier and now runs);
``detail`` — a short qualifier or ``None``: ``recursive``, ``append``, ``decoded``, ``unparsed`` …
"""

from __future__ import annotations

from typing import Final

import msgspec

#: The operations, each with what it means. Closed: an analyser never invents one.
OPS: Final[dict[str, str]] = {
    "read": "read a file's content or list a directory (resource: path or glob)",
    "write": "create, overwrite or append to a file (detail: append, redirect, move, copy, symlink …)",
    "delete": "remove a file or directory, or destroy a device's data (detail: recursive, secure, format)",
    "move": "move or rename a file away from its path (resource: the source; the destination gets a write)",
    "execute": "run a program, a script or code (resource: program or script; detail: inline, decoded, "
    "downloaded, remote_shell, dynamic, native …)",
    "chmod": "change permissions or ACLs (detail: the mode, setuid when a setuid/setgid bit is set)",
    "chown": "change a file's owner or group",
    "connect": "open a connection to an endpoint (resource: URL or host[:port])",
    "send": "transmit data to an endpoint or a recipient (resource: the endpoint; detail: what is sent)",
    "upload": "send a named local file (resource: the file; classes: the file's and the endpoint's; detail: to URL)",
    "download": "fetch content from an endpoint (resource: URL; detail: the file written, if any)",
    "listen": "open a listening socket or serve files (resource: port or address)",
    "install": "install a package or extension (resource: package; detail: the package manager)",
    "persist": "arrange for code to run later or at login (cron, systemd, launchd, shell rc, autostart, "
    "authorized_keys, git hooks …)",
    "kill": "terminate or signal a process or stop a service (resource: pid, name or pattern)",
    "elevate": "gain or use other privileges (sudo, su, doas, pkexec; detail: the target user)",
    "account": "create, modify or delete a user account, group membership or password",
    "change_settings": "change system or agent configuration (agent settings files, mounts, services, "
    "firewall rules, kernel parameters)",
    "tamper": "impair a defence or erase traces (clear shell history, disable the firewall, SELinux, "
    "auditing or logging, stop a security service)",
    "env": "read or set environment variables that hold secrets or change how programs load "
    "(resource: the variable name, ``*`` for the whole environment; detail: read or set)",
}

#: Resource classes, each with what it covers. One resource may carry several.
CLASSES: Final[dict[str, str]] = {
    "credential_store": "secrets at rest: ssh keys, cloud and tool credentials, .env files, keychains, "
    "browser profiles, password stores, /etc/shadow, private keys, shell history, secret-named variables",
    "system_path": "operating-system locations: /etc, /usr, /bin, /sbin, /lib, /boot, /var, /opt, /sys, "
    "/proc, /System, /Library",
    "access_control": "who may do what: sudoers, /etc/passwd and group, PAM, sshd_config, authorized_keys",
    "persistence": "places that run code later: shell rc files, cron, at, systemd, init, launchd, "
    "autostart, git hooks, ld.so.preload, authorized_keys, Python .pth/sitecustomize",
    "agent_instructions": "files an agent reads as instructions: CLAUDE.md, AGENTS.md, .cursorrules, memory files",
    "agent_settings": "agent configuration: .claude/settings*.json, hooks, MCP server config",
    "repo": "inside the working tree (a relative path that does not climb out, or under the session cwd)",
    "temp": "temporary locations: /tmp, /var/tmp, /dev/shm, $TMPDIR",
    "home": "a user's home directory",
    "device": "a device node (/dev/*, except null/zero/tty/std streams)",
    "log": "logs and traces: /var/log, *.log, audit and login records, shell history",
    "net_loopback": "this machine: localhost, 127.0.0.0/8, ::1, 0.0.0.0",
    "net_internal": "a private network: RFC 1918 / ULA / link-local addresses, .internal, .local, .corp, "
    ".lan, cluster names, single-label hosts",
    "net_external": "anything else on the network",
    "net_raw_ip": "the endpoint is written as an IP address, not a name",
    "net_cloud_metadata": "a cloud instance-metadata service (169.254.169.254, metadata.google.internal …)",
}

#: The ``via`` values besides ``script:<path>``.
VIAS: Final = frozenset({"tool", "shell", "python", "args"})

MAX_RESOURCE_CHARS: Final = 256

NO_CLASSES: Final[frozenset[str]] = frozenset()


class Effect(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One typed effect of an action. Frozen, hashable and cheap (a few hundred bytes)."""

    op: str
    resource: str
    classes: frozenset[str] = NO_CLASSES
    via: str = "tool"
    detail: str | None = None

    def has(self, *classes: str) -> bool:
        """Whether this effect's resource carries any of ``classes``."""
        return not self.classes.isdisjoint(classes)


def make(
    op: str, resource: str, classes: frozenset[str] = NO_CLASSES, via: str = "tool", detail: str | None = None
) -> Effect:
    """An :class:`Effect` with the resource capped (agent-written text has no length bound)."""
    if len(resource) > MAX_RESOURCE_CHARS:
        resource = resource[: MAX_RESOURCE_CHARS - 1] + "…"
    return Effect(op, resource, classes, via, detail)
