"""Response steps run by `agentwatch respond` processes, beside `run --worker external` (issue 13).

`run` keeps in its batch only what stops the bleeding (incidents, planned steps, the urgent
`terminate_session`); evidence, postmortems and approval requests are claimed from the store
by `agentwatch respond` processes — started here as users start them, `agentwatch --config F
respond` — on SQLite and PostgreSQL: they complete what `run` left, two of them never run a
step twice, and a step whose process was killed mid-step is taken over by another.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import select

from agentwatch.config import Config, load_config
from agentwatch.errors import ConfigError
from agentwatch.ingest.monitor_process import start_monitor
from agentwatch.ingest.topics import all_topics, ensure_topics
from agentwatch.lab.broker import EmbeddedBroker
from agentwatch.lab.topic_io import publish_events, read_topic
from agentwatch.respond.playbook_engine import load_playbooks
from agentwatch.respond.responder import Responder
from agentwatch.store import actions, open_store, timeline
from tests.conftest import write_config
from tests.test_responder import session_events
from tests.test_response_crash_windows import CHILD as CRASHING_MONITOR
from tests.test_response_crash_windows import PLAYBOOK as TERMINATE_ONLY
from tests.test_response_e2e import exfiltration_session
from tests.test_store import alert

ROOT = Path(__file__).resolve().parent.parent
AGENTWATCH = [sys.executable, "-m", "agentwatch.cli"]

#: Bookkeeping only: no step sends a control command, so `respond` needs no broker.
BOOKKEEPING = """
name: bookkeeping
mode: enforce
match: {min_severity: high, alert_modes: [enforce]}
steps:
  - {name: evidence, action: collect_evidence}
  - {name: postmortem, action: draft_postmortem}
"""

#: `agentwatch respond` whose evidence step kills its own process mid-step (SIGKILL: no clean-up).
DIES_MID_STEP = r"""
import os, signal, sys
from agentwatch.cli.main import main
from agentwatch.playbooks.actions.collect_evidence import CollectEvidence


def execute(self, ctx, params):
    os.kill(os.getpid(), signal.SIGKILL)


CollectEvidence.execute = execute
main(["--config", sys.argv[1], "respond"])
"""


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    env.pop("AGENTWATCH_STORE_URL", None)  # the config file names the store
    env.pop("AGENTWATCH_RESPONSE_WORKER", None)
    return env


def respond(config_path: Path, *args: str) -> subprocess.Popen[str]:
    """`agentwatch --config F respond …`, waited for until it says it is responding (log lines before
    that — a restarted one removing a killed one's evidence staging directory — are skipped)."""
    proc = subprocess.Popen(
        [*AGENTWATCH, "--config", str(config_path), "respond", *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    for _ in range(20):
        line = proc.stderr.readline()
        seen.append(line)
        if line.startswith("responding:") or not line:
            break
    if not seen[-1].startswith("responding:"):
        proc.kill()
        raise AssertionError("respond did not start:\n" + "".join(seen) + proc.stderr.read()[-3000:])
    return proc


def stop(proc: subprocess.Popen[str]) -> int:
    """SIGTERM, as compose and systemd stop it; returns how many steps it says it ran."""
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    found = re.search(r"stopped: ([\d,]+) steps run", err)
    assert found is not None, err[-3000:]
    return int(found.group(1).replace(",", ""))


def rows(engine) -> list:  # type: ignore[no-untyped-def, type-arg]
    with engine.connect() as conn:
        return list(conn.execute(select(actions).order_by(actions.c.action_key)).all())


def wait_until(check, timeout_s: float) -> float | None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def bookkeeping_config(config: Config, store_url: str, tmp_path: Path) -> Path:
    config.monitor.store_url = store_url
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir(exist_ok=True)
    (playbooks / "bookkeeping.yaml").write_text(BOOKKEEPING)
    config.monitor.playbooks_dir = str(playbooks)
    return write_config(config, tmp_path / "agentwatch.toml")


def plan(config: Config, sessions: list[str]) -> Responder:
    """What `run --worker external` does in its batches: incidents and pending steps, nothing run."""
    responder = Responder(
        open_store(config.store_url),
        load_playbooks(Path(config.monitor.playbooks_dir or "")),
        config.data_dir.resolve(),
        config.monitor.control_topic,
        external_worker=True,
    )
    for session in sessions:
        responder.confirm(responder.prepare(session_events(session), [alert(session)]))
    return responder


# -- the setting ----------------------------------------------------------------------
def test_the_worker_setting_comes_from_the_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGENTWATCH_RESPONSE_WORKER", raising=False)
    path = tmp_path / "agentwatch.toml"
    assert load_config(None).response.worker == "inline"  # nothing changes for current users
    path.write_text('[response]\nworker = "external"\n')
    assert load_config(path).response.worker == "external"
    monkeypatch.setenv("AGENTWATCH_RESPONSE_WORKER", "inline")
    assert load_config(path).response.worker == "inline"  # the environment overrides the file
    monkeypatch.setenv("AGENTWATCH_RESPONSE_WORKER", "threads")
    with pytest.raises(ConfigError, match="AGENTWATCH_RESPONSE_WORKER"):
        load_config(path)
    monkeypatch.delenv("AGENTWATCH_RESPONSE_WORKER")
    path.write_text('[response]\nworker = "elsewhere"\n')
    with pytest.raises(ConfigError):
        load_config(path)


def test_an_external_worker_responder_runs_no_step_and_does_not_drain_on_stop(
    isolated_config: Config, store_url: str, tmp_path: Path
) -> None:
    bookkeeping_config(isolated_config, store_url, tmp_path)
    responder = plan(isolated_config, ["s1"])
    responder.start()
    assert responder._worker is None and not responder.approvals._threads
    responder.stop(timeout_s=1)  # inline would drain here
    assert [(r.step, r.status, r.attempts) for r in rows(responder.engine)] == [
        ("evidence", "pending", 0),
        ("postmortem", "pending", 0),
    ]
    responder.engine.dispose()


# -- run (external) + respond, with a broker ---------------------------------------------
@pytest.mark.broker
def test_run_with_an_external_worker_leaves_bookkeeping_to_respond(
    broker: EmbeddedBroker, isolated_config: Config, store_url: str, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap_servers
    config = isolated_config
    config.monitor.store_url = store_url  # the shipped playbooks: terminate, evidence, postmortem, approvals
    path = write_config(config, tmp_path / "agentwatch.toml")
    path.write_text(path.read_text() + '[response]\nworker = "external"\n')
    config = load_config(path)
    control = config.monitor.control_topic
    topic = next(t for t, f in config.monitor.inputs.items() if f == "native")
    ensure_topics(bootstrap, all_topics(config.monitor))
    publish_events(bootstrap, topic, exfiltration_session(int(time.time() * 1000) - 60_000))

    monitor = start_monitor(bootstrap, config, exit_on_idle_s=3)
    thread = threading.Thread(target=monitor.run, daemon=True)
    thread.start()
    assert monitor.responder is not None
    engine = monitor.responder.engine
    assert wait_until(lambda: monitor.stats.batches >= 1, 60) is not None
    assert not any(t.name.startswith("agentwatch-responder") for t in threading.enumerate())
    thread.join(timeout=60)
    assert not thread.is_alive()

    # terminated in the batch, as before; everything else is still pending after `run` stopped
    steps = {r.step: r for r in rows(engine)}
    assert steps.pop("terminate").status == "done"
    assert len(read_topic(bootstrap, control)) == 1
    assert set(steps) == {"evidence", "postmortem", "approve_revoke_credentials", "approve_quarantine_agent"}
    assert {(r.status, r.attempts, r.owner) for r in steps.values()} == {("pending", 0, None)}

    worker = respond(path, "--bootstrap-servers", bootstrap)
    try:
        done = wait_until(lambda: all(r.status == "done" for r in rows(engine)), 60)
    finally:
        ran = stop(worker)
    assert done is not None, [(r.step, r.status, r.error) for r in rows(engine)]
    assert ran == 4
    assert {r.step: r.attempts for r in rows(engine)} == {"terminate": 1, **dict.fromkeys(steps, 1)}
    commands = [msgspec.json.decode(v) for v in read_topic(bootstrap, control)]
    assert [c["type"] for c in commands] == ["terminate_session"]  # respond sent nothing again
    engine.dispose()


@pytest.mark.broker
@pytest.mark.parametrize("window", ["before_delivery", "after_delivery"])
def test_a_termination_a_killed_monitor_left_running_is_taken_over_by_respond_once(
    broker: EmbeddedBroker, isolated_config: Config, store_url: str, tmp_path: Path, window: str
) -> None:
    """With the external worker the monitor runs no take-overs itself: `respond` does, at once, exactly once."""
    bootstrap = broker.bootstrap_servers
    config = isolated_config
    config.monitor.store_url = store_url
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "contain.yaml").write_text(TERMINATE_ONLY)
    config.monitor.playbooks_dir = str(playbooks)
    path = write_config(config, tmp_path / "agentwatch.toml")
    path.write_text(path.read_text() + '[response]\nworker = "external"\n')
    control = config.monitor.control_topic
    topic = next(t for t, f in config.monitor.inputs.items() if f == "native")
    ensure_topics(bootstrap, all_topics(config.monitor))
    publish_events(bootstrap, topic, exfiltration_session(int(time.time() * 1000) - 60_000))
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_MONITOR, str(path), bootstrap, window],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert child.returncode == 9, child.stderr[-3000:]
    engine = open_store(store_url)
    [terminate] = rows(engine)
    assert terminate.status == "running"
    assert len(read_topic(bootstrap, control)) == (0 if window == "before_delivery" else 1)

    worker = respond(path, "--bootstrap-servers", bootstrap)
    try:
        elapsed = wait_until(lambda: rows(engine)[0].status == "done", 30)
    finally:
        stop(worker)
    assert elapsed is not None and elapsed < 10, rows(engine)
    commands = [msgspec.json.decode(v) for v in read_topic(bootstrap, control)]
    assert [c["type"] for c in commands] == ["terminate_session"]
    [terminate] = rows(engine)
    assert terminate.attempts == 2 and ("already_delivered" in terminate.result) is (window == "after_delivery")
    engine.dispose()


# -- respond processes among themselves (no broker: no step sends) -----------------------
def test_two_respond_processes_share_the_steps_and_never_run_one_twice(
    isolated_config: Config, store_url: str, tmp_path: Path
) -> None:
    path = bookkeeping_config(isolated_config, store_url, tmp_path)
    first, second = respond(path), respond(path)
    try:
        responder = plan(isolated_config, [f"s{i}" for i in range(30)])
        done = wait_until(lambda: all(r.status == "done" for r in rows(responder.engine)), 120)
    finally:
        ran = [stop(first), stop(second)]
    final = rows(responder.engine)
    assert done is not None, [(r.action_key, r.status, r.error) for r in final if r.status != "done"]
    assert len(final) == 60 and sum(ran) == 60, ran
    assert all(n > 0 for n in ran), ran  # both worked: claims were contended, not serial
    assert {r.attempts for r in final} == {1}  # every claim counts an attempt: none ran twice
    assert len({r.owner for r in final}) == 2
    with responder.engine.connect() as conn:
        takeovers = conn.execute(select(timeline.c.text).where(timeline.c.text.contains("takes over")))
        assert takeovers.all() == []
    responder.engine.dispose()


def test_a_step_of_a_killed_respond_process_is_taken_over_by_another(
    isolated_config: Config, store_url: str, tmp_path: Path
) -> None:
    path = bookkeeping_config(isolated_config, store_url, tmp_path)
    responder = plan(isolated_config, ["s1"])
    engine = responder.engine
    child = subprocess.run(
        [sys.executable, "-c", DIES_MID_STEP, str(path)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    [evidence, postmortem] = rows(engine)
    assert (evidence.step, evidence.status, evidence.attempts) == ("evidence", "running", 1)  # what it left
    assert postmortem.status == "pending"
    dead = evidence.owner

    worker = respond(path)
    try:
        elapsed = wait_until(lambda: all(r.status == "done" for r in rows(engine)), 30)
    finally:
        ran = stop(worker)
    assert elapsed is not None and elapsed < 10, [(r.step, r.status, r.error) for r in rows(engine)]
    [evidence, postmortem] = rows(engine)
    assert (evidence.status, evidence.attempts) == ("done", 2) and evidence.owner not in (None, dead)
    assert (postmortem.status, postmortem.attempts) == ("done", 1) and ran == 2
    with engine.connect() as conn:
        texts = [r.text for r in conn.execute(select(timeline.c.text))]
    assert any("attempt 1 was abandoned" in t and "attempt 2 takes over" in t for t in texts), texts
    engine.dispose()


def test_respond_mistakes_are_one_line(isolated_config: Config, tmp_path: Path) -> None:
    config = isolated_config
    config.monitor.store_url = "postgresql+psycopg://agentwatch:hunter2@127.0.0.1:1/agentwatch"
    path = write_config(config, tmp_path / "bad-store.toml")
    result = subprocess.run(
        [*AGENTWATCH, "--config", str(path), "respond"], env=_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: cannot open the store postgresql+psycopg://agentwatch:***@127.0.0.1:1/agentwatch")
    assert "hunter2" not in result.stderr

    config.monitor.store_url = f"sqlite:///{tmp_path / 'store.db'}"  # the shipped playbooks terminate sessions
    path = write_config(config, tmp_path / "no-kafka.toml")
    env = _env()
    env.pop("AGENTWATCH_BOOTSTRAP_SERVERS", None)
    result = subprocess.run(
        [*AGENTWATCH, "--config", str(path), "respond"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "terminate_session" in line and "--bootstrap-servers" in line
