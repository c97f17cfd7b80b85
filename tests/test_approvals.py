"""Approvals in the store: votes and their rules, quorum, exactly-once execution, expiry and
escalation, the Slack outbox (against a local fake Slack), and inert agent text."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from agentwatch.approve.directory import IdentityUnavailable
from agentwatch.approve.request import ApprovalRequest
from agentwatch.approve.request import request as request_approval
from agentwatch.approve.runtime import ApprovalRuntime
from agentwatch.approve.slack.notifier import SlackNotifier
from agentwatch.approve.votes import VoteResult, cast_vote
from agentwatch.approve.worker import approval_runtime
from agentwatch.errors import ConfigError
from agentwatch.respond.action_spec import ActionContext, ActionFailed, OutgoingMessage
from agentwatch.respond.incident_lifecycle import IncidentSettings, attach_alert, set_status
from agentwatch.respond.incident_queries import load_incident
from agentwatch.respond.playbook_engine import discover_actions, load_playbook
from agentwatch.store import approval_votes, approvals, audit_log, open_store, timeline
from tests.fake_slack import FakeSlack, WebhookReceiver
from tests.test_store import alert

T0 = 1_767_225_600_000
APPROVER, SECOND, LEAD, OUTSIDER, ANA = "UAPPROVER1", "UAPPROVER2", "ULEAD00001", "UOUTSIDER1", "UANA000001"
GROUP, LEADS = "SSECOPS001", "SLEADS0001"
EMAILS = {
    APPROVER: "bob@example.com",
    SECOND: "carol@example.com",
    LEAD: "lead@example.com",
    OUTSIDER: "mallory@example.com",
    ANA: "Ana@Example.com",
}
SECRET = b"webhook-secret"


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class StaticDirectory:
    def __init__(self, emails: dict[str, str] | None = None, groups: dict[str, list[str]] | None = None) -> None:
        self.emails = EMAILS if emails is None else emails
        self.groups = groups if groups is not None else {GROUP: [SECOND, ANA], LEADS: [LEAD]}

    def resolve(self, name: str) -> str:
        return name

    def email(self, user_id: str) -> str:
        if user_id not in self.emails:
            raise IdentityUnavailable(f"no e-mail for {user_id}")
        return self.emails[user_id]

    def group_members(self, group_id: str) -> frozenset[str]:
        if group_id not in self.groups:
            raise IdentityUnavailable(f"group {group_id} lookup failed")
        return frozenset(self.groups[group_id])


def open_incident(engine: Any, session: str = "s1", **kw: Any) -> str:
    with engine.begin() as conn:
        return attach_alert(conn, alert(session=session, **kw), IncidentSettings(), T0, T0 - 5000).incident_id


def request(engine: Any, incident_id: str, clock: Clock, action: str = "revoke_credentials", **params: Any) -> str:
    defaults: dict[str, Any] = {"approvers": [APPROVER, GROUP], "quorum": 1, "timeout_s": 60}
    if action == "revoke_credentials":
        defaults["action_params"] = {"url_env": "TEST_REVOKE_URL", "secret_env": "TEST_WEBHOOK_SECRET"}
    spec = msgspec.convert({"action": action, **defaults, **params}, ApprovalRequest)
    cls = discover_actions()[action]
    with engine.begin() as conn:
        record = load_incident(conn, incident_id)
        subject = cls().plan(record, msgspec.convert(spec.action_params, cls.params_type))
        approval_id, created = request_approval(
            conn,
            step_key=f"{incident_id}:book:approve_{action}",
            incident=record,
            params=spec,
            subject=subject,
            now=clock.now,
        )
    assert created
    return approval_id


def vote(
    engine: Any,
    approval_id: str,
    user: str,
    decision: str = "approve",
    clock: Clock | None = None,
    directory: Any = None,
) -> VoteResult:
    return cast_vote(
        engine,
        approval_id,
        user,
        decision,
        directory=directory or StaticDirectory(),  # type: ignore[arg-type]
        channel="slack",
        now=clock.now if clock else None,
    )


def status(engine: Any, approval_id: str) -> str:
    with engine.connect() as conn:
        return conn.execute(select(approvals.c.status).where(approvals.c.approval_id == approval_id)).scalar_one()


def audit_actions(engine: Any) -> list[tuple[str, dict[str, Any]]]:
    with engine.connect() as conn:
        return [(r.action, r.data) for r in conn.execute(select(audit_log).order_by(audit_log.c.seq))]


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    with WebhookReceiver(SECRET) as receiver:
        monkeypatch.setenv("TEST_REVOKE_URL", receiver.url)
        monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET.decode())
        yield receiver


def runtime(
    engine: Any,
    tmp_path: Path,
    clock: Clock,
    sent: list[OutgoingMessage] | None = None,
    notifier: SlackNotifier | None = None,
) -> ApprovalRuntime:
    return approval_runtime(
        engine,
        tmp_path / "data",
        "agent.control",
        send=None if sent is None else sent.extend,
        notifier=notifier,
        clock=clock,
    )


# -- decisions ------------------------------------------------------------------------
def test_approve_runs_the_gated_action_once_and_records_everything(
    store_url: str, tmp_path: Path, webhook: WebhookReceiver
) -> None:
    engine, clock = open_store(store_url), Clock()
    incident_id = open_incident(engine)
    approval_id = request(engine, incident_id, clock)
    clock.now += 30_000  # read for 30 s: not a hasty decision
    result = vote(engine, approval_id, APPROVER, clock=clock)
    assert (result.accepted, result.status) == (True, "approved")
    rt = runtime(engine, tmp_path, clock)
    assert rt.tick().executed == 1
    assert rt.tick().executed == 0 and rt.execute(approval_id) is False  # never twice
    assert len(webhook.requests) == 1 and webhook.requests[0]["valid"]
    body = webhook.requests[0]["body"]
    assert (body["type"], body["agent_id"], body["approved_by"]) == ("revoke_credentials", "coder-1", [APPROVER])
    assert webhook.requests[0]["request_id"] == body["request_id"]
    with engine.connect() as conn:
        row = conn.execute(select(approvals).where(approvals.c.approval_id == approval_id)).one()
        entries = conn.execute(
            select(timeline).where(timeline.c.incident_id == incident_id, timeline.c.kind == "decision")
        ).all()
    assert row.status == "executed" and row.executed_ms is not None and row.result["http_status"] == 200
    vote_entry = next(e for e in entries if e.data.get("decision") == "approve")
    assert vote_entry.data["elapsed_s"] == 30.0 and vote_entry.data["faster_than_reading_time"] is False
    closing = [e for e in entries if e.data.get("outcome") == "executed"]
    assert closing and closing[0].data["time_to_decision_s"] >= 30 and "reading time" in closing[0].text
    assert [a for a, _ in audit_actions(engine) if a.startswith("approval.")] == [
        "approval.requested",
        "approval.vote",
        "approval.approved",
        "approval.executed",
    ]


def test_concurrent_executors_run_the_action_exactly_once(store_url: str, tmp_path: Path) -> None:
    engine, clock = open_store(store_url), Clock()
    approval_id = request(engine, open_incident(engine), clock, action="quarantine_agent", quorum=1)
    assert vote(engine, approval_id, APPROVER, clock=clock).status == "approved"
    sent: list[OutgoingMessage] = []
    runtimes = [runtime(open_store(store_url), tmp_path, clock, sent) for _ in range(4)]
    results: list[bool] = []
    barrier = threading.Barrier(len(runtimes))

    def run(rt: ApprovalRuntime) -> None:
        barrier.wait()
        results.append(rt.execute(approval_id))

    threads = [threading.Thread(target=run, args=(rt,)) for rt in runtimes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    [message] = sent
    command = msgspec.json.decode(message.value)
    assert (message.topic, command["type"], command["approved_by"]) == ("agent.control", "quarantine_agent", [APPROVER])
    assert command["approval_id"] == approval_id and message.key == b"coder-1"


def test_one_deny_denies_and_nothing_runs(store_url: str, tmp_path: Path, webhook: WebhookReceiver) -> None:
    engine, clock = open_store(store_url), Clock()
    approval_id = request(engine, open_incident(engine), clock, quorum=2)
    assert vote(engine, approval_id, APPROVER, clock=clock).status == "pending"
    assert vote(engine, approval_id, SECOND, "deny", clock=clock).status == "denied"
    assert runtime(engine, tmp_path, clock).tick().executed == 0 and webhook.requests == []
    late = vote(engine, approval_id, LEAD, clock=clock)
    assert (late.accepted, late.reason) == (False, "closed")


def test_four_eyes_needs_two_different_people(store_url: str, tmp_path: Path) -> None:
    engine, clock = open_store(store_url), Clock()
    approval_id = request(engine, open_incident(engine), clock, action="quarantine_agent", quorum=2)
    first = vote(engine, approval_id, APPROVER, clock=clock)
    again = vote(engine, approval_id, APPROVER, clock=clock)  # a double click
    assert (first.accepted, first.status) == (True, "pending")
    assert (again.accepted, again.reason) == (False, "duplicate_vote")
    # the same person under another Slack id (same e-mail) is still one person
    twin_directory = StaticDirectory({**EMAILS, SECOND: "BOB@example.com"})
    twin = vote(engine, approval_id, SECOND, clock=clock, directory=twin_directory)
    assert (twin.accepted, twin.reason) == (False, "duplicate_vote")
    second = vote(engine, approval_id, SECOND, clock=clock)  # via the group SSECOPS001
    assert (second.accepted, second.status) == (True, "approved")
    sent: list[OutgoingMessage] = []
    assert runtime(engine, tmp_path, clock).tick().executed == 0  # no Kafka sender here: left for one that has
    assert runtime(engine, tmp_path, clock, sent).tick().executed == 1
    assert msgspec.json.decode(sent[0].value)["approved_by"] == [APPROVER, SECOND]
    with engine.connect() as conn:
        assert len(conn.execute(select(approval_votes)).all()) == 2


@pytest.mark.parametrize(
    "user, directory, reason",
    [
        (OUTSIDER, None, "not_an_approver"),
        (ANA, None, "self_approval"),  # in the group, but the incident's principal (ana@example.com, any case)
        (APPROVER, StaticDirectory(emails={}), "identity_unavailable"),  # no e-mail: fail closed
        (SECOND, StaticDirectory(groups={}), "identity_unavailable"),  # group lookup failed: fail closed
    ],
)
def test_refused_votes_are_audited_with_the_reason(store_url: str, user: str, directory: Any, reason: str) -> None:
    engine, clock = open_store(store_url), Clock()
    incident_id = open_incident(engine)
    approval_id = request(engine, incident_id, clock)
    result = vote(engine, approval_id, user, clock=clock, directory=directory)
    assert (result.accepted, result.reason, result.status) == (False, reason, "pending")
    refused = [d for a, d in audit_actions(engine) if a == "approval.refused"]
    assert [(d["reason"], d["user_id"], d["approval_id"]) for d in refused] == [(reason, user, approval_id)]
    with engine.connect() as conn:
        texts = [r.text for r in conn.execute(select(timeline.c.text).where(timeline.c.incident_id == incident_id))]
    assert any(t.startswith(f"refused approve of revoke_credentials by {user}") for t in texts)


def test_no_decision_after_expiry_resolution_or_for_unknown_approvals(store_url: str) -> None:
    engine, clock = open_store(store_url), Clock()
    expiring = request(engine, open_incident(engine, "s1"), clock)
    resolved_incident = open_incident(engine, "s2")
    resolved = request(engine, resolved_incident, clock)
    with engine.begin() as conn:
        set_status(conn, resolved_incident, "resolved", "human:bob", clock.now, "false positive")
    clock.now += 61_000
    assert vote(engine, expiring, APPROVER, clock=clock).reason == "expired"
    assert vote(engine, resolved, APPROVER, clock=clock).reason == "incident_resolved"
    assert vote(engine, "apr-nope", APPROVER, clock=clock).reason == "unknown_approval"
    reasons = [d["reason"] for a, d in audit_actions(engine) if a == "approval.refused"]
    assert reasons == ["expired", "incident_resolved", "unknown_approval"]


def test_timeout_escalates_to_the_next_group_then_expires_and_never_executes(
    store_url: str, tmp_path: Path, webhook: WebhookReceiver
) -> None:
    engine, clock = open_store(store_url), Clock()
    incident_id = open_incident(engine)
    approval_id = request(engine, incident_id, clock, approvers=[APPROVER], escalate_to=[LEADS])
    rt = runtime(engine, tmp_path, clock)
    assert vote(engine, approval_id, LEAD, clock=clock).reason == "not_an_approver"  # not yet
    clock.now += 60_000
    assert rt.tick().escalated == 1 and rt.tick().escalated == 0
    with engine.connect() as conn:
        row = conn.execute(select(approvals).where(approvals.c.approval_id == approval_id)).one()
    assert (row.status, row.escalation_level, row.expires_ms) == ("pending", 1, clock.now + 60_000)
    clock.now += 60_000
    stats = rt.tick()
    assert (stats.expired, stats.executed) == (1, 0) and status(engine, approval_id) == "expired"
    assert vote(engine, approval_id, LEAD, clock=clock).reason == "closed"
    assert rt.tick().executed == 0 and webhook.requests == []
    names = [a for a, _ in audit_actions(engine) if a.startswith("approval.")]
    assert names == [
        "approval.requested",
        "approval.refused",
        "approval.escalated",
        "approval.expired",
        "approval.refused",
    ]


def test_escalated_group_may_decide(store_url: str) -> None:
    engine, clock = open_store(store_url), Clock()
    approval_id = request(engine, open_incident(engine), clock, approvers=[APPROVER], escalate_to=[LEADS])
    clock.now += 60_000
    ApprovalRuntime(engine, Path("."), "agent.control", clock=clock).tick()
    assert vote(engine, approval_id, LEAD, clock=clock).status == "approved"


def test_resolving_the_incident_cancels_open_approvals(store_url: str, tmp_path: Path) -> None:
    engine, clock = open_store(store_url), Clock()
    incident_id = open_incident(engine)
    approval_id = request(engine, incident_id, clock)
    with engine.begin() as conn:
        set_status(conn, incident_id, "resolved", "human:bob", clock.now, "done")
    assert runtime(engine, tmp_path, clock).tick().cancelled == 1
    assert status(engine, approval_id) == "cancelled"


# -- defence in depth ----------------------------------------------------------------------
def test_gated_actions_refuse_to_run_without_a_claimed_approval(tmp_path: Path) -> None:
    engine, clock = open_store(f"sqlite:///{tmp_path / 's.db'}"), Clock()
    incident_id = open_incident(engine)
    approval_id = request(engine, incident_id, clock, action="quarantine_agent")
    with engine.connect() as conn:
        record = load_incident(conn, incident_id)
    for name in ("revoke_credentials", "quarantine_agent", "block_egress", "disable_tool"):
        cls = discover_actions()[name]
        assert cls.gated
        params = msgspec.convert(
            {"url": "http://127.0.0.1:9/x", "secret_env": "X"} if name == "revoke_credentials" else {}, cls.params_type
        )
        for settings in ({}, {"approval_id": approval_id}):  # none; pending, not approved
            ctx = ActionContext(
                incident=record,
                action_key="k",
                engine=engine,
                data_dir=tmp_path,
                control_topic="agent.control",
                now_ms=clock.now,
                settings=settings,
            )
            with pytest.raises(ActionFailed, match="gated|refused"):
                cls().execute(ctx, params)


def test_request_approval_params_are_checked_when_the_playbook_loads(tmp_path: Path) -> None:
    path = tmp_path / "book.yaml"
    cases = {
        "{action: collect_evidence}": "not gated",
        "{action: nope}": "unknown gated action",
        "{action: quarantine_agent, approvers: ['<!here>']}": "approver ids",
        "{action: revoke_credentials, action_params: {secret_env: X}}": "exactly one of url and url_env",
        "{action: quarantine_agent, quorum: 0}": "quorum",
    }
    for params, message in cases.items():
        path.write_text(f"name: b\nsteps:\n  - {{name: ask, action: request_approval, params: {params}}}\n")
        with pytest.raises(ConfigError, match=message):
            load_playbook(path, discover_actions())


def test_unset_approver_variable_is_visible_and_nobody_can_approve(tmp_path: Path) -> None:
    engine, clock = open_store(f"sqlite:///{tmp_path / 's.db'}"), Clock()
    approval_id = request(engine, open_incident(engine), clock, approvers=["$AGENTWATCH_TEST_UNSET_APPROVERS"])
    with engine.connect() as conn:
        note = conn.execute(select(approvals.c.note).where(approvals.c.approval_id == approval_id)).scalar()
    assert "no approvers configured" in note and "AGENTWATCH_TEST_UNSET_APPROVERS is not set" in note
    assert vote(engine, approval_id, APPROVER, clock=clock).reason == "not_an_approver"


# -- the responder and the CLI -------------------------------------------------------------
def test_playbook_to_cli_approval_to_execution(
    tmp_path: Path, webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentwatch.cli.main import main
    from agentwatch.respond.responder import Responder
    from tests.test_responder import session_events

    for name in ("AGENTWATCH_SLACK_BOT_TOKEN", "AGENTWATCH_SLACK_CHANNEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGENTWATCH_APPROVERS", f"{APPROVER},{GROUP}")
    monkeypatch.setenv("AGENTWATCH_REVOKE_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("AGENTWATCH_WEBHOOK_SECRET", SECRET.decode())
    data = tmp_path / "data"
    monkeypatch.setenv("AGENTWATCH_DATA_DIR", str(data))
    data.mkdir()
    (data / "approvals.toml").write_text(
        f'[users.{APPROVER}]\nemail = "bob@example.com"\nnames = ["bob"]\n'
        f'[users.{ANA}]\nemail = "ana@example.com"\nnames = ["ana"]\n'
        f'[groups.{GROUP}]\nmembers = ["{ANA}"]\n'
    )
    from agentwatch.config import load_config
    from agentwatch.respond.playbook_engine import load_playbooks

    engine = open_store(load_config().store_url)
    responder = Responder(engine, load_playbooks(), data.resolve(), "agent.control")  # wall clock, like the CLI
    responder.confirm(responder.prepare(session_events(), [alert()]))
    responder.run_pending()
    with engine.connect() as conn:
        rows = conn.execute(
            select(approvals.c.action, approvals.c.status, approvals.c.quorum, approvals.c.incident_id).order_by(
                approvals.c.action
            )
        ).all()
    assert [(r.action, r.status, r.quorum) for r in rows] == [
        ("quarantine_agent", "pending", 2),
        ("revoke_credentials", "pending", 1),
    ]
    incident_id = rows[0].incident_id
    runner = CliRunner()
    listed = runner.invoke(main, ["incidents", "list", "--json"])
    assert msgspec.json.decode(listed.output)[0]["pending_approvals"] == 2
    shown = runner.invoke(main, ["incidents", "show", incident_id])
    assert shown.exit_code == 0 and "approvals" in shown.output and "revoke_credentials" in shown.output

    refused = runner.invoke(main, ["approve", incident_id, "--action", "revoke_credentials", "--as", "ana"])
    assert refused.exit_code == 1 and "principal" in refused.output
    nobody = runner.invoke(main, ["deny", incident_id, "--action", "revoke_credentials", "--as", "eve"])
    assert nobody.exit_code == 1 and "not an approver" in nobody.output
    done = runner.invoke(main, ["approve", incident_id, "--action", "revoke_credentials", "--as", "bob", "--json"])
    assert done.exit_code == 0, done.output
    summary = msgspec.json.decode(done.output)
    assert (summary["status"], summary["executed"]) == ("approved", "executed")
    assert len(webhook.requests) == 1 and webhook.requests[0]["valid"]
    again = runner.invoke(main, ["approve", incident_id, "--action", "revoke_credentials", "--as", "bob"])
    assert again.exit_code == 1 and "closed" in again.output and len(webhook.requests) == 1
    shown = msgspec.json.decode(runner.invoke(main, ["incidents", "show", incident_id, "--json"]).output)
    by_action = {a["action"]: a for a in shown["approvals"]}
    assert by_action["revoke_credentials"]["status"] == "executed"
    assert by_action["quarantine_agent"]["status"] == "pending"
    cli_audit = [d for a, d in audit_actions(engine) if a in ("approval.vote", "approval.refused")]
    assert all("os_user" in d for d in cli_audit) and len(cli_audit) == 4
    with engine.connect() as conn:
        postmortem = next(
            Path(a.result["path"]) for a in load_incident(conn, incident_id).actions if a.action == "draft_postmortem"
        )
    assert "approval of revoke\\_credentials executed" in postmortem.read_text()  # the draft was refreshed


# -- Slack outbox ------------------------------------------------------------------------
def slack(fake: FakeSlack) -> SlackNotifier:
    return SlackNotifier("xoxb-test", "C0INCIDENTS", base_url=fake.api_url, backoff_s=0.01)


def test_one_message_per_incident_updated_in_place_with_votes_in_the_thread(tmp_path: Path) -> None:
    engine, clock = open_store(f"sqlite:///{tmp_path / 's.db'}"), Clock()
    incident_id = open_incident(engine)
    with FakeSlack() as fake:
        rt = runtime(engine, tmp_path, clock, sent=[], notifier=slack(fake))
        first = request(engine, incident_id, clock, action="quarantine_agent", quorum=2)
        assert rt.tick().synced == 1 and rt.tick().synced == 0  # nothing changed: no call
        clock.now += 1000
        second = request(engine, incident_id, clock, action="disable_tool")
        rt.tick()
        vote(engine, first, APPROVER, clock=clock)
        rt.tick()
        vote(engine, first, SECOND, clock=clock)
        rt.tick()  # executes, then tells Slack
        assert fake.methods().count("chat.postMessage") == 1 + len(next(iter(fake.messages.values())).thread)
        [message] = fake.messages.values()  # one message for the incident
        assert message.updates >= 3
        cards = [
            b["text"]["text"]
            for b in message.blocks
            if b["type"] == "section" and "Approval:" in b.get("text", {}).get("text", "")
        ]
        assert len(cards) == 2 and "quarantine agent* — executed" in cards[0] and "disable tool* — pending" in cards[1]
        actions = [b for b in message.blocks if b["type"] == "actions"]
        assert [[e["action_id"] for e in b["elements"]] for b in actions] == [
            ["agentwatch_approve", "agentwatch_deny", "agentwatch_details"]
        ]  # only the pending one has buttons
        assert actions[0]["elements"][0]["value"] == second
        context = " ".join(e["text"] for b in message.blocks if b["type"] == "context" for e in b["elements"])
        assert f"Approved by <@{APPROVER}>" in context and f"Approved by <@{SECOND}>" in context
        thread = [t["text"] for t in message.thread]
        assert any("approved *quarantine agent*" in t and "(1/2)" in t for t in thread)
        assert any("quarantine agent* done" in t for t in thread)
        assert any("Approval requested: *disable tool*" in t for t in thread)


def test_slack_down_retries_later_nothing_lost_nothing_auto_approved(tmp_path: Path) -> None:
    engine, clock = open_store(f"sqlite:///{tmp_path / 's.db'}"), Clock()
    incident_id = open_incident(engine)
    approval_id = request(engine, incident_id, clock)
    with FakeSlack() as fake:
        rt = runtime(engine, tmp_path, clock, notifier=slack(fake))
        fake.fail = "500"
        assert rt.tick().synced == 0
        assert fake.methods() == ["chat.postMessage"] * 3  # retried with backoff inside the call, then deferred
        with engine.connect() as conn:
            row = conn.execute(select(approvals).where(approvals.c.approval_id == approval_id)).one()
        assert (row.status, row.slack_ts, row.slack_attempts) == ("pending", None, 1)
        assert "internal_error" in row.slack_error and row.slack_next_ms > clock.now
        from agentwatch.cli.approvals import approval_rows

        with engine.connect() as conn:
            [shown] = approval_rows(conn, incident_id)  # what `incidents show` prints
        assert shown["status"] == "pending" and shown["slack"].startswith("retrying after 1 failure(s)")
        assert rt.tick().synced == 0 and len(fake.calls) == 3  # not due yet: no hammering
        fake.fail = "ratelimited"
        fake.retry_after = 30
        clock.now = row.slack_next_ms
        rt.tick()
        with engine.connect() as conn:
            row = conn.execute(select(approvals).where(approvals.c.approval_id == approval_id)).one()
        assert row.slack_next_ms >= clock.now + 30_000  # Retry-After respected
        fake.fail = None
        clock.now = row.slack_next_ms
        assert rt.tick().synced == 1 and len(fake.messages) == 1 and status(engine, approval_id) == "pending"
        with engine.connect() as conn:
            notes = conn.execute(select(timeline.c.text).where(timeline.c.kind == "note")).scalars().all()
        assert len(notes) == 1 and "Slack unreachable" in notes[0]  # one line per outage, not per retry


HOSTILE = (
    "<!channel> <!here> <!everyone> @here @channel <@U0ATTACKER> <#C0SECRET> <!subteam^S0ALL> "
    "<https://evil.example/login|click to approve> *APPROVE NOW* _x_ ~y~ `rm -rf /` &amp; > quote "
    "AWS key AKIAIOSFODNN7EXAMPLE token=ghp_" + "A" * 36 + " " + "z" * 4000
)


def test_hostile_agent_text_is_inert_in_the_posted_blocks(tmp_path: Path) -> None:
    engine, clock = open_store(f"sqlite:///{tmp_path / 's.db'}"), Clock()
    with engine.begin() as conn:
        hostile = msgspec.structs.replace(
            alert(agent="<!everyone> agent*x*"), summary=HOSTILE, reasons=[HOSTILE], principal="<#C0PRINCIPAL> @here"
        )
        incident_id = attach_alert(conn, hostile, IncidentSettings(), T0, T0).incident_id
    approval_id = request(engine, incident_id, clock, action="disable_tool")
    with FakeSlack() as fake:
        rt = runtime(engine, tmp_path, clock, notifier=slack(fake))
        rt.tick()
        vote(engine, approval_id, OUTSIDER, clock=clock)  # refused, audited; the message stays
        [message] = fake.messages.values()
        texts = [message.text, *[t["text"] for t in message.thread], *_texts(message.blocks)]
    allowed = re.compile(
        r"<(@UAPPROVER1|!subteam\^SSECOPS001"
        r"|!date\^\d+\^\{date_short_pretty\} \{time_secs\}\|[0-9TZ:.-]+)>"
    )
    for text in texts:
        assert len(text) <= 3000
        assert "<" not in allowed.sub("", text), text
        assert ">" not in allowed.sub("", text), text
        for needle in ("AKIAIOSFODNN7EXAMPLE", "ghp_", "*APPROVE NOW*", "`rm", "~y~", "@here", "@channel"):
            assert needle not in text, (needle, text)
    joined = "\n".join(texts)
    assert "&lt;!channel&gt;" in joined and "[REDACTED:" in joined and "@\u2060here" in joined


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if isinstance(node.get("text"), str) else []
        return found + [t for v in node.values() if isinstance(v, dict | list) for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


def test_fatigue_metrics_count_hasty_votes() -> None:
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = sample("agentwatch_approvals_fast_votes_total", action="disable_tool", outcome="approve")
    decided = sample("agentwatch_approvals_decisions_total", action="disable_tool", outcome="approved")
    engine, clock = open_store("sqlite://"), Clock()
    approval_id = request(engine, open_incident(engine), clock, action="disable_tool")
    clock.now += 2_000  # two seconds after it was shown
    assert vote(engine, approval_id, APPROVER, clock=clock).accepted
    assert sample("agentwatch_approvals_fast_votes_total", action="disable_tool", outcome="approve") == before + 1
    assert sample("agentwatch_approvals_decisions_total", action="disable_tool", outcome="approved") == decided + 1
    with engine.connect() as conn:
        entry = conn.execute(
            select(timeline).where(timeline.c.kind == "decision", timeline.c.actor == f"human:{APPROVER}")
        ).one()
    assert entry.data["faster_than_reading_time"] is True and "faster than the 10 s reading time" in entry.text
