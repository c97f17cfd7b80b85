"""Draft postmortems: a Markdown report and a timeline SVG, rendered from an incident.

The report comes from ``playbooks/templates/postmortem.md.j2``, rendered in a Jinja2
*sandbox* with ``StrictUndefined``. Agent-written text only ever enters as template
variables (never as template source) and is shown through the ``md`` filter, which
redacts secrets and Markdown-escapes (:func:`agentwatch.respond.markdown.escape_md`), so a
target such as ``{{ 7*7 }}`` or ``](javascript:…)`` is printed, inert, as written.

Rendering is a pure function of the record (and of the evidence bundle's manifest
digest), so the same incident gives the same bytes.

>>> from agentwatch.respond.incident_record import example_incident
>>> text = render_postmortem(example_incident(), evidence_path=None)
>>> text.splitlines()[0]
'# Postmortem (draft): coder-7, session sess-42, severity high'
>>> "**Time to detect:** 4.000 s" in text, "**Time to contain:** 9.000 s" in text
(True, True)
"""

from __future__ import annotations

import functools
import os
import re
import statistics
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit
from xml.sax.saxutils import escape as _xml_escape

import jinja2
import msgspec
import pandas as pd
from jinja2.sandbox import SandboxedEnvironment

import agentwatch.playbooks as builtin_playbooks
from agentwatch.detect.alerts import Alert
from agentwatch.detect.policy import SEVERITY_RANK
from agentwatch.events.audit_event import AuditEvent, rfc3339_ms
from agentwatch.respond.evidence import MANIFEST_DIGEST, atomic_write, safe_dirname, verify_bundle
from agentwatch.respond.incident_record import IncidentRecord
from agentwatch.respond.markdown import escape_md
from agentwatch.respond.redaction import redact, redact_obj

TEMPLATE_NAME: Final = "postmortem.md.j2"
DEFAULT_TEMPLATE_DIR: Final = Path(builtin_playbooks.__file__).resolve().parent / "templates"
SVG_NAME: Final = "timeline.svg"
#: Events shown in the timeline table; beyond it, alert-supporting events are kept
#: first and the rest are counted (the evidence bundle has them all).
MAX_TIMELINE_EVENTS: Final = 200
MAX_LISTED: Final = 25
CELL_CHARS: Final = 200

_SOURCE_ORDER: Final = {"event": 0, "alert": 1, "action": 2, "decision": 3, "status": 4, "note": 5}
_PATH_ARGS: Final = frozenset(
    {"path", "file_path", "filepath", "file", "filename", "notebook_path", "directory", "dir"}
)
_FILE_TOOLS: Final = re.compile(r"(?i)^(read|write|edit|multiedit|notebookedit|glob|ls|cat|open|delete|rm)$")
_ABS_PATH: Final = re.compile(r"(?<![\w:/.~-])(?:~|/)[A-Za-z0-9._@%+=-]*(?:/[A-Za-z0-9._@%+=-]+)+")
_URL: Final = re.compile(r"(?i)\b(?:https?|ftp|wss?|s3|gs)://[^\s'\"<>()\[\]{}\\`|]+")
_EMAIL: Final = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_XML_INVALID: Final = re.compile(r"[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def md_filter(value: object, limit: int | None = None) -> str:
    """The template's ``md`` filter: redact, then Markdown-escape (cut to ``limit``).

    >>> md_filter("see [docs](javascript:alert(1)) password=hunter2")
    'see \\\\[docs\\\\]\\\\(javascript:alert\\\\(1\\\\)\\\\) password=\\\\[REDACTED:password\\\\]'
    """
    if value is None:
        return ""
    return escape_md(redact(value if isinstance(value, str) else str(value)), limit)


def make_environment(template_dir: Path | None = None) -> SandboxedEnvironment:
    """The sandboxed, strict Jinja2 environment postmortems are rendered in.

    >>> env = make_environment()
    >>> env.from_string("{{ x|md }}").render(x="{{ 7*7 }} | <b>")
    '{{ 7\\\\*7 }} \\\\| &lt;b&gt;'
    """
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(template_dir or DEFAULT_TEMPLATE_DIR)),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_filter
    return env


@functools.lru_cache(maxsize=8)
def _environment(template_dir: Path | None) -> SandboxedEnvironment:
    """One environment per directory: it caches compiled templates (recompiling only when
    the file changes), and compiling costs far more than rendering."""
    return make_environment(template_dir)


def render_postmortem(
    incident: IncidentRecord,
    evidence_path: Path | None,
    template_dir: Path | None = None,
    *,
    version: int | None = None,
    svg_name: str = SVG_NAME,
) -> str:
    """The postmortem draft for ``incident`` as Markdown.

    Parameters
    ----------
    incident
        The incident as the response engine knows it.
    evidence_path
        The evidence bundle directory (from :func:`agentwatch.respond.evidence.write_bundle`), or
        ``None`` when none was collected; its manifest digest is quoted and verified.
    template_dir
        A directory holding ``postmortem.md.j2`` (default: ``playbooks/templates``).
    version
        The draft's version number (:func:`write_postmortem` numbers them), ``None`` for none.
    svg_name
        The timeline image the draft embeds.
    """
    template = _environment(template_dir).get_template(TEMPLATE_NAME)
    context = postmortem_context(incident, evidence_path)
    context.update(version=version, svg_name=svg_name)
    return template.render(**context)


def write_postmortem(
    incident: IncidentRecord, out_dir: Path, evidence_path: Path | None, template_dir: Path | None = None
) -> Path:
    """Write a new version of the draft when the incident changed; return ``<dir>/postmortem.md``.

    ``<out_dir>/<incident_id>/`` keeps every version — ``postmortem.v1.md`` with
    ``timeline.v1.svg``, ``postmortem.v2.md`` … — and ``postmortem.md`` / ``timeline.svg``
    as a copy of the newest. A version is added when the draft's content changes (severity
    raised, another playbook ran, the incident contained or resolved), never overwritten;
    re-running on the same record leaves every file, and its mtime, alone. A version is
    created exclusively, so two workers drafting at once number theirs apart.
    """
    directory = out_dir / safe_dirname(incident.incident_id)
    directory.mkdir(parents=True, exist_ok=True)
    for _attempt in range(8):
        latest = _latest_version(directory)
        if latest and _version_files(incident, evidence_path, template_dir, latest) == _read_version(directory, latest):
            version = latest
            break
        version = latest + 1
        if _create_version(directory, _version_files(incident, evidence_path, template_dir, version)):
            break
    else:
        raise RuntimeError(f"could not number a new postmortem version in {directory}: others keep writing")
    current = {
        SVG_NAME: render_timeline_svg(incident).encode("utf-8"),
        "postmortem.md": render_postmortem(incident, evidence_path, template_dir, version=version).encode("utf-8"),
    }
    for name, data in current.items():
        path = directory / name
        if not (path.is_file() and path.read_bytes() == data):
            atomic_write(path, data)
    return directory / "postmortem.md"


_VERSIONED: Final = re.compile(r"^postmortem\.v([1-9][0-9]{0,8})\.md$")


def postmortem_versions(directory: Path) -> list[Path]:
    """The versions of a draft in ``directory``, oldest first."""
    found = [(int(m.group(1)), p) for p in directory.glob("postmortem.v*.md") if (m := _VERSIONED.match(p.name))]
    return [p for _, p in sorted(found)]


def _latest_version(directory: Path) -> int:
    versions = postmortem_versions(directory)
    return int(_VERSIONED.match(versions[-1].name).group(1)) if versions else 0  # type: ignore[union-attr]


def _version_files(
    incident: IncidentRecord, evidence_path: Path | None, template_dir: Path | None, version: int
) -> dict[str, bytes]:
    svg = f"timeline.v{version}.svg"
    markdown = render_postmortem(incident, evidence_path, template_dir, version=version, svg_name=svg)
    return {f"postmortem.v{version}.md": markdown.encode("utf-8"), svg: render_timeline_svg(incident).encode("utf-8")}


def _read_version(directory: Path, version: int) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name in (f"postmortem.v{version}.md", f"timeline.v{version}.svg"):
        try:
            out[name] = (directory / name).read_bytes()
        except FileNotFoundError:
            pass
    return out


def _create_version(directory: Path, files: dict[str, bytes]) -> bool:
    """Create the version's files, the Markdown first (creating it claims the number, so a writer that
    lost the race never touches the winner's image); ``False`` when another writer claimed it."""
    markdown = next(name for name in files if name.endswith(".md"))
    for name, data in sorted(files.items(), key=lambda item: item[0] != markdown):
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if name == markdown:
                try:
                    os.link(tmp, directory / name)  # never replaces another writer's version
                except FileExistsError:
                    return False
            else:
                os.replace(tmp, directory / name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return True


class IncidentClock:
    """The one clock of a postmortem: agentwatch's (wall clock, UTC).

    Incident times (opened, first alert, contained, resolved), actions and decisions are
    agentwatch's own. An event is placed at the time it reached agentwatch's input
    (``incident.observed_ms``); one without that record at its own ``ts`` (the agent's
    clock) shifted by the session's offset — the median gap between arrival and ``ts``
    over the events that have both, else the gap between the first malicious event's
    estimated arrival and its ``ts``, else none. An alert is placed when the event that
    raised it arrived. The agent's own time stays visible beside each event that differs.

    >>> from agentwatch.respond.incident_record import example_incident
    >>> clock = IncidentClock(example_incident())
    >>> clock.offset_ms, clock.event(example_incident().events[0]) == example_incident().events[0].ts_ms
    (0, True)
    """

    def __init__(self, incident: IncidentRecord) -> None:
        observed = incident.observed_ms
        gaps = [observed[e.event_id] - e.ts_ms for e in incident.events if e.event_id in observed]
        supporting = {eid for alert in incident.alerts for eid in alert.event_ids}
        first_ts = min((e.ts_ms for e in incident.events if e.event_id in supporting), default=None)
        if gaps:
            self.offset_ms = int(statistics.median_low(gaps))
        elif first_ts is not None and incident.first_malicious_ts_ms is not None:
            self.offset_ms = incident.first_malicious_ts_ms - first_ts
        else:
            self.offset_ms = 0
        self._observed = observed

    def event(self, event: AuditEvent) -> int:
        return self._observed.get(event.event_id, event.ts_ms + self.offset_ms)

    def alert(self, alert: Alert) -> int:
        return alert.observed_ms if alert.observed_ms > 0 else alert.first_ts_ms + self.offset_ms


def postmortem_context(incident: IncidentRecord, evidence_path: Path | None) -> dict[str, Any]:
    """The variables the template sees. Agent text is left raw: the template escapes it."""
    clock = IncidentClock(incident)
    alerts = sorted(incident.alerts, key=lambda a: (-SEVERITY_RANK.get(a.severity, -1), a.first_ts_ms, a.detector))
    frame = timeline_frame(incident)
    return {
        "incident": incident,
        "opened": rfc3339_ms(incident.opened_ms),
        "contained": _when(incident.contained_ms),
        "resolved": _when(incident.resolved_ms),
        "first_malicious": _when(incident.first_malicious_ts_ms, "unknown"),
        "first_alert": _when(incident.first_alert_ts_ms, "unknown"),
        "time_to_detect": _seconds(incident.first_malicious_ts_ms, incident.first_alert_ts_ms, "unknown"),
        "time_to_contain": _seconds(incident.first_malicious_ts_ms, incident.contained_ms, "not yet contained")
        if incident.contained_ms is not None
        else "not yet contained",
        "alerts": [
            {
                "detector": a.detector,
                "category": a.category,
                "severity": a.severity,
                "score": f"{a.score:.2f}",
                "mode": a.mode,
                "first": rfc3339_ms(clock.alert(a)),
                "summary": a.summary,
                "reasons": "; ".join(a.reasons),
            }
            for a in alerts
        ],
        "detectors": [a.detector for a in alerts],
        "impact": blast_radius(incident.events, incident),
        "timeline": frame[["time", "source", "what"]].to_dict("records"),
        "timeline_omitted": int(frame.attrs.get("omitted_events", 0)),
        "actions": [
            {
                "step": a.step,
                "action": a.action,
                "status": a.status,
                "actor": a.actor,
                "started": _when(a.started_ms, "—"),
                "finished": _when(a.finished_ms, "—"),
                "result": _compact(redact_obj(a.result)) if a.result else "",
                "error": a.error or "",
            }
            for a in incident.actions
        ],
        "evidence": _evidence(evidence_path),
        "svg_name": SVG_NAME,
        "version": None,
        "agent_clock_offset": _offset_text(clock.offset_ms),
    }


def timeline_frame(incident: IncidentRecord) -> pd.DataFrame:
    """Events, alerts, actions and decisions/status changes/notes as one frame in time order,
    on one clock (:class:`IncidentClock`).

    Columns: ``ts_ms``, ``time`` (RFC 3339 UTC, ms), ``source`` (what kind of row and
    whose), ``what``. Ties keep the order event, alert, action, decision, status, note.
    ``frame.attrs["omitted_events"]`` counts events left out past
    :data:`MAX_TIMELINE_EVENTS`.

    >>> from agentwatch.respond.incident_record import example_incident
    >>> frame = timeline_frame(example_incident())
    >>> frame["source"].tolist()[3:6]
    ['event · agent:coder-7', 'alert · agentwatch', 'decision · human:bob']
    """
    clock = IncidentClock(incident)
    supporting = {eid for alert in incident.alerts for eid in alert.event_ids}
    events, omitted = _pick_events(incident.events, supporting)
    rows: list[dict[str, Any]] = []
    for ev in events:
        what = f"{ev.kind} {ev.tool or ''}: {ev.target or ''}".replace(" :", ":")
        if ev.outcome and ev.outcome != "ok":
            what += f" ({ev.outcome})"
        if ev.event_id in supporting:
            what += " [supports an alert]"
        at = clock.event(ev)
        if abs(at - ev.ts_ms) >= 1000:
            what += f" [agent clock {rfc3339_ms(ev.ts_ms)}]"
        rows.append(_row(at, "event", f"agent:{ev.agent_id}", what))
    for alert in incident.alerts:
        what = f"{alert.severity} {alert.detector} (score {alert.score:.2f}): {alert.summary}"
        rows.append(_row(clock.alert(alert), "alert", "agentwatch", what))
    for action in incident.actions:
        label = f"{action.step}: {action.action}"
        if action.started_ms is not None:
            rows.append(_row(action.started_ms, "action", action.actor, f"{label} started"))
        if action.finished_ms is not None:
            end = f"{label} {action.status}" + (f": {action.error}" if action.error else "")
            rows.append(_row(action.finished_ms, "action", action.actor, end))
    for entry in incident.timeline:
        if entry.kind in ("decision", "status", "note"):
            rows.append(_row(entry.ts_ms, entry.kind, entry.actor, entry.text))
    frame = pd.DataFrame(rows, columns=["ts_ms", "order", "seq", "source", "what"])
    frame["seq"] = range(len(frame))
    frame = frame.sort_values(["ts_ms", "order", "seq"], kind="stable").reset_index(drop=True)
    frame["time"] = [rfc3339_ms(int(ts)) for ts in frame["ts_ms"]]
    frame = frame[["ts_ms", "time", "source", "what"]]
    frame.attrs["omitted_events"] = omitted
    return frame


def blast_radius(events: list[AuditEvent], incident: IncidentRecord | None = None) -> dict[str, list[str]]:
    """What the session touched, from its events (secrets redacted before extraction).

    Keys: ``resources`` (files and paths), ``destinations`` (URLs), ``domains``,
    ``recipients`` (every email address seen in targets and args), ``principals``,
    ``tools`` (``"Bash ×3"``). Each list is capped at :data:`MAX_LISTED` with a final ``"… and N more"``.

    >>> from agentwatch.respond.incident_record import example_incident
    >>> radius = blast_radius(example_incident().events)
    >>> radius["resources"], radius["domains"], radius["tools"]
    (['/srv/app', '/srv/app/.env'], ['paste.example.net'], ['Bash ×1', 'Read ×2', 'WebFetch ×1'])
    """
    resources: dict[str, None] = {}
    urls: dict[str, None] = {}
    recipients: dict[str, None] = {}
    principals: dict[str, None] = {}
    tools: Counter[str] = Counter()
    if incident is not None and incident.principal:
        principals[incident.principal] = None
    for ev in events:
        if ev.principal:
            principals[ev.principal] = None
        if ev.tool:
            tools[ev.tool] += 1
        target = redact(ev.target or "")
        if ev.tool and _FILE_TOOLS.match(ev.tool) and target and "://" not in target:
            resources[target.strip()] = None
        for key, value in (redact_obj(ev.args) or {}).items():
            if key.lower() in _PATH_ARGS and isinstance(value, str) and value:
                resources[value.strip()] = None
        text = f"{target} {redact(ev.args_text())}"
        for m in _URL.finditer(text):
            urls[m.group().rstrip(".,;:!?")] = None
        without_urls = _URL.sub(" ", text)
        for m in _ABS_PATH.finditer(without_urls):
            resources[m.group().rstrip(".,;:")] = None
        for m in _EMAIL.finditer(without_urls):
            recipients[m.group()] = None
    if incident is not None:
        for alert in incident.alerts:
            if alert.principal:
                principals[alert.principal] = None
    domains = {host: None for url in urls if (host := _host(url))}
    return {
        "resources": _cap(sorted(resources)),
        "destinations": _cap(sorted(urls)),
        "domains": _cap(sorted(domains)),
        "recipients": _cap(sorted(recipients)),
        "principals": _cap(sorted(principals)),
        "tools": _cap([f"{tool} ×{n}" for tool, n in sorted(tools.items())]),
    }


def render_timeline_svg(incident: IncidentRecord, width: int = 960, height: int = 200) -> str:
    """A small SVG timeline: event ticks (grey), alerts (red diamonds), actions (blue
    squares), containment (green line). Labels are redacted and XML-escaped.

    >>> import xml.etree.ElementTree as ET
    >>> from agentwatch.respond.incident_record import example_incident
    >>> ET.fromstring(render_timeline_svg(example_incident())).tag
    '{http://www.w3.org/2000/svg}svg'
    """
    left, right, axis_y = 70.0, 50.0, 120.0
    clock = IncidentClock(incident)
    stamps = [clock.event(ev) for ev in incident.events] + [clock.alert(a) for a in incident.alerts]
    stamps += [t for a in incident.actions for t in (a.started_ms, a.finished_ms) if t is not None]
    stamps += [t for t in (incident.contained_ms, incident.opened_ms) if t is not None]
    t0, t1 = min(stamps), max(stamps)
    span = max(t1 - t0, 1)

    def x(ts: int) -> str:
        return f"{left + (ts - t0) / span * (width - left - right):.1f}"

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f"<title>Incident timeline: {_xml(incident.incident_id, 80)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        '<g font-size="10">'
        '<line x1="10" y1="16" x2="10" y2="26" stroke="#999999" stroke-width="1.5"/>'
        '<text x="16" y="25">event</text>'
        '<polygon points="66,15 71,21 66,27 61,21" fill="#d62728"/><text x="76" y="25">alert</text>'
        '<rect x="116" y="16" width="10" height="10" fill="#1f77b4"/><text x="131" y="25">action</text>'
        '<line x1="180" y1="14" x2="180" y2="28" stroke="#2ca02c" stroke-width="2"/>'
        '<text x="186" y="25">contained</text></g>',
        f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="#333333"/>',
        f'<text x="{left}" y="{height - 12}" text-anchor="start">{rfc3339_ms(t0)}</text>',
        f'<text x="{width - right}" y="{height - 12}" text-anchor="end">{rfc3339_ms(t1)} '
        f"(+{(t1 - t0) / 1000:.3f} s)</text>",
        '<g stroke="#999999" stroke-width="1">',
    ]
    for ev in incident.events:
        at = clock.event(ev)
        label = _xml(f"{rfc3339_ms(at)} {ev.kind} {ev.tool or ''} {redact(ev.target or '')}", 160)
        out.append(
            f'<line x1="{x(at)}" y1="{axis_y - 10}" x2="{x(at)}" y2="{axis_y + 10}"><title>{label}</title></line>'
        )
    out.append("</g>")
    if incident.contained_ms is not None:
        cx = x(incident.contained_ms)
        out.append(
            f'<line x1="{cx}" y1="40" x2="{cx}" y2="{axis_y + 45}" stroke="#2ca02c" stroke-width="2">'
            f"<title>contained {rfc3339_ms(incident.contained_ms)}</title></line>"
            f'<text x="{cx}" y="38" text-anchor="middle" fill="#2ca02c">contained</text>'
        )
    lanes = _LabelLanes(left=4.0, right=width - 4.0)
    for alert in sorted(incident.alerts, key=lambda a: (clock.alert(a), a.detector)):
        ax = float(x(clock.alert(alert)))
        label = _xml(f"{alert.severity} {alert.detector}: {redact(alert.summary)}", 160)
        out.append(
            f'<polygon points="{ax:.1f},{axis_y - 38:.1f} {ax + 7:.1f},{axis_y - 30:.1f} '
            f'{ax:.1f},{axis_y - 22:.1f} {ax - 7:.1f},{axis_y - 30:.1f}" fill="#d62728">'
            f"<title>{label}</title></polygon>"
        )
        name = alert.detector[:32]
        placed = lanes.place(name, ax)
        if placed is not None:  # no free lane: the diamond's tooltip still names it
            lx, lane = placed
            out.append(
                f'<text x="{lx:.1f}" y="{axis_y - 44 - lane * LABEL_LANE_PX:.1f}" text-anchor="middle" '
                f'fill="#d62728">{_xml(name, 32)}</text>'
            )
    for action in incident.actions:
        for ts in (action.started_ms, action.finished_ms):
            if ts is None:
                continue
            sx = float(x(ts))
            label = _xml(f"{action.step}: {action.action} ({action.status}) by {action.actor}", 160)
            out.append(
                f'<rect x="{sx - 5:.1f}" y="{axis_y + 20:.1f}" width="10" height="10" fill="#1f77b4">'
                f"<title>{label}</title></rect>"
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


#: Alert labels in the timeline image: estimated width per character (11 px sans-serif, generous)
#: and the lanes stacked above the axis before a label is left to the tooltip.
LABEL_CHAR_PX: Final = 7.0
LABEL_LANE_PX: Final = 13.0
LABEL_LANES: Final = 3


class _LabelLanes:
    """Places centred labels left to right in the first lane where they overlap nothing.

    >>> lanes = _LabelLanes(0, 500)
    >>> lanes.place("secret_access", 100.0), lanes.place("rates", 110.0), lanes.place("novelty", 400.0)
    ((100.0, 0), (110.0, 1), (400.0, 0))
    """

    def __init__(self, left: float, right: float) -> None:
        self.left, self.right = left, right
        self._ends = [left - 1.0] * LABEL_LANES  # right edge of the last label in each lane

    def place(self, text: str, centre: float) -> tuple[float, int] | None:
        half = len(text) * LABEL_CHAR_PX / 2 + 2.0
        centre = min(max(centre, self.left + half), self.right - half)  # kept inside the image
        for lane, end in enumerate(self._ends):
            if centre - half > end:
                self._ends[lane] = centre + half
                return centre, lane
        return None


def _offset_text(offset_ms: int) -> str:
    """The agent clock's offset from agentwatch's, for the template ('' when under a second)."""
    if abs(offset_ms) < 1000:
        return ""
    ahead = "behind" if offset_ms > 0 else "ahead of"
    return f"{abs(offset_ms) / 1000:,.3f} s {ahead}"


def _row(ts_ms: int, kind: str, actor: str, what: str) -> dict[str, Any]:
    return {
        "ts_ms": ts_ms,
        "order": _SOURCE_ORDER.get(kind, 9),
        "seq": 0,
        "source": f"{kind} · {actor}",
        "what": what,
    }


def _pick_events(events: list[AuditEvent], supporting: set[str]) -> tuple[list[AuditEvent], int]:
    if len(events) <= MAX_TIMELINE_EVENTS:
        return events, 0
    keep = {i for i, ev in enumerate(events) if ev.event_id in supporting}
    for i in range(len(events)):
        if len(keep) >= MAX_TIMELINE_EVENTS:
            break
        keep.add(i)
    kept = [ev for i, ev in enumerate(events) if i in keep]
    return kept, len(events) - len(kept)


def _evidence(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    digest_file = path / MANIFEST_DIGEST
    fields = digest_file.read_text("ascii", "replace").split() if digest_file.is_file() else []
    check = verify_bundle(path)
    return {
        "path": str(path),
        "digest": fields[0] if fields else "unavailable (no manifest.sha256)",
        "verified": check.ok,
        "problems": check.problems,
    }


def _when(ts_ms: int | None, missing: str = "not yet") -> str:
    return rfc3339_ms(ts_ms) if ts_ms is not None else missing


def _seconds(start_ms: int | None, end_ms: int | None, missing: str) -> str:
    if start_ms is None or end_ms is None:
        return missing
    return f"{(end_ms - start_ms) / 1000:.3f} s"


def _compact(obj: Any) -> str:
    return msgspec.json.encode(obj, order="sorted").decode()


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _cap(items: list[str]) -> list[str]:
    if len(items) <= MAX_LISTED:
        return items
    return [*items[:MAX_LISTED], f"… and {len(items) - MAX_LISTED} more"]


def _xml(text: str, limit: int) -> str:
    text = _XML_INVALID.sub("\ufffd", text)
    if len(text) > limit:
        text = text[:limit] + "…"
    return _xml_escape(text, {'"': "&quot;"})
