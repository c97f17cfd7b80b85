"""Evidence bundles: layout, verification naming exactly what changed, idempotence, redaction."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgspec
import pytest

from agentwatch.events.audit_event import AuditEvent
from agentwatch.respond.evidence import (
    CONTENT_FILES,
    MANIFEST,
    MANIFEST_DIGEST,
    bundle_files,
    safe_dirname,
    verify_bundle,
    write_bundle,
)
from agentwatch.respond.incident_record import IncidentRecord, example_incident

ALL_FILES = {*CONTENT_FILES, MANIFEST, MANIFEST_DIGEST}
GH = "gh" + "p_" + "Q9w8E7r6T5y4U3i2O1p0" * 2
HOSTILE = "x | y `code` [click](javascript:alert(1)) <script>alert(1)</script> <!channel>\n| forged | row |"


def with_event(incident: IncidentRecord, **fields: object) -> IncidentRecord:
    n = len(incident.events) + 1
    last = incident.events[-1]
    base = {
        "event_id": f"e{n}",
        "ts_ms": last.ts_ms + 1000,
        "session_id": last.session_id,
        "agent_id": last.agent_id,
        "kind": "tool_call",
    }
    event = AuditEvent(**{**base, **fields})  # type: ignore[arg-type]
    return msgspec.structs.replace(incident, events=[*incident.events, event])


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_bundle(example_incident(), tmp_path).path


def test_round_trip_layout_and_manifest(tmp_path: Path) -> None:
    result = write_bundle(example_incident(), tmp_path)
    assert result.created and result.version == 1
    assert result.path == tmp_path / "inc-sess-42"
    assert {p.name for p in result.path.iterdir()} == ALL_FILES
    assert verify_bundle(result.path) == (True, [])
    manifest_bytes = (result.path / MANIFEST).read_bytes()
    manifest = json.loads(manifest_bytes)
    assert list(manifest) == sorted(manifest)
    assert manifest["algorithm"] == "sha256"
    assert manifest["created_ms"] == example_incident().opened_ms
    assert set(manifest["files"]) == set(CONTENT_FILES)
    events = (result.path / "events.jsonl").read_bytes()
    assert manifest["files"]["events.jsonl"] == {
        "bytes": len(events),
        "sha256": hashlib.sha256(events).hexdigest(),
    }
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    assert (result.path / MANIFEST_DIGEST).read_text() == f"{digest}  manifest.json\n"
    assert result.digest == digest
    lines = (result.path / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["event_id"] for line in lines] == ["e1", "e2", "e3", "e4"]
    actions = json.loads((result.path / "actions.json").read_text())
    assert [a["action"] for a in actions["actions"]] == ["terminate_session", "collect_evidence"]
    assert [d["text"] for d in actions["decisions"]] == ["approved termination"]
    alerts = [json.loads(line) for line in (result.path / "alerts.jsonl").read_text().splitlines()]
    assert alerts[0]["reasons"] and alerts[0]["score"] == 0.93
    assert not list(tmp_path.glob(".staging-*"))


@pytest.mark.parametrize("name", sorted(CONTENT_FILES))
def test_editing_any_content_file_is_named(bundle: Path, name: str) -> None:
    path = bundle / name
    path.write_bytes(path.read_bytes().replace(b"e", b"E", 1) + b" ")
    result = verify_bundle(bundle)
    assert not result.ok
    assert result.problems == [f"{name}: digest mismatch"]


def test_same_size_edit_is_caught(bundle: Path) -> None:
    path = bundle / "events.jsonl"
    data = path.read_bytes()
    path.write_bytes(data.replace(b"/srv/app/.env", b"/srv/app/.enw", 1))
    assert verify_bundle(bundle).problems == ["events.jsonl: digest mismatch"]


def test_editing_the_manifest_is_named(bundle: Path) -> None:
    path = bundle / MANIFEST
    path.write_bytes(path.read_bytes().replace(b'"created_ms": 1', b'"created_ms": 2'))
    assert verify_bundle(bundle).problems == ["manifest.json: digest mismatch (manifest.sha256)"]


def test_rewriting_manifest_to_match_an_edit_is_still_caught(bundle: Path) -> None:
    events = bundle / "events.jsonl"
    events.write_bytes(events.read_bytes() + b'{"event_id":"forged"}\n')
    manifest = json.loads((bundle / MANIFEST).read_bytes())
    data = events.read_bytes()
    manifest["files"]["events.jsonl"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    assert verify_bundle(bundle).problems == ["manifest.json: digest mismatch (manifest.sha256)"]


def test_editing_manifest_digest_file_is_named(bundle: Path) -> None:
    (bundle / MANIFEST_DIGEST).write_text("0" * 64 + "  manifest.json\n")
    assert verify_bundle(bundle).problems == ["manifest.json: digest mismatch (manifest.sha256)"]


@pytest.mark.parametrize("name", sorted(ALL_FILES))
def test_deleted_file_is_named(bundle: Path, name: str) -> None:
    (bundle / name).unlink()
    result = verify_bundle(bundle)
    assert not result.ok
    assert f"missing file: {name}" in result.problems
    if name not in (MANIFEST, MANIFEST_DIGEST):
        assert result.problems == [f"missing file: {name}"]


def test_added_file_and_directory_are_named(bundle: Path) -> None:
    (bundle / "x.txt").write_text("planted")
    (bundle / "extra").mkdir()
    assert verify_bundle(bundle).problems == ["unexpected file: extra/", "unexpected file: x.txt"]


def test_second_write_is_idempotent(tmp_path: Path) -> None:
    first = write_bundle(example_incident(), tmp_path)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in first.path.iterdir()}
    second = write_bundle(example_incident(), tmp_path)
    assert second == first._replace(created=False)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in second.path.iterdir()}
    assert after == before
    # byte-identical in a fresh root too: no wall clock, no randomness in content
    other = write_bundle(example_incident(), tmp_path / "elsewhere")
    assert {p.name: p.read_bytes() for p in other.path.iterdir()} == {k: v[0] for k, v in before.items()}


def test_changed_record_gets_a_new_version_and_old_one_is_kept(tmp_path: Path) -> None:
    first = write_bundle(example_incident(), tmp_path)
    original = {p.name: p.read_bytes() for p in first.path.iterdir() if p.is_file()}
    grown = with_event(example_incident(), tool="Bash", target="curl https://evil.example")
    second = write_bundle(grown, tmp_path)
    assert (second.created, second.version, second.path) == (True, 2, first.path / "v2")
    assert {p.name: p.read_bytes() for p in first.path.iterdir() if p.is_file()} == original
    assert verify_bundle(first.path).ok and verify_bundle(second.path).ok
    assert write_bundle(grown, tmp_path) == second._replace(created=False)
    assert write_bundle(example_incident(), tmp_path) == first._replace(created=False)
    third = write_bundle(with_event(grown, tool="Bash", target="id"), tmp_path)
    assert (third.version, third.path) == (3, first.path / "v3")


def test_tampered_bundle_is_not_overwritten(tmp_path: Path) -> None:
    first = write_bundle(example_incident(), tmp_path)
    (first.path / "summary.md").write_text("nothing to see")
    again = write_bundle(example_incident(), tmp_path)
    assert (again.created, again.version) == (True, 2)
    assert (first.path / "summary.md").read_text() == "nothing to see"


def test_secrets_only_in_the_forensic_copy(tmp_path: Path) -> None:
    incident = with_event(
        example_incident(),
        tool="Bash",
        target=f"git push https://{GH}@github.com/o/r",
        args={"password": "hunter2-pw", "cmd": "export PASSWORD=hunter2-pw"},
    )
    path = write_bundle(incident, tmp_path).path
    assert GH in (path / "events.jsonl").read_text()
    assert "hunter2-pw" in (path / "events.jsonl").read_text()
    for name in ("summary.md", "events.redacted.jsonl"):
        text = (path / name).read_text()
        assert GH not in text and "hunter2-pw" not in text, name
        assert "wJalrXUtnFEMI" not in text, name
    assert "\\[REDACTED:github\\_token\\]" in (path / "summary.md").read_text()


def test_hostile_markdown_in_targets_is_escaped(tmp_path: Path) -> None:
    incident = with_event(example_incident(), tool="Bash`|", target=HOSTILE + "A" * 500)
    summary = (write_bundle(incident, tmp_path).path / "summary.md").read_text()
    table = [line for line in summary.splitlines() if line.startswith("| ")]
    row = table[-1]
    assert row.count(" | ") == 5  # still exactly six cells: no forged columns or rows
    assert len(table) == 2 + len(incident.events)
    for bad in ("<script>", "<!channel>", "](javascript:", "[click]", "`code`", "\n| forged"):
        assert bad not in summary
    assert "&lt;script&gt;" in row and "\\[click\\]" in row and "\\`code\\`" in row
    assert "A" * 201 not in row and "…" in row  # target cut to 200 characters


def test_incident_id_is_sanitised_into_the_root(tmp_path: Path) -> None:
    incident = msgspec.structs.replace(example_incident(), incident_id="../../escape me")
    result = write_bundle(incident, tmp_path / "root")
    assert result.path.parent == tmp_path / "root"
    assert result.path.name == safe_dirname("../../escape me")
    assert verify_bundle(result.path).ok


def test_bundle_files_is_pure() -> None:
    assert bundle_files(example_incident()) == bundle_files(example_incident())
