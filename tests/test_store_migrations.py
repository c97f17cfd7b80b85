"""The store's schema is migrated with Alembic (issue 15): every shape a store can be in
reaches the newest revision, and the migrations and the table definitions never disagree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, select, text

from agentwatch.store import (
    SCHEMA_VERSION,
    incidents,
    metadata,
    migration_head,
    open_store,
    schema_version,
    store_revision,
)

AGENTWATCH = str(Path(sys.executable).with_name("agentwatch"))


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return store_revision(conn)
    finally:
        engine.dispose()


def test_the_migrations_build_exactly_the_tables_the_code_defines(store_url: str) -> None:
    """A column added to ``agentwatch.store`` without a migration fails here, on both backends."""
    open_store(store_url).dispose()
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert diff == []
    assert _revision(store_url) == migration_head()


def test_a_store_from_before_alembic_is_brought_to_the_newest_revision_with_its_rows(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.begin() as conn:  # what agentwatch wrote before Alembic: create_all + schema_version
        metadata.create_all(conn, tables=[t for name, t in metadata.tables.items() if name != "learned_state_clock"])
        conn.execute(insert(schema_version).values(version=SCHEMA_VERSION))
        conn.execute(
            insert(incidents).values(
                incident_id="inc-old",
                group_key="g",
                session_id="s",
                agent_id="a",
                severity="high",
                status="open",
                title="kept",
                opened_ms=1,
                updated_ms=1,
                detectors=[],
                categories=[],
                mode="enforce",
            )
        )
    engine.dispose()
    assert _revision(store_url) is None
    open_store(store_url).dispose()
    engine = create_engine(store_url)
    try:
        assert "learned_state_clock" in inspect(engine).get_table_names()  # the table the old store lacked
        with engine.connect() as conn:
            assert conn.execute(select(incidents.c.title)).scalars().all() == ["kept"]
            assert conn.execute(select(schema_version.c.version)).scalars().all() == [SCHEMA_VERSION]
    finally:
        engine.dispose()
    assert _revision(store_url) == migration_head()


def test_a_store_migrated_by_a_newer_agentwatch_is_refused_with_a_hint(store_url: str) -> None:
    open_store(store_url).dispose()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_from_the_future'"))
    engine.dispose()
    with pytest.raises(RuntimeError, match="newer than this agentwatch; upgrade agentwatch"):
        open_store(store_url)


def test_store_status_and_upgrade_as_typed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {"AGENTWATCH_STORE_URL": url, "PATH": "/usr/bin:/bin"}
    before = subprocess.run([AGENTWATCH, "store", "status"], capture_output=True, text=True, env=env, timeout=60)
    assert before.returncode == 1 and "revision none" in before.stdout and "store upgrade" in before.stdout
    upgrade = subprocess.run([AGENTWATCH, "store", "upgrade"], capture_output=True, text=True, env=env, timeout=60)
    assert upgrade.returncode == 0, upgrade.stderr
    assert f"at revision {migration_head()}" in upgrade.stdout
    after = subprocess.run([AGENTWATCH, "store", "status"], capture_output=True, text=True, env=env, timeout=60)
    assert after.returncode == 0 and "up to date" in after.stdout


def test_store_upgrade_sql_prints_the_schema_for_a_dba(tmp_path: Path) -> None:
    env = {"AGENTWATCH_STORE_URL": "postgresql+psycopg://agentwatch@db.example/agentwatch", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [AGENTWATCH, "store", "upgrade", "--sql"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    created = {line.split()[2] for line in done.stdout.splitlines() if line.startswith("CREATE TABLE ")}
    assert set(metadata.tables) | {"alembic_version"} == created
    assert f"INSERT INTO alembic_version (version_num) VALUES ('{migration_head()}')" in done.stdout


def test_an_unreadable_store_is_one_line_with_a_hint(tmp_path: Path) -> None:
    env = {"AGENTWATCH_STORE_URL": f"sqlite:///{tmp_path / 'missing' / 'dir' / 'store.db'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([AGENTWATCH, "store", "status"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert "cannot read the store" in done.stderr and "hint:" in done.stderr and "Traceback" not in done.stderr
