"""agentwatch benchmark: ratios measured in one run, on one broker, on the same topic.

    python bench/run_bench.py [--sessions 4000] [--json]

1. throughput — a bare kafka-python consumer (poll, count, commit per batch) and then
   ``run``'s loop with every default detector consume the same topic from the start,
   each in its own consumer group; reported as events/s and the ratio (budget ≥ 0.5);
2. replay — ``replay`` over the same events from a file, events/s on one core
   (budget ≥ 30,000);
3. latency — events produced at a steady 2,000/s while ``run`` consumes; for every
   alert, alert record time minus its triggering event's record time (both stamped
   by their producers on this machine's clock): p50/p99 (budget p99 ≤ 250 ms).

Group-join time is excluded from throughput: each clock starts at the first record.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgspec
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from monitor import simulator
from monitor.broker import EmbeddedBroker
from monitor.config import Config, MonitorSettings
from monitor.kafka_runner import GROUP_TIMEOUTS
from monitor.monitor_process import start_monitor
from monitor.pipeline import build_pipeline
from monitor.replay import replay_file
from monitor.topic_io import publish_events
from monitor.topics import ensure_topics

PARTITIONS = 4


def bare_consumer_rate(bootstrap: str, topic: str, expected: int) -> float:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="bench-bare", enable_auto_commit=False,
                             auto_offset_reset="earliest", max_poll_records=2000, **GROUP_TIMEOUTS)
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


def latency(bootstrap: str, config: Config, events: list[dict], rate: float) -> dict[str, float]:  # type: ignore[type-arg]
    topic = next(iter(config.monitor.inputs))
    monitor = start_monitor(bootstrap, config, exit_on_idle_s=3.0)
    thread = threading.Thread(target=monitor.run, daemon=True)
    thread.start()
    while not monitor.stats.assigned:
        time.sleep(0.05)
    publish_events(bootstrap, topic, events, rate=rate)
    thread.join(timeout=120)
    produced = _timestamps(bootstrap, topic, key="event_id")
    delays = []
    for alert_time, alert in _records(bootstrap, config.monitor.alerts_topic):
        sent = produced.get(alert["event_id"])
        if sent is not None:
            delays.append(alert_time - sent)
    delays.sort()
    if not delays:
        return {"alerts": 0}
    return {
        "alerts": len(delays),
        "p50_ms": delays[len(delays) // 2],
        "p99_ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
        "max_ms": delays[-1],
    }


def _records(bootstrap: str, topic: str) -> list[tuple[int, dict]]:  # type: ignore[type-arg]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=500).values():
                out.extend((r.timestamp, msgspec.json.decode(r.value)) for r in records)
        return out
    finally:
        consumer.close()


def _timestamps(bootstrap: str, topic: str, key: str) -> dict[str, int]:
    return {value[key]: ts for ts, value in _records(bootstrap, topic)}


def bench_config(name: str, data_dir: Path) -> Config:
    return Config(monitor=MonitorSettings(
        data_dir=str(data_dir / name), group_id=f"bench-{name}", inputs={f"bench.{name}": "native"},
        alerts_topic=f"bench.{name}.alerts", dlq_topic=f"bench.{name}.dlq", control_topic=f"bench.{name}.control",
    ))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=4000, help="simulated sessions (≈20 events each)")
    parser.add_argument("--latency-sessions", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=2000.0, help="events/s for the latency run")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--attack-ratio", type=float, default=0.02,
                        help="share of attack sessions (each opens an incident and runs playbooks)")
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
        results["throughput"] = {"bare_events_per_s": round(bare), "run_events_per_s": round(ours),
                                 "ratio": round(ours / bare, 3), "alerts": alerts}
        console.print("replay…")
        rate, replay_alerts = replay_rate(fleet.events, config)
        results["replay"] = {"events_per_s": round(rate), "alerts": replay_alerts}
        console.print(f"latency at {args.rate:g} events/s…")
        small = simulator.simulate(seed=args.seed + 1, sessions=args.latency_sessions, attack_ratio=args.attack_ratio)
        lat_config = bench_config("latency", Path(tmp))
        ensure_topics(bootstrap, list(lat_config.monitor.inputs), partitions=PARTITIONS)
        results["latency_event_to_alert"] = {"rate": args.rate, **latency(bootstrap, lat_config, small.events, args.rate)}
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
    lat = results["latency_event_to_alert"]
    if lat.get("alerts"):  # type: ignore[union-attr]
        table.add_row(f"event → alert p50 ms @ {args.rate:g}/s", f"{lat['p50_ms']}", "")  # type: ignore[index]
        table.add_row(f"event → alert p99 ms @ {args.rate:g}/s", f"{lat['p99_ms']}", "≤ 250")  # type: ignore[index]
    Console().print(table)
    Console().print(f"{n:,} events, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
