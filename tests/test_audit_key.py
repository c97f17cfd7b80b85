"""The keyed audit chain (issue 9, item 10): editing a record and recomputing the chain no
longer verifies, because every record is sealed with HMAC-SHA256 under a key kept outside
the store."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from agentwatch.cli.main import main
from agentwatch.config import Config, MonitorSettings
from agentwatch.respond import audit_log
from agentwatch.store import audit_log as audit_table
from agentwatch.store import open_store
from tests.conftest import write_config

_canonical = msgspec.json.Encoder(order="sorted")


@pytest.fixture(autouse=True)
def no_configured_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTWATCH_AUDIT_KEY", raising=False)
    monkeypatch.delenv("AGENTWATCH_AUDIT_KEY_FILE", raising=False)


def fill(engine, n: int = 5) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        for i in range(n):
            audit_log.append(conn, "human:ana", "approval.granted", f"inc-{i}", {"n": i, "why": "ok"}, 1000 + i)


def rechain(engine, seal) -> None:  # type: ignore[no-untyped-def]
    """What someone with write access to the store does after an edit: recompute every hash."""
    with engine.begin() as conn:
        prev = bytes(32)
        for row in conn.execute(select(audit_table).order_by(audit_table.c.seq)).all():
            body = _canonical.encode([row.seq, row.ts_ms, row.actor, row.action, row.subject, row.data])
            digest = seal(prev, body)
            conn.execute(update(audit_table).where(audit_table.c.seq == row.seq).values(prev_hash=prev, hash=digest))
            prev = digest


def unkeyed(prev: bytes, body: bytes) -> bytes:
    return hashlib.sha256(prev + body).digest()


def test_an_edited_and_rechained_record_does_not_verify(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'agentwatch.db'}")
    fill(engine)
    assert audit_log.verify_chain(engine).ok
    with engine.begin() as conn:
        conn.execute(update(audit_table).where(audit_table.c.seq == 3).values(actor="human:mallory"))
    rechain(engine, unkeyed)  # the published, unkeyed construction
    verdict = audit_log.verify_chain(engine)
    assert not verdict.ok and verdict.seq == 1 and "without the key" in (verdict.problem or "")
    guessed = b"not-the-key-" * 4
    rechain(engine, lambda prev, body: hmac.new(guessed, prev + body, hashlib.sha256).digest())
    verdict = audit_log.verify_chain(engine)
    assert not verdict.ok and verdict.seq == 1 and "altered" in (verdict.problem or "")


def test_the_key_is_generated_once_outside_the_database_with_0600(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'agentwatch.db'}")
    assert audit_log.verify_chain(engine).ok  # an empty chain needs no key, and verify creates none
    assert not (tmp_path / "audit.key").exists()
    fill(engine, 2)
    key_file = tmp_path / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first = key_file.read_bytes()
    fill(engine, 2)
    assert key_file.read_bytes() == first and audit_log.verify_chain(engine).ok
    key_file.unlink()  # the key is gone: nothing can be verified, and verify says why
    verdict = audit_log.verify_chain(engine)
    assert not verdict.ok and "audit key" in (verdict.problem or "") and "AGENTWATCH_AUDIT_KEY" in verdict.problem


def test_a_configured_key_is_used_and_another_key_does_not_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'agentwatch.db'}")
    monkeypatch.setenv("AGENTWATCH_AUDIT_KEY", "k" * 40)
    fill(engine)
    assert audit_log.verify_chain(engine).ok and not (tmp_path / "audit.key").exists()
    key_file = tmp_path / "elsewhere" / "key"
    key_file.parent.mkdir()
    key_file.write_text("z" * 40 + "\n")
    monkeypatch.delenv("AGENTWATCH_AUDIT_KEY")
    monkeypatch.setenv("AGENTWATCH_AUDIT_KEY_FILE", str(key_file))
    verdict = audit_log.verify_chain(engine)
    assert not verdict.ok and verdict.seq == 1
    monkeypatch.setenv("AGENTWATCH_AUDIT_KEY", "short")
    monkeypatch.delenv("AGENTWATCH_AUDIT_KEY_FILE")
    with pytest.raises(audit_log.AuditKeyError, match="at least"):
        audit_log.verify_chain(engine)


def test_cli_verify_fails_on_a_rechained_edit_and_seal_migrates_an_unkeyed_chain(tmp_path: Path) -> None:
    config = Config(monitor=MonitorSettings(data_dir=str(tmp_path / "data")))
    config_path = write_config(config, tmp_path / "agentwatch.toml")
    engine = open_store(config.store_url)
    # A store written before the chain was keyed: records sealed with plain SHA-256.
    with engine.begin() as conn:
        prev = bytes(32)
        for seq in (1, 2, 3):
            data = {"n": seq}
            body = _canonical.encode([seq, 1000 + seq, "agentwatch", "incident.opened", f"inc-{seq}", data])
            digest = unkeyed(prev, body)
            conn.execute(
                audit_table.insert().values(
                    seq=seq,
                    ts_ms=1000 + seq,
                    actor="agentwatch",
                    action="incident.opened",
                    subject=f"inc-{seq}",
                    data=data,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest
    fill(engine, 2)  # the upgraded monitor keeps appending, keyed, onto the old chain
    runner = CliRunner()
    before = runner.invoke(main, ["--config", str(config_path), "audit", "verify"])
    assert before.exit_code == 1 and "without the key" in before.output and "audit seal" in before.output
    sealed = runner.invoke(main, ["--config", str(config_path), "audit", "seal"])
    assert sealed.exit_code == 0, sealed.output
    assert "re-sealed 5" in sealed.output
    after = runner.invoke(main, ["--config", str(config_path), "audit", "verify", "--json"])
    assert after.exit_code == 0 and msgspec.json.decode(after.output)["records"] == 6  # + the audit.sealed record
    assert runner.invoke(main, ["--config", str(config_path), "audit", "seal"]).exit_code == 0  # nothing to do
    # Now edit and rechain the old way: verify fails and seal refuses to launder it.
    with engine.begin() as conn:
        conn.execute(update(audit_table).where(audit_table.c.seq == 2).values(subject="inc-forged"))
    rechain(engine, unkeyed)
    broken = runner.invoke(main, ["--config", str(config_path), "audit", "verify"])
    assert broken.exit_code == 1 and "record 1" in broken.output
    refused = runner.invoke(main, ["--config", str(config_path), "audit", "seal"])
    assert refused.exit_code == 1 and "refus" in refused.output.lower()
