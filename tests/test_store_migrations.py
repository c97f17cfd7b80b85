"""The store's schema is migrated with Alembic (issue 15): every shape a store can be in
reaches the newest revision, and the migrations and the table definitions never disagree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text

from agentwatch.store import (
    SCHEMA_VERSION,
    incidents,
    metadata,
    migration_config,
    migration_head,
    open_store,
    schema_version,
    store_revision,
)

AGENTWATCH = str(Path(sys.executable).with_name("agentwatch"))
SECRET = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


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
    with engine.begin() as conn:  # what agentwatch wrote before Alembic: the baseline's tables, no alembic_version
        command.upgrade(migration_config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("DROP TABLE learned_state_clock"))  # a table added later without a version bump
        legacy = sa.table("incidents", *(sa.column(c) for c in ("incident_id", "group_key", "session_id",
                          "agent_id", "severity", "status", "title", "opened_ms", "updated_ms", "detectors",
                          "categories", "mode")))  # fmt: skip
        conn.execute(
            legacy.insert().values(
                incident_id="inc-old", group_key="g", session_id="s", agent_id=f"agent-{SECRET}", severity="high",
                status="open", title="kept", opened_ms=1, updated_ms=1, detectors="[]", categories="[]",
                mode="enforce",
            )
        )  # fmt: skip
    engine.dispose()
    assert _revision(store_url) is None
    open_store(store_url).dispose()
    engine = create_engine(store_url)
    try:
        assert "learned_state_clock" in inspect(engine).get_table_names()  # the table the old store lacked
        with engine.connect() as conn:
            assert conn.execute(select(incidents.c.title)).scalars().all() == ["kept"]
            shown = conn.execute(select(incidents.c.agent_shown)).scalar_one()  # 0002 filled it in
            assert shown == "agent-[REDACTED:github_token]"
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
    assert f"version_num='{migration_head()}'" in done.stdout  # ends at this agentwatch's revision
    assert "CREATE VIEW incidents_dashboard" in done.stdout and "GRANT SELECT ON incidents_dashboard" in done.stdout


def test_an_unreadable_store_is_one_line_with_a_hint(tmp_path: Path) -> None:
    env = {"AGENTWATCH_STORE_URL": f"sqlite:///{tmp_path / 'missing' / 'dir' / 'store.db'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([AGENTWATCH, "store", "status"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert "cannot read the store" in done.stderr and "hint:" in done.stderr and "Traceback" not in done.stderr


def test_grafana_reads_incidents_only_through_the_redacted_view(postgres_url: str) -> None:
    """compose's ``agentwatch_dashboard`` role: SELECT on ``incidents_dashboard`` (redacted), nothing else."""
    from agentwatch.respond.incident_lifecycle import IncidentSettings, attach_alert
    from agentwatch.store import drop_store
    from tests.test_incident_api import _alert

    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = 'agentwatch_dashboard'")).first():
            conn.execute(text("CREATE ROLE agentwatch_dashboard LOGIN"))
    drop_store(admin)  # the grant is part of the migration: start from an empty store
    admin.dispose()
    engine = open_store(postgres_url)
    with engine.begin() as conn:
        attach_alert(conn, _alert(7, "critical"), IncidentSettings(), 1_000, 900)  # agent id carries a token
    engine.dispose()
    reader = create_engine(sa.engine.make_url(postgres_url).set(username="agentwatch_dashboard", password=None))
    try:
        with reader.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM incidents_dashboard"))]
            assert len(rows) == 1 and rows[0]["agent"] == "agent-[REDACTED:github_token]"
            assert SECRET not in repr(rows) and "session_id" not in rows[0]
            # the SOC overview's incidents table, its time macro expanded as Grafana does
            from grafana.build_dashboards import INCIDENTS_SQL

            sql = INCIDENTS_SQL.replace(
                "$__unixEpochFilter(opened_ms / 1000)", "opened_ms / 1000 BETWEEN 0 AND 4102444800"
            )
            table = [dict(r._mapping) for r in conn.execute(text(sql))]
            assert [(t["severity"], t["agent"]) for t in table] == [("critical", "agent-[REDACTED:github_token]")]
        with reader.connect() as conn, pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            conn.execute(text("SELECT agent_id FROM incidents"))
    finally:
        reader.dispose()
