"""The responder without Kafka: incidents, ordered idempotent steps, failures, shadow mode."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from sqlalchemy import select

from agentwatch.events.audit_event import from_mapping
from agentwatch.respond.action_spec import Action, ActionContext, ActionOutcome, ActionParams
from agentwatch.respond.evidence import verify_bundle
from agentwatch.respond.playbook_engine import discover_actions, load_playbook, load_playbooks
from agentwatch.respond.responder import Responder
from agentwatch.respond.session_guard import status_from_store
from agentwatch.store import actions, open_store
from tests.test_store import alert


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_700_000

    def __call__(self) -> int:
        self.now += 7
        return self.now


def session_events(session: str = "s1") -> list:  # type: ignore[type-arg]
    base = 1_767_225_600_000
    rows = [
        ("session_start", None, None),
        ("tool_call", "Read", "/home/dev/.ssh/id_rsa"),
        ("tool_call", "Read", "README.md"),
    ]
    return [
        from_mapping(
            {
                "event_id": f"{session}:e{i}",
                "ts": base + i * 1000,
                "session_id": session,
                "agent_id": "coder-1",
                "kind": kind,
                "tool": tool,
                "target": target,
            }
        )
        for i, (kind, tool, target) in enumerate(rows)
    ]


@pytest.fixture
def responder(tmp_path: Path) -> Responder:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    return Responder(engine, load_playbooks(), tmp_path / "data", "agent.control", clock=Clock())


def test_enforce_alert_terminates_in_the_batch_then_bookkeeping_runs(responder: Responder) -> None:
    prepared = responder.prepare(session_events(), [alert()])
    commands = [msgspec.json.decode(m.value) for m in prepared.messages]
    assert [c["type"] for c in commands] == ["terminate_session"]
    assert commands[0]["session_id"] == "s1" and commands[0]["command_id"].startswith("cmd-")
    assert "ssh" not in commands[0]["reason"]  # our words only: the reason reaches the agent
    assert status_from_store(responder.engine, "s1").status == "terminated"
    responder.confirm(prepared)
    assert responder.run_pending() == 4  # evidence, postmortem, then the two approval requests
    from agentwatch.respond.incident_queries import load_incident

    with responder.engine.connect() as conn:
        incident_id = conn.execute(select(actions.c.incident_id)).scalar()
        record = load_incident(conn, incident_id)
    assert record.status == "contained"
    assert [(a.step, a.status) for a in record.actions] == [
        ("terminate", "done"),
        ("evidence", "done"),
        ("postmortem", "done"),
        ("approve_revoke_credentials", "done"),
        ("approve_quarantine_agent", "done"),
    ]
    bundle = Path(record.actions[1].result["path"])
    assert verify_bundle(bundle).ok
    assert [e.event_id for e in record.events] == ["s1:e0", "s1:e1", "s1:e2"]  # the look-back journal
    postmortem = Path(record.actions[2].result["path"]).read_text()
    assert "## Time to detect and contain" in postmortem and "## Open questions for humans" in postmortem
    assert "terminate\\_session" in postmortem and bundle.name in postmortem


def test_replayed_alert_changes_nothing(responder: Responder) -> None:
    first = responder.prepare(session_events(), [alert()])
    responder.confirm(first)
    responder.run_pending()
    again = responder.prepare(session_events(), [alert()])
    assert again.messages == [] and again.inline == []
    assert responder.run_pending() == 0
    with responder.engine.connect() as conn:
        assert len(conn.execute(select(actions.c.action_key)).all()) == 5


def test_alert_mode_alerts_record_but_never_terminate(responder: Responder) -> None:
    prepared = responder.prepare(session_events(), [msgspec.structs.replace(alert(), mode="alert")])
    assert prepared.messages == []
    responder.confirm(prepared)
    assert responder.run_pending() == 2
    assert status_from_store(responder.engine, "s1").status == "active"


def test_two_playbooks_on_one_incident_collect_evidence_once_while_it_is_pending(responder: Responder) -> None:
    """An alert-mode alert (record_incident) and an enforce alert (contain_session) on one
    session: the evidence and postmortem still pending cover both; once they ran, a later
    match is a change to the incident and gets its own run (a new bundle version)."""
    noted = msgspec.structs.replace(alert(detector="effect_rules"), mode="alert", severity="medium")
    prepared = responder.prepare(session_events(), [noted, alert()])
    responder.confirm(prepared)
    responder.run_pending()
    with responder.engine.connect() as conn:
        planned = [(r.playbook, r.action) for r in conn.execute(select(actions.c.playbook, actions.c.action))]
    assert sorted(a for _, a in planned).count("collect_evidence") == 1
    assert sorted(a for _, a in planned).count("draft_postmortem") == 1
    assert ("contain_session", "terminate_session") in planned
    # Later, another alert-mode detector matches record_incident again: steps that already ran
    # do not cover it, so nothing is skipped (its own step keys exist, so nothing is re-planned
    # either), and a contain_session match would not re-plan its done steps.
    later = msgspec.structs.replace(alert(detector="novelty"), mode="alert", severity="high", revision=1)
    responder.confirm(responder.prepare([], [later]))
    with responder.engine.connect() as conn:
        assert len(conn.execute(select(actions.c.action_key)).all()) == len(planned)


class Flaky(Action):
    name = "flaky"
    summary = "fails"

    def execute(self, ctx: ActionContext, params: ActionParams) -> ActionOutcome:
        raise ConnectionError("webhook down")


def test_a_failing_step_is_retried_then_failed_visibly_and_later_steps_still_run(tmp_path: Path) -> None:
    book = tmp_path / "book.yaml"
    book.write_text(
        "name: flaky_book\nmatch: {min_severity: low}\nsteps:\n"
        "  - {name: call, action: flaky, max_attempts: 2}\n"
        "  - {name: evidence, action: collect_evidence}\n"
    )
    registry = {**discover_actions(), "flaky": Flaky}
    clock = Clock()
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    responder = Responder(engine, [load_playbook(book, registry)], tmp_path / "data", "agent.control", clock=clock)
    responder.confirm(responder.prepare(session_events(), [alert()]))
    responder.run_pending()
    with engine.connect() as conn:
        row = conn.execute(select(actions).where(actions.c.step == "call")).first()
    assert (row.status, row.attempts, "webhook down" in row.error) == ("pending", 1, True)
    clock.now += 120_000  # past the retry backoff
    responder.run_pending()
    with engine.connect() as conn:
        steps = {r.step: (r.status, r.attempts) for r in conn.execute(select(actions))}
    assert steps == {"call": ("failed", 2), "evidence": ("done", 1)}


def test_shadow_playbook_records_what_it_would_do(tmp_path: Path) -> None:
    book = tmp_path / "shadow.yaml"
    book.write_text(
        "name: shadow_book\nmode: shadow\nmatch: {min_severity: low}\nsteps:\n"
        "  - {name: terminate, action: terminate_session}\n"
    )
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    responder = Responder(
        engine, [load_playbook(book, discover_actions())], tmp_path / "d", "agent.control", clock=Clock()
    )
    prepared = responder.prepare(session_events(), [alert()])
    assert prepared.messages == []
    with engine.connect() as conn:
        assert conn.execute(select(actions.c.status)).scalar() == "skipped"
    assert status_from_store(engine, "s1").status == "active"


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\nsteps: []\n", "at least one step"),
        ("name: x\nsteps:\n  - {name: a, action: nope}\n", "unknown action 'nope'"),
        ("name: x\nsteps:\n  - {name: a, action: terminate_session, params: {bogus: 1}}\n", "bogus"),
        ("name: x\ncolour: red\nsteps:\n  - {name: a, action: terminate_session}\n", "colour"),
        (
            "name: x\nsteps:\n  - {name: a, action: terminate_session}\n  - {name: a, action: collect_evidence}\n",
            "used twice",
        ),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_playbooks_are_refused_with_the_file_and_field_named(tmp_path: Path, text: str, message: str) -> None:
    from agentwatch.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_playbook(path, discover_actions())
    assert str(path) in str(info.value)


def test_terminate_calls_a_signed_webhook_and_a_dead_one_does_not_hold_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from agentwatch.lab.broker import free_port
    from agentwatch.respond.webhook import verify

    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("TERMINATE_HOOK_SECRET", "s3cret")
    for url, expect in (
        (f"http://127.0.0.1:{httpd.server_address[1]}/terminate", "delivered"),
        (f"http://127.0.0.1:{free_port()}/nobody-home", "failed"),
    ):
        book = tmp_path / f"{expect}.yaml"
        book.write_text(
            f"name: t_{expect}\nmatch: {{min_severity: low}}\nsteps:\n"
            f"  - {{name: terminate, action: terminate_session, params: "
            f"{{webhook_url: '{url}', secret_env: TERMINATE_HOOK_SECRET, timeout_s: 1}}}}\n"
        )
        engine = open_store(f"sqlite:///{tmp_path / expect}.db")
        responder = Responder(
            engine, [load_playbook(book, discover_actions())], tmp_path / expect, "agent.control", clock=Clock()
        )
        prepared = responder.prepare(session_events(), [alert()])
        assert [msgspec.json.decode(m.value)["type"] for m in prepared.messages] == ["terminate_session"]
        assert prepared.inline[0].outcome.result["webhook"].startswith(expect)
    httpd.shutdown()
    [(headers, body)] = received
    assert verify(b"s3cret", headers["X-Agentwatch-Timestamp"], body, headers["X-Agentwatch-Signature"])
    assert msgspec.json.decode(body)["type"] == "terminate_session"
