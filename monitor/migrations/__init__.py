"""Alembic migrations of the store's schema (SQLite and PostgreSQL).

:func:`agentwatch.store.open_store` runs them: it upgrades a store to the newest revision
under the schema lock (PostgreSQL advisory lock; SQLite's write lock), so every process
that opens a store — ``run``, ``respond``, ``serve``, the CLI — brings it forward, and
processes starting at the same moment never race. ``agentwatch store upgrade --sql``
prints the SQL instead, for a DBA who applies schema changes by hand.

Adding a column or table: change :data:`agentwatch.store.metadata`, then
``alembic -c monitor/migrations/alembic.ini revision --autogenerate -m "..."`` against a
store at head (``AGENTWATCH_STORE_URL`` picks it), and review the generated file.
``tests/test_store_migrations.py`` fails while the metadata and the migrations disagree.

Stores created before Alembic (they carry ``schema_version`` 1 or 2 and no
``alembic_version``) are brought to schema version 2 by the old step, then stamped at the
baseline revision, which is exactly that schema.
"""
