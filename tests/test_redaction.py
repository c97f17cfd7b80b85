"""Secret redaction: what is redacted (and as which kind), and what is left alone."""

from __future__ import annotations

import pytest

from agentwatch.respond.redaction import might_contain_secret, redact, redact_obj

# Fake secrets, assembled from pieces so secret scanners do not flag this file.
AWS_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
GH = "gh" + "p_" + "a1B2c3D4e5F6g7H8i9J0" * 2
GH_PAT = "github_pat_" + "11ABCDEFG0" * 3 + "_xyz" * 5
SLACK = "xox" + "b-123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_HOOK = "https://hooks.slack.com/services/" + "T00000000/B00000000/" + "XXXXXXXXXXXXXXXXXXXXXXXX"
OPENAI = "sk-" + "proj-" + "Ab3dEf6hIj9lMn2pQr5tUv8xYz1" * 2
OPENAI_LEGACY = "sk-" + "T3BlbkFJ" + "a1b2c3d4e5" * 4
ANTHROPIC = "sk-" + "ant-api03-" + "Xy9_Zw8-" * 6
GOOGLE = "AI" + "za" + "SyA-1234567890abcdefghijklmnopqrstu"
STRIPE = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_RK = "rk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
JWT = "eyJ" + "hbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0." + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM = (
    "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n4lgOEePzNm0tRgeLezV6ffAt0gun"
    "\n-----END RSA " + "PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        (f"aws_access_key_id = {AWS_ID}", AWS_ID, "aws_access_key"),
        ("ASIA" + "Y34FZKBOKMUTVV7A in a log", "ASIAY34FZKBOKMUTVV7A", "aws_access_key"),
        (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, "aws_secret_key"),
        (f'{{"AWS_SECRET_ACCESS_KEY": "{AWS_SECRET}"}}', AWS_SECRET, "aws_secret_key"),
        (f"git clone https://{GH}@github.com/o/r", GH, "github_token"),
        (f"GH={GH_PAT}", GH_PAT, "github_token"),
        (f"slack {SLACK} end", SLACK, "slack_token"),
        (f"curl -X POST {SLACK_HOOK} -d x", SLACK_HOOK, "slack_webhook"),
        (f"OPENAI_API_KEY={OPENAI}", OPENAI, "openai_key"),
        (f"key {OPENAI_LEGACY}", OPENAI_LEGACY, "openai_key"),
        (f"x-api-key: {ANTHROPIC}", ANTHROPIC, "anthropic_key"),
        (f"maps?key={GOOGLE}&q=1", GOOGLE, "google_api_key"),
        (f"stripe {STRIPE}", STRIPE, "stripe_key"),
        (f"stripe {STRIPE_RK}", STRIPE_RK, "stripe_key"),
        (f"cookie jwt={JWT}", JWT, "jwt"),
        (f"key:\n{PEM}\nafter", "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo", "private_key"),
        ("postgres://admin:s3cr3t-Pa55@db.internal:5432/app", "s3cr3t-Pa55", "password"),
        ("password=hunter2", "hunter2", "password"),
        ("passwd: correct-horse", "correct-horse", "password"),
        ("DB_PASSWORD='two words'", "two words", "password"),
        ('{"secret": "shh-123"}', "shh-123", "secret"),
        ("https://x.example/cb?token=abc123&next=/", "abc123", "token"),
        ("api_key=k_9f8e7d", "k_9f8e7d", "api_key"),
        ("curl -H 'Authorization: Bearer abc.def-ghi'", "abc.def-ghi", "bearer_token"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "bearer_token"),
        ("header Bearer a1b2c3d4e5f6g7h8i9j0", "a1b2c3d4e5f6g7h8i9j0", "bearer_token"),
    ],
)
def test_secret_is_redacted_as_its_kind(text: str, secret: str, kind: str) -> None:
    out = redact(text)
    assert secret not in out
    assert f"[REDACTED:{kind}]" in out
    assert redact(out) == out  # idempotent


def test_labels_are_kept() -> None:
    assert redact("postgres://admin:pw1@db/app") == "postgres://admin:[REDACTED:password]@db/app"
    assert redact("password=hunter2 rest") == "password=[REDACTED:password] rest"
    assert redact("Authorization: Bearer tok123") == "Authorization: Bearer [REDACTED:bearer_token]"


def test_private_key_block_is_removed_whole_even_if_truncated() -> None:
    assert redact(f"a {PEM} b") == "a [REDACTED:private_key] b"
    cut = PEM.split("-----END")[0]
    assert "MIIE" not in redact(cut)


def test_specific_kind_survives_the_generic_assignment_rule() -> None:
    assert redact(f"token={GH}") == "token=[REDACTED:github_token]"
    assert redact(f'"token": "{JWT}"') == '"token": "[REDACTED:jwt]"'


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f2c1a9e8b7d6c5f4e3a2b1c0d9e8f7a6b5c4d3e merged",
        "request 123e4567-e89b-12d3-a456-426614174000 done",
        "reset the password flow, then change password",
        "the password is stored in the vault",
        "tokens_in=512 max_tokens=1024",
        "pip install scikit-learn; import sk-learn-compatible-estimators",
        "task-1234567890abcdef1234567890abcdef done",
        "https://example.com/path?q=1 and http://localhost:8080/x",
        "git@github.com:org/repo.git",
        "the bearer of bad news",
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "AKIA is a prefix",
        "ls -la /srv/app && cat README.md",
        "",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redact(text) == text


def test_fast_path_precheck() -> None:
    assert not might_contain_secret("ls -la /tmp && echo hello")
    assert might_contain_secret("PASSWORD=x")
    # the precheck never hides a secret a rule would find
    for text in (AWS_ID, GH, SLACK, OPENAI, GOOGLE, STRIPE, JWT, PEM, "pwd=x", "https://a:b@c"):
        assert might_contain_secret(text), text


def test_redact_obj_by_key_and_by_value() -> None:
    obj = {
        "command": f"export KEY={AWS_ID}",
        "db_password": "hunter2",
        "headers": {"Authorization": "Bearer xyz", "Cookie": "sid=1", "Accept": "*/*"},
        "apiKey": "plain",
        "pin_password": 1234,
        "max_tokens": 100,
        "access_token": None,
        "list": [JWT, ("tuple", SLACK)],
        "secret_enabled": True,
    }
    out = redact_obj(obj)
    assert out["command"] == "export KEY=[REDACTED:aws_access_key]"
    assert out["db_password"] == "[REDACTED:password]"
    assert out["headers"] == {
        "Authorization": "[REDACTED:authorization]",
        "Cookie": "[REDACTED:cookie]",
        "Accept": "*/*",
    }
    assert out["apiKey"] == "[REDACTED:api_key]"
    assert out["pin_password"] == "[REDACTED:password]"
    assert out["max_tokens"] == 100
    assert out["access_token"] is None
    assert out["list"] == ["[REDACTED:jwt]", ("tuple", "[REDACTED:slack_token]")]
    assert out["secret_enabled"] is True
    assert obj["db_password"] == "hunter2"  # input untouched


def test_redact_obj_recurses_under_secret_keys() -> None:
    assert redact_obj({"secrets": {"name": "x"}}) == {"secrets": {"name": "x"}}
    assert redact_obj({"credentials": {"password": "p"}}) == {"credentials": {"password": "[REDACTED:password]"}}
