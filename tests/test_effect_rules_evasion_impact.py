"""effect_rules part ``evasion_impact`` (defence evasion, impact) and the effects-layer readings it relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentwatch.detect.effects.classify import path_classes
from agentwatch.detect.rules import load_files
from tests.effects_helpers import find, rules_fired, shell_effects

RULES = Path(__file__).resolve().parents[1] / "detectors" / "rules" / "effect_rules.evasion_impact.yaml"


effects = shell_effects
fired = rules_fired


# --- the effects layer --------------------------------------------------------------------------------
def test_chkconfig_names_the_service_whatever_the_word_order() -> None:
    for command in ("chkconfig off cbdaemon", "chkconfig cbdaemon off"):
        assert find(effects(command), "tamper", "service:cbdaemon") is not None, command
    assert find(effects("chkconfig --level 35 httpd on"), "persist", "service:httpd") is not None


def test_which_substitution_is_the_program_path() -> None:
    assert find(effects("cp $(which sh) /tmp/x"), "read", "/usr/bin/sh", {"system_path"}) is not None
    # the program found by `which` still runs as itself (Python analysed as Python)
    assert find(effects('PY=$(which python3); $PY -c "import os"'), "execute", "python", detail="inline")


def test_pgrep_substitution_names_the_processes_killed() -> None:
    assert find(effects("kill -TERM $(pgrep cron)"), "kill", "cron") is not None
    assert find(effects("kill -9 $(pidof sshd)"), "kill", "sshd") is not None
    assert find(effects("kill $(pgrep -f falcon)"), "tamper", "falcon") is not None


def test_a_program_variable_runs_the_program_it_is_named_after() -> None:
    gpg = effects("echo pw | $which_gpg --batch --passphrase-fd 0 --cipher-algo AES256 -o /tmp/a.gpg -c /etc/hosts")
    assert find(gpg, "execute", "gpg", detail="encrypt") is not None
    assert find(gpg, "read", "0") is None and find(gpg, "read", "AES256") is None  # option values, not files
    assert find(effects("$SEVENZIP a -psecret /tmp/a.7z ~/docs"), "execute", "7z", detail="encrypted") is None
    assert find(effects("$which_7z a -psecret /tmp/a.7z ~/docs"), "execute", "7z", detail="encrypted") is not None
    assert find(effects("$FOO bar"), "execute", "$FOO") is not None  # unknown: left as written


def test_openssl_public_key_encryption_is_encryption() -> None:
    found = effects("openssl pkeyutl -encrypt -pubin -inkey k.pem -in /etc/hosts -out /tmp/h.enc")
    assert find(found, "execute", "openssl", detail="encrypt") is not None
    assert find(effects("openssl rsautl -sign -inkey k.pem -in a"), "execute", "openssl", detail="encrypt") is None


def test_upx_packs_unpacks_or_only_tests() -> None:
    assert find(effects("upx -9 /tmp/a"), "write", "/tmp/a", detail="packed") is not None
    assert find(effects("upx -d /tmp/a"), "write", "/tmp/a", detail="unpacked") is not None
    assert find(effects("upx -t /tmp/a"), "write") is None


def test_edr_cli_turning_protection_off_is_tampering() -> None:
    assert find(effects("mdatp config real-time-protection --value disabled"), "tamper", "mdatp") is not None
    assert find(effects("mdatp config real-time-protection --value enabled"), "tamper") is None
    assert find(effects("mdatp health"), "tamper") is None


def test_paths_dev_shm_is_temporary_and_mail_spools_are_logs() -> None:
    assert path_classes("/dev/shm/x") == frozenset({"temp"})
    assert "device" in path_classes("/dev/sda")
    assert "log" in path_classes("/var/spool/mail/root") and "log" in path_classes("/var/mail/alice")
    assert "log" in path_classes("~/Library/Mail/V10/INBOX.mbox") and "log" not in path_classes("~/Mail.app")


def test_truncate_grow_setfile_hidden_gdb_injection_yes_detached() -> None:
    assert find(effects("truncate -s +4 /tmp/b"), "write", "/tmp/b", detail="truncate grow") is not None
    assert find(effects("truncate -s 0 /tmp/b"), "write", "/tmp/b", detail="grow") is None
    assert find(effects("SetFile -a V /tmp/f"), "write", "/tmp/f", detail="hidden") is not None
    injected = effects("gdb -p 42 -batch -ex 'call (void*)dlopen(\"/tmp/l.so\", 2)'")
    assert find(injected, "write", "/proc/42/mem", detail="injection") is not None
    assert find(effects("gdb -p 42 -batch -ex 'bt'"), "write") is None
    assert find(effects("yes > /dev/null &"), "execute", "yes", detail="busy loop") is not None
    assert find(effects("yes | head -2"), "execute", "yes", detail="busy loop") is None
    assert find(effects("yes > /dev/null"), "execute", "yes", detail="busy loop") is not None
    assert find(effects("cat /dev/zero > /dev/null"), "execute", "cat", detail="busy loop") is not None
    assert find(effects("cat notes.txt > /dev/null"), "execute", "cat", detail="busy loop") is None


def test_journal_vacuum_is_tampering_only_when_it_empties_the_journal() -> None:
    for command in ("journalctl --vacuum-time=1s", "journalctl --vacuum-size 1K", "journalctl --vacuum-files=1"):
        assert find(effects(command), "tamper", "log") is not None, command
    for command in ("journalctl --vacuum-time 2d", "journalctl --vacuum-size=500M", "journalctl --rotate"):
        assert find(effects(command), "tamper") is None, command


def test_ccencrypt_encrypts_the_files_it_names() -> None:
    found = effects("ccencrypt -K pw ~/Documents/a.txt")
    assert find(found, "execute", "ccencrypt", detail="encrypt") is not None
    assert find(found, "read", "~/Documents/a.txt") is not None and find(found, "read", "pw") is None


def test_history_ignore_patterns_are_tampering() -> None:
    assert find(effects("export HISTIGNORE='ls*:rm*'"), "tamper", "shell_history") is not None
    assert find(effects("export SHELL_SESSION_HISTORY=0"), "tamper", "shell_history") is not None
    assert find(effects("export HISTSIZE=5000"), "tamper") is None


# --- the rules ----------------------------------------------------------------------------------------
def test_the_rule_file_loads_and_every_rule_names_an_attack_technique() -> None:
    rules = load_files([RULES.parent / "effect_rules.core.yaml", RULES]).rules
    mine = [r for r in rules if r.source.endswith(RULES.name)]
    assert len(mine) >= 15
    assert all(any(t.startswith("T1") for t in r.tags) for r in mine)


@pytest.mark.parametrize(
    ("command", "rule"),
    [
        ("echo 'disk_full_action = ignore' | sudo tee -a /etc/audit/auditd.conf", "audit-or-logging-config-change"),
        ("echo 'ENABLED=no' | sudo tee /etc/ufw/ufw.conf", "firewall-config-change"),
        ("mkdir -p '/var/tmp/.. ' && cp build/app '/var/tmp/.. /u'", "dot-named-directory"),
        ("cp build/app /var/tmp/.cache-update", "hidden-file-in-temp-or-system"),
        ("bash ~/Downloads/invoice.pdf", "masquerade-file-type"),
        ("cp /bin/ps /tmp/kthreadd", "system-binary-copied-out"),
        ("dd if=/dev/zero bs=1 count=64 >> /opt/tool/bin/agent", "binary-padding"),
        ("sudo service cron stop", "core-daemon-stopped"),
        ("./xmrig --url stratum+tcp://198.51.100.3:3333", "resource-hijacking"),
        ("srm -f /var/tmp/out.bin", "staged-file-shredded"),
        ("echo 0 > /proc/sys/kernel/randomize_va_space", "kernel-protection-weakened"),
        ("sudo apt-get purge -y osquery", "security-tool-removed"),
        ("echo '' | sudo tee /etc/apparmor.d/usr.sbin.cupsd", "mandatory-access-control-config-change"),
        ("sudo touch /var/db/sudo/ts/alice", "sudo-timestamp-tampering"),
        ("printf 'x' | dd of=/proc/1234/mem bs=1 seek=4096 conv=notrunc", "process-memory-write"),
        ("gpg --batch --passphrase x -c ~/Documents/taxes.pdf", "encrypt-files"),
        ("ping -c 90 203.0.113.1 >/dev/null", "ping-as-delay"),
        ("cp /dev/shm/x /usr/bin/dbus-launchd", "program-planted-in-system-bin"),
        ("sudo ufw delete reject out 25", "firewall-block-removed"),
    ],
)
def test_rule_fires_on_its_behaviour(command: str, rule: str) -> None:
    assert rule in fired(command)


@pytest.mark.parametrize(
    "command",
    [
        "sudo systemctl restart sshd",
        "sudo systemctl stop postgresql",
        "cp /usr/bin/env build/env-copy",
        "touch /tmp/.X11-unix/X0",
        "echo hi > /tmp/build.log",
        "shred -u secrets/old.key",
        "stress-ng --cpu 2 --timeout 10s",
        "upx --best build/app",
        "cat /etc/audit/auditd.conf",
        "open docs/report.pdf",
        "python3 scripts/make_report.py --out report.pdf",
        "sudo ufw allow 22/tcp",
        "sudo iptables -D INPUT 3",
        "cdk deploy",
        "gpg -c docs/release-notes.md",
        "journalctl --vacuum-time=7d",
        "ping -c 3 example.com > /dev/null && echo up",
        "sudo ln -s /opt/node/bin/node /usr/bin/node",
        "mv /tmp/.build-cache/out.txt data/out.txt",
    ],
)
def test_ordinary_work_raises_none_of_these_rules(command: str) -> None:
    rules = {r.id for r in load_files([RULES.parent / "effect_rules.core.yaml", RULES]).rules}
    own = rules - {r.id for r in load_files([RULES.parent / "effect_rules.core.yaml"]).rules}
    assert not fired(command) & (own | {"encrypt-files", "defence-tampering"}), command
