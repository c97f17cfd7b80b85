"""Crash windows in the response path (issue 9, item 7), on the embedded broker and a real store.

A monitor process is killed (``os._exit``: no clean-up, like SIGKILL) at one point of
its batch — after the store marked ``terminate_session`` running but before delivery;
after delivery but before the alert ledger; after the ledger but before ``confirm`` —
and a fresh monitor is started on the same store and topics. The command must go out
(or the step be recognised as delivered) at once, not after a grace timer, and
``agent.control`` must hold the command exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import select

from agentwatch.config import Config
from agentwatch.ingest.monitor_process import start_monitor
from agentwatch.ingest.topics import all_topics, ensure_topics
from agentwatch.lab.broker import EmbeddedBroker
from agentwatch.lab.topic_io import publish_events, read_topic
from agentwatch.respond.action_spec import OutgoingMessage
from agentwatch.respond.playbook_engine import load_playbooks
from agentwatch.respond.responder import Responder
from agentwatch.store import actions, incidents, open_store
from tests.conftest import write_config
from tests.test_responder import session_events
from tests.test_response_e2e import exfiltration_session
from tests.test_store import alert

ROOT = Path(__file__).resolve().parent.parent
#: What "promptly" means here (measured 0.2–1.4 s on a loaded 2-core machine); the old grace timer was 30 s.
PROMPT_S = 5.0

PLAYBOOK = """
name: contain_session
mode: enforce
match: {min_severity: high, alert_modes: [enforce]}
steps:
  - {name: terminate, action: terminate_session}
"""

CHILD = r"""
import os, sys
from agentwatch.config import load_config
from agentwatch.ingest.kafka_runner import KafkaMonitor
from agentwatch.ingest.monitor_process import start_monitor
from agentwatch.respond.responder import Responder

config_path, bootstrap, window = sys.argv[1:4]
config = load_config(config_path)
control = config.monitor.control_topic


def die():
    os._exit(9)  # no finally, no clean-up: what SIGKILL leaves behind


real_deliver = KafkaMonitor._deliver


def deliver(self, outgoing):
    if window == "before_delivery" and any(m.topic == control for m in outgoing):
        die()
    delivered = real_deliver(self, outgoing)
    if window == "after_delivery" and any(m.topic == control for m in outgoing):
        die()
    return delivered


def confirm(self, prepared, _real=Responder.confirm):
    if window == "before_confirm" and prepared.inline:
        die()
    return _real(self, prepared)


KafkaMonitor._deliver = deliver
Responder.confirm = confirm
start_monitor(bootstrap, config, exit_on_idle_s=30).run()
sys.exit(3)  # the crash point was never reached
"""


def _commands(bootstrap: str, topic: str) -> list[dict]:  # type: ignore[type-arg]
    return [msgspec.json.decode(v) for v in read_topic(bootstrap, topic)]


def _terminate_status(engine) -> str | None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(actions.c.status).where(actions.c.action == "terminate_session")).scalar()


@pytest.mark.broker
@pytest.mark.parametrize("window", ["before_delivery", "after_delivery", "before_confirm"])
def test_a_crash_in_the_response_path_neither_delays_nor_duplicates_the_command(
    broker: EmbeddedBroker, isolated_config: Config, store_url: str, tmp_path: Path, window: str
) -> None:
    bootstrap = broker.bootstrap_servers
    config = isolated_config
    config.monitor.store_url = store_url
    playbooks = tmp_path / "playbooks"  # termination only: the bookkeeping steps are not under test
    playbooks.mkdir()
    (playbooks / "contain.yaml").write_text(PLAYBOOK)
    config.monitor.playbooks_dir = str(playbooks)
    control = config.monitor.control_topic
    topic = next(t for t, f in config.monitor.inputs.items() if f == "native")
    ensure_topics(bootstrap, all_topics(config.monitor))
    publish_events(bootstrap, topic, exfiltration_session(int(time.time() * 1000) - 60_000))
    path = write_config(config, tmp_path / "agentwatch.toml")

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AGENTWATCH_STORE_URL", None)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), bootstrap, window],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert child.returncode == 9, child.stderr[-3000:]

    engine = open_store(store_url)
    assert _terminate_status(engine) == "running"  # what the crash left behind
    before = _commands(bootstrap, control)
    assert len(before) == (0 if window == "before_delivery" else 1)

    # A new consumer group re-reads the same uncommitted batch without waiting out the dead
    # member's session timeout (6 s) — the response path, not the group, is under test.
    config.monitor.group_id += "-restarted"
    monitor = start_monitor(bootstrap, config)
    thread = threading.Thread(target=monitor.run, daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        elapsed = None
        while time.monotonic() - started < 15:
            if _terminate_status(engine) == "done" and _commands(bootstrap, control):
                elapsed = time.monotonic() - started
                break
            time.sleep(0.05)
        assert elapsed is not None and elapsed < PROMPT_S, f"command settled after {elapsed}s"
        deadline = time.monotonic() + 20
        while monitor.stats.batches < 1 and time.monotonic() < deadline:  # the re-read batch went through
            time.sleep(0.05)
        assert monitor.stats.batches >= 1
    finally:
        monitor.stop_event.set()
        thread.join(timeout=30)
    commands = _commands(bootstrap, control)
    assert len(commands) == 1 and commands[0]["type"] == "terminate_session", commands
    with engine.connect() as conn:
        assert conn.execute(select(incidents.c.status)).scalar() == "contained"
    assert _terminate_status(engine) == "done"
    engine.dispose()


class TopicLog:
    """A stand-in for ``agent.control`` with the sender's interface (no broker needed)."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    def __call__(self, messages: list[OutgoingMessage]) -> None:
        self.sent.extend(messages)

    def find_delivered(self, topic: str, ids: set[str]) -> set[str]:
        return {m.dedup_id for m in self.sent if m.topic == topic and m.dedup_id in ids}


def _responder(store_url: str, tmp_path: Path, log: TopicLog) -> Responder:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir(exist_ok=True)
    (playbooks / "contain.yaml").write_text(PLAYBOOK)
    return Responder(open_store(store_url), load_playbooks(playbooks), tmp_path / "data", "agent.control", send=log)


@pytest.mark.parametrize("delivered", [False, True], ids=["crash-before-delivery", "crash-after-delivery"])
def test_a_live_owners_step_is_left_alone_and_a_dead_owners_is_taken_over_at_once(
    store_url: str, tmp_path: Path, delivered: bool
) -> None:
    topic = TopicLog()
    first = _responder(store_url, tmp_path, topic)
    prepared = first.prepare(session_events(), [alert()])  # the store now says "running", owner: first
    [command] = prepared.messages
    assert command.dedup_id is not None and command.dedup_id in command.value.decode()
    if delivered:
        topic(prepared.messages)  # delivered; the crash comes before confirm

    peer = _responder(store_url, tmp_path, topic)
    assert peer.run_pending() == 0  # the owner is alive: its step is in flight, not abandoned
    assert len(topic.sent) == (1 if delivered else 0)

    first.liveness.close()  # the owner dies (its lock goes, as with SIGKILL)
    assert peer.run_pending() == 1  # no grace period: taken over in the next round
    assert [m.dedup_id for m in topic.sent] == [command.dedup_id]  # exactly once on the topic
    with peer.engine.connect() as conn:
        row = conn.execute(select(actions).where(actions.c.action == "terminate_session")).one()
        assert conn.execute(select(incidents.c.status)).scalar() == "contained"
    assert (row.status, row.owner, row.attempts) == ("done", peer.liveness.incarnation, 2)
    assert ("already_delivered" in row.result) is delivered
    peer.stop(timeout_s=1)


def test_a_step_whose_send_failed_is_retried_by_its_own_process_without_a_duplicate(
    store_url: str, tmp_path: Path
) -> None:
    class Flaky(TopicLog):
        fail = True

        def __call__(self, messages: list[OutgoingMessage]) -> None:
            super().__call__(messages)  # delivered, but the ack is lost
            if self.fail:
                self.fail = False
                raise TimeoutError("no ack")

    topic = Flaky()
    responder = _responder(store_url, tmp_path, topic)
    prepared = responder.prepare(session_events(), [alert()])
    with responder.engine.begin() as conn:  # the batch failed before delivery: the worker runs it
        conn.execute(actions.update().values(status="pending"))
    responder._release(*(i.action_key for i in prepared.inline))
    with pytest.raises(TimeoutError):
        responder.run_pending()
    assert responder.run_pending() == 1  # ours, no longer in flight: retried at once
    assert len(topic.sent) == 1
    responder.stop(timeout_s=1)
