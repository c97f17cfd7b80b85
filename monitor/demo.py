"""``agentwatch demo``: the whole loop on one machine, nothing to install or configure.

Starts the embedded broker, generates a labelled fleet, produces it to
``agent.audit`` at a steady rate while a real monitor (the ``run`` code) consumes it,
then reads ``agentwatch.alerts`` back and scores the alerts against the labels.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from monitor import simulator
from monitor.broker import EmbeddedBroker
from monitor.config import Config
from monitor.evaluation import EvalReport, evaluate
from monitor.monitor_process import start_monitor
from monitor.topic_io import publish_events, read_topic


class DemoResult(msgspec.Struct, kw_only=True):
    events: int
    alerts: int
    dead_letters: int
    events_per_second: float
    alerts_topic: str
    data_dir: str
    report: EvalReport


def native_topic(config: Config) -> str:
    """The first input topic carrying native events (``agent.audit`` by default)."""
    for topic, fmt in config.monitor.inputs.items():
        if fmt == "native":
            return topic
    raise ValueError("no input topic of format 'native' is configured")


def run_demo(
    config: Config,
    *,
    sessions: int = 300,
    seed: int = 7,
    rate: float = 4000.0,
    progress: Callable[[str], None] = lambda text: None,
) -> DemoResult:
    """Run the demo and return what it measured."""
    fleet = simulator.simulate(seed=seed, sessions=sessions)
    run_dir = config.data_dir.resolve() / "demo" / time.strftime("%Y%m%dT%H%M%S")
    config = msgspec.structs.replace(config, monitor=msgspec.structs.replace(
        config.monitor, data_dir=str(run_dir), store_url=None))
    run_dir.mkdir(parents=True, exist_ok=True)
    simulator.write_fleet(fleet, run_dir)
    with EmbeddedBroker() as broker:
        progress(f"broker on {broker.bootstrap_servers}; joining the consumer group…")
        monitor = start_monitor(broker.bootstrap_servers, config, exit_on_idle_s=4.0)
        produced = [0]
        producer = threading.Thread(
            target=publish_events,
            args=(broker.bootstrap_servers, native_topic(config), fleet.events),
            kwargs={"rate": rate, "on_sent": lambda n: produced.__setitem__(0, n)},
            name="demo-producer",
            daemon=True,
        )
        producer.start()
        total = len(fleet.events)
        monitor.on_batch = lambda s: progress(
            f"produced {produced[0]:,}/{total:,}  processed {s.events:,}  alerts {s.alerts_published:,}  "
            f"dead letters {s.dead_letters:,}"
        )
        started = time.monotonic()
        stats = monitor.run()
        elapsed = max(time.monotonic() - started - 4.0, 1e-3)
        producer.join(timeout=30)
        alerts = [msgspec.json.decode(v) for v in read_topic(broker.bootstrap_servers, config.monitor.alerts_topic)]
    report = evaluate(fleet.events, fleet.labels, alerts)
    (Path(run_dir) / "alerts.jsonl").write_bytes(b"".join(msgspec.json.encode(a) + b"\n" for a in alerts))
    return DemoResult(
        events=stats.events,
        alerts=len(alerts),
        dead_letters=stats.dead_letters,
        events_per_second=stats.events / elapsed,
        alerts_topic=config.monitor.alerts_topic,
        data_dir=str(run_dir),
        report=report,
    )
