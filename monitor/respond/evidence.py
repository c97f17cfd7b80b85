"""Tamper-evident evidence bundles: one directory per incident, digests in a manifest.

Layout of ``root/<incident_id>/`` (the id sanitised by :func:`safe_dirname`)::

    events.jsonl           raw journal, UNREDACTED (forensic copy), one event per line
    events.redacted.jsonl  the same with secrets redacted, for sharing
    alerts.jsonl           alerts with reasons and scores
    actions.json           {"actions": [ActionRecord...], "decisions": [TimelineEntry...]}
    detector_context.json  what the detectors knew
    summary.md             human-readable, redacted and Markdown-escaped
    manifest.json          {"algorithm", "created_ms", "files": {name: {"bytes", "sha256"}}, "incident_id"}
    manifest.sha256        "<sha256 of manifest.json's bytes>  manifest.json" (``sha256sum -c`` format)

Every file is a pure function of the :class:`IncidentRecord` (JSON with sorted keys,
``created_ms`` is the incident's ``opened_ms``), so writing the same record twice
yields the same bytes. An existing bundle is never changed: when the record has moved
on (new events, actions), :func:`write_bundle` writes the next version beside it,
``root/<incident_id>/v2/``, ``v3/`` …, and says which in its :class:`BundleResult`.
A bundle is staged in a temporary directory under ``root`` and renamed into place,
so a reader never sees half a bundle. A staging directory is named after its writer
(``.staging-<host>-<pid>-…``); one left by a crash holds unredacted events, so
:func:`clean_staging` removes those whose writer is gone (or, owner unknown, older than
:data:`STAGING_GRACE_S`) — before every new bundle and when the responder starts.

The manifest digest is only tamper-evident if it is also kept somewhere else: record
``BundleResult.digest`` with the incident (``collect_evidence`` keeps it in the store;
the postmortem quotes it too). :func:`verify_recorded` checks a bundle against those
records — the digest and the incident — because whoever can edit a bundle can also
rewrite both of its manifest files, or swap in another incident's intact bundle.

>>> import tempfile
>>> from agentwatch.respond.incident_record import example_incident
>>> tmp = tempfile.TemporaryDirectory()
>>> root = Path(tmp.name)
>>> first = write_bundle(example_incident(), root)
>>> first.created, first.version, first.path == root / "inc-sess-42"
(True, 1, True)
>>> write_bundle(example_incident(), root) == first._replace(created=False)
True
>>> verify_bundle(first.path)
VerifyResult(ok=True, problems=[])
>>> tmp.cleanup()
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Final, NamedTuple

import msgspec

from agentwatch.events.audit_event import rfc3339_ms
from agentwatch.respond.incident_record import IncidentRecord
from agentwatch.respond.markdown import escape_md, md_table
from agentwatch.respond.redaction import redact, redact_obj

ALGORITHM: Final = "sha256"
MANIFEST: Final = "manifest.json"
MANIFEST_DIGEST: Final = "manifest.sha256"
#: The content files of a bundle, in the order they are written.
CONTENT_FILES: Final = (
    "events.jsonl",
    "alerts.jsonl",
    "actions.json",
    "detector_context.json",
    "summary.md",
    "events.redacted.jsonl",
)
TARGET_CHARS: Final = 200
_VERSION_DIR: Final = re.compile(r"v([2-9]|[1-9][0-9]+)")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")
STAGING_PREFIX: Final = ".staging-"
#: A staging directory whose owner cannot be checked is an orphan once this old (a bundle takes seconds).
STAGING_GRACE_S: Final = 600.0
_STAGING_OWNER: Final = re.compile(r"\.staging-([0-9a-f]{8})-([0-9]{1,10})-")
_HOST_TAG: Final = hashlib.sha256(socket.gethostname().encode("utf-8", "surrogatepass")).hexdigest()[:8]

log = logging.getLogger(__name__)


class BundleResult(NamedTuple):
    """Where the bundle for a record is, and whether this call wrote it.

    ``version`` is 1 for ``root/<id>/`` and N for ``root/<id>/vN/``; ``digest`` is the
    SHA-256 of its ``manifest.json``.
    """

    path: Path
    created: bool
    version: int
    digest: str


class VerifyResult(NamedTuple):
    """``ok`` when nothing is missing, added or changed; ``problems`` says what is."""

    ok: bool
    problems: list[str]


def safe_dirname(incident_id: str) -> str:
    """A directory name for ``incident_id``: itself when already safe, else sanitised.

    A sanitised name gets a short digest of the original, so two ids that sanitise
    alike still get different directories.

    >>> safe_dirname("inc-42")
    'inc-42'
    >>> safe_dirname("../../etc/passwd")
    'etc_passwd-3754d6cb'
    """
    clean = _UNSAFE.sub("_", incident_id).strip("._")[:128]
    if clean == incident_id and clean not in ("", ".", ".."):
        return clean
    tag = hashlib.sha256(incident_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{clean}-{tag}" if clean else f"incident-{tag}"


def bundle_files(incident: IncidentRecord) -> dict[str, bytes]:
    """Every file of the bundle for ``incident``, by name, as the bytes to write.

    >>> from agentwatch.respond.incident_record import example_incident
    >>> files = bundle_files(example_incident())
    >>> sorted(files) == sorted((*CONTENT_FILES, MANIFEST, MANIFEST_DIGEST))
    True
    >>> b"wJalrXUtnFEMI" in files["events.jsonl"], b"wJalrXUtnFEMI" in files["events.redacted.jsonl"]
    (True, False)
    """
    natives = [ev.to_native() for ev in incident.events]
    files: dict[str, bytes] = {
        "events.jsonl": _jsonl(natives),
        "alerts.jsonl": _jsonl(incident.alerts),
        "actions.json": _json(
            {
                "actions": incident.actions,
                "decisions": [entry for entry in incident.timeline if entry.kind == "decision"],
            }
        ),
        "detector_context.json": _json(incident.detector_context),
        "summary.md": render_summary(incident).encode("utf-8"),
        "events.redacted.jsonl": _jsonl([redact_obj(n) for n in natives]),
    }
    manifest = {
        "algorithm": ALGORITHM,
        "created_ms": incident.opened_ms,
        "files": {name: {"bytes": len(data), "sha256": _sha256(data)} for name, data in files.items()},
        "incident_id": incident.incident_id,
    }
    files[MANIFEST] = _json(manifest)
    files[MANIFEST_DIGEST] = f"{_sha256(files[MANIFEST])}  {MANIFEST}\n".encode()
    return files


def write_bundle(incident: IncidentRecord, root: Path) -> BundleResult:
    """Write the evidence bundle for ``incident`` under ``root``; never alter an existing one.

    Returns the existing bundle (``created=False``) when one with exactly this content
    is there and verifies. Otherwise writes a new one: ``root/<id>/`` if free, else the
    next free ``root/<id>/vN/`` (an earlier version that no longer verifies is left as
    found, for whoever investigates the tampering).

    Safe against concurrent writers of the same incident: the rename into place fails
    for all but one, and the losers re-examine what is now there.
    """
    files = bundle_files(incident)
    digest = _sha256(files[MANIFEST])
    root.mkdir(parents=True, exist_ok=True)
    clean_staging(root)
    base = root / safe_dirname(incident.incident_id)
    version = 1
    while True:
        target = base if version == 1 else base / f"v{version}"
        if _is_free(target):
            if _install(files, root, target):
                return BundleResult(target, True, version, digest)
            continue  # lost a race for this name: look at what the winner wrote
        if _recorded_digest(target) == digest and verify_bundle(target).ok:
            return BundleResult(target, False, version, digest)
        version += 1


def verify_bundle(path: Path) -> VerifyResult:
    """Check a bundle against its manifest and the manifest against ``manifest.sha256``.

    Problems are named by file: ``"events.jsonl: digest mismatch"``,
    ``"manifest.json: digest mismatch (manifest.sha256)"``, ``"missing file: alerts.jsonl"``,
    ``"unexpected file: x.txt"``. Version subdirectories (``v2/`` …) are not part of the
    bundle they sit in and are not reported.
    """
    problems: list[str] = []
    manifest_bytes = _read(path / MANIFEST)
    recorded = _read(path / MANIFEST_DIGEST)
    if manifest_bytes is None:
        problems.append(f"missing file: {MANIFEST}")
    if recorded is None:
        problems.append(f"missing file: {MANIFEST_DIGEST}")
    elif manifest_bytes is not None:
        fields = recorded.decode("ascii", "replace").split()
        if not fields or fields[0].lower() != _sha256(manifest_bytes):
            problems.append(f"{MANIFEST}: digest mismatch ({MANIFEST_DIGEST})")
    listed: dict[str, Any] = {}
    if manifest_bytes is not None:
        listed = _manifest_files(manifest_bytes, problems)
    for name, entry in sorted(listed.items()):
        data = _read(path / name)
        if data is None:
            problems.append(f"missing file: {name}")
        elif not isinstance(entry, dict) or entry.get("sha256") != _sha256(data) or entry.get("bytes") != len(data):
            problems.append(f"{name}: digest mismatch")
    if manifest_bytes is not None:
        for name in CONTENT_FILES:
            if name not in listed:
                problems.append(f"{MANIFEST}: does not list {name}")
    known = {*listed, MANIFEST, MANIFEST_DIGEST}
    for child in sorted(path.iterdir()) if path.is_dir() else []:
        if child.name in known:
            continue
        if child.is_dir() and not child.is_symlink() and _VERSION_DIR.fullmatch(child.name):
            continue
        problems.append(f"unexpected file: {child.name}{'/' if child.is_dir() else ''}")
    if not path.is_dir():
        problems.insert(0, f"not a directory: {path}")
    return VerifyResult(not problems, problems)


class EvidenceRecord(NamedTuple):
    """What the store kept when a bundle was written (a ``collect_evidence`` step's result)."""

    incident_id: str
    path: str
    version: int
    digest: str


class RecordedVerdict(NamedTuple):
    """:func:`verify_recorded`'s answer. ``known`` is ``False`` when no record covers the
    bundle: then ``ok`` is ``False`` too, and nothing can be said about tampering."""

    ok: bool
    known: bool
    problems: list[str]
    incident_id: str | None
    digest: str | None
    recorded_digest: str | None


def bundle_claims(path: Path) -> tuple[str | None, str]:
    """The incident ``path``'s manifest names (``None`` if unreadable) and the directory name
    that places it (``<id>/`` or, for a ``vN/`` bundle, its parent)."""
    incident_id = None
    data = _read(path / MANIFEST)
    if data is not None:
        try:
            manifest = msgspec.json.decode(data)
        except msgspec.DecodeError:
            manifest = None
        if isinstance(manifest, dict) and isinstance(manifest.get("incident_id"), str):
            incident_id = manifest["incident_id"]
    base = path.parent if _VERSION_DIR.fullmatch(path.name) else path
    return incident_id, base.name


def verify_recorded(path: Path, records: list[EvidenceRecord]) -> RecordedVerdict:
    """Check a bundle against itself (:func:`verify_bundle`) *and* against ``records``,
    the store's evidence records for the incidents the bundle could be.

    The bundle's ``manifest.json`` must hash to the digest the store kept — for the
    record written at this path, or (a copy elsewhere) one of its incident's records —
    and the incident must agree everywhere: the manifest's ``incident_id``, the store's
    record for this path, and the incident directory the bundle sits in.
    """
    own = verify_bundle(path)
    problems = list(own.problems)
    incident_id, dirname = bundle_claims(path)
    data = _read(path / MANIFEST)
    digest = _sha256(data) if data is not None else None
    here = path.resolve()
    at_path = [r for r in records if Path(r.path).resolve() == here]
    for_incident = [r for r in records if r.incident_id == incident_id]
    if not at_path and not for_incident:
        return RecordedVerdict(False, False, problems, incident_id, digest, None)
    recorded: str | None = None
    for record in at_path:
        recorded = record.digest
        if record.incident_id != incident_id:
            problems.append(
                f"{MANIFEST}: names incident {incident_id}, but the store recorded this bundle for "
                f"incident {record.incident_id}"
            )
        if record.digest != digest:
            problems.append(
                f"{MANIFEST}: sha256 {_short(digest)} differs from {_short(record.digest)}, which the "
                f"store recorded for incident {record.incident_id} (v{record.version})"
            )
    if not at_path:
        matching = [r for r in for_incident if r.digest == digest]
        recorded = (matching or for_incident)[0].digest
        if not matching:
            kept = ", ".join(f"v{r.version} {_short(r.digest)}" for r in for_incident)
            problems.append(
                f"{MANIFEST}: sha256 {_short(digest)} matches none the store recorded for incident "
                f"{incident_id} ({kept})"
            )
    placed = {r.incident_id for r in records if safe_dirname(r.incident_id) == dirname} - {incident_id}
    for other in sorted(placed):
        problems.append(
            f"{MANIFEST}: names incident {incident_id}, but the bundle sits in {dirname}/, the "
            f"directory of incident {other}"
        )
    return RecordedVerdict(not problems, True, problems, incident_id, digest, recorded)


def staging_prefix(pid: int | None = None) -> str:
    """The name prefix of a staging directory written by ``pid`` (default: this process) on this host."""
    return f"{STAGING_PREFIX}{_HOST_TAG}-{os.getpid() if pid is None else pid}-"


def clean_staging(root: Path, grace_s: float = STAGING_GRACE_S, now: float | None = None) -> int:
    """Remove orphaned staging directories under ``root``; return how many.

    An orphan is one whose writer (named in it: this host, a pid) is no longer running,
    or any — whoever wrote it, another host's process or a reused pid — not modified for
    ``grace_s`` seconds (a bundle is written in seconds; a writer that stalls that long
    fails its step, which is retried). What it holds (unredacted events) goes with it.
    """
    if not root.is_dir():
        return 0
    now = time.time() if now is None else now
    removed = 0
    for child in root.iterdir():
        if not child.name.startswith(STAGING_PREFIX) or child.is_symlink() or not child.is_dir():
            continue
        owner = _STAGING_OWNER.match(child.name)
        try:
            writer_gone = owner is not None and owner.group(1) == _HOST_TAG and not _alive(int(owner.group(2)))
            if writer_gone or now - child.stat().st_mtime > grace_s:
                shutil.rmtree(child)
                removed += 1
        except FileNotFoundError:
            continue  # its writer renamed it into place, or another cleaner was first
        except OSError as exc:
            log.warning("could not remove the orphaned evidence staging directory %s: %s", child, exc)
    if removed:
        log.warning(
            "removed %d orphaned evidence staging director%s under %s (left by a crashed writer)",
            removed,
            "y" if removed == 1 else "ies",
            root,
        )
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except (OverflowError, OSError):
        return False
    return True


def _short(digest: str | None) -> str:
    return f"{digest[:16]}…" if digest else "(no manifest)"


def render_summary(incident: IncidentRecord) -> str:
    """``summary.md``: the incident header, its alerts and a table of its events.

    Redacted and Markdown-escaped: agent text cannot break the table, link or inject
    HTML, and a secret in an identifier (session, agent, principal, event id, tool) is
    redacted like one in a target. Targets are cut to :data:`TARGET_CHARS` characters
    (after redaction).
    """

    def e(text: object, limit: int | None = None) -> str:
        return escape_md(redact(text if isinstance(text, str) else str(text or "")), limit)

    lines = [
        f"# Evidence bundle: incident {e(incident.incident_id)}",
        "",
        f"- **Session:** {e(incident.session_id)}",
        f"- **Agent:** {e(incident.agent_id)}",
        f"- **Principal:** {e(incident.principal) or 'unknown'}",
        f"- **Severity:** {e(incident.severity)}",
        f"- **Status:** {e(incident.status)}",
        f"- **Opened:** {rfc3339_ms(incident.opened_ms)}",
        f"- **Contained:** {_when(incident.contained_ms)}",
        f"- **Resolved:** {_when(incident.resolved_ms)}",
        f"- **Events:** {len(incident.events)}; **alerts:** {len(incident.alerts)}",
        "",
        "This view is redacted. `events.jsonl` is the unredacted forensic copy; "
        "`events.redacted.jsonl` is safe to share. Digests are in `manifest.json`.",
        "",
        "## Alerts",
        "",
    ]
    if not incident.alerts:
        lines.append("No alerts.")
    for alert in incident.alerts:
        lines.append(
            f"- **{e(alert.detector)}** ({e(alert.category)}): severity {e(alert.severity)}, "
            f"score {alert.score:.2f}, first at {rfc3339_ms(alert.first_ts_ms)}. "
            f"{e(alert.summary, 500)}"
        )
        lines.extend(f"  - {e(reason, 500)}" for reason in alert.reasons)
    lines += ["", "## Events", ""]
    rows = [
        [
            str(i),
            rfc3339_ms(ev.ts_ms),
            e(ev.event_id, 64),
            e(ev.kind, 64),
            e(ev.tool, 64),
            e(ev.target or "", TARGET_CHARS),
        ]
        for i, ev in enumerate(incident.events, 1)
    ]
    lines.append(md_table(["#", "time (UTC)", "event", "kind", "tool", "target"], rows) if rows else "No events.")
    return "\n".join(lines) + "\n"


def _when(ts_ms: int | None) -> str:
    return rfc3339_ms(ts_ms) if ts_ms is not None else "not yet"


def _json(obj: Any) -> bytes:
    return msgspec.json.format(msgspec.json.encode(obj, order="sorted"), indent=2) + b"\n"


def _jsonl(items: list[Any]) -> bytes:
    return b"".join(msgspec.json.encode(item, order="sorted") + b"\n" for item in items)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _recorded_digest(path: Path) -> str | None:
    data = _read(path / MANIFEST_DIGEST)
    fields = data.decode("ascii", "replace").split() if data else []
    return fields[0].lower() if fields else None


def _manifest_files(manifest_bytes: bytes, problems: list[str]) -> dict[str, Any]:
    """The manifest's ``files`` map, keeping only plain file names (no paths)."""
    try:
        manifest = msgspec.json.decode(manifest_bytes)
    except msgspec.DecodeError as exc:
        problems.append(f"{MANIFEST}: unreadable ({exc})")
        return {}
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        problems.append(f"{MANIFEST}: no files map")
        return {}
    if manifest.get("algorithm") != ALGORITHM:
        problems.append(f"{MANIFEST}: unsupported algorithm {manifest.get('algorithm')!r}")
    safe = {}
    for name, entry in files.items():
        if name in ("", ".", "..") or "/" in name or "\\" in name or name in (MANIFEST, MANIFEST_DIGEST):
            problems.append(f"{MANIFEST}: invalid file name {name!r}")
        else:
            safe[name] = entry
    return safe


def _is_free(target: Path) -> bool:
    """Nothing at ``target``, or an empty directory (which a rename may replace)."""
    if not target.exists():
        return not target.is_symlink()
    return target.is_dir() and not target.is_symlink() and not any(target.iterdir())


def _install(files: dict[str, bytes], root: Path, target: Path) -> bool:
    """Stage ``files`` in a temporary directory under ``root`` and rename it to ``target``.

    Returns ``False`` when ``target`` was taken in the meantime.
    """
    staging = Path(tempfile.mkdtemp(prefix=staging_prefix(), dir=root))
    try:
        for name, data in files.items():
            atomic_write(staging / name, data)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staging, target)
        except OSError:
            if target.exists():  # ENOTEMPTY / EEXIST: another writer won
                return False
            raise
        _fsync_dir(target.parent)
        return True
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
