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
so a reader never sees half a bundle.

The manifest digest is only tamper-evident if it is also kept somewhere else: record
``BundleResult.digest`` with the incident (the postmortem quotes it too).

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
import os
import re
import shutil
import tempfile
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
        elif (
            not isinstance(entry, dict)
            or entry.get("sha256") != _sha256(data)
            or entry.get("bytes") != len(data)
        ):
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


def render_summary(incident: IncidentRecord) -> str:
    """``summary.md``: the incident header, its alerts and a table of its events.

    Redacted and Markdown-escaped: agent text cannot break the table, link or inject
    HTML. Targets are cut to :data:`TARGET_CHARS` characters (after redaction).
    """
    e = escape_md
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
            f"{e(redact(alert.summary), 500)}"
        )
        lines.extend(f"  - {e(redact(reason), 500)}" for reason in alert.reasons)
    lines += ["", "## Events", ""]
    rows = [
        [
            str(i),
            rfc3339_ms(ev.ts_ms),
            e(ev.event_id, 64),
            e(ev.kind, 64),
            e(ev.tool, 64),
            e(redact(ev.target or ""), TARGET_CHARS),
        ]
        for i, ev in enumerate(incident.events, 1)
    ]
    lines.append(
        md_table(["#", "time (UTC)", "event", "kind", "tool", "target"], rows) if rows else "No events."
    )
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
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
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
