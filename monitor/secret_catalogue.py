"""What a secret looks like: one catalogue for redaction and the secret-aware detectors.

Three sections, each entry named by its *kind*:

:data:`TOKENS`
    Strings that are secrets by their shape alone — AWS access keys, GitHub/Slack/Stripe
    tokens, Anthropic/OpenAI/Google API keys, JWTs, private key blocks, Slack webhook URLs.
:data:`SECRET_URLS`
    URLs that carry a credential: Discord and Teams webhooks, and any URL with a ``token=``,
    ``sig=``, ``key=`` … query parameter. For redaction only (it keeps the URL up to the secret);
    their hosts and names match in any case, so their ``hints`` are lower-case and are to be
    looked for in lower-cased text.
    Case-sensitive. ``agentwatch.respond.redaction`` replaces them with ``[REDACTED:<kind>]``;
    the ``secret_access`` detector flags a tool call whose arguments carry one.
:data:`CREDENTIAL_READS`
    Where credentials are stored and the commands that print them — SSH keys,
    ``~/.aws/credentials``, ``.env`` files, kube config, keychains, browser stores, cloud
    metadata endpoints, secrets managers, environment dumps. Lower-case regexes over a path
    or command line. ``secret_access`` alerts on them (with its own context checks: using a
    key with ``ssh -i`` is not reading it); ``taint_flow`` marks a session as holding a secret.
Secret-like names
    :func:`secret_name_kind` (a mapping key or label: ``db_password``, ``X-Api-Key``) for
    redaction; :data:`SECRET_VARIABLE` (an environment variable worth an alert when printed)
    for ``secret_access``; :func:`is_secret_env_name` (a variable that may hold a secret) for
    the effects layer.

Labelled values (``password=…``, ``Authorization: Bearer …``, ``user:pass@host``) are not
here: they are a secret because of their label, which redaction keeps; it finds them with
the names above.

A consumer that judges context (``secret_access``) uses :attr:`SecretPattern.pattern`; one that
applies the regexes alone (``taint_flow``'s ``secret_patterns``) uses :attr:`SecretPattern.alone`,
which differs where the pattern alone over-matches (``cfg.key`` in code is not a key file)
or where a softer signal is wanted (any ``kubectl get secret`` marks taint).

>>> [t.kind for t in TOKENS if t.search("key=AKIA" + "Q3EGRIZ5MBTXW4NB end")]
['aws_access_key']
>>> [r.kind for r in CREDENTIAL_READS if r.search_alone("cat ~/.aws/credentials")]
['cloud_credentials']
>>> secret_name_kind("DB_PASSWORD"), secret_name_kind("max_tokens"), is_secret_env_name("GITHUB_TOKEN")
('password', None, True)
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "CREDENTIAL_READS",
    "SECRET_NAME_PAIRS",
    "SECRET_NAME_WORDS",
    "SECRET_URLS",
    "SECRET_VARIABLE",
    "TOKENS",
    "SecretPattern",
    "credential_read",
    "is_secret_env_name",
    "secret_name_kind",
    "token",
]


@dataclass(frozen=True, slots=True)
class SecretPattern:
    """One kind of secret and how to recognise it.

    ``hints`` are literal substrings one of which occurs in every match of ``pattern`` and
    of ``alone`` (lower-case for :data:`CREDENTIAL_READS`, as written for :data:`TOKENS`):
    a consumer may skip the regex when none is present. ``tail`` extends a token's match to
    the whole secret (a private key block runs to its END line).
    """

    #: Unique name of the entry.
    name: str
    #: The kind of secret (redaction's marker, the detector's rule); several entries may share one.
    kind: str
    #: What it is (tokens: "an AWS access key") or what touching it does (reads: "reads cloud credentials").
    what: str
    pattern: str
    hints: tuple[str, ...]
    #: The regex for a consumer without context checks (default: ``pattern``).
    alone_pattern: str = ""
    tail: str = ""
    rx: re.Pattern[str] = field(init=False, repr=False, compare=False)
    alone_rx: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rx", re.compile(self.pattern))
        object.__setattr__(self, "alone_rx", re.compile(self.alone))

    @property
    def alone(self) -> str:
        return self.alone_pattern or self.pattern

    def search(self, text: str) -> re.Match[str] | None:
        return self.rx.search(text)

    def search_alone(self, text: str) -> re.Match[str] | None:
        return self.alone_rx.search(text)


# -- tokens --------------------------------------------------------------------------------------
# Identifiers glue secrets to other text (``agent_ghp_…``, ``xxRTLAKIA…``), so the distinctive
# prefixes match anywhere — no word boundary, which ``_`` and letters defeat — and a match takes
# every character of its alphabet that follows. Short generic prefixes (``sk-``, ``sk_``, ``eyJ``)
# need no letter or digit before them. A detector adds its own boundary and placeholder checks.
_AWS_PREFIXES: Final = ("AKIA", "ASIA", "AIDA", "AROA", "AGPA", "ANPA", "ANVA", "AIPA", "ABIA", "ACCA")
_SK_BODY: Final = r"[A-Za-z0-9_-]"

TOKENS: Final[tuple[SecretPattern, ...]] = (
    SecretPattern(
        "private_key",
        "private_key",
        "a private key block",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        ("PRIVATE KEY",),
        tail=r"[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    ),
    SecretPattern(
        "slack_webhook",
        "slack_webhook",
        "a Slack webhook URL",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]+",
        ("hooks.slack.com",),
    ),
    SecretPattern(
        "aws_access_key",
        "aws_access_key",
        "an AWS access key",
        r"(?:" + "|".join(_AWS_PREFIXES) + r")[A-Z0-9]{16,}",
        _AWS_PREFIXES,
    ),
    SecretPattern(
        "github_token",
        "github_token",
        "a GitHub token",
        r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    SecretPattern("slack_token", "slack_token", "a Slack token", r"xox[abposr]-[A-Za-z0-9-]{10,}", ("xox",)),
    SecretPattern("anthropic_key", "anthropic_key", "an Anthropic API key", r"sk-ant-[A-Za-z0-9_-]{20,}", ("sk-ant-",)),
    SecretPattern(
        "openai_key",
        "openai_key",
        "an OpenAI API key",
        # project/service keys; legacy keys (32+ alphanumerics); or any ``sk-`` key of 20+ characters
        # mixing digits, upper and lower case (a kebab-case name is not a key)
        r"(?<![A-Za-z0-9])sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{32,}(?![A-Za-z0-9-])"
        rf"|(?={_SK_BODY}*[0-9])(?={_SK_BODY}*[A-Z])(?={_SK_BODY}*[a-z]){_SK_BODY}{{20,}})",
        ("sk-",),
    ),
    SecretPattern(
        "stripe_key",
        "stripe_key",
        "a Stripe key",
        r"(?<![A-Za-z0-9])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
        ("sk_", "rk_"),
    ),
    SecretPattern("google_api_key", "google_api_key", "a Google API key", r"AIza[0-9A-Za-z_-]{35,}", ("AIza",)),
    SecretPattern(
        "jwt",
        "jwt",
        "a JSON Web Token",
        r"(?<![A-Za-z0-9])eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
        ("eyJ",),
    ),
)


# -- secret URLs ---------------------------------------------------------------------------------
#: Webhook URLs whose path is the credential: whoever holds one can post as the integration.
#: Redaction keeps the service and the webhook's id (``pre``) and replaces the secret part; the
#: ``secret_access`` detector does not alert on them (posting to a webhook is an egress, which
#: ``taint_flow`` judges by where the data goes). The Slack webhook is in :data:`TOKENS`.
SECRET_URLS: Final[tuple[SecretPattern, ...]] = (
    SecretPattern(
        "discord_webhook",
        "discord_webhook",
        "a Discord webhook URL (its token posts as the webhook)",
        r"https?://(?:(?:canary|ptb)\.)?(?i:discord(?:app)?\.com)/api/(?:v\d+/)?webhooks/\d{1,24}/",
        ("discord",),
        tail=r"[A-Za-z0-9_.-]{8,}",
    ),
    SecretPattern(
        "teams_webhook",
        "teams_webhook",
        "a Microsoft Teams / Office 365 incoming-webhook URL",
        r"https?://(?:[A-Za-z0-9-]{1,63}\.)?"
        r"(?i:webhook\.office\.com/webhookb2/|outlook\.office(?:365)?\.com/webhook/)",
        ("webhook.office", "outlook.office"),
        tail=r"[^\s\"'<>]{8,}",
    ),
    SecretPattern(
        "url_secret",
        "url_secret",
        "a credential in a URL's query (?token=, ?sig=, ?key=, X-Amz-Signature=…: signed and keyed links)",
        r"[?&](?i:token|access_token|auth|auth_token|sig|signature|key|api_key|api-key|apikey|secret"
        r"|client_secret|password|code|x-amz-signature|x-amz-security-token|x-goog-signature)=",
        ("token=", "auth=", "sig=", "signature=", "key=", "secret=", "password=", "code="),
        tail=r"[^\s&#\"'<>]{1,2048}",
    ),
)


# -- credential stores and the commands that read them ----------------------------------------
CREDENTIAL_READS: Final[tuple[SecretPattern, ...]] = (
    SecretPattern(
        "ssh_key_file",
        "ssh_private_key",
        "reads an SSH private key",
        r"\.ssh/id_[a-z0-9_-]+(?![a-z0-9_-]|\.pub)|id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?(?![\w.-])",
        ("id_",),
    ),
    SecretPattern(
        "cloud_credential_files",
        "cloud_credentials",
        "reads cloud credentials",
        r"\.(?:aws/credentials|config/gcloud(?![\w.-])|azure/(?:accesstokens\.json|msal_token_cache))",
        ("cred", "gcloud", ".azure/"),
    ),
    SecretPattern(
        "gcloud_credential_files",
        "cloud_credentials",
        "reads cloud credentials",
        r"application_default_credentials|gcloud/credentials",
        ("cred",),
    ),
    SecretPattern(
        "gcloud_access_token",
        "cloud_credentials",
        "prints a cloud access token",
        r"gcloud\s+auth\s+(?:application-default\s+)?print-access-token",
        ("gcloud",),
    ),
    SecretPattern(
        "metadata_address",
        "cloud_metadata",
        "queries a cloud metadata endpoint",
        r"1(?:69\.254\.169\.254|69\.254\.170\.2|00\.100\.100\.200)",
        ("169.254.", "100.100.100.200"),
    ),
    SecretPattern(
        "metadata_gce",
        "cloud_metadata",
        "queries a cloud metadata endpoint",
        r"metadata\.google\.internal",
        ("metadata.google.internal",),
    ),
    SecretPattern(
        "metadata_ec2_ipv6", "cloud_metadata", "queries a cloud metadata endpoint", r"fd00:ec2::254", ("fd00:ec2::254",)
    ),
    SecretPattern(
        "shadow",
        "shadow_file",
        "reads the password hash file",
        r"/etc/(?:g?shadow|master\.passwd)(?!\w)",  # backups too: shadow-, shadow.bak
        ("/etc/",),
    ),
    SecretPattern(
        "keychain_command",
        "keychain",
        "reads the OS keychain",
        r"security\s+(?:find-[a-z]+-password|dump-keychain)",
        ("security",),
    ),
    SecretPattern("keychain_file", "keychain", "reads the OS keychain", r"\.keychain(?:-db)?(?![\w.-])", ("keychain",)),
    SecretPattern("keychains_dir", "keychain", "reads the OS keychain", r"/keychains/", ("keychain",)),
    SecretPattern(
        "browser_store",
        "browser_store",
        "reads a browser cookie or password store",
        r"/(?:cookies(?:\.sqlite)?|login(?:\\)? data|web(?:\\)? data|key[34]\.db|logins\.json)(?![\w.-])",
        ("cookies", "login", " data", "key", "logins"),
    ),
    SecretPattern(
        "kube_config_file", "kube_config", "reads the Kubernetes credentials file", r"\.kube/config(?!\w)", (".kube/",)
    ),
    SecretPattern(
        "kube_config_raw",
        "kube_config",
        "dumps the Kubernetes credentials",
        r"kubectl\s+config\s+view\b[^|;&\n]*--raw",
        ("--raw",),
    ),
    SecretPattern(
        "credential_files",
        "credential_file",
        "reads a stored credential file",
        r"\.(?:netrc|git-credentials|docker/config\.json|pgpass|pypirc|npmrc)(?![\w-])",
        ("netrc", "cred", "docker/config", "pgpass", "pypirc", "npmrc"),
    ),
    SecretPattern(
        "git_credential_fill",
        "credential_file",
        "asks git for stored credentials",
        r"git\s+credential\s+fill",
        ("cred",),
    ),
    SecretPattern(
        "private_key_file",
        "private_key_file",
        "reads a private key file",
        r"\.(?:pem|key|p12|pfx|ppk|jks|keystore)(?![\w.-])",
        (".p", "key", ".jks"),
        # alone, ``.key`` only with a name that says private (``cfg.key`` in code is no file)
        alone_pattern=r"\.(?:pem|p12|pfx|ppk|jks|keystore)(?!\w)|(?:private|secret|signing|server|tls)[\w.-]*\.key(?!\w)",
    ),
    SecretPattern(
        "k8s_secret_values",
        "k8s_secret",
        "reads Kubernetes secret values",
        r"kubectl\s+(?:-\S+\s+)*get\s+secrets?\b[^;&|\n]*(?:-o\s*=?\s*(?:yaml|json|jsonpath|go-template)"
        r"|--output|\|\s*base64\s+(?:-d|--decode))",
        ("secret",),
        # alone, getting a named secret at all is enough to mark taint
        alone_pattern=r"kubectl\s+(?:-\S+\s+)*get\s+secrets?\s+\S",
    ),
    SecretPattern(
        "gh_cli_token",
        "credential_file",
        "reads the GitHub CLI token",
        r"\.config/gh/hosts\.yml|gh\s+auth\s+token\b",
        ("gh/hosts", "auth token"),
    ),
    SecretPattern(
        "process_environ",
        "process_environ",
        "reads a process environment",
        r"/proc/(?:self|\d+|\*)/environ",
        ("environ",),
    ),
    SecretPattern(
        "secrets_manager_read",
        "secrets_manager",
        "reads secret values from a secrets manager",
        r"(?:aws\s+)?secretsmanager\s+get-secret-value|(?:aws\s+)?ssm\s+get-parameters?[\w-]*\s.*--with-decryption"
        r"|gcloud\s+secrets\s+versions\s+access|vault\s+(?:kv\s+)?(?:read|get)(?!\w)"
        r"|op(?<!\wop)\s+(?:read|item\s+get)(?!\w)|az\s+keyvault\s+secret\s+show|doppler\s+secrets\b",
        ("secret", "ssm", "vault", "op "),
    ),
    SecretPattern(
        "env_file",
        "env_file",
        "reads a .env file",
        r"\.env(?:\.[a-z0-9_-]+)*(?![a-z0-9_.-])",
        (".env",),
        # alone: not ``app.env`` or ``process.env``, not the committed templates
        alone_pattern=r"\.env(?<![\w-]\.env)(?:\.(?!example|sample|template|dist|defaults)[\w.-]+)?(?![\w.-])",
    ),
    SecretPattern(
        "env_dump_shell",
        "env_dump",
        "dumps the environment",
        r"(?:env|set)\s*(?:[|>]|$)",
        ("env", "set"),
        alone_pattern=r"printenv(?!\w)|env(?<!\wenv)\s*(?:\||>|$)|set(?<!\wset)\s*(?:\||$)",
    ),
    SecretPattern(
        "env_dump_code",
        "env_dump",
        "dumps the environment from code",
        r"(?:dict\(|print\(|json\.dumps\(|str\(|repr\()\s*(?:dict\()?os\.environ\b(?!\.get|\[)"
        r"|os\.environ\.(?:items|copy|keys|values)\(\)|(?:json\.stringify|console\.log|console\.dir)\(\s*process\.env\s*\)",
        ("environ", "process.env"),
        # alone, any use of the environment object marks taint
        alone_pattern=r"os\.environ|process\.env(?!\w)",
    ),
)


def token(name: str) -> SecretPattern:
    """The :data:`TOKENS` (or :data:`SECRET_URLS`) entry called ``name``."""
    return _BY_NAME[name]


def credential_read(name: str) -> SecretPattern:
    """The :data:`CREDENTIAL_READS` entry called ``name``."""
    return _BY_NAME[name]


_BY_NAME: Final = {p.name: p for p in (*TOKENS, *SECRET_URLS, *CREDENTIAL_READS)}
assert len(_BY_NAME) == len(TOKENS) + len(SECRET_URLS) + len(CREDENTIAL_READS), "catalogue names must be unique"

# -- secret-like names -------------------------------------------------------------------------
#: A word of a key or label that names a secret, and the kind of that secret.
SECRET_NAME_WORDS: Final = (
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
#: Two consecutive words that name a secret (``api_key``, ``PrivateKey``, ``access-key``).
SECRET_NAME_PAIRS: Final = (
    ("api", "key", "api_key"),
    ("private", "key", "private_key"),
    ("access", "key", "api_key"),
)
_NAME_WORDS: Final = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


@functools.lru_cache(maxsize=4096)
def secret_name_kind(name: str) -> str | None:
    """The kind of secret a mapping key or label names, or ``None`` for an ordinary name.

    Matches whole words of the name (``db_password``, ``X-Api-Key``, ``accessToken``), so
    ``tokens_in`` or ``max_tokens`` are not secrets.

    >>> [secret_name_kind(k) for k in ("DB_PASSWORD", "X-Api-Key", "accessToken", "tokens_in", "Set-Cookie")]
    ['password', 'api_key', 'token', None, 'cookie']
    """
    words = [w.lower() for w in _NAME_WORDS.findall(name)]
    joined = "".join(words)
    for needle, kind in SECRET_NAME_WORDS:
        if needle in words or (len(needle) > 6 and needle in joined):
            return kind
    for a, b, kind in SECRET_NAME_PAIRS:
        if any(words[i] == a and words[i + 1] == b for i in range(len(words) - 1)):
            return kind
    return None


#: The end of a lower-case environment variable name whose value is a secret worth an alert when
#: printed (``printenv GITHUB_TOKEN``): the words above, as substrings — but not ``pwd`` (``$PWD``
#: is the working directory) nor ``credential`` (``GOOGLE_APPLICATION_CREDENTIALS`` holds a path).
SECRET_VARIABLE: Final = r"[a-z0-9_]*(?:secret|token|api_?key|passw|passphrase|private_?key|access_?key|cookie)"

_SECRET_ENV_NAME: Final = re.compile(
    r"(?i)(secret|token|passw(or)?d|passwd|pwd|api_?key|access_?key|private_?key|credential|auth|session|cookie"
    r"|(^|_)key$|^aws_|^gh_|^github_|^openai|^anthropic|^azure_|^gcp_|^google_application|^npm_token|^slack_|^stripe_"
    r"|^database_url$|^db_url$|^dsn$)"
)


def is_secret_env_name(name: str) -> bool:
    """Whether an environment variable *may* hold a secret (broad: vendor prefixes, ``auth``, DSNs).

    The effects layer counts reading such a variable as touching a credential store.

    >>> is_secret_env_name("AWS_SECRET_ACCESS_KEY"), is_secret_env_name("GITHUB_TOKEN"), is_secret_env_name("PATH")
    (True, True, False)
    """
    return bool(_SECRET_ENV_NAME.search(name))
