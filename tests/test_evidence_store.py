"""``evidence verify`` against the store (issue 9, item 9), and orphaned staging folders.

A bundle that agrees with its own manifest proves nothing if whoever edited it could also
rewrite the manifest: the digest the store kept when the bundle was written, and the
incident the store says the bundle belongs to, are what it is checked against.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from agentwatch.cli.main import main
from agentwatch.config import Config, MonitorSettings
from agentwatch.respond.evidence import MANIFEST, MANIFEST_DIGEST, verify_bundle, write_bundle
from agentwatch.respond.incident_record import example_incident
from agentwatch.respond.playbook_engine import load_playbooks
from agentwatch.respond.responder import Responder
from agentwatch.store import actions, open_store
from tests.conftest import write_config
from tests.test_responder import session_events as events
from tests.test_store import alert


@pytest.fixture
def deployment(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """A data dir with a store and two incidents' bundles written by the responder; its config file."""
    config = Config(monitor=MonitorSettings(data_dir=str(tmp_path / "data")))
    responder = Responder(open_store(config.store_url), load_playbooks(), config.data_dir, "agent.control")
    for session in ("s1", "s2"):
        responder.confirm(responder.prepare(events(session), [alert(session=session)]))
    responder.run_pending()
    with responder.engine.connect() as conn:
        rows = conn.execute(
            select(actions.c.incident_id, actions.c.result).where(actions.c.action == "collect_evidence")
        ).all()
    bundles = {row.incident_id: Path(row.result["path"]) for row in rows}
    assert len(bundles) == 2
    return write_config(config, tmp_path / "agentwatch.toml"), bundles


def verify(config_path: Path, bundle: Path, *extra: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config_path), "evidence", "verify", str(bundle), *extra])


def rewrite_consistently(bundle: Path, name: str, data: bytes) -> None:
    """What someone with write access does: change a file, then both manifest files to match."""
    (bundle / name).write_bytes(data)
    manifest = json.loads((bundle / MANIFEST).read_bytes())
    manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    body = msgspec.json.format(msgspec.json.encode(manifest, order="sorted"), indent=2) + b"\n"
    (bundle / MANIFEST).write_bytes(body)
    (bundle / MANIFEST_DIGEST).write_text(f"{hashlib.sha256(body).hexdigest()}  {MANIFEST}\n")


def test_an_intact_bundle_verifies_against_the_store(deployment: tuple[Path, dict[str, Path]]) -> None:
    config_path, bundles = deployment
    for bundle in bundles.values():
        result = verify(config_path, bundle)
        assert result.exit_code == 0, result.output
        assert "intact" in result.output and "store" in result.output


def test_a_consistent_rewrite_is_caught_by_the_stored_digest(deployment: tuple[Path, dict[str, Path]]) -> None:
    config_path, bundles = deployment
    incident_id, bundle = sorted(bundles.items())[0]
    lines = (bundle / "events.jsonl").read_bytes().splitlines(keepends=True)
    rewrite_consistently(bundle, "events.jsonl", b"".join(lines[:-1]))  # drop an event
    assert verify_bundle(bundle).ok  # the bundle alone cannot tell
    result = verify(config_path, bundle)
    assert result.exit_code == 1
    assert "manifest.json" in result.output and "store" in result.output and incident_id in result.output
    shown = json.loads(verify(config_path, bundle, "--json").output)
    assert shown["ok"] is False and shown["incident_id"] == incident_id
    assert shown["recorded_digest"] != shown["digest"]


def test_another_incidents_intact_bundle_swapped_in_is_caught(deployment: tuple[Path, dict[str, Path]]) -> None:
    config_path, bundles = deployment
    (first, bundle_a), (second, bundle_b) = sorted(bundles.items())
    shutil.rmtree(bundle_a)
    shutil.copytree(bundle_b, bundle_a)
    assert verify_bundle(bundle_a).ok
    result = verify(config_path, bundle_a)
    assert result.exit_code == 1
    assert first in result.output and second in result.output


def test_a_bundle_the_store_has_no_record_of_says_so_in_one_line(
    deployment: tuple[Path, dict[str, Path]], tmp_path: Path
) -> None:
    _config_path, bundles = deployment
    other = write_config(Config(monitor=MonitorSettings(data_dir=str(tmp_path / "other"))), tmp_path / "other.toml")
    open_store(Config(monitor=MonitorSettings(data_dir=str(tmp_path / "other"))).store_url)
    result = verify(other, next(iter(bundles.values())))
    assert result.exit_code not in (0, 1)  # not "intact", not "tampered": cannot tell
    [line] = result.output.strip().splitlines()
    assert "no record" in line and "hint" in line.lower()
    missing = write_config(Config(monitor=MonitorSettings(data_dir=str(tmp_path / "nowhere"))), tmp_path / "n.toml")
    result = verify(missing, next(iter(bundles.values())))
    assert result.exit_code not in (0, 1) and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "nowhere").exists()  # looking did not create an empty store


# -- orphaned staging folders ---------------------------------------------------------------
def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def staging(root: Path, name: str, age_s: float = 0.0) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "events.jsonl").write_text('{"target": "unredacted secret"}\n')
    if age_s:
        old = time.time() - age_s
        os.utime(path, (old, old))
    return path


def test_orphaned_staging_folders_are_removed_before_a_new_bundle(tmp_path: Path) -> None:
    from agentwatch.respond.evidence import staging_prefix

    root = tmp_path / "evidence"
    old = staging(root, ".staging-legacy1234", age_s=3600)  # pre-owner naming, long abandoned
    crashed = staging(root, f"{staging_prefix(dead_pid())}abcd")  # its writer is gone
    live = staging(root, f"{staging_prefix(os.getpid())}efgh")  # a writer in this process
    recent = staging(root, ".staging-legacy5678")  # unknown owner, within the grace period
    write_bundle(example_incident(), root)
    assert not old.exists() and not crashed.exists()
    assert live.exists() and recent.exists()
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".staging-")) == sorted([live.name, recent.name])


def test_responder_start_up_cleans_orphaned_staging(tmp_path: Path) -> None:
    from agentwatch.respond.evidence import staging_prefix

    data = tmp_path / "data"
    crashed = staging(data / "evidence", f"{staging_prefix(dead_pid())}abcd")
    Responder(open_store(f"sqlite:///{tmp_path / 's.db'}"), load_playbooks(), data, "agent.control")
    assert not crashed.exists()
