"""``agentwatch store``: where the store's schema stands, and bringing it to this version.

Every process that opens the store migrates it already (:func:`agentwatch.store.open_store`);
these commands are for an operator who wants to see the revision, migrate before rolling
out new monitors, or hand the SQL to a DBA.
"""

from __future__ import annotations

import click

from agentwatch.cli.common import _config, _print_json, out


@click.group()
def store() -> None:
    """The store's schema (Alembic migrations, SQLite and PostgreSQL)."""


def _where(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@store.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def store_status(ctx: click.Context, as_json: bool) -> None:
    """Print the store's schema revision and this agentwatch's newest one; exit 1 if they differ."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from agentwatch.store import migration_head, store_revision

    url = _config(ctx).store_url
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            current = store_revision(conn)
    except OperationalError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise click.ClickException(
            f"cannot read the store {_where(url)}: {reason}; hint: check AGENTWATCH_STORE_URL or [monitor] store_url"
        ) from None
    finally:
        engine.dispose()
    head = migration_head()
    if as_json:
        _print_json({"store": _where(url), "revision": current, "head": head, "up_to_date": current == head})
    else:
        state = (
            "up to date"
            if current == head
            else "needs `agentwatch store upgrade` (any agentwatch process also does it)"
        )
        out.print(
            f"store {_where(url)}: revision {current or 'none'}, this agentwatch: {head} — {state}", highlight=False
        )
    ctx.exit(0 if current == head else 1)


@store.command("upgrade")
@click.option("--sql", "as_sql", is_flag=True, help="Print the SQL that creates the schema instead of running it.")
@click.pass_context
def store_upgrade(ctx: click.Context, as_sql: bool) -> None:
    """Migrate the store to this agentwatch's schema (what every agentwatch process does on start)."""
    from agentwatch.store import migration_head, offline_sql, open_store, store_revision

    url = _config(ctx).store_url
    if as_sql:
        click.echo(offline_sql(url), nl=False)
        return
    engine = open_store(url)
    try:
        with engine.connect() as conn:
            current = store_revision(conn)
    finally:
        engine.dispose()
    out.print(f"store {_where(url)}: at revision {current} (this agentwatch: {migration_head()})", highlight=False)
