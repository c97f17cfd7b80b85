"""Alembic's environment: migrate the connection :func:`agentwatch.store.open_store` passes.

Run from the ``alembic`` command line (``-c monitor/migrations/alembic.ini``), it connects
to ``AGENTWATCH_STORE_URL`` instead.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from agentwatch.store import metadata

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    # render_as_batch: SQLite cannot ALTER most things in place; batch mode copies the table.
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or os.environ.get("AGENTWATCH_STORE_URL", "sqlite://"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    shared = config.attributes.get("connection")
    if shared is not None:  # open_store's connection, inside its locked transaction
        _run(shared)
    else:
        engine = create_engine(os.environ["AGENTWATCH_STORE_URL"])
        try:
            with engine.begin() as connection:
                _run(connection)
        finally:
            engine.dispose()
