"""Resource classes for paths and network endpoints (see :data:`agentwatch.detect.effects.model.CLASSES`).

Pure functions over strings, cached: the same few hundred paths and hosts recur in every session.

>>> sorted(path_classes("~/.ssh/id_rsa"))
['credential_store', 'home']
>>> sorted(path_classes("/home/dev/.bashrc"))
['home', 'persistence']
>>> sorted(path_classes("src/app.py")), sorted(path_classes("/etc/shadow"))
(['repo'], ['credential_store', 'system_path'])
>>> sorted(endpoint_classes("http://169.254.169.254/latest/meta-data/"))
['net_cloud_metadata', 'net_internal', 'net_raw_ip']
>>> sorted(endpoint_classes("https://pastebin.com/raw/x")), sorted(endpoint_classes("10.0.0.5:22"))
(['net_external'], ['net_internal', 'net_raw_ip'])
"""

from __future__ import annotations

import functools
import ipaddress
import posixpath
import re
from typing import Final
from urllib.parse import urlsplit

from agentwatch.detect.effects.model import NO_CLASSES
from agentwatch.secret_catalogue import is_secret_env_name

# -- paths -------------------------------------------------------------------------------------
# Each pattern is searched in the normalised path ("~" for the home directory, "/" separators). The
# alternatives are grouped by how they are anchored — after the start or a "/", at the start only, anywhere —
# so that at most positions of a path the engine tries one character, not every alternative: the same matches
# as one flat alternation (fuzzed), about a ninth of the cost for the five together (78 → 9 µs per new path on
# the simulated fleet's paths; a path is classified once, but new paths keep coming).
_CREDENTIAL: Final = re.compile(
    r"""(?ix)
    (^|/)(?: \.ssh(/|$) | \.gnupg(/|$) | \.aws(/|$) | \.azure(/|$) | \.kube/config | \.docker/config\.json
      | \.netrc$ | _netrc$ | \.git-credentials$ | \.npmrc$ | \.pypirc$ | \.pgpass$ | \.my\.cnf$ | \.env(\.[\w.-]+)?$
      | \.envrc$ | \.boto$ | \.s3cfg$ | \.vault-token$ | \.cargo/credentials | \.gem/credentials
      | \.terraform\.d/credentials | \.config/gh/hosts\.yml | \.config/hub$ | \.password-store(/|$)
      | \.local/share/keyrings | \.mozilla/firefox | \.config/(google-chrome|chromium|bravesoftware|microsoft-edge)(/|$)
      | (cookies|login\ data|web\ data|logins\.json|key[34]\.db|cookies\.sqlite|signons\.sqlite)$
      | library/cookies(/|$) | id_(rsa|dsa|ecdsa|ed25519)[^/]*$ | (credentials|secrets?)(\.[\w-]+)?$
      | service[-_]?account[^/]*\.json$ | wallet\.dat$ | \.(bash|zsh|sh|python|mysql|psql|node_repl|lesshst)_?history$
      | \.(histfile|history)$ | \.claude/\.credentials\.json$ )
    | ^(?: /etc/(shadow|gshadow|master\.passwd|security/opasswd)(-|$) | /etc/ssl/private | /var/db/shadow
      | /proc/(\d+|self|\$\w+|\*)/(mem|environ|maps)$ | /(var/)?run/secrets(/|$) | /(private/)?var/db/dslocal )
    | /gcloud(/|$) | /keychains(/|$) | \.keychain(-db)?$
    | /application\ support/(google/chrome|firefox|microsoft\ edge|bravesoftware) | \.binarycookies$
    | \.(pem|key|p12|pfx|jks|keystore|kdbx|ppk|asc|gpg|ovpn)$
    """
)
_SYSTEM: Final = re.compile(
    r"^/(etc|usr|bin|sbin|lib|lib32|lib64|libx32|boot|var|opt|sys|proc|srv|System|Library|private/etc|private/var"
    r"|Applications)(/|$)"
)
_ACCESS: Final = re.compile(
    r"""(?x) ^/(usr/local/)?etc/(sudoers|sudoers\.d|passwd|group|pam\.d|security|ssh/sshd_config(\.d)?|polkit-1
                                  |doas\.conf)(/|$|-)
    | ^/private/etc/sudoers | (^|/)\.ssh/authorized_keys2?$"""
)
_PERSISTENCE: Final = re.compile(
    r"""(?ix)
    (^|/)(?: \.(bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zshenv|zprofile|zlogin|zlogout|kshrc|cshrc
               |tcshrc|login|xinitrc|xprofile|xsession|inputrc|shrc|mkshrc)$
      | \.config/fish/(config\.fish|conf\.d) | \.config/systemd/ | \.config/autostart(/|$) | \.git/hooks/
      | \.ssh/(authorized_keys2?|rc)$ | (sitecustomize|usercustomize)\.py$ | \.local/share/applications/[^/]+\.desktop$
      | com\.apple\.loginwindow | \.vimrc$ | \.tmux\.conf$ )
    | ^(?: /etc/(profile|profile\.d|bash\.bashrc|bashrc|zshrc|zprofile|zshenv|zlogin|environment|csh\.cshrc
                 |csh\.login)(/|$)
      | /etc/(crontab|cron\.|anacrontab) | /var/spool/(cron|at)(/|$) | /var/at(/|$) | /usr/lib/cron
      | /(usr/local/)?etc/(systemd|init\.d|init|rc\.local|rc\.d|rc\d\.d|xdg/autostart|update-motd\.d|udev/rules\.d
            |modules-load\.d|emond\.d|periodic|ld\.so\.preload|ld\.so\.conf|apt/apt\.conf\.d|launchd\.conf
            |yum/pluginconf\.d|dnf/plugins|modules|modprobe\.d|networkmanager/dispatcher\.d
            |dhcp/dhclient-(enter|exit)-hooks\.d)(/|$|\.)
      | /library/security/securityagentplugins(/|$) | /(usr/)?lib/systemd/ | /library/startupitems )
    | \.(service|timer|socket)$ | /launch(agents|daemons)(/|$) | /site-packages/[^/]+\.pth$
    """
)
_AGENT_INSTRUCTIONS: Final = re.compile(
    r"""(?ix) (^|/)(?: (claude|claude\.local|agents|gemini|agent|copilot-instructions|conventions)\.md$
      | \.(cursorrules|windsurfrules|clinerules|goosehints)$ | \.cursor/rules(/|$) | memory\.md$
      | \.claude/(memory|memories|agents|commands|skills)(/|$) | \.claude/projects/[^/]+/memory )
    """
)
_AGENT_SETTINGS: Final = re.compile(
    r"""(?ix) (^|/)(?: \.claude/settings(\.local)?\.json$ | \.claude\.json$ | \.claude/hooks(/|$)
      | \.?mcp\.json$ | claude_desktop_config\.json$ | \.(cursor|vscode|gemini|codex|continue|windsurf)/
        (mcp\.json|settings\.json|config\.toml|config\.json|config\.yaml)$ | \.codeium/windsurf/mcp_config\.json$ )
    """
)
_LOG: Final = re.compile(
    r"""(?ix)
    (^|/)(?: (wtmp|btmp|lastlog|utmp|auth\.log|syslog|messages|secure|audit\.log)$
      | \.(bash|zsh|sh|python|mysql|psql)_?history$ | \.(histfile|history)$ )
    | ^(?: /(private/)?var/log(/|$) | /var/(audit|run/utmp|account)(/|$) | /var/log/journal | /private/var/audit
      | /(private/)?var/(spool/)?mail(/|$) | (~|/Users/[^/]+)/Library/Mail(/|$) )
    | \.log(\.\d+)?$
    """
)
_TEMP: Final = re.compile(r"^/(tmp|var/tmp|dev/shm|private/tmp|private/var/folders|var/folders)(/|$)|^\$\{?TMPDIR")
_HOME: Final = re.compile(r"^(~|/home/[^/]+|/Users/[^/]+|/root|/var/root|\$\{?HOME\}?)(/|$)")
_HARMLESS_DEVICES: Final = frozenset(
    {
        "/dev/null",
        "/dev/zero",
        "/dev/stdout",
        "/dev/stderr",
        "/dev/stdin",
        "/dev/tty",
        "/dev/random",
        "/dev/urandom",
        "/dev/fd/0",
        "/dev/fd/1",
        "/dev/fd/2",
    }
)


def normalise_path(path: str, cwd: str | None = None) -> str:
    """``$HOME``/``${HOME}`` → ``~``, duplicate slashes and ``.``/``..`` folded, ``cwd`` joined if relative.

    >>> normalise_path("$HOME/.ssh/../.aws/credentials"), normalise_path("./x.sh", "/w")
    ('~/.aws/credentials', '/w/x.sh')
    """
    if path.startswith("$HOME") or path.startswith("${HOME}"):
        path = "~" + path[5 if path.startswith("$HOME") else 7 :]
    if cwd and not path.startswith(("/", "~", "$")):
        path = posixpath.join(cwd, path)
    if "//" in path or "/." in path or path.startswith("./") or path.endswith("/"):
        keep_root = path.startswith("//")
        path = posixpath.normpath(path)
        if keep_root:
            path = path.lstrip("/")
            path = "/" + path
    return path


@functools.lru_cache(maxsize=8192)
def path_classes(path: str, cwd: str | None = None) -> frozenset[str]:
    """The classes of a file path (normalised first; ``cwd`` marks what lies under it as ``repo``)."""
    if not path:
        return NO_CLASSES
    p = normalise_path(path)
    out: set[str] = set()
    if _CREDENTIAL.search(p):
        out.add("credential_store")
    if _PERSISTENCE.search(p):
        out.add("persistence")
    if _AGENT_INSTRUCTIONS.search(p):
        out.add("agent_instructions")
    if _AGENT_SETTINGS.search(p):
        out.add("agent_settings")
    if _LOG.search(p):
        out.add("log")
    if p.startswith("/"):
        if p.startswith("/dev/") and not _TEMP.match(p):  # /dev/shm is a tmpfs for files, not a device
            if p not in _HARMLESS_DEVICES and not p.startswith(("/dev/fd/", "/dev/tcp/", "/dev/udp/")):
                out.add("device")
        elif _TEMP.match(p):
            out.add("temp")
        elif _HOME.match(p):
            out.add("home")
        elif _SYSTEM.match(p):
            out.add("system_path")
        if _ACCESS.search(p):
            out.add("access_control")
        if cwd and (p == cwd or p.startswith(cwd.rstrip("/") + "/")):
            out.add("repo")
    elif p.startswith(("~", "$HOME", "${HOME}")):
        out.add("home")
        if _ACCESS.search(p):
            out.add("access_control")
    elif p.startswith("$"):
        if _TEMP.match(p):
            out.add("temp")
    elif not (p == ".." or p.startswith("../")):
        out.add("repo")
    return frozenset(out) if out else NO_CLASSES


# -- network -----------------------------------------------------------------------------------
_METADATA_HOSTS: Final = frozenset(
    {
        "169.254.169.254",
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
#: Name suffixes of private networks (``agentwatch.destinations.DEFAULT_INTERNAL_SUFFIXES`` plus ``.intranet`` and
#: ``.private``; ``localhost`` is loopback here).
INTERNAL_SUFFIXES: Final = (
    ".internal",
    ".local",
    ".localhost",
    ".corp",
    ".lan",
    ".home.arpa",
    ".svc.cluster.local",
    ".intranet",
    ".private",
)
_SCHEME: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_HOSTPORT: Final = re.compile(r"^\[?([^\]\s/]+?)\]?(?::(\d+))?$")


def endpoint_host(endpoint: str) -> str:
    """The host name or address of a URL, ``host[:port]``, ``user@host[:path]`` or ``/dev/tcp/host/port``.

    >>> endpoint_host("https://User@Example.com:8443/x"), endpoint_host("root@10.0.0.1:/tmp"), endpoint_host("[::1]:80")
    ('example.com', '10.0.0.1', '::1')
    """
    e = endpoint.strip()
    if e.startswith(("/dev/tcp/", "/dev/udp/")):
        return e.split("/")[3].lower() if e.count("/") >= 3 else ""
    if _SCHEME.match(e):
        try:
            return (urlsplit(e).hostname or "").lower()
        except ValueError:
            return ""
    if "@" in e:
        e = e.rsplit("@", 1)[1]
    if e.count(":") == 1 and not e.startswith("["):  # host:path (scp) or host:port
        e = e.split(":", 1)[0]
    e = e.split("/", 1)[0]
    m = _HOSTPORT.match(e)
    return (m.group(1) if m else e).lower()


@functools.lru_cache(maxsize=8192)
def endpoint_classes(endpoint: str) -> frozenset[str]:
    """The classes of a network endpoint (URL, ``host[:port]``, ``user@host``, bare host or address)."""
    host = endpoint_host(endpoint)
    if not host:
        return frozenset({"net_external"})
    return host_classes(host)


@functools.lru_cache(maxsize=8192)
def host_classes(host: str) -> frozenset[str]:
    """The classes of a host name or address."""
    host = host.rstrip(".").lower()
    out: set[str] = set()
    if host in _METADATA_HOSTS:
        out.add("net_cloud_metadata")
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = _legacy_ipv4(host)
    if addr is not None:
        out.add("net_raw_ip")
        if addr.is_loopback or addr.is_unspecified:
            out.add("net_loopback")
        elif any(addr in net for net in _INTERNAL_NETS if net.version == addr.version):
            out.add("net_internal")
        else:
            out.add("net_external")
    elif host == "localhost" or host.endswith(".localhost"):
        out.add("net_loopback")
    elif "." not in host or host.endswith(INTERNAL_SUFFIXES):
        out.add("net_internal")
    else:
        out.add("net_external")
    return frozenset(out)


#: Private networks (documentation ranges such as 203.0.113.0/24 are *not* internal: nothing here routes them).
_INTERNAL_NETS: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
        "fe80::/10",
    )
)


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``2130706433`` or ``0x7f000001`` (forms curl and browsers accept) as an address; else None."""
    try:
        if host.isdigit():
            value = int(host)
        elif host.startswith("0x") and all(c in "0123456789abcdef" for c in host[2:]) and len(host) > 2:
            value = int(host, 16)
        else:
            return None
    except ValueError:
        return None
    if 0 < value < 2**32:
        return ipaddress.IPv4Address(value)
    return None


#: Whether an environment variable name looks like it holds a secret (the shared catalogue's test).
is_secret_name: Final = is_secret_env_name
