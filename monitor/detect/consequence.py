"""What a tool call can change in the world: its consequence tier, for any tool, without a list per tool.

Tiers (:data:`TIERS`), from least to most consequential in the default scoring:

``read_only``        looks something up (get, list, search, read, calculate …)
``internal_write``   changes the organisation's own records (create, update, modify, schedule …)
``external_comm``    talks to someone outside the agent (send, email, message, post, reply, forward, call)
``publication``      makes something public or world-readable (publish, tweet, broadcast, deploy, release)
``deletion``         destroys or cancels something (delete, remove, wipe, purge, cancel, drop)
``financial``        moves money (pay, transfer funds, refund, withdraw, purchase; amount/iban/payment arguments)
``access_change``    changes who may do what (grant, invite, share with, password, role, key, permission)
``physical``         acts on a device or the physical world (unlock, thermostat, camera, vehicle, valve)
``unknown``          none of the above could be told — kept visible (a metric counts them), never guessed

Evidence, strongest first:

1. the operator's **tool catalogue** (YAML: ``{tool glob: tier}``, first match wins), which
   overrides everything; then agent runtimes' own tools whose names mislead (:data:`BUILTIN_TOOLS`:
   Claude Code's ``TodoWrite`` writes the agent's to-do list);
2. **MCP tool annotations** when the event carries them (``attributes["annotations"]`` or
   ``attributes["mcp.annotations"]``): ``readOnlyHint`` → read_only, ``destructiveHint`` → deletion,
   ``openWorldHint`` → external_comm;
3. the **words of the tool name** (``send_email``, ``GmailSendMessage``, ``mcp__bank__transfer_funds``
   are split into words; a verb sets the tier, a noun can raise a write to a money, access or device
   tier), then the **argument names and values** (``amount``/``iban``/``payment_method_id`` make a
   write financial, ``recipient``/``to`` an external communication, ``password``/``role``/``guest``
   an access change).

Read-only is a claim that the call is harmless, so it needs the stronger evidence: a read verb counts
only *said as a verb* — in its base form, as the first verb-like word of the tool's own name (after
an ``mcp__server__``/``server.`` namespace), opening it (``get_user``, ``searchFlights``, ``Read``,
``calculate``) or after a service prefix with its object after it (``GmailSearchEmails``,
``slack_list_channels``). A noun form or a trailing noun names a thing, not what the call does:
``DataAnalyzerTool``, ``NetworkMonitoring``, ``BiasDetectionTool``, ``FakeProductReviews``,
``SystemMonitor``, ``DataIntegrityCheck``, ``google_search``, and after a prefix a name ending in a generic
thing (``DataReviewTool``) are not read-only: they take the tier of their other words
(``CameraSystemMonitor`` physical, ``SoftwareUpdateManager`` internal write) or stay ``unknown``
(why: ``noun-use:monitor``). Other verbs count in any form and position (``DataWiper`` deletes,
``InsiderTrading`` is financial): a name that mentions a consequential action is evidence for it.
Known gaps: a base-form read verb followed by an action noun still reads (``CarePlanUpdate``,
``PeerReviewManagement``); genuine look-ups named as nouns (``ip_lookup``, ``vector_search``) are
``unknown`` unless the catalogue or a ``readOnlyHint`` says otherwise. This rule was written after
seeing which ASB attacker tools (``bench/quality.py --only assistants``) were missed as read-only.

A read verb is never raised by its nouns or arguments (``get_payment_details`` reads). The result is
cached per (tool, argument names) and costs a dictionary lookup after the first call.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from agentwatch.errors import ConfigError

__all__ = ["TIERS", "Consequence", "ToolCatalogue", "classify", "tool_words"]

TIERS: Final = (
    "read_only",
    "internal_write",
    "external_comm",
    "publication",
    "deletion",
    "financial",
    "access_change",
    "physical",
    "unknown",
)
#: Tiers whose actions change something outside the agent's own reading (everything but read_only/unknown).
CONSEQUENTIAL: Final = frozenset(TIERS) - {"read_only", "unknown"}
#: Tiers that leave the organisation or hand out power: novelty there weighs most.
HIGH_STAKES: Final = frozenset({"external_comm", "publication", "financial", "access_change", "physical", "deletion"})

#: Verbs (first decisive word of a tool name, in order) → tier. A read verb decides only when said as a
#: verb (:func:`_said_as_verb`); the others in any form (stemmed: ``DataWiper``) and position.
_VERBS: Final[dict[str, str]] = {
    **dict.fromkeys(
        "get list search find read fetch view show query lookup look check calculate compute think describe "
        "count validate verify inspect retrieve browse explore summarize summarise analyze analyse monitor "
        "track evaluate estimate review scan detect preview download print compare recommend "
        "predict simulate plan locate diagnose".split(),
        "read_only",
    ),
    **dict.fromkeys(
        "create update modify edit set add write save insert put patch schedule book reserve assign change "
        "exchange return move transfer rename register enroll record log mark tag label archive "
        "submit apply file open close approve reject rate comment reply_internal sync import configure "
        "install enable disable start stop restart manage adjust replace restore merge".split(),
        "internal_write",
    ),
    **dict.fromkeys(
        "send email mail message sms text reply forward notify call dial chat contact ping respond post "
        "export exfiltrate leak".split(),
        "external_comm",
    ),
    **dict.fromkeys("publish tweet broadcast announce deploy release disclose".split(), "publication"),
    **dict.fromkeys(
        "delete remove destroy wipe erase purge drop truncate cancel terminate uninstall shred revoke".split(),
        "deletion",
    ),
    **dict.fromkeys(
        "pay refund withdraw deposit charge purchase buy sell trade wire remit invest donate "
        "reimburse bill invoice tip".split(),
        "financial",
    ),
    **dict.fromkeys(
        "grant invite share authorize authorise permit allow elevate promote impersonate reset unlock_account "
        "suspend ban".split(),
        "access_change",
    ),
    **dict.fromkeys("unlock lock arm disarm turn switch drive steer fly dispense".split(), "physical"),
}
#: Nouns that raise a write (or an unknown) to a tier: money, access, devices, outside recipients.
_NOUNS: Final[dict[str, str]] = {
    **dict.fromkeys(
        "payment payments money fund funds transaction transactions wire iban bank banking balance payout "
        "refund invoice crypto bitcoin wallet card credit".split(),
        "financial",
    ),
    **dict.fromkeys(
        "permission permissions role roles access password passwords credential credentials token tokens key "
        "keys acl guest guests member members admin privilege privileges mfa 2fa sharing".split(),
        "access_change",
    ),
    **dict.fromkeys(
        "door lock thermostat light lights camera alarm vehicle car valve robot drone oven heater garage "
        "sprinkler".split(),
        "physical",
    ),
    **dict.fromkeys("email emails mail sms tweet post".split(), "external_comm"),
}
#: Argument names → the tier they reveal for a write-ish or unknown call.
_ARG_TIERS: Final[dict[str, str]] = {
    **dict.fromkeys(
        "amount amounts iban account_number routing_number swift bic payment_method payment_method_id "
        "payment_id payment_methods price total currency card_number".split(),
        "financial",
    ),
    **dict.fromkeys("recipient recipients to cc bcc phone_number phone email_to webhook".split(), "external_comm"),
    **dict.fromkeys(
        "password new_password role permission permissions access_level guest guest_email grantee "
        "invitee member".split(),
        "access_change",
    ),
    **dict.fromkeys("device_id temperature lock_state door_id".split(), "physical"),
}
#: Generic head nouns: a tool's own name that ends in one after a prefix names a thing (``DataReviewTool``).
_THING_WORDS: Final = frozenset(
    "tool software system app application service bot agent engine module plugin utility helper assistant "
    "platform program kit toolkit suite".split()
)
_SUFFIXES: Final = (
    *("ations", "ation", "ions", "ion", "ments", "ment", "ings", "ing"),
    *("ers", "er", "ors", "or", "es", "s", "e"),
)


def _stem(word: str) -> str:
    """A crude stem so that a nominalised name finds its verb: wiping/wipe, deletion/delete, manager/manage.

    Used for verbs only (nouns match as written or without a plural ``s``: ``care`` is not ``car``); a
    stemmed read verb (``analyzer``, ``monitoring``) is a noun form and never evidence of read-only."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _stemmed(table: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for word, tier in table.items():
        out.setdefault(word, tier)
        out.setdefault(_stem(word), tier)
    return out


_VERBS_STEMMED: Final = _stemmed(_VERBS)

#: When several signals disagree, the more consequential wins (a write with a payment is financial).
_RANK: Final = {t: i for i, t in enumerate(TIERS[:-1])} | {"unknown": -1}
_WORD: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
MAX_TOOL_CHARS: Final = 200
_CACHE_MAX: Final = 8192


@dataclass(frozen=True, slots=True)
class Consequence:
    """A tool call's tier and why (``catalogue``, ``annotation``, ``verb:send``, ``noun:payment``, ``arg:amount``)."""

    tier: str
    why: str

    @property
    def consequential(self) -> bool:
        return self.tier in CONSEQUENTIAL


def tool_words(tool: str) -> list[str]:
    """The words of a tool name, lower-case: ``mcp__bank__TransferFunds`` → ``['mcp', 'bank', 'transfer', 'funds']``.

    >>> tool_words("GmailSendMessage"), tool_words("get_user_details"), tool_words("HTTPPost")
    (['gmail', 'send', 'message'], ['get', 'user', 'details'], ['http', 'post'])
    """
    return [w.lower() for w in _WORD.findall(tool[:MAX_TOOL_CHARS])]


class ToolCatalogue:
    """The operator's tool → tier overrides (YAML ``tools: {glob: tier}``; first matching glob wins).

    >>> ToolCatalogue({"crm_*": "internal_write", "wire_out": "financial"}).tier_of("crm_note")
    'internal_write'
    """

    def __init__(self, entries: Mapping[str, str] | None = None, where: str = "tool catalogue") -> None:
        self.entries: tuple[tuple[str, str], ...] = ()
        self._memo: dict[str, str | None] = {}
        for glob, tier in (entries or {}).items():
            if not isinstance(glob, str) or tier not in TIERS:
                raise ConfigError(f"{where}: {glob!r}: tier must be one of {', '.join(TIERS)}, got {tier!r}")
            self.entries += ((glob, tier),)

    @classmethod
    def load(cls, path: str | Path) -> ToolCatalogue:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: tool catalogue does not exist") from None
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("tools", {}), dict):
            raise ConfigError(f"{path}: expected a mapping `tools: {{<tool glob>: <tier>}}`")
        return cls(raw.get("tools") or {}, str(path))

    def tier_of(self, tool: str) -> str | None:
        """The tier of the first glob ``tool`` matches, or None (memoised per tool name, bounded)."""
        if tool in self._memo:
            return self._memo[tool]
        found = next((tier for glob, tier in self.entries if fnmatch.fnmatchcase(tool, glob)), None)
        if len(self._memo) >= _CACHE_MAX:
            self._memo.clear()
        self._memo[tool] = found
        return found


def _annotations(attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not attributes:
        return None
    found = attributes.get("annotations", attributes.get("mcp.annotations"))
    return found if isinstance(found, Mapping) else None


def _from_annotations(notes: Mapping[str, Any]) -> Consequence | None:
    if notes.get("readOnlyHint") is True:
        return Consequence("read_only", "annotation:readOnlyHint")
    if notes.get("destructiveHint") is True:
        return Consequence("deletion", "annotation:destructiveHint")
    if notes.get("openWorldHint") is True:
        return Consequence("external_comm", "annotation:openWorldHint")
    return None


def _said_as_verb(own: list[str], at: int) -> bool:
    """Whether ``own[at]``, the first verb-like word of a tool's own name, is said as a verb: the imperative
    that opens the name (``get_user``, ``searchFlights``, ``Read``) or follows only a service prefix and has
    its object after it (``GmailSearchEmails``) — not a noun form (``DataAnalyzer``, ``NetworkMonitoring``,
    ``BiasDetection``, ``FakeReviews``), a trailing noun (``SystemMonitor``, ``PeerReview``,
    ``DataIntegrityCheck``) or the modifier of a thing after a prefix (``DataReviewTool``)."""
    if own[at] not in _VERBS:
        return False
    if len(own) == 1:
        return True
    if at == len(own) - 1:
        return False
    return at == 0 or own[-1] not in _THING_WORDS


def _from_words(own: list[str], server: list[str], arg_names: tuple[str, ...]) -> Consequence:
    tier, why = "unknown", ""
    discounted = ""  # a read word that names a thing: not evidence of what the call does
    for at, word in enumerate(own + server):
        verb = _VERBS.get(word) or _VERBS_STEMMED.get(_stem(word))
        if verb is None:
            continue
        if verb != "read_only":
            tier, why = verb, f"verb:{word}"
            break
        if at < len(own) and not discounted and _said_as_verb(own, at):
            return Consequence("read_only", f"verb:{word}")
        discounted = discounted or word
    words = own + server
    for word in words:
        noun = _NOUNS.get(word) or _NOUNS.get(word[:-1] if word.endswith("s") else "")
        if noun is not None and _RANK[noun] > _RANK[tier] and not (tier == "deletion" and noun == "external_comm"):
            tier, why = noun, f"noun:{word}"
    for name in arg_names:
        arg = _ARG_TIERS.get(name)
        if arg is not None and _RANK[arg] > _RANK[tier]:
            if tier == "unknown" and arg == "external_comm":
                continue  # a lookup by e-mail address is not a message
            tier, why = arg, f"arg:{name}"
    return Consequence(tier, why or (f"noun-use:{discounted}" if discounted else "no-evidence"))


#: Agent runtimes' own tools whose names mislead (Claude Code's ``TodoWrite`` writes the agent's own to-do
#: list, not the organisation's records; ``web_search`` is a noun phrase, so its words alone say ``unknown``).
#: The operator's catalogue comes first; these come before the words.
BUILTIN_TOOLS: Final = ToolCatalogue(
    {
        "TodoWrite": "read_only",
        "TodoRead": "read_only",
        "NotebookRead": "read_only",
        "Task": "read_only",
        "ExitPlanMode": "read_only",
        "BashOutput": "read_only",
        "WebSearch": "read_only",
        "WebFetch": "read_only",
        "web_search": "read_only",  # Anthropic API server tool and OpenAI hosted tool
        "web_fetch": "read_only",  # Anthropic API server tool
        "file_search": "read_only",  # OpenAI hosted tool: searches the caller's vector stores
        "Read": "read_only",
        "Glob": "read_only",
        "Grep": "read_only",
        "LS": "read_only",
        "Write": "internal_write",
        "Edit": "internal_write",
        "MultiEdit": "internal_write",
        "NotebookEdit": "internal_write",
        "KillShell": "internal_write",
    },
    "built-in tools",
)

_cache: dict[tuple[str, tuple[Any, ...]], Consequence] = {}


def classify(
    tool: str | None,
    args: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
    catalogue: ToolCatalogue | None = None,
) -> Consequence:
    """The consequence tier of one call of ``tool`` with ``args`` (see the module docstring).

    >>> classify("send_email", {"to": "a@b.example"}).tier, classify("get_payment_details").tier
    ('external_comm', 'read_only')
    >>> classify("update_reservation_flights", {"payment_id": "card_1"}).tier
    'financial'
    >>> classify("DataWiper").tier, classify("TravelHelper").tier
    ('deletion', 'unknown')
    >>> classify("GmailSearchEmails").tier, classify("SystemMonitor").why, classify("DataAnalyzerTool").tier
    ('read_only', 'noun-use:monitor', 'unknown')
    >>> classify("helper", attributes={"annotations": {"readOnlyHint": True}}).why
    'annotation:readOnlyHint'
    """
    if not tool:
        return Consequence("unknown", "no-tool")
    if catalogue is not None:
        tier = catalogue.tier_of(tool)
        if tier is not None:
            return Consequence(tier, "catalogue")
    if attributes:
        notes = _annotations(attributes)
        if notes is not None:
            found = _from_annotations(notes)
            if found is not None:
                return found
    key = (tool, tuple(args) if args else ())  # argument names as given: a C-level tuple, no sorting per call
    got = _cache.get(key)
    if got is None:
        got = _classify_names(tool[:MAX_TOOL_CHARS], key[1])
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = got
    return got


def _classify_names(tool: str, keys: tuple[Any, ...]) -> Consequence:
    tier = BUILTIN_TOOLS.tier_of(tool)
    if tier is not None:
        return Consequence(tier, "built-in")
    names = tuple(sorted(k.lower() for k in keys[:64] if isinstance(k, str))[:32])
    *namespace, name = re.split(r"__|[./:]", tool)
    server = [w for part in reversed(namespace) for w in tool_words(part)]  # mcp__bank__x: ['bank', 'mcp']
    return _from_words(tool_words(name), server, names)
