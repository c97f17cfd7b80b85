"""Several processes opening a fresh store at the same moment all succeed (issue 9, item 8).

On PostgreSQL two concurrent ``create_all`` runs used to collide (``UniqueViolation …
schema_version``); the schema is now created and migrated under an advisory lock
(SQLite: under its write lock).
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from sqlalchemy import create_engine, inspect, select, text

from agentwatch.store import SCHEMA_VERSION, metadata, open_store, schema_version

PROCESSES = 5
TRIALS = 5


def _open(url: str, barrier, results) -> None:  # type: ignore[no-untyped-def]
    try:
        barrier.wait(timeout=30)
        engine = open_store(url)
        engine.dispose()
        results.put("ok")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _open_all_at_once(url: str) -> list[str]:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    workers = [ctx.Process(target=_open, args=(url, barrier, results)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return outcomes


def _check_schema(url: str) -> None:
    engine = create_engine(url)
    try:
        assert set(metadata.tables) <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(select(schema_version.c.version)).scalars().all() == [SCHEMA_VERSION]
    finally:
        engine.dispose()


def test_processes_opening_a_fresh_postgresql_store_at_once_all_succeed(postgres_url: str) -> None:
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    base = postgres_url.rsplit("/", 1)[0]
    try:
        for trial in range(TRIALS):
            name = f"agentwatch_schema_{os.getpid()}_{trial}"
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
                conn.execute(text(f"CREATE DATABASE {name}"))
            url = f"{base}/{name}"
            try:
                assert _open_all_at_once(url) == ["ok"] * PROCESSES, f"trial {trial}"
                _check_schema(url)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        admin.dispose()


def test_processes_opening_a_fresh_sqlite_store_at_once_all_succeed(tmp_path: Path) -> None:
    for trial in range(TRIALS):
        url = f"sqlite:///{tmp_path / f'trial{trial}' / 'store.db'}"
        assert _open_all_at_once(url) == ["ok"] * PROCESSES, f"trial {trial}"
        _check_schema(url)


def test_a_version_1_store_is_migrated_to_owned_steps(store_url: str) -> None:
    from alembic import command

    from agentwatch.store import migration_config

    engine = create_engine(store_url)
    with engine.begin() as conn:  # what a store written by schema version 1 (before Alembic) looks like
        command.upgrade(migration_config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("ALTER TABLE actions DROP COLUMN owner"))
        conn.execute(schema_version.update().values(version=1))
    engine.dispose()
    open_store(store_url).dispose()
    engine = create_engine(store_url)
    try:
        assert "owner" in {c["name"] for c in inspect(engine).get_columns("actions")}
        with engine.connect() as conn:
            assert conn.execute(select(schema_version.c.version)).scalars().all() == [SCHEMA_VERSION]
    finally:
        engine.dispose()
