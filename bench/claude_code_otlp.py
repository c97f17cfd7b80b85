"""Claude Code OpenTelemetry sessions, built for the quality bench.

One :class:`SessionBuilder` makes one OTLP/JSON logs request (what the Collector's Kafka
exporter writes with ``encoding: otlp_json``) holding one Claude Code session, in the
shape :mod:`agentwatch.formats.otlp_json` decodes and ``tests/fixtures/otlp/claude_code_session.json``
shows: every record carries ``session.id``, ``user.*``, ``event.name``, ``event.timestamp`` and
``event.sequence``; a tool use is an ``api_request``, then a ``tool_decision``, then the
``tool_result`` that is the only record of the action.

Telemetry settings assumed: ``OTEL_LOG_USER_PROMPTS`` off (prompts carry only their
length), ``OTEL_LOG_TOOL_DETAILS=1`` for file tools (``Write``/``Read``/``Edit`` carry
``tool_input``, so written content is visible), and Bash reported as Claude Code always
does, through ``tool_parameters`` (``bash_command``/``full_command``/``timeout``/``description``).

Each tool use returns the positions (0-based, in record order) of its own records, so a
caller can label which decoded events belong to an attack: the decoder keeps record
order, so position *i* of the request is ``DecodeResult.events[i]``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

SERVICE_VERSION: Final = "2.0.14"
MODEL: Final = "claude-sonnet-4-5-20250929"
_NAMESPACE: Final = uuid.UUID("6f1d2c1e-8b8a-4c4e-9d0e-2f6a1b3c5d7e")


@dataclass(frozen=True, slots=True)
class Identity:
    """One developer's Claude Code installation: what ``agent_id`` and ``principal`` derive from."""

    email: str
    host: str

    @property
    def account_uuid(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, "account:" + self.email))

    @property
    def user_id(self) -> str:
        return hashlib.sha256(("user:" + self.email).encode()).hexdigest()

    @property
    def agent_id(self) -> str:
        """What :mod:`agentwatch.formats.otlp_json` derives: ``claude-code:<account_uuid>``."""
        return "claude-code:" + self.account_uuid


def identity_pool(corpus: str, size: int, domain: str = "acme.example") -> list[Identity]:
    """``size`` deterministic developers for one corpus (``dev01.<corpus>@acme.example`` …)."""
    return [Identity(f"dev{k:02d}.{corpus}@{domain}", f"{corpus}-box-{k:02d}") for k in range(1, size + 1)]


def stable_id(*parts: str) -> str:
    """A UUID derived from ``parts`` (session ids, prompt ids, tool-use ids)."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def _iso(ms: int) -> str:
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


@dataclass(slots=True)
class SessionBuilder:
    """Records of one Claude Code session; :meth:`encode` gives the OTLP/JSON request bytes.

    ``start_ms`` is the session's first timestamp; each record advances the clock by
    ``step_ms`` (a little more for tool runs), so sessions spaced apart in time expire
    in the monitor like real ones do.
    """

    identity: Identity
    session_id: str
    start_ms: int
    step_ms: int = 1500
    records: list[dict[str, Any]] = field(default_factory=list)
    _clock: int = 0
    _prompt_id: str = ""

    def __post_init__(self) -> None:
        self._clock = self.start_ms
        self._prompt_id = stable_id(self.session_id, "prompt", "0")

    def __len__(self) -> int:
        return len(self.records)

    # -- events -------------------------------------------------------------------
    def user_prompt(self, length: int = 48) -> int:
        """A prompt (its text is not logged by default; only its length). Returns its position."""
        self._prompt_id = stable_id(self.session_id, "prompt", str(len(self.records)))
        return self._add("user_prompt", {"prompt_length": str(length)})

    def api_request(self, input_tokens: int = 1800, output_tokens: int = 240) -> int:
        attrs = {
            "model": MODEL,
            "cost_usd": "0.0121",
            "duration_ms": "3100",
            "input_tokens": str(input_tokens),
            "output_tokens": str(output_tokens),
            "cache_read_tokens": "42000",
            "cache_creation_tokens": "0",
            "speed": "normal",
        }
        return self._add("api_request", attrs)

    def bash(self, command: str, description: str = "", timeout: int = 120000) -> tuple[int, ...]:
        """A Bash call (decision + result). Returns the positions of its two records."""
        first = command.strip().split(None, 1)[0] if command.strip() else ""
        params = {"bash_command": first, "full_command": command, "timeout": timeout}
        if description:
            params["description"] = description
        return self._tool("Bash", {"tool_parameters": json.dumps(params)}, result_bytes=640)

    def write(self, file_path: str, content: str) -> tuple[int, ...]:
        """A Write call with its content (``OTEL_LOG_TOOL_DETAILS=1``)."""
        body = json.dumps({"file_path": file_path, "content": content})
        extra = {"tool_input": body, "tool_input_size_bytes": str(len(body.encode()))}
        return self._tool("Write", extra, result_bytes=90)

    def read(self, file_path: str) -> tuple[int, ...]:
        return self._tool("Read", {"tool_input": json.dumps({"file_path": file_path})}, result_bytes=3200)

    def _tool(self, tool: str, extra: dict[str, str], result_bytes: int) -> tuple[int, ...]:
        use_id = "toolu_" + stable_id(self.session_id, "tool", str(len(self.records))).replace("-", "")[:24]
        decision = self._add("tool_decision", {"decision": "accept", "source": "config", "tool_name": tool})
        self._clock += 200
        attrs = {
            "tool_name": tool,
            "success": "true",
            "duration_ms": "215",
            **extra,
            "tool_result_size_bytes": str(result_bytes),
            "decision_source": "config",
            "decision_type": "accept",
            "tool_use_id": use_id,
        }
        result = self._add("tool_result", attrs)
        return decision, result

    def _add(self, name: str, specific: dict[str, str]) -> int:
        ident = self.identity
        attrs: dict[str, Any] = {
            "user.id": ident.user_id,
            "session.id": self.session_id,
            "organization.id": "c4e5f6a7-b8c9-4d0e-a1f2-b3c4d5e6f7a8",
            "user.email": ident.email,
            "user.account_uuid": ident.account_uuid,
            "terminal.type": "vscode",
            "event.name": name,
            "event.timestamp": _iso(self._clock),
            "event.sequence": len(self.records),
            "prompt.id": self._prompt_id,
            **specific,
        }
        record = {
            "timeUnixNano": str(self._clock * 1_000_000),
            "observedTimeUnixNano": str(self._clock * 1_000_000),
            "body": {"stringValue": "claude_code." + name},
            "attributes": [{"key": k, "value": _value(v)} for k, v in attrs.items()],
        }
        self.records.append(record)
        self._clock += self.step_ms
        return len(self.records) - 1

    # -- output -------------------------------------------------------------------
    def encode(self) -> bytes:
        """The whole session as one OTLP/JSON ``ExportLogsServiceRequest``."""
        resource = [
            {"key": "service.name", "value": {"stringValue": "claude-code"}},
            {"key": "service.version", "value": {"stringValue": SERVICE_VERSION}},
            {"key": "os.type", "value": {"stringValue": "linux"}},
            {"key": "host.arch", "value": {"stringValue": "amd64"}},
            {"key": "host.name", "value": {"stringValue": self.identity.host}},
        ]
        request = {
            "resourceLogs": [
                {
                    "resource": {"attributes": resource},
                    "scopeLogs": [
                        {
                            "scope": {"name": "com.anthropic.claude_code.events", "version": SERVICE_VERSION},
                            "logRecords": self.records,
                        }
                    ],
                }
            ]
        }
        return json.dumps(request, separators=(",", ":")).encode()
