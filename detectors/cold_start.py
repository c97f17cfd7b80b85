"""Cold start: consequence-tier rules for an agent that has no baseline yet.

Until :mod:`agentwatch.detectors.novelty` has a baseline for an agent (``min_sessions_for_baseline``
closed sessions and ``min_events_for_baseline`` events) its learned scores are silent: everything is
new to a new agent. So that a new agent is not a blind spot, each tool call of an agent *without* a
baseline is scored by a table of data, not code — ``[detectors.novelty.config.cold_start_scores]``,
``{tier: {counterparty class: score}}`` — and only then: once the agent has a baseline the table is
silent, and the learned novelty scores judge the same actions (no double count).

The tier is the call's consequence tier (:mod:`agentwatch.detect.consequence`); the *counterparty
class* is the most exposed of the parties the call names:

``consumer``
    an address at a consumer mail provider (``gmail.com``, ``outlook.fr``…:
    :func:`agentwatch.destinations.is_consumer_mail_domain`), whoever the principal is;
``external``
    any other address, host or bucket outside the organisation; an account, IBAN, payee, wallet or
    phone number (nothing tells an account number is the organisation's own);
``internal``
    the organisation's own: a configured or the principal's mail domain, an internal host suffix or
    private address, a bucket with the organisation's prefix; a bare user name (``member: "bob"``);
``none``
    no counterparty named.

Parties are read from the recipients the call addresses, from counterparty arguments (``iban``,
``payee``, ``grantee``, ``guest_email``…), for a financial call from any argument value shaped like
an IBAN, and for a message or a publication from the hosts and buckets it reaches (the host a
``curl … | sudo bash`` fetches from is not granted anything; a payment API's host is not the payee).
A party the session's context names (the user's prompt, the requester of the ticket being worked on)
is the task, not a stranger: its score is multiplied by ``prompt_context_factor`` (0.5), as novelty
does. A score below ``report_min_score`` is not reported.

Defaults (:data:`DEFAULT_COLD_START_SCORES`), conservative — a benign cold-start alert is the price
of seeing a new agent at all, so only what is costly to miss reaches medium (0.5):

========================  ========  ========  ========  ======
tier                      consumer  external  internal  none
========================  ========  ========  ========  ======
``access_change``         0.65      0.55      —         —
``financial``             0.6       0.55      —         —
``publication``           0.55      0.55      —         0.5
``external_comm``         0.45      —         —         —
========================  ========  ========  ========  ======

Everything else (read-only, internal writes, deletions, device actions, unclassified tools, and any
internal counterparty) scores nothing here: deletions and privileged commands are the rule packs',
which judge every agent from its first event; a consequential action aimed at a party only
untrusted content named is ``provenance``'s (0.8), with or without a baseline. A first message to a
consumer address stays *low* (0.45, below the default ``min_score``: recorded, not an alert): a
support agent's first replies go to customers at consumer domains all day, and the dangerous case —
an address an injected page or mail supplied — is already provenance's; a grant of access to, or a
payment towards, a party outside the organisation is not routine for a brand-new agent and alerts.

A finding's rule id is ``cold-start-<tier>`` (``cold-start-access-change``), its reason starts with
"cold start: no baseline for this agent yet", and ``agentwatch_cold_start_findings_total{tier}``
counts them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, Final

from agentwatch.destinations import email_addresses, is_consumer_mail_domain, is_internal_host
from agentwatch.detect.consequence import TIERS
from agentwatch.detect.detector_spec import Finding, quote

__all__ = ["CLASSES", "DEFAULT_COLD_START_SCORES", "ColdStartRules", "merged_scores"]

#: Counterparty classes, least exposed first.
CLASSES: Final = ("none", "internal", "external", "consumer")
#: Default score of a call by an agent without a baseline, by consequence tier and counterparty class.
DEFAULT_COLD_START_SCORES: Final[Mapping[str, Mapping[str, float]]] = {
    "access_change": {"consumer": 0.65, "external": 0.55},
    "financial": {"consumer": 0.6, "external": 0.55},
    "publication": {"consumer": 0.55, "external": 0.55, "none": 0.5},
    "external_comm": {"consumer": 0.45},
}
#: Tiers where the host or bucket a call reaches is its counterparty (where it sends or publishes). For an
#: access change or a payment it is not (``curl … | sudo bash`` reaches a host but grants it nothing; a
#: payment API's host is not the payee): there, the parties are recipients and counterparty arguments.
HOST_PARTY_TIERS: Final = frozenset({"external_comm", "publication"})
#: Counterparty arguments whose bare value (not an address) is an outside party: money and phones.
_OUTSIDE_KEYS: Final = frozenset(
    "iban account_number to_account recipient_account destination_account payee beneficiary phone phone_number "
    "wallet wallet_address".split()
)
_IBAN: Final = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
#: Argument values looked at for an IBAN (financial calls only), and their length cap.
MAX_IBAN_ARGS: Final = 16
MAX_PARTY_CHARS: Final = 128


def merged_scores(given: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The defaults with the operator's entries laid over them, per tier and class (0 silences one).

    Raises ``ValueError`` (one line) on an unknown tier or class, or a score outside [0, 1].

    >>> merged_scores({"external_comm": {"external": 0.3}})["external_comm"]
    {'consumer': 0.45, 'external': 0.3}
    >>> merged_scores({"finance": {"external": 0.5}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: cold_start_scores: unknown tier 'finance'; tiers are read_only, internal_write, ...
    """
    out = {tier: dict(row) for tier, row in DEFAULT_COLD_START_SCORES.items()}
    for tier, row in given.items():
        if tier not in TIERS:
            raise ValueError(f"cold_start_scores: unknown tier {str(tier)[:40]!r}; tiers are {', '.join(TIERS)}")
        if not isinstance(row, Mapping):
            raise ValueError(f"cold_start_scores.{tier}: expected {{class: score}} with classes {', '.join(CLASSES)}")
        for cls, score in row.items():
            if cls not in CLASSES:
                raise ValueError(
                    f"cold_start_scores.{tier}: unknown counterparty class {str(cls)[:40]!r}; "
                    f"classes are {', '.join(CLASSES)}"
                )
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
                raise ValueError(f"cold_start_scores.{tier}.{cls}: score must be a number in [0, 1], got {score!r}")
            out.setdefault(tier, {})[cls] = float(score)
    return {tier: row for tier, row in out.items() if any(row.values())}


_SHOWN: Final = {
    "consumer": "a consumer mail address",
    "external": "an outside party",
    "internal": "an internal party",
}


class ColdStartRules:
    """The cold-start table of one novelty detector, applied to one call of an agent without a baseline.

    >>> from agentwatch.events.audit_event import from_mapping
    >>> rules = ColdStartRules(merged_scores({}), context_factor=0.5, min_score=0.25, suffixes=(".internal",))
    >>> ev = from_mapping({"event_id": "e1", "ts": 1767225600000, "session_id": "s", "agent_id": "new-bot",
    ...                    "kind": "tool_call", "tool": "drive.share", "args": {"grantee": "x@gmail.com"}})
    >>> found = rules.judge(ev, "access_change", "verb:share", [("counterparty", "grantee:x@gmail.com", False)],
    ...                     internal=("acme.example",), context=set(), asked="", progress="0 of 3 sessions")
    >>> found.rule, found.score, found.reason[:55]
    ('cold-start-access-change', 0.65, 'cold start: no baseline for this agent yet (0 of 3 sess')
    """

    __slots__ = ("table", "context_factor", "min_score", "suffixes")

    def __init__(
        self,
        table: Mapping[str, Mapping[str, float]],
        context_factor: float,
        min_score: float,
        suffixes: tuple[str, ...],
    ) -> None:
        self.table = table
        self.context_factor = context_factor
        self.min_score = min_score
        self.suffixes = suffixes

    def judge(
        self,
        event: Any,
        tier: str,
        why: str,
        items: Iterable[tuple[str, str, bool]],
        *,
        internal: tuple[str, ...],
        context: AbstractSet[str],
        asked: str,
        progress: str,
    ) -> Finding | None:
        """The cold-start finding for a call of consequence ``tier`` touching novelty's ``items``, or None.

        ``internal``: the organisation's domains for this session; ``context``: addresses and hosts the
        session's context names; ``asked``: what the principal asked (lower-cased); ``progress``: how far
        the agent is towards a baseline, for the reason."""
        row = self.table.get(tier)
        if not row:
            return None
        best_score, best_class, best_party, best_named = row.get("none", 0.0), "none", "", False
        for cls, party in self._parties(event, tier, items, internal):
            score = row.get(cls, 0.0)
            named = party in context or (len(party) >= 4 and party in asked)
            if named:
                score *= self.context_factor
            if score > best_score:
                best_score, best_class, best_party, best_named = score, cls, party, named
        if best_score < self.min_score or best_score <= 0:
            return None
        action = tier.replace("_", "-")
        if best_class == "none":
            whom = "naming no counterparty"
        else:
            whom = f"to {_SHOWN[best_class]} {quote(best_party, 80)}"
            if best_named:
                whom += " (named in this session's context)"
        return Finding(
            score=round(min(best_score, 1.0), 4),
            reason=f"cold start: no baseline for this agent yet ({progress}); a {action} action ({why}) {whom}",
            event_ids=(event.event_id,),
            category="anomaly",
            rule=f"cold-start-{action}",
        )

    def _parties(
        self, event: Any, tier: str, items: Iterable[tuple[str, str, bool]], internal: tuple[str, ...]
    ) -> Iterable[tuple[str, str]]:
        """(class, party) of every counterparty the call names (lower-cased, bounded)."""
        for kind, item, is_internal in items:
            if kind == "recipient":
                domain = item.rsplit("@", 1)[-1]
                yield ("internal" if is_internal else self._domain_class(domain, internal)), item
            elif kind in ("domain", "bucket") and tier in HOST_PARTY_TIERS:
                yield ("internal" if is_internal else "external"), item
            elif kind == "counterparty":
                key, _, value = item.partition(":")
                addresses = email_addresses(value) if "@" in value else []
                if addresses:
                    for addr in addresses[:4]:
                        yield self._domain_class(addr.rsplit("@", 1)[1], internal), addr
                elif value:
                    yield ("external" if key in _OUTSIDE_KEYS else "internal"), value
        if tier == "financial":
            args = event.args
            if args:
                for value in list(args.values())[:MAX_IBAN_ARGS]:
                    if isinstance(value, str) and 15 <= len(value) <= 42:
                        compact = value.replace(" ", "").upper()
                        if _IBAN.fullmatch(compact):
                            yield "external", compact.lower()

    def _domain_class(self, domain: str, internal: tuple[str, ...]) -> str:
        if is_consumer_mail_domain(domain):
            return "consumer"
        return "internal" if is_internal_host(domain, internal, self.suffixes) else "external"
