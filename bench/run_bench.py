"""agentwatch benchmark: ratios measured in one run, on one broker, on the same topic.

    python bench/run_bench.py [--sessions 4000] [--json]

1. throughput — a bare kafka-python consumer (poll, count, commit per batch) and then
   ``run``'s loop with every default detector consume the same topic from the start,
   each in its own consumer group; reported as events/s and the ratio (budget ≥ 0.5);
2. replay — ``replay`` over the same events from a file, events/s on one core
   (budget ≥ 30,000);
3. latency — events produced at a steady 2,000/s while ``agentwatch run`` (a separate
   process, as users run it) consumes: for every alert, its record time minus its
   triggering event's record time (budget p99 ≤ 250 ms); for every terminate_session
   command, its record time minus that of the event that raised the session's first
   enforce-mode high alert (budget p99 ≤ 500 ms). All stamps are producers' clocks on
   this machine.

Group-join time is excluded from throughput: each clock starts at the first record.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgspec
from kafka import KafkaConsumer
from rich.console import Console
from rich.table import Table

from agentwatch.config import Config, MonitorSettings
from agentwatch.detect.pipeline import build_pipeline
from agentwatch.ingest.kafka_runner import GROUP_TIMEOUTS
from agentwatch.ingest.monitor_process import start_monitor
from agentwatch.ingest.replay import replay_file
from agentwatch.ingest.topics import ensure_topics
from agentwatch.lab import simulator
from agentwatch.lab.broker import EmbeddedBroker
from agentwatch.lab.topic_io import publish_events, read_records

PARTITIONS = 4


def bare_consumer_rate(bootstrap: str, topic: str, expected: int) -> float:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id="bench-bare",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
        **GROUP_TIMEOUTS,
    )
    seen = 0
    first = None
    try:
        while seen < expected:
            batch = consumer.poll(timeout_ms=500)
            if not batch:
                continue
            if first is None:
                first = time.perf_counter()
            seen += sum(len(records) for records in batch.values())
            consumer.commit()
        assert first is not None
        return seen / (time.perf_counter() - first)
    finally:
        consumer.close()


def monitor_rate(bootstrap: str, config: Config, expected: int) -> tuple[float, int]:
    monitor = start_monitor(bootstrap, config, exit_on_idle_s=3.0)
    marks: dict[str, float] = {}
    done = threading.Event()

    def on_batch(stats) -> None:  # type: ignore[no-untyped-def]
        if stats.events >= expected:
            marks["last"] = time.perf_counter()
            monitor.stop_event.set()
            done.set()

    # The clock starts when the first batch *arrives*, not when it finishes.
    original = monitor.pipeline.ingest

    def timed_ingest(*args, **kwargs):  # type: ignore[no-untyped-def]
        marks.setdefault("first", time.perf_counter())
        return original(*args, **kwargs)

    monitor.pipeline.ingest = timed_ingest  # type: ignore[method-assign]
    monitor.on_batch = on_batch
    stats = monitor.run()
    return stats.events / (marks["last"] - marks["first"]), stats.alerts_published


def replay_rate(events: list[dict], config: Config) -> tuple[float, int]:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in events))
        stats = replay_file(path, io.BytesIO(), build_pipeline(config))
    return stats.events / stats.seconds, stats.alerts


def latency(bootstrap: str, config: Config, events: list[dict], rate: float, workdir: Path) -> dict[str, object]:  # type: ignore[type-arg]
    """Produce at ``rate`` while `agentwatch run` (its own process, as users run it) consumes."""
    topic = next(iter(config.monitor.inputs))
    config_path = workdir / "latency.toml"
    inputs = "\n".join(f'"{t}" = "{f}"' for t, f in config.monitor.inputs.items())
    config_path.write_text(
        f'[monitor]\ndata_dir = "{config.monitor.data_dir}"\ngroup_id = "{config.monitor.group_id}"\n'
        f'alerts_topic = "{config.monitor.alerts_topic}"\ndlq_topic = "{config.monitor.dlq_topic}"\n'
        f'control_topic = "{config.monitor.control_topic}"\n[monitor.inputs]\n{inputs}\n'
    )
    ensure_topics(bootstrap, [config.monitor.alerts_topic, config.monitor.dlq_topic, config.monitor.control_topic])
    monitor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentwatch.cli",
            "--config",
            str(config_path),
            "run",
            "--bootstrap-servers",
            bootstrap,
            "--quiet",
            "--exit-on-idle",
            "5",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(6)  # consumer group join (no records yet, so the idle clock has not started)
    # Event time ends now, so incident and containment clocks read naturally.
    shift = int(time.time() * 1000) - max(e["ts"] for e in events)
    publish_events(bootstrap, topic, [{**e, "ts": e["ts"] + shift} for e in events], rate=rate)
    _, stderr = monitor.communicate(timeout=300)
    if monitor.returncode != 0:
        raise RuntimeError(f"agentwatch run failed: {stderr.decode()[-2000:]}")
    produced = _timestamps(bootstrap, topic, key="event_id")
    alerts = _records(bootstrap, config.monitor.alerts_topic)
    to_alert = sorted(t - produced[a["event_id"]] for t, a in alerts if a["event_id"] in produced)
    # event → terminate_session: the command's record time minus the production time of the
    # event that raised the session's first enforce-mode alert at high or above.
    trigger: dict[str, tuple[int, str]] = {}
    for t, a in alerts:
        if a["mode"] == "enforce" and a["severity"] in ("high", "critical") and a["event_id"] in produced:
            if a["session_id"] not in trigger or t < trigger[a["session_id"]][0]:
                trigger[a["session_id"]] = (t, a["event_id"])
    to_terminate = sorted(
        t - produced[trigger[c["session_id"]][1]]
        for t, c in _records(bootstrap, config.monitor.control_topic)
        if c["type"] == "terminate_session" and c["session_id"] in trigger
    )
    return {
        "rate": rate,
        "event_to_alert_ms": _percentiles(to_alert),
        "event_to_terminate_ms": _percentiles(to_terminate),
    }


def _percentiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": values[len(values) // 2],
        "p99": values[min(len(values) - 1, int(len(values) * 0.99))],
        "max": values[-1],
    }


def _records(bootstrap: str, topic: str) -> list[tuple[int, dict]]:  # type: ignore[type-arg]
    return [(r.timestamp, msgspec.json.decode(r.value)) for r in read_records(bootstrap, topic, timeout_s=60)]


def _timestamps(bootstrap: str, topic: str, key: str) -> dict[str, int]:
    return {value[key]: ts for ts, value in _records(bootstrap, topic)}


def bench_config(name: str, data_dir: Path) -> Config:
    return Config(
        monitor=MonitorSettings(
            data_dir=str(data_dir / name),
            group_id=f"bench-{name}",
            inputs={f"bench.{name}": "native"},
            alerts_topic=f"bench.{name}.alerts",
            dlq_topic=f"bench.{name}.dlq",
            control_topic=f"bench.{name}.control",
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=4000, help="simulated sessions (≈20 events each)")
    parser.add_argument("--latency-sessions", type=int, default=1000)
    parser.add_argument(
        "--latency-attack-ratio",
        type=float,
        default=0.1,
        help="share of attack sessions in the latency run (more alerts to measure)",
    )
    parser.add_argument("--rate", type=float, default=2000.0, help="events/s for the latency run")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--attack-ratio",
        type=float,
        default=0.02,
        help="share of attack sessions (each opens an incident and runs playbooks)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    console = Console(stderr=True)
    fleet = simulator.simulate(seed=args.seed, sessions=args.sessions, attack_ratio=args.attack_ratio)
    n = len(fleet.events)
    results: dict[str, object] = {"events": n, "cpus": os.cpu_count(), "attack_ratio": args.attack_ratio}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        config = bench_config("throughput", Path(tmp))
        topic = next(iter(config.monitor.inputs))
        ensure_topics(bootstrap, [topic], partitions=PARTITIONS)
        console.print(f"producing {n:,} events to {topic} ({PARTITIONS} partitions)…")
        publish_events(bootstrap, topic, fleet.events)
        console.print("bare kafka-python consumer…")
        bare = bare_consumer_rate(bootstrap, topic, n)
        console.print("agentwatch run (all default detectors)…")
        ours, alerts = monitor_rate(bootstrap, config, n)
        results["throughput"] = {
            "bare_events_per_s": round(bare),
            "run_events_per_s": round(ours),
            "ratio": round(ours / bare, 3),
            "alerts": alerts,
        }
        console.print("replay…")
        rate, replay_alerts = replay_rate(fleet.events, config)
        results["replay"] = {"events_per_s": round(rate), "alerts": replay_alerts}
        console.print(f"latency at {args.rate:g} events/s…")
        small = simulator.simulate(
            seed=args.seed + 1, sessions=args.latency_sessions, attack_ratio=args.latency_attack_ratio
        )
        lat_config = bench_config("latency", Path(tmp))
        ensure_topics(bootstrap, list(lat_config.monitor.inputs), partitions=PARTITIONS)
        results["latency"] = latency(bootstrap, lat_config, small.events, args.rate, Path(tmp))
    if args.json:
        sys.stdout.write(msgspec.json.encode(results).decode() + "\n")
        return 0
    table = Table(title="agentwatch bench", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("budget", justify="right")
    t = results["throughput"]
    table.add_row("bare kafka-python consumer, events/s", f"{t['bare_events_per_s']:,}", "")  # type: ignore[index]
    table.add_row("agentwatch run, events/s", f"{t['run_events_per_s']:,}", "")  # type: ignore[index]
    table.add_row("ratio run / bare", f"{t['ratio']:.2f}", "≥ 0.50")  # type: ignore[index]
    table.add_row("replay, events/s (one core)", f"{results['replay']['events_per_s']:,}", "≥ 30,000")  # type: ignore[index]
    lat = results["latency"]
    for key, what, budget in (
        ("event_to_alert_ms", "event → alert", "≤ 250"),
        ("event_to_terminate_ms", "event → terminate_session", "≤ 500"),
    ):
        figures = lat[key]  # type: ignore[index]
        if figures.get("n"):
            table.add_row(f"{what} p50 ms @ {args.rate:g}/s (n={figures['n']})", f"{figures['p50']}", "")
            table.add_row(f"{what} p99 ms @ {args.rate:g}/s", f"{figures['p99']}", budget)
    Console().print(table)
    Console().print(f"{n:,} events, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
