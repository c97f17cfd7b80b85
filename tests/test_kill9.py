"""Kill -9, again and again (issue 9, "Done when"): ``agentwatch run`` as users run it,
SIGKILLed at random moments mid-stream at least ten times and restarted each time,
detects exactly what an uninterrupted run detects — per attack session and detector —
and publishes no duplicate alert revision and no duplicate control command.

Both runs consume the same simulated fleet from the same input topic, each in its own
consumer group with its own store, alerts and control topics; incidents and playbooks
run (``respond``), so ``terminate_session`` commands are part of the comparison.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from kafka import KafkaAdminClient

from agentwatch.config import Config
from agentwatch.ingest.topics import all_topics, ensure_topics
from agentwatch.lab import simulator
from agentwatch.lab.broker import EmbeddedBroker
from agentwatch.lab.topic_io import publish_events
from tests.conftest import write_config
from tests.kafka_helpers import read_json

pytestmark = pytest.mark.broker

KILLS = 10
SEED = 9


def _variant(config: Config, name: str, tmp_path: Path) -> Config:
    """Same input topics; its own group, store and output topics."""
    m = config.monitor
    settings = msgspec.structs.replace(
        m,
        group_id=f"{m.group_id}-{name}",
        data_dir=str(tmp_path / name),
        alerts_topic=f"{m.alerts_topic}-{name}",
        dlq_topic=f"{m.dlq_topic}-{name}",
        control_topic=f"{m.control_topic}-{name}",
        max_poll_records=100,
    )
    return msgspec.structs.replace(config, monitor=settings)


def _run(config_path: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "agentwatch.cli.main", "--config", str(config_path), "run", *args, "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _committed(admin: KafkaAdminClient, config: Config) -> int:
    """Events the killed monitor's group has committed (sum over its partitions)."""
    group = config.monitor.group_id
    offsets = admin.list_group_offsets(group).get(group) or {}
    return sum(meta.offset for meta in offsets.values() if meta.offset > 0)


def _detections(bootstrap: str, config: Config, attacks: set[str]) -> tuple[set[tuple[str, str]], list[dict]]:  # type: ignore[type-arg]
    alerts = read_json(bootstrap, config.monitor.alerts_topic)
    return {(a["session_id"], a["detector"]) for a in alerts if a["session_id"] in attacks}, alerts


def test_ten_random_kills_detect_what_an_uninterrupted_run_detects(
    broker: EmbeddedBroker, isolated_config: Config, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap_servers
    fleet = simulator.simulate(seed=SEED, sessions=250)
    attacks = {lb["session_id"] for lb in fleet.labels if lb["label"] == "attack"}
    native = next(t for t, f in isolated_config.monitor.inputs.items() if f == "native")
    calm, killed = _variant(isolated_config, "calm", tmp_path), _variant(isolated_config, "killed", tmp_path)
    # One input partition: both runs then see the events in one order. (With several, the
    # interleaving of partitions differs from run to run, and so, slightly, do the learned
    # baselines — two uninterrupted runs would not agree either.)
    ensure_topics(bootstrap, list(isolated_config.monitor.inputs), partitions=1)
    ensure_topics(bootstrap, all_topics(calm.monitor) + all_topics(killed.monitor))
    publish_events(bootstrap, native, fleet.events)
    total = len(fleet.events)

    uninterrupted = _run(
        write_config(calm, tmp_path / "calm.toml"), "--bootstrap-servers", bootstrap, "--exit-on-idle", "2"
    )
    killed_path = write_config(killed, tmp_path / "killed.toml")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        rng = random.Random(SEED)
        deadline = time.monotonic() + 150
        for _ in range(KILLS):
            before = _committed(admin, killed)
            proc = _run(killed_path, "--bootstrap-servers", bootstrap)
            while _committed(admin, killed) <= before:  # mid-stream: this life has committed a batch
                assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
                assert time.monotonic() < deadline, "the monitor made no progress"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))  # then anywhere: decoding, delivering, saving, committing
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        assert _committed(admin, killed) < total, "the stream was consumed before the last kill"
        last = _run(killed_path, "--bootstrap-servers", bootstrap, "--exit-on-idle", "2")
        _, stderr = last.communicate(timeout=120)
        assert last.returncode == 0, stderr.decode()[-2000:]
        _, stderr = uninterrupted.communicate(timeout=120)
        assert uninterrupted.returncode == 0, stderr.decode()[-2000:]
        assert _committed(admin, killed) == total
    finally:
        admin.close()

    expected, _ = _detections(bootstrap, calm, attacks)
    found, alerts = _detections(bootstrap, killed, attacks)
    detected = {s for s, _ in found}
    print(
        f"\nattack sessions detected: {len({s for s, _ in expected})}/{len(attacks)} uninterrupted, "
        f"{len(detected)}/{len(attacks)} with {KILLS} SIGKILLs; (session, detector) alerts: "
        f"{len(expected)} vs {len(found)}"
    )
    assert found - expected == set(), "detected only with kills"
    assert expected - found == set(), "missed because of the kills"
    copies = Counter((a["alert_id"], a["revision"]) for a in alerts)
    assert [key for key, n in copies.items() if n > 1] == [], "duplicate alert revisions published"
    commands = read_json(bootstrap, killed.monitor.control_topic)
    calm_commands = read_json(bootstrap, calm.monitor.control_topic)
    assert commands, "no control command at all: the comparison would prove nothing"
    repeated = Counter(c["command_id"] for c in commands)
    assert [key for key, n in repeated.items() if n > 1] == [], "duplicate control commands published"
    assert {(c["type"], c["session_id"]) for c in commands} == {(c["type"], c["session_id"]) for c in calm_commands}
