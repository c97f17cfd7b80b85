"""Notifiers (agentwatch.notify): the outbox, per-notifier retries and metrics, and each output
checked from the receiving end — a Standard Webhooks verifier, a loopback Alertmanager, the fake
Slack Web API, and the OCSF Detection Finding's required fields."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.engine import Engine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from agentwatch.errors import ConfigError
from agentwatch.notify.dispatcher import NotificationWorker
from agentwatch.notify.loader import build_notifiers
from agentwatch.notify.spec import NotifierContext
from agentwatch.respond.action_spec import OutgoingMessage
from agentwatch.store import incident_changes, notifier_cursors, open_store
from tests.fake_slack import FakeSlack
from tests.notify_helpers import HOSTILE, Receiver, alert, move, open_incident

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


class Clock:
    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def worker(
    engine: Engine,
    config: dict[str, Any],
    tmp_path: Path,
    env: dict[str, str] | None = None,
    send: Any = None,
    clock: Clock | None = None,
) -> NotificationWorker:
    notifiers = build_notifiers(config, NotifierContext(data_dir=tmp_path, send=send, environ=env or {}))
    return NotificationWorker(engine, notifiers, clock=clock or Clock())


def sample(name: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("agentwatch_notifications_total", {"notifier": name, "outcome": outcome}) or 0.0


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_store(f"sqlite:///{tmp_path / 'store.db'}")


def test_every_lifecycle_change_lands_in_the_outbox_in_order(store_url: str) -> None:
    engine = open_store(store_url)
    incident = open_incident(engine, alert("medium"))
    with engine.begin() as conn:  # a higher revision of the same alert raises the incident's severity
        from agentwatch.respond.incident_lifecycle import IncidentSettings, attach_alert

        attach_alert(conn, alert("critical", revision=2), IncidentSettings(), 1_700_000_050_000, 1_700_000_000_000)
        attach_alert(conn, alert("high", detector="rates"), IncidentSettings(), 1_700_000_060_000, 1_700_000_000_000)
    move(engine, incident, "contained")
    move(engine, incident, "resolved", 1_700_000_200_000)
    with engine.connect() as conn:
        rows = conn.execute(select(incident_changes).order_by(incident_changes.c.seq)).all()
    assert [(r.change, r.severity, r.status) for r in rows] == [
        ("opened", "medium", "open"),
        ("severity_raised", "critical", "open"),  # the later high alert raises nothing
        ("contained", "critical", "contained"),
        ("resolved", "critical", "resolved"),
    ]


def test_signed_webhook_verifies_with_the_standard_webhooks_library_and_retries_with_the_same_id(
    engine: Engine, tmp_path: Path
) -> None:
    clock = Clock()
    with Receiver(statuses=[503]) as rx:
        env = {"HOOK_URL": rx.url + "/hook?token=s3cr3t-in-url", "HOOK_SECRET": SECRET}
        w = worker(
            engine,
            {
                "hook": {
                    "type": "webhook",
                    "url_env": "HOOK_URL",
                    "secret_env": "HOOK_SECRET",
                    "incident_url": "https://soc.example/incidents",
                }
            },
            tmp_path,
            env,
            clock=clock,
        )
        failed = sample("hook", "failed")
        incident = open_incident(engine, alert("high", summary=HOSTILE))
        assert w.run_pending() == 0  # 503: retried later, not now
        assert sample("hook", "failed") == failed + 1
        with engine.connect() as conn:
            cursor = conn.execute(select(notifier_cursors).where(notifier_cursors.c.incident_id == incident)).one()
        assert cursor.attempts == 1 and cursor.next_attempt_ms == clock.now + 2000  # backoff_base_s
        assert "s3cr3t" not in (cursor.error or "")
        assert w.run_pending() == 0  # not due yet
        clock.now += 2000
        assert w.run_pending() == 1
        move(engine, incident, "contained")
        assert w.run_pending() == 1
    first, retry, contained = rx.got
    assert first.headers["webhook-id"] == retry.headers["webhook-id"]  # receivers de-duplicate on it
    assert contained.headers["webhook-id"] != first.headers["webhook-id"]
    verifier = Webhook(SECRET)
    for request in (retry, contained):
        payload = verifier.verify(request.body, request.headers)
        assert payload["data"]["incident_id"] == incident
    assert [r.json()["type"] for r in (retry, contained)] == ["incident.opened", "incident.contained"]
    data = retry.json()["data"]
    assert data["incident_url"] == f"https://soc.example/incidents/{incident}"
    assert "ghp_" not in retry.body.decode() and "[REDACTED:github_token]" in data["summaries"][0]
    assert data["techniques"] == ["T1552.001", "T1528"]  # the cloud_credentials rule's tags
    assert data["resources"] == ["~/.aws/credentials"] and "drop.evil.example" in data["destinations"]
    tampered = retry.body.replace(b"incident.opened", b"incident.resolved")
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, retry.headers)


def test_min_severity_filters_and_exhausted_retries_drop_but_the_next_change_is_tried(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    with Receiver(statuses=[500, 500]) as rx:
        env = {"URL": rx.url + "/?sig=topsecret", "SECRET": SECRET}
        w = worker(
            engine,
            {
                "hook": {
                    "type": "webhook",
                    "url_env": "URL",
                    "secret_env": "SECRET",
                    "min_severity": "high",
                    "max_attempts": 2,
                }
            },
            tmp_path,
            env,
            clock=clock,
        )
        filtered, dropped = sample("hook", "filtered"), sample("hook", "dropped")
        low = open_incident(engine, alert("low", session="quiet"))
        loud = open_incident(engine, alert("critical", session="loud"))
        caplog.set_level(logging.INFO)
        w.run_pending()
        clock.now += 10_000
        w.run_pending()  # second failure: dropped
        assert sample("hook", "dropped") == dropped + 1
        move(engine, loud, "contained")
        clock.now += 10_000
        assert w.run_pending() == 1
        move(engine, low, "contained")
        w.run_pending()
    assert sample("hook", "filtered") == filtered + 2  # the low incident's opened and contained
    assert [r.json()["data"]["incident_id"] for r in rx.got] == [loud, loud, loud]
    assert rx.got[-1].json()["type"] == "incident.contained"
    assert rx.got[-1].json()["data"]["first"] is True  # the opened was dropped: this is the first it got
    assert "topsecret" not in caplog.text and "dropped after 2 attempts" in caplog.text


def test_notifier_configured_later_starts_from_its_own_floor(engine: Engine, tmp_path: Path) -> None:
    open_incident(engine, alert("high", session="old"))
    with Receiver() as rx:
        w = worker(
            engine,
            {"hook": {"type": "webhook", "url_env": "U", "secret_env": "S"}},
            tmp_path,
            {"U": rx.url, "S": SECRET},
        )
        assert w.run_pending() == 0
        new = open_incident(engine, alert("high", session="new"))
        assert w.run_pending() == 1
    assert rx.got[0].json()["data"]["incident_id"] == new


def test_alertmanager_fires_moves_severity_and_resolves(engine: Engine, tmp_path: Path) -> None:
    with Receiver() as rx:
        w = worker(
            engine,
            {
                "am": {
                    "type": "alertmanager",
                    "url": rx.url,
                    "labels": {"team": "soc"},
                    "incident_url": "https://soc.example/i/{incident_id}",
                }
            },
            tmp_path,
        )
        incident = open_incident(engine, alert("medium"))
        w.run_pending()
        with engine.begin() as conn:
            from agentwatch.respond.incident_lifecycle import IncidentSettings, attach_alert

            attach_alert(conn, alert("critical", revision=2), IncidentSettings(), 1_700_000_050_000, 1)
        w.run_pending()
        move(engine, incident, "resolved", 1_700_000_300_000)
        w.run_pending()
    assert {r.path for r in rx.got} == {"/api/v2/alerts"}
    opened, raised, resolved = (r.json() for r in rx.got)
    assert len(opened) == 1
    labels = opened[0]["labels"]
    assert labels == {
        "team": "soc",
        "alertname": "AgentwatchIncident",
        "incident_id": incident,
        "severity": "medium",
        "agent_id": "coder-7",
        "mode": "alert",
    }
    assert opened[0]["startsAt"] == "2023-11-14T22:13:20.000Z"
    assert opened[0]["endsAt"] > opened[0]["startsAt"]  # firing for firing_s
    assert opened[0]["generatorURL"] == f"https://soc.example/i/{incident}"
    assert raised[0]["labels"]["severity"] == "critical"
    assert raised[1]["labels"] == labels and raised[1]["endsAt"] == "2023-11-14T22:14:10.000Z"  # old series ends
    assert resolved[0]["endsAt"] == "2023-11-14T22:18:20.000Z"  # the resolution time
    assert resolved[0]["annotations"]["status"] == "resolved"


def test_slack_posts_one_message_per_incident_and_updates_it_in_place(engine: Engine, tmp_path: Path) -> None:
    with FakeSlack() as fake:
        token = tmp_path / "slack-token"
        token.write_text("xoxb-from-a-mounted-file\n")  # token_file: a container secret
        env = {"AGENTWATCH_SLACK_CHANNEL": "C0SOC", "AGENTWATCH_SLACK_API_URL": fake.api_url}
        config = {"type": "slack", "token_file": str(token), "incident_url": "https://soc.example/incidents/"}
        w = worker(engine, {"slack": config}, tmp_path, env)
        approval_posts = REGISTRY.get_sample_value("agentwatch_approvals_slack_calls_total", {"outcome": "posted"})
        posts = REGISTRY.get_sample_value("agentwatch_notify_slack_calls_total", {"outcome": "posted"}) or 0.0
        incident = open_incident(engine, alert("high", summary=HOSTILE))
        w.run_pending()
        move(engine, incident, "contained")
        move(engine, incident, "resolved", 1_700_000_200_000)
        w.run_pending()
        assert fake.methods().count("chat.postMessage") == 1
        assert fake.methods().count("chat.update") == 2
        assert REGISTRY.get_sample_value("agentwatch_notify_slack_calls_total", {"outcome": "posted"}) == posts + 1
        assert (
            REGISTRY.get_sample_value("agentwatch_approvals_slack_calls_total", {"outcome": "posted"}) == approval_posts
        )  # incident messages are not approval calls
        (message,) = fake.messages.values()
    rendered = json.dumps(message.blocks, ensure_ascii=False)
    assert message.updates == 2 and "Incident resolved" in message.text
    assert "<!channel>" not in rendered and "<https://evil.example" not in rendered
    assert "&lt;!channel&gt;" in rendered and "ghp_" not in rendered and "@\u2060here" in rendered
    assert f"<https://soc.example/incidents/{incident}|Open incident>" in rendered
    assert str(tmp_path) not in rendered  # a link, never a server path


def test_slack_is_left_out_when_optional_and_unconfigured_but_a_required_one_fails_in_one_line(
    engine: Engine, tmp_path: Path
) -> None:
    assert build_notifiers({"slack": {"type": "slack", "optional": True}}, NotifierContext(tmp_path, environ={})) == []
    with pytest.raises(ConfigError) as err:
        build_notifiers({"slack": {"type": "slack"}}, NotifierContext(tmp_path, environ={}))
    assert str(err.value) == "notifiers.slack (slack): token is not set (looked in $AGENTWATCH_SLACK_BOT_TOKEN)"
    with pytest.raises(ConfigError, match="unknown type 'pager'; installed: alertmanager"):
        build_notifiers({"x": {"type": "pager"}}, NotifierContext(tmp_path))
    with pytest.raises(ConfigError, match="notifiers.o: Object contains unknown field `colour`"):
        build_notifiers({"o": {"type": "ocsf_file", "colour": "red"}}, NotifierContext(tmp_path))
    with pytest.raises(ConfigError, match="whsec_"):
        build_notifiers(
            {"h": {"type": "webhook", "url_env": "U", "secret_env": "S"}},
            NotifierContext(tmp_path, environ={"U": "http://127.0.0.1:9/", "S": "not base64!"}),
        )


# -- OCSF Detection Finding (class 2004), OCSF 1.3.0: the schema's required attributes -----------
#: Required attributes of the Detection Finding class and the objects used (schema.ocsf.io 1.3.0).
REQUIRED = {
    "": ["activity_id", "category_uid", "class_uid", "finding_info", "metadata", "severity_id", "time", "type_uid"],
    "finding_info": ["uid", "title"],
    "metadata": ["product", "version"],
    "metadata.product": ["vendor_name"],
}
ENUMS = {
    "activity_id": {0, 1, 2, 3, 99},
    "severity_id": {0, 1, 2, 3, 4, 5, 6, 99},
    "status_id": {0, 1, 2, 3, 4, 5, 6, 99},
}
OBSERVABLE_TYPES = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 99}


def ocsf_problems(event: dict[str, Any]) -> list[str]:
    problems = []
    for path, keys in REQUIRED.items():
        obj: Any = event
        for part in filter(None, path.split(".")):
            obj = obj.get(part, {}) if isinstance(obj, dict) else {}
        problems += [f"{path or '<event>'}.{k} missing" for k in keys if k not in obj]
    if event.get("class_uid") != 2004 or event.get("category_uid") != 2:
        problems.append("not a Detection Finding")
    if event.get("type_uid") != 2004 * 100 + event.get("activity_id", -1):
        problems.append("type_uid is not class_uid * 100 + activity_id")
    problems += [f"{k}={event.get(k)} not in the enum" for k, allowed in ENUMS.items() if event.get(k) not in allowed]
    if not isinstance(event.get("time"), int):
        problems.append("time is not epoch milliseconds")
    for o in event.get("observables", []):
        if not (isinstance(o.get("name"), str) and o.get("type_id") in OBSERVABLE_TYPES):
            problems.append(f"bad observable {o}")
    for attack in event.get("finding_info", {}).get("attacks", []):
        if not any(k in attack for k in ("technique", "sub_technique", "tactic")):
            problems.append(f"bad attack {attack}")
    return problems


def test_ocsf_file_writes_valid_detection_findings_for_the_whole_lifecycle(store_url: str, tmp_path: Path) -> None:
    engine = open_store(store_url)
    w = worker(engine, {"ocsf_file": {"type": "ocsf_file", "incident_url": "https://soc.example/i"}}, tmp_path)
    incident = open_incident(engine, alert("medium", summary=HOSTILE))
    with engine.begin() as conn:
        from agentwatch.respond.incident_lifecycle import IncidentSettings, attach_alert

        attach_alert(conn, alert("high", revision=2), IncidentSettings(), 1_700_000_050_000, 1)
    move(engine, incident, "contained")
    move(engine, incident, "resolved", 1_700_000_200_000)
    assert w.run_pending() == 4
    lines = (tmp_path / "ocsf" / "findings.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    for event in events:
        assert ocsf_problems(event) == []
    assert [e["activity_id"] for e in events] == [1, 2, 2, 3]
    assert [e["severity_id"] for e in events] == [3, 4, 4, 4]
    assert [e["status_id"] for e in events] == [1, 1, 2, 4]
    assert {e["finding_info"]["uid"] for e in events} == {incident}
    assert len({e["metadata"]["uid"] for e in events}) == 4
    last = events[-1]
    assert last["finding_info"]["attacks"] == [
        {"technique": {"uid": "T1552"}, "sub_technique": {"uid": "T1552.001"}},
        {"technique": {"uid": "T1528"}},
    ]
    assert last["finding_info"]["src_url"] == f"https://soc.example/i/{incident}"
    observed = {(o["name"], o["type_id"], o["value"]) for o in last["observables"]}
    assert {
        ("actor.session.uid", 99, "s-1"),
        ("actor.app_name", 99, "coder-7"),
        ("actor.user.name", 5, "ann@acme.example"),
        ("resources.name", 10, "~/.aws/credentials"),
        ("unmapped.destinations", 1, "drop.evil.example"),
    } <= observed
    assert last["end_time"] == 1_700_000_200_000
    assert "ghp_" not in "\n".join(lines)


def test_ocsf_kafka_sends_one_finding_per_change_keyed_by_incident(engine: Engine, tmp_path: Path) -> None:
    sent: list[OutgoingMessage] = []
    w = worker(engine, {"k": {"type": "ocsf_kafka", "topic": "soc.findings"}}, tmp_path, send=sent.extend)
    incident = open_incident(engine, alert("critical"))
    move(engine, incident, "contained")
    assert w.run_pending() == 2
    assert [m.topic for m in sent] == ["soc.findings", "soc.findings"]
    assert {m.key for m in sent} == {incident.encode()}
    events = [json.loads(m.value) for m in sent]
    assert all(ocsf_problems(e) == [] for e in events) and [e["activity_id"] for e in events] == [1, 2]
    with pytest.raises(ConfigError, match="needs Kafka"):
        build_notifiers({"k": {"type": "ocsf_kafka"}}, NotifierContext(tmp_path))


# -- wiring: the responder's worker runs the notifiers; the catch-all playbook ----------------
def test_the_responders_worker_delivers_changes_and_the_catch_all_playbook_takes_the_rest(
    tmp_path: Path,
) -> None:
    from agentwatch.respond.playbook_engine import load_playbooks
    from agentwatch.respond.responder import Responder
    from agentwatch.store import actions

    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    notifications = worker(engine, {"ocsf_file": {"type": "ocsf_file"}}, tmp_path)
    responder = Responder(engine, load_playbooks(), tmp_path / "data", "agent.control", notifications=notifications)
    # a medium alert from an enforce-mode detector: neither contain_session (high) nor record_incident
    # (alert mode) takes it; a low one from an alert-mode detector neither
    responder.prepare([], [alert("medium", session="enf", mode="enforce"), alert("low", session="alt")])
    responder.prepare([], [alert("medium", session="rec", detector="novelty", mode="alert")])
    responder.run_pending()
    responder.stop(drain=True)  # drains the notifications too
    with engine.connect() as conn:
        planned = conn.execute(select(actions.c.incident_id, actions.c.playbook, actions.c.step)).all()
    by_incident: dict[str, set[tuple[str, str]]] = {}
    for row in planned:
        by_incident.setdefault(row.incident_id, set()).add((row.playbook, row.step))
    assert sorted(map(sorted, by_incident.values())) == sorted(
        [
            [("default_incident", "evidence"), ("default_incident", "postmortem")],
            [("default_incident", "evidence"), ("default_incident", "postmortem")],
            [("record_incident", "evidence"), ("record_incident", "postmortem")],  # no duplicate default steps
        ]
    )
    findings = [json.loads(x) for x in (tmp_path / "ocsf" / "findings.jsonl").read_text().splitlines()]
    assert len({f["finding_info"]["uid"] for f in findings}) == 3 and all(ocsf_problems(f) == [] for f in findings)


@pytest.mark.broker
def test_ocsf_kafka_through_the_monitors_producer_to_a_real_broker(broker: Any, engine: Engine, tmp_path: Path) -> None:
    from agentwatch.ingest.monitor_process import KafkaSender
    from agentwatch.ingest.topics import ensure_topics
    from agentwatch.lab.topic_io import read_topic

    bootstrap = broker.bootstrap_servers
    topic = f"findings-{tmp_path.name}"[:200]
    ensure_topics(bootstrap, [topic], partitions=1)
    sender = KafkaSender(bootstrap)
    try:
        w = worker(engine, {"k": {"type": "ocsf_kafka", "topic": topic}}, tmp_path, send=sender)
        incident = open_incident(engine, alert("high"))
        move(engine, incident, "resolved")
        assert w.run_pending() == 2
    finally:
        sender.close()
    events = [json.loads(v) for v in read_topic(bootstrap, topic)]
    assert [(e["finding_info"]["uid"], e["activity_id"]) for e in events] == [(incident, 1), (incident, 3)]
    assert all(ocsf_problems(e) == [] for e in events)


def test_alerts_carry_the_rules_that_fired_and_those_map_to_attack_techniques() -> None:
    from agentwatch.detect.alerts import raise_or_update
    from agentwatch.detect.detector_spec import Finding
    from agentwatch.detect.session_state import SessionState
    from agentwatch.events.audit_event import AuditEvent
    from agentwatch.notify.attack import techniques_for

    def ev(n: int) -> AuditEvent:
        return AuditEvent(event_id=f"e{n}", ts_ms=n, session_id="s", agent_id="a", kind="tool_call")

    session = SessionState(ev(0), recent_size=2)
    first = raise_or_update(
        session,
        "secret_access",
        Finding(score=0.6, reason="r", event_ids=("e1",), category="secret_access", rule="cloud_credentials"),
        "medium",
        "enforce",
        ev(1),
    )
    raised = raise_or_update(
        session,
        "secret_access",
        Finding(score=0.9, reason="r2", event_ids=("e2",), category="secret_access", rule="ssh_private_key"),
        "high",
        "enforce",
        ev(2),
    )
    assert first is not None and first.rules == ["cloud_credentials"]
    assert raised is not None and raised.rules == ["cloud_credentials", "ssh_private_key"]
    assert first.rules == ["cloud_credentials"]  # the published snapshot does not change afterwards
    assert techniques_for("secret_access", raised.rules) == ["T1552.001", "T1528", "T1552.004"]
    assert techniques_for("effect_rules", ["agent-settings-change"]) == ["T1562.001"]


def test_a_bad_notifier_in_the_config_stops_respond_with_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from agentwatch.cli.main import main

    config = tmp_path / "agentwatch.toml"
    config.write_text(
        f'[monitor]\ndata_dir = "{tmp_path / "data"}"\n[notifiers.pager]\ntype = "pager"\n'
        '[notifiers.hook]\ntype = "webhook"\nurl_env = "NO_SUCH_URL_VAR"\n'
    )
    result = CliRunner().invoke(main, ["--config", str(config), "respond"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "notifiers.hook (webhook): url is not set (looked in $NO_SUCH_URL_VAR)" in lines[0]


def test_the_shipped_config_writes_ocsf_and_adds_slack_only_when_its_settings_are_there(tmp_path: Path) -> None:
    from agentwatch.config import load_config

    shipped = load_config(None).notifiers
    names = [n.name for n in build_notifiers(shipped, NotifierContext(tmp_path, environ={}))]
    assert names == ["ocsf_file"]
    env = {"AGENTWATCH_SLACK_BOT_TOKEN": "xoxb-x", "AGENTWATCH_SLACK_CHANNEL": "C1"}
    built = build_notifiers(shipped, NotifierContext(tmp_path, environ=env))
    assert [(n.name, n.params.min_severity) for n in built] == [("ocsf_file", "info"), ("slack", "medium")]
