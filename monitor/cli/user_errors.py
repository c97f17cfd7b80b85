"""Failures a user causes or can fix — no broker, a store that will not open, a port in use —
as one line with a hint instead of a traceback.

:func:`one_line` knows those failures by type; anything else is a bug and keeps its
traceback. ``-v`` prints the traceback of a known failure too (see ``_Commands`` in
:mod:`agentwatch.cli.main`).
"""

from __future__ import annotations

import errno

from kafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

#: What people write for PostgreSQL, and the SQLAlchemy URL scheme agentwatch installs a driver for.
POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg2", "psql")
POSTGRES_URL = "postgresql+psycopg://"

KAFKA_HINT = "hint: is Kafka running there? check --bootstrap-servers / AGENTWATCH_BOOTSTRAP_SERVERS"
STORE_HINT = "hint: check store_url / AGENTWATCH_STORE_URL"


def one_line(exc: BaseException, store_url: str | None) -> str | None:
    """The message for a known, user-fixable failure; ``None`` for anything else (a bug).

    >>> one_line(KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:1"), None).startswith("cannot reach Kafka")
    True
    >>> one_line(ArgumentError("x"), "postgres://u:secret@db/agentwatch").split("hint: ")[1]
    'write postgresql+psycopg://u:***@db/agentwatch'
    """
    if isinstance(exc, (KafkaTimeoutError, NodeNotReadyError, KafkaConnectionError)):
        why = _first_line(exc) or type(exc).__name__
        return f"cannot reach Kafka: {why}; {KAFKA_HINT}"
    if isinstance(exc, (ArgumentError, DBAPIError)):
        return store_error(exc, store_url or "")
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"address already in use: {exc.strerror or exc}; hint: stop what listens there or pick another port"
    return None


def store_error(exc: BaseException, url: str) -> str:
    """A store that cannot be opened (malformed URL, unknown driver, a server that refuses), one line."""
    try:
        parsed = make_url(url)
    except ArgumentError:  # the error's message would repeat the string, password and all
        return f"cannot open the store URL: not a SQLAlchemy URL (e.g. {POSTGRES_URL}user:pass@host/db); {STORE_HINT}"
    shown = parsed.render_as_string(hide_password=True)
    if parsed.drivername in POSTGRES_SCHEMES and isinstance(exc, ArgumentError):
        fixed = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=True)
        return (
            f"cannot open the store {shown}: the scheme {parsed.drivername!r} is not one SQLAlchemy knows; "
            f"hint: write {fixed}"
        )
    why = _first_line(getattr(exc, "orig", None) or exc)[:300] or type(exc).__name__
    hint = STORE_HINT
    if parsed.get_backend_name() == "postgresql":
        hint += f" (PostgreSQL: {POSTGRES_URL}USER:PASSWORD@HOST:PORT/DB, and is the server running?)"
    return f"cannot open the store {shown}: {why}; {hint}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""
