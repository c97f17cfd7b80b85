"""`run --worker alerts`: the batch publishes alerts and terminate_session, nothing else (issue 13).

`run` writes no incident, step or journal row; `agentwatch respond --consume` (its own consumer
group on the alerts and input topics) opens the incident, records the terminate step as the
command `run` already sent (found on the control topic by its session-derived id), and runs
evidence and the rest. Against the embedded broker and SQLite + PostgreSQL: the command is out
when the batch that raised the alert commits, with no incident row yet; `respond` then opens
the incident with complete look-back evidence; `respond` killed at either crash point and
restarted duplicates no incident, step or command; and a store whose incident tables are
locked by a stuck transaction does not hold `run` up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import create_engine, func, select, text

from agentwatch.config import Config, load_config
from agentwatch.ingest.monitor_process import start_monitor
from agentwatch.ingest.topics import all_topics, ensure_topics
from agentwatch.lab.broker import EmbeddedBroker
from agentwatch.lab.topic_io import publish_events, read_topic
from agentwatch.respond.batch_containment import BatchContainment
from agentwatch.respond.control import identity_key, session_command_id
from agentwatch.respond.playbook_engine import load_playbooks
from agentwatch.store import actions, incident_events, incidents, open_store
from tests.conftest import write_config
from tests.test_response_e2e import SESSION, exfiltration_session
from tests.test_response_workers import ROOT, _env, respond, rows, wait_until
from tests.test_store import alert

#: `agentwatch respond --consume` that SIGKILLs itself at a crash point of its first poll with an alert.
DIES_AT = r"""
import os, signal, sys
from agentwatch.cli.main import main
from agentwatch.respond import alert_consumer

point = sys.argv[2]
original = alert_consumer.AlertConsumer.__init__


def init(self, *args, **kwargs):
    original(self, *args, **kwargs)
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    if point == "after_prepare":
        self.after_prepare = lambda: die() if self.responder._watched else None
    else:
        self.after_confirm = lambda: die() if self.responder._watched else None


alert_consumer.AlertConsumer.__init__ = init
main(["--config", sys.argv[1], "respond", "--bootstrap-servers", sys.argv[3]])
"""


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM; a process that does not exit in time is made to dump its threads (faulthandler)."""
    proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _out, err = proc.communicate(timeout=30)
        raise AssertionError("respond did not stop on SIGTERM:\n" + err[-6000:]) from None
    assert proc.returncode == 0, err[-3000:]


def settled(engine) -> bool:  # type: ignore[no-untyped-def]
    """Every planned step finished: terminate, evidence, postmortem and the approval requests among them
    (a second playbook's identical evidence/postmortem step covers contain_session's when planned first)."""
    final = rows(engine)
    done = {r.action for r in final if r.status == "done"}
    wanted = {"terminate_session", "collect_evidence", "draft_postmortem", "request_approval"}
    return wanted <= done and all(r.status == "done" for r in final)


def alerts_config(config: Config, store_url: str, path: Path) -> tuple[Config, Path]:
    config.monitor.store_url = store_url  # the shipped playbooks: terminate, evidence, postmortem, approvals
    write_config(config, path)
    path.write_text(path.read_text() + '[response]\nworker = "alerts"\n')
    return load_config(path), path


def count(engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def commands(bootstrap: str, topic: str) -> list[dict]:  # type: ignore[type-arg]
    return [msgspec.json.decode(v) for v in read_topic(bootstrap, topic)]


def run_monitor(bootstrap: str, config: Config, seen: list[tuple[int, int, int]] | None = None) -> None:
    """`run` in this process until idle; ``seen`` gets, after each committed batch that published
    alerts, (alerts published, commands on the control topic, incident rows)."""
    monitor = start_monitor(bootstrap, config, exit_on_idle_s=3)
    assert monitor.responder is None and monitor.containment is not None
    engine = open_store(config.store_url)
    if seen is not None:

        def after_batch(stats) -> None:  # type: ignore[no-untyped-def]
            if stats.alerts_published and not seen:
                seen.append(
                    (
                        stats.alerts_published,
                        len(read_topic(bootstrap, config.monitor.control_topic)),
                        count(engine, incidents),
                    )
                )

        monitor.on_batch = after_batch
    monitor.run()
    engine.dispose()


# -- the batch's containment, no broker -------------------------------------------------
def test_only_enforce_playbooks_that_start_with_terminate_produce_one_command_per_session(tmp_path: Path) -> None:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "a.yaml").write_text(
        "name: a\nmode: enforce\nmatch: {min_severity: high, alert_modes: [enforce]}\n"
        "steps: [{name: t, action: terminate_session}, {name: e, action: collect_evidence}]\n"
    )
    (playbooks / "b.yaml").write_text(  # shadow: records what it would do, sends nothing
        "name: b\nmode: shadow\nmatch: {min_severity: low, alert_modes: [alert, enforce]}\n"
        "steps: [{name: t, action: terminate_session}]\n"
    )
    (playbooks / "c.yaml").write_text(  # terminate after bookkeeping: not in the batch
        "name: c\nmode: enforce\nmatch: {min_severity: low, alert_modes: [alert]}\n"
        "steps: [{name: e, action: collect_evidence}, {name: t, action: terminate_session}]\n"
    )
    containment = BatchContainment(load_playbooks(playbooks), "agent.control")
    secret_session = "s-AKIA" + "QWERTYUIOPASDFGH"
    alerts = [
        alert("s1"),
        alert("s1", detector="other"),  # a second alert of the same session: one command
        alert("s2", severity="medium"),  # below the bar
        alert(secret_session),
    ]
    out = containment.commands(alerts, 1_767_225_600_000)
    bodies = [json.loads(m.value) for m in out]
    assert [b["session_key"] for b in bodies] == [identity_key("s1"), identity_key(secret_session)]
    assert [m.dedup_id for m in out] == [
        session_command_id("terminate_session", "s1"),
        session_command_id("terminate_session", secret_session),
    ]
    assert all(b["command_id"] == m.dedup_id for b, m in zip(bodies, out, strict=True))
    assert "AKIA" not in out[1].value.decode() and "AKIA" not in out[1].key.decode()  # type: ignore[union-attr]
    again = containment.commands(alerts, 1_767_225_999_000)  # a re-processed batch: the same ids
    assert [m.dedup_id for m in again] == [m.dedup_id for m in out]


def test_the_alerts_mode_is_a_worker_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTWATCH_RESPONSE_WORKER", "alerts")
    assert load_config(None).response.worker == "alerts"


def test_respond_consume_without_kafka_is_a_one_line_error(isolated_config: Config, tmp_path: Path) -> None:
    _config, path = alerts_config(isolated_config, f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "a.toml")
    env = {**_env(), "AGENTWATCH_BOOTSTRAP_SERVERS": ""}
    done = subprocess.run(
        [sys.executable, "-m", "agentwatch.cli", "--config", str(path), "respond"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "--bootstrap-servers" in done.stderr and "Traceback" not in done.stderr, done.stderr


# -- run + respond, with a broker ---------------------------------------------------------
#: A session id (and so event ids) carrying a secret: redacted on the alerts and control topics.
SECRET_SESSION = "exfil-AKIA" + "QWERTYUIOPASDFGH"


@pytest.mark.broker
@pytest.mark.parametrize("session_id", [SESSION, SECRET_SESSION], ids=["plain", "secret_in_ids"])
def test_run_terminates_in_the_batch_and_respond_opens_the_incident_with_evidence(
    broker: EmbeddedBroker, isolated_config: Config, store_url: str, tmp_path: Path, session_id: str
) -> None:
    bootstrap = broker.bootstrap_servers
    config, path = alerts_config(isolated_config, store_url, tmp_path / "agentwatch.toml")
    control = config.monitor.control_topic
    topic = next(t for t, f in config.monitor.inputs.items() if f == "native")
    ensure_topics(bootstrap, all_topics(config.monitor))
    session = [
        {**e, "session_id": session_id, "event_id": e["event_id"].replace(SESSION, session_id)}
        for e in exfiltration_session(int(time.time() * 1000) - 60_000)
    ]
    publish_events(bootstrap, topic, session)

    seen: list[tuple[int, int, int]] = []
    run_monitor(bootstrap, config, seen)
    # the batch that published the alert had terminate_session on the topic when it committed,
    # and no incident row existed
    [(published, on_topic, incident_rows)] = seen
    assert published >= 1 and on_topic == 1 and incident_rows == 0
    engine = open_store(store_url)
    assert (count(engine, incidents), count(engine, actions), count(engine, incident_events)) == (0, 0, 0)
    [command] = commands(bootstrap, control)
    assert command["type"] == "terminate_session"
    assert command["command_id"] == session_command_id("terminate_session", session_id)
    assert command["session_key"] == identity_key(session_id)
    assert "AKIA" not in json.dumps(command)

    respond_started_ms = int(time.time() * 1000)
    worker = respond(path, "--bootstrap-servers", bootstrap)
    try:
        done = wait_until(lambda: settled(engine), 90)
    finally:
        stop(worker)
    assert done is not None, [(r.step, r.status, r.error) for r in rows(engine)]
    with engine.connect() as conn:
        [incident] = conn.execute(select(incidents)).all()
        journaled = {r.event_id for r in conn.execute(select(incident_events.c.event_id))}
    # the incident's clock is run's: opened and contained when run published the alert and command
    assert incident.first_alert_ts_ms < respond_started_ms
    assert next(r for r in rows(engine) if r.action == "terminate_session").finished_ms < respond_started_ms
    assert incident.session_id == session_id and incident.status == "contained"  # the real id, from the journal
    steps = {r.action: r for r in rows(engine)}
    terminate = steps["terminate_session"]
    assert terminate.attempts == 1
    assert terminate.result["command_id"] == command["command_id"]
    assert terminate.result["already_delivered"] == [command["command_id"]]  # run's, recognised by id
    assert [c["command_id"] for c in commands(bootstrap, control)] == [command["command_id"]]  # not sent again
    assert journaled == {e["event_id"] for e in session}  # look-back and the events after, all journaled
    bundle = Path(steps["collect_evidence"].result["path"])
    in_bundle = {json.loads(line)["event_id"] for line in (bundle / "events.jsonl").read_text().splitlines()}
    assert f"{session_id}:000" in in_bundle  # the look-back (from session_start) is in the evidence
    engine.dispose()


@pytest.mark.broker
@pytest.mark.parametrize("point", ["after_prepare", "after_confirm"])
def test_respond_killed_mid_poll_and_restarted_duplicates_nothing(
    broker: EmbeddedBroker, isolated_config: Config, store_url: str, tmp_path: Path, point: str
) -> None:
    bootstrap = broker.bootstrap_servers
    config, path = alerts_config(isolated_config, store_url, tmp_path / "agentwatch.toml")
    control = config.monitor.control_topic
    topic = next(t for t, f in config.monitor.inputs.items() if f == "native")
    ensure_topics(bootstrap, all_topics(config.monitor))
    publish_events(bootstrap, topic, exfiltration_session(int(time.time() * 1000) - 60_000))
    run_monitor(bootstrap, config)
    assert len(read_topic(bootstrap, control)) == 1

    child = subprocess.run(
        [sys.executable, "-c", DIES_AT, str(path), point, bootstrap],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stderr[-3000:]
    engine = open_store(store_url)
    assert count(engine, incidents) == 1  # the store transaction committed before the kill
    before = {r.step: r.status for r in rows(engine)}
    assert before["terminate"] == ("running" if point == "after_prepare" else "done")

    worker = respond(path, "--bootstrap-servers", bootstrap)
    try:
        done = wait_until(lambda: settled(engine), 90)
    finally:
        stop(worker)
    assert done is not None, [(r.step, r.status, r.error) for r in rows(engine)]
    assert count(engine, incidents) == 1
    final = rows(engine)
    assert sum(r.action == "terminate_session" for r in final) == 1
    [only] = commands(bootstrap, control)  # run's command; neither respond sent it again
    terminate = next(r for r in final if r.step == "terminate")
    assert terminate.result["command_id"] == only["command_id"]
    assert terminate.attempts == (2 if point == "after_prepare" else 1)  # taken over once, by id not resent
    assert only["command_id"] in terminate.result["already_delivered"]
    engine.dispose()


@pytest.mark.broker
def test_a_locked_incident_store_does_not_hold_run_up(
    broker: EmbeddedBroker, isolated_config: Config, postgres_url: str, tmp_path: Path
) -> None:
    """PostgreSQL: a transaction sits on exclusive locks of the incident and journal tables (a stuck
    or slow responder); `run --worker alerts` still detects, terminates and commits every batch."""
    bootstrap = broker.bootstrap_servers
    base = create_engine(postgres_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    name = f"aw_locked_{os.getpid()}"
    with base.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    config, _path = alerts_config(isolated_config, url, tmp_path / "agentwatch.toml")
    topic = next(t for t, f in config.monitor.inputs.items() if f == "native")
    ensure_topics(bootstrap, all_topics(config.monitor))
    publish_events(bootstrap, topic, exfiltration_session(int(time.time() * 1000) - 60_000))
    open_store(url).dispose()  # the schema exists before the lock is taken
    locker = create_engine(url)
    held = locker.connect()
    tx = held.begin()
    held.execute(text("LOCK TABLE incidents, actions, incident_events, timeline IN ACCESS EXCLUSIVE MODE"))
    try:
        finished = threading.Event()
        thread = threading.Thread(target=lambda: (run_monitor(bootstrap, config), finished.set()), daemon=True)
        thread.start()
        assert finished.wait(90), "run was held up by the locked incident tables"
        assert len(read_topic(bootstrap, config.monitor.control_topic)) == 1
    finally:
        tx.rollback()
        held.close()
        locker.dispose()
        with base.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        base.dispose()
