"""What durable state costs ``run``: events/s with and without it, on the same topic.

    python bench/state_cost.py [--sessions 4000] [--rounds 2] [--store-url URL]

Each round consumes the same simulated fleet (4 partitions, ``max_poll_records`` 2000)
twice — ``durable_state = false`` and ``true`` — each in its own consumer group and
store (SQLite by default; ``--store-url`` for PostgreSQL: every run gets a fresh schema),
detection and incidents as configured by default. Reported: events/s (clock from the
first record to the last batch), the median per-batch checkpoint time, and the rows
written.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import msgspec
from sqlalchemy import create_engine, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentwatch.ingest.kafka_security import PLAINTEXT  # noqa: E402
from agentwatch.ingest.topics import all_topics, ensure_topics  # noqa: E402
from agentwatch.lab import simulator  # noqa: E402
from agentwatch.lab.broker import EmbeddedBroker  # noqa: E402
from agentwatch.lab.topic_io import publish_events  # noqa: E402
from agentwatch.observe import metrics
from agentwatch.store import drop_store, learned_state, session_checkpoints  # noqa: E402
from bench.run_measures import bench_config, monitor_rate  # noqa: E402


def checkpoint_median_ms() -> float:
    """Median of the checkpoint-duration histogram so far (bucket resolution)."""
    samples = metrics.STATE_CHECKPOINT_SECONDS.collect()[0].samples
    buckets = [(s.labels["le"], s.value) for s in samples if s.name.endswith("_bucket")]
    total = buckets[-1][1]
    if not total:
        return 0.0
    for le, count in buckets:
        if count >= total / 2:
            return float(le) * 1000
    return float("inf")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--store-url", default=None)
    args = parser.parse_args()
    fleet = simulator.simulate(seed=args.seed, sessions=args.sessions, attack_ratio=0.02)
    n = len(fleet.events)
    results: dict[bool, list[float]] = {False: [], True: []}
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        bootstrap = broker.bootstrap_servers
        source = bench_config("state-source", Path(tmp))
        topic = next(iter(source.monitor.inputs))
        ensure_topics(bootstrap, [topic], partitions=4)
        publish_events(bootstrap, topic, fleet.events)
        for round_ in range(args.rounds):
            for durable in (False, True):
                name = f"state-{round_}-{'on' if durable else 'off'}"
                config = bench_config(name, Path(tmp))
                settings = msgspec.structs.replace(
                    config.monitor, inputs={topic: "native"}, durable_state=durable, store_url=args.store_url
                )
                config = msgspec.structs.replace(config, monitor=settings)
                if args.store_url:
                    engine = create_engine(args.store_url)
                    drop_store(engine)
                    engine.dispose()
                ensure_topics(bootstrap, all_topics(config.monitor))
                rate, _ = monitor_rate(bootstrap, config, n, PLAINTEXT)  # its own embedded broker
                results[durable].append(rate)
                rows = ""
                if durable:
                    engine = create_engine(config.store_url)
                    with engine.connect() as conn:
                        sessions = conn.execute(select(func.count()).select_from(session_checkpoints)).scalar()
                        learned = conn.execute(select(func.count()).select_from(learned_state)).scalar()
                    engine.dispose()
                    rows = f"; live sessions saved {sessions:,}, learned rows {learned:,}"
                print(f"{name}: {rate:,.0f} events/s{rows}", flush=True)
    off, on = statistics.median(results[False]), statistics.median(results[True])
    print(
        f"{n:,} events; median of {args.rounds}: without durable state {off:,.0f} events/s, "
        f"with {on:,.0f} events/s ({on / off:.0%}); checkpoint per batch median ≈ {checkpoint_median_ms():.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
