"""``run`` events/s with the response worker inline vs external, on the same topic.

    python bench/response_worker.py [--sessions 2000] [--attack-ratio 0.1] [--rounds 3]
                                    [--store-url URL] [--respond]

One simulated fleet is produced once to an embedded broker; each round consumes it twice,
``[response] worker = "inline"`` then ``"external"``, each in its own consumer group, alert,
control and dead-letter topics, data directory and store (SQLite by default; with
``--store-url`` a PostgreSQL server URL, every run gets its own fresh database on it).
Reported per run: events/s (from the first batch to the last), the tail — how long ``run``
took to stop after its 2 s idle wait (the inline worker drains its steps there) — and the
steps' states in the store. With ``--respond`` an ``agentwatch respond`` process runs beside
the external monitor (same machine, same cores) and the time from the last batch until no
step is pending or running is reported too.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("AGENTWATCH_AUDIT_KEY", secrets.token_hex(32))

from agentwatch.config import load_config  # noqa: E402
from agentwatch.ingest.kafka_security import PLAINTEXT  # noqa: E402
from agentwatch.ingest.monitor_process import start_monitor  # noqa: E402
from agentwatch.ingest.topics import all_topics, ensure_topics  # noqa: E402
from agentwatch.lab import simulator  # noqa: E402
from agentwatch.lab.broker import EmbeddedBroker  # noqa: E402
from agentwatch.lab.topic_io import publish_events  # noqa: E402
from agentwatch.store import actions, open_store  # noqa: E402

IDLE_S = 2.0


def fresh_store(base: str | None, name: str, data_dir: str) -> str:
    if base is None:
        return f"sqlite:///{data_dir}/agentwatch.db"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return base.rsplit("/", 1)[0] + f"/{name}"


def steps(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return dict(conn.execute(select(actions.c.status, func.count()).group_by(actions.c.status)).all())  # type: ignore[arg-type]


def one_run(bootstrap: str, n: int, mode: str, base_url: str | None, respond: bool) -> dict[str, object]:
    data_dir = tempfile.mkdtemp(prefix="response-worker-")
    config = load_config(None)
    config.monitor.data_dir = data_dir
    config.monitor.group_id = f"bench-{n}-{mode}"
    config.monitor.alerts_topic = f"agentwatch.alerts.bench{n}"  # each run publishes (and de-duplicates) alone
    config.monitor.control_topic = f"agent.control.bench{n}"
    config.monitor.dlq_topic = f"agentwatch.dlq.bench{n}"
    config.monitor.store_url = fresh_store(base_url, f"response_worker_{os.getpid()}_{n}", data_dir)
    ensure_topics(bootstrap, all_topics(config.monitor))
    worker = None
    if respond and mode == "external":
        open_store(config.store_url).dispose()
        path = Path(data_dir) / "agentwatch.toml"
        path.write_text(
            f'[monitor]\ndata_dir = "{data_dir}"\nstore_url = "{config.store_url}"\n'
            f'control_topic = "{config.monitor.control_topic}"\n'
        )
        command = [sys.executable, "-m", "agentwatch.cli", "--config", str(path), "respond"]
        worker = subprocess.Popen(
            [*command, "--bootstrap-servers", bootstrap],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert worker.stderr is not None
        worker.stderr.readline()  # "responding: …"
    marks: list[tuple[float, int]] = []
    monitor = start_monitor(bootstrap, config, exit_on_idle_s=IDLE_S, worker=mode, security=PLAINTEXT)  # type: ignore[arg-type]
    monitor.on_batch = lambda s: marks.append((time.perf_counter(), s.events))
    stats = monitor.run()
    stopped = time.perf_counter()
    (first_t, first_n), (last_t, last_n) = marks[0], marks[-1]
    assert monitor.responder is not None
    engine = monitor.responder.engine
    drained = None
    if worker is not None:
        while steps(engine).keys() & {"pending", "running"}:
            time.sleep(0.2)
        drained = time.perf_counter() - last_t
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    result_steps = steps(engine)
    engine.dispose()
    if base_url is not None:  # the run's database is not kept
        admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {engine.url.database} WITH (FORCE)"))
        admin.dispose()
    return {
        "mode": mode,
        "events": stats.events,
        "events_per_s": round((last_n - first_n) / (last_t - first_t)),
        "stop_tail_s": round(stopped - last_t - IDLE_S, 1),
        "respond_drained_s": None if drained is None else round(drained, 1),
        "steps": result_steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--attack-ratio", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store-url", default=None, help="PostgreSQL server URL (a database per run is created)")
    parser.add_argument("--respond", action="store_true", help="run `agentwatch respond` beside the external monitor")
    args = parser.parse_args()
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        config = load_config(None)
        ensure_topics(bootstrap, all_topics(config.monitor))
        fleet = simulator.simulate(
            seed=3, sessions=args.sessions, attack_ratio=args.attack_ratio, agent_types=simulator.TUNED_AGENT_TYPES
        )
        topic = next(t for t, f in config.monitor.inputs.items() if f == "native")
        publish_events(bootstrap, topic, fleet.events)
        print(f"{len(fleet.events):,} events, {args.sessions} sessions, attack ratio {args.attack_ratio}", flush=True)
        rates: dict[str, list[int]] = {"inline": [], "external": []}
        n = 0
        for _round in range(args.rounds):
            for mode in ("inline", "external"):
                result = one_run(bootstrap, n, mode, args.store_url, args.respond)
                n += 1
                rates[mode].append(result["events_per_s"])  # type: ignore[arg-type]
                print(result, flush=True)
        for mode, values in rates.items():
            print(f"{mode}: events/s min {min(values):,} median {statistics.median(values):,.0f} max {max(values):,}")


if __name__ == "__main__":
    main()
