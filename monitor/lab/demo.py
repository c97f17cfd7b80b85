"""``agentwatch demo``: the whole loop on one machine, nothing to install or configure.

Starts the embedded broker and a reference gateway (which obeys ``agent.control``),
generates a labelled fleet and plays it through the gateway into ``agent.audit`` at a
steady rate while a real monitor (the ``run`` code, responder included) consumes it.
A terminated session's remaining events are never produced — the agent was stopped —
so time-to-contain is measured end to end: first malicious event produced → session
stopped at the gateway. The fleet plays faster than a stopped agent would give up, so
once the monitor is idle every attacked session's agent tries one more action: the
gateway refuses those of terminated sessions (``events_blocked``). Then
``agentwatch.alerts`` is read back and scored against the labels.

The demo also configures approvers, so the README's approval flow works on its incidents:
``approvals.toml`` in the run directory (alice and bob in the group ``S0SECOPS``, carol to
escalate to) and, unless already set, ``AGENTWATCH_APPROVERS=S0SECOPS`` and
``AGENTWATCH_ESCALATION_APPROVERS=U056CAROL`` for the monitor's approval requests.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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

#: The demo's approvers (``approvals.toml`` in the run directory): the README's examples use them.
DEMO_APPROVALS = """\
# Written by `agentwatch demo`: the approvers of this run's incidents (README: "Without Slack").
[users.U012ALICE]
email = "alice@secops.example"
names = ["alice"]

[users.U034BOB]
email = "bob@secops.example"
names = ["bob"]

[users.U056CAROL]
email = "carol@secops.example"
names = ["carol"]

[groups.S0SECOPS]
members = ["U012ALICE", "U034BOB"]
"""
DEMO_ENV = {"AGENTWATCH_APPROVERS": "S0SECOPS", "AGENTWATCH_ESCALATION_APPROVERS": "U056CAROL"}


class DemoResult(msgspec.Struct, kw_only=True):
    events_produced: int
    #: Events refused at the gateway because their session had been terminated.
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
    approvals_file: str
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
    approvals_file = run_dir / "approvals.toml"
    approvals_file.write_text(DEMO_APPROVALS)
    with _demo_approvers(approvals_file), EmbeddedBroker() as broker:
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
        retries = drive_fleet(bootstrap, native_topic(config), _next_attempts(events, fleet.labels), gateway)
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
        events_blocked=fleet_run.blocked + retries.blocked,
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
        approvals_file=str(approvals_file),
        report=report,
    )


def _next_attempts(events: list[dict[str, Any]], labels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each attacked session's agent trying once more after the fleet: its last action again."""
    attacked = {label["session_id"] for label in labels if label["label"] == "attack"}
    last: dict[str, dict[str, Any]] = {}
    for event in events:
        if event["session_id"] in attacked and event["kind"] == "tool_call":
            last[event["session_id"]] = event
    now = int(time.time() * 1000)
    return [{**e, "event_id": f"{e['event_id']}:retry", "ts": now} for e in last.values()]


@contextmanager
def _demo_approvers(approvals_file: Path) -> Iterator[None]:
    """The demo's approvers for its monitor (unless the environment names others), restored after."""
    saved = {name: os.environ.get(name) for name in (*DEMO_ENV, "AGENTWATCH_APPROVALS_FILE")}
    for name, value in DEMO_ENV.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AGENTWATCH_APPROVALS_FILE", str(approvals_file))
    try:
        yield
    finally:
        for name, kept in saved.items():
            if kept is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = kept


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1], 3)
