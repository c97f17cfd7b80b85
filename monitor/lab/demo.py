"""``agentwatch demo``: the whole loop on one machine, nothing to install or configure.

Starts the embedded broker and a reference gateway (which obeys ``agent.control``),
generates a labelled fleet and plays it through the gateway into ``agent.audit`` at a
steady rate while a real monitor (the ``run`` code, responder included) consumes it.
A terminated session's remaining events are never produced — the agent was stopped —
so time-to-contain is measured end to end: first malicious event produced → session
stopped at the gateway. Then ``agentwatch.alerts`` is read back and scored against the
labels.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

import msgspec

from agentwatch.config import Config
from agentwatch.ingest.kafka_security import PLAINTEXT
from agentwatch.ingest.monitor_process import start_monitor
from agentwatch.ingest.topics import all_topics, ensure_topics
from agentwatch.lab import simulator
from agentwatch.lab.broker import EmbeddedBroker
from agentwatch.lab.evaluation import EvalReport, evaluate
from agentwatch.lab.reference_gateway import ReferenceGateway, drive_fleet, time_to_contain
from agentwatch.lab.topic_io import read_topic
from agentwatch.respond.control_signing import ControlVerifier


class DemoResult(msgspec.Struct, kw_only=True):
    events_produced: int
    events_blocked: int
    alerts: int
    dead_letters: int
    incidents: int
    sessions_terminated: int
    ttc_p50_s: float | None
    ttc_p90_s: float | None
    ttc_p99_s: float | None
    data_dir: str
    store_url: str
    evidence_dir: str
    postmortem_dir: str
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
    rate: float = 2000.0,
    progress: Callable[[str], None] = lambda text: None,
) -> DemoResult:
    """Run the demo and return what it measured."""
    fleet = simulator.simulate(seed=seed, sessions=sessions)
    # Event time ends now, so incident timelines read naturally next to wall-clock actions.
    shift = int(time.time() * 1000) - max(e["ts"] for e in fleet.events)
    events = [{**e, "ts": e["ts"] + shift} for e in fleet.events]
    run_dir = config.data_dir.resolve() / "demo" / time.strftime("%Y%m%dT%H%M%S")
    config = msgspec.structs.replace(
        config, monitor=msgspec.structs.replace(config.monitor, data_dir=str(run_dir), store_url=None)
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    simulator.write_fleet(simulator.Fleet(events=events, labels=fleet.labels), run_dir)
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        ensure_topics(bootstrap, all_topics(config.monitor))
        # With AGENTWATCH_CONTROL_SIGNING_KEY set, the monitor signs and the gateway verifies.
        gateway = ReferenceGateway(bootstrap, config.monitor.control_topic, verifier=ControlVerifier.from_env()).start()
        progress(f"broker on {bootstrap}; monitor joining the consumer group…")
        # the embedded broker is plaintext on loopback, whatever AGENTWATCH_KAFKA_* says
        monitor = start_monitor(bootstrap, config, exit_on_idle_s=4.0, security=PLAINTEXT)
        thread = threading.Thread(target=monitor.run, name="demo-monitor", daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not monitor.stats.assigned and time.monotonic() < deadline:
            time.sleep(0.05)
        total = len(events)

        def show(run) -> None:  # type: ignore[no-untyped-def]
            s = monitor.stats
            progress(
                f"produced {run.produced:,}/{total:,}  processed {s.events:,}  alerts {s.alerts_published:,}  "
                f"sessions stopped {len(gateway.stopped):,}  blocked events {run.blocked:,}"
            )

        fleet_run = drive_fleet(bootstrap, native_topic(config), events, gateway, rate=rate, on_progress=show)
        progress("fleet done; waiting for the monitor to go idle and the responder to finish…")
        thread.join(timeout=600)
        gateway.stop()
        alerts = [msgspec.json.decode(v) for v in read_topic(bootstrap, config.monitor.alerts_topic)]
    from agentwatch.respond.incident_queries import list_incidents
    from agentwatch.store import open_store

    with open_store(config.store_url).connect() as conn:
        incident_count = len(list_incidents(conn, limit=1_000_000))
    produced = [e for e in events if e["event_id"] in fleet_run.produced_ms]
    report = evaluate(produced, fleet.labels, alerts)
    ttc = time_to_contain(fleet_run, gateway, fleet.labels)
    (run_dir / "alerts.jsonl").write_bytes(b"".join(msgspec.json.encode(a) + b"\n" for a in alerts))
    return DemoResult(
        events_produced=fleet_run.produced,
        events_blocked=fleet_run.blocked,
        alerts=len(alerts),
        dead_letters=monitor.stats.dead_letters,
        incidents=incident_count,
        sessions_terminated=len(gateway.stopped),
        ttc_p50_s=_quantile(ttc, 0.5),
        ttc_p90_s=_quantile(ttc, 0.9),
        ttc_p99_s=_quantile(ttc, 0.99),
        data_dir=str(run_dir),
        store_url=config.store_url,
        evidence_dir=str(run_dir / "evidence"),
        postmortem_dir=str(run_dir / "postmortems"),
        report=report,
    )


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1], 3)
