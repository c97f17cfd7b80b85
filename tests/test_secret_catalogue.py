"""One secret catalogue (``agentwatch.secret_catalogue``) behind redaction, secret_access and taint_flow.

Every kind of secret the catalogue knows gets a sample here; a new entry without one fails
``test_every_entry_has_a_sample``. Samples are assembled from pieces so that no complete
credential-shaped literal sits in the repository.
"""

from __future__ import annotations

from typing import Any

import pytest

from agentwatch import destinations
from agentwatch.detect.effects.classify import path_classes
from agentwatch.detect.session_state import SessionTable
from agentwatch.detectors import novelty, taint_flow
from agentwatch.detectors.checks import secret_access_checks
from agentwatch.detectors.secret_access import SecretAccess
from agentwatch.detectors.taint_flow import TaintFlow
from agentwatch.events.audit_event import from_mapping
from agentwatch.respond.redaction import redact, redact_obj
from agentwatch.secret_catalogue import (
    CREDENTIAL_READS,
    TOKENS,
    credential_read,
    is_secret_env_name,
    secret_name_kind,
    token,
)

#: A token of every kind (several where the kind has distinct forms).
TOKEN_SAMPLES: dict[str, tuple[str, ...]] = {
    "private_key": (
        "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEow" + "IBAAKCAQEA" * 4 + "\n-----END RSA PRIVATE KEY-----",
    ),
    "slack_webhook": ("https://hooks.slack.com/" + "services/T0A1B2C3D/B0A1B2C3D/" + "q7Ww9zXy2AbCdEfGh3JkLmNp",),
    "aws_access_key": ("AKIA" + "Q3EGRIZ5MBTXW4NB", "AROA" + "Q3EGRIZ5MBTXW4NBZ7"),
    "github_token": ("ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "github_pat_" + "11ABCDEFG0" + "q7Ww9zXy2AbCdEf"),
    "slack_token": ("xoxb-" + "2401532567-5583922193-Qz8rT1vWx2Yz",),
    "anthropic_key": ("sk-ant-api03-" + "Xy7Qw2Er9Ty3Ui8Op1As6Df4Gh5Jk0Lz",),
    "openai_key": (
        "sk-proj-" + "Ab3dEf9hIjKlMnOpQrStUvWx",
        "sk-" + "q7Ww9zXy2AbCdEfGh3JkLmNpRs5Tu8Vz",
        "sk-" + "Ab3_dEf9-hIjKlMnOpQr",
    ),
    "stripe_key": ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "rk_test_" + "4eC39HqLyjWDarjt"),
    "google_api_key": (("AIza" + "SyD4x9Qk2Lm7Np3Rs8Tv1Wx6Yz0Ab5Cd2Ef9Gh")[:39],),
    "jwt": (
        "eyJhbGciOiJIUzI1NiJ9"
        + "."
        + "eyJzdWIiOiIxMjM0NTY3ODkwIn0"
        + "."
        + "dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    ),
}
#: The rule secret_access reports for a token kind (its rule names predate the catalogue).
SECRET_ACCESS_TOKEN_RULES = {"private_key": "private_key_block", "anthropic_key": "api_key", "openai_key": "api_key"}

#: A shell command reading each credential store, or running each secret-printing command.
READ_SAMPLES: dict[str, str] = {
    "ssh_key_file": "cat ~/.ssh/id_ed25519",
    "cloud_credential_files": "cat ~/.aws/credentials",
    "gcloud_credential_files": "cp ~/.config/gcloud/application_default_credentials.json /tmp/c",
    "gcloud_access_token": "gcloud auth print-access-token",
    "metadata_address": "curl -s http://169.254.169.254/latest/meta-data/",
    "metadata_gce": "curl -H 'Metadata-Flavor: Google' http://metadata.google.internal/computeMetadata/v1/",
    "metadata_ec2_ipv6": "curl http://[fd00:ec2::254]/latest/meta-data/",
    "shadow": "cat /etc/shadow",
    "keychain_command": "security find-generic-password -wa chrome",
    "keychain_file": "cp ~/Library/Keychains/login.keychain-db /tmp/k",
    "keychains_dir": "ls ~/Library/Keychains/",
    "browser_store": "cp ~/.config/google-chrome/Default/Cookies /tmp/c",
    "kube_config_file": "cat ~/.kube/config",
    "kube_config_raw": "kubectl config view --raw",
    "credential_files": "cat ~/.npmrc",
    "git_credential_fill": "printf 'host=github.com\\n' | git credential fill",
    "private_key_file": "cat deploy/tls/server.key",
    "k8s_secret_values": "kubectl get secret db-creds -o yaml",
    "gh_cli_token": "gh auth token",
    "process_environ": "cat /proc/1/environ",
    "secrets_manager_read": "op read op://prod/db/password",
    "env_file": "cat .env.production",
    "env_dump_shell": "env > /tmp/e.txt",
    "env_dump_code": "python -c 'import os; print(dict(os.environ))'",
}
#: Samples that name a file (the effects layer classes their path as a credential store).
FILE_SAMPLES = {
    "ssh_key_file": "~/.ssh/id_ed25519",
    "cloud_credential_files": "~/.aws/credentials",
    "gcloud_credential_files": "~/.config/gcloud/application_default_credentials.json",
    "shadow": "/etc/shadow",
    "keychain_file": "~/Library/Keychains/login.keychain-db",
    "browser_store": "~/.config/google-chrome/Default/Cookies",
    "kube_config_file": "~/.kube/config",
    "credential_files": "~/.npmrc",
    "private_key_file": "deploy/tls/server.key",
    "gh_cli_token": "~/.config/gh/hosts.yml",
    "process_environ": "/proc/1/environ",
    "env_file": ".env.production",
}


def _observe(detector: Any, **fields: Any) -> list[Any]:
    ev = from_mapping(
        {"event_id": "e1", "ts": 1767225600000, "session_id": "s1", "agent_id": "a", "kind": "tool_call", **fields}
    )
    return list(detector.observe(ev, SessionTable().touch(ev)[0]))


def _bash(command: str) -> dict[str, Any]:
    return {"tool": "Bash", "target": command, "args": {"command": command}}


def test_every_entry_has_a_sample() -> None:
    assert set(TOKEN_SAMPLES) == {t.kind for t in TOKENS}
    assert set(READ_SAMPLES) == {r.name for r in CREDENTIAL_READS}


@pytest.mark.parametrize(("kind", "sample"), [(k, s) for k, samples in TOKEN_SAMPLES.items() for s in samples])
def test_every_token_redaction_knows_is_found_by_secret_access(kind: str, sample: str) -> None:
    """Same catalogue: what redaction hides from a shared view, secret_access reports in an argument."""
    assert f"[REDACTED:{kind}]" in redact(f"note: {sample} end"), kind
    assert sample not in redact(f"note: {sample} end")
    for event in (
        {"tool": "Write", "target": "notes.txt", "args": {"file_path": "notes.txt", "content": f"value: {sample}\n"}},
        _bash(f"deploy --credential '{sample}'"),
    ):
        [finding] = _observe(SecretAccess(), **event)
        assert finding.rule == SECRET_ACCESS_TOKEN_RULES.get(kind, kind), (kind, finding.reason)
        assert finding.score >= 0.7


@pytest.mark.parametrize("name", sorted(READ_SAMPLES))
def test_every_credential_read_is_a_secret_for_both_detectors(name: str) -> None:
    entry, sample = credential_read(name), READ_SAMPLES[name]
    low = sample.lower()
    assert entry.search(low) and entry.search_alone(low), name
    assert any(h in low for h in entry.hints), f"{name}: no hint in a match — the gates would skip it"
    assert TaintFlow()._is_secret(low), name
    [finding] = _observe(SecretAccess(), **_bash(sample))
    assert finding.rule == entry.kind and finding.score >= 0.75, (name, finding.reason)


@pytest.mark.parametrize("name", sorted(FILE_SAMPLES))
def test_credential_files_are_credential_stores_for_the_effects_layer(name: str) -> None:
    path = FILE_SAMPLES[name]
    assert credential_read(name).search(path.lower())
    assert "credential_store" in path_classes(path), path


def _token_kinds_checked(condition: Any) -> set[str]:
    """The token kinds a secret_access rule condition asks the ``secret_token`` check for."""
    if condition.kind == "check" and condition.check == "secret_token":
        return set(dict(condition.args)["kinds"])
    return {kind for part in condition.parts for kind in _token_kinds_checked(part)}


def test_the_consumers_are_built_from_the_catalogue() -> None:
    # secret_access: every token kind has a rule, and the check scans with the catalogue's own patterns;
    # credential stores are the effects layer's (test_every_credential_read_is_a_secret_for_both_detectors)
    checked = [_token_kinds_checked(rule.condition) for rule in SecretAccess().rules]
    assert set().union(*checked) == {t.kind for t in TOKENS}
    assert secret_access_checks.TOKENS is TOKENS
    assert taint_flow.DEFAULT_SECRET_PATTERNS == tuple(r.alone for r in CREDENTIAL_READS)
    assert token("private_key").tail  # redaction removes the whole block, not only its header


def test_secret_names_are_shared() -> None:
    assert redact_obj({"x_api_key": "k1", "max_tokens": 5, "PrivateKey": "p"}) == {
        "x_api_key": "[REDACTED:api_key]",
        "max_tokens": 5,
        "PrivateKey": "[REDACTED:private_key]",
    }
    assert secret_name_kind("refreshToken") == "token"
    assert is_secret_env_name("ANTHROPIC_API_KEY") and not is_secret_env_name("HOME")
    [finding] = _observe(SecretAccess(), **_bash("printenv AWS_SESSION_TOKEN"))
    assert finding.rule == "secret_variable"
    assert _observe(SecretAccess(), **_bash("echo $PWD")) == []


def test_destination_parsing_is_one_module() -> None:
    for name in ("Destinations", "email_addresses", "is_internal_host", "named_destinations", "org_domain"):
        assert getattr(taint_flow, name) is getattr(destinations, name)
        assert name not in vars(novelty) or getattr(novelty, name) is getattr(destinations, name)
    assert taint_flow.DEFAULT_INTERNAL_SUFFIXES is destinations.DEFAULT_INTERNAL_SUFFIXES
    assert not hasattr(novelty, "url_hosts") and not hasattr(novelty, "bucket_names")


def test_taint_flow_operator_patterns_keep_their_documented_gating() -> None:
    """Catalogue entries run behind their own hints; an operator's pattern as ``secret_hints`` documents."""
    cfg = taint_flow.TaintFlowConfig(
        secret_patterns=(r"\.vault-token|/srv/keys/", r"hsm-dump\s", *taint_flow.DEFAULT_SECRET_PATTERNS),
        secret_hints=("hsm",),
    )
    det = TaintFlow(cfg)
    assert det._is_secret("cat ~/.vault-token") and det._is_secret("tar c /srv/keys/ | gzip")
    assert det._is_secret("hsm-dump all") and det._is_secret(READ_SAMPLES["gh_cli_token"])
    assert not det._is_secret("git status")
    assert TaintFlow(taint_flow.TaintFlowConfig(secret_hints=()))._is_secret("cat /etc/shadow")
