"""Claude Code hook events in, ``permissionDecision`` out: verdicts before the tool runs.

``POST /v1/hooks/claude-code`` (:mod:`agentwatch.observe.server`) hands each hook input here.
Every event — ``SessionStart``, ``UserPromptSubmit``, ``PreToolUse``, ``PostToolUse``,
``SessionEnd`` and any other — is

1. stamped with the identity serve established (``agentwatch: {agent_id, principal}``, see
   :func:`hook_identity`) and decoded by the monitor's own ``claude-hook`` decoder;
2. run through a :class:`~agentwatch.detect.pipeline.Pipeline` built from the same configuration as
   the monitor's (effects layer, rules, learned detectors), which keeps this process's per-session
   state — so a proposed call is scored in its session's context;
3. published, stamped, to ``[hooks] topic`` (format ``claude-hook``, keyed by session, with the
   request's time as the record timestamp) so the monitor sees exactly this stream.

A ``PreToolUse`` is answered with Claude Code's hook output::

    {"hookSpecificOutput": {"hookEventName": "PreToolUse",
                            "permissionDecision": "allow" | "ask" | "deny",
                            "permissionDecisionReason": "agentwatch: …"}}

``deny`` when containment applies (terminated session, quarantined agent, disabled tool, blocked
destination: :mod:`agentwatch.observe.hook_containment`) or a hard-boundary finding qualified (mode in
``[hooks] deny_modes``, severity at least ``deny_min_severity``); ``ask`` for any other finding at
``ask_min_severity`` or above; otherwise ``allow``. The reason names the rule, its category and
severity — our words only, never agent text. Other events are answered ``{}``.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec

from agentwatch.config import Config, HookSettings
from agentwatch.detect.pipeline import Pipeline, build_pipeline
from agentwatch.detect.policy import SEVERITY_RANK
from agentwatch.errors import DecodeError
from agentwatch.events.audit_event import MAX_MESSAGE_BYTES, AuditEvent
from agentwatch.formats.claude_hook import SERVE_STAMP, hook_input_to_event
from agentwatch.ingest.kafka_security import KafkaSecurity, client_kwargs
from agentwatch.observe import metrics
from agentwatch.observe.hook_containment import Containment
from agentwatch.observe.hook_tokens import InstallationIdentity
from agentwatch.respond.session_guard import MAX_SESSION_ID, SessionVerdict, _terminated_message

log = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = MAX_MESSAGE_BYTES
INSTALLATION_HEADER: Final = "x-agentwatch-installation"
PRINCIPAL_HEADER: Final = "x-agentwatch-principal"
AGENT_PREFIX: Final = "claude-code/"
KNOWN_EVENTS: Final = frozenset(
    {"PreToolUse", "PostToolUse", "PostToolUseFailure", "UserPromptSubmit", "SessionStart", "SessionEnd"}
)
EGRESS_OPS: Final = frozenset({"connect", "send", "upload", "download"})
PUBLISH_QUEUE: Final = 10_000
_PLAIN_ID = re.compile(r"[A-Za-z0-9._@+-]{1,64}")
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_RANK: Final = SEVERITY_RANK
_decoder = msgspec.json.Decoder(dict[str, Any], float_hook=float)
_encoder = msgspec.json.Encoder()


class HookRefused(ValueError):
    """The request is not a hook input serve can decide on (answered 400: the fail-closed hook blocks)."""


@dataclass(frozen=True, slots=True)
class Decision:
    decision: str  # allow | ask | deny
    rule: str  # detector name, containment:<kind> or none
    reason: str


def _plain(value: str | None, limit: int = 128) -> str | None:
    """A header value usable as an identity: printable, bounded; else ``None``."""
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > limit or not value.isprintable():
        return None
    return value


def hook_identity(headers: Mapping[str, str]) -> tuple[str, str | None]:
    """``(agent_id, principal)`` from ``X-Agentwatch-Installation`` and ``X-Agentwatch-Principal``.

    The agent id is ``claude-code/<installation>`` — the installation id as sent when it is a short
    plain word (a host name, a UUID), else ``h-`` and 16 hex digits of its SHA-256 — or plain
    ``claude-code/unknown`` without the header. The principal is the header's value (≤ 128 printable
    characters) or ``None``.
    """
    installation = _plain(headers.get(INSTALLATION_HEADER), 512)
    if installation is None:
        agent = AGENT_PREFIX + "unknown"
    elif _PLAIN_ID.fullmatch(installation):
        agent = AGENT_PREFIX + installation
    else:
        agent = AGENT_PREFIX + "h-" + hashlib.sha256(installation.encode()).hexdigest()[:16]
    return agent, _plain(headers.get(PRINCIPAL_HEADER))


class AgentLabels:
    """Bounded metric labels for attacker-influenced agent ids: a short hash for each of the first ``cap``
    distinct ids, ``other`` after that."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._seen: dict[str, str] = {}

    def __call__(self, agent_id: str) -> str:
        label = self._seen.get(agent_id)
        if label is None:
            if len(self._seen) >= self.cap:
                return "other"
            label = self._seen[agent_id] = "a-" + hashlib.sha256(agent_id.encode()).hexdigest()[:10]
        return label


class Publisher:
    """Hook events to Kafka off the request path: a bounded queue and one producer thread.

    ``None`` bootstrap servers: nothing is published (counted as ``not_published``, said at start-up).
    A full queue (a broker that stopped acknowledging) drops the record and counts it.
    """

    def __init__(self, bootstrap_servers: str | None, topic: str, security: KafkaSecurity | None = None) -> None:
        self.bootstrap_servers, self.topic, self.security = bootstrap_servers, topic, security
        self._queue: queue.Queue[tuple[bytes, bytes, int] | threading.Event | None] = queue.Queue(PUBLISH_QUEUE)
        self._thread: threading.Thread | None = None
        self.failures = 0
        if bootstrap_servers:
            self._thread = threading.Thread(target=self._run, name="agentwatch-hook-publisher", daemon=True)
            self._thread.start()

    @property
    def enabled(self) -> bool:
        return self._thread is not None

    def publish(self, key: bytes, value: bytes, timestamp_ms: int) -> str:
        """Queue one record; the outcome for the events counter."""
        if self._thread is None:
            return "not_published"
        try:
            self._queue.put_nowait((key, value, timestamp_ms))
        except queue.Full:
            return "dropped"
        return "queued"

    def _run(self) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        from agentwatch.ingest.topics import ensure_topics

        producer = None
        while True:
            item = self._queue.get()
            if item is None:
                break
            if isinstance(item, threading.Event):  # flush(): everything queued before it is handed over
                if producer is not None:
                    producer.flush(timeout=10)
                item.set()
                continue
            try:
                if producer is None:
                    ensure_topics(self.bootstrap_servers, [self.topic], security=self.security)  # type: ignore[arg-type]
                    producer = KafkaProducer(
                        bootstrap_servers=self.bootstrap_servers,
                        acks="all",
                        linger_ms=2,
                        max_block_ms=5_000,
                        **client_kwargs(self.security),
                    )
                key, value, ts = item
                producer.send(self.topic, key=key, value=value, timestamp_ms=ts)
            except (KafkaError, OSError) as exc:
                self.failures += 1
                metrics.HOOK_EVENTS.labels("any", "publish_failed").inc()
                if self.failures <= 5:
                    log.warning("hook event not published to %s: %s", self.topic, exc.__class__.__name__)
        if producer is not None:
            producer.flush(timeout=10)
            producer.close(timeout=10)

    def flush(self, timeout_s: float = 15.0) -> bool:
        """Wait until every record queued so far was sent and acknowledged (tests, shutdown)."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(done, timeout=timeout_s)
        return done.wait(timeout_s)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(15)
            self._thread = None


def _severity_at_least(severity: str, floor: str) -> bool:
    return _RANK.get(severity, -1) >= _RANK[floor]


def verdict_for(qualified: list[tuple[str, str, str, str]], settings: HookSettings) -> Decision | None:
    """The decision the findings of one proposed call make (``None``: none reaches ``ask``)."""
    deny = [
        q for q in qualified if q[3] in settings.deny_modes and _severity_at_least(q[2], settings.deny_min_severity)
    ]
    ask = [q for q in qualified if _severity_at_least(q[2], settings.ask_min_severity)]
    for decision, found in (("deny", deny), ("ask", ask)):
        if found:
            detector, category, severity, mode = max(found, key=lambda q: _RANK.get(q[2], -1))
            category = category if _PLAIN_WORD.fullmatch(category) else "unnamed"
            verb = "blocked" if decision == "deny" else "needs your confirmation"
            return Decision(
                decision,
                detector,
                f"agentwatch: {verb}: rule {detector} ({category}, {severity} severity, {mode} mode)",
            )
    return None


def _hosts(event: AuditEvent, effects: tuple[object, ...]) -> set[str]:
    """Hosts this call would reach, from its effects and its target."""
    texts = [getattr(e, "resource", "") for e in effects if getattr(e, "op", None) in EGRESS_OPS]
    if event.target:
        texts.append(event.target)
    hosts: set[str] = set()
    for text in texts:
        if not isinstance(text, str) or not text:
            continue
        try:
            host = urlsplit(text if "://" in text else "//" + text).hostname
        except ValueError:
            continue
        if host:
            hosts.add(host.lower().rstrip("."))
    return hosts


def containment_decision(
    event: AuditEvent, effects: tuple[object, ...], session: SessionVerdict, held: Containment
) -> Decision | None:
    """Deny when containment recorded in the store applies to this call."""
    if session.status == "terminated":
        return Decision("deny", "containment:terminate_session", _terminated_message(session))
    agent = event.agent_id
    if agent in held.quarantined:
        return Decision(
            "deny",
            "containment:quarantine_agent",
            f"agentwatch: this agent is quarantined ({_ref(held.quarantined[agent])})",
        )
    tools = held.disabled_tools.get(agent, {})
    if event.tool is not None and event.tool in tools:
        name = event.tool if _PLAIN_WORD.fullmatch(event.tool) else "this tool"
        return Decision(
            "deny",
            "containment:disable_tool",
            f"agentwatch: {name} is disabled for this agent ({_ref(tools[event.tool])})",
        )
    blocked = held.blocked_hosts.get(agent, {})
    if blocked:
        for host in _hosts(event, effects):
            for listed, incident in blocked.items():
                if host == listed or host.endswith("." + listed):
                    return Decision(
                        "deny",
                        "containment:block_egress",
                        f"agentwatch: egress to a blocked destination ({_ref(incident)})",
                    )
    return None


def _ref(incident_id: str) -> str:
    return f"incident {incident_id}" if _PLAIN_ID.fullmatch(incident_id) else "an incident"


@dataclass(slots=True)
class Prepared:
    """A hook input decoded and stamped: what the endpoint decides on and publishes."""

    event: AuditEvent
    hook: str
    published: bytes


def prepare(
    raw: bytes, headers: Mapping[str, str], received_ms: int, installation: InstallationIdentity | None = None
) -> Prepared:
    """Decode, stamp with serve's identity and map to an event, or :class:`HookRefused` (one line, ours).

    ``installation``: the identity of a per-installation token (:mod:`agentwatch.observe.hook_tokens`),
    which wins over the headers (its principal too, when it names one)."""
    if len(raw) > MAX_BODY_BYTES:
        raise HookRefused(f"hook input is larger than {MAX_BODY_BYTES} bytes")
    try:
        obj = _decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        raise HookRefused("the body is not a JSON object (send the hook input as is)") from None
    session_id = obj.get("session_id")
    if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_SESSION_ID or not session_id.isprintable():
        raise HookRefused(f"session_id must be a string of 1–{MAX_SESSION_ID} printable characters")
    agent_id, principal = hook_identity(headers)
    if installation is not None:
        agent_id = AGENT_PREFIX + installation.installation
        principal = installation.principal or principal
    obj[SERVE_STAMP] = {"agent_id": agent_id, "principal": principal}
    published = _encoder.encode(obj)
    try:
        event = hook_input_to_event(obj, received_ms)
    except DecodeError as exc:
        raise HookRefused(f"not a hook input ({exc.reason})") from None
    hook = obj["hook_event_name"]
    return Prepared(event, hook, published)


class HookGate:
    """The detection side of the endpoint: one pipeline, decisions, metrics, publishing.

    Not thread-safe: serve calls :meth:`observe` on its event loop only (a decision costs tens of
    microseconds of detection; the store is read on worker threads before it).
    """

    def __init__(
        self,
        config: Config,
        publisher: Publisher,
        pipeline: Pipeline | None = None,
        tokens: Mapping[str, InstallationIdentity] | None = None,
    ) -> None:
        self.settings = config.hooks
        #: Per-installation tokens (SHA-256 → identity), accepted on the hook endpoint beside the API token.
        self.tokens = dict(tokens or {})
        self.pipeline = pipeline if pipeline is not None else build_pipeline(config)
        self.publisher = publisher
        self.agent_labels = AgentLabels(self.settings.max_agent_labels)
        # zero-valued series from the start: "no asks", not "no data"
        metrics.HOOK_DECISIONS.labels("allow", "none")
        for active in self.pipeline.detectors:
            for decision in ("ask", "deny"):
                metrics.HOOK_DECISIONS.labels(decision, active.name)

    def observe(
        self, prepared: Prepared, received_ms: int, containment: tuple[SessionVerdict, Containment] | None
    ) -> Decision | None:
        """Run the event through detection and publish it; the decision for a ``PreToolUse``
        (``containment`` must then be given), ``None`` for other events."""
        event, hook = prepared.event, prepared.hook
        pipeline = self.pipeline
        pipeline.observed_ms = received_ms
        qualified: list[tuple[str, str, str, str]] = []
        pipeline.qualified = qualified
        try:
            pipeline.process(event)
            session = pipeline.sessions.get(event.session_id)
        finally:
            pipeline.qualified = None
        label = hook if hook in KNOWN_EVENTS else "other"
        outcome = self.publisher.publish(event.session_id.encode(), prepared.published, received_ms)
        metrics.HOOK_EVENTS.labels(label, outcome).inc()
        if hook != "PreToolUse":
            return None
        assert containment is not None
        effects = (session.effects or ()) if session is not None else ()
        decision = (
            containment_decision(event, effects, *containment)
            or verdict_for(qualified, self.settings)
            or Decision("allow", "none", "agentwatch: no rule matched this call")
        )
        metrics.HOOK_DECISIONS.labels(decision.decision, decision.rule).inc()
        metrics.HOOK_DECISIONS_BY_AGENT.labels(decision.decision, self.agent_labels(event.agent_id)).inc()
        return decision


def answer(decision: Decision | None) -> dict[str, Any]:
    """Claude Code's hook output for a decision (``{}`` for events that take none)."""
    if decision is None:
        return {}
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": decision.decision,
            "permissionDecisionReason": decision.reason,
        }
    }
