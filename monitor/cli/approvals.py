"""``agentwatch approve`` / ``deny``: decide a pending approval without Slack.

The same rules as the Slack buttons (:func:`agentwatch.approve.votes.cast_vote`): only listed
approvers count, the incident's principal cannot decide on their own agent's
containment, one vote per person, nothing after expiry or resolution, every attempt
audited.

Who you are: ``--as`` takes a Slack user id (``U…``) or a name listed under that id in
the approvals file (``$AGENTWATCH_APPROVALS_FILE``, default
``<data_dir>/approvals.toml``)::

    [users.U012ALICE]
    email = "alice@example.com"
    names = ["alice"]

The e-mail (for separation of duties) comes from that file, else from Slack's
``users.info`` when ``AGENTWATCH_SLACK_BOT_TOKEN`` is set; with neither the vote is
refused. The CLI trusts ``--as`` the way it trusts anyone who can write the store: the
operating-system user is recorded beside it in the audit log.

Once a quorum approves, the gated action runs here at once when it can (webhooks; Kafka
commands with ``--bootstrap-servers``); otherwise the running monitor or ``serve``
executes it within a fraction of a second.
"""

from __future__ import annotations

import getpass
from typing import Any, Literal

import click
from rich.table import Table
from sqlalchemy.engine import Connection

from agentwatch.approve.directory import FileDirectory, IdentityUnavailable, approvals_file_path, load_approvals_file
from agentwatch.approve.runtime import ApprovalRuntime
from agentwatch.approve.slack.notifier import SlackDirectory, SlackNotifier
from agentwatch.approve.views import annotate_list, approval_rows, approvals_for  # noqa: F401 - re-exported for main
from agentwatch.approve.votes import cast_vote, find_approval
from agentwatch.approve.worker import approval_runtime
from agentwatch.cli.common import (
    _cell,
    _config,
    _control_signer,
    _engine,
    _incident_id,
    _kafka_security,
    _print_json,
    err,
    out,
)
from agentwatch.errors import ConfigError


def _decide(
    ctx: click.Context,
    decision: Literal["approve", "deny"],
    incident_id: str,
    action: str,
    user: str,
    bootstrap_servers: str | None,
    as_json: bool,
) -> None:
    config = _config(ctx)
    engine = _engine(ctx)
    notifier = SlackNotifier.from_env()
    try:
        directory = FileDirectory(
            load_approvals_file(approvals_file_path(config.data_dir)),
            SlackDirectory(notifier) if notifier is not None else None,
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        user_id = directory.resolve(user)
    except IdentityUnavailable:
        user_id = user  # refused below as not an approver, and audited
    with engine.connect() as conn:
        incident_id = _incident_id(conn, incident_id, unknown_ok=True)  # unknown: refused and audited below
        row = find_approval(conn, incident_id, action)
    approval_id = row.approval_id if row is not None else f"{incident_id}/{action}"[:64]
    result = cast_vote(
        engine,
        approval_id,
        user_id,
        decision,
        directory=directory,
        channel="cli",
        context={"os_user": getpass.getuser(), "as": user[:100]},
    )
    executed = None
    if result.accepted and result.status == "approved":
        executed = _execute_now(config, engine, notifier, approval_id, bootstrap_servers)
    elif result.accepted and notifier is not None and row is not None:
        _runtime(config, engine, notifier, None).sync_incident(row.incident_id)
    summary = {
        "accepted": result.accepted,
        "reason": result.reason,
        "message": result.message,
        "approval_id": result.approval_id,
        "action": result.action,
        "status": result.status,
        "executed": executed,
    }
    if as_json:
        _print_json(summary)
    elif result.accepted:
        out.print(
            f"{decision} recorded for {_cell(action)} on {_cell(incident_id)}: {_cell(result.message)}"
            + ("" if executed is None else f"; executed: {executed}"),
            highlight=False,
        )
    if not result.accepted:
        if not as_json:
            err.print(f"refused: {_cell(result.message)}", highlight=False)
        ctx.exit(1)


def _runtime(
    config: Any, engine: Any, notifier: SlackNotifier | None, bootstrap_servers: str | None
) -> ApprovalRuntime:
    send = None
    if bootstrap_servers:
        from agentwatch.ingest.monitor_process import KafkaSender

        send = KafkaSender(bootstrap_servers, _kafka_security(config), _control_signer(config))
    return approval_runtime(
        engine, config.data_dir.resolve(), config.monitor.control_topic, send=send, notifier=notifier
    )


def _execute_now(
    config: Any, engine: Any, notifier: SlackNotifier | None, approval_id: str, bootstrap_servers: str | None
) -> str | None:
    """Run the approved action here if this process can; ``None`` when left to the monitor."""
    runtime = _runtime(config, engine, notifier, bootstrap_servers)
    try:
        with engine.connect() as conn:
            row = find_row(conn, approval_id)
        cls = runtime.action_class(row.action) if row is not None else None
        if row is None or (cls is not None and getattr(cls, "needs_sender", False) and runtime.send is None):
            return None
        runtime.execute(approval_id)
        runtime.after_effects()  # the postmortem draft and the Slack message show the decision
        with engine.connect() as conn:
            after = find_row(conn, approval_id)
        assert after is not None
        return after.status + (f" ({after.error})" if after.error else "")
    finally:
        close = getattr(runtime.send, "close", None)
        if close is not None:
            close()


def find_row(conn: Connection, approval_id: str) -> Any:
    from sqlalchemy import select

    from agentwatch.store import approvals

    return conn.execute(select(approvals).where(approvals.c.approval_id == approval_id)).first()


_AS_HELP = "Who decides: a Slack user id (U…) or a name from the approvals file."


@click.command()
@click.argument("incident_id")
@click.option("--action", "action", required=True, help="The gated action, e.g. revoke_credentials.")
@click.option("--as", "user", required=True, help=_AS_HELP)
@click.option(
    "--bootstrap-servers",
    envvar="AGENTWATCH_BOOTSTRAP_SERVERS",
    default=None,
    help="Kafka, to publish approved control commands now (else the monitor or serve does).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def approve(
    ctx: click.Context, incident_id: str, action: str, user: str, bootstrap_servers: str | None, as_json: bool
) -> None:
    """Approve INCIDENT's pending gated ACTION (counts towards its quorum)."""
    _decide(ctx, "approve", incident_id, action, user, bootstrap_servers, as_json)


@click.command()
@click.argument("incident_id")
@click.option("--action", "action", required=True, help="The gated action, e.g. quarantine_agent.")
@click.option("--as", "user", required=True, help=_AS_HELP)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def deny(ctx: click.Context, incident_id: str, action: str, user: str, as_json: bool) -> None:
    """Deny INCIDENT's pending gated ACTION (one authorised deny closes it)."""
    _decide(ctx, "deny", incident_id, action, user, None, as_json)


# -- incidents list / show ----------------------------------------------------------------
def approvals_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="approvals")
    for column in ("action", "status", "votes", "approvers", "expires", "slack", "decided by / result"):
        table.add_column(column)
    for row in rows:
        who = ", ".join(f"{v['decision']} {v['user']} ({v['via']})" for v in row["votes"])
        detail = "; ".join(x for x in (who, row["result"], row["error"], row["note"]) if x)
        table.add_row(
            row["action"],
            row["status"],
            f"{row['approves']}/{row['quorum']}",
            _cell(", ".join(row["approvers"]) or "—"),
            row["expires"] if row["status"] == "pending" else "",
            _cell(row["slack"], 60),
            _cell(detail, 200),
        )
    return table
