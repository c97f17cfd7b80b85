"""Path classes where the regexes' anchoring decides: after the start or a "/", at the start only, anywhere.

The path patterns of ``agentwatch.detect.effects.classify`` group their alternatives by anchoring (for speed);
these cases pin what each group must and must not match — a part of a name (``x.bashrc``), a rooted path
under another directory (``/srv/etc/shadow``), a suffix followed by more (``server.pem.bak``).
"""

from __future__ import annotations

import pytest

from agentwatch.detect.effects.classify import path_classes

CASES = [
    ("~/.ssh/id_rsa", ["credential_store", "home"]),
    (".ssh", ["credential_store", "repo"]),
    ("x.ssh/config", ["repo"]),
    ("/home/u/.AWS/credentials", ["credential_store", "home"]),
    ("~/.config/gcloud/x", ["credential_store", "home"]),
    ("gcloud/x", ["repo"]),
    ("/etc/shadow", ["credential_store", "system_path"]),
    ("/etc/shadow-", ["credential_store", "system_path"]),
    ("/srv/etc/shadow", ["system_path"]),
    ("/proc/self/environ", ["credential_store", "system_path"]),
    ("/proc/12/maps/x", ["system_path"]),
    ("/run/secrets/db", ["credential_store"]),
    ("/x/run/secrets/db", []),
    ("~/Library/Keychains/login.keychain-db", ["credential_store", "home"]),
    ("server.PEM", ["credential_store", "repo"]),
    ("server.pem.bak", ["repo"]),
    ("app/.env.production", ["credential_store", "repo"]),
    ("app/my.env", ["repo"]),
    ("Login Data", ["credential_store", "repo"]),
    ("/Users/a/Library/Application Support/Google/Chrome/Default/Cookies", ["credential_store", "home"]),
    ("~/.bashrc", ["home", "persistence"]),
    ("x.bashrc", ["repo"]),
    ("/etc/profile.d/a.sh", ["persistence", "system_path"]),
    ("/opt/etc/profile", ["system_path"]),
    ("/etc/cron.daily/x", ["persistence", "system_path"]),
    ("/usr/local/etc/rc.d/x", ["persistence", "system_path"]),
    ("~/Library/LaunchAgents/x.plist", ["home", "persistence"]),
    ("/lib/systemd/system/x.service", ["persistence", "system_path"]),
    ("a/site-packages/x.pth", ["persistence", "repo"]),
    ("a/site-packages/b/x.pth", ["repo"]),
    ("CLAUDE.md", ["agent_instructions", "repo"]),
    ("docs/claude.md", ["agent_instructions", "repo"]),
    ("xclaude.md", ["repo"]),
    ("~/.claude/projects/p/memory/a.md", ["agent_instructions", "home"]),
    (".cursor/rules/x", ["agent_instructions", "repo"]),
    ("~/.claude/settings.json", ["agent_settings", "home"]),
    ("a/.vscode/mcp.json", ["agent_settings", "repo"]),
    ("mcp.json", ["agent_settings", "repo"]),
    ("amcp.json", ["repo"]),
    ("/var/log/syslog", ["log", "system_path"]),
    ("app.log.1", ["log", "repo"]),
    ("x/wtmp", ["log", "repo"]),
    ("~/Library/Mail/V10", ["home", "log"]),
    ("/Users/b/Library/Mail", ["home", "log"]),
    ("/x/Users/b/Library/Mail", []),
    ("~/.zsh_history", ["credential_store", "home", "log"]),
    ("/private/var/audit/x", ["log", "system_path"]),
    ("src/app.py", ["repo"]),
]


@pytest.mark.parametrize(("path", "classes"), CASES)
def test_path_classes_by_anchoring(path: str, classes: list[str]) -> None:
    assert sorted(path_classes(path)) == classes
